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
//      agent is eligible now (tick() routes it later) — or `mcp_not_in_plan` when the account's only agents
//      speak MCP and its plan lost mcp_protocol (the message fails at once, answered by the fallback text).
#include "ext/billing.hpp"
#include "ext/consent.hpp"
#include "ext/errors.hpp"
#include "ext/handoff.hpp"
#include "ext/inbound.hpp"
#include "ext/plan_gate.hpp"
#include "ext/queue.hpp"
#include "ext/ratelimit.hpp"
#include "ext/routing.hpp"
#include "ext/sessions.hpp"
#include "ext/sms_text.hpp"
#include "ext/spi_plans.hpp"
#include "ext/trace.hpp"
#include "ext/validate.hpp"

namespace darkspere {

// Advisory-lock class for MessageSid deduplication ("DSms"); the object id is hashtext(MessageSid).
constexpr int32 kDedupeLockClass = 0x44536d73;
// Advisory-lock class of an account's plan ("DSpl"; object id hashint8(account_id)), in the upgrade script as
// darkspere.plan_change_lock(). A message holds it shared from its first statement to its commit; whatever
// changes what the account's plan allows (accounts.plan, subscriptions.past_due_since, account_features)
// takes it exclusively, by trigger. So no plan change commits in the middle of a message: each message is
// decided and counted under one plan — the one before the change or the one after (test/regress/specs/
// plan_change_during_receive.spec). Shared locks never wait for each other; a message waits only while a plan
// change of its account is being committed.
constexpr int32 kPlanLockClass = 0x4453706c;

// Number → account, its texts and the agent tag the number requires (NULL: any agent). The webhook was
// verified with $2's auth token: it may only speak for numbers that AccountSid owns (provider_account is NOT
// NULL, so no number accepts every sender). Global tables only (on Citus, reference tables: read on the node
// it runs on), because the account is what it finds: every statement after it is pinned to that account.
static Statement kNumberLookup = {
    "SELECT n.account_id, a.help_text, a.opt_out_text, a.opt_in_text, n.agent_tag"
    "  FROM darkspere.numbers n JOIN darkspere.accounts a ON a.account_id = n.account_id"
    " WHERE n.number = $1 AND n.provider_account = $2",
    2,
    {TEXTOID, TEXTOID},
    nullptr};

// The tenant's side of the lookup ($1 the account, $2 our number, $3 the phone): whether the phone has opted
// out of this number, whether the effective plan (held to free past a payment's grace, as
// darkspere.effective_plan) has a hard cap (only then are quotas read), whether the plan lock was taken
// without waiting ($4 its class), whether the account has mcp_protocol now, the priority of its jobs
// (priority_routing), and the rate-limit rules of the message's two hits (columns 6–8 the phone's ceiling, $5
// its scope; 9–11 the tenant's rule, $6 its scope and $7 its subject; NULL when a scope has none). The lock
// is taken by the statement that reads the plan, as the comment of kPlanLockClass requires. What the plan
// and the rules allow is read here, once, so that the statements after it need no subqueries of their own: on
// Citus a statement on one table filtered by account_id is a "fast path" query, planned on the tenant's node
// straight against its shard, while one with subqueries is planned twice (for the distributed table, then
// again from its text for the shard) — docs/scaling.md. On Citus the statement runs on the tenant's node (its
// tables are pinned to the account), and so does the lock, where the plan-change trigger takes it too: on the
// tenant's shards of subscriptions and account_features, and on every node's copy of accounts (a reference
// table).
#define DS_TENANT_LOOKUP(lock) \
    "SELECT EXISTS (SELECT 1 FROM darkspere.opt_outs o"                                                 \
    "                WHERE o.account_id = $1 AND o.service_number = $2 AND o.phone = $3),"              \
    "       p.hard_cap,"                                                                                \
    "       " lock ","                                                                                  \
    "       COALESCE(" DS_FEATURE_OVERRIDE_NOW("$1", "'mcp_protocol'") ", mcp.enabled, false),"         \
    "       CASE WHEN COALESCE(" DS_FEATURE_OVERRIDE_NOW("$1", "'priority_routing'") ", pri.enabled,"   \
    "                          false) THEN -1 ELSE 0 END,"                                              \
    "       ceiling.max_hits, ceiling.window_s, ceiling.block_s,"                                       \
    "       tenant.max_hits, tenant.window_s, tenant.block_s"                                           \
    "  FROM darkspere.plans p"                                                                          \
    "  LEFT JOIN darkspere.plan_features mcp ON mcp.plan = p.plan AND mcp.feature = 'mcp_protocol'"     \
    "  LEFT JOIN darkspere.plan_features pri ON pri.plan = p.plan AND pri.feature = 'priority_routing'" \
    "  LEFT JOIN LATERAL (" DS_LIMIT_RULE_OF("$5", "$3") ") ceiling ON true"                            \
    "  LEFT JOIN LATERAL (" DS_LIMIT_RULE_OF("$6", "$7") ") tenant ON true"                             \
    " WHERE p.plan = " DS_EFFECTIVE_PLAN("$1")
static Statement kTenantLookup = {
    DS_TENANT_LOOKUP("pg_catalog.pg_try_advisory_xact_lock_shared($4, pg_catalog.hashint8($1))"),
    7,
    {INT8OID, TEXTOID, TEXTOID, INT4OID, TEXTOID, TEXTOID, TEXTOID},
    nullptr};

// Waits for a plan change of the account being committed: the same statement with the waiting lock, so that
// on Citus it waits on the tenant's node, where the change holds the lock (a lock statement of its own would
// run on the coordinator, where it never conflicts, and the loop in receive() would spin until the change
// committed). What it reads is not used: it was read before the wait.
static Statement kPlanLockWait = {
    DS_TENANT_LOOKUP("pg_catalog.pg_advisory_xact_lock_shared($4, pg_catalog.hashint8($1)) IS NULL"),
    7,
    {INT8OID, TEXTOID, TEXTOID, INT4OID, TEXTOID, TEXTOID, TEXTOID},
    nullptr};

static Statement kDedupeLock = {
    "SELECT pg_catalog.pg_advisory_xact_lock($1, pg_catalog.hashtext($2))", 2, {INT4OID, TEXTOID}, nullptr};

// Deduplication is per account (messages UNIQUE (message_sid, account_id)): the number told us the account,
// and another tenant's message is never this one's duplicate, nor shown to it.
static Statement kFindBySid = {
    "SELECT message_id, session_id, agent_id FROM darkspere.messages WHERE message_sid = $1 AND account_id = $2",
    2,
    {TEXTOID, INT8OID},
    nullptr};

// $1 account, $2 session, $3 service number, $4 phone, $5 body, $6 status, $7 sid, $8 media, $9 encoding,
// $10 segments, $11 agent, $12 request id. A plain INSERT, one shard's statement on Citus: its trace row is
// written by its own statement (trace_stored) when the message is not routed at once; a routed message is
// traced by its job's trace row instead (enqueue_agent_call), with the agent and the job.
static Statement kInsertInbound = {
    "INSERT INTO darkspere.messages (account_id, session_id, direction, service_number, phone, body, status,"
    "                                message_sid, num_media, encoding, segments, agent_id, request_id)"
    " VALUES ($1, $2, 'in', $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
    " RETURNING message_id",
    12,
    {INT8OID, INT8OID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, INT4OID, TEXTOID, INT4OID, INT8OID,
     TEXTOID},
    nullptr};

int64 store_inbound(const Inbound &in, int64 account_id, int64 session_id, const char *status,
                    const Segments &seg, int64 agent_id, const char *disposition) {
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
    int64 message_id = spi_run(kInsertInbound, args, nulls, false, 1).get_int64(0, 1);
    if (disposition != nullptr) {
        trace_stored(account_id, in.request_id, message_id, disposition, seg.segments);
    }
    return message_id;
}

// limit_rule — the rule in columns first … first + 2 of the tenant lookup's row (max_hits NULL: no rule).
static LimitRule limit_rule(const SpiResult &tenant, int first) {
    bool none;
    Datum max_hits = tenant.get_datum(0, first, &none);
    if (none) {
        return {false, 0, 0, 0};
    }
    return {true, DatumGetInt32(max_hits), tenant.get_int32(0, first + 1), tenant.get_int32(0, first + 2)};
}

Outcome receive(const Inbound &in, MemoryContext caller) {
    Outcome out = {nullptr, 0, 0, 0, nullptr};

    Datum lookup_args[2] = {text_datum(in.to_number), text_datum(in.provider_account)};
    SpiResult number;
    SpiResult tenant;
    int64 account_id;
    for (;;) {
        number = spi_run(kNumberLookup, lookup_args, nullptr, false, 1);
        if (number.empty()) {
            out.disposition = "unknown_number";  // no such number, or not one of this AccountSid's
            return out;
        }
        account_id = number.get_int64(0, 1);
        if (in.account_id != 0 && account_id != in.account_id) {
            ereport(ERROR,
                    (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                     errmsg("to_number %s is not a number of account %lld", in.to_number,
                            static_cast<long long>(in.account_id)),
                     errhint("Look the number's account up again (darkspere.numbers): it may have moved.")));
        }
        Datum tenant_args[7] = {Int64GetDatum(account_id),
                                text_datum(in.to_number),
                                text_datum(in.from_number),
                                Int32GetDatum(kPlanLockClass),
                                text_datum(kPhoneCeilingScope),
                                text_datum(kPhoneScope),
                                text_datum(tenant_subject(account_id, in.from_number))};
        tenant = spi_run(kTenantLookup, tenant_args, nullptr, false, 1);
        if (tenant.empty()) {
            out.disposition = "unknown_number";  // the account was deleted after the first statement
            return out;
        }
        if (tenant.get_bool(0, 3)) {
            break;
        }
        // A plan change of the account is being committed: wait for it, then look again (a new snapshot sees
        // the change, and the number's account if it moved meanwhile).
        spi_run(kPlanLockWait, tenant_args, nullptr, false, 0);
    }
    char *help_text = number.text_copy(0, 2, caller);
    char *opt_out_text = number.text_copy(0, 3, caller);
    char *opt_in_text = number.text_copy(0, 4, caller);
    char *agent_tag = number.text_copy(0, 5, caller);  // nullptr: any agent
    bool opted_out = tenant.get_bool(0, 1);
    bool hard_cap = tenant.get_bool(0, 2);
    bool mcp_allowed = tenant.get_bool(0, 4);
    int32 priority = tenant.get_int32(0, 5);
    PhoneRules rules = {limit_rule(tenant, 6), limit_rule(tenant, 9)};

    Datum lock_args[2] = {Int32GetDatum(kDedupeLockClass), text_datum(in.message_sid)};
    spi_run(kDedupeLock, lock_args, nullptr, false, 0);
    Datum sid_args[2] = {text_datum(in.message_sid), Int64GetDatum(account_id)};
    SpiResult original = spi_run(kFindBySid, sid_args, nullptr, false, 1);
    if (!original.empty()) {
        out.disposition = "duplicate";
        out.message_id = original.get_int64(0, 1);
        out.session_id = original.get_int64(0, 2);
        out.agent_id = original.get_int64(0, 3);
        trace_received(account_id, in.request_id, out.message_id, out.disposition);
        return out;
    }

    Segments seg = count_sms_segments(in.body);
    Keyword keyword = classify_keyword(in.body);
    if (keyword != Keyword::none) {
        return handle_keyword(in, account_id, keyword, seg, opted_out, help_text, opt_out_text, opt_in_text);
    }
    if (opted_out) {
        out.disposition = "opted_out";
        out.message_id = store_inbound(in, account_id, 0, "suppressed", seg, 0, out.disposition);
        usage_add(account_id, "sms_in", seg.segments);
        return out;
    }

    switch (phone_limit_hit(account_id, in.from_number, rules)) {
        case LimitVerdict::limited:
            out.disposition = "rate_limited";
            trace_received(account_id, in.request_id, 0, out.disposition);
            return out;
        case LimitVerdict::blocked:
            out.disposition = "blocked";
            trace_received(account_id, in.request_id, 0, out.disposition);
            return out;
        case LimitVerdict::allowed:
            break;
    }
    if (hard_cap && !quota_allows_inbound(account_id, seg.segments)) {
        out.disposition = "over_quota";
        trace_received(account_id, in.request_id, 0, out.disposition);
        return out;
    }

    SessionRef session = session_get_or_create(account_id, in.to_number, in.from_number);
    session_routing_state(account_id, agent_tag, mcp_allowed, &session);
    int64 agent_id = session.agent_eligible ? session.agent_id : 0;
    // Earlier messages of this session still wait for an agent: this one queues behind them to keep order.
    if (agent_id == 0 && !session.has_queued_messages) {
        agent_id = pick_agent(account_id, agent_tag, nullptr, 0);
        if (agent_id != 0 && agent_id != session.agent_id) {
            session_bind_agent(account_id, session.session_id, agent_id);
        }
    }
    bool routed = agent_id != 0 && !session.has_queued_messages;
    out.session_id = session.session_id;
    // No agent now: waiting is pointless when the plan's gate alone is why (plan_gate.cpp). Read only here.
    if (agent_id == 0 && mcp_gate_blocks(account_id, agent_tag)) {
        out.disposition = "mcp_not_in_plan";
        out.message_id = store_inbound(in, account_id, session.session_id, "failed", seg, 0, out.disposition);
        usage_add(account_id, "sms_in", seg.segments);
        reply_gated(account_id, out.message_id);
        return out;
    }
    out.message_id = store_inbound(in, account_id, session.session_id, routed ? "routed" : "waiting", seg,
                                   routed ? agent_id : 0, routed ? nullptr : "queued");
    usage_add(account_id, "sms_in", seg.segments);
    if (routed) {
        ReceivedTurn turn = {
            seg.segments,
            in.request_id != nullptr ? in.request_id : psprintf("msg-" INT64_FORMAT, out.message_id),
            priority};
        enqueue_agent_call(account_id, session.session_id, out.message_id, agent_id, &turn);
        out.agent_id = agent_id;
        out.disposition = "routed";
    } else {
        out.disposition = "queued";
    }
    return out;
}

void validate_inbound(const Inbound &in) {
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

// receive_row — the body of receive_sms, receive_sms_leased and receive_sms_for: reads the inbound SMS
// (arguments first … first + 6; receive_sms_for's account before them), decides its fate and returns the one
// result row. With a hand-off scope, its agent_call may come back leased (the last three columns).
static Datum receive_row(FunctionCallInfo fcinfo, HandoffScope *handoff, int first = 0,
                         int64 account_id = 0) {
    Inbound in;
    in.provider_account = required_text(fcinfo, first, "provider_account");
    in.to_number = required_text(fcinfo, first + 1, "to_number");
    in.from_number = required_text(fcinfo, first + 2, "from_number");
    in.body = required_text(fcinfo, first + 3, "body");
    in.message_sid = required_text(fcinfo, first + 4, "message_sid");
    in.num_media = PG_ARGISNULL(first + 5) ? 0 : PG_GETARG_INT32(first + 5);
    in.request_id = optional_text(fcinfo, first + 6);
    in.account_id = account_id;
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

}  // namespace darkspere

using namespace darkspere;

// darkspere_receive_sms — decides the fate of one inbound SMS; returns exactly one row.
DARKSPERE_FUNCTION(darkspere_receive_sms) {
    PG_RETURN_DATUM(receive_row(fcinfo, nullptr));
}

// darkspere_receive_sms_for — receive_sms keyed by the number's account (account_id first): on Citus,
// distribute() registers it with create_distributed_function, so that Citus runs the whole call on the node
// that holds the account's shards. A number of another account is refused (22023).
DARKSPERE_FUNCTION(darkspere_receive_sms_for) {
    int64 account_id = required_int64(fcinfo, 0, "account_id");
    if (account_id <= 0) {
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("account_id must be positive: %lld", static_cast<long long>(account_id))));
    }
    PG_RETURN_DATUM(receive_row(fcinfo, nullptr, 1, account_id));
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
    handoff.sends =
        false;  // its result has no kind column: the worker takes what it returns for an agent call
    PG_RETURN_DATUM(receive_row(fcinfo, &handoff));
}
