// src/worker/job_runner.cpp — the job runner's wiring: construction, start, the reconnect hook and stats (see
// job_runner.hpp). Its lifecycle lives beside it: job_runner_claim.cpp (what to claim and when),
// job_runner_run.cpp (running a job to its outcome), job_runner_ack.cpp (reporting outcomes) and
// job_runner_timers.cpp (poll, tick, drain).
#include "job_runner.hpp"

#include "job_runner_internal.hpp"
#include "log.hpp"

namespace darkspere::worker {

namespace asio = boost::asio;

JobRunner::JobRunner(asio::io_context &io, PgClient &pool, AgentHttp &agent_http, McpClient &mcp,
                     TwilioSender &twilio, Metrics &metrics, std::function<RunnerSettings()> settings)
    : io_(io),
      pool_(pool),
      agent_http_(agent_http),
      mcp_(mcp),
      twilio_(twilio),
      metrics_(metrics),
      settings_(std::move(settings)),
      poll_timer_(io),
      follow_up_timer_(io),
      tick_timer_(io),
      park_timer_(io),
      drain_timer_(io) {
    // Tool lists the MCP client reads (probes, refreshes, changed lists) are stored with one statement each.
    mcp_.set_tools_listener([this](long long agent_id, nlohmann::json tools) {
        if (agent_id <= 0)
            return;
        query(job_runner_internal::SQL_RECORD_AGENT_TOOLS, {std::to_string(agent_id), tools.dump()},
              [agent_id](PgResult r) {
                  if (!r.ok && !r.unavailable)
                      log_warn("storing an agent's tool list failed",
                               {{"agent_id", agent_id}, {"sqlstate", r.sqlstate}, {"error", r.error}});
              });
    });
}

JobRunner::~JobRunner() {
    mcp_.set_tools_listener(nullptr);  // calls still in flight must not reach a destroyed runner
}

void JobRunner::query(const char *sql, PgParams params, PgCallback on_done) {
    pool_.query(sql, std::move(params), std::move(on_done), PgPriority::background);
}

void JobRunner::start() {
    arm_poll();
    arm_tick();
    claim();
}

void JobRunner::database_reconnected() {
    retry_parked();
    if (!stopping_)
        claim();
}

nlohmann::json JobRunner::stats() const {
    return {
        {"jobs_claimed", claimed_total_},       {"jobs_handed_off", metrics_.jobs_handed_off},
        {"jobs_completed", completed_total_},   {"jobs_failed", failed_total_},
        {"acks_lease_lost", lease_lost_total_}, {"jobs_in_flight", in_flight_},
        {"acks_parked", parked_.size()},        {"agent_calls_in_flight", metrics_.agent_calls_in_flight}};
}

}  // namespace darkspere::worker
