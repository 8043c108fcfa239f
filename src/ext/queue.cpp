// src/ext/queue.cpp — the durable job queue: enqueue, claim with a lease, fenced acks, retries, dead letters.
//
// A job is claimed by one worker for a lease (FOR UPDATE SKIP LOCKED, one short statement); the worker does
// its HTTP after that transaction committed, then acks with (job_id, attempt). An ack whose attempt no longer
// holds the lease changes nothing, so a worker that lost its lease can never overwrite a newer attempt. Jobs
// that share an ordering_key (one session's agent calls, one phone's replies) run one at a time in job_id
// order.
#include "ext/common_bridge.hpp"
#include "ext/darkspere.hpp"
#include "ext/errors.hpp"
#include "ext/spi_plans.hpp"

#include <cmath>

extern "C" {
#include "common/pg_prng.h"
}

namespace darkspere {

// ---- Enqueue
// ---------------------------------------------------------------------------------------------------

// $6 hand-off worker, $7 hand-off lease: with a worker, a call that may run now (no earlier call of the
// session pending or running) is stored already leased to it as attempt 1.
static Statement kInsertAgentCall = {
    "INSERT INTO darkspere.jobs (account_id, kind, max_attempts, idempotency_key, ordering_key, session_id,"
    "                            message_id, agent_id, tried_agents, state, attempt, claimed_by, lease_until)"
    " SELECT $1, 'agent_call', $5, 'agent_call:' || $3, 'session:' || $2, $2, $3, $4, ARRAY[$4],"
    "        CASE WHEN h.now THEN 'running' ELSE 'pending' END, CASE WHEN h.now THEN 1 ELSE 0 END,"
    "        CASE WHEN h.now THEN $6 END, CASE WHEN h.now THEN pg_catalog.clock_timestamp() + $7 END"
    "   FROM (SELECT $6::text IS NOT NULL"
    "                AND NOT EXISTS (SELECT 1 FROM darkspere.jobs o WHERE o.ordering_key = 'session:' || $2"
    "                                   AND o.state IN ('pending', 'running')) AS now) h"
    " RETURNING job_id, state = 'running', attempt",
    7,
    {INT8OID, INT8OID, INT8OID, INT8OID, INT4OID, TEXTOID, INTERVALOID},
    nullptr};

static Statement kMarkRouted = {
    "UPDATE darkspere.messages SET status = 'routed', agent_id = $2, updated_at = pg_catalog.now()"
    " WHERE message_id = $1",
    2,
    {INT8OID, INT8OID},
    nullptr};

// $1 account, $2 session, $3 service number, $4 phone, $5 body, $6 status, $7 encoding, $8 segments,
// $9 agent, $10 reply_to, $11 request id, $12 max attempts, $13 available at, $14 hand-off worker,
// $15 hand-off lease, $16 the whole reply's length in bytes when this message is where it was cut.
// Stores one outbound message and, unless it is suppressed, its sms_send job with everything the worker
// needs. With a hand-off worker, a job that may run now (not held by the rate limit, no earlier send to the
// same phone pending or running) is stored already leased to that worker as attempt 1; otherwise it waits
// for a claim.
static Statement kInsertReply = {
    "WITH m AS ("
    "  INSERT INTO darkspere.messages (account_id, session_id, direction, service_number, phone, body,"
    "                                  status, encoding, segments, agent_id, reply_to, request_id,"
    "                                  reply_truncated_from_bytes)"
    "  VALUES ($1, $2, 'out', $3, $4, $5, $6, $7, $8, $9, $10, $11, $16) RETURNING message_id),"
    " h AS (SELECT $14::text IS NOT NULL AND $13::timestamptz IS NULL"
    "              AND NOT EXISTS (SELECT 1 FROM darkspere.jobs o"
    "                               WHERE o.ordering_key = 'sms:' || $3 || ':' || $4"
    "                                 AND o.state IN ('pending', 'running')) AS now)"
    " INSERT INTO darkspere.jobs (account_id, kind, max_attempts, idempotency_key, ordering_key, session_id,"
    "                             message_id, available_at, last_error, payload, state, attempt, claimed_by,"
    "                             lease_until)"
    " SELECT $1, 'sms_send', $12, 'sms_send:' || m.message_id, 'sms:' || $3 || ':' || $4, $2, m.message_id,"
    "        COALESCE($13, pg_catalog.clock_timestamp()),"
    "        CASE WHEN $13 IS NOT NULL THEN 'held by the phone_out rate limit until ' || $13 END,"
    "        pg_catalog.jsonb_build_object('message_id', m.message_id, 'account_id', $1,"
    "            'provider_account',"
    "                (SELECT n.provider_account FROM darkspere.numbers n WHERE n.number = $3),"
    "            'from', $3, 'to', $4, 'body', $5, 'request_id', $11),"
    "        CASE WHEN h.now THEN 'running' ELSE 'pending' END, CASE WHEN h.now THEN 1 ELSE 0 END,"
    "        CASE WHEN h.now THEN $14 END,"
    "        CASE WHEN h.now THEN pg_catalog.clock_timestamp() + $15 END"
    "   FROM m, h WHERE $6 = 'pending'"
    " RETURNING job_id, state = 'running', attempt, payload",
    16,
    {INT8OID, INT8OID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, INT4OID, INT8OID, INT8OID, TEXTOID,
     INT4OID, TIMESTAMPTZOID, TEXTOID, INTERVALOID, INT8OID},
    nullptr};

static Datum build_agent_payload(int64 message_id, int64 agent_id);

int64 enqueue_agent_call(int64 account_id, int64 session_id, int64 message_id, int64 agent_id) {
    Datum worker = (Datum)0, lease = (Datum)0;
    bool handoff = handoff_lease(agent_id, &worker, &lease);
    Datum args[7] = {Int64GetDatum(account_id),
                     Int64GetDatum(session_id),
                     Int64GetDatum(message_id),
                     Int64GetDatum(agent_id),
                     Int32GetDatum(agent_call_max_attempts),
                     worker,
                     lease};
    char nulls[7] = {' ', ' ', ' ', ' ', ' ', null_flag(!handoff), null_flag(!handoff)};
    SpiResult job = spi_run(kInsertAgentCall, args, nulls, false, 1);
    bool handed = job.get_bool(0, 2);
    int64 job_id = job.get_int64(0, 1);
    int32 attempt = job.get_int32(0, 3);
    agent_load_add(agent_id, 1);
    Datum payload = handed ? build_agent_payload(message_id, agent_id) : (Datum)0;
    if (payload != (Datum)0) {
        handoff_record(job_id, attempt, "agent_call", payload);
    } else if (!handed) {
        notify_worker();
    }
    return agent_id;
}

int64 route_message(int64 account_id, int64 session_id, int64 message_id, int64 agent_id) {
    Datum args[2] = {Int64GetDatum(message_id), Int64GetDatum(agent_id)};
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
    bridge::ReplyChunk chunks[kMaxReplySegmentsLimit];
    bool truncated = false;
    int nchunks = plan_or_raise(body, body_len, chunks, &truncated);
    for (int i = 0; i < nchunks; i++) {
        char *chunk = pnstrdup(body + chunks[i].offset, chunks[i].length);
        // The message where the reply was cut records how long the whole reply was (bytes: counting its
        // characters would mean reading all of it).
        bool cut_here = truncated && i == nchunks - 1;
        const bridge::Segments &seg = chunks[i].segments;
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
        Datum args[16] = {Int64GetDatum(account_id),
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
                          Int64GetDatum(static_cast<int64>(body_len))};
        char nulls[16] = {' ',
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
                          null_flag(!cut_here)};
        SpiResult job = spi_run(kInsertReply, args, nulls, false, 0);
        if (job.empty()) {
            continue;  // suppressed: no job
        }
        if (job.get_bool(0, 2)) {
            bool isnull;
            handoff_record(job.get_int64(0, 1), job.get_int32(0, 3), "sms_send",
                           job.get_datum(0, 4, &isnull));
        } else {
            queued = true;
        }
    }
    if (queued) {
        notify_worker();
    }
}

// ---- Claim
// -----------------------------------------------------------------------------------------------------

// Ready jobs in priority then id order, skipping rows other claimers hold, and jobs whose ordering key has an
// earlier job still pending or running (that is what keeps one agent_call per session in flight, in order).
static Statement kClaim = {
    "WITH ready AS ("
    "  SELECT j.job_id FROM darkspere.jobs j"
    "   WHERE j.state = 'pending' AND j.available_at <= pg_catalog.clock_timestamp()"
    "     AND (j.kind <> 'agent_call' OR j.agent_id IS NULL OR j.agent_id <> ALL ($4))"
    "     AND (j.kind <> 'agent_call' OR j.account_id IS NULL OR j.account_id <> ALL ($5))"
    "     AND (j.ordering_key IS NULL OR NOT EXISTS ("
    "          SELECT 1 FROM darkspere.jobs o WHERE o.ordering_key = j.ordering_key AND o.job_id < j.job_id"
    "             AND o.state IN ('pending', 'running')))"
    "   ORDER BY j.priority, j.job_id"
    "   LIMIT $2 FOR UPDATE SKIP LOCKED)"
    " UPDATE darkspere.jobs j SET state = 'running', attempt = j.attempt + 1, claimed_by = $1,"
    "        lease_until = pg_catalog.clock_timestamp() + $3"
    "   FROM ready WHERE j.job_id = ready.job_id"
    " RETURNING j.job_id, j.attempt, j.kind, j.payload, j.message_id, j.agent_id",
    5,
    {TEXTOID, INT4OID, INTERVALOID, INT8ARRAYOID, INT8ARRAYOID},
    nullptr};

// The agent_call payload, built at claim time so that a turn queued behind another turn of the same session
// sees that turn's reply in its history: earlier inbound messages, and replies to earlier messages (a reply
// is stored after the next message may have arrived, so its own id does not order it). A turn whose body
// retention redacted is left out (an empty turn would mislead the agent).
static Statement kAgentPayload = {
    "SELECT pg_catalog.jsonb_build_object("
    "  'agent_id', a.agent_id, 'endpoint', a.endpoint, 'protocol', a.protocol, 'tool_name', a.tool_name,"
    "  'account_id', m.account_id, 'session_id', m.session_id, 'message_id', m.message_id,"
    "  'from', m.phone, 'to', m.service_number, 'body', m.body,"
    "  'request_id', COALESCE(m.request_id, 'msg-' || m.message_id),"
    "  'history', COALESCE((SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object("
    "                               'role', CASE h.direction WHEN 'in' THEN 'user' ELSE 'assistant' END,"
    "                               'content', h.body) ORDER BY h.message_id)"
    "                         FROM (SELECT direction, body, message_id FROM darkspere.messages h"
    "                                WHERE h.session_id = m.session_id AND h.message_id <> m.message_id"
    "                                  AND h.body_redacted_at IS NULL"
    "                                  AND CASE h.direction WHEN 'in' THEN h.message_id < m.message_id"
    "                                      ELSE COALESCE(h.reply_to, h.message_id) < m.message_id END"
    "                                ORDER BY h.message_id DESC LIMIT $3) h), '[]'::jsonb)),"
    "  a.secret_generation,"
    "  a.secret_rotated_at IS NOT NULL AND a.secret_generation > 1"
    "  AND a.secret_rotated_at + pg_catalog.make_interval(secs => $4) > pg_catalog.now()"
    "  FROM darkspere.messages m JOIN darkspere.agents a ON a.agent_id = $2"
    " WHERE m.message_id = $1",
    4,
    {INT8OID, INT8OID, INT4OID, FLOAT8OID},
    nullptr};

// build_agent_payload — the agent_call payload (kAgentPayload) with the agent's signing secrets, or 0 when
// the message or the agent is gone. The secrets are derived here, at claim time, and never stored: the job
// row keeps no payload for agent calls.
static Datum build_agent_payload(int64 message_id, int64 agent_id) {
    Datum args[4] = {Int64GetDatum(message_id), Int64GetDatum(agent_id), Int32GetDatum(history_turns),
                     Float8GetDatum(static_cast<double>(agent_secret_grace_s))};
    SpiResult row = spi_run(kAgentPayload, args, nullptr, false, 1);
    if (row.empty()) {
        return (Datum)0;
    }
    bool isnull;
    Datum payload = row.get_datum(0, 1, &isnull);
    Datum secrets = agent_signing_secrets_jsonb(agent_id, row.get_int32(0, 2), row.get_bool(0, 3));
    return DirectFunctionCall2(jsonb_concat, payload, secrets);
}

static Statement kReplyOptedOut = {
    "SELECT EXISTS (SELECT 1 FROM darkspere.messages m JOIN darkspere.opt_outs o"
    "                 ON o.account_id = m.account_id AND o.service_number = m.service_number"
    "                AND o.phone = m.phone"
    "                WHERE m.message_id = $1)",
    1,
    {INT8OID},
    nullptr};

// Finishes a claimed job without handing it to the worker (its message was suppressed or is gone).
static Statement kFinishUnsent = {
    "WITH j AS (UPDATE darkspere.jobs SET state = $2, result = pg_catalog.jsonb_build_object('skipped', $3),"
    "                  last_error = CASE WHEN $2 = 'dead' THEN $3 END, finished_at = pg_catalog.now(),"
    "                  lease_until = NULL"
    "            WHERE job_id = $1 RETURNING message_id)"
    " UPDATE darkspere.messages m SET status = $4, updated_at = pg_catalog.now() FROM j"
    "  WHERE m.message_id = j.message_id",
    4,
    {INT8OID, TEXTOID, TEXTOID, TEXTOID},
    nullptr};

static void finish_unsent(int64 job_id, const char *state, const char *reason, const char *message_status) {
    Datum args[4] = {Int64GetDatum(job_id), text_datum(state), text_datum(reason),
                     text_datum(message_status)};
    spi_run(kFinishUnsent, args, nullptr, false, 0);
}

// ---- Acks
// ------------------------------------------------------------------------------------------------------

// The fence: only the attempt that holds the lease may finish the job.
static Statement kFenceComplete = {
    "UPDATE darkspere.jobs SET state = 'done', result = $3, finished_at = pg_catalog.now(),"
    "       lease_until = NULL"
    " WHERE job_id = $1 AND attempt = $2 AND state = 'running'"
    " RETURNING kind, account_id, session_id, message_id, agent_id",
    3,
    {INT8OID, INT4OID, JSONBOID},
    nullptr};

static Statement kFenceFail = {
    "SELECT kind, account_id, session_id, message_id, agent_id, max_attempts, tried_agents"
    "  FROM darkspere.jobs WHERE job_id = $1 AND attempt = $2 AND state = 'running' FOR UPDATE",
    2,
    {INT8OID, INT4OID},
    nullptr};

// Marks the turn answered and reads what the reply needs: the account's fallback text, whether the phone
// opted out and whether the plan has a hard cap (only then is the quota read). Touching the session also
// serialises replies of one session, which keeps hand-offs of their sends in order.
static Statement kAnswered = {
    "WITH m AS (UPDATE darkspere.messages SET status = 'answered', updated_at = pg_catalog.now()"
    "            WHERE message_id = $1"
    "            RETURNING account_id, session_id, service_number, phone, request_id),"
    "     s AS (UPDATE darkspere.sessions SET last_activity_at = pg_catalog.now()"
    "            WHERE session_id = (SELECT session_id FROM m))"
    " SELECT m.account_id, m.session_id, m.service_number, m.phone, m.request_id, a.fallback_text,"
    "        EXISTS (SELECT 1 FROM darkspere.opt_outs o WHERE o.account_id = m.account_id"
    "                   AND o.service_number = m.service_number AND o.phone = m.phone),"
    "        p.hard_cap"
    "   FROM m JOIN darkspere.accounts a ON a.account_id = m.account_id"
    "   JOIN darkspere.plans p ON p.plan = a.plan",
    1,
    {INT8OID},
    nullptr};

static Statement kSent = {
    "UPDATE darkspere.messages SET message_sid = COALESCE($2, message_sid),"
    "       status = CASE WHEN delivery_rank = 0 THEN COALESCE($3, 'queued') ELSE status END,"
    "       segments = COALESCE($4, segments), updated_at = pg_catalog.now()"
    " WHERE message_id = $1 RETURNING account_id, segments",
    4,
    {INT8OID, TEXTOID, TEXTOID, INT4OID},
    nullptr};

static Statement kRetryOnAgent = {
    "UPDATE darkspere.jobs SET state = 'pending', agent_id = $2, tried_agents = tried_agents || $2,"
    "       available_at = pg_catalog.clock_timestamp() + pg_catalog.make_interval(secs => $3),"
    "       last_error = $4, claimed_by = NULL, lease_until = NULL"
    " WHERE job_id = $1",
    4,
    {INT8OID, INT8OID, FLOAT8OID, TEXTOID},
    nullptr};

static Statement kMoveSession = {
    "WITH s AS (UPDATE darkspere.sessions SET agent_id = $2"
    "            WHERE session_id = $1 AND agent_id IS DISTINCT FROM $2)"
    " UPDATE darkspere.messages SET agent_id = $2, updated_at = pg_catalog.now() WHERE message_id = $3",
    3,
    {INT8OID, INT8OID, INT8OID},
    nullptr};

static Statement kRetryLater = {
    "UPDATE darkspere.jobs SET state = 'pending',"
    "       available_at = pg_catalog.clock_timestamp() + pg_catalog.make_interval(secs => $2),"
    "       last_error = $3, claimed_by = NULL, lease_until = NULL"
    " WHERE job_id = $1",
    3,
    {INT8OID, FLOAT8OID, TEXTOID},
    nullptr};

static Statement kDeadLetter = {
    "WITH j AS (UPDATE darkspere.jobs SET state = 'dead', last_error = $2, finished_at = pg_catalog.now(),"
    "                  lease_until = NULL WHERE job_id = $1 RETURNING message_id)"
    " UPDATE darkspere.messages m SET status = 'failed', updated_at = pg_catalog.now() FROM j"
    "  WHERE m.message_id = j.message_id"
    " RETURNING m.account_id, m.session_id, m.service_number, m.phone, m.request_id, m.direction,"
    "           (SELECT a.fallback_text FROM darkspere.accounts a WHERE a.account_id = m.account_id),"
    "           m.message_id",
    2,
    {INT8OID, TEXTOID},
    nullptr};

// Retry delays: exponential from kBackoffBaseS, capped at kBackoffMaxS, ±kBackoffJitter so that many jobs
// that failed together do not all come back at the same instant.
constexpr double kBackoffBaseS = 2.0;
constexpr double kBackoffMaxS = 300.0;
constexpr double kBackoffJitter = 0.2;

static double backoff_seconds(int attempt) {
    double delay = kBackoffBaseS;
    for (int i = 1; i < attempt && delay < kBackoffMaxS; i++) {
        delay *= 2;
    }
    delay = Min(delay, kBackoffMaxS);
    return delay * (1.0 - kBackoffJitter + 2 * kBackoffJitter * pg_prng_double(&pg_global_prng_state));
}

// dead_letter — gives up on a job; a turn that no agent answered gets the account's fallback text instead.
static void dead_letter(int64 job_id, const char *error, bool send_fallback) {
    MemoryContext caller = CurrentMemoryContext;
    Datum args[2] = {Int64GetDatum(job_id), text_datum(error)};
    SpiResult failed = spi_run(kDeadLetter, args, nullptr, false, 1);
    if (failed.empty() || !send_fallback) {
        return;
    }
    char *direction = failed.text_copy(0, 6, caller);
    char *fallback = failed.text_copy(0, 7, caller);
    if (strcmp(direction, "in") != 0 || fallback == nullptr || fallback[0] == '\0') {
        return;
    }
    int64 account_id = failed.get_int64(0, 1);
    int64 session_id = failed.get_int64(0, 2);
    char *service_number = failed.text_copy(0, 3, caller);
    char *phone = failed.text_copy(0, 4, caller);
    char *request_id = failed.text_copy(0, 5, caller);
    // No agent wrote this text, so the reply carries no agent id.
    enqueue_reply(account_id, session_id, failed.get_int64(0, 8), service_number, phone, fallback, 0,
                  request_id);
}

static void complete_agent_call(int64 message_id, int64 agent_id, Jsonb *result) {
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
    JsonbValue *latency_value = jsonb_key(result, "latency_ms");
    bool latency_known = latency_value != nullptr && latency_value->type == jbvNumeric;
    int32 latency_ms = latency_known ? static_cast<int32>(lround(Min(Max(jsonb_number(latency_value), 0.0),
                                                                     static_cast<double>(PG_INT32_MAX))))
                                     : 0;

    agent_load_add(agent_id, -1);
    health_record(agent_id, true, latency_ms, latency_known);

    Datum args[1] = {Int64GetDatum(message_id)};
    SpiResult turn = spi_run(kAnswered, args, nullptr, false, 1);
    if (turn.empty()) {
        return;  // the message is gone (account deleted): nothing to answer
    }
    int64 account_id = turn.get_int64(0, 1);
    int64 session_id = turn.get_int64(0, 2);
    char *service_number = turn.text_copy(0, 3, caller);
    char *phone = turn.text_copy(0, 4, caller);
    char *request_id = turn.text_copy(0, 5, caller);
    char *fallback = turn.text_copy(0, 6, caller);
    ReplyChecks checks = {true, turn.get_bool(0, 7), turn.get_bool(0, 8)};
    usage_add(account_id, "agent_messages", 1);

    if (reply != nullptr && reply_len > 0) {
        enqueue_reply(account_id, session_id, message_id, service_number, phone, reply, reply_len, agent_id,
                      request_id, &checks);
    } else if (reply == nullptr && fallback != nullptr && fallback[0] != '\0') {
        // The agent answered without usable text; "" would have meant "send nothing".
        enqueue_reply(account_id, session_id, message_id, service_number, phone, fallback, 0, request_id,
                      &checks);
    }
}

static void complete_sms_send(int64 message_id, Jsonb *result) {
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

    Datum args[4] = {Int64GetDatum(message_id), sid ? text_datum(sid) : (Datum)0,
                     status ? text_datum(status) : (Datum)0, Int32GetDatum(segments)};
    char nulls[4] = {' ', null_flag(sid == nullptr), null_flag(status == nullptr),
                     null_flag(!segments_known)};
    SpiResult sent = spi_run(kSent, args, nulls, false, 1);
    if (sent.empty()) {
        return;
    }
    usage_add(sent.get_int64(0, 1), "sms_out", Max(sent.get_int32(0, 2), 1));
    if (sid != nullptr) {
        apply_pending_delivery_events(sid);
    }
}

static void fail_agent_call(int64 job_id, int attempt, int max_attempts, int64 account_id, int64 session_id,
                            int64 message_id, int64 agent_id, ArrayType *tried, const char *error,
                            bool retryable) {
    agent_load_add(agent_id, -1);
    if (agent_id != 0) {
        health_record(agent_id, false, 0, false);
    }
    if (!retryable || attempt >= max_attempts) {
        dead_letter(job_id, error, true);
        return;
    }
    // Retry the turn on the next eligible agent not yet tried; if every agent was tried, the best eligible
    // one (possibly the same) after a backoff.
    Datum *elems;
    int nelems;
    deconstruct_array(tried, INT8OID, sizeof(int64), true, TYPALIGN_DOUBLE, &elems, nullptr, &nelems);
    int64 *exclude = static_cast<int64 *>(palloc(sizeof(int64) * (nelems + 1)));
    for (int i = 0; i < nelems; i++) {
        exclude[i] = DatumGetInt64(elems[i]);
    }
    double delay = 0;
    int64 next = pick_agent(account_id, exclude, nelems);
    if (next == 0) {
        next = pick_agent(account_id, nullptr, 0);
        delay = backoff_seconds(attempt);
    }
    if (next == 0) {
        dead_letter(job_id, error, true);
        return;
    }
    Datum args[4] = {Int64GetDatum(job_id), Int64GetDatum(next), Float8GetDatum(delay), text_datum(error)};
    spi_run(kRetryOnAgent, args, nullptr, false, 0);
    agent_load_add(next, 1);
    if (next != agent_id && session_id != 0) {
        Datum move[3] = {Int64GetDatum(session_id), Int64GetDatum(next), Int64GetDatum(message_id)};
        spi_run(kMoveSession, move, nullptr, false, 0);
    }
    notify_worker();
}

}  // namespace darkspere

