// src/worker/node_queues.hpp — one queue per node on Citus (docs/scaling.md, "One queue per node"): a pool, a
// LISTEN connection and a job runner for every worker node's own queue.
//
// Once darkspere.distribute() has delegated receive_sms_for, a text is stored by one call that Citus runs
// whole on its tenant's node, and its agent call is queued in that node's own `jobs` (a NOTIFY raised there
// reaches only a listener there). So the worker claims, acks and listens on every node the coordinator names
// (darkspere.queue_nodes()), and calls darkspere.tick_queue() there for the node's leases; the coordinator
// keeps its own queue (tick()'s routing, alerts, billing) and its runner. Nodes are asked for at start and
// every NODE_DISCOVERY_INTERVAL; a node added to the cluster is served from then on. On plain PostgreSQL, and
// on Citus before distribute(), there are none and nothing here runs.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json.hpp>

#include "job_runner.hpp"
#include "listener.hpp"
#include "pg_pool.hpp"

namespace darkspere::worker {

constexpr std::chrono::seconds NODE_DISCOVERY_INTERVAL{30};

// share — a runner's limits when `queues` runners (the coordinator's and one per node) share the worker's:
// max_in_flight and the per-agent and per-account limits divided among them (at least 1 each), so the worker
// as a whole stays within what it was configured for.
RunnerSettings share(RunnerSettings s, size_t queues);

class NodeQueues {
  public:
    // What every node's runner shares with the coordinator's. conninfo: the worker's --db, aimed at each node
    // (conninfo_for_node); settings: the worker's runner settings before they are shared.
    struct Parts {
        boost::asio::io_context &io;
        PgClient &coordinator;
        std::string conninfo;
        size_t pool_size;
        AgentHttp &agent_http;
        McpClient &mcp;
        TwilioSender &twilio;
        Metrics &metrics;
        HttpClient *stripe_http;
        std::function<RunnerSettings()> settings;
    };
    explicit NodeQueues(Parts parts);
    ~NodeQueues();
    NodeQueues(const NodeQueues &) = delete;
    NodeQueues &operator=(const NodeQueues &) = delete;

    // start — asks for the nodes now and every NODE_DISCOVERY_INTERVAL.
    void start();
    // discover — asks for the nodes now (when the coordinator's pool connects); new ones are served.
    void discover();
    // on_serving — called once, when the first node's runner has started: from then on texts may be queued on
    // the nodes (the receive batcher delegates).
    std::function<void()> on_serving;

    size_t nodes() const { return nodes_.size(); }
    long in_flight() const;
    size_t acks_parked() const;
    nlohmann::json stats() const;
    // query_each — runs `sql` on every node whose pool is up (background); on_result once per node answered.
    void query_each(const std::string &sql, const std::function<void(PgResult)> &on_result);
    // drain — stops asking for nodes and drains every node's runner; done once all are drained (or timed
    // out).
    void drain(std::chrono::milliseconds timeout, std::function<void()> done);
    // stop — closes the LISTEN connections and pools (after drain).
    void stop();

  private:
    struct Node;
    void serve(const std::string &host, int port);

    Parts parts_;
    boost::asio::steady_timer timer_;
    bool discovering_ = false;
    bool stopping_ = false;
    std::vector<std::unique_ptr<Node>> nodes_;
};

}  // namespace darkspere::worker
