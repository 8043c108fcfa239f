// src/worker/job_runner_timers.cpp — the runner's timers: the fallback poll, the periodic tick (lease
// expiry, pruning) and the drain at shutdown with its timeout (see job_runner.hpp).
#include "job_runner.hpp"

#include <boost/asio/post.hpp>

#include "job_runner_internal.hpp"
#include "log.hpp"

namespace darkspere::worker {

namespace asio = boost::asio;
using job_runner_internal::SQL_TICK;
using job_runner_internal::SQL_TICK_QUEUE;
using std::chrono::milliseconds;

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
            query(settings_().queue_tick_only ? SQL_TICK_QUEUE : SQL_TICK, {}, [this](PgResult r) {
                tick_running_ = false;
                if (!r.ok && !r.unavailable)
                    log_warn("tick failed", {{"sqlstate", r.sqlstate}, {"error", r.error}});
            });
        }
        arm_tick();
    });
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

}  // namespace darkspere::worker
