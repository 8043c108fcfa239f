// src/ext/maintenance.cpp — tick(): the periodic housekeeping every worker calls on a timer.
//
// Steps, each bounded so one call stays short: end idle sessions (their messages still waiting for an agent
// end with them, as 'expired'); make jobs whose lease expired claimable again (or dead-letter them when out
// of attempts) — this is the whole crash-recovery story; route messages that were queued for want of an
// agent, accounts in turns; prune finished jobs and stale rate-limit rows; apply the retention settings
// (delete old messages, redact old bodies, delete old delivery, consent and agent events and empty ended
// sessions); schedule agent health probes and prune old probe results (probes.cpp); billing's hourly meter
// reports and monthly statements (darkspere.billing_tick).
// Several workers may call tick() at once: a transaction-level advisory lock lets one run and the others
// return {"skipped": true} at once.
//
// Retention (docs/operations.md, "Retention"): each kind is one LIMITed batch per call, found through an
// index on its age in age order, and locked FOR UPDATE SKIP LOCKED, so a row another transaction holds is
// passed over (taken by a later tick) instead of waited for, and a backlog is worked off a batch per tick.
#include "ext/errors.hpp"
#include "ext/plan_gate.hpp"
#include "ext/probes.hpp"
#include "ext/queue.hpp"
#include "ext/routing.hpp"
#include "ext/sessions.hpp"
#include "ext/settings.hpp"
#include "ext/spi_plans.hpp"
#include "ext/trace.hpp"

#include "utils/fmgrprotos.h"

