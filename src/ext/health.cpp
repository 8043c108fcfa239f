// src/ext/health.cpp — agent health scores and the circuit breaker, fed by real call results.
//
// Score (0–100) = uptime share of the last kHealthWindow calls × 60
//               + latency band of the moving average (30 / 20 / 10 / 0 below 500 / 1000 / 2000 ms / above)
//               + recent-failure part over the last 10 calls (10 / 7 / 3 / 0 for 0 / 1 / 2 / ≥3 failures).
// Circuit: closed → open after kCircuitFailureThreshold consecutive failures, for kCircuitOpenSeconds; then
// one trial call (half-open, claimed by routing.cpp): success closes it and starts a fresh health history,
// failure opens it again.
#include "ext/accounts.hpp"
#include "ext/counter_batch.hpp"
#include "ext/accounts.hpp"
#include "ext/errors.hpp"
#include "ext/accounts.hpp"
#include "ext/health.hpp"
#include "ext/accounts.hpp"
#include "ext/spi_plans.hpp"
#include "ext/accounts.hpp"
#include "ext/validate.hpp"

namespace darkspere {

// Circuit states, as stored in agents.circuit.
enum class Circuit { closed, open, half_open };

static Circuit parse_circuit(const char *s) {
    if (strcmp(s, "open") == 0) {
        return Circuit::open;
    }
    if (strcmp(s, "half_open") == 0) {
        return Circuit::half_open;
    }
    return Circuit::closed;
}

static const char *circuit_name(Circuit c) {
    switch (c) {
        case Circuit::open:
            return "open";
        case Circuit::half_open:
            return "half_open";
        default:
            return "closed";
    }
}

struct Health {
    uint64 results_mask;  // bit i set: the i-th most recent call failed
    int results_count;
    bool has_latency;
    int latency_ms;
    int consecutive_failures;
    Circuit circuit;
    bool circuit_changed;
    bool reopen;  // circuit (re)opened now: set circuit_until to now + cool-down
};

static int latency_band(const Health &h) {
    if (!h.has_latency || h.latency_ms < 500) {
        return 30;
    }
    if (h.latency_ms < 1000) {
        return 20;
    }
    if (h.latency_ms < 2000) {
        return 10;
    }
    return 0;
}

// health_score — the 0–100 score of the header comment.
static int health_score(const Health &h) {
    uint64 window_mask = h.results_mask & ((UINT64CONST(1) << kHealthWindow) - 1);
    int failures = pg_popcount64(window_mask);
    int window = Min(h.results_count, kHealthWindow);
    int uptime_part = window == 0 ? 60 : static_cast<int>((60.0 * (window - failures)) / window + 0.5);
    int recent = pg_popcount64(h.results_mask & 0x3FF);
    int recent_part = recent == 0 ? 10 : recent == 1 ? 7 : recent == 2 ? 3 : 0;
    return uptime_part + latency_band(h) + recent_part;
}

// apply_result — advances the health state machine by one call result.
static void apply_result(Health &h, bool ok, int latency_ms, bool latency_known) {
    if (h.circuit == Circuit::half_open) {
        if (ok) {
            // The trial call proved the agent is back: judge it on fresh results from here on.
            h.results_mask = 0;
            h.results_count = 0;
            h.consecutive_failures = 0;
            h.circuit = Circuit::closed;
        } else {
            h.circuit = Circuit::open;
            h.reopen = true;
        }
        h.circuit_changed = true;
    }
    h.results_mask = (h.results_mask << 1) | (ok ? 0 : 1);
    h.results_count = Min(h.results_count + 1, 64);
    if (ok) {
        h.consecutive_failures = 0;
        if (latency_known) {
            // Moving average with weight 1/5 for the newest call: smooth, but reacts within a few calls.
            h.latency_ms = h.has_latency ? (h.latency_ms * 4 + latency_ms) / 5 : latency_ms;
            h.has_latency = true;
        }
    } else {
        h.consecutive_failures++;
        if (h.circuit == Circuit::closed && h.consecutive_failures >= kCircuitFailureThreshold) {
            h.circuit = Circuit::open;
            h.reopen = true;
            h.circuit_changed = true;
        }
    }
}

static Statement kLockHealth = {
    "SELECT results_mask, results_count, latency_ms, consecutive_failures, circuit"
    "  FROM darkspere.agents WHERE agent_id = $1 AND account_id = $2 FOR UPDATE",
    2,
    {INT8OID, INT8OID},
    nullptr};

static Statement kStoreHealth = {
    "UPDATE darkspere.agents SET results_mask = $2, results_count = $3, latency_ms = $4,"
    "       consecutive_failures = $5, health_score = $6, circuit = $7,"
    "       circuit_until = CASE WHEN $8"
    "                            THEN $9"
    "                            WHEN $7 = 'closed' THEN NULL ELSE circuit_until END,"
    "       last_result_at = $11"
    " WHERE agent_id = $1 AND account_id = $10",
    11,
    {INT8OID, INT8OID, INT4OID, INT4OID, INT4OID, INT4OID, TEXTOID, BOOLOID, TIMESTAMPTZOID, INT8OID,
     TIMESTAMPTZOID},
    nullptr};

void health_write(int64 account_id, int64 agent_id, const HealthResult *results, int nresults) {
    Datum args[2] = {Int64GetDatum(agent_id), Int64GetDatum(account_id)};
    SpiResult row = spi_run(kLockHealth, args, nullptr, false, 1);
    if (row.empty()) {
        raise_missing("agent", agent_id);
    }
    Health h;
    h.results_mask = static_cast<uint64>(row.get_int64(0, 1));
    h.results_count = row.get_int32(0, 2);
    h.has_latency = !row.is_null(0, 3);
    h.latency_ms = row.get_int32(0, 3);
    h.consecutive_failures = row.get_int32(0, 4);
    h.circuit = parse_circuit(row.text_copy(0, 5, CurrentMemoryContext));
    h.circuit_changed = false;
    h.reopen = false;

    for (int i = 0; i < nresults; i++) {
        apply_result(h, results[i].ok, results[i].latency_ms, results[i].latency_known);
    }

    // Times are parameters, not clock_timestamp() in the statement: Citus refuses volatile functions in a
    // distributed UPDATE.
    TimestampTz now = GetCurrentTimestamp();
    Datum store[11] = {Int64GetDatum(agent_id),
                       Int64GetDatum(static_cast<int64>(h.results_mask)),
                       Int32GetDatum(h.results_count),
                       Int32GetDatum(h.latency_ms),
                       Int32GetDatum(h.consecutive_failures),
                       Int32GetDatum(health_score(h)),
                       text_datum(circuit_name(h.circuit)),
                       BoolGetDatum(h.reopen),
                       TimestampTzGetDatum(now + kCircuitOpenSeconds * USECS_PER_SEC),
                       Int64GetDatum(account_id),
                       TimestampTzGetDatum(now)};
    char nulls[11] = {' ', ' ', ' ', null_flag(!h.has_latency), ' ', ' ', ' ', ' ', ' ', ' ', ' '};
    spi_run(kStoreHealth, store, nulls, false, 0);
}

void health_record(int64 account_id, int64 agent_id, bool ok, int latency_ms, bool latency_known) {
    HealthResult result = {ok, latency_ms, latency_known};
    if (batch_defer_health(account_id, agent_id, result)) {
        return;
    }
    health_write(account_id, agent_id, &result, 1);
}

}  // namespace darkspere

using namespace darkspere;

// darkspere_record_agent_result — feeds one call result into the agent's health score and circuit breaker.
DARKSPERE_FUNCTION(darkspere_record_agent_result) {
    int64 agent_id = required_int64(fcinfo, 0, "agent_id");
    if (PG_ARGISNULL(1)) {
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("ok must not be null")));
    }
    bool ok = PG_GETARG_BOOL(1);
    bool latency_known = !PG_ARGISNULL(2);
    int32 latency_ms = latency_known ? PG_GETARG_INT32(2) : 0;
    if (latency_ms < 0) {
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("latency_ms must not be negative: %d", latency_ms)));
    }
    SPI_connect();
    health_record(agent_account(agent_id), agent_id, ok, latency_ms, latency_known);
    SPI_finish();
    PG_RETURN_VOID();
}
