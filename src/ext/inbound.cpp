// src/ext/inbound.cpp — receive_sms: everything DarkSpere decides about one inbound SMS, in one transaction.
//
// Order matters and is the compliance story:
//   1. the service number names the account, and only for the Twilio AccountSid that owns it (unknown, or
//      another AccountSid → nothing stored);
//   2. the MessageSid is deduplicated under an advisory lock (Twilio's retries and concurrent duplicates
//      return the original ids and change nothing);
//   3. keywords (STOP / START / HELP) are honoured before any limit, so an opt-out always works (their
//   replies
//      are throttled and metered);
//   4. an opted-out phone reaches no agent and gets no SMS;
//   5. per-phone rate limit (per tenant, under a higher ceiling across tenants), then the plan's hard cap;
//   6. session, agent (sticky unless ineligible), stored message, usage, agent_call job — or `queued` when no
//      agent is eligible now (tick() routes it later).
#include "ext/darkspere.hpp"
#include "ext/errors.hpp"
#include "ext/spi_plans.hpp"

namespace darkspere {

// Advisory-lock class for MessageSid deduplication ("DSms"); the object id is hashtext(MessageSid).
constexpr int32 kDedupeLockClass = 0x44536d73;

// Number → account, texts, whether the phone has opted out of this number and whether the plan has a hard
// cap (only then are quotas read), in one lookup. The webhook was verified with $3's auth token: it may only
// speak for numbers that AccountSid owns (provider_account is NOT NULL, so no number accepts every sender).
static Statement kNumberLookup = {
    "SELECT n.account_id, a.help_text, a.opt_out_text, a.opt_in_text,"
    "       EXISTS (SELECT 1 FROM darkspere.opt_outs o"
    "                WHERE o.account_id = n.account_id AND o.service_number = n.number AND o.phone = $2),"
    "       p.hard_cap"
    "  FROM darkspere.numbers n JOIN darkspere.accounts a ON a.account_id = n.account_id"
    "  JOIN darkspere.plans p ON p.plan = a.plan"
    " WHERE n.number = $1 AND n.provider_account = $3",
    3,
    {TEXTOID, TEXTOID, TEXTOID},
    nullptr};

static Statement kDedupeLock = {
    "SELECT pg_catalog.pg_advisory_xact_lock($1, pg_catalog.hashtext($2))", 2, {INT4OID, TEXTOID}, nullptr};

static Statement kFindBySid = {
    "SELECT message_id, session_id, agent_id FROM darkspere.messages WHERE message_sid = $1",
    1,
    {TEXTOID},
    nullptr};

// $1 account, $2 session, $3 service number, $4 phone, $5 body, $6 status, $7 sid, $8 media, $9 encoding,
// $10 segments, $11 agent, $12 request id.
static Statement kInsertInbound = {
    "INSERT INTO darkspere.messages (account_id, session_id, direction, service_number, phone, body, status,"
    "                                message_sid, num_media, encoding, segments, agent_id, request_id)"
    " VALUES ($1, $2, 'in', $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING message_id",
    12,
    {INT8OID, INT8OID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, INT4OID, TEXTOID, INT4OID, INT8OID,
     TEXTOID},
    nullptr};

static Statement kOptOut = {
    "WITH o AS (INSERT INTO darkspere.opt_outs (account_id, service_number, phone, source)"
    "           VALUES ($1, $2, $3, $4) ON CONFLICT (account_id, service_number, phone) DO NOTHING)"
    " INSERT INTO darkspere.consent_events (account_id, service_number, phone, action, source, keyword,"
    "                                       message_sid)"
    " VALUES ($1, $2, $3, 'opt_out', $4, $5, $6)",
    6,
    {INT8OID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID},
    nullptr};

static Statement kOptIn = {
    "WITH o AS (DELETE FROM darkspere.opt_outs WHERE account_id = $1 AND service_number = $2 AND phone = $3)"
    " INSERT INTO darkspere.consent_events (account_id, service_number, phone, action, source, keyword,"
    "                                       message_sid)"
    " VALUES ($1, $2, $3, $4, 'keyword', $5, $6)",
    6,
    {INT8OID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID},
    nullptr};

static Statement kHelpServed = {
    "INSERT INTO darkspere.consent_events (account_id, service_number, phone, action, source, keyword,"
    "                                      message_sid)"
    " VALUES ($1, $2, $3, $4, 'keyword', $5, $6)",
    6,
    {INT8OID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID},
    nullptr};

static Statement kAccountForNumber = {
    "SELECT account_id FROM darkspere.numbers WHERE number = $1", 1, {TEXTOID}, nullptr};

// The result row of receive_sms.
struct Outcome {
    const char *disposition;
    int64 session_id;  // 0 → NULL
    int64 message_id;
    int64 agent_id;
    char *reply;  // nullptr → NULL
};

struct Inbound {
    char *provider_account;
    char *to_number;
    char *from_number;
    char *body;
    char *message_sid;
    int32 num_media;
    char *request_id;
};

static int64 store_inbound(const Inbound &in, int64 account_id, int64 session_id, const char *status,
                           const Segments &seg, int64 agent_id) {
    Datum args[12] = {Int64GetDatum(account_id),
                      Int64GetDatum(session_id),
                      text_datum(in.to_number),
                      text_datum(in.from_number),
                      text_datum(in.body),
                      text_datum(status),
                      text_datum(in.message_sid),
                      Int32GetDatum(in.num_media),
                      text_datum(seg.ucs2 ? "UCS-2" : "GSM-7"),
                      Int32GetDatum(seg.segments),
                      Int64GetDatum(agent_id),
                      in.request_id ? text_datum(in.request_id) : (Datum)0};
    char nulls[12] = {' ',
                      null_flag(session_id == 0),
                      ' ',
                      ' ',
                      ' ',
                      ' ',
                      ' ',
                      ' ',
                      ' ',
                      ' ',
                      null_flag(agent_id == 0),
                      null_flag(in.request_id == nullptr)};
    return spi_run(kInsertInbound, args, nulls, false, 1).get_int64(0, 1);
}

// handle_keyword — records consent for STOP / START / HELP and answers with the account's text. A phone that
// is already opted out gets no text at all (not even HELP) until it opts in again. Consent is always
// recorded, whatever the limits; the reply is not: at most one per keyword, phone and account per window of
// the keyword_reply rule (default 10 minutes), so a flood of keywords costs no flood of texts. A reply that
// is sent is an outbound SMS like any other and counted as sms_out.
static Outcome handle_keyword(const Inbound &in, int64 account_id, Keyword keyword, const Segments &seg,
                              bool opted_out, char *help_text, char *opt_out_text, char *opt_in_text) {
    Outcome out = {nullptr, 0, 0, 0, nullptr};
    const char *name;
    char *text;
    switch (keyword) {
        case Keyword::opt_out:
            name = "opt_out";
            text = opted_out ? nullptr : opt_out_text;
            out.disposition = "opted_out";
            break;
        case Keyword::opt_in:
            name = "opt_in";
            text = opt_in_text;
            out.disposition = "opted_in";
            break;
        default:
            name = "help";
            text = opted_out ? nullptr : help_text;
            out.disposition = "help";
            break;
    }
    // Before the consent rows: the phone's ceiling row is the first row of the phone a message locks.
    bool reply = keyword_reply_hit(account_id, in.from_number, name, text != nullptr);
    Datum args[6] = {Int64GetDatum(account_id),  text_datum(in.to_number),
                     text_datum(in.from_number), (Datum)0,
                     text_datum(in.body),        text_datum(in.message_sid)};
    switch (keyword) {
        case Keyword::opt_out:
            args[3] = text_datum("keyword");
            spi_run(kOptOut, args, nullptr, false, 0);
            break;
        case Keyword::opt_in:
            args[3] = text_datum("opt_in");
            spi_run(kOptIn, args, nullptr, false, 0);
            break;
        default:
            args[3] = text_datum("help");
            spi_run(kHelpServed, args, nullptr, false, 0);
            break;
    }
    out.message_id = store_inbound(in, account_id, 0, "keyword", seg, 0);
    usage_add(account_id, "sms_in", seg.segments);
    if (reply) {
        out.reply = text;
        usage_add(account_id, "sms_out", count_sms_segments(text).segments);
    }
    return out;
}

static Outcome receive(const Inbound &in, MemoryContext caller) {
    Outcome out = {nullptr, 0, 0, 0, nullptr};

    Datum lookup_args[3] = {text_datum(in.to_number), text_datum(in.from_number),
                            text_datum(in.provider_account)};
    SpiResult number = spi_run(kNumberLookup, lookup_args, nullptr, false, 1);
    if (number.empty()) {
        out.disposition = "unknown_number";  // no such number, or not one of this AccountSid's
        return out;
    }
    int64 account_id = number.get_int64(0, 1);
    char *help_text = number.text_copy(0, 2, caller);
    char *opt_out_text = number.text_copy(0, 3, caller);
    char *opt_in_text = number.text_copy(0, 4, caller);
    bool opted_out = number.get_bool(0, 5);
    bool hard_cap = number.get_bool(0, 6);

    Datum lock_args[2] = {Int32GetDatum(kDedupeLockClass), text_datum(in.message_sid)};
    spi_run(kDedupeLock, lock_args, nullptr, false, 0);
    Datum sid_args[1] = {text_datum(in.message_sid)};
    SpiResult original = spi_run(kFindBySid, sid_args, nullptr, false, 1);
    if (!original.empty()) {
        out.disposition = "duplicate";
        out.message_id = original.get_int64(0, 1);
        out.session_id = original.get_int64(0, 2);
        out.agent_id = original.get_int64(0, 3);
        return out;
    }

    Segments seg = count_sms_segments(in.body);
    Keyword keyword = classify_keyword(in.body);
    if (keyword != Keyword::none) {
        return handle_keyword(in, account_id, keyword, seg, opted_out, help_text, opt_out_text, opt_in_text);
    }
    if (opted_out) {
        out.disposition = "opted_out";
        out.message_id = store_inbound(in, account_id, 0, "suppressed", seg, 0);
        usage_add(account_id, "sms_in", seg.segments);
        return out;
    }

    switch (phone_limit_hit(account_id, in.from_number)) {
        case LimitVerdict::limited:
            out.disposition = "rate_limited";
            return out;
        case LimitVerdict::blocked:
            out.disposition = "blocked";
            return out;
        case LimitVerdict::allowed:
            break;
    }
    if (hard_cap && !quota_allows_inbound(account_id, seg.segments)) {
        out.disposition = "over_quota";
        return out;
    }

    SessionRef session = session_get_or_create(account_id, in.to_number, in.from_number);
    int64 agent_id = session.agent_eligible ? session.agent_id : 0;
    // Earlier messages of this session still wait for an agent: this one queues behind them to keep order.
    if (agent_id == 0 && !session.has_queued_messages) {
        agent_id = pick_agent(account_id, nullptr, 0);
        if (agent_id != 0 && agent_id != session.agent_id) {
            session_bind_agent(session.session_id, agent_id);
        }
    }
    bool routed = agent_id != 0 && !session.has_queued_messages;
    out.session_id = session.session_id;
    out.message_id = store_inbound(in, account_id, session.session_id, routed ? "routed" : "waiting", seg,
                                   routed ? agent_id : 0);
    usage_add(account_id, "sms_in", seg.segments);
    if (routed) {
        enqueue_agent_call(account_id, session.session_id, out.message_id, agent_id);
        out.agent_id = agent_id;
        out.disposition = "routed";
    } else {
        out.disposition = "queued";
    }
    return out;
}

// validate_inbound — the checks of receive_sms's arguments that are not NULL checks.
static void validate_inbound(const Inbound &in) {
    require_e164(in.to_number, "to_number");
    require_non_empty(in.from_number, "from_number");
    require_non_empty(in.message_sid, "message_sid");
    require_body_length(in.body, "body");
    if (in.num_media < 0) {
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("num_media must not be negative: %d", in.num_media)));
    }
}