using namespace darkspere;

// darkspere_claim_jobs — leases up to max_jobs ready jobs to `worker` and returns them with their payloads.
DARKSPERE_FUNCTION(darkspere_claim_jobs) {
    char *worker = required_text(fcinfo, 0, "worker");
    int32 max_jobs = required_int32(fcinfo, 1, "max_jobs");
    if (PG_ARGISNULL(2)) {
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("lease must not be null")));
    }
    Interval *lease = PG_GETARG_INTERVAL_P(2);
    // busy_agents (the 4- and 5-argument forms) and busy_accounts (the 5-argument form): NULL and '{}' both
    // mean "none".
    Datum busy[2];
    static const char *const busy_names[2] = {"busy_agents", "busy_accounts"};
    for (int i = 0; i < 2; i++) {
        busy[i] = PointerGetDatum(construct_empty_array(INT8OID));
        if (PG_NARGS() > 3 + i && !PG_ARGISNULL(3 + i)) {
            if (array_contains_nulls(PG_GETARG_ARRAYTYPE_P(3 + i))) {
                ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                                errmsg("%s must not contain NULL", busy_names[i])));
            }
            busy[i] = PG_GETARG_DATUM(3 + i);
        }
    }
    require_non_empty(worker, "worker");
    if (max_jobs < 0 || max_jobs > 10000) {
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("max_jobs must be between 0 and 10000: %d", max_jobs)));
    }
    require_lease(lease);
    ReturnSetInfo *rsinfo = reinterpret_cast<ReturnSetInfo *>(fcinfo->resultinfo);
    InitMaterializedSRF(fcinfo, 0);
    if (max_jobs == 0) {
        return (Datum)0;
    }

    SPI_connect();
    Datum args[5] = {text_datum(worker), Int32GetDatum(max_jobs), IntervalPGetDatum(lease), busy[0], busy[1]};
    SpiResult claimed = spi_run(kClaim, args, nullptr, false, 0);
    for (uint64 r = 0; r < claimed.rows(); r++) {
        int64 job_id = claimed.get_int64(r, 1);
        int32 attempt = claimed.get_int32(r, 2);
        bool isnull;
        Datum kind = claimed.get_datum(r, 3, &isnull);
        Datum payload = claimed.get_datum(r, 4, &isnull);
        int64 message_id = claimed.get_int64(r, 5);
        int64 agent_id = claimed.get_int64(r, 6);
        char *kind_name = TextDatumGetCString(kind);

        if (strcmp(kind_name, "agent_call") == 0) {
            payload = build_agent_payload(message_id, agent_id);
            if (payload == (Datum)0) {
                agent_load_add(agent_id, -1);
                finish_unsent(job_id, "dead", "message or agent no longer exists", "failed");
                continue;
            }
        } else if (strcmp(kind_name, "sms_send") == 0) {
            Datum opt_args[1] = {Int64GetDatum(message_id)};
            if (spi_run(kReplyOptedOut, opt_args, nullptr, false, 1).get_bool(0, 1)) {
                finish_unsent(job_id, "done", "recipient opted out", "suppressed");
                continue;
            }
        }
        Datum values[4] = {Int64GetDatum(job_id), Int32GetDatum(attempt), kind, payload};
        bool nulls[4] = {false, false, false, false};
        tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
    }
    SPI_finish();
    return (Datum)0;
}

