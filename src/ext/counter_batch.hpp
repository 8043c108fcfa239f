// src/ext/counter_batch.hpp — counter updates of a batch call, summed in memory and written once
// (counter_batch.cpp).
#pragma once

#include "ext/health.hpp"
#include "ext/pg.hpp"

namespace darkspere {

// While a batch call (ack_jobs, receive_sms_batch) runs, counter updates are summed in memory and written
// once, in key order, by batch_flush: the batch_defer_* functions return true when they took the update.
// Readers of those counters inside a batch add what is pending (agent load in pick_agent, quota room);
// pick_agent flushes first only when agent health is pending (an ack batch's failover). batch_open(items)
// starts one; batch_close() ends it — call it in PG_FINALLY, after batch_flush on success (on error, what is
// pending goes with the aborted transaction).
void batch_open(int items);
void batch_close();
bool batch_defer_usage(int64 account_id, const char *metric, int64 amount);
bool batch_defer_load(int64 account_id, int64 agent_id, int delta);
bool batch_defer_health(int64 account_id, int64 agent_id, const HealthResult &result);
int64 batch_pending_usage(int64 account_id, const char *metric);
bool batch_health_pending();
// batch_pending_loads — the agent load changes not written yet, as bigint[] agents and int[] deltas (empty
// arrays outside a batch), palloc'd in the current context.
void batch_pending_loads(ArrayType **agents, ArrayType **deltas);
void batch_flush();

}  // namespace darkspere
