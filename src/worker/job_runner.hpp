// src/worker/job_runner.hpp — claims jobs (darkspere.claim_jobs), runs them concurrently, acks in batches.
// One class, its code split by lifecycle: job_runner_claim.cpp, job_runner_run.cpp, job_runner_ack.cpp,
// job_runner_timers.cpp (and job_runner.cpp, the wiring).
//
// Glossary (docs/queue-contract.md): a *job* is a queue row; an *attempt* is one lease of it; an *ack* is the
// complete_job / fail_job call that reports the attempt's outcome, fenced by (job, attempt). An outcome that
// cannot be acked because the database is down is *parked* in memory and retried after reconnect: the lease
// fences it, so a late ack can never overwrite a newer attempt.
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json.hpp>

#include "agent_http.hpp"
#include "call_handoff.hpp"
#include "fair_queue.hpp"
#include "job_types.hpp"
#include "mcp_client.hpp"
#include "metrics.hpp"
#include "pg_client.hpp"
#include "twilio_sender.hpp"

namespace darkspere::worker {

// One claim asks for at most this many jobs, so a claim stays a short statement.
constexpr long CLAIM_BATCH_MAX = 50;
// NOTIFY is throttled to once per 100 ms per backend, so a second claim this long after a wake-up catches
// work enqueued right after the notifying transaction.
constexpr std::chrono::milliseconds CLAIM_FOLLOW_UP{200};
// An ack that fails with an SQL error (not a lost connection) is retried this many times, then dropped.
constexpr int ACK_SQL_ERROR_RETRIES = 5;
// An ack the database refuses with a permanent SQL error (not a serialization failure, deadlock, lost
// connection, shutdown or lack of resources) this many times on its own is replaced by a non-retryable
// failure of the job carrying the error: retrying it until the lease expired would run the job again, so an
// agent would be called, or an SMS sent, twice.
constexpr int ACK_REFUSALS_MAX = 3;

// transient_sqlstate — whether an SQL error may go away by itself (class 08, 40, 53, 57P0x, 55P03, 57014):
// such acks are retried as they are; any other error is a refusal.
bool transient_sqlstate(const std::string &sqlstate);
// Acks are sent in batches: while one batch statement runs, the acks that finish meanwhile queue and go
// together in the next one, one transaction and one commit for all of them. Under light load a batch is one
// ack and leaves at once; under heavy load commits stop being the bottleneck.
constexpr size_t ACK_BATCH_MAX = 200;
// While a batch runs, the outcomes of tenants that have none in it and at most this many waiting (no backlog)
// go at once in a second, small statement beside it (at most ACK_EXPRESS_MAX acks): a tenant whose 2,000 slow
// calls answer together would otherwise make every other tenant's reply wait for two full batches of its
// acks. A tenant in the running batch waits for the next one, so a busy tenant alone still gets one statement
// at a time.
constexpr size_t ACK_EXPRESS_PER_TENANT_MAX = 4;
constexpr size_t ACK_EXPRESS_MAX = 32;

struct RunnerSettings {
    std::string worker_name;
    long max_in_flight = 2500;
    long max_in_flight_per_agent = 0;    // 0 = four fifths of max_in_flight
    long max_in_flight_per_account = 0;  // 0 = half of max_in_flight
    long lease_seconds = 120;
    long agent_deadline_ms = 10000;
    long agent_max_response_bytes = 256 * 1024;
    bool allow_insecure_http = false;  // agent URLs may be http:// (otherwise only https://)
    long poll_interval_ms = 1000;
    long tick_interval_ms = 1000;
    // tick_queue() instead of tick(): the runner of a Citus worker node's own queue (node_queues.hpp), whose
    // tick is its leases and pruning only; tick() runs once, on the coordinator.
    bool queue_tick_only = false;
    std::string stripe_base = "https://api.stripe.com";  // stripe_meter jobs (billing meter events)
    std::string stripe_api_key;                          // empty: stripe_meter jobs fail and are retried
};

// ClaimedJob — one row of claim_jobs (or of a hand-off).
struct ClaimedJob {
    JobId job_id = 0;
    Attempt attempt = 0;
    std::optional<JobKind> kind;  // nullopt: a kind this worker does not know (the job fails, see unusable)
    nlohmann::json payload;
    std::string request_id;
    std::string tenant;  // the DarkSpere account (payload account_id): acks are batched tenants in turn
    // Why the job cannot run ("" when it can): a kind this worker does not know, a payload that is not JSON.
    // Such a job is failed for good with this reason.
    std::string unusable;
};

// job_from_row — row i of a claim_jobs / ack_jobs / receive_sms_leased result (kind_of_all: the kind of every
// row of a result without a kind column); nullopt when its job_id or attempt is missing or not a number, so
// that it cannot even be acked (its lease then expires and the database counts the attempt).
std::optional<ClaimedJob> job_from_row(const PgResult &r, size_t i,
                                       std::optional<JobKind> kind_of_all = std::nullopt);

// tenant_of — the DarkSpere account a job is for (its payload's account_id, as text; "" when absent): the key
// by which acks and SMS sends take turns.
std::string tenant_of(const nlohmann::json &payload);

// agent_turn_from_payload — the AgentTurn of an agent_call payload; false (with *error) when it is unusable.
bool agent_turn_from_payload(const nlohmann::json &payload, std::chrono::milliseconds deadline,
                             AgentTurn *turn, std::string *protocol, std::string *error);

class JobRunner {
  public:
    // JobRunner — pool: where its statements go (PgPool in the daemon; a scripted stand-in in unit tests).
    JobRunner(boost::asio::io_context &io, PgClient &pool, AgentHttp &agent_http, McpClient &mcp,
              TwilioSender &twilio, Metrics &metrics, std::function<RunnerSettings()> settings);
    ~JobRunner();
    JobRunner(const JobRunner &) = delete;
    JobRunner &operator=(const JobRunner &) = delete;

