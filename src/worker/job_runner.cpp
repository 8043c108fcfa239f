// src/worker/job_runner.cpp — claim, run and ack jobs (see job_runner.hpp).
#include "job_runner.hpp"

#include <algorithm>
#include <charconv>

#include <boost/asio/post.hpp>

#include "egress_policy.hpp"
#include "log.hpp"

namespace darkspere::worker {

namespace asio = boost::asio;
using std::chrono::milliseconds;

namespace {

// The one place that knows the queue statements (docs/queue-contract.md).
const char *const SQL_CLAIM =
    "SELECT job_id, attempt, kind, payload FROM darkspere.claim_jobs($1, $2, $3, $4::bigint[], $5::bigint[])";
// Acks, one or many per statement (one transaction): rows are (job, attempt, complete, result, error,
// retryable) in job order, so that two workers' batches take job row locks in the same order. Each row is
// acked as complete_job / fail_job would and comes back as (ord, accepted); the SMS sends the acks created
// that may go now come back too (ord NULL), already leased to this worker, up to the room it offers ($4).
const char *const SQL_ACK_BATCH =
    "SELECT ord, accepted, job_id, attempt, kind, payload"
    "  FROM darkspere.ack_jobs($1::jsonb, $2, $3::interval, $4::int)";
const char *const SQL_OPT_OUT = "SELECT darkspere.record_provider_opt_out($1, $2)";
const char *const SQL_TICK = "SELECT darkspere.tick()";

constexpr milliseconds PARK_BACKOFF_MAX{5000};

std::string id_text(const nlohmann::json &v) {
    if (v.is_string())
        return v.get<std::string>();
    if (v.is_number_integer())
        return std::to_string(v.get<long long>());
    return "";
}

std::string str(const nlohmann::json &obj, const char *key) {
    auto it = obj.find(key);
    return it != obj.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// busy_literal — the bigint[] literal of the keys at limit or more; *busiest: most running of any other key.
std::string busy_literal(const std::map<long long, long> &running_by_key, long limit, long *busiest) {
    std::string busy = "{";
    for (const auto &[key, running] : running_by_key) {
        if (running >= limit) {
            if (busy.size() > 1)
                busy += ',';
            busy += std::to_string(key);
        } else {
            *busiest = std::max(*busiest, running);
        }
    }
    return busy + '}';
}

// account_number — the account id of a job's tenant; 0 when it is not a positive number.
long long account_number(const std::string &tenant) {
    if (tenant.empty() || tenant.size() > 18 || tenant.find_first_not_of("0123456789") != std::string::npos)
        return 0;
    return std::stoll(tenant);
}

// read_ack_answers — the (index, accepted) of each ack row of an ack_jobs result for a batch of n acks; false
// when an ord is not one of 1..n (ack_jobs numbers its rows 1..n in the order given).
bool read_ack_answers(const PgResult &r, size_t n, std::vector<std::pair<size_t, bool>> *answers) {
    for (size_t i = 0; i < r.rows.size(); ++i) {
        std::optional<std::string> text = r.value(i, "ord");
        if (!text)
            continue;  // a handed-off job, not an ack
        size_t ord = 0;
        const char *first = text->data(), *last = first + text->size();
        auto [end, ec] = std::from_chars(first, last, ord);
        if (ec != std::errc() || end != last || ord < 1 || ord > n)
            return false;
        answers->emplace_back(ord - 1, r.value(i, "accepted").value_or("f") == "t");
    }
    return true;
}

double seconds_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

bool transient_sqlstate(const std::string &s) {
    if (s.size() != 5)
        return false;
    std::string cls = s.substr(0, 2);
    return cls == "08" || cls == "40" || cls == "53" || s.compare(0, 4, "57P0") == 0 || s == "55P03" ||
           s == "57014";
}

std::string tenant_of(const nlohmann::json &payload) {
    auto it = payload.find("account_id");
    return it == payload.end() ? std::string() : id_text(*it);
}

bool agent_turn_from_payload(const nlohmann::json &payload, milliseconds deadline, AgentTurn *turn,
                             std::string *protocol, std::string *error) {
    if (!payload.is_object()) {
        *error = "agent_call payload is not an object";
        return false;
    }
    turn->endpoint = str(payload, "endpoint");
    if (turn->endpoint.empty()) {
        *error = "agent_call payload lacks endpoint";
        return false;
    }
    if (auto it = payload.find("agent_id"); it != payload.end() && it->is_number_integer())
        turn->agent_id = it->get<long long>();
    *protocol = str(payload, "protocol");
    if (protocol->empty())
        *protocol = "http";
    std::string tool = str(payload, "tool_name");
    if (!tool.empty())
        turn->tool_name = tool;
    turn->session_id = payload.contains("session_id") ? id_text(payload["session_id"]) : "";
    turn->message = str(payload, "body");
    turn->from = str(payload, "from");
    turn->to = str(payload, "to");
    turn->request_id = str(payload, "request_id");
    if (auto it = payload.find("history"); it != payload.end() && it->is_array())
        turn->history = *it;
    else
        turn->history = nlohmann::json::array();
    turn->deadline = deadline;
    turn->signing_secrets.clear();
    if (auto it = payload.find("signing_secrets"); it != payload.end() && it->is_array()) {
        for (const auto &secret : *it) {
            if (secret.is_string() && !secret.get<std::string>().empty())
                turn->signing_secrets.push_back(secret.get<std::string>());
        }
    }
    return true;
}

std::optional<ClaimedJob> job_from_row(const PgResult &r, size_t i, std::optional<JobKind> kind_of_all) {
    std::optional<JobId> job_id = parse_job_id(r.value(i, "job_id"));
    std::optional<Attempt> attempt = parse_attempt(r.value(i, "attempt"));
    if (!job_id || !attempt)
        return std::nullopt;
    ClaimedJob job;
    job.job_id = *job_id;
    job.attempt = *attempt;
    std::string kind = r.value(i, "kind").value_or("");
    job.kind = kind_of_all ? kind_of_all : job_kind_from_sql(kind);
    job.payload = nlohmann::json::parse(r.value(i, "payload").value_or("null"), nullptr, false);
    if (job.payload.is_object()) {
        job.request_id = str(job.payload, "request_id");
        job.tenant = tenant_of(job.payload);
    }
    if (job.payload.is_discarded())
        job.unusable = "malformed job payload";
    else if (!job.kind)
        job.unusable = "unknown job kind: " + kind;
    return job;
}

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
      drain_timer_(io) {}

void JobRunner::query(const char *sql, PgParams params, PgCallback on_done) {
    pool_.query(sql, std::move(params), std::move(on_done), PgPriority::background);
}

void JobRunner::start() {
    arm_poll();
    arm_tick();
    claim();
}

void JobRunner::arm_poll() {
    poll_timer_.expires_after(milliseconds(settings_().poll_interval_ms));
    poll_timer_.async_wait([this](const boost::system::error_code &ec) {
        if (ec || stopping_)
            return;
        claim();
        arm_poll();
    });
}

void JobRunner::arm_tick() {
    tick_timer_.expires_after(milliseconds(settings_().tick_interval_ms));
    tick_timer_.async_wait([this](const boost::system::error_code &ec) {
        if (ec || stopping_)
            return;
        // One tick at a time: a slow tick (many expired leases) must not pile up behind itself.
        if (!tick_running_ && pool_.connected() > 0) {
            tick_running_ = true;
            query(SQL_TICK, {}, [this](PgResult r) {
                tick_running_ = false;
                if (!r.ok && !r.unavailable)
                    log_warn("tick failed", {{"sqlstate", r.sqlstate}, {"error", r.error}});
            });
        }
        arm_tick();
    });
}

void JobRunner::wake() {
    if (stopping_)
        return;
    claim();
    if (follow_up_armed_)
        return;
    follow_up_armed_ = true;
    follow_up_timer_.expires_after(CLAIM_FOLLOW_UP);
    follow_up_timer_.async_wait([this](const boost::system::error_code &ec) {
        follow_up_armed_ = false;
        if (!ec && !stopping_)
            claim();
    });
}

void JobRunner::database_reconnected() {
    retry_parked();
    if (!stopping_)
        claim();
}

void JobRunner::claim() {
    if (stopping_)
        return;
    if (claiming_) {
        claim_again_ = true;
        return;
    }
    RunnerSettings s = settings_();
    long room = free_slots(s);
    if (room <= 0) {
        claim_again_ = true;  // claim as soon as a slot frees up
        return;
    }
    if (pool_.connected() == 0)
        return;  // the reconnect hook claims again
    // Agents at their share are passed over (a PostgreSQL array literal, sent as a parameter value). The
    // claim is also no bigger than the room left to the busiest other agent, since every job claimed could
    // be its: no claim can push an agent past its share.
    long limit = per_agent_limit(s);
    long busiest = 0;
    std::string busy = busy_agents(limit, &busiest);
    // Accounts likewise: those at their share are passed over, and the claim fits the busiest other one.
    long account_limit = per_account_limit(s);
    long busiest_account = 0;
    std::string busy_accounts = busy_literal(account_in_flight_, account_limit, &busiest_account);
    long n = std::min({room, CLAIM_BATCH_MAX, limit - busiest - *slots_reserved_,
                       account_limit - busiest_account - *slots_reserved_});
    if (n <= 0) {
        claim_again_ = true;  // reserved call slots are answered within one statement: claim after them
        return;
    }
    claiming_ = true;
    claim_asked_ = n;
    claim_again_ = false;
    query(
        SQL_CLAIM,
        {s.worker_name, std::to_string(n), std::to_string(s.lease_seconds) + " seconds", busy, busy_accounts},
        [this, n](PgResult r) { claim_done(n, std::move(r)); });
}

std::string JobRunner::busy_agents(long limit, long *busiest) const {
    return busy_literal(agent_in_flight_, limit, busiest);
}

long JobRunner::free_slots(const RunnerSettings &s) const {
    return s.max_in_flight - in_flight_ - *slots_reserved_;
}

class JobRunner::Slot : public CallSlot {
  public:
    Slot(JobRunner &runner, HandoffOffer offer)
        : runner_(runner), reserved_(runner.slots_reserved_), offer_(std::move(offer)) {
        ++*runner.slots_reserved_;
    }
    ~Slot() override {
        if (auto reserved = reserved_.lock()) {
            --*reserved;
            runner_.call_slot_released();
        }
    }
    const HandoffOffer &offer() const override { return offer_; }
    void take(const PgResult &result) override {
        if (!reserved_.expired())
            runner_.take_call(result);
    }

  private:
    JobRunner &runner_;
    std::weak_ptr<long> reserved_;
    HandoffOffer offer_;
};

void JobRunner::call_slot_released() {
    // A claim that found no room for the reservations goes now (not at the next poll).
    if (claim_again_ && !stopping_)
        asio::post(io_, [this] { claim(); });
}

std::shared_ptr<CallSlot> JobRunner::reserve_call_slot() {
    RunnerSettings s = settings_();
    if (stopping_ || free_slots(s) <= 0)
        return nullptr;
    // Any reserved slot may turn out to be a call to the busiest agent below its share: reserve only while
    // that agent would stay within it (agents at their share are passed as busy and get no hand-off).
    long limit = per_agent_limit(s);
    long busiest = 0;
    std::string busy = busy_agents(limit, &busiest);
    if (busiest + *slots_reserved_ >= limit)
        return nullptr;
    // A hand-off cannot be refused by account (receive_sms_leased knows no busy accounts), so reserve only
    // while every account, the busiest included, would stay within its share; otherwise the call waits for
    // a claim, which passes over the accounts at their share. A claim still running may bring jobs of the
    // busiest account too: they count as if already running.
    long account_limit = per_account_limit(s);
    long busiest_account = 0;
    for (const auto &[account, running] : account_in_flight_)
        busiest_account = std::max(busiest_account, running);
    if (busiest_account + *slots_reserved_ + claim_asked_ >= account_limit)
        return nullptr;
    HandoffOffer offer{s.worker_name, std::to_string(s.lease_seconds) + " seconds", std::move(busy)};
    return std::make_shared<Slot>(*this, std::move(offer));
}

void JobRunner::take_call(const PgResult &r) {
    // receive_sms_leased hands off nothing but agent calls (its result has no kind column).
    std::optional<ClaimedJob> job = job_from_row(r, 0, JobKind::agent_call);
    if (!job) {
        unreadable_row("receive_sms_leased", r, 0);
        return;
    }
    run_handed_off(std::move(*job));
}

void JobRunner::unreadable_row(const char *statement, const PgResult &r, size_t i) {
    log_error("job row without a readable job_id and attempt; left to lease expiry",
              {{"statement", statement},
               {"job_id", r.value(i, "job_id").value_or("")},
               {"attempt", r.value(i, "attempt").value_or("")}});
}

void JobRunner::run_handed_off(ClaimedJob job) {
    ++metrics_.jobs_handed_off;
    run(std::move(job));
}

long JobRunner::per_agent_limit(const RunnerSettings &s) const {
    if (s.max_in_flight_per_agent > 0)
        return s.max_in_flight_per_agent;
    return std::max(1L, s.max_in_flight * 4 / 5);
}

long JobRunner::per_account_limit(const RunnerSettings &s) const {
    if (s.max_in_flight_per_account > 0)
        return s.max_in_flight_per_account;
    return std::max(1L, s.max_in_flight / 2);
}

void JobRunner::agent_call_started(long long agent_id, long long account_id) {
    ++agent_in_flight_[agent_id];
    if (account_id != 0)
        ++account_in_flight_[account_id];
}

void JobRunner::agent_call_ended(long long agent_id, long long account_id) {
    RunnerSettings s = settings_();
    // An agent or account passed over by claims while at its share: its waiting calls may be claimed again.
    auto release = [this](std::map<long long, long> &running, long long key, long limit) {
        auto it = running.find(key);
        if (it == running.end())
            return;
        if (it->second-- >= limit)
            claim_again_ = true;
        if (it->second <= 0)
            running.erase(it);
    };
    release(agent_in_flight_, agent_id, per_agent_limit(s));
    if (account_id != 0)
        release(account_in_flight_, account_id, per_account_limit(s));
}

void JobRunner::claim_done(long asked, PgResult r) {
    claiming_ = false;
    claim_asked_ = 0;
    if (!r.ok) {
        // The poll timer and the reconnect hook rescan; no tight retry loop against a failing database.
        if (!r.unavailable)
            log_error("claim_jobs failed", {{"sqlstate", r.sqlstate}, {"error", r.error}});
        return;
    }
    for (size_t i = 0; i < r.rows.size(); ++i) {
        ++claimed_total_;
        if (std::optional<ClaimedJob> job = job_from_row(r, i))
            run(std::move(*job));
        else
            unreadable_row("claim_jobs", r, i);
    }
    // A full batch means more work is likely waiting.
    if (static_cast<long>(r.rows.size()) >= asked || claim_again_)
        asio::post(io_, [this] { claim(); });
}

std::vector<std::optional<std::string>> JobRunner::ack_params(std::string rows) const {
    RunnerSettings s = settings_();
    // Room for handed-off sends: the free in-flight slots, none while draining.
    long room = stopping_ ? 0 : std::max(0L, free_slots(s));
    return {std::move(rows), s.worker_name, std::to_string(s.lease_seconds) + " seconds",
            std::to_string(room)};
}

size_t JobRunner::take_handed_off(const PgResult &r) {
    size_t acks = 0;
    for (size_t i = 0; i < r.rows.size(); ++i) {
        if (r.value(i, "ord")) {
            ++acks;
            continue;
        }
        if (std::optional<ClaimedJob> job = job_from_row(r, i))
            run_handed_off(std::move(*job));
        else
            unreadable_row("ack_jobs", r, i);
    }
    return acks;
}

JobRunner::Ack JobRunner::ack_of(const ClaimedJob &job) {
    Ack a;
    a.job_id = job.job_id;
    a.attempt = job.attempt;
    a.kind = job.kind;
    a.request_id = job.request_id;
    a.tenant = job.tenant;
    return a;
}

JobRunner::Ack JobRunner::fail_ack(const ClaimedJob &job, std::string error, bool retryable) {
    Ack a = ack_of(job);
    a.complete = false;
    a.error = std::move(error);
    a.retryable = retryable;
    a.outcome = retryable ? "failed_retryable" : "failed";
    return a;
}

void JobRunner::run(ClaimedJob job) {
    ++in_flight_;
    metrics_.jobs_in_flight = in_flight_;
    log_debug("job claimed", {{"job_id", job.job_id},
                              {"attempt", job.attempt},
                              {"kind", job_kind_label(job.kind)},
                              {"request_id", job.request_id}});
    if (!job.unusable.empty()) {
        std::string reason = job.unusable;
        job_finished(fail_ack(job, std::move(reason), false));
        return;
    }
    switch (*job.kind) {
        case JobKind::agent_call:
            run_agent_call(std::move(job));
            return;
        case JobKind::sms_send:
            run_sms_send(std::move(job));
            return;
    }
}

void JobRunner::run_agent_call(ClaimedJob job) {
    AgentTurn turn;
    std::string protocol, error;
    if (!agent_turn_from_payload(job.payload, milliseconds(settings_().agent_deadline_ms), &turn, &protocol,
                                 &error)) {
        job_finished(fail_ack(job, error, false));
        return;
    }
    if (protocol != "http" && protocol != "mcp") {
        job_finished(fail_ack(job, "unknown agent protocol: " + protocol, false));
        return;
    }
    RunnerSettings settings = settings_();
    turn.max_response_bytes = static_cast<size_t>(settings.agent_max_response_bytes);
    // An agent URL the policy refuses is that agent's fault, not the turn's: the failure is retryable, so the
    // turn moves to the tenant's next agent (and this one's health drops) instead of being dead-lettered.
    if (std::string refusal = url_scheme_refusal(turn.endpoint, settings.allow_insecure_http);
        !refusal.empty()) {
        log_warn("agent call refused", {{"request_id", job.request_id},
                                        {"job_id", job.job_id},
                                        {"agent_id", turn.agent_id},
                                        {"error", refusal}});
        job_finished(fail_ack(job, "agent " + std::to_string(turn.agent_id) + ": " + refusal, true));
        return;
    }
    ++metrics_.agent_calls_in_flight;
    auto started = std::chrono::steady_clock::now();
    long long agent_id = turn.agent_id;
    long long account_id = account_number(job.tenant);
    agent_call_started(agent_id, account_id);
    auto on_done = [this, job, started, agent_id, account_id, protocol](AgentOutcome outcome) {
        --metrics_.agent_calls_in_flight;
        agent_call_ended(agent_id, account_id);
        double secs = seconds_since(started);
        metrics_.agent_call_seconds.observe(secs);
        long latency_ms = static_cast<long>(secs * 1000);
        log_info("agent call finished",
                 {{"request_id", job.request_id},
                  {"job_id", job.job_id},
                  {"attempt", job.attempt},
                  {"agent_id", agent_id},
                  {"protocol", protocol},
                  {"ok", outcome.ok},
                  {"latency_ms", latency_ms},
                  {"error", outcome.ok ? nlohmann::json() : nlohmann::json(outcome.error)}});
        if (!outcome.ok) {
            job_finished(fail_ack(job, outcome.error.empty() ? "agent call failed" : outcome.error, true));
            return;
        }
        Ack a = ack_of(job);
        a.complete = true;
        nlohmann::json result = {{"latency_ms", latency_ms}};
        result["reply"] = outcome.reply ? nlohmann::json(*outcome.reply) : nlohmann::json(nullptr);
        a.result = std::move(result);
        a.outcome = "completed";
        job_finished(std::move(a));
    };
    if (protocol == "mcp")
        mcp_.call(turn, std::move(on_done));
    else
        agent_http_.call(turn, std::move(on_done));
}

void JobRunner::run_sms_send(ClaimedJob job) {
    SmsSendJob send;
    std::string error;
    if (!parse_sms_send_job(job.payload, &send, &error)) {
        job_finished(fail_ack(job, error, false));
        return;
    }
    send.tenant = job.tenant;
    auto started = std::chrono::steady_clock::now();
    twilio_.send(send, [this, job, started, send](SendOutcome outcome) {
        double secs = seconds_since(started);
        double waited = std::chrono::duration<double>(outcome.waited).count();
        metrics_.twilio_send_wait_seconds.observe(waited);
        if (outcome.requested)
            metrics_.twilio_send_seconds.observe(secs - waited);
        static const char *kinds[] = {"sent", "retry", "fail", "opted_out"};
        log_info("twilio send finished",
                 {{"request_id", job.request_id},
                  {"job_id", job.job_id},
                  {"attempt", job.attempt},
                  {"outcome", kinds[static_cast<int>(outcome.kind)]},
                  {"latency_ms", static_cast<long>((secs - waited) * 1000)},
                  {"waited_ms", static_cast<long>(waited * 1000)},
                  {"error", outcome.error.empty() ? nlohmann::json() : nlohmann::json(outcome.error)}});
        switch (outcome.kind) {
            case SendOutcome::Kind::sent: {
                Ack a = ack_of(job);
                a.complete = true;
                a.result = outcome.result;
                a.outcome = "completed";
                job_finished(std::move(a));
                return;
            }
            case SendOutcome::Kind::retry:
                job_finished(fail_ack(job, outcome.error, true));
                return;
            case SendOutcome::Kind::fail:
                job_finished(fail_ack(job, outcome.error, false));
                return;
            case SendOutcome::Kind::opted_out: {
                Ack a = fail_ack(job, outcome.error, false);
                a.opt_out = std::make_pair(send.from, send.to);
                job_finished(std::move(a));
                return;
            }
        }
    });
}

void JobRunner::job_finished(Ack ack) {
    // Completion may be reported from inside the caller's stack; acking later keeps the order of effects
    // simple.
    asio::post(io_, [this, ack = std::move(ack)]() mutable {
        --in_flight_;
        metrics_.jobs_in_flight = in_flight_;
        ++acks_sending_;
        if (ack.opt_out)
            send_ack(std::move(ack));
        else
            queue_ack(std::move(ack));
        if (claim_again_)
            claim();
    });
}

// ack_rows — the JSON parameter of SQL_ACK_BATCH.
std::string JobRunner::ack_rows(const std::vector<Ack> &acks) {
    nlohmann::json rows = nlohmann::json::array();
    for (const Ack &a : acks) {
        nlohmann::json row = {{"job_id", a.job_id}, {"attempt", a.attempt}, {"complete", a.complete}};
        if (a.complete) {
            row["result"] = a.result;
        } else {
            row["error"] = a.error;
            row["retryable"] = a.retryable;
        }
        rows.push_back(std::move(row));
    }
    // Invalid UTF-8 from an agent or provider is replaced, never a reason to lose the ack.
    return rows.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void JobRunner::queue_ack(Ack ack) {
    std::string tenant = ack.tenant;
    ack_queue_.push(tenant, std::move(ack));
    flush_acks();
}

void JobRunner::flush_acks() {
    if (ack_queue_.empty())
        return;
    if (!ack_batch_running_) {
        std::vector<Ack> batch;
        batch.reserve(std::min(ack_queue_.size(), ACK_BATCH_MAX));
        batch_tenants_.clear();
        while (!ack_queue_.empty() && batch.size() < ACK_BATCH_MAX) {
            batch.push_back(ack_queue_.pop());
            batch_tenants_.insert(batch.back().tenant);
        }
        send_ack_batch(std::move(batch), false);
    } else if (!ack_express_running_) {
        std::vector<Ack> batch = ack_queue_.take_light(
            ACK_EXPRESS_PER_TENANT_MAX, ACK_EXPRESS_MAX,
            [this](const std::string &tenant) { return batch_tenants_.count(tenant) > 0; });
        if (!batch.empty())
            send_ack_batch(std::move(batch), true);
    }
}

void JobRunner::send_ack_batch(std::vector<Ack> batch, bool express) {
    metrics_.ack_batch_size.observe(static_cast<double>(batch.size()));
    std::sort(batch.begin(), batch.end(), [](const Ack &a, const Ack &b) { return a.job_id < b.job_id; });
    (express ? ack_express_running_ : ack_batch_running_) = true;
    // Built before the call: the callback below takes `batch` by move, and argument order is unspecified.
    std::vector<std::optional<std::string>> params = ack_params(ack_rows(batch));
    auto sent = std::chrono::steady_clock::now();
    query(SQL_ACK_BATCH, std::move(params),
          [this, sent, express, batch = std::move(batch)](PgResult r) mutable {
              metrics_.ack_batch_seconds.observe(seconds_since(sent));
              (express ? ack_express_running_ : ack_batch_running_) = false;
              ack_batch_done(std::move(batch), std::move(r));
              flush_acks();
          });
}

void JobRunner::ack_batch_done(std::vector<Ack> batch, PgResult r) {
    // The hand-offs committed with the acks: run them whatever the ack rows say.
    size_t acks = r.ok ? take_handed_off(r) : 0;
    std::vector<std::pair<size_t, bool>> answers;  // (index in batch, accepted)
    if (r.ok && acks == batch.size() && read_ack_answers(r, batch.size(), &answers)) {
        for (auto [k, accepted] : answers) {
            --acks_sending_;
            ack_accepted(batch[k], accepted);
        }
        check_drained();
        return;
    }
    if (r.unavailable) {
        for (Ack &a : batch)
            park(std::move(a));
        return;
    }
    // An SQL error (a deadlock with another worker's batch, one ack the database refuses) rolled the whole
    // batch back: each ack goes again on its own, so one bad ack cannot hold the others hostage.
    ++metrics_.ack_batch_fallbacks;
    std::string error = !r.ok                  ? r.error
                        : acks != batch.size() ? "the batch returned " + std::to_string(acks) + " ack rows"
                                               : "the batch returned an ack row with a bad ord";
    log_warn("ack batch failed; acking one by one",
             {{"acks", batch.size()}, {"sqlstate", r.sqlstate}, {"error", error}});
    for (Ack &a : batch)
        send_ack(std::move(a));
}

void JobRunner::ack_accepted(const Ack &ack, bool accepted) {
    if (accepted) {
        metrics_.count_job(job_kind_label(ack.kind), ack.outcome);
        if (ack.complete)
            ++completed_total_;
        else
            ++failed_total_;
    } else {
        // Fenced: another attempt owns the job now (our lease expired) or it already finished.
        metrics_.count_job(job_kind_label(ack.kind), "lease_lost");
        ++lease_lost_total_;
        log_warn("ack refused: lease lost, outcome dropped",
                 {{"request_id", ack.request_id}, {"job_id", ack.job_id}, {"attempt", ack.attempt}});
    }
}

void JobRunner::send_ack(Ack ack) {
    if (ack.opt_out) {
        auto [from, to] = *ack.opt_out;
        query(SQL_OPT_OUT, {from, to}, [this, ack = std::move(ack)](PgResult r) mutable {
            if (r.ok) {
                ack.opt_out.reset();
                send_ack(std::move(ack));
            } else {
                if (!r.unavailable)
                    ++ack.sql_errors;
                log_warn("record_provider_opt_out failed",
                         {{"request_id", ack.request_id}, {"job_id", ack.job_id}, {"error", r.error}});
                park(std::move(ack));
            }
        });
        return;
    }
    // A statement of its own: an SQL error here concerns this ack only.
    std::vector<std::optional<std::string>> params = ack_params(ack_rows({ack}));
    query(SQL_ACK_BATCH, std::move(params), [this, ack = std::move(ack)](PgResult r) mutable {
        bool final_failure = !ack.complete && !ack.retryable;
        if (!r.ok && !r.unavailable && !r.sqlstate.empty() && !transient_sqlstate(r.sqlstate) &&
            !final_failure && ++ack.refusals >= ACK_REFUSALS_MAX) {
            log_error("ack refused by the database; failing the job for good",
                      {{"request_id", ack.request_id},
                       {"job_id", ack.job_id},
                       {"attempt", ack.attempt},
                       {"sqlstate", r.sqlstate},
                       {"error", r.error}});
            metrics_.count_job(job_kind_label(ack.kind), "ack_refused");
            send_ack(refused_ack(ack, r));
            return;
        }
        if (!r.ok) {
            if (!r.unavailable)
                ++ack.sql_errors;
            log_warn("ack failed; will retry", {{"request_id", ack.request_id},
                                                {"job_id", ack.job_id},
                                                {"attempt", ack.attempt},
                                                {"sqlstate", r.sqlstate},
                                                {"error", r.error}});
            park(std::move(ack));
            return;
        }
        take_handed_off(r);
        --acks_sending_;
        bool accepted = false;
        for (size_t i = 0; i < r.rows.size(); ++i) {
            if (r.value(i, "ord"))
                accepted = r.value(i, "accepted").value_or("f") == "t";
        }
        ack_accepted(ack, accepted);
        check_drained();
    });
}

JobRunner::Ack JobRunner::refused_ack(const Ack &ack, const PgResult &r) {
    Ack f;
    f.job_id = ack.job_id;
    f.attempt = ack.attempt;
    f.kind = ack.kind;
    f.request_id = ack.request_id;
    f.tenant = ack.tenant;
    f.complete = false;
    f.retryable = false;
    f.outcome = "failed";
    f.error = "the database refused the job's ack (SQLSTATE " + r.sqlstate + "): " + r.error;
    return f;
}

void JobRunner::park(Ack ack) {
    if (ack.sql_errors > ACK_SQL_ERROR_RETRIES) {
        --acks_sending_;
        metrics_.count_job(job_kind_label(ack.kind), "ack_dropped");
        log_error("ack dropped after repeated SQL errors",
                  {{"request_id", ack.request_id}, {"job_id", ack.job_id}, {"attempt", ack.attempt}});
        check_drained();
        return;
    }
    --acks_sending_;
    parked_.push_back(std::move(ack));
    metrics_.acks_pending = static_cast<long>(parked_.size());
    if (park_timer_armed_)
        return;
    park_timer_armed_ = true;
    park_timer_.expires_after(park_backoff_);
    park_backoff_ = std::min(park_backoff_ * 2, PARK_BACKOFF_MAX);
    park_timer_.async_wait([this](const boost::system::error_code &ec) {
        park_timer_armed_ = false;
        if (!ec)
            retry_parked();
    });
}

void JobRunner::retry_parked() {
    if (parked_.empty()) {
        park_backoff_ = milliseconds(100);
        return;
    }
    if (pool_.connected() == 0) {
        // Still down: wait for the next backoff step or the reconnect hook.
        if (!park_timer_armed_) {
            Ack a = std::move(parked_.front());
            parked_.pop_front();
            ++acks_sending_;
            park(std::move(a));
        }
        return;
    }
    std::deque<Ack> batch;
    batch.swap(parked_);
    metrics_.acks_pending = 0;
    for (auto &a : batch) {
        ++acks_sending_;
        if (a.opt_out || a.sql_errors > 0)
            send_ack(std::move(a));  // alone: it needs a statement of its own, or failed in a batch before
        else
            queue_ack(std::move(a));
    }
}

void JobRunner::drain(milliseconds timeout, std::function<void()> done) {
    stopping_ = true;
    drained_ = std::move(done);
    poll_timer_.cancel();
    follow_up_timer_.cancel();
    tick_timer_.cancel();
    drain_timer_.expires_after(timeout);
    drain_timer_.async_wait([this](const boost::system::error_code &ec) {
        if (ec || !drained_)
            return;
        log_warn("drain timeout: leaving unfinished jobs to lease expiry",
                 {{"jobs_in_flight", in_flight_},
                  {"acks_unsent", acks_sending_ + static_cast<long>(parked_.size())}});
        auto d = std::move(drained_);
        drained_ = nullptr;
        d();
    });
    check_drained();
}

void JobRunner::check_drained() {
    if (!stopping_ || !drained_)
        return;
    if (in_flight_ > 0 || acks_sending_ > 0 || !parked_.empty())
        return;
    drain_timer_.cancel();
    auto d = std::move(drained_);
    drained_ = nullptr;
    asio::post(io_, std::move(d));
}

nlohmann::json JobRunner::stats() const {
    return {
        {"jobs_claimed", claimed_total_},       {"jobs_handed_off", metrics_.jobs_handed_off},
        {"jobs_completed", completed_total_},   {"jobs_failed", failed_total_},
        {"acks_lease_lost", lease_lost_total_}, {"jobs_in_flight", in_flight_},
        {"acks_parked", parked_.size()},        {"agent_calls_in_flight", metrics_.agent_calls_in_flight}};
}

}  // namespace darkspere::worker