// receive_handing_off — receive() with the hand-off scope open; closed whatever happens.
static void receive_handing_off(const Inbound &in, MemoryContext caller, HandoffScope *handoff,
                                Outcome *out) {
    handoff_open(handoff);
    PG_TRY();
    { *out = receive(in, caller); }
    PG_FINALLY();
    { handoff_close(); }
    PG_END_TRY();
}

// receive_row — the body of receive_sms and receive_sms_leased: reads the inbound SMS (arguments 0–6),
// decides its fate and returns the one result row. With a hand-off scope, its agent_call may come back leased
// (the last three columns).
static Datum receive_row(FunctionCallInfo fcinfo, HandoffScope *handoff) {
    Inbound in;
    in.provider_account = required_text(fcinfo, 0, "provider_account");
    in.to_number = required_text(fcinfo, 1, "to_number");
    in.from_number = required_text(fcinfo, 2, "from_number");
    in.body = required_text(fcinfo, 3, "body");
    in.message_sid = required_text(fcinfo, 4, "message_sid");
    in.num_media = PG_ARGISNULL(5) ? 0 : PG_GETARG_INT32(5);
    in.request_id = optional_text(fcinfo, 6);
    validate_inbound(in);

    TupleDesc desc;
    if (get_call_result_type(fcinfo, nullptr, &desc) != TYPEFUNC_COMPOSITE) {
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED), errmsg("receive_sms must return a row")));
    }
    desc = BlessTupleDesc(desc);
    MemoryContext caller = CurrentMemoryContext;

    SPI_connect();
    Outcome out = {nullptr, 0, 0, 0, nullptr};
    if (handoff == nullptr) {
        out = receive(in, caller);
    } else {
        receive_handing_off(in, caller, handoff, &out);
    }
    SPI_finish();

    Datum values[8] = {text_datum(out.disposition), Int64GetDatum(out.session_id),
                       Int64GetDatum(out.message_id), Int64GetDatum(out.agent_id),
                       out.reply ? text_datum(out.reply) : (Datum)0};
    bool nulls[8] = {
        false, out.session_id == 0, out.message_id == 0, out.agent_id == 0, out.reply == nullptr, true, true,
        true};
    if (handoff != nullptr && handoff->njobs > 0) {
        values[5] = Int64GetDatum(handoff->jobs[0].job_id);
        values[6] = Int32GetDatum(handoff->jobs[0].attempt);
        values[7] = handoff->jobs[0].payload;
        nulls[5] = nulls[6] = nulls[7] = false;
    }
    return HeapTupleGetDatum(heap_form_tuple(desc, values, nulls));
}