namespace darkspere {

// What the job row keeps of an agent's reply: more than any capped reply can send (100 segments are at most
// ~31 KB of UTF-8), far less than what an agent may answer. The messages hold what was sent.
constexpr int kStoredReplyMaxBytes = 64 * 1024;

// result_to_store — the result as jobs.result keeps it: a longer reply is cut to kStoredReplyMaxBytes (at a
// character boundary), so a reply of megabytes is neither compressed nor written to disk with every ack.
static Jsonb *result_to_store(Jsonb *result) {
    JsonbValue *reply = jsonb_key(result, "reply");
    if (reply == nullptr || reply->type != jbvString || reply->val.string.len <= kStoredReplyMaxBytes) {
        return result;
    }
    int keep = pg_mbcliplen(reply->val.string.val, reply->val.string.len, kStoredReplyMaxBytes);
    JsonbParseState *state = nullptr;
    JsonbValue *built = nullptr;
    JsonbIterator *it = JsonbIteratorInit(&result->root);
    JsonbValue v;
    JsonbIteratorToken token;
    bool is_reply = false;
    while ((token = JsonbIteratorNext(&it, &v, true)) != WJB_DONE) {
        if (token == WJB_KEY) {
            is_reply = v.val.string.len == 5 && memcmp(v.val.string.val, "reply", 5) == 0;
        } else if (token == WJB_VALUE && is_reply) {
            v.val.string.len = keep;
        }
        built = pushJsonbValue(&state, token, token < WJB_BEGIN_ARRAY ? &v : nullptr);
    }
    return JsonbValueToJsonb(built);
}

// job_complete — the body of complete_job (and of each completed row of ack_jobs), inside an SPI connection.
bool job_complete(int64 job_id, int32 attempt, Jsonb *result) {
    if (result == nullptr) {
        result = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum("{}")));
    }
    Datum args[3] = {Int64GetDatum(job_id), Int32GetDatum(attempt), JsonbPGetDatum(result_to_store(result))};
    SpiResult job = spi_run(kFenceComplete, args, nullptr, false, 1);
    if (job.empty()) {
        return false;
    }
    char *kind = job.text_copy(0, 1, CurrentMemoryContext);
    int64 message_id = job.get_int64(0, 4);
    int64 agent_id = job.get_int64(0, 5);
    if (strcmp(kind, "agent_call") == 0) {
        complete_agent_call(message_id, agent_id, result);
    } else if (strcmp(kind, "sms_send") == 0) {
        complete_sms_send(message_id, result);
    }
    return true;
}

