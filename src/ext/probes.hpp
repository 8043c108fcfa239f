// src/ext/probes.hpp — active health probes of agents: scheduling by tick(), the payload handed to the worker
// at claim, and what a result does (probes.cpp).
#pragma once

#include "ext/pg.hpp"

namespace darkspere {

constexpr int kProbesPerTick = 500;     // health_probe jobs tick() schedules per call at most
constexpr int kProbeDeadlineMs = 5000;  // the worker gives a probe this long (told in the payload)

// schedule_probes — queues health_probe jobs for the agents due (never probed first); an agent whose
// heartbeat is newer than the probe interval is passed over this round. Returns the jobs queued; 0 when
// probes are off. per_tenant: lock and move the agents one account at a time (Citus, tenant_batch.hpp).
int64 schedule_probes(bool per_tenant);
// probe_payload — the health_probe payload for an agent (endpoint, protocol, probe path, signing secrets), or
// 0 when the agent is gone or no longer probed (maintenance, disabled).
Datum probe_payload(int64 account_id, int64 agent_id);
// probe_record — one probe result: into the health score, darkspere.agent_checks, and the runs of failures /
// passes that make an active agent 'unhealthy' or an unhealthy one 'active' again.
void probe_record(int64 account_id, int64 agent_id, bool ok, int latency_ms, bool latency_known,
                  const char *error);
// prune_agent_checks — one batch of check results older than darkspere.agent_check_retention; rows deleted.
int64 prune_agent_checks(int batch);

}  // namespace darkspere