// ---- Batches
// ----------------------------------------------------------------------------------------------------

// The messages of receive_sms_batch, in the order given; an absent key reads as NULL. Every field is read as
// text and converted here, so that a bad value is refused naming its element.
static Statement kReadInbound = {
    "SELECT m.provider_account, m.to_number, m.from_number, m.body, m.message_sid, m.num_media, m.request_id,"
    "       m.take_call"
    "  FROM ROWS FROM (pg_catalog.jsonb_to_recordset($1) AS (provider_account text, to_number text,"
    "                  from_number text, body text, message_sid text, num_media text, request_id text,"
    "                  take_call text))"
    "       WITH ORDINALITY AS m(provider_account, to_number, from_number, body, message_sid, num_media,"
    "                            request_id, take_call, ord)"
    " ORDER BY m.ord",
    1,
    {JSONBOID},
    nullptr};

// Messages per receive_sms_batch call at most (the worker sends up to 100).
constexpr int kReceiveBatchMax = 1000;

struct BatchItem {
    Inbound in;
    bool take_call;  // the worker has room for this message's agent call
    int index;       // position in the array (0-based)
    Outcome out;
    int handed_job;  // index into the hand-off scope's jobs, or -1
};

// Names the message an error is about ("receive_sms_batch messages[3]"), as the CONTEXT line.
static void batch_error_context(void *arg) {
    errcontext("receive_sms_batch messages[%d]", *static_cast<int *>(arg));
}

