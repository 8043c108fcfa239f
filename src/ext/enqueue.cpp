// src/ext/enqueue.cpp — putting work on the durable job queue: a turn's agent_call, and replies (sms_send).
//
// A turn's agent call and each message of a reply are jobs (darkspere.jobs). With a hand-off scope open
// (handoff.cpp) a job that may run now is stored already leased to the calling worker; otherwise it waits for
// a claim (claim.cpp) and the worker is woken.
#include "ext/billing.hpp"
#include "ext/common_bridge.hpp"
#include "ext/consent.hpp"
#include "ext/errors.hpp"
#include "ext/handoff.hpp"
#include "ext/notify.hpp"
#include "ext/queue.hpp"
#include "ext/ratelimit.hpp"
#include "ext/routing.hpp"
#include "ext/settings.hpp"
#include "ext/sms_text.hpp"
#include "ext/spi_plans.hpp"
#include "ext/trace.hpp"

namespace darkspere {

// $6 hand-off worker, $7 hand-off lease: with a worker, a call that may run now (no earlier call of the
// session pending or running) is stored already leased to it as attempt 1. The payload keeps only the turn's
// trace request id ($8, else the message's: DS_TRACE_REQUEST): the claim traces the call under it without
// reading the message (on Citus that read would come before the trace's write on the tenant's node, and Citus
// then commits the node's write in one phase; docs/scaling.md). The rest of the payload is built at claim
// time. $9 is the account's priority (DS_PRIORITY_OF_ACCOUNT, read by the caller): the statement reads the
// queue only, which on Citus is a plain table of the node, so Citus does not plan it at all.
static Statement kInsertAgentCall = {
    "INSERT INTO darkspere.jobs (account_id, kind, max_attempts, idempotency_key, ordering_key, session_id,"
    "                            message_id, agent_id, tried_agents, state, attempt, claimed_by, lease_until,"
    "                            priority, payload)"
    " SELECT $1, 'agent_call', $5, 'agent_call:' || $3, 'session:' || $2, $2, $3, $4, ARRAY[$4],"
    "        CASE WHEN h.now THEN 'running' ELSE 'pending' END, CASE WHEN h.now THEN 1 ELSE 0 END,"
    "        CASE WHEN h.now THEN $6 END, CASE WHEN h.now THEN pg_catalog.clock_timestamp() + $7 END, $9,"
    "        pg_catalog.jsonb_build_object('request_id', COALESCE($8::text, 'msg-' || $3::text))"
    "   FROM (SELECT $6::text IS NOT NULL"
    "                AND NOT EXISTS (SELECT 1 FROM darkspere.jobs o WHERE o.ordering_key = 'session:' || $2"
    "                                   AND o.state IN ('pending', 'running')) AS now) h"
    " RETURNING job_id, state = 'running' AS running, attempt",
    9,
    {INT8OID, INT8OID, INT8OID, INT8OID, INT4OID, TEXTOID, INTERVALOID, TEXTOID, INT4OID},
    nullptr};

// The account's job priority, for a turn routed later (tick()): receive_sms reads it with the plan.
static Statement kAccountPriority = {"SELECT " DS_PRIORITY_OF_ACCOUNT, 1, {INT8OID}, nullptr};

// The turn's trace, in one row: `received` (routed at once by receive_sms: $5 the segments) or `queued`
// (routed later by tick(): $5 NULL), plus, handed off, `agent_call_started` (queue wait 0). One row instead
// of received + routed + queued keeps the hot path's cost of tracing to one heap row and its index entries
// (docs/benchmarks.md section 5). $1 account, $2 request id, $3 agent, $4 job, $5 segments, $6 message,
// $7 session; handed off also $8 attempt, $9 worker. Not part of the job's INSERT: jobs and trace_events live
// on different nodes on Citus, and a data-modifying CTE's rows would go to every node as an intermediate
// result.
#define DS_AGENT_CALL_TRACE_ROW                                                                    \
    "($1, $2, CASE WHEN $5::int IS NULL THEN 'queued' ELSE 'received' END, $3::bigint, NULL::int," \
    " CASE WHEN $5::int IS NULL"                                                                   \
    "      THEN pg_catalog.jsonb_build_object('job_id', $4::bigint, 'kind', 'agent_call')"         \
    "      ELSE pg_catalog.jsonb_build_object('disposition', 'routed', 'message_id', $6::bigint,"  \
    "               'segments', $5::int, 'session_id', $7::bigint, 'job_id', $4::bigint) END)"
#define DS_TRACE_COLUMNS \
    "INSERT INTO darkspere.trace_events (account_id, request_id, step, agent_id, latency_ms, detail)"
static Statement kTraceAgentCall = {DS_TRACE_COLUMNS " VALUES " DS_AGENT_CALL_TRACE_ROW,
                                    7,
                                    {INT8OID, TEXTOID, INT8OID, INT8OID, INT4OID, INT8OID, INT8OID},
                                    nullptr};
static Statement kTraceAgentCallHanded = {
    DS_TRACE_COLUMNS
    " VALUES " DS_AGENT_CALL_TRACE_ROW
    ", ($1, $2, 'agent_call_started', $3, 0, pg_catalog.jsonb_build_object('job_id', $4::bigint,"
    "   'attempt', $8::int, 'worker', $9::text, 'handoff', true))",
    9,
    {INT8OID, TEXTOID, INT8OID, INT8OID, INT4OID, INT8OID, INT8OID, INT4OID, TEXTOID},
    nullptr};

static Statement kMarkRouted = {
    "UPDATE darkspere.messages SET status = 'routed', agent_id = $2, updated_at = pg_catalog.now()"
    " WHERE message_id = $1 AND account_id = $3",
    3,
    {INT8OID, INT8OID, INT8OID},
    nullptr};

// $1 account, $2 session, $3 service number, $4 phone, $5 body, $6 status, $7 encoding, $8 segments,
// $9 agent, $10 reply_to, $11 request id, $12 max attempts, $13 available at, $14 hand-off worker,
// $15 hand-off lease, $16 the whole reply's length in bytes when this message is where it was cut, $17 the
// account's job priority (DS_PRIORITY_OF_ACCOUNT, read once per reply).
// Stores one outbound message and, unless it is suppressed, its sms_send job with everything the worker
// needs. With a hand-off worker, a job that may run now (not held by the rate limit, no earlier send to the
// same phone pending or running) is stored already leased to that worker as attempt 1; otherwise it waits
// for a claim.
// The reply's trace rows are a statement of their own (kTraceReply): as a CTE here, Citus would copy their
// rows to every node. This statement reaches the tenant's node (the message) and the coordinator's `jobs`.
static Statement kInsertReply = {
    "WITH m AS ("
    "  INSERT INTO darkspere.messages (account_id, session_id, direction, service_number, phone, body,"
    "                                  status, encoding, segments, agent_id, reply_to, request_id,"
    "                                  reply_truncated_from_bytes)"
    "  VALUES ($1, $2, 'out', $3, $4, $5, $6, $7, $8, $9, $10, $11, $16)"
    "  RETURNING message_id, request_id, reply_to),"
    " h AS (SELECT $14::text IS NOT NULL AND $13::timestamptz IS NULL"
    "              AND NOT EXISTS (SELECT 1 FROM darkspere.jobs o"
    "                               WHERE o.ordering_key = 'sms:' || $3 || ':' || $4"
    "                                 AND o.state IN ('pending', 'running')) AS now),"
    " j AS ("
    " INSERT INTO darkspere.jobs (account_id, kind, max_attempts, idempotency_key, ordering_key, session_id,"
    "                             message_id, available_at, last_error, payload, state, attempt, claimed_by,"
    "                             lease_until, priority)"
    " SELECT $1, 'sms_send', $12, 'sms_send:' || m.message_id, 'sms:' || $3 || ':' || $4, $2, m.message_id,"
    "        COALESCE($13, pg_catalog.clock_timestamp()),"
    "        CASE WHEN $13 IS NOT NULL THEN 'held by the phone_out rate limit until ' || $13 END,"
    "        pg_catalog.jsonb_build_object('message_id', m.message_id, 'account_id', $1,"
    "            'provider_account',"
    "                (SELECT n.provider_account FROM darkspere.numbers n WHERE n.number = $3),"
    "            'from', $3, 'to', $4, 'body', $5, 'request_id', " DS_TRACE_REQUEST
    "),"
    "        CASE WHEN h.now THEN 'running' ELSE 'pending' END, CASE WHEN h.now THEN 1 ELSE 0 END,"
    "        CASE WHEN h.now THEN $14 END,"
    "        CASE WHEN h.now THEN pg_catalog.clock_timestamp() + $15 END, $17"
    "   FROM m, h WHERE $6 = 'pending'"
    " RETURNING job_id, state = 'running' AS running, attempt, payload)"
    " SELECT j.job_id, j.running, j.attempt, j.payload, m.message_id, " DS_TRACE_REQUEST
    "   FROM m LEFT JOIN j ON true",
    17,
    {INT8OID, INT8OID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, INT4OID, INT8OID, INT8OID, TEXTOID,
     INT4OID, TIMESTAMPTZOID, TEXTOID, INTERVALOID, INT8OID, INT4OID},
    nullptr};

// A stored reply's trace: `reply_stored` (`fallback_stored` when no agent wrote it) and, handed off,
// `sms_send_started`. $1 account, $2 trace request id, $3 agent, $4 message, $5 status, $6 segments, $7 job,
// $8 truncated from bytes, $9 held until, $10 attempt, $11 hand-off worker (NULL: not handed off).
static Statement kTraceReply = {
    "INSERT INTO darkspere.trace_events (account_id, request_id, step, agent_id, detail)"
    " SELECT $1, $2, s.step, $3, s.detail"
    "   FROM (VALUES"
    "      (1, CASE WHEN $3::bigint IS NULL THEN 'fallback_stored' ELSE 'reply_stored' END,"
    "          pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object('message_id', $4::bigint,"
    "              'status', $5::text, 'segments', $6::int, 'job_id', $7::bigint,"
    "              'truncated_from_bytes', $8::bigint, 'held_until', $9::timestamptz))),"
    "      (2, 'sms_send_started', pg_catalog.jsonb_build_object('job_id', $7::bigint, 'attempt', $10::int,"
    "          'message_id', $4::bigint, 'worker', $11::text, 'handoff', true))) s(ord, step, detail)"
    "  WHERE s.ord = 1 OR $11::text IS NOT NULL ORDER BY s.ord",
    11,
    {INT8OID, TEXTOID, INT8OID, INT8OID, TEXTOID, INT4OID, INT8OID, INT8OID, TIMESTAMPTZOID, INT4OID,
     TEXTOID},
    nullptr};

static int32 account_priority(int64 account_id) {
    Datum args[1] = {Int64GetDatum(account_id)};
    return spi_run(kAccountPriority, args, nullptr, true, 1).get_int32(0, 1);
}

int64 enqueue_agent_call(int64 account_id, int64 session_id, int64 message_id, int64 agent_id,
                         const ReceivedTurn *received) {
    Datum worker = (Datum)0, lease = (Datum)0;
    bool handoff = handoff_lease(agent_id, &worker, &lease);
    const char *request_id =
        received != nullptr ? received->request_id : trace_request(account_id, message_id);
    int32 priority = received != nullptr ? received->priority : account_priority(account_id);
    Datum args[9] = {Int64GetDatum(account_id),
                     Int64GetDatum(session_id),
                     Int64GetDatum(message_id),
                     Int64GetDatum(agent_id),
                     Int32GetDatum(agent_call_max_attempts),
                     worker,
                     lease,
                     request_id != nullptr ? text_datum(request_id) : (Datum)0,
                     Int32GetDatum(priority)};
    char nulls[9] = {
        ' ', ' ', ' ', ' ', ' ', null_flag(!handoff), null_flag(!handoff), null_flag(request_id == nullptr),
        ' '};
    SpiResult job = spi_run(kInsertAgentCall, args, nulls, false, 1);
    bool handed = job.get_bool(0, 2);
    int64 job_id = job.get_int64(0, 1);
    int32 attempt = job.get_int32(0, 3);
    if (request_id != nullptr) {
        Datum trace[9] = {Int64GetDatum(account_id),
                          text_datum(request_id),
                          Int64GetDatum(agent_id),
                          Int64GetDatum(job_id),
                          received != nullptr ? Int32GetDatum(received->segments) : (Datum)0,
                          Int64GetDatum(message_id),
                          Int64GetDatum(session_id),
                          Int32GetDatum(attempt),
                          worker};
        char trace_nulls[9] = {' ', ' ', ' ', ' ', null_flag(received == nullptr), ' ', ' ', ' ', ' '};
        spi_run(handed ? kTraceAgentCallHanded : kTraceAgentCall, trace, trace_nulls, false, 0);
    }
    agent_load_add(account_id, agent_id, 1);
    Datum payload = handed ? build_agent_payload(account_id, message_id, agent_id) : (Datum)0;
    if (payload != (Datum)0) {
        handoff_record(job_id, attempt, "agent_call", payload);
    } else if (!handed) {
        notify_worker();
    }
    return agent_id;
}

int64 route_message(int64 account_id, int64 session_id, int64 message_id, int64 agent_id) {
    Datum args[3] = {Int64GetDatum(message_id), Int64GetDatum(agent_id), Int64GetDatum(account_id)};
    spi_run(kMarkRouted, args, nullptr, false, 0);
    return enqueue_agent_call(account_id, session_id, message_id, agent_id);
}

// plan_or_raise — the messages of a reply within darkspere.max_reply_segments (common/reply_chunks.hpp): one
// pass that stops at the budget, so a reply of megabytes costs what its first messages cost.
static int plan_or_raise(const char *body, size_t body_len, bridge::ReplyChunk *chunks, bool *truncated) {
    int nchunks = 0;
    check_bridge_status(bridge::plan_reply(body, body_len, max_reply_segments, chunks, kMaxReplySegmentsLimit,
                                           &nchunks, truncated),
                        "reply");
    return nchunks;
}

void enqueue_reply(int64 account_id, int64 session_id, int64 reply_to, const char *service_number,
                   const char *phone, const char *body, size_t body_len, int64 agent_id,
                   const char *request_id, const ReplyChecks *checks) {
    bool known = checks != nullptr && checks->known;
    bool opted_out = known ? checks->opted_out : is_opted_out(account_id, service_number, phone);
    bool capped = known ? checks->hard_cap : true;  // unknown: let the quota check find out
    bool queued = false;                            // a job waits for a claim: wake the worker
    int32 priority = 0;                             // of the sms_send jobs: read once, when one is stored
    bool priority_read = false;
    bridge::ReplyChunk chunks[kMaxReplySegmentsLimit];
    bool truncated = false;
    int nchunks = plan_or_raise(body, body_len, chunks, &truncated);
    for (int i = 0; i < nchunks; i++) {
        char *chunk = pnstrdup(body + chunks[i].offset, chunks[i].length);
        // The message where the reply was cut records how long the whole reply was (bytes: counting its
        // characters would mean reading all of it).
        bool cut_here = truncated && i == nchunks - 1;
        const Segments &seg = chunks[i].segments;
        const char *status = "pending";
        TimestampTz available_at = 0;
        if (opted_out || (capped && !quota_allows_outbound(account_id, seg.segments))) {
            status = "suppressed";  // never an SMS to an opted-out phone, nor past a hard cap
        } else if (rate_limit_hit(kPhoneOutScope, tenant_subject(account_id, phone), 1, &available_at) ==
                   LimitVerdict::allowed) {
            available_at = 0;  // send now
        }
        Datum worker = (Datum)0, lease = (Datum)0;
        bool handoff =
            strcmp(status, "pending") == 0 && available_at == 0 && handoff_lease(0, &worker, &lease);
        if (!priority_read && strcmp(status, "pending") == 0) {
            priority = account_priority(account_id);
            priority_read = true;
        }
        Datum args[17] = {Int64GetDatum(account_id),
                          Int64GetDatum(session_id),
                          text_datum(service_number),
                          text_datum(phone),
                          text_datum(chunk),
                          text_datum(status),
                          text_datum(seg.ucs2 ? "UCS-2" : "GSM-7"),
                          Int32GetDatum(seg.segments),
                          Int64GetDatum(agent_id),
                          Int64GetDatum(reply_to),
                          request_id ? text_datum(request_id) : (Datum)0,
                          Int32GetDatum(sms_send_max_attempts),
                          TimestampTzGetDatum(available_at),
                          worker,
                          lease,
                          Int64GetDatum(static_cast<int64>(body_len)),
                          Int32GetDatum(priority)};
        char nulls[17] = {' ',
                          null_flag(session_id == 0),
                          ' ',
                          ' ',
                          ' ',
                          ' ',
                          ' ',
                          ' ',
                          null_flag(agent_id == 0),
                          null_flag(reply_to == 0),
                          null_flag(request_id == nullptr),
                          ' ',
                          null_flag(available_at == 0),
                          null_flag(!handoff),
                          null_flag(!handoff),
                          null_flag(!cut_here),
                          ' '};
        SpiResult stored = spi_run(kInsertReply, args, nulls, false, 0);
        bool no_job;
        Datum job_id = stored.get_datum(0, 1, &no_job);
        bool running = !no_job && stored.get_bool(0, 2);
        bool isnull;
        Datum trace[11] = {Int64GetDatum(account_id),
                           stored.get_datum(0, 6, &isnull),
                           Int64GetDatum(agent_id),
                           stored.get_datum(0, 5, &isnull),
                           text_datum(status),
                           Int32GetDatum(seg.segments),
                           job_id,
                           Int64GetDatum(static_cast<int64>(body_len)),
                           TimestampTzGetDatum(available_at),
                           Int32GetDatum(stored.get_int32(0, 3)),
                           worker};
        char trace_nulls[11] = {' ',
                                ' ',
                                null_flag(agent_id == 0),
                                ' ',
                                ' ',
                                ' ',
                                null_flag(no_job),
                                null_flag(!cut_here),
                                null_flag(available_at == 0),
                                ' ',
                                null_flag(!running)};
        spi_run(kTraceReply, trace, trace_nulls, false, 0);
        if (no_job) {
            continue;  // suppressed: no job
        }
        if (running) {
            handoff_record(DatumGetInt64(job_id), stored.get_int32(0, 3), "sms_send",
                           stored.get_datum(0, 4, &isnull));
        } else {
            queued = true;
        }
    }
    if (queued) {
        notify_worker();
    }
}

void enqueue_fallback_reply(const SpiResult &failed) {
    MemoryContext caller = CurrentMemoryContext;
    char *direction = failed.text_copy(0, 7, caller);
    char *fallback = failed.text_copy(0, 8, caller);
    if (strcmp(direction, "in") != 0 || fallback == nullptr || fallback[0] == '\0') {
        return;
    }
    enqueue_reply(failed.get_int64(0, 2), failed.get_int64(0, 3), failed.get_int64(0, 1),
                  failed.text_copy(0, 4, caller), failed.text_copy(0, 5, caller), fallback, 0,
                  failed.text_copy(0, 6, caller));
}

}  // namespace darkspere
