// src/ext/claim.cpp — claim_jobs: leasing ready jobs to a worker, with the payloads they need.
//
// A job is claimed by one worker for a lease (FOR UPDATE SKIP LOCKED, one short statement); the worker does
// its HTTP after that transaction committed, then acks with (job_id, attempt) (ack.cpp). Jobs that share an
// ordering_key (one session's agent calls, one phone's replies) run one at a time in job_id order.
#include "ext/agent_secrets.hpp"
#include "ext/errors.hpp"
#include "ext/jsonb_fields.hpp"
#include "ext/probes.hpp"
#include "ext/queue.hpp"
#include "ext/routing.hpp"
#include "ext/settings.hpp"
#include "ext/spi_plans.hpp"
#include "ext/trace.hpp"
#include "ext/alerts.hpp"
#include "ext/validate.hpp"

namespace darkspere {

// Ready jobs in priority then id order, skipping rows other claimers hold, and jobs whose ordering key has an
// earlier job still pending or running (that is what keeps one agent_call per session in flight, in order).
// The statement reads and writes `jobs` only: on Citus `jobs` is a coordinator table and the tenant tables
// are distributed, and one statement over both would be planned by Citus, which refuses clock_timestamp() in
// it (docs/scaling.md). $6 is the claim's clock (clock_timestamp() taken once by the caller).
static Statement kClaim = {
    "WITH ready AS ("
    "  SELECT j.job_id FROM darkspere.jobs j"
    "   WHERE j.state = 'pending' AND j.available_at <= $6"
    "     AND (j.kind <> 'agent_call' OR j.agent_id IS NULL OR j.agent_id <> ALL ($4))"
    "     AND (j.kind <> 'agent_call' OR j.account_id IS NULL OR j.account_id <> ALL ($5))"
    "     AND (j.ordering_key IS NULL OR NOT EXISTS ("
    "          SELECT 1 FROM darkspere.jobs o WHERE o.ordering_key = j.ordering_key AND o.job_id < j.job_id"
    "             AND o.state IN ('pending', 'running')))"
    "   ORDER BY j.priority, j.job_id"
    "   LIMIT $2 FOR UPDATE SKIP LOCKED)"
    " UPDATE darkspere.jobs j SET state = 'running', attempt = j.attempt + 1, claimed_by = $1,"
    "        lease_until = $6 + $3"
    "   FROM ready WHERE j.job_id = ready.job_id"
    " RETURNING j.job_id, j.attempt, j.kind, j.payload, j.message_id, j.agent_id, j.account_id,"
    "           GREATEST(0, pg_catalog.round(EXTRACT(epoch FROM $6 - j.available_at) * 1000))::int",
    6,
    {TEXTOID, INT4OID, INTERVALOID, INT8ARRAYOID, INT8ARRAYOID, TIMESTAMPTZOID},
    nullptr};

// The claim's trace rows, one per claimed agent call or send, in job order: `agent_call_started` (latency:
// the queue wait since the job became available) and `sms_send_started`. The claimed jobs come as arrays
// (job, attempt, kind, message, agent, account, wait, trace request id): no tenant table is read, so on Citus
// each row goes to its tenant's shard and no other shard is touched (a join with `messages` here read every
// shard of it on every claim).
static Statement kClaimTrace = {
    "INSERT INTO darkspere.trace_events (account_id, request_id, step, agent_id, latency_ms, detail)"
    " SELECT c.account_id, c.request_id, c.kind || '_started',"
    "        CASE WHEN c.kind = 'agent_call' THEN c.agent_id END, CASE WHEN c.kind = 'agent_call' THEN c.wait_ms END,"
    "        pg_catalog.jsonb_build_object('job_id', c.job_id, 'attempt', c.attempt, 'message_id', c.message_id,"
    "            'worker', $9)"
    "   FROM unnest($1::bigint[], $2::int[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[], $7::int[],"
    "               $8::text[])"
    "        AS c(job_id, attempt, kind, message_id, agent_id, account_id, wait_ms, request_id)"
    "  ORDER BY c.job_id",
    9,
    {INT8ARRAYOID, INT4ARRAYOID, TEXTARRAYOID, INT8ARRAYOID, INT8ARRAYOID, INT8ARRAYOID, INT4ARRAYOID,
     TEXTARRAYOID, TEXTOID},
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
    "                                WHERE h.account_id = $5 AND h.session_id = m.session_id"
    "                                  AND h.message_id <> m.message_id"
    "                                  AND h.body_redacted_at IS NULL"
    "                                  AND CASE h.direction WHEN 'in' THEN h.message_id < m.message_id"
    "                                      ELSE COALESCE(h.reply_to, h.message_id) < m.message_id END"
    "                                ORDER BY h.message_id DESC LIMIT $3) h), '[]'::jsonb)),"
    "  a.secret_generation,"
    "  a.secret_rotated_at IS NOT NULL AND a.secret_generation > 1"
    "  AND a.secret_rotated_at + pg_catalog.make_interval(secs => $4) > pg_catalog.now()"
    "  FROM darkspere.messages m JOIN darkspere.agents a ON a.agent_id = $2 AND a.account_id = $5"
    " WHERE m.message_id = $1 AND m.account_id = $5",
    5,
    {INT8OID, INT8OID, INT4OID, FLOAT8OID, INT8OID},
    nullptr};

// build_agent_payload — the agent_call payload (kAgentPayload) with the agent's signing secrets, or 0 when
// the message or the agent is gone. The secrets are derived here, at claim time, and never stored: the job
// row keeps no payload for agent calls.
Datum build_agent_payload(int64 account_id, int64 message_id, int64 agent_id) {
    Datum args[5] = {Int64GetDatum(message_id), Int64GetDatum(agent_id), Int32GetDatum(history_turns),
                     Float8GetDatum(static_cast<double>(agent_secret_grace_s)), Int64GetDatum(account_id)};
    return payload_with_secrets(agent_id, spi_run(kAgentPayload, args, nullptr, false, 1));
}

static Statement kReplyOptedOut = {
    "SELECT EXISTS (SELECT 1 FROM darkspere.messages m JOIN darkspere.opt_outs o"
    "                 ON o.account_id = m.account_id AND o.service_number = m.service_number"
    "                AND o.phone = m.phone"
    "                WHERE m.message_id = $1 AND m.account_id = $2)",
    2,
    {INT8OID, INT8OID},
    nullptr};

// Finishes a claimed job without handing it to the worker (its message was suppressed or is gone), then its
// message, by its account (two statements: `jobs` and `messages` live apart on Citus).
static Statement kFinishUnsent = {
    "UPDATE darkspere.jobs SET state = $2, result = pg_catalog.jsonb_build_object('skipped', $3),"
    "       last_error = CASE WHEN $2 = 'dead' THEN $3 END, finished_at = pg_catalog.now(), lease_until = NULL"
    " WHERE job_id = $1",
    3,
    {INT8OID, TEXTOID, TEXTOID},
    nullptr};

static Statement kFinishUnsentMessage = {
    "UPDATE darkspere.messages SET status = $3, updated_at = pg_catalog.now()"
    " WHERE message_id = $1 AND account_id = $2",
    3,
    {INT8OID, INT8OID, TEXTOID},
    nullptr};

static void finish_unsent(int64 job_id, int64 account_id, int64 message_id, const char *state,
                          const char *reason, const char *message_status) {
    Datum args[3] = {Int64GetDatum(job_id), text_datum(state), text_datum(reason)};
    spi_run(kFinishUnsent, args, nullptr, false, 0);
    if (message_id != 0) {
        Datum message[3] = {Int64GetDatum(message_id), Int64GetDatum(account_id), text_datum(message_status)};
        spi_run(kFinishUnsentMessage, message, nullptr, false, 0);
    }
}

// payload_request — the trace request id a claimed job's stored payload carries (agent calls and sends keep
// it there, enqueue.cpp); for a job queued by an older version without it, the message's (DS_TRACE_REQUEST,
// read by account: one shard). nullptr when the message is gone.
static const char *payload_request(const SpiResult &claimed, uint64 r) {
    bool isnull;
    Datum payload = claimed.get_datum(r, 4, &isnull);
    if (!isnull) {
        if (char *request_id = jsonb_text(jsonb_key(DatumGetJsonbP(payload), "request_id"))) {
            return request_id;
        }
    }
    return trace_request(claimed.get_int64(r, 7), claimed.get_int64(r, 5));
}

// trace_claimed — kClaimTrace for the agent calls and sends among the claimed jobs (rows of kClaim). It runs
// before the payloads are built: on Citus its write must be the first command the claim sends to a tenant's
// node. Citus commits a node whose connection first served a read and then only a COPY with a one-phase
// COMMIT even when two-phase commit was asked for (test/citus/run checks every node written is prepared).
static void trace_claimed(const SpiResult &claimed, Datum worker) {
    uint64 rows = claimed.rows();
    Datum *cols[8];
    for (auto &col : cols) {
        col = static_cast<Datum *>(palloc(sizeof(Datum) * (rows + 1)));
    }
    int n = 0;
    for (uint64 r = 0; r < rows; r++) {
        bool isnull;
        Datum kind = claimed.get_datum(r, 3, &isnull);
        char *kind_name = TextDatumGetCString(kind);
        if (strcmp(kind_name, "agent_call") != 0 && strcmp(kind_name, "sms_send") != 0) {
            continue;
        }
        const char *request_id = payload_request(claimed, r);
        if (request_id == nullptr) {
            continue;  // the message is gone: its job is finished unsent, untraced
        }
        cols[0][n] = Int64GetDatum(claimed.get_int64(r, 1));
        cols[1][n] = Int32GetDatum(claimed.get_int32(r, 2));
        cols[2][n] = kind;
        cols[3][n] = Int64GetDatum(claimed.get_int64(r, 5));
        cols[4][n] = Int64GetDatum(claimed.get_int64(r, 6));
        cols[5][n] = Int64GetDatum(claimed.get_int64(r, 7));
        cols[6][n] = Int32GetDatum(claimed.get_int32(r, 8));
        cols[7][n] = text_datum(request_id);
        n++;
    }
    if (n == 0) {
        return;
    }
    auto array = [n](Datum *values, Oid type, int len, bool byval, char align) {
        return PointerGetDatum(construct_array(values, n, type, len, byval, align));
    };
    Datum args[9] = {array(cols[0], INT8OID, sizeof(int64), true, TYPALIGN_DOUBLE),
                     array(cols[1], INT4OID, sizeof(int32), true, TYPALIGN_INT),
                     array(cols[2], TEXTOID, -1, false, TYPALIGN_INT),
                     array(cols[3], INT8OID, sizeof(int64), true, TYPALIGN_DOUBLE),
                     array(cols[4], INT8OID, sizeof(int64), true, TYPALIGN_DOUBLE),
                     array(cols[5], INT8OID, sizeof(int64), true, TYPALIGN_DOUBLE),
                     array(cols[6], INT4OID, sizeof(int32), true, TYPALIGN_INT),
                     array(cols[7], TEXTOID, -1, false, TYPALIGN_INT),
                     worker};
    spi_run(kClaimTrace, args, nullptr, false, 0);
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
    Datum args[6] = {text_datum(worker),
                     Int32GetDatum(max_jobs),
                     IntervalPGetDatum(lease),
                     busy[0],
                     busy[1],
                     TimestampTzGetDatum(GetCurrentTimestamp())};
    SpiResult claimed = spi_run(kClaim, args, nullptr, false, 0);
    trace_claimed(claimed, args[0]);
    for (uint64 r = 0; r < claimed.rows(); r++) {
        int64 job_id = claimed.get_int64(r, 1);
        int32 attempt = claimed.get_int32(r, 2);
        bool isnull;
        Datum kind = claimed.get_datum(r, 3, &isnull);
        Datum payload = claimed.get_datum(r, 4, &isnull);
        int64 message_id = claimed.get_int64(r, 5);
        int64 agent_id = claimed.get_int64(r, 6);
        int64 account_id = claimed.get_int64(r, 7);
        char *kind_name = TextDatumGetCString(kind);

        if (strcmp(kind_name, "agent_call") == 0) {
            payload = build_agent_payload(account_id, message_id, agent_id);
            if (payload == (Datum)0) {
                agent_load_add(account_id, agent_id, -1);
                finish_unsent(job_id, account_id, message_id, "dead", "message or agent no longer exists",
                              "failed");
                continue;
            }
        } else if (strcmp(kind_name, "health_probe") == 0) {
            // Built now, like an agent call's: the signing secrets are never stored in the job row.
            payload = probe_payload(account_id, agent_id);
            if (payload == (Datum)0) {
                finish_unsent(job_id, account_id, 0, "done",
                              "agent no longer probed (maintenance, disabled or gone)", "failed");
                continue;
            }
        } else if (strcmp(kind_name, "alert_notify") == 0) {
            // The channel's URL and signing secret are added now: neither is stored in the job.
            payload = alert_notify_payload(payload);
            if (payload == (Datum)0) {
                finish_unsent(job_id, account_id, 0, "done", "alert channel removed or disabled", "failed");
                continue;
            }
        } else if (strcmp(kind_name, "sms_send") == 0) {
            Datum opt_args[2] = {Int64GetDatum(message_id), Int64GetDatum(account_id)};
            if (spi_run(kReplyOptedOut, opt_args, nullptr, false, 1).get_bool(0, 1)) {
                finish_unsent(job_id, account_id, message_id, "done", "recipient opted out", "suppressed");
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
