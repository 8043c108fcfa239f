// bench/peer/client_pool.hpp — the load generator's pool of keep-alive HTTP/1.1 connections to one server.
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "server.hpp"

namespace darkspere::bench {

// The outcome of one request: the HTTP status, or 0 and what went wrong.
struct PostResult {
    unsigned status = 0;
    std::string error;
};

// ClientPool sends each request on an idle connection, else on a new one while fewer than max_connections are
// open, else queues it until a connection frees up — the way Node's keep-alive http.Agent with maxSockets
// does, which is what the Node load generator uses. Every request is bounded by `timeout` (connect + write +
// read); a connection that failed or timed out is closed, never reused. There are no retries: a failure is
// reported.
class ClientPool : public std::enable_shared_from_this<ClientPool> {
  public:
    using Done = std::function<void(PostResult)>;

    ClientPool(boost::asio::io_context &io, boost::asio::ip::tcp::endpoint endpoint, size_t max_connections,
               std::chrono::milliseconds timeout);

    // post sends req and calls done once with the outcome (never from inside post itself).
    void post(Request req, Done done);

    // close closes every connection: requests in flight and queued ones complete with an error.
    void close();

    // opened counts the connections this pool opened over its life.
    size_t opened() const { return opened_; }

  private:
    struct Connection;
    using ConnectionPtr = std::shared_ptr<Connection>;

    void open_for(Request req, Done done);
    void start(const ConnectionPtr &c, Request req, Done done);
    void write(const ConnectionPtr &c, Done done);
    void finish(const ConnectionPtr &c, PostResult result, Done done, bool reusable);

    boost::asio::io_context &io_;
    boost::asio::ip::tcp::endpoint endpoint_;
    size_t max_connections_;
    std::chrono::milliseconds timeout_;
    std::unordered_set<ConnectionPtr> all_;
    std::vector<ConnectionPtr> idle_;
    std::deque<std::pair<Request, Done>> waiting_;
    size_t opened_ = 0;
    bool closed_ = false;
};

}  // namespace darkspere::bench
