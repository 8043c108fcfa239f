// src/worker/job_runner_internal.hpp — what the job runner's files (job_runner*.cpp) share and nothing else
// includes: the queue statements it sends and a small clock helper.
#pragma once

#include <chrono>

namespace darkspere::worker::job_runner_internal {

// The one place that knows the queue statements (docs/queue-contract.md).
inline constexpr const char *SQL_CLAIM =
    "SELECT job_id, attempt, kind, payload FROM darkspere.claim_jobs($1, $2, $3, $4::bigint[], $5::bigint[])";
// Acks, one or many per statement (one transaction): rows are (job, attempt, complete, result, error,
// retryable) in job order, so that two workers' batches take job row locks in the same order. Each row is
// acked as complete_job / fail_job would and comes back as (ord, accepted); the SMS sends the acks created
// that may go now come back too (ord NULL), already leased to this worker, up to the room it offers ($4).
inline constexpr const char *SQL_ACK_BATCH =
    "SELECT ord, accepted, job_id, attempt, kind, payload"
    "  FROM darkspere.ack_jobs($1::jsonb, $2, $3::interval, $4::int)";
inline constexpr const char *SQL_OPT_OUT = "SELECT darkspere.record_provider_opt_out($1, $2)";
inline constexpr const char *SQL_TICK = "SELECT darkspere.tick()";
inline constexpr const char *SQL_TICK_QUEUE = "SELECT darkspere.tick_queue()";
// An MCP agent's tool list as its server gave it (mcp_tools_summary: bounded before it is sent).
inline constexpr const char *SQL_RECORD_AGENT_TOOLS =
    "SELECT darkspere.record_agent_tools($1::bigint, $2::jsonb)";

inline double seconds_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace darkspere::worker::job_runner_internal
