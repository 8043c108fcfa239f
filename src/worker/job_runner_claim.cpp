// src/worker/job_runner_claim.cpp — the claim loop: when to claim, how many jobs, which agents and tenants
// to pass over (at their share), and the call slots inbound webhooks reserve for hand-offs (see
// job_runner.hpp).
#include "job_runner.hpp"

#include <algorithm>

#include <boost/asio/post.hpp>

#include "job_runner_internal.hpp"
#include "log.hpp"

namespace darkspere::worker {

namespace asio = boost::asio;
using job_runner_internal::SQL_CLAIM;

namespace {

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

}  // namespace

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

void JobRunner::unreadable_row(const char *statement, const PgResult &r, size_t i) {
    log_error("job row without a readable job_id and attempt; left to lease expiry",
              {{"statement", statement},
               {"job_id", r.value(i, "job_id").value_or("")},
               {"attempt", r.value(i, "attempt").value_or("")}});
}

std::string JobRunner::busy_agents(long limit, long *busiest) const {
    return busy_literal(agent_in_flight_, limit, busiest);
}

long JobRunner::free_slots(const RunnerSettings &s) const {
    return s.max_in_flight - in_flight_ - *slots_reserved_;
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

}  // namespace darkspere::worker