// require_objects — every element of the array is a JSON object.
static void require_objects(Jsonb *messages) {
    int n = JB_ROOT_COUNT(messages);
    for (int i = 0; i < n; i++) {
        JsonbValue *v = getIthJsonbValueFromContainer(&messages->root, i);
        if (v->type != jbvBinary || !JsonContainerIsObject(v->val.binary.data)) {
            ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                            errmsg("messages[%d] must be a JSON object, not %s", i, jsonb_type_name(v))));
        }
    }
}

static char *batch_text(const SpiResult &rows, uint64 row, int column, const char *field, bool required,
                        MemoryContext context) {
    if (required && rows.is_null(row, column)) {
        ereport(ERROR,
                (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                 errmsg("messages[%llu].%s must not be null", static_cast<unsigned long long>(row), field)));
    }
    return rows.text_copy(row, column, context);
}

// num_media: an integer (a JSON number or its digits as a string), parsed exactly as receive_sms's int
// argument is (the CONTEXT line names the element); absent or null is 0.
static int32 batch_num_media(const char *value) {
    return value == nullptr ? 0 : pg_strtoint32(value);
}

// take_call: true or false; absent or null is false.
static bool batch_take_call(uint64 row, const char *value) {
    if (value == nullptr || strcmp(value, "false") == 0) {
        return false;
    }
    if (strcmp(value, "true") != 0) {
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("messages[%llu].take_call must be true or false: \"%s\"",
                               static_cast<unsigned long long>(row), value)));
    }
    return true;
}

