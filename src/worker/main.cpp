// src/worker/main.cpp — darkspere-worker: wiring, signals and the periodic timers.
//
// Glossary. A *webhook* is an HTTP request from Twilio; the worker verifies it and hands it to one SQL
// function. A *job* is a row of the database's queue (agent_call, sms_send); an *attempt* is one lease of a
// job; an *ack* reports the attempt's outcome with complete_job / fail_job. The worker keeps no state another
// worker needs: everything durable lives in the database; in memory there are only calls in flight and acks
// not yet written. The one exception is the spool (spool-dir, spool_replay.hpp): texts accepted while the
// database was unreachable, on this worker's disk until they are stored.
//
// Signals: SIGTERM / SIGINT stop accepting and claiming, let running jobs finish (up to --drain-timeout-ms),
// ack them, and exit 0; a second one exits at once. SIGHUP reloads the config file and environment.
#include <curl/curl.h>
#include <sys/resource.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <memory>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include "agent_http.hpp"
#include "common/sd_notify.hpp"
#include "config.hpp"
#include "egress_policy.hpp"
#include "http_client_curl.hpp"
#include "http_server.hpp"
#include "job_runner.hpp"
#include "listener.hpp"
#include "log.hpp"
#include "mcp_client.hpp"
#include "metrics.hpp"
#include "node_queues.hpp"
#include "pg_pool.hpp"
#include "routes.hpp"
#include "routes_twilio.hpp"
#include "spool_replay.hpp"
#include "twilio_sender.hpp"

// CMake passes its project version, read from darkspere.control's default_version.
#ifndef DARKSPERE_VERSION
#error "DARKSPERE_VERSION must be defined (CMake reads it from darkspere.control)"
#endif

namespace asio = boost::asio;
using namespace darkspere::worker;
using std::chrono::milliseconds;

