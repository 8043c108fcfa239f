// src/ext/ack.cpp — fenced acks: complete_job, fail_job, ack_jobs' rows; retries, dead letters and requeues.
// What a completed agent call or send stores (the answered turn, its reply, the provider's answer) is
// turn_complete.cpp.
//
// The worker acks with (job_id, attempt): an ack whose attempt no longer holds the lease changes nothing, so
// a worker that lost its lease can never overwrite a newer attempt. A failed agent call is retried on the
// next eligible agent, other jobs after a backoff; out of attempts, a job is dead-lettered (a turn no agent
// answered gets the account's fallback text) until an operator requeues it.
#include "ext/billing.hpp"
#include "ext/delivery.hpp"
#include "ext/errors.hpp"
#include "ext/health.hpp"
#include "ext/jsonb_fields.hpp"
#include "ext/notify.hpp"
#include "ext/probes.hpp"
#include "ext/queue.hpp"
#include "ext/routing.hpp"
#include "ext/settings.hpp"
#include "ext/spi_plans.hpp"
#include "ext/trace.hpp"
#include "ext/turn_complete.hpp"
#include "ext/validate.hpp"

#include <cmath>

extern "C" {
#include "common/pg_prng.h"
}

namespace darkspere {

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
    "            WHERE session_id = $1 AND account_id = $4 AND agent_id IS DISTINCT FROM $2)"
    " UPDATE darkspere.messages SET agent_id = $2, updated_at = pg_catalog.now()"
    "  WHERE message_id = $3 AND account_id = $4",
    4,
    {INT8OID, INT8OID, INT8OID, INT8OID},
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
    "UPDATE darkspere.jobs SET state = 'dead', last_error = $2, finished_at = pg_catalog.now(), lease_until = NULL"
    " WHERE job_id = $1",
    2,
    {INT8OID, TEXTOID},
    nullptr};

// The dead job's message fails with it (a statement of its own: `jobs` and `messages` live apart on Citus).
static Statement kDeadMessage = {
    "UPDATE darkspere.messages m SET status = 'failed', updated_at = pg_catalog.now()"
    " WHERE m.message_id = $1 AND m.account_id = $2"
    " RETURNING" DS_FAILED_MESSAGE_COLUMNS,
    2,
    {INT8OID, INT8OID},
    nullptr};

static Statement kProbeFailed = {
    "UPDATE darkspere.jobs SET state = 'done', last_error = $2, finished_at = pg_catalog.now(), lease_until = NULL"
    " WHERE job_id = $1",
    2,
    {INT8OID, TEXTOID},
    nullptr};

// A stripe_meter job's end: its meter_reports row is reported, or failed for good (billing, issue #15).
static Statement kMeterReportDone = {
    "SELECT darkspere.meter_report_done($1, $2, $3, $4)", 4, {INT8OID, BOOLOID, TEXTOID, INT8OID}, nullptr};

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
static void dead_letter(int64 job_id, int64 account_id, int64 message_id, const char *error,
                        bool send_fallback) {
    Datum args[2] = {Int64GetDatum(job_id), text_datum(error)};
    spi_run(kDeadLetter, args, nullptr, false, 0);
    if (message_id == 0) {
        return;
    }
    Datum message[2] = {Int64GetDatum(message_id), Int64GetDatum(account_id)};
    SpiResult failed = spi_run(kDeadMessage, message, nullptr, false, 1);
    if (!failed.empty() && send_fallback) {
        enqueue_fallback_reply(failed);
    }
}

// The agent tag the turn's service number requires (NULL: any agent): failover stays among the agents that
// carry it.
static Statement kTurnAgentTag = {
    "SELECT n.agent_tag FROM darkspere.messages m JOIN darkspere.numbers n ON n.number = m.service_number"
    " WHERE m.message_id = $1 AND m.account_id = $2",
    2,
    {INT8OID, INT8OID},
    nullptr};

// turn_agent_tag — numbers.agent_tag of the message's service number, or nullptr (none, or no message).
static char *turn_agent_tag(int64 account_id, int64 message_id) {
    if (message_id == 0) {
        return nullptr;
    }
    Datum args[2] = {Int64GetDatum(message_id), Int64GetDatum(account_id)};
    SpiResult tag = spi_run(kTurnAgentTag, args, nullptr, true, 1);
    return tag.empty() ? nullptr : tag.text_copy(0, 1, CurrentMemoryContext);
}

