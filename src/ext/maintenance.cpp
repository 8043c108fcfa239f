// src/ext/maintenance.cpp — tick(): the periodic housekeeping every worker calls on a timer.
//
// Steps, each bounded so one call stays short: end idle sessions (their messages still waiting for an agent
// end with them, as 'expired'); make jobs whose lease expired claimable again (or dead-letter them when out
// of attempts) — this is the whole crash-recovery story; route messages that were queued for want of an
// agent, accounts in turns (route_waiting.cpp); prune finished jobs and stale rate-limit rows; apply the
// retention settings (delete old messages, redact old bodies, delete old delivery, consent and agent events
// and empty ended sessions); schedule agent health probes and prune old probe results (probes.cpp); billing's
// hourly meter reports and monthly statements (darkspere.billing_tick). Several workers may call tick() at
// once: a transaction-level advisory lock lets one run and the others return {"skipped": true} at once.
//
// Retention (docs/operations.md, "Retention"): each kind is one LIMITed batch per call, found through an
// index on its age in age order, so a backlog is worked off a batch per tick.
//
// A row another transaction holds is passed over (FOR UPDATE SKIP LOCKED), never waited for, and taken by a
// later tick: a long transaction of an operator must not stall crash recovery and routing.
//
// Cross-tenant work on Citus (docs/scaling.md): the tenant tables are distributed by account, and Citus takes
// no row locks in a statement that reads several shards. So a step that spans tenants and locks rows reads
// its batch without locks (account and id), then locks and changes it with its condition checked again, in
// one statement for the whole batch on one PostgreSQL and in one statement per account on Citus
// (for_each_tenant, tenant_batch.hpp), where each stays on its tenant's shard. Rows nobody else ever locks
// (events, checks, traces) are deleted in one statement by key. Times are parameters (retention_cutoff), and
// `jobs` (a coordinator table on Citus) is never joined with a tenant table in one statement.
#include "ext/errors.hpp"
#include "ext/plan_gate.hpp"
#include "ext/probes.hpp"
#include "ext/queue.hpp"
#include "ext/routing.hpp"
#include "ext/sessions.hpp"
#include "ext/settings.hpp"
#include "ext/spi_plans.hpp"
#include "ext/tenant_batch.hpp"
#include "ext/trace.hpp"

#include "utils/fmgrprotos.h"

