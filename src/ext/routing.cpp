// src/ext/routing.cpp — choosing an agent and counting the calls in flight on each.
//
// Eligible: active, carrying the number's agent tag when it requires one, allowed by the account's plan (an
// MCP agent needs mcp_protocol: plan_gate.hpp), below capacity, and either healthy (circuit closed, score ≥
// darkspere.min_health_score) or due a trial call (circuit open or half-open past its deadline, or a closed
// but unhealthy agent idle for the cool-down). Trial candidates come first, so a recovered agent gets its
// single test call promptly; then the highest health score, the lowest load ratio, the lowest recent latency.
//
// Load is kept in darkspere.agent_load split over kCounterShards rows per agent, so concurrent routing to the
// same few agents never waits on one row lock; a backend only writes its own shard.
#include "ext/counter_batch.hpp"
#include "ext/health.hpp"
#include "ext/plan_gate.hpp"
#include "ext/routing.hpp"
#include "ext/settings.hpp"
#include "ext/spi_plans.hpp"

namespace darkspere {

static Statement kPickAgent = {
    "SELECT a.agent_id, (a.circuit <> 'closed' OR a.health_score < $2) AS trial"
    "  FROM darkspere.agents a,"
    "       LATERAL (SELECT COALESCE(sum(l.in_flight), 0)"
    "                       + (SELECT COALESCE(sum(p.delta), 0)"
    "                            FROM ROWS FROM (pg_catalog.unnest($5::bigint[]),"
    "                                            pg_catalog.unnest($6::int[])) AS p(agent_id, delta)"
    "                           WHERE p.agent_id = a.agent_id) AS in_flight"
    "                  FROM darkspere.agent_load l WHERE l.agent_id = a.agent_id AND l.account_id = $1) l"
    " WHERE a.account_id = $1 AND a.status = 'active' AND a.agent_id <> ALL ($3)"
    "   AND ($7::text IS NULL OR $7 = ANY (a.tags)) AND " DS_AGENT_PASSES_MCP_GATE("$1")
    "   AND l.in_flight < a.capacity"
    "   AND ((a.circuit = 'closed' AND a.health_score >= $2)"
    "     OR (a.circuit IN ('open', 'half_open') AND a.circuit_until <= pg_catalog.clock_timestamp())"
    "     OR (a.circuit = 'closed' AND a.health_score < $2"
    "         AND a.last_result_at <= pg_catalog.clock_timestamp() - pg_catalog.make_interval(secs => $4)))"
    " ORDER BY trial DESC, a.health_score DESC, l.in_flight::float8 / a.capacity, a.latency_ms NULLS FIRST,"
    "          a.agent_id"
    " LIMIT 1",
    7,
    {INT8OID, INT4OID, INT8ARRAYOID, INT4OID, INT8ARRAYOID, INT4ARRAYOID, TEXTOID},
    nullptr};

// Claims the single trial slot; fails (0 rows) when a concurrent transaction took it first — or is taking it
// now: the agent row is locked without waiting (SKIP LOCKED), so a batch that routes several messages never
// queues on, or deadlocks over, an agent another transaction is putting on trial.
static Statement kStartTrial = {
    "WITH free AS (SELECT agent_id FROM darkspere.agents WHERE agent_id = $1 FOR NO KEY UPDATE SKIP LOCKED)"
    " UPDATE darkspere.agents a SET circuit = 'half_open',"
    "       circuit_until = pg_catalog.clock_timestamp() + pg_catalog.make_interval(secs => $2)"
    "  FROM free WHERE a.agent_id = free.agent_id AND a.status = 'active'"
    "   AND ((a.circuit IN ('open', 'half_open') AND a.circuit_until <= pg_catalog.clock_timestamp())"
    "     OR (a.circuit = 'closed' AND a.health_score < $3))",
    3,
    {INT8OID, INT4OID, INT4OID},
    nullptr};

// Pinned to the agent's account ($4): on Citus one shard, not every shard of agent_load.
static Statement kAddLoad = {
    "UPDATE darkspere.agent_load SET in_flight = in_flight + $2"
    " WHERE agent_id = $1 AND account_id = $4 AND shard = $3",
    4,
    {INT8OID, INT4OID, INT2OID, INT8OID},
    nullptr};

// Attempts to find an agent, skipping candidates whose trial slot a concurrent transaction just took.
constexpr int kPickAttempts = 4;

int64 pick_agent(int64 account_id, const char *agent_tag, const int64 *exclude, int nexclude) {
    // The choice reads agent health and load. Health an ack batch holds is written first (its failover);
    // load a batch holds is added to what is read, so a receive batch locks no shared counter row before its
    // end.
    if (batch_health_pending()) {
        batch_flush();
    }
    ArrayType *pending_agents, *pending_deltas;
    batch_pending_loads(&pending_agents, &pending_deltas);
    int64 skipped[kPickAttempts + 64];
    int nskipped = 0;
    for (int i = 0; i < nexclude && nskipped < 64; i++) {
        skipped[nskipped++] = exclude[i];
    }
    for (int attempt = 0; attempt < kPickAttempts; attempt++) {
        Datum *elems = static_cast<Datum *>(palloc(sizeof(Datum) * (nskipped + 1)));
        for (int i = 0; i < nskipped; i++) {
            elems[i] = Int64GetDatum(skipped[i]);
        }
        ArrayType *excluded = construct_array(elems, nskipped, INT8OID, sizeof(int64), true, TYPALIGN_DOUBLE);
        Datum args[7] = {Int64GetDatum(account_id),
                         Int32GetDatum(min_health_score),
                         PointerGetDatum(excluded),
                         Int32GetDatum(kCircuitOpenSeconds),
                         PointerGetDatum(pending_agents),
                         PointerGetDatum(pending_deltas),
                         agent_tag != nullptr ? text_datum(agent_tag) : (Datum)0};
        char nulls[7] = {' ', ' ', ' ', ' ', ' ', ' ', null_flag(agent_tag == nullptr)};
        SpiResult picked = spi_run(kPickAgent, args, nulls, false, 1);
        if (picked.empty()) {
            return 0;
        }
        int64 agent_id = picked.get_int64(0, 1);
        bool trial = picked.get_bool(0, 2);
        if (!trial) {
            return agent_id;
        }
        Datum trial_args[3] = {Int64GetDatum(agent_id), Int32GetDatum(kTrialCallSeconds),
                               Int32GetDatum(min_health_score)};
        if (!spi_run(kStartTrial, trial_args, nullptr, false, 0).empty()) {
            return agent_id;
        }
        skipped[nskipped++] = agent_id;
    }
    return 0;
}

void agent_load_add(int64 account_id, int64 agent_id, int delta) {
    if (agent_id == 0 || delta == 0 || batch_defer_load(account_id, agent_id, delta)) {
        return;
    }
    agent_load_write(account_id, agent_id, delta);
}

void agent_load_write(int64 account_id, int64 agent_id, int delta) {
    Datum args[4] = {Int64GetDatum(agent_id), Int32GetDatum(delta), Int16GetDatum(counter_shard()),
                     Int64GetDatum(account_id)};
    spi_run(kAddLoad, args, nullptr, false, 0);
}

}  // namespace darkspere
