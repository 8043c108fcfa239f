// src/ext/health.hpp — agent health scores and the circuit breaker (health.cpp).
#pragma once

#include "ext/pg.hpp"

namespace darkspere {

constexpr int kCircuitFailureThreshold = 5;  // consecutive failures that open the circuit
constexpr int kCircuitOpenSeconds = 60;      // cool-down before a half-open trial call
constexpr int kTrialCallSeconds = 120;       // a trial call that never reports frees the slot after this
constexpr int kHealthWindow = 20;            // results that make up the uptime share

struct HealthResult {
    bool ok;
    int latency_ms;
    bool latency_known;
};
// Both name the agent's account, so that on Citus their statements reach the agent's shard only.
// health_record — one call result into the agent's score and circuit; deferred inside an ack batch.
void health_record(int64 account_id, int64 agent_id, bool ok, int latency_ms, bool latency_known);
// health_write — applies results (oldest first) under the agent's row lock and stores the outcome once.
void health_write(int64 account_id, int64 agent_id, const HealthResult *results, int nresults);

}  // namespace darkspere
