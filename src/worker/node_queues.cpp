// src/worker/node_queues.cpp — a pool, a LISTEN connection and a job runner per Citus worker node (see
// node_queues.hpp).
#include "node_queues.hpp"

#include <algorithm>
#include <cstdlib>

#include "log.hpp"
#include "node_conninfo.hpp"

namespace darkspere::worker {

namespace {

const char *const SQL_QUEUE_NODES = "SELECT node_name, node_port FROM darkspere.queue_nodes()";

long shared_limit(long limit, size_t queues) {
    return limit <= 0 ? limit : std::max(1L, limit / static_cast<long>(queues));
}

}  // namespace

RunnerSettings share(RunnerSettings s, size_t queues) {
    if (queues <= 1)
        return s;
    s.max_in_flight = shared_limit(s.max_in_flight, queues);
    s.max_in_flight_per_agent = shared_limit(s.max_in_flight_per_agent, queues);
    s.max_in_flight_per_account = shared_limit(s.max_in_flight_per_account, queues);
    return s;
}

struct NodeQueues::Node {
    Node(NodeQueues &owner, std::string address, const std::string &conninfo)
        : address(std::move(address)),
          pool(owner.parts_.io, conninfo, owner.parts_.pool_size),
          listener(owner.parts_.io, conninfo),
          runner(owner.parts_.io, pool, owner.parts_.agent_http, owner.parts_.mcp, owner.parts_.twilio,
                 owner.parts_.metrics, [&owner] {
                     RunnerSettings s = share(owner.parts_.settings(), owner.nodes_.size() + 1);
                     s.queue_tick_only = true;
                     return s;
                 }) {}
    std::string address;  // host:port, for the logs
    PgPool pool;
    Listener listener;
    JobRunner runner;
};

NodeQueues::NodeQueues(Parts parts) : parts_(std::move(parts)), timer_(parts_.io) {}

NodeQueues::~NodeQueues() = default;

void NodeQueues::start() {
    discover();
    timer_.expires_after(NODE_DISCOVERY_INTERVAL);
    timer_.async_wait([this](const boost::system::error_code &ec) {
        if (!ec && !stopping_)
            start();
    });
}

void NodeQueues::discover() {
    if (discovering_ || stopping_ || parts_.coordinator.connected() == 0)
        return;  // the next round (or the reconnect) asks again
    discovering_ = true;
    parts_.coordinator.query(
        SQL_QUEUE_NODES, {},
        [this](PgResult r) {
            discovering_ = false;
            if (stopping_)
                return;
            if (!r.ok) {
                // An older extension without queue_nodes() (42883) has no node queues: nothing to serve.
                if (!r.unavailable && r.sqlstate != "42883")
                    log_warn("could not ask for the queue nodes",
                             {{"sqlstate", r.sqlstate}, {"error", r.error}});
                return;
            }
            for (size_t i = 0; i < r.rows.size(); ++i) {
                std::string host = r.value(i, "node_name").value_or("");
                int port = std::atoi(r.value(i, "node_port").value_or("0").c_str());
                if (!host.empty() && port > 0)
                    serve(host, port);
            }
        },
        PgPriority::background);
}

void NodeQueues::serve(const std::string &host, int port) {
    std::string address = host + ":" + std::to_string(port);
    if (std::any_of(nodes_.begin(), nodes_.end(), [&](const auto &n) { return n->address == address; }))
        return;
    std::string error;
    std::optional<std::string> conninfo = conninfo_for_node(parts_.conninfo, host, port, &error);
    if (!conninfo) {
        log_error("could not aim the database settings at a queue node",
                  {{"node", address}, {"error", error}});
        return;
    }
    auto node = std::make_unique<Node>(*this, address, *conninfo);
    Node &n = *node;
    nodes_.push_back(std::move(node));
    n.runner.stripe_http = parts_.stripe_http;
    n.listener.on_wake = [&n] { n.runner.wake(); };
    n.listener.on_ready = [&n] { log_info("listening for jobs on a queue node", {{"node", n.address}}); };
    n.pool.on_connected = [&n] { n.runner.database_reconnected(); };
    n.pool.start();
    n.listener.start();
    n.runner.start();
    log_info("serving a queue node", {{"node", address}, {"nodes", nodes_.size()}});
    if (nodes_.size() == 1 && on_serving)
        on_serving();
}

long NodeQueues::in_flight() const {
    long total = 0;
    for (const auto &n : nodes_)
        total += n->runner.in_flight();
    return total;
}

size_t NodeQueues::acks_parked() const {
    size_t total = 0;
    for (const auto &n : nodes_)
        total += n->runner.acks_parked();
    return total;
}

nlohmann::json NodeQueues::stats() const {
    nlohmann::json out = nlohmann::json::object();
    for (const auto &n : nodes_) {
        nlohmann::json s = n->runner.stats();
        s["db_connections"] = n->pool.connected();
        s["listening"] = n->listener.listening();
        out[n->address] = std::move(s);
    }
    return out;
}

void NodeQueues::query_each(const std::string &sql, const std::function<void(PgResult)> &on_result) {
    for (auto &n : nodes_) {
        if (n->pool.connected() > 0)
            n->pool.query(sql, {}, on_result, PgPriority::background);
    }
}

void NodeQueues::drain(std::chrono::milliseconds timeout, std::function<void()> done) {
    stopping_ = true;
    timer_.cancel();
    auto left = std::make_shared<size_t>(nodes_.size() + 1);
    auto one_done = [left, done = std::move(done)] {
        if (--*left == 0)
            done();
    };
    for (auto &n : nodes_)
        n->runner.drain(timeout, one_done);
    one_done();  // the +1: done runs even with no node
}

void NodeQueues::stop() {
    for (auto &n : nodes_) {
        n->listener.stop();
        n->pool.stop();
    }
}

}  // namespace darkspere::worker