// job_fail — the body of fail_job (and of each failed row of ack_jobs), inside an SPI connection.
bool job_fail(int64 job_id, int32 attempt, const char *error, bool retryable) {
    MemoryContext caller = CurrentMemoryContext;
    Datum args[2] = {Int64GetDatum(job_id), Int32GetDatum(attempt)};
    SpiResult job = spi_run(kFenceFail, args, nullptr, false, 1);
    if (job.empty()) {
        return false;
    }
    char *kind = job.text_copy(0, 1, caller);
    int64 account_id = job.get_int64(0, 2);
    int64 session_id = job.get_int64(0, 3);
    int64 message_id = job.get_int64(0, 4);
    int64 agent_id = job.get_int64(0, 5);
    int32 max_attempts = job.get_int32(0, 6);
    bool isnull;
    MemoryContext old = MemoryContextSwitchTo(caller);
    ArrayType *tried = DatumGetArrayTypePCopy(job.get_datum(0, 7, &isnull));
    MemoryContextSwitchTo(old);

    if (strcmp(kind, "agent_call") == 0) {
        fail_agent_call(job_id, attempt, max_attempts, account_id, session_id, message_id, agent_id, tried,
                        error, retryable);
    } else if (retryable && attempt < max_attempts) {
        Datum retry[3] = {Int64GetDatum(job_id), Float8GetDatum(backoff_seconds(attempt)), text_datum(error)};
        spi_run(kRetryLater, retry, nullptr, false, 0);
    } else {
        dead_letter(job_id, error, false);
    }
    return true;
}

}  // namespace darkspere

