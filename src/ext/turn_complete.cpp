// src/ext/turn_complete.cpp — what a completed job of a text stores (ack.cpp's job_complete calls it): the
// agent's answer (the turn answered, its session touched, the reply cut into SMS and queued, or the fallback
// text) and the provider's answer to a send (sid, status, segments, and the delivery callbacks that came
// first). Every statement names the job's account; the trace rows are statements of their own, so that on
// Citus each ack stays on the tenant's node (docs/scaling.md, "A text's whole path on its tenant's node").
#include "ext/turn_complete.hpp"

#include "ext/billing.hpp"
#include "ext/delivery.hpp"
#include "ext/errors.hpp"
#include "ext/health.hpp"
#include "ext/jsonb_fields.hpp"
#include "ext/queue.hpp"
#include "ext/routing.hpp"
#include "ext/spi_plans.hpp"
#include "ext/trace.hpp"

#include <cmath>

namespace darkspere {

// Marks the turn answered and reads what the reply needs: the account's fallback text, whether the phone
// opted out, whether the plan has a hard cap (only then is the quota read) and the turn's trace request id.
// Touching the session also serialises replies of one session, which keeps hand-offs of their sends in order.
// $2 is the job's account: every tenant table is read by it and the rest are reference tables, so Citus sends
// the whole statement to the tenant's node. The opt-out is a join, not a correlated EXISTS (which Citus
// refuses beside a CTE).
static Statement kAnswered = {
    "WITH m AS (UPDATE darkspere.messages SET status = 'answered', updated_at = pg_catalog.now()"
    "            WHERE message_id = $1 AND account_id = $2"
    "            RETURNING account_id, session_id, service_number, phone, request_id, message_id, reply_to),"
    "     s AS (UPDATE darkspere.sessions SET last_activity_at = pg_catalog.now()"
    "            WHERE account_id = $2 AND session_id = (SELECT session_id FROM m))"
    " SELECT m.account_id, m.session_id, m.service_number, m.phone, m.request_id, a.fallback_text,"
    "        o.phone IS NOT NULL, p.hard_cap, " DS_TRACE_REQUEST
    "   FROM m JOIN darkspere.accounts a ON a.account_id = m.account_id"
    "   JOIN darkspere.plans p ON p.plan = a.plan"
    "   LEFT JOIN darkspere.opt_outs o ON o.account_id = $2 AND o.service_number = m.service_number"
    "        AND o.phone = m.phone",
    2,
    {INT8OID, INT8OID},
    nullptr};

// The answered turn's trace row, `agent_call_finished` ($1 account, $2 trace request id, $3 agent, $4 latency
// reported by the worker, $5 job, $6 attempt, $7 message). A statement of its own, not a third CTE of
// kAnswered: Citus would copy the CTE's rows to every node as an intermediate result, making each ack a
// two-phase commit over all of them.
static Statement kTraceAnswered = {
    "INSERT INTO darkspere.trace_events (account_id, request_id, step, agent_id, latency_ms, detail)"
    " VALUES ($1, $2, 'agent_call_finished', $3, $4, pg_catalog.jsonb_build_object('ok', true,"
    "         'job_id', $5::bigint, 'attempt', $6::int, 'message_id', $7::bigint))",
    7,
    {INT8OID, TEXTOID, INT8OID, INT4OID, INT8OID, INT4OID, INT8OID},
    nullptr};

// Stores the provider's answer ($2 sid, $3 status, $4 segments) on the reply message $1 of account $5 and
// returns what its trace needs (kTraceSent): a statement Citus sends whole to the tenant's node.
static Statement kSent = {
    "UPDATE darkspere.messages m SET message_sid = COALESCE($2, message_sid),"
    "       status = CASE WHEN delivery_rank = 0 THEN COALESCE($3, 'queued') ELSE status END,"
    "       segments = COALESCE($4, segments), updated_at = pg_catalog.now()"
    " WHERE message_id = $1 AND account_id = $5"
    " RETURNING account_id, segments, " DS_TRACE_REQUEST ", reply_to, agent_id",
    5,
    {INT8OID, TEXTOID, TEXTOID, INT4OID, INT8OID},
    nullptr};

// The send's trace: `sms_send_finished` (latency: the Twilio request as the worker timed it, $4) and, for the
// first SMS of a reply to an inbound message ($11), `replied` (latency: since that message was received; $12
// the time of the ack, a parameter because Citus refuses volatile functions in distributed statements).
// $1 account, $2 trace request id, $3 agent, $5 job, $6 attempt, $7 reply message, $8 sid, $9 status,
// $10 segments. Every table is read by the account: on Citus the rows are read and written on the tenant's
// node only.
static Statement kTraceSent = {
    "INSERT INTO darkspere.trace_events (account_id, request_id, step, agent_id, latency_ms, detail)"
    " SELECT $1, $2, s.step, $3, s.latency_ms, s.detail"
    "   FROM (VALUES"
    "           (1, 'sms_send_finished', $4::int, pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object("
    "               'ok', true, 'job_id', $5::bigint, 'attempt', $6::int, 'message_id', $7::bigint,"
    "               'sid', $8::text, 'status', $9::text, 'segments', $10::int))),"
    "           (2, 'replied', (SELECT GREATEST(0, pg_catalog.round(EXTRACT(epoch FROM"
    "                               $12::timestamptz - i.created_at) * 1000))::int"
    "                             FROM darkspere.messages i WHERE i.account_id = $1 AND i.message_id = $11),"
    "               pg_catalog.jsonb_build_object('message_id', $11::bigint, 'reply_message_id', $7::bigint)))"
    "        s(ord, step, latency_ms, detail)"
    "  WHERE s.ord = 1 OR ($11::bigint IS NOT NULL AND NOT EXISTS ("
    "        SELECT 1 FROM darkspere.trace_events e WHERE e.account_id = $1"
    "           AND e.request_id = $2 AND e.step = 'replied'))"
    "  ORDER BY s.ord",
    12,
    {INT8OID, TEXTOID, INT8OID, INT4OID, INT8OID, INT4OID, INT8OID, TEXTOID, TEXTOID, INT4OID, INT8OID,
     TIMESTAMPTZOID},
    nullptr};

// result_latency — the result's latency_ms when it is a number (clamped to 0 … INT32_MAX, rounded).
bool result_latency(Jsonb *result, int32 *latency_ms) {
    JsonbValue *latency_value = jsonb_key(result, "latency_ms");
    if (latency_value == nullptr || latency_value->type != jbvNumeric) {
        return false;
    }
    *latency_ms = static_cast<int32>(
        lround(Min(Max(jsonb_number(latency_value), 0.0), static_cast<double>(PG_INT32_MAX))));
    return true;
}

void complete_agent_call(int64 job_id, int32 attempt, int64 account_id, int64 message_id, int64 agent_id,
                         Jsonb *result) {
    MemoryContext caller = CurrentMemoryContext;
    // The agent's answer: reply a string or null (or missing), latency when a number (clamped to int range).
    JsonbValue *reply_value = jsonb_key(result, "reply");
    if (reply_value != nullptr && reply_value->type != jbvString && reply_value->type != jbvNull) {
        ereport(ERROR,
                (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                 errmsg("result.reply must be a string or null, not %s", jsonb_type_name(reply_value))));
    }
    // Read in place: a reply may be megabytes, of which only the first messages are ever looked at.
    const char *reply =
        reply_value != nullptr && reply_value->type == jbvString ? reply_value->val.string.val : nullptr;
    size_t reply_len = reply != nullptr ? reply_value->val.string.len : 0;
    int32 latency_ms = 0;
    bool latency_known = result_latency(result, &latency_ms);

    agent_load_add(account_id, agent_id, -1);
    health_record(account_id, agent_id, true, latency_ms, latency_known);

    Datum args[2] = {Int64GetDatum(message_id), Int64GetDatum(account_id)};
    SpiResult turn = spi_run(kAnswered, args, nullptr, false, 1);
    if (turn.empty()) {
        return;  // the message is gone (account deleted): nothing to answer
    }
    int64 session_id = turn.get_int64(0, 2);
    char *service_number = turn.text_copy(0, 3, caller);
    char *phone = turn.text_copy(0, 4, caller);
    char *request_id = turn.text_copy(0, 5, caller);
    char *fallback = turn.text_copy(0, 6, caller);
    Datum trace[7] = {Int64GetDatum(account_id), text_datum(turn.text_copy(0, 9, caller)),
                      Int64GetDatum(agent_id),   Int32GetDatum(latency_ms),
                      Int64GetDatum(job_id),     Int32GetDatum(attempt),
                      Int64GetDatum(message_id)};
    char trace_nulls[7] = {' ', ' ', null_flag(agent_id == 0), null_flag(!latency_known), ' ', ' ', ' '};
    spi_run(kTraceAnswered, trace, trace_nulls, false, 0);
    ReplyChecks checks = {true, turn.get_bool(0, 7), turn.get_bool(0, 8)};
    usage_add(account_id, "agent_messages", 1);

    if (reply != nullptr && reply_len > 0) {
        enqueue_reply(account_id, session_id, message_id, service_number, phone, reply, reply_len, agent_id,
                      request_id, &checks);
    } else if (reply == nullptr && fallback != nullptr && fallback[0] != '\0') {
        // The agent answered without usable text; "" would have meant "send nothing".
        enqueue_reply(account_id, session_id, message_id, service_number, phone, fallback, 0, request_id,
                      &checks);
    } else {
        trace_no_reply(account_id, request_id, message_id, agent_id,
                       reply != nullptr ? "empty_reply" : "no_reply_no_fallback");
    }
}

void complete_sms_send(int64 job_id, int32 attempt, int64 account_id, int64 message_id, Jsonb *result) {
    // The provider's answer: sid and status as text, segments when a number from 1 to 1000.
    char *sid = jsonb_text(jsonb_key(result, "sid"));
    char *status = jsonb_text(jsonb_key(result, "status"));
    JsonbValue *segments_value = jsonb_key(result, "segments");
    bool segments_known = false;
    int32 segments = 0;
    if (segments_value != nullptr && segments_value->type == jbvNumeric) {
        double n = jsonb_number(segments_value);
        segments_known = n >= 1 && n <= 1000;
        segments = segments_known ? static_cast<int32>(lround(n)) : 0;
    }

    int32 latency_ms = 0;
    bool latency_known = result_latency(result, &latency_ms);
    Datum args[5] = {Int64GetDatum(message_id), sid ? text_datum(sid) : (Datum)0,
                     status ? text_datum(status) : (Datum)0, Int32GetDatum(segments),
                     Int64GetDatum(account_id)};
    char nulls[5] = {' ', null_flag(sid == nullptr), null_flag(status == nullptr), null_flag(!segments_known),
                     ' '};
    SpiResult sent = spi_run(kSent, args, nulls, false, 1);
    if (sent.empty()) {
        return;
    }
    bool isnull;
    Datum reply_to = sent.get_datum(0, 4, &isnull);
    bool no_reply_to = isnull;
    Datum agent = sent.get_datum(0, 5, &isnull);
    bool no_agent = isnull;
    Datum stored_segments = sent.get_datum(0, 2, &isnull);
    bool no_segments = isnull;
    Datum trace[12] = {Int64GetDatum(account_id),
                       sent.get_datum(0, 3, &isnull),
                       agent,
                       Int32GetDatum(latency_ms),
                       Int64GetDatum(job_id),
                       Int32GetDatum(attempt),
                       Int64GetDatum(message_id),
                       sid ? text_datum(sid) : (Datum)0,
                       status ? text_datum(status) : (Datum)0,
                       stored_segments,
                       reply_to,
                       TimestampTzGetDatum(GetCurrentTimestamp())};
    char trace_nulls[12] = {' ',
                            ' ',
                            null_flag(no_agent),
                            null_flag(!latency_known),
                            ' ',
                            ' ',
                            ' ',
                            null_flag(sid == nullptr),
                            null_flag(status == nullptr),
                            null_flag(no_segments),
                            null_flag(no_reply_to),
                            ' '};
    spi_run(kTraceSent, trace, trace_nulls, false, 0);
    usage_add(sent.get_int64(0, 1), "sms_out", Max(sent.get_int32(0, 2), 1));
    if (sid != nullptr) {
        apply_pending_delivery_events(sid, account_id);
    }
}

}  // namespace darkspere
