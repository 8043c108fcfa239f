// src/worker/log_throttle.hpp — at most one log line per second per cause, for events a stranger can cause at
// will (refused webhooks, refused connections): the log stays readable and its volume bounded, and the line
// that is written says how many were left out.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>

namespace darkspere::worker {

class LogThrottle {
  public:
    using Clock = std::chrono::steady_clock;
    explicit LogThrottle(Clock::duration interval = std::chrono::seconds(1)) : interval_(interval) {}

    // admit — whether to log an event of `cause` now: the number of events of that cause left unlogged since
    // its last line, or nullopt to leave this one out too. Causes must come from a fixed set (the map keeps
    // one entry per cause).
    std::optional<unsigned long long> admit(const std::string &cause, Clock::time_point now = Clock::now()) {
        Entry &e = entries_[cause];
        if (e.logged && now - *e.logged < interval_) {
            ++e.suppressed;
            return std::nullopt;
        }
        e.logged = now;
        unsigned long long left_out = e.suppressed;
        e.suppressed = 0;
        return left_out;
    }

  private:
    struct Entry {
        std::optional<Clock::time_point> logged;
        unsigned long long suppressed = 0;
    };
    Clock::duration interval_;
    std::map<std::string, Entry> entries_;
};

}  // namespace darkspere::worker
