// src/ext/inbound_batch.cpp — receive_sms_batch: many inbound messages in one call and one transaction.
//
// Each message goes through the same decisions as receive_sms (inbound.cpp), in lock order (by phone, then
// service number), inside one counter batch (counter_batch.cpp) and, with a worker, one hand-off scope.
#include "ext/counter_batch.hpp"
#include "ext/errors.hpp"
#include "ext/handoff.hpp"
#include "ext/inbound.hpp"
#include "ext/jsonb_fields.hpp"
#include "ext/spi_plans.hpp"
#include "ext/validate.hpp"

namespace darkspere {

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
        handoff.sends = false;  // the worker takes each message's leased job for an agent call
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