namespace {

// How often darkspere.queue_depth is read for /metrics.
constexpr milliseconds QUEUE_DEPTH_REFRESH{5000};
// Connections the admin listener (admin-listen) holds open at once.
constexpr size_t ADMIN_MAX_CONNECTIONS = 64;

// raise_fd_limit — lifts the soft RLIMIT_NOFILE to the hard limit: every agent call in flight holds a socket.
void raise_fd_limit() {
    rlimit lim{};
    if (getrlimit(RLIMIT_NOFILE, &lim) != 0)
        return;
    rlim_t before = lim.rlim_cur;
    if (lim.rlim_cur < lim.rlim_max) {
        lim.rlim_cur = lim.rlim_max;
        setrlimit(RLIMIT_NOFILE, &lim);
        getrlimit(RLIMIT_NOFILE, &lim);
    }
    log_debug("file descriptor limit", {{"before", static_cast<unsigned long long>(before)},
                                        {"now", static_cast<unsigned long long>(lim.rlim_cur)}});
}

// notify_systemd — sd_notify without libsystemd (common/sd_notify.hpp); a no-op unless started by systemd.
void notify_systemd(const std::string &state) {
    std::string error;
    if (darkspere::sd_notify_state(state, &error) < 0)
        log_warn("could not notify systemd", {{"error", error}});
}

// Repeating timer helper: runs fn every interval() until fn's owner stops the loop.
void every(asio::steady_timer &timer, std::function<milliseconds()> interval, std::function<void()> fn) {
    timer.expires_after(interval());
    timer.async_wait([&timer, interval, fn](const boost::system::error_code &ec) {
        if (ec)
            return;
        fn();
        every(timer, interval, fn);
    });
}

// answer_webhooks_then — runs done once no verified webhook waits for its answer, or at the deadline.
void answer_webhooks_then(asio::steady_timer &timer, std::chrono::steady_clock::time_point deadline,
                          const TwilioRoutes &routes, std::function<void()> done) {
    if (routes.webhooks_in_progress() == 0 || std::chrono::steady_clock::now() >= deadline) {
        if (routes.webhooks_in_progress() > 0)
            log_warn("drain timeout: webhooks left unanswered",
                     {{"webhooks", routes.webhooks_in_progress()}});
        done();
        return;
    }
    timer.expires_after(milliseconds(10));
    timer.async_wait(
        [&timer, deadline, &routes, done = std::move(done)](const boost::system::error_code &ec) {
            if (!ec)
                answer_webhooks_then(timer, deadline, routes, done);
        });
}

// run — the worker's life from listening to the end of the drain; returns the exit status.
int run(const ConfigSources &sources, std::shared_ptr<const Config> config) {
    asio::io_context io(1);
    Metrics metrics;
    auto current = [&config] { return config; };

    // Twilio and Stripe are reached at operator-configured URLs; agents at tenant-chosen ones, so agent calls
    // get their own client whose every new connection is vetted (and never reuse a Twilio connection).
    CurlHttpClient http(io, "darkspere-worker/" DARKSPERE_VERSION);
    std::vector<IpAddress> database = database_addresses(config->db);
    CurlHttpClient agent_client(
        io, "darkspere-worker/" DARKSPERE_VERSION, [&config, database](const struct sockaddr *address) {
            return agent_address_refusal(address, config->agent_allow_private, database);
        });
    McpClient mcp(agent_client, DARKSPERE_VERSION);
    AgentHttp agent_http(agent_client);
    TwilioSender twilio(io, http, [&config] {
        TwilioSettings s{config->twilio_base, config->public_url, config->twilio_accounts,
                         config->twilio_deadline_ms};
        s.max_concurrent = config->twilio_max_concurrent;
        s.lease_ms = config->lease_seconds * 1000;  // validate() keeps it above the deadline plus the margin
        return s;
    });
    PgPool pool(io, config->db, static_cast<size_t>(config->pool_size));
    Listener listener(io, config->db);
    auto runner_settings = [&config] {
        RunnerSettings s;
        s.worker_name = config->worker_name;
        s.max_in_flight = config->max_in_flight;
        s.max_in_flight_per_agent = config->max_in_flight_per_agent;
        s.max_in_flight_per_account = config->max_in_flight_per_account;
        s.lease_seconds = config->lease_seconds;
        s.agent_deadline_ms = config->agent_deadline_ms;
        s.agent_max_response_bytes = config->agent_max_response_bytes;
        s.allow_insecure_http = config->allow_insecure_http;
        s.poll_interval_ms = config->poll_interval_ms;
        s.tick_interval_ms = config->tick_interval_ms;
        s.stripe_base = config->stripe_base;
        s.stripe_api_key = config->stripe_api_key;
        return s;
    };
    // On Citus with one queue per node, a runner for each worker node's queue beside the coordinator's; the
    // runners share the worker's limits (node_queues.hpp). None on one PostgreSQL.
    NodeQueues node_queues({io, pool, config->db, static_cast<size_t>(config->pool_size), agent_http, mcp,
                            twilio, metrics, &http, runner_settings});
    JobRunner runner(io, pool, agent_http, mcp, twilio, metrics,
                     [&] { return share(runner_settings(), node_queues.nodes() + 1); });
    runner.stripe_http = &http;
    // No hand-offs once texts are queued on the nodes: a call leased by the coordinator's statement would be
    // in the coordinator's queue, which a delegated text never writes.
    CallHandoff handoff{
        [&runner, &node_queues] { return node_queues.nodes() > 0 ? nullptr : runner.reserve_call_slot(); }};
    TwilioRoutes twilio_routes(pool, metrics, current, std::move(handoff));
    // Refused webhook signatures, reported to the database once a second (the failed_signatures alert rule).
    SignatureFailures signature_failures(io, pool);
    twilio_routes.set_signature_failures(&signature_failures);
    Router router(io, pool, metrics, twilio_routes);
    // The spool (spool-dir): webhooks the database cannot take are kept on disk and stored once it is back.
    std::unique_ptr<Spool> spool;
    if (!config->spool_dir.empty()) {
        SpoolSettings spool_settings{config->spool_dir, static_cast<uint64_t>(config->spool_max_bytes),
                                     config->spool_replay_per_second};
        spool = std::make_unique<Spool>(
            io, metrics, spool_settings, [&pool] { return pool.connected() > 0; },
            [&twilio_routes](PgParams args, PgCallback done) {
                twilio_routes.store_replayed(std::move(args), std::move(done));
            });
        try {
            spool->open();
        } catch (const std::exception &e) {
            log_error("could not open the spool",
                      {{"spool_dir", config->spool_dir},
                       {"error", e.what()},
                       {"hint", "give each worker process its own writable spool-dir"}});
            return 1;
        }
        twilio_routes.set_spool(spool.get());
        router.spool = spool.get();
    }
    ApiRoutes api_routes(pool, current, &http);
    router.api = &api_routes;
    StripeRoutes stripe_routes(pool, metrics, current);
    router.stripe = &stripe_routes;
    router.worker_name = config->worker_name;
    HttpLimits limits;
    limits.max_connections = static_cast<size_t>(config->max_connections);
    limits.max_connections_per_ip = static_cast<size_t>(config->max_connections_per_ip);
    limits.header_timeout = milliseconds(config->header_timeout_ms);
    limits.idle_timeout = milliseconds(config->idle_timeout_ms);
    bool with_admin = !config->admin_listen_host.empty();
    Surface public_surface = with_admin ? Surface::public_only : Surface::all;
    HttpServer server(
        io,
        [&router, public_surface](Request &&req, Responder respond) {
            router.handle(std::move(req), std::move(respond), public_surface);
        },
        limits);
    // The admin listener serves scrapers and probes, a handful of clients: it gets few connections of its
    // own, so a flood on the public port can never take them, nor they the public ones.
    HttpLimits admin_limits = limits;
    admin_limits.max_connections = ADMIN_MAX_CONNECTIONS;
    admin_limits.max_connections_per_ip = std::min(limits.max_connections_per_ip, ADMIN_MAX_CONNECTIONS);
    HttpServer admin_server(
        io,
        [&router](Request &&req, Responder respond) {
            router.handle(std::move(req), std::move(respond), Surface::admin);
        },
        admin_limits);
    for (HttpServer *s : {&server, &admin_server}) {
        s->on_rejected = [&metrics](unsigned status) {
            metrics.count_request("other", static_cast<int>(status));
        };
        s->on_refused = [&metrics](const char *reason) { ++metrics.http_connections_refused[reason]; };
    }
    node_queues.on_serving = [&twilio_routes] {
        twilio_routes.delegate_to_nodes();
        log_info("texts are stored on their tenant's node (receive_sms_for) and queued there");
    };
    router.before_metrics = [&] {
        metrics.db_connections = static_cast<long>(pool.connected());
        metrics.acks_pending = static_cast<long>(runner.acks_parked() + node_queues.acks_parked());
        metrics.inbound_waiting = static_cast<long>(twilio_routes.inbound_waiting());
        metrics.twilio_sends_waiting = twilio.sends_waiting();
    };

    uint16_t port = 0;
    try {
        port = server.listen(config->listen_host, config->listen_port);
    } catch (const std::exception &e) {
        log_error("could not listen", {{"address", config->listen_host},
                                       {"port", config->listen_port},
                                       {"error", e.what()},
                                       {"hint", "choose another address or port with --listen"}});
        return 1;
    }
    log_info("listening",
             {{"address", config->listen_host}, {"port", port}, {"worker", config->worker_name}});
    if (with_admin) {
        uint16_t admin_port = 0;
        try {
            admin_port = admin_server.listen(config->admin_listen_host, config->admin_listen_port);
        } catch (const std::exception &e) {
            log_error("could not listen", {{"address", config->admin_listen_host},
                                           {"port", config->admin_listen_port},
                                           {"error", e.what()},
                                           {"hint", "choose another address or port with --admin-listen"}});
            return 1;
        }
        log_info("admin listening", {{"address", config->admin_listen_host},
                                     {"port", admin_port},
                                     {"routes", "/healthz /readyz /metrics /status"}});
    }

    bool ready_logged = false;
    listener.on_ready = [&] {
        if (!ready_logged) {
            ready_logged = true;
            log_info("ready", {{"worker", config->worker_name}});
            // systemd (Type=notify) starts dependent units only now: LISTEN is established.
            notify_systemd("READY=1\nSTATUS=listening for jobs");
        } else {
            log_info("listening for notifications again");
        }
    };
    listener.on_wake = [&runner] { runner.wake(); };
    pool.on_connected = [&runner, &spool, &node_queues] {
        runner.database_reconnected();
        node_queues.discover();
        if (spool)
            spool->wake();
    };

    pool.start();
    listener.start();
    runner.start();
    node_queues.start();

    // Queue depth for /metrics, read from the extension's view: the coordinator's queue and, on Citus with
    // one queue per node, every node's, added together.
    asio::steady_timer depth_timer(io);
    bool depth_running = false;
    const char *const depth_sql = "SELECT kind, state, jobs FROM darkspere.queue_depth";
    auto add_depth = [&metrics](const PgResult &r) {
        if (!r.ok) {
            log_debug("queue_depth refresh failed", {{"error", r.error}});
            return;
        }
        for (size_t i = 0; i < r.rows.size(); ++i) {
            double jobs = 0;
            try {
                jobs = std::stod(r.value(i, "jobs").value_or("0"));
            } catch (const std::exception &) {
            }
            metrics.queue_depth[{job_kind_label(job_kind_from_sql(r.value(i, "kind").value_or(""))),
                                 job_state_label(job_state_from_sql(r.value(i, "state").value_or("")))}] +=
                jobs;
        }
    };
    every(
        depth_timer, [] { return QUEUE_DEPTH_REFRESH; },
        [&] {
            if (depth_running || pool.connected() == 0)
                return;
            depth_running = true;
            pool.query(depth_sql, {}, [&](PgResult r) {
                depth_running = false;
                if (!r.ok) {
                    add_depth(r);  // logs; the last figures stay
                    return;
                }
                metrics.queue_depth.clear();
                add_depth(r);
                node_queues.query_each(depth_sql, add_depth);
            });
        });

    // One-line stats, pgbouncer style.
    asio::steady_timer stats_timer(io);
    asio::steady_timer drain_timer(io);
    every(
        stats_timer, [&config] { return milliseconds(config->stats_interval_ms); },
        [&] {
            nlohmann::json s = runner.stats();
            s["http_connections"] = server.open_connections();
            s["db_connections"] = pool.connected();
            s["db_queued"] = pool.queued();
            s["listening"] = listener.listening();
            s["outbound_in_flight"] = http.in_flight();
            if (node_queues.nodes() > 0)
                s["queue_nodes"] = node_queues.stats();
            log_info("stats", s);
        });

    bool stopping = false;
    asio::signal_set signals(io, SIGINT, SIGTERM, SIGHUP);
    std::function<void()> wait_signal;
    wait_signal = [&] {
        signals.async_wait([&](const boost::system::error_code &ec, int signo) {
            if (ec)
                return;
            if (signo == SIGHUP) {
                try {
                    auto loaded = load_config(sources);
                    if (loaded) {
                        if (loaded->db != config->db || loaded->listen_host != config->listen_host ||
                            loaded->listen_port != config->listen_port ||
                            loaded->pool_size != config->pool_size ||
                            loaded->admin_listen_host != config->admin_listen_host ||
                            loaded->admin_listen_port != config->admin_listen_port ||
                            loaded->max_connections != config->max_connections ||
                            loaded->max_connections_per_ip != config->max_connections_per_ip ||
                            loaded->header_timeout_ms != config->header_timeout_ms ||
                            loaded->idle_timeout_ms != config->idle_timeout_ms ||
                            loaded->spool_dir != config->spool_dir ||
                            loaded->spool_max_bytes != config->spool_max_bytes ||
                            loaded->spool_replay_per_second != config->spool_replay_per_second)
                            log_warn(
                                "db, listen, admin-listen, pool-size and the connection limits "
                                "(max-connections, "
                                "max-connections-per-ip, header-timeout-ms, idle-timeout-ms) and the spool "
                                "settings take effect after a "
                                "restart");
                        LogLevel lvl = LogLevel::info;
                        parse_log_level(loaded->log_level, &lvl);
                        set_log_level(lvl);
                        config = std::make_shared<const Config>(std::move(*loaded));
                        log_info("reloaded", {{"twilio_accounts", config->twilio_accounts.size()},
                                              {"log_level", config->log_level}});
                    }
                } catch (const ConfigError &e) {
                    log_error("reload failed; keeping the previous configuration",
                              {{"error", e.what()}, {"hint", e.hint()}});
                }
                wait_signal();
                return;
            }
            if (stopping) {
                log_warn("second stop signal: exiting without waiting",
                         {{"jobs_in_flight", runner.in_flight() + node_queues.in_flight()}});
                io.stop();
                return;
            }
            stopping = true;
            notify_systemd("STOPPING=1\nSTATUS=draining");
            log_info("shutting down", {{"signal", signo == SIGTERM ? "SIGTERM" : "SIGINT"},
                                       {"jobs_in_flight", runner.in_flight() + node_queues.in_flight()},
                                       {"drain_timeout_ms", config->drain_timeout_ms}});
            server.stop_accepting();
            admin_server.stop_accepting();
            depth_timer.cancel();
            auto drain_deadline = std::chrono::steady_clock::now() + milliseconds(config->drain_timeout_ms);
            // The coordinator's runner and the nodes' drain side by side; the rest waits for both.
            auto draining = std::make_shared<int>(2);
            auto drained = [&, draining, drain_deadline] {
                if (--*draining > 0)
                    return;
                // Webhooks already verified are answered before the pool closes: an unanswered webhook is a
                // text Twilio will not send again.
                answer_webhooks_then(drain_timer, drain_deadline, twilio_routes, [&] {
                    log_info("stopped", runner.stats());
                    stats_timer.cancel();
                    if (spool)
                        spool->stop();
                    node_queues.stop();
                    listener.stop();
                    pool.stop();
                    io.stop();
                });
            };
            runner.drain(milliseconds(config->drain_timeout_ms), drained);
            node_queues.drain(milliseconds(config->drain_timeout_ms), drained);
            wait_signal();
        });
    };
    wait_signal();

    io.run();
    return 0;
}

}  // namespace

