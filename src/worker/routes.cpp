// src/worker/routes.cpp — request dispatch and the health, readiness and metrics endpoints.
#include "routes.hpp"

#include <boost/asio/steady_timer.hpp>

namespace darkspere::worker {

namespace http = boost::beast::http;

namespace {

struct Route {
    const char *path;
    http::verb method;
};

const Route ROUTES[] = {{"/twilio/sms", http::verb::post},
                        {"/twilio/status", http::verb::post},
                        {"/healthz", http::verb::get},
                        {"/readyz", http::verb::get},
                        {"/metrics", http::verb::get}};

const char *const TEXT_TYPE = "text/plain; charset=utf-8";

}  // namespace

void Router::handle(Request &&req, Responder respond) {
    std::string_view target = req.target();
    std::string path(target.substr(0, target.find('?')));
    const Route *route = nullptr;
    for (const auto &r : ROUTES) {
        if (path == r.path)
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
    } else if (path == "/healthz") {
        counted(make_response(200, TEXT_TYPE, "ok\n"));
    } else if (path == "/readyz") {
        ready(std::move(counted));
    } else {
        if (before_metrics)
            before_metrics();
        counted(make_response(200, "text/plain; version=0.0.4; charset=utf-8", render_prometheus(metrics_)));
    }
}

void Router::ready(Responder respond) {
    // Whichever comes first answers: the query, or the timeout.
    auto answered = std::make_shared<bool>(false);
    auto shared_respond = std::make_shared<Responder>(std::move(respond));
    auto timer = std::make_shared<boost::asio::steady_timer>(io_, READY_QUERY_TIMEOUT);
    timer->async_wait([answered, shared_respond](const boost::system::error_code &ec) {
        if (ec || *answered)
            return;
        *answered = true;
        (*shared_respond)(make_response(503, TEXT_TYPE, "database not ready\n"));
    });
    pool_.query("SELECT 1", {}, [answered, shared_respond, timer](PgResult r) {
        if (*answered)
            return;
        *answered = true;
        timer->cancel();
        if (r.ok)
            (*shared_respond)(make_response(200, TEXT_TYPE, "ready\n"));
        else
            (*shared_respond)(make_response(503, TEXT_TYPE, "database not ready\n"));
    });
}

}  // namespace darkspere::worker