// read_batch — the items of the messages array, copied into `context` and checked in the order given (the
// first bad element is the one reported).
static BatchItem *read_batch(Jsonb *messages, MemoryContext context, int *nitems) {
    require_objects(messages);
    Datum arg[1] = {JsonbPGetDatum(messages)};
    SpiResult read = spi_run(kReadInbound, arg, nullptr, true, 0);
    uint64 rows = read.rows();
    auto *items = static_cast<BatchItem *>(MemoryContextAllocZero(context, sizeof(BatchItem) * (rows + 1)));
    int current = 0;
    ErrorContextCallback error_context = {error_context_stack, batch_error_context, &current};
    error_context_stack = &error_context;
    for (uint64 r = 0; r < rows; r++) {
        BatchItem &item = items[r];
        current = static_cast<int>(r);
        item.in.provider_account = batch_text(read, r, 1, "provider_account", true, context);
        item.in.to_number = batch_text(read, r, 2, "to_number", true, context);
        item.in.from_number = batch_text(read, r, 3, "from_number", true, context);
        item.in.body = batch_text(read, r, 4, "body", true, context);
        item.in.message_sid = batch_text(read, r, 5, "message_sid", true, context);
        item.in.num_media = batch_num_media(batch_text(read, r, 6, "num_media", false, context));
        item.in.request_id = batch_text(read, r, 7, "request_id", false, context);
        item.take_call = batch_take_call(r, batch_text(read, r, 8, "take_call", false, context));
        item.index = static_cast<int>(r);
        item.handed_job = -1;
        validate_inbound(item.in);
    }
    error_context_stack = error_context.previous;
    *nitems = static_cast<int>(rows);
    return items;
}