namespace darkspere {

constexpr int32 kTickLockClass = 0x44537469;  // "DSti"
constexpr int kTickBatch = 1000;              // rows per step and call

static Statement kTryLock = {"SELECT pg_catalog.pg_try_advisory_xact_lock($1, 0)", 1, {INT4OID}, nullptr};

// Sessions idle since before $1: a batch of $2 (account, id), read without locks.
static Statement kIdleSessions = {
    "SELECT account_id, session_id FROM darkspere.sessions WHERE state = 'active' AND last_activity_at < $1"
    " LIMIT $2",
    2,
    {TIMESTAMPTZOID, INT4OID},
    nullptr};

// A message that waited for an agent for the whole life of its session ends with it: 'expired' (never
// routed, never answered; kept like every message, not deleted). $1 accounts, $2 sessions, $3 the idle
// cutoff, $4 now. Returns the sessions and messages ended.
static Statement kExpireSessions = {
    "WITH s AS (UPDATE darkspere.sessions s SET state = 'expired', ended_at = $4"
    "            WHERE s.account_id = ANY ($1) AND s.session_id IN ("
    "                  SELECT session_id FROM darkspere.sessions"
    "                   WHERE account_id = ANY ($1) AND session_id = ANY ($2) AND state = 'active'"
    "                     AND last_activity_at < $3 FOR UPDATE SKIP LOCKED)"
    "            RETURNING s.account_id, s.session_id),"
    "     m AS (UPDATE darkspere.messages m SET status = 'expired', updated_at = $4 FROM s"
    "            WHERE m.account_id = s.account_id AND m.session_id = s.session_id AND m.status = 'waiting'"
    "            RETURNING 1)"
    " SELECT (SELECT count(*) FROM s), (SELECT count(*) FROM m)",
    4,
    {INT8ARRAYOID, INT8ARRAYOID, TIMESTAMPTZOID, TIMESTAMPTZOID},
    nullptr};

// Expired leases: back to pending (the crashed attempt counts), or dead when out of attempts. A health probe
// whose worker went away is simply done: it says nothing about the agent, and the next one is scheduled.
// Each reclaimed message job is then traced as a failed attempt (`<kind>_finished`, ok false, the lease
// error) followed by `retry` or `dead_lettered`, as a failure the worker reported would be (reclaim_leases).
// $2 now.
static Statement kReclaim = {
    "UPDATE darkspere.jobs j SET state = CASE WHEN j.kind = 'health_probe' THEN 'done'"
    "                                         WHEN j.attempt >= j.max_attempts THEN 'dead' ELSE 'pending' END,"
    "       last_error = 'lease expired (worker ' || COALESCE(j.claimed_by, '?') || ' did not answer)',"
    "       finished_at = CASE WHEN j.attempt >= j.max_attempts OR j.kind = 'health_probe' THEN pg_catalog.now()"
    "                     END,"
    "       claimed_by = NULL, lease_until = NULL"
    " WHERE j.job_id IN (SELECT job_id FROM darkspere.jobs"
    "                     WHERE state = 'running' AND lease_until < $2"
    "                     LIMIT $1 FOR UPDATE SKIP LOCKED)"
    " RETURNING j.job_id, j.state, j.kind, j.agent_id, j.message_id, j.account_id, j.attempt, j.last_error",
    2,
    {INT4OID, TIMESTAMPTZOID},
    nullptr};

static Statement kDeadMessage = {
    "UPDATE darkspere.messages m SET status = 'failed', updated_at = pg_catalog.now()"
    " WHERE message_id = $1 AND account_id = $2"
    " RETURNING" DS_FAILED_MESSAGE_COLUMNS,
    2,
    {INT8OID, INT8OID},
    nullptr};

static Statement kPruneJobs = {
    "DELETE FROM darkspere.jobs WHERE job_id IN ("
    "  SELECT job_id FROM darkspere.jobs"
    "   WHERE (state = 'done' AND finished_at < pg_catalog.now() - pg_catalog.make_interval(secs => $1))"
    "      OR (state = 'dead' AND finished_at < pg_catalog.now() - pg_catalog.make_interval(secs => $2))"
    "   LIMIT $3)",
    3,
    {INT4OID, INT4OID, INT4OID},
    nullptr};

static Statement kPruneLimits = {
    "DELETE FROM darkspere.rate_limit_state WHERE ctid = ANY (ARRAY("
    "  SELECT ctid FROM darkspere.rate_limit_state"
    "   WHERE (blocked_until IS NULL OR blocked_until < pg_catalog.now())"
    "     AND window_start < pg_catalog.now() - interval '1 hour'"
    "   LIMIT $1))",
    1,
    {INT4OID},
    nullptr};

// Retention. A message (or its body) stays while it may still be needed: while it waits for an agent
// ('waiting', routed by tick()) and while a pending or running job refers to it (the job reads its body).
// So these three take three steps (retain_idle): the oldest candidates ($1 cutoff, $2 batch: account and id),
// those of them no job in flight names (k…NotInFlight, on `jobs` alone: cost in proportion to the batch,
// through the partial indexes of the queue), then the change ($1 accounts, $2 ids, $3 cutoff) on those rows
// that are not locked, their condition checked again.
static Statement kOldMessages = {
    "SELECT m.account_id, m.message_id FROM darkspere.messages m"
    " WHERE m.created_at < $1 AND m.status <> 'waiting' ORDER BY m.created_at LIMIT $2",
    2,
    {TIMESTAMPTZOID, INT4OID},
    nullptr};

#define DS_NOT_IN_FLIGHT(column)                                                                                \
    "SELECT k.account_id, k.id FROM unnest($1::bigint[], $2::bigint[]) AS k(account_id, id)"                    \
    " WHERE NOT EXISTS (SELECT 1 FROM darkspere.jobs j WHERE j.state = 'pending' AND j." column                 \
    " = k.id)"                                                                                                  \
    "   AND NOT EXISTS (SELECT 1 FROM darkspere.jobs j WHERE j.lease_until IS NOT NULL AND j.state = 'running'" \
    "                      AND j." column " = k.id)"

static Statement kMessagesNotInFlight = {
    DS_NOT_IN_FLIGHT("message_id"), 2, {INT8ARRAYOID, INT8ARRAYOID}, nullptr};
static Statement kSessionsNotInFlight = {
    DS_NOT_IN_FLIGHT("session_id"), 2, {INT8ARRAYOID, INT8ARRAYOID}, nullptr};

#undef DS_NOT_IN_FLIGHT

static Statement kPruneMessages = {
    "DELETE FROM darkspere.messages WHERE account_id = ANY ($1) AND message_id IN ("
    "  SELECT message_id FROM darkspere.messages"
    "   WHERE account_id = ANY ($1) AND message_id = ANY ($2) AND created_at < $3 AND status <> 'waiting'"
    "   FOR UPDATE SKIP LOCKED)",
    3,
    {INT8ARRAYOID, INT8ARRAYOID, TIMESTAMPTZOID},
    nullptr};

// The body goes; everything billing and usage read (direction, status, segments, encoding, account, number,
// times) stays. body_redacted_at says when; messages_unredacted holds only the bodies still there.
static Statement kUnredactedMessages = {
    "SELECT m.account_id, m.message_id FROM darkspere.messages m"
    " WHERE m.body_redacted_at IS NULL AND m.created_at < $1 AND m.status <> 'waiting'"
    " ORDER BY m.created_at LIMIT $2",
    2,
    {TIMESTAMPTZOID, INT4OID},
    nullptr};

static Statement kRedactBodies = {
    "UPDATE darkspere.messages SET body = '', body_redacted_at = pg_catalog.now()"
    " WHERE account_id = ANY ($1) AND message_id IN ("
    "  SELECT message_id FROM darkspere.messages"
    "   WHERE account_id = ANY ($1) AND message_id = ANY ($2) AND body_redacted_at IS NULL AND created_at < $3"
    "     AND status <> 'waiting' FOR UPDATE SKIP LOCKED)",
    3,
    {INT8ARRAYOID, INT8ARRAYOID, TIMESTAMPTZOID},
    nullptr};

// An ended session goes only once no message of it is left (messages would go with it: ON DELETE CASCADE)
// and no job in flight names it; an active session never. In kPruneSessions every table names the accounts
// ($1), the messages too: Citus sends a statement that locks rows to one shard only when each table is
// pinned.
static Statement kEndedSessions = {
    "SELECT s.account_id, s.session_id FROM darkspere.sessions s"
    " WHERE s.ended_at IS NOT NULL AND s.state <> 'active' AND s.ended_at < $1"
    "   AND NOT EXISTS (SELECT 1 FROM darkspere.messages m"
    "                    WHERE m.account_id = s.account_id AND m.session_id = s.session_id)"
    " ORDER BY s.ended_at LIMIT $2",
    2,
    {TIMESTAMPTZOID, INT4OID},
    nullptr};

static Statement kPruneSessions = {
    "DELETE FROM darkspere.sessions WHERE account_id = ANY ($1) AND session_id IN ("
    "  SELECT s.session_id FROM darkspere.sessions s"
    "   WHERE s.account_id = ANY ($1) AND s.session_id = ANY ($2)"
    "     AND s.ended_at IS NOT NULL AND s.state <> 'active' AND s.ended_at < $3"
    "     AND NOT EXISTS (SELECT 1 FROM darkspere.messages m"
    "                      WHERE m.account_id = ANY ($1) AND m.account_id = s.account_id"
    "                        AND m.session_id = s.session_id)"
    "   FOR UPDATE SKIP LOCKED)",
    3,
    {INT8ARRAYOID, INT8ARRAYOID, TIMESTAMPTZOID},
    nullptr};

// delivery_events and stripe_events are global tables (coordinator tables on Citus): locked rows are skipped.
static Statement kPruneDeliveryEvents = {
    "DELETE FROM darkspere.delivery_events WHERE event_id = ANY (ARRAY("
    "  SELECT event_id FROM darkspere.delivery_events"
    "   WHERE received_at < $1 ORDER BY received_at LIMIT $2 FOR UPDATE SKIP LOCKED))",
    2,
    {TIMESTAMPTZOID, INT4OID},
    nullptr};

// Consent and agent events are written once and never updated: nothing to wait for.
static Statement kPruneConsentEvents = {
    "DELETE FROM darkspere.consent_events c USING ("
    "  SELECT account_id, event_id FROM darkspere.consent_events WHERE at < $1 ORDER BY at LIMIT $2) old"
    " WHERE c.account_id = old.account_id AND c.event_id = old.event_id",
    2,
    {TIMESTAMPTZOID, INT4OID},
    nullptr};

// Stripe events (darkspere.stripe_event) after 30 days: Stripe retries an event for 3 days at most.
static Statement kPruneStripeEvents = {
    "DELETE FROM darkspere.stripe_events WHERE event_id = ANY (ARRAY("
    "  SELECT event_id FROM darkspere.stripe_events"
    "   WHERE received_at < $1 ORDER BY received_at LIMIT $2 FOR UPDATE SKIP LOCKED))",
    2,
    {TIMESTAMPTZOID, INT4OID},
    nullptr};

// Agent status changes (agent_events) after darkspere.agent_event_retention, through agent_events_at.
static Statement kPruneAgentEvents = {
    "DELETE FROM darkspere.agent_events e USING ("
    "  SELECT account_id, agent_id, event_id FROM darkspere.agent_events WHERE at < $1 ORDER BY at LIMIT $2) old"
    " WHERE e.account_id = old.account_id AND e.agent_id = old.agent_id AND e.event_id = old.event_id",
    2,
    {TIMESTAMPTZOID, INT4OID},
    nullptr};

// The alert rules (darkspere.evaluate_alerts in the upgrade script): {fired, resolved}, or {skipped} while
// another tick evaluates them.
static Statement kEvaluateAlerts = {"SELECT darkspere.evaluate_alerts()", 0, {}, nullptr};

// The retention counts are reported only when not zero, so the report of a tick with nothing to prune (and
// every caller reading the report whole) stays as it was before retention existed.
static Statement kReport = {
    "SELECT pg_catalog.jsonb_build_object('expired_sessions', $1, 'reclaimed_jobs', $2, 'dead_lettered', $3,"
    "                                     'routed_messages', $4, 'pruned_jobs', $5, 'pruned_rate_limits', "
    "$6, 'expired_messages', $7)"
    " || pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object("
    "      'pruned_messages', NULLIF($8, 0), 'redacted_bodies', NULLIF($9, 0), 'pruned_sessions', NULLIF($10, 0),"
    "      'pruned_delivery_events', NULLIF($11, 0), 'pruned_consent_events', NULLIF($12, 0),"
    "      'probes_scheduled', NULLIF($13, 0), 'pruned_agent_checks', NULLIF($14, 0),"
    "      'pruned_stripe_events', NULLIF($15, 0), 'pruned_agent_events', NULLIF($16, 0),"
    "      'pruned_trace_events', NULLIF($17, 0),"
    "      'alerts_fired', NULLIF(($18)->>'fired', '0')::int,"
    "      'alerts_resolved', NULLIF(($18)->>'resolved', '0')::int))",
    18,
    {INT8OID, INT8OID, INT8OID, INT8OID, INT8OID, INT8OID, INT8OID, INT8OID, INT8OID, INT8OID, INT8OID,
     INT8OID, INT8OID, INT8OID, INT8OID, INT8OID, INT8OID, JSONBOID},
    nullptr};

// Billing (issue #15): the hourly meter reports and, after a month ends, its statements (billing_tick, SQL).
// Its counts join the report only when not zero.
static Statement kBillingTick = {
    "SELECT pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object("
    "         'meter_reports_queued', NULLIF((b ->> 'meter_reports_queued')::int, 0),"
    "         'statements_closed', NULLIF((b ->> 'statements_closed')::int, 0)))"
    "  FROM darkspere.billing_tick() b",
    0,
    {},
    nullptr};

static Statement kSkipped = {"SELECT '{\"skipped\": true}'::jsonb", 0, {}, nullptr};

static Statement kQueueReport = {
    "SELECT pg_catalog.jsonb_build_object('reclaimed_jobs', $1, 'dead_lettered', $2, 'pruned_jobs', $3,"
    "                                     'pruned_rate_limits', $4)",
    4,
    {INT8OID, INT8OID, INT8OID, INT8OID},
    nullptr};

// reclaim_leases — returns reclaimed jobs; counts dead-lettered ones in *dead.
static int64 reclaim_leases(int64 *dead) {
    MemoryContext caller = CurrentMemoryContext;
    Datum args[2] = {Int32GetDatum(kTickBatch), TimestampTzGetDatum(GetCurrentTimestamp())};
    SpiResult reclaimed = spi_run(kReclaim, args, nullptr, false, 0);
    uint64 rows = reclaimed.rows();
    for (uint64 r = 0; r < rows; r++) {
        char *state = reclaimed.text_copy(r, 2, caller);
        char *kind = reclaimed.text_copy(r, 3, caller);
        int64 agent_id = reclaimed.get_int64(r, 4);
        int64 message_id = reclaimed.get_int64(r, 5);
        int64 account_id = reclaimed.get_int64(r, 6);
        bool is_dead = strcmp(state, "dead") == 0;
        bool agent_call = strcmp(kind, "agent_call") == 0;
        if (agent_call || strcmp(kind, "sms_send") == 0) {
            trace_job_failed(account_id, message_id, reclaimed.get_int64(r, 1), reclaimed.get_int32(r, 7),
                             kind, agent_id, reclaimed.text_copy(r, 8, caller), !is_dead,
                             is_dead ? "dead_lettered" : "retry", 0, 0, "lease_expired");
        }
        if (!is_dead) {
            continue;
        }
        // A dead agent call frees its agent's slot; a dead job fails its message, and a turn no agent
        // answered gets the account's fallback text.
        (*dead)++;
        agent_load_add(account_id, agent_call ? agent_id : 0, -1);
        if (message_id == 0) {
            continue;
        }
        Datum msg[2] = {Int64GetDatum(message_id), Int64GetDatum(account_id)};
        SpiResult failed = spi_run(kDeadMessage, msg, nullptr, false, 1);
        if (!failed.empty() && agent_call && agent_id != 0) {
            enqueue_fallback_reply(failed);
        }
    }
    return static_cast<int64>(rows);
}

// retain — one batch of a retention statement ($1 cutoff, $2 batch) when its period is set (0: keep for
// ever); rows affected.
static int64 retain(Statement &statement, int period_s) {
    if (period_s <= 0) {
        return 0;
    }
    Datum args[2] = {TimestampTzGetDatum(retention_cutoff(period_s)), Int32GetDatum(kTickBatch)};
    return static_cast<int64>(spi_run(statement, args, nullptr, false, 0).rows());
}

// retain_idle — one batch of a retention whose rows a job in flight may still need: the candidates (`old`: $1
// cutoff, $2 batch → account, id), those no job in flight names (`idle`: $1 accounts, $2 ids → account, id),
// then `change` on them ($1 accounts, $2 ids, $3 cutoff); rows changed.
static int64 retain_idle(Statement &old, Statement &idle, Statement &change, int period_s, bool per_tenant) {
    if (period_s <= 0) {
        return 0;
    }
    TimestampTz cutoff = retention_cutoff(period_s);
    Datum args[2] = {TimestampTzGetDatum(cutoff), Int32GetDatum(kTickBatch)};
    SpiResult candidates = spi_run(old, args, nullptr, false, 0);
    int64 changed = 0;
    for_each_tenant_kept(candidates, idle, per_tenant, [&](Datum accounts, Datum ids) {
        Datum change_args[3] = {accounts, ids, TimestampTzGetDatum(cutoff)};
        changed += static_cast<int64>(spi_run(change, change_args, nullptr, false, 0).rows());
    });
    return changed;
}

// expire_sessions — ends idle sessions and their waiting messages; counts both.
static void expire_sessions(bool per_tenant, int64 *sessions, int64 *messages) {
    TimestampTz cutoff = retention_cutoff(session_idle_timeout_s);
    Datum args[2] = {TimestampTzGetDatum(cutoff), Int32GetDatum(kTickBatch)};
    SpiResult idle = spi_run(kIdleSessions, args, nullptr, false, 0);
    for_each_tenant(idle, per_tenant, [&](Datum accounts, Datum ids) {
        Datum expire[4] = {accounts, ids, TimestampTzGetDatum(cutoff),
                           TimestampTzGetDatum(GetCurrentTransactionStartTimestamp())};
        SpiResult ended = spi_run(kExpireSessions, expire, nullptr, false, 1);
        *sessions += ended.get_int64(0, 1);
        *messages += ended.get_int64(0, 2);
    });
}

}  // namespace darkspere

