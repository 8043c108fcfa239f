// src/worker/listener.hpp — the dedicated LISTEN darkspere connection.
//
// NOTIFY is only a hint: a listener that was away misses it. So on every (re)connect the listener LISTENs
// first and then asks for a claim, which scans the queue for whatever arrived meanwhile.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>

#include "pg_pool.hpp"

namespace darkspere::worker {

class Listener {
  public:
    Listener(boost::asio::io_context &io, std::string conninfo);
    // start — connects and keeps the LISTEN alive until stop().
    void start();
    void stop();
    bool listening() const { return listening_; }

    std::function<void()> on_wake;   // a notification arrived, or LISTEN was (re)established
    std::function<void()> on_ready;  // LISTEN established (every time)

  private:
    std::shared_ptr<PgConnection> connection_;
    bool listening_ = false;
};

}  // namespace darkspere::worker