// Processing order: by phone, then service number, then position. Every row a message locks until commit
// (its phone's rate-limit counters, its session, its opt-out) is keyed by these, so two receive batches that
// share conversations lock them in the same order and do not deadlock over them; one conversation's messages
// keep their order. The first of a phone's rows any message locks is the phone's ceiling counter (shared by
// every tenant: ratelimit.cpp), so rows of one phone with several tenants are taken under it. (Counters
// shared by many conversations are written at the end, in key order: counter_batch.cpp.) An ack batch touches
// sessions in job order, so it can still form a cycle with a receive batch over two shared sessions;
// PostgreSQL breaks it and the worker retries both one by one.
static int compare_items(const void *a, const void *b) {
    auto *x = *static_cast<BatchItem *const *>(a);
    auto *y = *static_cast<BatchItem *const *>(b);
    int c = strcmp(x->in.from_number, y->in.from_number);
    if (c == 0) {
        c = strcmp(x->in.to_number, y->in.to_number);
    }
    return c != 0 ? c : x->index - y->index;
}

// run_batch — receive() for every item in lock order, inside one counter batch and (with a worker) one
// hand-off scope whose budget lets exactly the items with take_call lease their call.
static void run_batch(BatchItem *items, int nitems, HandoffScope *handoff, MemoryContext caller) {
    BatchItem **order = static_cast<BatchItem **>(palloc(sizeof(BatchItem *) * (nitems + 1)));
    for (int i = 0; i < nitems; i++) {
        order[i] = &items[i];
    }
    qsort(order, nitems, sizeof(BatchItem *), compare_items);
    int current = 0;
    ErrorContextCallback context = {error_context_stack, batch_error_context, &current};
    error_context_stack = &context;
    for (int i = 0; i < nitems; i++) {
        BatchItem &item = *order[i];
        current = item.index;
        int before = 0;
        if (handoff != nullptr) {
            before = handoff->njobs;
            handoff->budget = item.take_call ? before + 1 : before;
        }
        item.out = receive(item.in, caller);
        if (handoff != nullptr && handoff->njobs > before) {
            item.handed_job = before;
        }
    }
    error_context_stack = context.previous;
    batch_flush();
}

}  // namespace darkspere

using namespace darkspere;

// darkspere_receive_sms — decides the fate of one inbound SMS; returns exactly one row.
DARKSPERE_FUNCTION(darkspere_receive_sms) {
    PG_RETURN_DATUM(receive_row(fcinfo, nullptr));
}

// darkspere_receive_sms_leased — receive_sms for a worker with room: a routed message's agent_call that may
// run now comes back leased to `worker` (job_id, attempt, payload), unless its agent is in busy_agents.
DARKSPERE_FUNCTION(darkspere_receive_sms_leased) {
    require_handoff_target(fcinfo, 7, 8);
    ArrayType *busy = nullptr;
    if (!PG_ARGISNULL(9)) {
        busy = PG_GETARG_ARRAYTYPE_P(9);
        if (array_contains_nulls(busy)) {
            ereport(ERROR,
                    (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("busy_agents must not contain NULL")));
        }
    }
    HandoffScope handoff;
    handoff_init(&handoff, CurrentMemoryContext, PG_GETARG_DATUM(7), PG_GETARG_DATUM(8), 1, busy);
    PG_RETURN_DATUM(receive_row(fcinfo, &handoff));
}