int main(int argc, char **argv) {
    // --version answers before any configuration is read: packaging and operators ask it of a bare binary.
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--version") == 0) {
            std::printf("darkspere-worker %s\n", DARKSPERE_VERSION);
            return 0;
        }
    }
    ConfigSources sources = process_config_sources(argc, argv);
    std::shared_ptr<const Config> config;
    try {
        auto loaded = load_config(sources);
        if (!loaded) {
            std::fputs(usage().c_str(), stdout);
            return 0;
        }
        config = std::make_shared<const Config>(std::move(*loaded));
    } catch (const ConfigError &e) {
        log_error("invalid configuration", {{"error", e.what()}, {"hint", e.hint()}});
        return 2;
    }
    LogLevel level = LogLevel::info;
    parse_log_level(config->log_level, &level);
    set_log_level(level);
    if (config->twilio_token_on_command_line)
        log_warn(
            "a Twilio auth token was given on the command line, where every local user can read it in "
            "/proc/<pid>/cmdline",
            {{"twilio_accounts", config->twilio_accounts.size()},
             {"hint", "pass tokens in DARKSPERE_TWILIO_ACCOUNTS or in a config file of mode 0600"}});

    std::signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();
    // libcurl's global state must outlive every handle, so it wraps run().
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int status = run(sources, std::move(config));
    curl_global_cleanup();
    return status;
}