using namespace darkspere;

// tick_locked — takes tick()'s advisory lock (transaction-level) in the caller's SPI connection; false when
// another tick holds it.
static bool tick_locked() {
    Datum lock[1] = {Int32GetDatum(kTickLockClass)};
    return spi_run(kTryLock, lock, nullptr, false, 1).get_bool(0, 1);
}

// skipped_tick — {"skipped": true}, outside SPI (SPI is finished here).
static Datum skipped_tick() {
    bool isnull;
    SpiResult skipped_row = spi_run(kSkipped, nullptr, nullptr, true, 1);
    Datum skipped = SPI_datumTransfer(skipped_row.get_datum(0, 1, &isnull), false, -1);
    SPI_finish();
    return skipped;
}

// darkspere_tick_queue — tick()'s queue steps alone, over the jobs of the node it runs on: expired leases
// reclaimed (or dead-lettered), finished jobs and stale rate-limit rows pruned. On Citus with one queue per
// node (docs/scaling.md) the worker calls it on every worker node, where delegated texts queue their jobs;
// tick() on the coordinator does the same for the coordinator's queue and everything that spans tenants.
DARKSPERE_FUNCTION(darkspere_tick_queue) {
    SPI_connect();
    if (!tick_locked()) {
        PG_RETURN_DATUM(skipped_tick());
    }
    int64 dead = 0;
    int64 reclaimed = reclaim_leases(&dead);
    Datum prune[3] = {Int32GetDatum(job_retention_s), Int32GetDatum(dead_job_retention_s),
                      Int32GetDatum(kTickBatch * 5)};
    int64 pruned_jobs = static_cast<int64>(spi_run(kPruneJobs, prune, nullptr, false, 0).rows());
    Datum prune_limits[1] = {Int32GetDatum(kTickBatch * 5)};
    int64 pruned_limits = static_cast<int64>(spi_run(kPruneLimits, prune_limits, nullptr, false, 0).rows());
    Datum report[4] = {Int64GetDatum(reclaimed), Int64GetDatum(dead), Int64GetDatum(pruned_jobs),
                       Int64GetDatum(pruned_limits)};
    bool isnull;
    Datum result = SPI_datumTransfer(
        spi_run(kQueueReport, report, nullptr, false, 1).get_datum(0, 1, &isnull), false, -1);
    SPI_finish();
    PG_RETURN_DATUM(result);
}

