// src/ext/probes.cpp — active health probes: tick() schedules a health_probe job per active or unhealthy
// agent every darkspere.probe_interval, the worker runs it (http: GET {origin}{probe_path}; mcp: ping) and
// completes it with {ok, latency_ms, error}; the result feeds the health score like traffic does, is kept in
// darkspere.agent_checks, and after darkspere.auto_disable_after failures in a row an active agent becomes
// 'unhealthy' (the router skips it), after darkspere.auto_recover_after passes in a row it is 'active' again.
// A status a person set ('maintenance', 'disabled') is never changed here: the result path locks the agent
// row FOR UPDATE, as set_agent_status does, and reads the status under that lock.
#include "ext/agent_events.hpp"
#include "ext/agent_secrets.hpp"
#include "ext/health.hpp"
#include "ext/probes.hpp"
#include "ext/settings.hpp"
#include "ext/spi_plans.hpp"
#include "ext/tenant_batch.hpp"
#include "ext/validate.hpp"

extern "C" {
#include "common/pg_prng.h"
}

namespace darkspere {

// Agents due: active or unhealthy, whose next probe time has come (never scheduled first, then the
// longest-waiting), read without locks as (account, agent); $1 now, $2 the batch.
static Statement kDueAgents = {
    "SELECT a.account_id, a.agent_id FROM darkspere.agents a"
    " WHERE a.status IN ('active', 'unhealthy') AND (a.next_probe_at IS NULL OR a.next_probe_at <= $1)"
    " ORDER BY a.next_probe_at NULLS FIRST, a.agent_id LIMIT $2",
    2,
    {TIMESTAMPTZOID, INT4OID},
    nullptr};

// Of those, the ones with no probe of theirs still pending or running (on `jobs` alone).
static Statement kNoProbeInFlight = {
    "SELECT k.account_id, k.agent_id FROM unnest($1::bigint[], $2::bigint[]) AS k(account_id, agent_id)"
    " WHERE NOT EXISTS (SELECT 1 FROM darkspere.jobs o WHERE o.ordering_key = 'probe:' || k.agent_id"
    "                      AND o.state IN ('pending', 'running'))",
    2,
    {INT8ARRAYOID, INT8ARRAYOID},
    nullptr};

// Locks them (SKIP LOCKED: an agent whose row another transaction holds — an ack, a person's change — is
// taken by a later tick), checks again that they are due and moves their next probe time the interval ±10 %
// away, so that agents registered together drift apart instead of being probed in step. The spread comes from
// a hash of the agent and a per-tick seed ($5), not random(), and the time is to_timestamp() of now in Unix
// seconds ($6): Citus refuses volatile functions in a distributed UPDATE, and stable ones (timestamptz +
// interval) on columns. Returns the agents to probe now: an active agent whose heartbeat is newer than the
// interval is not probed this round (the heartbeat counted as a passing probe already); an unhealthy one
// always is, so only probes bring it back. $1 accounts, $2 agents, $3 now, $4 the interval in seconds.
static Statement kMoveProbeTimes = {
    "WITH due AS ("
    "  SELECT a.account_id, a.agent_id,"
    "         a.status = 'active' AND a.last_heartbeat_at IS NOT NULL"
    "         AND a.last_heartbeat_at > $3 - pg_catalog.make_interval(secs => $4) AS heartbeat"
    "    FROM darkspere.agents a"
    "   WHERE a.account_id = ANY ($1) AND a.agent_id = ANY ($2) AND a.status IN ('active', 'unhealthy')"
    "     AND (a.next_probe_at IS NULL OR a.next_probe_at <= $3)"
    "   FOR UPDATE SKIP LOCKED),"
    " moved AS (UPDATE darkspere.agents a"
    "              SET next_probe_at = pg_catalog.to_timestamp($6 + $4 * (0.9 + 0.2"
    "                  * ((pg_catalog.hashint8(a.agent_id # $5) & 65535) / 65535.0)))"
    "             FROM due WHERE a.account_id = due.account_id AND a.agent_id = due.agent_id)"
    " SELECT account_id, agent_id FROM due WHERE NOT heartbeat",
    6,
    {INT8ARRAYOID, INT8ARRAYOID, TIMESTAMPTZOID, FLOAT8OID, INT8OID, FLOAT8OID},
    nullptr};

// The probe jobs: each available at a random point of the first fifth of the interval. $3 the interval.
static Statement kQueueProbes = {
    "INSERT INTO darkspere.jobs (account_id, kind, max_attempts, priority, available_at, idempotency_key,"
    "                            ordering_key, agent_id)"
    " SELECT k.account_id, 'health_probe', 1, 1,"
    "        pg_catalog.clock_timestamp() + pg_catalog.make_interval(secs => $3 * 0.2 * pg_catalog.random()),"
    "        'health_probe:' || k.agent_id || ':' || pg_catalog.txid_current() || ':' || pg_catalog.clock_timestamp(),"
    "        'probe:' || k.agent_id, k.agent_id"
    "   FROM unnest($1::bigint[], $2::bigint[]) AS k(account_id, agent_id)",
    3,
    {INT8ARRAYOID, INT8ARRAYOID, FLOAT8OID},
    nullptr};

int64 schedule_probes(bool per_tenant) {
    if (probe_interval_s <= 0) {
        return 0;
    }
    Datum interval = Float8GetDatum(static_cast<double>(probe_interval_s));
    TimestampTz start = GetCurrentTransactionStartTimestamp();
    Datum now = TimestampTzGetDatum(start);
    Datum unix_now =
        Float8GetDatum(static_cast<double>(start) / USECS_PER_SEC +
                       static_cast<double>(POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY);
    Datum seed = Int64GetDatum(static_cast<int64>(pg_prng_uint64(&pg_global_prng_state) >> 1));
    Datum due_args[2] = {now, Int32GetDatum(kProbesPerTick)};
    SpiResult due = spi_run(kDueAgents, due_args, nullptr, false, 0);
    int64 queued = 0;
    for_each_tenant_kept(due, kNoProbeInFlight, per_tenant, [&](Datum accounts, Datum agents) {
        Datum move[6] = {accounts, agents, now, interval, seed, unix_now};
        SpiResult to_probe = spi_run(kMoveProbeTimes, move, nullptr, false, 0);
        for_each_tenant(to_probe, false, [&](Datum probe_accounts, Datum probe_agents) {
            Datum queue[3] = {probe_accounts, probe_agents, interval};
            queued += static_cast<int64>(spi_run(kQueueProbes, queue, nullptr, false, 0).rows());
        });
    });
    return queued;
}

static Statement kProbePayload = {
    "SELECT pg_catalog.jsonb_build_object("
    "  'agent_id', a.agent_id, 'account_id', a.account_id, 'endpoint', a.endpoint, 'protocol', a.protocol,"
    "  'probe_path', a.probe_path, 'deadline_ms', $3,"
    "  'request_id', 'probe-' || a.agent_id || '-' || (EXTRACT(epoch FROM pg_catalog.now()) * 1000)::bigint),"
    "  a.secret_generation,"
    "  a.secret_rotated_at IS NOT NULL AND a.secret_generation > 1"
    "  AND a.secret_rotated_at + pg_catalog.make_interval(secs => $2) > pg_catalog.now()"
    "  FROM darkspere.agents a WHERE a.agent_id = $1 AND a.account_id = $4 AND a.status IN ('active', 'unhealthy')",
    4,
    {INT8OID, FLOAT8OID, INT4OID, INT8OID},
    nullptr};

Datum probe_payload(int64 account_id, int64 agent_id) {
    Datum args[4] = {Int64GetDatum(agent_id), Float8GetDatum(static_cast<double>(agent_secret_grace_s)),
                     Int32GetDatum(kProbeDeadlineMs), Int64GetDatum(account_id)};
    return payload_with_secrets(agent_id, spi_run(kProbePayload, args, nullptr, false, 1));
}

// The agent row, locked (the same lock set_agent_status takes) before anything about the result is written.
static Statement kLockAgent = {
    "SELECT status, probe_failures, probe_passes FROM darkspere.agents WHERE agent_id = $1 AND account_id = $2"
    " FOR UPDATE",
    2,
    {INT8OID, INT8OID},
    nullptr};

static Statement kInsertCheck = {
    "INSERT INTO darkspere.agent_checks (account_id, agent_id, checked_at, ok, latency_ms, error)"
    " VALUES ($1, $2, pg_catalog.clock_timestamp(), $3, $4, $5)",
    5,
    {INT8OID, INT8OID, BOOLOID, INT4OID, TEXTOID},
    nullptr};

static Statement kStoreRun = {
    "UPDATE darkspere.agents SET probe_failures = $2, probe_passes = $3, status = $4,"
    "       last_probe_at = $6"
    " WHERE agent_id = $1 AND account_id = $5",
    6,
    {INT8OID, INT4OID, INT4OID, TEXTOID, INT8OID, TIMESTAMPTZOID},
    nullptr};

void probe_record(int64 account_id, int64 agent_id, bool ok, int latency_ms, bool latency_known,
                  const char *error) {
    MemoryContext caller = CurrentMemoryContext;
    Datum id[2] = {Int64GetDatum(agent_id), Int64GetDatum(account_id)};
    SpiResult agent = spi_run(kLockAgent, id, nullptr, false, 1);
    if (agent.empty()) {
        return;  // the agent is gone (its account was deleted): nothing to record
    }
    char *status = agent.text_copy(0, 1, caller);
    int32 failures = agent.get_int32(0, 2);
    int32 passes = agent.get_int32(0, 3);

    health_record(account_id, agent_id, ok, latency_ms, latency_known);

    Datum check[5] = {Int64GetDatum(account_id), Int64GetDatum(agent_id), BoolGetDatum(ok),
                      Int32GetDatum(latency_ms), error != nullptr ? text_datum(error) : (Datum)0};
    char check_nulls[5] = {' ', ' ', ' ', null_flag(!latency_known), null_flag(error == nullptr)};
    spi_run(kInsertCheck, check, check_nulls, false, 0);

    failures = ok ? 0 : Min(failures + 1, 1000000);
    passes = ok ? Min(passes + 1, 1000000) : 0;
    const char *to = status;
    const char *reason = nullptr;
    if (strcmp(status, "active") == 0 && failures >= auto_disable_after) {
        to = "unhealthy";
        reason = psprintf("%d consecutive failed health probes (last: %s)", failures,
                          error != nullptr ? error : "failed");
    } else if (strcmp(status, "unhealthy") == 0 && passes >= auto_recover_after) {
        to = "active";
        reason = psprintf("%d consecutive passing health probes", passes);
    }
    Datum store[6] = {Int64GetDatum(agent_id),   Int32GetDatum(failures),
                      Int32GetDatum(passes),     text_datum(to),
                      Int64GetDatum(account_id), TimestampTzGetDatum(GetCurrentTimestamp())};
    spi_run(kStoreRun, store, nullptr, false, 0);
    if (reason != nullptr) {
        agent_event(account_id, agent_id, "probe", status, to, reason);
    }
}

// Oldest first, by key (a row's ctid means nothing across Citus shards), without row locks (Citus takes none
// across shards): a check result is never updated, so there is nothing to wait for.
static Statement kPruneChecks = {
    "DELETE FROM darkspere.agent_checks c USING ("
    "  SELECT account_id, agent_id, check_id FROM darkspere.agent_checks"
    "   WHERE checked_at < $1 ORDER BY checked_at LIMIT $2) old"
    " WHERE c.account_id = old.account_id AND c.agent_id = old.agent_id AND c.check_id = old.check_id",
    2,
    {TIMESTAMPTZOID, INT4OID},
    nullptr};

int64 prune_agent_checks(int batch) {
    if (agent_check_retention_s <= 0) {
        return 0;
    }
    Datum args[2] = {TimestampTzGetDatum(retention_cutoff(agent_check_retention_s)), Int32GetDatum(batch)};
    return static_cast<int64>(spi_run(kPruneChecks, args, nullptr, false, 0).rows());
}

}  // namespace darkspere