namespace darkspere {

constexpr int32 kTickLockClass = 0x44537469;  // "DSti"
constexpr int kTickBatch = 1000;              // rows per step and call
constexpr int kRouteBatch = 200;              // queued messages routed per call
constexpr int kRouteAccounts = 100;           // accounts with queued messages visited per call

static Statement kTryLock = {"SELECT pg_catalog.pg_try_advisory_xact_lock($1, 0)", 1, {INT4OID}, nullptr};

// A message that waited for an agent for the whole life of its session ends with it: 'expired' (never
// routed, never answered; kept like every message, not deleted). Returns the sessions and messages ended.
static Statement kExpireSessions = {
    "WITH s AS (UPDATE darkspere.sessions SET state = 'expired', ended_at = pg_catalog.now()"
    "            WHERE session_id IN (SELECT session_id FROM darkspere.sessions"
    "                                  WHERE state = 'active' AND last_activity_at < pg_catalog.now()"
    "                                        - pg_catalog.make_interval(secs => $1)"
    "                                  LIMIT $2 FOR UPDATE SKIP LOCKED)"
    "            RETURNING session_id),"
    "     m AS (UPDATE darkspere.messages m SET status = 'expired', updated_at = pg_catalog.now() FROM s"
    "            WHERE m.session_id = s.session_id AND m.status = 'waiting' RETURNING 1)"
    " SELECT (SELECT count(*) FROM s), (SELECT count(*) FROM m)",
    2,
    {INT4OID, INT4OID},
    nullptr};

// Expired leases: back to pending (the crashed attempt counts), or dead when out of attempts. A health probe
// whose worker went away is simply done: it says nothing about the agent, and the next one is scheduled.
// The same statement traces each reclaimed message job as a failed attempt (`<kind>_finished`, ok false, the
// lease error) followed by `retry` or `dead_lettered`, as a failure the worker reported would be.
static Statement kReclaim = {
    "WITH r AS ("
    "UPDATE darkspere.jobs j SET state = CASE WHEN j.kind = 'health_probe' THEN 'done'"
    "                                         WHEN j.attempt >= j.max_attempts THEN 'dead' ELSE 'pending' END,"
    "       last_error = 'lease expired (worker ' || COALESCE(j.claimed_by, '?') || ' did not answer)',"
    "       finished_at = CASE WHEN j.attempt >= j.max_attempts OR j.kind = 'health_probe' THEN pg_catalog.now()"
    "                     END,"
    "       claimed_by = NULL, lease_until = NULL"
    " WHERE j.job_id IN (SELECT job_id FROM darkspere.jobs"
    "                     WHERE state = 'running' AND lease_until < pg_catalog.clock_timestamp()"
    "                     LIMIT $1 FOR UPDATE SKIP LOCKED)"
    " RETURNING j.job_id, j.state, j.kind, j.agent_id, j.message_id, j.attempt, j.last_error, j.account_id),"
    " t AS ("
    "  INSERT INTO darkspere.trace_events (account_id, request_id, step, agent_id, detail)"
    "  SELECT m.account_id, " DS_TRACE_REQUEST
    ", s.step, s.agent_id, s.detail"
    "    FROM r JOIN darkspere.messages m ON m.message_id = r.message_id CROSS JOIN LATERAL (VALUES"
    "      (1, r.kind || '_finished', r.agent_id, pg_catalog.jsonb_build_object('ok', false, 'job_id', r.job_id,"
    "          'attempt', r.attempt, 'error', r.last_error, 'retryable', r.state = 'pending',"
    "          'message_id', m.message_id)),"
    "      (2, CASE r.state WHEN 'dead' THEN 'dead_lettered' ELSE 'retry' END, NULL::bigint,"
    "          pg_catalog.jsonb_build_object('job_id', r.job_id, 'reason', 'lease_expired')))"
    "      s(ord, step, agent_id, detail)"
    "   WHERE r.kind IN ('agent_call', 'sms_send') ORDER BY r.job_id, s.ord)"
    " SELECT job_id, state, kind, agent_id, message_id, account_id FROM r",
    1,
    {INT4OID},
    nullptr};

static Statement kDeadMessage = {
    "UPDATE darkspere.messages m SET status = 'failed', updated_at = pg_catalog.now() WHERE message_id = $1"
    " RETURNING" DS_FAILED_MESSAGE_COLUMNS,
    1,
    {INT8OID},
    nullptr};

// Routing takes accounts in turns: the accounts with waiting messages after $1 and up to $2, in order, at
// most $3 of them (a loose index scan of messages_waiting_account: one probe per account, however many
// messages wait). The last account served is kept in route_cursor, so the next tick starts after it and no
// account's backlog can keep the others from their turn.
static Statement kWaitingAccounts = {
    "WITH RECURSIVE a(account_id) AS ("
    "  (SELECT m.account_id FROM darkspere.messages m"
    "    WHERE m.status = 'waiting' AND m.account_id > $1 AND m.account_id <= $2"
    "    ORDER BY m.account_id LIMIT 1)"
    "  UNION ALL"
    "  SELECT (SELECT m.account_id FROM darkspere.messages m"
    "           WHERE m.status = 'waiting' AND m.account_id > a.account_id AND m.account_id <= $2"
    "           ORDER BY m.account_id LIMIT 1)"
    "    FROM a WHERE a.account_id IS NOT NULL)"
    " SELECT account_id FROM a WHERE account_id IS NOT NULL LIMIT $3",
    3,
    {INT8OID, INT8OID, INT4OID},
    nullptr};

static Statement kRouteCursor = {"SELECT account_id FROM darkspere.route_cursor", 0, {}, nullptr};
static Statement kSetRouteCursor = {
    "INSERT INTO darkspere.route_cursor (account_id) VALUES ($1)"
    " ON CONFLICT (only_row) DO UPDATE SET account_id = excluded.account_id",
    1,
    {INT8OID},
    nullptr};

// The oldest waiting message of each session of one account (later ones wait behind it), the agent tag its
// number requires, and the session's agent when that agent may keep serving it (sticky: capacity is not
// checked; the tag and the plan's mcp_protocol gate are). Sticky sessions first — they need no pick — then
// the oldest sessions.
static Statement kAccountQueued = {
    "SELECT h.message_id, h.session_id, a.agent_id, n.agent_tag"
    "  FROM (SELECT DISTINCT ON (m.session_id) m.message_id, m.session_id, m.service_number"
    "          FROM darkspere.messages m"
    "         WHERE m.status = 'waiting' AND m.account_id = $1 ORDER BY m.session_id, m.message_id) h"
    "  JOIN darkspere.sessions s ON s.session_id = h.session_id"
    "  LEFT JOIN darkspere.numbers n ON n.number = h.service_number"
    "  LEFT JOIN darkspere.agents a ON a.agent_id = s.agent_id AND a.status = 'active'"
    "        AND a.circuit = 'closed' AND a.health_score >= $2"
    "        AND (n.agent_tag IS NULL OR n.agent_tag = ANY (a.tags)) AND " DS_AGENT_PASSES_MCP_GATE(
        "$1") " ORDER BY a.agent_id IS NULL, h.session_id LIMIT $3",
    3,
    {INT8OID, INT4OID, INT4OID},
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
// The job checks each read a partial index of the queue (jobs_ready, jobs_leases), i.e. cost in proportion to
// the jobs in flight, and only run when a retention is set. `key = ANY (ARRAY(batch))`, not `key IN (batch)`:
// with IN the planner may hash the batch and scan the whole table to join it; with ANY it probes the primary
// key once per row of the batch.
#define DS_NOT_IN_FLIGHT(column, outer)                                                                       \
    " AND NOT EXISTS (SELECT 1 FROM darkspere.jobs j WHERE j.state = 'pending' AND j." column " = " outer     \
    ")"                                                                                                       \
    " AND NOT EXISTS (SELECT 1 FROM darkspere.jobs j WHERE j.lease_until IS NOT NULL AND j.state = 'running'" \
    "                    AND j." column " = " outer ")"

static Statement kPruneMessages = {
    "DELETE FROM darkspere.messages WHERE message_id = ANY (ARRAY("
    "  SELECT m.message_id FROM darkspere.messages m"
    "   WHERE m.created_at < pg_catalog.now() - pg_catalog.make_interval(secs => $1) AND m.status <> 'waiting'" DS_NOT_IN_FLIGHT(
        "message_id", "m.message_id") "   ORDER BY m.created_at LIMIT $2 FOR UPDATE SKIP LOCKED))",
    2,
    {INT4OID, INT4OID},
    nullptr};

// The body goes; everything billing and usage read (direction, status, segments, encoding, account, number,
// times) stays. body_redacted_at says when; messages_unredacted holds only the bodies still there.
static Statement kRedactBodies = {
    "UPDATE darkspere.messages SET body = '', body_redacted_at = pg_catalog.now()"
    " WHERE message_id = ANY (ARRAY("
    "  SELECT m.message_id FROM darkspere.messages m"
    "   WHERE m.body_redacted_at IS NULL"
    "     AND m.created_at < pg_catalog.now() - pg_catalog.make_interval(secs => $1) AND m.status <> 'waiting'" DS_NOT_IN_FLIGHT(
        "message_id", "m.message_id") "   ORDER BY m.created_at LIMIT $2 FOR UPDATE SKIP LOCKED))",
    2,
    {INT4OID, INT4OID},
    nullptr};

// An ended session goes only once no message of it is left (messages would go with it: ON DELETE CASCADE)
// and no job in flight names it; an active session never.
static Statement kPruneSessions = {
    "DELETE FROM darkspere.sessions WHERE session_id = ANY (ARRAY("
    "  SELECT s.session_id FROM darkspere.sessions s"
    "   WHERE s.ended_at IS NOT NULL AND s.state <> 'active'"
    "     AND s.ended_at < pg_catalog.now() - pg_catalog.make_interval(secs => $1)"
    "     AND NOT EXISTS (SELECT 1 FROM darkspere.messages m WHERE m.session_id = s.session_id)" DS_NOT_IN_FLIGHT(
        "session_id", "s.session_id") "   ORDER BY s.ended_at LIMIT $2 FOR UPDATE SKIP LOCKED))",
    2,
    {INT4OID, INT4OID},
    nullptr};

static Statement kPruneDeliveryEvents = {
    "DELETE FROM darkspere.delivery_events WHERE event_id = ANY (ARRAY("
    "  SELECT event_id FROM darkspere.delivery_events"
    "   WHERE received_at < pg_catalog.now() - pg_catalog.make_interval(secs => $1)"
    "   ORDER BY received_at LIMIT $2 FOR UPDATE SKIP LOCKED))",
    2,
    {INT4OID, INT4OID},
    nullptr};

static Statement kPruneConsentEvents = {
    "DELETE FROM darkspere.consent_events WHERE event_id = ANY (ARRAY("
    "  SELECT event_id FROM darkspere.consent_events"
    "   WHERE at < pg_catalog.now() - pg_catalog.make_interval(secs => $1)"
    "   ORDER BY at LIMIT $2 FOR UPDATE SKIP LOCKED))",
    2,
    {INT4OID, INT4OID},
    nullptr};

// Stripe events (darkspere.stripe_event) after 30 days: Stripe retries an event for 3 days at most.
static Statement kPruneStripeEvents = {
    "DELETE FROM darkspere.stripe_events WHERE event_id = ANY (ARRAY("
    "  SELECT event_id FROM darkspere.stripe_events"
    "   WHERE received_at < pg_catalog.now() - pg_catalog.make_interval(secs => $1)"
    "   ORDER BY received_at LIMIT $2 FOR UPDATE SKIP LOCKED))",
    2,
    {INT4OID, INT4OID},
    nullptr};

// Agent status changes (agent_events) after darkspere.agent_event_retention, through agent_events_at.
static Statement kPruneAgentEvents = {
    "DELETE FROM darkspere.agent_events WHERE ctid = ANY (ARRAY("
    "  SELECT ctid FROM darkspere.agent_events"
    "   WHERE at < pg_catalog.now() - pg_catalog.make_interval(secs => $1)"
    "   ORDER BY at LIMIT $2 FOR UPDATE SKIP LOCKED))",
    2,
    {INT4OID, INT4OID},
    nullptr};

#undef DS_NOT_IN_FLIGHT

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

// waiting_accounts — up to max accounts with waiting messages, in turn after the cursor (wrapping around).
static int waiting_accounts(int64 cursor, int64 *accounts, int max) {
    int n = 0;
    // After the cursor first, then from the start up to it.
    const int64 ranges[2][2] = {{cursor, PG_INT64_MAX}, {0, cursor}};
    for (const auto &range : ranges) {
        if (n == max) {
            break;
        }
        Datum args[3] = {Int64GetDatum(range[0]), Int64GetDatum(range[1]), Int32GetDatum(max - n)};
        SpiResult waiting = spi_run(kWaitingAccounts, args, nullptr, false, 0);
        for (uint64 r = 0; r < waiting.rows(); r++) {
            accounts[n++] = waiting.get_int64(r, 1);
        }
    }
    return n;
}

// The mcp_protocol gate's verdict for one agent tag (nullptr: none) of an account, read once per
// route_account call and only after a pick found no agent.
struct GateVerdict {
    const char *tag;
    bool blocked;
};

static bool gate_blocks_cached(int64 account_id, const char *tag, GateVerdict *seen, int *nseen) {
    for (int i = 0; i < *nseen; i++) {
        if ((seen[i].tag == nullptr && tag == nullptr) ||
            (seen[i].tag != nullptr && tag != nullptr && strcmp(seen[i].tag, tag) == 0)) {
            return seen[i].blocked;
        }
    }
    bool blocked = mcp_gate_blocks(account_id, tag);
    seen[(*nseen)++] = {tag, blocked};
    return blocked;
}

// route_account — routes up to `share` waiting messages of one account, oldest session first; returns how
// many. A pick that finds no agent for a tag is not repeated for that tag in this call; one that finds no
// agent at all (no tag) ends the call, as no tagged agent can be free then either — unless the account's
// plan gate is why (MCP agents only, mcp_protocol off: plan_gate.cpp), when the message ends failed with the
// fallback text instead of waiting for an agent that will never come.
static int64 route_account(int64 account_id, int share) {
    MemoryContext caller = CurrentMemoryContext;
    Datum args[3] = {Int64GetDatum(account_id), Int32GetDatum(min_health_score), Int32GetDatum(share)};
    SpiResult queued = spi_run(kAccountQueued, args, nullptr, false, 0);
    int64 routed = 0;
    char **full_tags = static_cast<char **>(palloc(sizeof(char *) * (queued.rows() + 1)));
    int nfull = 0;
    GateVerdict *gate = static_cast<GateVerdict *>(palloc(sizeof(GateVerdict) * (queued.rows() + 1)));
    int ngate = 0;
    for (uint64 r = 0; r < queued.rows(); r++) {
        int64 message_id = queued.get_int64(r, 1);
        int64 session_id = queued.get_int64(r, 2);
        int64 agent_id = queued.get_int64(r, 3);  // the sticky agent, or 0
        char *agent_tag = queued.text_copy(r, 4, caller);
        if (agent_id == 0) {
            bool full = false;
            for (int i = 0; agent_tag != nullptr && i < nfull && !full; i++) {
                full = strcmp(full_tags[i], agent_tag) == 0;
            }
            if (full) {
                continue;
            }
            agent_id = pick_agent(account_id, agent_tag, nullptr, 0);
            if (agent_id == 0 && gate_blocks_cached(account_id, agent_tag, gate, &ngate)) {
                fail_gated_waiting(account_id, message_id);
                continue;
            }
            if (agent_id == 0 && agent_tag == nullptr) {
                break;  // no eligible agent with room; the rest of the list has no sticky agent either
            }
            if (agent_id == 0) {
                full_tags[nfull++] = agent_tag;
                continue;
            }
            session_bind_agent(session_id, agent_id);
        }
        route_message(account_id, session_id, message_id, agent_id);
        routed++;
    }
    return routed;
}

// route_queued — gives waiting messages an agent, accounts in turns (each gets an equal share of what is left
// of kRouteBatch), the oldest sessions of each first; returns how many were routed. An account without an
// eligible agent costs one look at its queue and one pick per tick, and never delays the next account.
static int64 route_queued() {
    SpiResult cursor_row = spi_run(kRouteCursor, nullptr, nullptr, false, 1);
    int64 cursor = cursor_row.empty() ? 0 : cursor_row.get_int64(0, 1);
    int64 *accounts = static_cast<int64 *>(palloc(sizeof(int64) * kRouteAccounts));
    int naccounts = waiting_accounts(cursor, accounts, kRouteAccounts);
    if (naccounts == 0) {
        return 0;
    }
    int64 routed = 0;
    int64 last_served = cursor;
    for (int i = 0; i < naccounts && routed < kRouteBatch; i++) {
        int left = naccounts - i;
        int share = static_cast<int>((kRouteBatch - routed + left - 1) / left);
        routed += route_account(accounts[i], share);
        last_served = accounts[i];
    }
    Datum args[1] = {Int64GetDatum(last_served)};
    spi_run(kSetRouteCursor, args, nullptr, false, 0);
    return routed;
}

// reclaim_leases — returns reclaimed jobs; counts dead-lettered ones in *dead.
static int64 reclaim_leases(int64 *dead) {
    MemoryContext caller = CurrentMemoryContext;
    Datum args[1] = {Int32GetDatum(kTickBatch)};
    SpiResult reclaimed = spi_run(kReclaim, args, nullptr, false, 0);
    uint64 rows = reclaimed.rows();
    if (rows == 0) {
        return 0;
    }
    // Dead agent calls free their agent's slot and fail their message (with the fallback text, if any).
    int64 *dead_agents = static_cast<int64 *>(palloc(sizeof(int64) * rows));
    int64 *dead_accounts = static_cast<int64 *>(palloc(sizeof(int64) * rows));
    int64 *dead_messages = static_cast<int64 *>(palloc(sizeof(int64) * rows));
    int ndead = 0;
    for (uint64 r = 0; r < rows; r++) {
        char *state = reclaimed.text_copy(r, 2, caller);
        char *kind = reclaimed.text_copy(r, 3, caller);
        if (strcmp(state, "dead") == 0) {
            (*dead)++;
            dead_agents[ndead] = strcmp(kind, "agent_call") == 0 ? reclaimed.get_int64(r, 4) : 0;
            dead_accounts[ndead] = reclaimed.get_int64(r, 6);
            dead_messages[ndead] = reclaimed.get_int64(r, 5);
            ndead++;
        }
    }
    for (int i = 0; i < ndead; i++) {
        agent_load_add(dead_accounts[i], dead_agents[i], -1);
        if (dead_messages[i] == 0) {
            continue;
        }
        Datum msg[1] = {Int64GetDatum(dead_messages[i])};
        SpiResult failed = spi_run(kDeadMessage, msg, nullptr, false, 1);
        if (!failed.empty() && dead_agents[i] != 0) {
            enqueue_fallback_reply(failed);  // a turn no agent answered
        }
    }
    return rows;
}

// retain — one batch of a retention statement when its period is set (0: keep for ever); rows affected.
static int64 retain(Statement &statement, int period_s) {
    if (period_s <= 0) {
        return 0;
    }
    Datum args[2] = {Int32GetDatum(period_s), Int32GetDatum(kTickBatch)};
    return static_cast<int64>(spi_run(statement, args, nullptr, false, 0).rows());
}

}  // namespace darkspere

using namespace darkspere;

// darkspere_tick — one round of housekeeping; returns what it did as jsonb.
DARKSPERE_FUNCTION(darkspere_tick) {
    SPI_connect();
    Datum lock[1] = {Int32GetDatum(kTickLockClass)};
    bool isnull;
    if (!spi_run(kTryLock, lock, nullptr, false, 1).get_bool(0, 1)) {
        SpiResult skipped_row = spi_run(kSkipped, nullptr, nullptr, true, 1);
        Datum skipped = SPI_datumTransfer(skipped_row.get_datum(0, 1, &isnull), false, -1);
        SPI_finish();
        PG_RETURN_DATUM(skipped);
    }
    Datum expire[2] = {Int32GetDatum(session_idle_timeout_s), Int32GetDatum(kTickBatch)};
    SpiResult ended = spi_run(kExpireSessions, expire, nullptr, false, 1);
    int64 expired = ended.get_int64(0, 1);
    int64 expired_messages = ended.get_int64(0, 2);
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
    int64 pruned_messages = retain(kPruneMessages, message_retention_s);
    int64 redacted_bodies = retain(kRedactBodies, body_retention_s);
    int64 pruned_sessions = 0;
    if (message_retention_s > 0 && session_retention_s > 0) {
        pruned_sessions = retain(kPruneSessions, Max(session_retention_s, message_retention_s));
    }
    int64 pruned_delivery_events = retain(kPruneDeliveryEvents, delivery_event_retention_s);
    int64 pruned_consent_events = retain(kPruneConsentEvents, consent_event_retention_s);
    int64 probes_scheduled = schedule_probes();
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