using namespace darkspere;

// darkspere_complete_job — the worker finished (job_id, attempt); false, changing nothing, when that attempt
// no longer holds the lease.
DARKSPERE_FUNCTION(darkspere_complete_job) {
    int64 job_id = required_int64(fcinfo, 0, "job_id");
    int32 attempt = required_int32(fcinfo, 1, "attempt");
    Jsonb *result = PG_ARGISNULL(2) ? nullptr : PG_GETARG_JSONB_P(2);
    if (result != nullptr && !JB_ROOT_IS_OBJECT(result)) {
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("result must be a jsonb object")));
    }
    SPI_connect();
    bool accepted = job_complete(job_id, attempt, result);
    SPI_finish();
    PG_RETURN_BOOL(accepted);
}

// darkspere_fail_job — the worker could not do (job_id, attempt): retry (agent calls on the next eligible
// agent, other jobs after a backoff) or dead-letter. False, changing nothing, when the attempt lost its
// lease.
DARKSPERE_FUNCTION(darkspere_fail_job) {
    int64 job_id = required_int64(fcinfo, 0, "job_id");
    int32 attempt = required_int32(fcinfo, 1, "attempt");
    char *error = PG_ARGISNULL(2) ? pstrdup("unspecified error") : text_to_cstring(PG_GETARG_TEXT_PP(2));
    bool retryable = PG_ARGISNULL(3) ? true : PG_GETARG_BOOL(3);
    SPI_connect();
    bool accepted = job_fail(job_id, attempt, error, retryable);
    SPI_finish();
    PG_RETURN_BOOL(accepted);
}