// darkspere_tick — one round of housekeeping; returns what it did as jsonb.
DARKSPERE_FUNCTION(darkspere_tick) {
    SPI_connect();
    bool isnull;
    if (!tick_locked()) {
        PG_RETURN_DATUM(skipped_tick());
    }
    bool per_tenant = tenant_tables_distributed();
    int64 expired = 0;
    int64 expired_messages = 0;
    expire_sessions(per_tenant, &expired, &expired_messages);
    int64 dead = 0;
    int64 reclaimed = reclaim_leases(&dead);
    int64 routed = route_queued();
    Datum prune[3] = {Int32GetDatum(job_retention_s), Int32GetDatum(dead_job_retention_s),
                      Int32GetDatum(kTickBatch * 5)};
    int64 pruned_jobs = static_cast<int64>(spi_run(kPruneJobs, prune, nullptr, false, 0).rows());
    Datum prune_limits[1] = {Int32GetDatum(kTickBatch * 5)};
    int64 pruned_limits = static_cast<int64>(spi_run(kPruneLimits, prune_limits, nullptr, false, 0).rows());

    // Messages before sessions (a session goes once its messages have); a session waits for its messages'
    // retention too, so with messages kept for ever (message_retention = 0) no session is looked at: every
    // ended session still holds its messages, and scanning them each tick would find nothing.
    int64 pruned_messages =
        retain_idle(kOldMessages, kMessagesNotInFlight, kPruneMessages, message_retention_s, per_tenant);
    int64 redacted_bodies =
        retain_idle(kUnredactedMessages, kMessagesNotInFlight, kRedactBodies, body_retention_s, per_tenant);
    int64 pruned_sessions = 0;
    if (message_retention_s > 0 && session_retention_s > 0) {
        pruned_sessions = retain_idle(kEndedSessions, kSessionsNotInFlight, kPruneSessions,
                                      Max(session_retention_s, message_retention_s), per_tenant);
    }
    int64 pruned_delivery_events = retain(kPruneDeliveryEvents, delivery_event_retention_s);
    int64 pruned_consent_events = retain(kPruneConsentEvents, consent_event_retention_s);
    int64 probes_scheduled = schedule_probes(per_tenant);
    int64 pruned_agent_checks = prune_agent_checks(kTickBatch);
    int64 pruned_stripe_events = retain(kPruneStripeEvents, kStripeEventRetentionS);
    int64 pruned_agent_events = retain(kPruneAgentEvents, agent_event_retention_s);
    int64 pruned_trace_events = trace_prune(trace_retention_s, kTickBatch);
    // Last: the rules read what this tick changed (agents' status, reclaimed jobs' trace rows).
    SpiResult evaluated = spi_run(kEvaluateAlerts, nullptr, nullptr, false, 1);
    Datum alerts = evaluated.get_datum(0, 1, &isnull);

    Datum report[18] = {Int64GetDatum(expired),
                        Int64GetDatum(reclaimed),
                        Int64GetDatum(dead),
                        Int64GetDatum(routed),
                        Int64GetDatum(pruned_jobs),
                        Int64GetDatum(pruned_limits),
                        Int64GetDatum(expired_messages),
                        Int64GetDatum(pruned_messages),
                        Int64GetDatum(redacted_bodies),
                        Int64GetDatum(pruned_sessions),
                        Int64GetDatum(pruned_delivery_events),
                        Int64GetDatum(pruned_consent_events),
                        Int64GetDatum(probes_scheduled),
                        Int64GetDatum(pruned_agent_checks),
                        Int64GetDatum(pruned_stripe_events),
                        Int64GetDatum(pruned_agent_events),
                        Int64GetDatum(pruned_trace_events),
                        alerts};
    SpiResult row = spi_run(kReport, report, nullptr, false, 1);
    SpiResult billing = spi_run(kBillingTick, nullptr, nullptr, false, 1);
    Datum result =
        DirectFunctionCall2(jsonb_concat, row.get_datum(0, 1, &isnull), billing.get_datum(0, 1, &isnull));
    result = SPI_datumTransfer(result, false, -1);
    SPI_finish();
    PG_RETURN_DATUM(result);
}