    // start — arms the fallback poll and tick timers and claims once.
    void start();
    // wake — a NOTIFY arrived (or the LISTEN connection came back): claim now and again shortly after.
    void wake();
    // database_reconnected — a pool connection came back: retry parked acks and rescan.
    void database_reconnected();
    // drain — stops claiming; calls done once every running job has been acked, or when timeout passes.
    void drain(std::chrono::milliseconds timeout, std::function<void()> done);

    // reserve_call_slot — room for one agent call handed off by an inbound webhook (see CallSlot); nullptr
    // when the worker is full or draining.
    std::shared_ptr<CallSlot> reserve_call_slot();

    // stripe_http — the client stripe_meter jobs post meter events with (nullptr: they fail, retryable).
    HttpClient *stripe_http = nullptr;

    long in_flight() const { return in_flight_; }
    size_t acks_parked() const { return parked_.size(); }
    // stats — counters for the periodic stats log line.
    nlohmann::json stats() const;

  private:
    struct Ack {
        JobId job_id = 0;
        Attempt attempt = 0;
        std::optional<JobKind> kind;
        std::string request_id, tenant;
        bool complete = false;
        nlohmann::json result;  // complete: the job's result object
        std::string error;      // fail: reason
        bool retryable = false;
        std::optional<std::pair<std::string, std::string>>
            opt_out;          // record_provider_opt_out(from, to) first
        std::string outcome;  // metrics label: completed, failed_retryable, failed
        int sql_errors = 0;
        int refusals = 0;  // permanent SQL errors of this ack sent alone (ACK_REFUSALS_MAX)
    };
    // query — one of the runner's statements: all of them are background work (pg_client.hpp PgPriority).
    void query(const char *sql, PgParams params, PgCallback on_done);

    // The claim loop (job_runner_claim.cpp).
    void claim();
    void claim_done(long asked, PgResult result);
    // unreadable_row — logs a job row whose id or attempt the worker cannot read (it is left to lease
    // expiry).
    void unreadable_row(const char *statement, const PgResult &r, size_t i);
    // busy_agents — the bigint[] literal of agents at their share (limit); *busiest: most calls of any other.
    std::string busy_agents(long limit, long *busiest) const;
    // free_slots — room for more jobs: max_in_flight less running jobs and reserved call slots.
    long free_slots(const RunnerSettings &s) const;
    long per_agent_limit(const RunnerSettings &s) const;
    long per_account_limit(const RunnerSettings &s) const;
    void agent_call_started(long long agent_id, long long account_id);
    void agent_call_ended(long long agent_id, long long account_id);
    class Slot;
    void call_slot_released();
    void take_call(const PgResult &result);