static Statement kRequeueDead = {
    "UPDATE darkspere.jobs SET state = 'pending', max_attempts = attempt + $2,"
    "       available_at = pg_catalog.now(),"
    "       finished_at = NULL, agent_id = COALESCE($3, agent_id)"
    " WHERE job_id = $1 AND state = 'dead' RETURNING kind, message_id",
    3,
    {INT8OID, INT4OID, INT8OID},
    nullptr};
static Statement kDeadJob = {
    "SELECT kind, account_id FROM darkspere.jobs WHERE job_id = $1 AND state = 'dead' FOR UPDATE",
    1,
    {INT8OID},
    nullptr};
static Statement kRequeuedMessage = {
    "UPDATE darkspere.messages SET status = CASE direction WHEN 'in' THEN 'routed' ELSE 'pending' END,"
    "       updated_at = pg_catalog.now() WHERE message_id = $1",
    1,
    {INT8OID},
    nullptr};

// darkspere_requeue_dead_job — an operator gives a dead-lettered job a fresh set of attempts. False, changing
// nothing, when the job is not dead (any more) or is gone: a concurrent requeue or a prune got there first.
// The first look locks the row, so a second caller waits for the first and then finds the job no longer dead;
// the UPDATE's count is checked all the same.
DARKSPERE_FUNCTION(darkspere_requeue_dead_job) {
    int64 job_id = required_int64(fcinfo, 0, "job_id");
    SPI_connect();
    Datum find[1] = {Int64GetDatum(job_id)};
    SpiResult dead = spi_run(kDeadJob, find, nullptr, false, 1);
    if (dead.empty()) {
        SPI_finish();
        PG_RETURN_BOOL(false);
    }
    char *kind = dead.text_copy(0, 1, CurrentMemoryContext);
    int64 account_id = dead.get_int64(0, 2);
    int64 agent_id = 0;
    bool agent_call = strcmp(kind, "agent_call") == 0;
    if (agent_call) {
        agent_id = pick_agent(account_id, nullptr, 0);
        if (agent_id == 0) {
            ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                            errmsg("account %lld has no eligible agent to retry job %lld",
                                   static_cast<long long>(account_id), static_cast<long long>(job_id))));
        }
    }
    Datum args[3] = {Int64GetDatum(job_id),
                     Int32GetDatum(agent_call ? agent_call_max_attempts : sms_send_max_attempts),
                     Int64GetDatum(agent_id)};
    char nulls[3] = {' ', ' ', null_flag(agent_id == 0)};
    SpiResult requeued = spi_run(kRequeueDead, args, nulls, false, 1);
    if (requeued.empty()) {
        SPI_finish();
        PG_RETURN_BOOL(false);
    }
    int64 message_id = requeued.get_int64(0, 2);
    if (message_id != 0) {
        Datum msg[1] = {Int64GetDatum(message_id)};
        spi_run(kRequeuedMessage, msg, nullptr, false, 0);
    }
    agent_load_add(agent_id, 1);
    notify_worker();
    SPI_finish();
    PG_RETURN_BOOL(true);
}

