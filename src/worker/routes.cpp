// src/worker/routes.cpp — request dispatch and the health, readiness, metrics and status endpoints.
#include "routes.hpp"

#include "status_page.hpp"

#include <boost/asio/steady_timer.hpp>

namespace darkspere::worker {

namespace http = boost::beast::http;

namespace {

struct Route {
    const char *path;
    http::verb method;
    bool operational;  // health, readiness, metrics, status: on the admin listener when there is one
};

const Route ROUTES[] = {{"/twilio/sms", http::verb::post, false},
                        {"/twilio/status", http::verb::post, false},
                        {"/stripe/webhook", http::verb::post, false},
                        {"/healthz", http::verb::get, true},
                        {"/readyz", http::verb::get, true},
                        {"/metrics", http::verb::get, true},
                        {"/status", http::verb::get, true}};

bool reachable(const Route &route, Surface surface) {
    switch (surface) {
        case Surface::all:
            return true;
        case Surface::public_only:
            return !route.operational;
        case Surface::admin:
            return route.operational;
    }
    return false;
}

const char *const TEXT_TYPE = "text/plain; charset=utf-8";

}  // namespace

void Router::handle(Request &&req, Responder respond, Surface surface) {
    std::string_view target = req.target();
    std::string path(target.substr(0, target.find('?')));
    if (api && surface != Surface::admin && path.rfind("/api/", 0) == 0) {
        // One metric label for the whole API: ids in paths must not multiply the series.
        api->handle(std::move(req), [this, respond = std::move(respond)](Response res) {
            metrics_.count_request("/api", static_cast<int>(res.result_int()));
            respond(std::move(res));
        });
        return;
    }
    const Route *route = nullptr;
    for (const auto &r : ROUTES) {
        // A route served on the other listener is unknown here: the public side does not even reveal that
        // /metrics exists.
        if (path == r.path && reachable(r, surface))
            route = &r;
    }
    // Unknown paths share one label so a scanner cannot blow up the metric's cardinality.
    std::string label = route ? route->path : "other";
    Responder counted = [this, label, respond = std::move(respond)](Response res) {
        metrics_.count_request(label, static_cast<int>(res.result_int()));
        respond(std::move(res));
    };
    if (!route) {
        counted(make_response(404, TEXT_TYPE, "not found\n"));
        return;
    }
    bool head_ok = route->method == http::verb::get && req.method() == http::verb::head;
    if (req.method() != route->method && !head_ok) {
        Response res = make_response(405, TEXT_TYPE, "method not allowed\n");
        res.set(http::field::allow, route->method == http::verb::get ? "GET, HEAD" : "POST");
        counted(std::move(res));
        return;
    }
    if (path == "/twilio/sms") {
        twilio_.sms(std::move(req), std::move(counted));
    } else if (path == "/twilio/status") {
        twilio_.status(std::move(req), std::move(counted));
    } else if (path == "/stripe/webhook") {
        if (stripe)
            stripe->webhook(std::move(req), std::move(counted));
        else
            counted(make_response(503, TEXT_TYPE, "stripe webhooks are not configured\n"));
    } else if (path == "/healthz") {
        counted(make_response(200, TEXT_TYPE, "ok\n"));
    } else if (path == "/readyz") {
        ready(std::move(counted));
    } else if (path == "/status") {
        status(std::move(counted));
    } else {
        if (before_metrics)
            before_metrics();
        counted(make_response(200, "text/plain; version=0.0.4; charset=utf-8", render_prometheus(metrics_)));
    }
}

void Router::ready(Responder respond) {
    auto now = std::chrono::steady_clock::now();
    if (ready_last_ && now - ready_last_->second < READY_RESULT_REUSE) {
        respond(ready_response(ready_last_->first));
        return;
    }
    // Every request from here on waits for the same answer: one query at a time, whatever the burst.
    ready_waiting_.push_back(std::move(respond));
    if (!ready_deadline_armed_) {
        // Whichever comes first answers: the query, or the timeout. A query still running after the timeout
        // is not sent again; later requests wait for it under a fresh timeout.
        ready_deadline_armed_ = true;
        ready_deadline_.expires_after(READY_QUERY_TIMEOUT);
        // The generation tells a stale expiry (one already queued when the query's answer cancelled it) from
        // this one.
        ready_deadline_.async_wait(
            [this, generation = ++ready_deadline_generation_](const boost::system::error_code &ec) {
                if (ec || generation != ready_deadline_generation_ || !ready_deadline_armed_)
                    return;
                ready_deadline_armed_ = false;
                answer_ready(false);
            });
    }
    if (ready_query_pending_)
        return;
    ready_query_pending_ = true;
    ++metrics_.readiness_probes;
    pool_.query("SELECT 1", {}, [this](PgResult r) {
        ready_query_pending_ = false;
        if (ready_deadline_armed_) {
            ready_deadline_armed_ = false;
            ++ready_deadline_generation_;
            ready_deadline_.cancel();
        }
        answer_ready(r.ok);
    });
}

void Router::answer_ready(bool ok) {
    ready_last_.emplace(ok, std::chrono::steady_clock::now());
    std::vector<Responder> waiting;
    waiting.swap(ready_waiting_);  // a responder may start another /readyz on a kept-alive connection
    for (auto &respond : waiting)
        respond(ready_response(ok));
}

Response Router::ready_response(bool database_ok) const {
    // With a spool, a worker whose database is down still takes webhooks safely: a load balancer should keep
    // sending them (200), and the body tells a person why it is degraded. A full spool takes no more (503).
    if (spool && (spool->active() || !database_ok)) {
        if (spool->full())
            return make_response(503, TEXT_TYPE, "spool full\n");
        return make_response(200, TEXT_TYPE,
                             database_ok ? "degraded: replaying spooled webhooks\n"
                                         : "degraded: database unreachable, spooling webhooks\n");
    }
    return database_ok ? make_response(200, TEXT_TYPE, "ready\n")
                       : make_response(503, TEXT_TYPE, "database not ready\n");
}

void Router::status(Responder respond) {
    if (status_last_ && std::chrono::steady_clock::now() - status_last_->second < STATUS_RESULT_REUSE) {
        respond(status_last_->first);
        return;
    }
    status_waiting_.push_back(std::move(respond));
    if (status_waiting_.size() > 1)
        return;  // the query in flight answers this one too
    // One bounded statement (docs/operations.md "The status page"); interactive: a person is waiting.
    pool_.query(
        "SELECT darkspere.status_snapshot()::text AS snapshot", {}, [this](PgResult r) { answer_status(r); },
        PgPriority::interactive);
}

void Router::answer_status(const PgResult &r) {
    StatusLocal local{worker_name, metrics_.jobs_in_flight, metrics_.agent_calls_in_flight,
                      metrics_.inbound_waiting};
    Response res;
    std::optional<std::string> text = r.ok ? r.value(0, "snapshot") : std::nullopt;
    nlohmann::json snapshot = text ? nlohmann::json::parse(*text, nullptr, false) : nlohmann::json();
    bool good = text && !snapshot.is_discarded();
    if (good) {
        res = make_response(200, "text/html; charset=utf-8", render_status_page(snapshot, local));
    } else {
        // The reason names the failure, never a connection string: PgResult errors are the server's message
        // or a transport reason.
        std::string reason = r.ok ? "status_snapshot() returned no snapshot"
                                  : (r.sqlstate.empty() ? "" : r.sqlstate + ": ") + r.error;
        res = make_response(503, "text/html; charset=utf-8", render_status_unavailable(reason, local));
    }
    res.set("Content-Security-Policy", STATUS_PAGE_CSP);
    res.set(http::field::cache_control, "no-store");
    res.set("X-Content-Type-Options", "nosniff");
    if (good)
        status_last_.emplace(res, std::chrono::steady_clock::now());
    std::vector<Responder> waiting;
    waiting.swap(status_waiting_);  // a responder may start another /status on a kept-alive connection
    for (auto &respond : waiting)
        respond(res);
}

}  // namespace darkspere::worker