// darkspere_receive_sms_batch — receive_sms for many messages in one call (one transaction): returns one row
// per message, in the order given (ord from 1), with receive_sms_leased's columns. With a worker, a message
// whose take_call is true may have its agent_call leased to it, unless its agent is in busy_agents.
DARKSPERE_FUNCTION(darkspere_receive_sms_batch) {
    if (PG_ARGISNULL(0)) {
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("messages must not be null")));
    }
    Jsonb *messages = PG_GETARG_JSONB_P(0);
    if (!JB_ROOT_IS_ARRAY(messages) || JB_ROOT_IS_SCALAR(messages)) {
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("messages must be a jsonb array of objects")));
    }
    // Without a worker nothing is handed off, but what is given is still checked.
    if (JB_ROOT_COUNT(messages) > kReceiveBatchMax) {
        ereport(ERROR,
                (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
                 errmsg("messages holds %d elements; at most %d per call", JB_ROOT_COUNT(messages),
                        kReceiveBatchMax),
                 errhint("Split the batch: every message's rows stay locked until the call commits.")));
    }
    bool handing_off = !PG_ARGISNULL(1);
    if (handing_off) {
        require_handoff_target(fcinfo, 1, 2);
    } else if (!PG_ARGISNULL(2)) {
        require_lease(PG_GETARG_INTERVAL_P(2));
    }
    ArrayType *busy = PG_ARGISNULL(3) ? nullptr : PG_GETARG_ARRAYTYPE_P(3);
    if (busy != nullptr && array_contains_nulls(busy)) {
        ereport(ERROR,
                (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("busy_agents must not contain NULL")));
    }
    ReturnSetInfo *rsinfo = reinterpret_cast<ReturnSetInfo *>(fcinfo->resultinfo);
    InitMaterializedSRF(fcinfo, 0);
    MemoryContext caller = CurrentMemoryContext;
    int nelems = JB_ROOT_COUNT(messages);
    HandoffScope handoff;
    if (handing_off) {
        // Room for one leased call per message; run_batch narrows the budget to the message at hand.
        handoff_init(&handoff, caller, PG_GETARG_DATUM(1), PG_GETARG_DATUM(2), nelems, busy);
    }

    SPI_connect();
    int nitems = 0;
    BatchItem *items = read_batch(messages, caller, &nitems);
    batch_open(nitems);
    if (handing_off) {
        handoff_open(&handoff);
    }
    PG_TRY();
    { run_batch(items, nitems, handing_off ? &handoff : nullptr, caller); }
    PG_FINALLY();
    {
        batch_close();
        handoff_close();
    }
    PG_END_TRY();
    SPI_finish();

    for (int i = 0; i < nitems; i++) {
        const BatchItem &item = items[i];
        const Outcome &out = item.out;
        Datum values[9] = {Int32GetDatum(i + 1),
                           text_datum(out.disposition),
                           Int64GetDatum(out.session_id),
                           Int64GetDatum(out.message_id),
                           Int64GetDatum(out.agent_id),
                           out.reply ? text_datum(out.reply) : (Datum)0,
                           0,
                           0,
                           0};
        bool nulls[9] = {false,
                         false,
                         out.session_id == 0,
                         out.message_id == 0,
                         out.agent_id == 0,
                         out.reply == nullptr,
                         true,
                         true,
                         true};
        if (item.handed_job >= 0) {
            const HandedJob &job = handoff.jobs[item.handed_job];
            values[6] = Int64GetDatum(job.job_id);
            values[7] = Int32GetDatum(job.attempt);
            values[8] = job.payload;
            nulls[6] = nulls[7] = nulls[8] = false;
        }
        tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
    }
    return (Datum)0;
}

// darkspere_record_provider_opt_out — Twilio refused a send with error 21610: the phone opted out at the
// carrier. Recorded like a STOP so nothing more is sent until the phone opts in again.
DARKSPERE_FUNCTION(darkspere_record_provider_opt_out) {
    char *service_number = required_text(fcinfo, 0, "service_number");
    char *phone = required_text(fcinfo, 1, "phone");
    require_e164(service_number, "service_number");
    require_non_empty(phone, "phone");
    SPI_connect();
    Datum number_arg[1] = {text_datum(service_number)};
    SpiResult owner = spi_run(kAccountForNumber, number_arg, nullptr, false, 1);
    if (owner.empty()) {
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT),
                        errmsg("no account has service number %s", service_number)));
    }
    int64 account_id = owner.get_int64(0, 1);
    Datum args[6] = {Int64GetDatum(account_id),
                     text_datum(service_number),
                     text_datum(phone),
                     text_datum("provider"),
                     (Datum)0,
                     (Datum)0};
    char nulls[6] = {' ', ' ', ' ', ' ', 'n', 'n'};
    spi_run(kOptOut, args, nulls, false, 0);
    SPI_finish();
    PG_RETURN_VOID();
}