    // Job execution (job_runner_run.cpp).
    void run_handed_off(ClaimedJob job);  // a job leased to this worker by the statement that created it
    void run(ClaimedJob job);
    void run_agent_call(ClaimedJob job);
    void run_sms_send(ClaimedJob job);
    void run_health_probe(ClaimedJob job);
    void run_stripe_meter(ClaimedJob job);
    void run_alert_notify(ClaimedJob job);
    // ack_of — the identity of a job (a ClaimedJob, or an Ack to replace), its outcome still to fill in.
    template <typename Job>
    static Ack ack_of(const Job &job) {
        Ack a;
        a.job_id = job.job_id;
        a.attempt = job.attempt;
        a.kind = job.kind;
        a.request_id = job.request_id;
        a.tenant = job.tenant;
        return a;
    }
    Ack fail_ack(const ClaimedJob &job, std::string error, bool retryable);
    void job_finished(Ack ack);

    // The ack pipeline (job_runner_ack.cpp).
    void queue_ack(Ack ack);
    void flush_acks();
    static std::string ack_rows(const std::vector<Ack> &acks);
    // ack_params — the parameters of SQL_ACK_BATCH: the rows, and who takes hand-offs with how much room.
    std::vector<std::optional<std::string>> ack_params(std::string rows) const;
    void send_ack_batch(std::vector<Ack> batch, bool express);
    void ack_batch_done(std::vector<Ack> batch, PgResult r);
    // take_handed_off — runs the sends an ack statement handed to this worker; returns its ack rows' count.
    size_t take_handed_off(const PgResult &r);
    void ack_accepted(const Ack &ack, bool accepted);
    void send_ack(Ack ack);
    // refused_ack — the non-retryable failure that replaces an ack the database keeps refusing.
    static Ack refused_ack(const Ack &ack, const PgResult &r);
    void park(Ack ack);
    void retry_parked();

    // Timers (job_runner_timers.cpp).
    void arm_poll();
    void arm_tick();
    void check_drained();

    boost::asio::io_context &io_;
    PgClient &pool_;
    AgentHttp &agent_http_;
    McpClient &mcp_;
    TwilioSender &twilio_;
    Metrics &metrics_;
    std::function<RunnerSettings()> settings_;

    boost::asio::steady_timer poll_timer_, follow_up_timer_, tick_timer_, park_timer_, drain_timer_;
    bool follow_up_armed_ = false;
    bool claiming_ = false;
    long claim_asked_ = 0;  // jobs the running claim may still bring (0 when no claim runs)
    bool claim_again_ = false;
    bool stopping_ = false;
    bool tick_running_ = false;
    long in_flight_ = 0;
    // Agent calls running per agent: an agent at its share is passed over by claims (busy_agents) so that
    // its backlog never takes the slots of other agents and of SMS sends.
    std::map<long long, long> agent_in_flight_;
    // Agent calls running per account (tenant), likewise passed over at their share (busy_accounts): two slow
    // agents of one tenant never hold every slot while other tenants' turns wait.
    std::map<long long, long> account_in_flight_;
    long acks_sending_ = 0;
    // Call slots reserved by webhooks whose statement has not answered yet; shared with the slots, which may
    // outlive the runner inside pool callbacks at shutdown.
    std::shared_ptr<long> slots_reserved_ = std::make_shared<long>(0);
    // Acks waiting for the next ack statement, by tenant: a batch takes them tenants in turn, so one tenant's
    // burst of outcomes (2,000 slow answers at once) does not hold another tenant's reply back for the whole
    // burst.
    FairQueue<Ack> ack_queue_;
    bool ack_batch_running_ = false;       // the main ack statement
    std::set<std::string> batch_tenants_;  // tenants with acks in it
    bool ack_express_running_ = false;     // the small one for tenants without a backlog
    std::deque<Ack> parked_;
    bool park_timer_armed_ = false;
    std::chrono::milliseconds park_backoff_{100};
    std::function<void()> drained_;

    unsigned long long claimed_total_ = 0, completed_total_ = 0, failed_total_ = 0, lease_lost_total_ = 0;
};

}  // namespace darkspere::worker