static Statement kSessionExists = {
    "SELECT 1 FROM darkspere.sessions WHERE session_id = $1", 1, {INT8OID}, nullptr};
static Statement kHistory = {
    "SELECT direction, body, created_at FROM ("
    "   SELECT direction, body, created_at, message_id FROM darkspere.messages"
    "    WHERE session_id = $1 ORDER BY message_id DESC LIMIT $2) h"
    " ORDER BY message_id",
    2,
    {INT8OID, INT4OID},
    nullptr};

// darkspere_history — the last max_messages messages of a session, oldest first.
DARKSPERE_FUNCTION(darkspere_history) {
    int64 session_id = required_int64(fcinfo, 0, "session_id");
    int32 max_messages = required_int32(fcinfo, 1, "max_messages");
    if (max_messages < 0) {
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("max_messages must not be negative: %d", max_messages)));
    }
    ReturnSetInfo *rsinfo = reinterpret_cast<ReturnSetInfo *>(fcinfo->resultinfo);
    InitMaterializedSRF(fcinfo, 0);
    SPI_connect();
    Datum find[1] = {Int64GetDatum(session_id)};
    if (spi_run(kSessionExists, find, nullptr, true, 1).empty()) {
        raise_missing("session", session_id);
    }
    Datum args[2] = {Int64GetDatum(session_id), Int32GetDatum(max_messages)};
    SpiResult history = spi_run(kHistory, args, nullptr, true, 0);
    for (uint64 r = 0; r < history.rows(); r++) {
        Datum values[3];
        bool nulls[3];
        for (int c = 0; c < 3; c++) {
            values[c] = history.get_datum(r, c + 1, &nulls[c]);
        }
        tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
    }
    SPI_finish();
    return (Datum)0;
}
