// src/worker/pg_pool.hpp — libpq connections driven by the Asio loop, and the small pool the worker queries
// on.
//
// Glossary: a *connection* is one libpq session in non-blocking mode; the *pool* hands queries to idle
// connections and queues the rest. Nothing here blocks the event loop: connecting uses PQconnectStart/Poll,
// queries PQsendQueryParams + PQconsumeInput on socket readiness. A lost connection reconnects on its own
// with backoff (100 ms doubling to 5 s).
#pragma once

#include <libpq-fe.h>

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include "pg_client.hpp"

namespace darkspere::worker {

// Reconnect backoff bounds.
constexpr std::chrono::milliseconds RECONNECT_BACKOFF_MIN{100};
constexpr std::chrono::milliseconds RECONNECT_BACKOFF_MAX{5000};

// Queries waiting for a connection beyond this are refused as "unavailable" instead of growing without bound.
constexpr size_t POOL_QUEUE_MAX = 20000;

// One non-blocking libpq connection with its own reconnect loop.
class PgConnection : public std::enable_shared_from_this<PgConnection> {
  public:
    enum class State { disconnected, connecting, idle, busy };

    PgConnection(boost::asio::io_context &io, std::string conninfo, std::string name);
    ~PgConnection();

    // start — connects now and keeps reconnecting after every loss until stop().
    void start();
    void stop();

    // query — runs one statement; only valid when state() == idle. on_done runs on the loop.
    void query(const std::string &sql, const PgParams &params, PgCallback on_done);

    State state() const { return state_; }
    const std::string &name() const { return name_; }

    // Hooks: a session became usable; the session was lost; a NOTIFY arrived (channel name).
    std::function<void()> on_connected;
    std::function<void(const std::string &reason)> on_lost;
    std::function<void(const std::string &channel)> on_notify;
    std::function<void()> on_idle;  // a query finished and the connection takes the next one

  private:
    void begin_connect();
    void poll_connect(PostgresPollingStatusType status);
    void watch_socket(bool write);
    void on_readable();
    void on_writable();
    void flush();
    void collect();
    void drain_notifies();
    void lose(const std::string &reason);
    void schedule_reconnect();
    void reset_descriptor();

    boost::asio::io_context &io_;
    std::string conninfo_;
    std::string name_;
    PGconn *conn_ = nullptr;
    State state_ = State::disconnected;
    std::unique_ptr<boost::asio::posix::stream_descriptor> socket_;
    int socket_fd_ = -1;
    unsigned generation_ = 0;  // bumped when the socket is replaced; stale waits compare and return
    bool reading_ = false, writing_ = false;
    bool polling_write_ = false;  // during connect: which direction PQconnectPoll asked for
    bool stopped_ = true;
    boost::asio::steady_timer retry_timer_;
    std::chrono::milliseconds backoff_ = RECONNECT_BACKOFF_MIN;
    PgCallback pending_;
    PgResult result_;
    bool have_error_result_ = false;
};

// PgPool — the PgClient the worker runs on (pg_client.hpp).
class PgPool : public PgClient {
  public:
    PgPool(boost::asio::io_context &io, std::string conninfo, size_t size);
    void start();
    void stop();

    // query — runs on the next idle connection. Fails at once (unavailable) when no connection is up.
    void query(std::string sql, PgParams params, PgCallback on_done,
               PgPriority priority = PgPriority::background) override;

    size_t connected() const override;
    size_t size() const { return connections_.size(); }
    size_t queued() const { return interactive_.size() + background_.size(); }

    // Called whenever any pool connection (re)connects; used to retry parked acks.
    std::function<void()> on_connected;

  private:
    struct Pending {
        std::string sql;
        PgParams params;
        PgCallback on_done;
    };
    void dispatch();
    void fail_queue_if_down();
    // Background queries may hold all connections but one (a pool of one shares its only connection).
    size_t background_limit() const { return connections_.size() > 1 ? connections_.size() - 1 : 1; }

    boost::asio::io_context &io_;
    std::vector<std::shared_ptr<PgConnection>> connections_;
    std::deque<Pending> interactive_, background_;
    size_t background_running_ = 0;
};

// sqlstate_is_connection_error — class 08 (connection exception) and 57P0x (server shutting down).
bool sqlstate_is_connection_error(const std::string &sqlstate);
// sqlstate_is_lock_conflict — 40P01 (deadlock detected) and 40001 (serialization failure): the transaction
// was rolled back and the same statement may succeed when run again.
bool sqlstate_is_lock_conflict(const std::string &sqlstate);

}  // namespace darkspere::worker