static void fail_agent_call(int64 job_id, int attempt, int max_attempts, int64 account_id, int64 session_id,
                            int64 message_id, int64 agent_id, ArrayType *tried, const char *error,
                            bool retryable) {
    agent_load_add(account_id, agent_id, -1);
    if (agent_id != 0) {
        health_record(account_id, agent_id, false, 0, false);
    }
    if (!retryable || attempt >= max_attempts) {
        trace_job_failed(account_id, message_id, job_id, attempt, "agent_call", agent_id, error, retryable,
                         "dead_lettered", 0, 0);
        dead_letter(job_id, account_id, message_id, error, true);
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
    char *agent_tag = turn_agent_tag(account_id, message_id);
    int64 next = pick_agent(account_id, agent_tag, exclude, nelems);
    if (next == 0) {
        next = pick_agent(account_id, agent_tag, nullptr, 0);
        delay = backoff_seconds(attempt);
    }
    if (next == 0) {
        trace_job_failed(account_id, message_id, job_id, attempt, "agent_call", agent_id, error, retryable,
                         "dead_lettered", 0, 0);
        dead_letter(job_id, account_id, message_id, error, true);
        return;
    }
    trace_job_failed(account_id, message_id, job_id, attempt, "agent_call", agent_id, error, retryable,
                     next != agent_id ? "failover" : "retry", next, delay);
    Datum args[4] = {Int64GetDatum(job_id), Int64GetDatum(next), Float8GetDatum(delay), text_datum(error)};
    spi_run(kRetryOnAgent, args, nullptr, false, 0);
    agent_load_add(account_id, next, 1);
    if (next != agent_id && session_id != 0) {
        Datum move[4] = {Int64GetDatum(session_id), Int64GetDatum(next), Int64GetDatum(message_id),
                         Int64GetDatum(account_id)};
        spi_run(kMoveSession, move, nullptr, false, 0);
    }
    notify_worker();
}

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

// complete_health_probe — a probe's outcome: {"ok": bool, "latency_ms": number, "error": string}; anything
// but ok = true is a failed probe.
static void complete_health_probe(int64 account_id, int64 agent_id, Jsonb *result) {
    JsonbValue *ok_value = jsonb_key(result, "ok");
    bool ok = ok_value != nullptr && ok_value->type == jbvBool && ok_value->val.boolean;
    int32 latency_ms = 0;
    bool latency_known = result_latency(result, &latency_ms);
    char *error = jsonb_text(jsonb_key(result, "error"));
    if (error != nullptr && strlen(error) > 200) {
        error[200] = '\0';  // a reason, not a document (pg_mbcliplen keeps a character whole)
        error[pg_mbcliplen(error, 200, 200)] = '\0';
    }
    if (!ok && error == nullptr) {
        error = pstrdup("probe failed");
    }
    probe_record(account_id, agent_id, ok, latency_ms, latency_known, ok ? nullptr : error);
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
        complete_agent_call(job_id, attempt, job.get_int64(0, 2), message_id, agent_id, result);
    } else if (strcmp(kind, "sms_send") == 0) {
        complete_sms_send(job_id, attempt, job.get_int64(0, 2), message_id, result);
    } else if (strcmp(kind, "health_probe") == 0) {
        complete_health_probe(job.get_int64(0, 2), agent_id, result);
    } else if (strcmp(kind, "stripe_meter") == 0) {
        Datum done[4] = {Int64GetDatum(job_id), BoolGetDatum(true), (Datum)0,
                         Int64GetDatum(job.get_int64(0, 2))};
        spi_run(kMeterReportDone, done, "  n ", false, 0);
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

    if (strcmp(kind, "health_probe") == 0) {
        // A probe the worker could not run (it does not know the kind, or the payload was unusable) counts as
        // a failed probe; it is not retried (the next one is scheduled) and not kept as a dead letter.
        probe_record(account_id, agent_id, false, 0, false, error);
        Datum args2[2] = {Int64GetDatum(job_id), text_datum(error)};
        spi_run(kProbeFailed, args2, nullptr, false, 0);
    } else if (strcmp(kind, "agent_call") == 0) {
        fail_agent_call(job_id, attempt, max_attempts, account_id, session_id, message_id, agent_id, tried,
                        error, retryable);
    } else if (retryable && attempt < max_attempts) {
        double delay = backoff_seconds(attempt);
        trace_job_failed(account_id, message_id, job_id, attempt, kind, 0, error, retryable, "retry", 0,
                         delay);
        Datum retry[3] = {Int64GetDatum(job_id), Float8GetDatum(delay), text_datum(error)};
        spi_run(kRetryLater, retry, nullptr, false, 0);
    } else {
        trace_job_failed(account_id, message_id, job_id, attempt, kind, 0, error, retryable, "dead_lettered",
                         0, 0);
        dead_letter(job_id, account_id, message_id, error, false);
        if (strcmp(kind, "stripe_meter") == 0) {
            Datum done[4] = {Int64GetDatum(job_id), BoolGetDatum(false), text_datum(error),
                             Int64GetDatum(account_id)};
            spi_run(kMeterReportDone, done, nullptr, false, 0);
        }
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
    "SELECT kind, account_id, message_id FROM darkspere.jobs WHERE job_id = $1 AND state = 'dead' FOR UPDATE",
    1,
    {INT8OID},
    nullptr};
static Statement kRequeuedMessage = {
    "UPDATE darkspere.messages SET status = CASE direction WHEN 'in' THEN 'routed' ELSE 'pending' END,"
    "       updated_at = pg_catalog.now() WHERE message_id = $1 AND account_id = $2",
    2,
    {INT8OID, INT8OID},
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
        agent_id = pick_agent(account_id, turn_agent_tag(account_id, dead.get_int64(0, 3)), nullptr, 0);
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
        Datum msg[2] = {Int64GetDatum(message_id), Int64GetDatum(account_id)};
        spi_run(kRequeuedMessage, msg, nullptr, false, 0);
    }
    agent_load_add(account_id, agent_id, 1);
    notify_worker();
    SPI_finish();
    PG_RETURN_BOOL(true);
}
