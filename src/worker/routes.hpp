// src/worker/routes.hpp — maps method and path to handlers; serves /healthz, /readyz, /metrics and /status
// itself.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "http_server.hpp"
#include "metrics.hpp"
#include "pg_pool.hpp"
#include "routes_api.hpp"
#include "routes_stripe.hpp"
#include "routes_twilio.hpp"

namespace darkspere::worker {

// /readyz answers 503 when a trivial query takes longer than this.
constexpr std::chrono::milliseconds READY_QUERY_TIMEOUT{1000};
// A readiness answer is reused this long, so a burst of /readyz requests costs one query, not one each.
constexpr std::chrono::milliseconds READY_RESULT_REUSE{1000};
// A /status snapshot is reused this long: a page left open in many tabs, or reloaded fast, costs one query.
constexpr std::chrono::milliseconds STATUS_RESULT_REUSE{2000};

// Surface — which listener a request came in on, and so which routes it may reach.
enum class Surface {
    all,          // the only listener (no admin-listen): every route
    public_only,  // the public listener beside an admin one: the webhooks; /healthz, /readyz, /metrics are
                  // 404
    admin,        // the admin listener: /healthz, /readyz, /metrics and /status only
};

class Router {
  public:
    Router(boost::asio::io_context &io, PgPool &pool, Metrics &metrics, TwilioRoutes &twilio)
        : io_(io), pool_(pool), metrics_(metrics), twilio_(twilio), ready_deadline_(io) {}

    // handle — the RequestHandler given to an HttpServer, which tells the surface it listens for; counts
    // every answer by route and status.
    void handle(Request &&req, Responder respond, Surface surface = Surface::all);

    // Refreshes gauges that are read rather than counted, just before /metrics renders.
    std::function<void()> before_metrics;
    // The spool, when spool-dir is set: /readyz then says "degraded" (200) while webhooks are spooled or
    // replayed, and stays 200 with the database down as long as the spool has room.
    const Spool *spool = nullptr;
    // The HTTP API (/api/…, public surface); none: those paths are 404.
    ApiRoutes *api = nullptr;
    // POST /stripe/webhook (public surface); none: 503.
    StripeRoutes *stripe = nullptr;
    // Shown on GET /status.
    std::string worker_name;

  private:
    void ready(Responder respond);
    void answer_ready(bool ok);
    Response ready_response(bool database_ok) const;
    void status(Responder respond);
    void answer_status(const PgResult &r);

    boost::asio::io_context &io_;
    PgPool &pool_;
    Metrics &metrics_;
    TwilioRoutes &twilio_;

    // /readyz: requests waiting for the probe in flight, which answers all of them; the last answer and when.
    std::vector<Responder> ready_waiting_;
    bool ready_query_pending_ = false;
    boost::asio::steady_timer ready_deadline_;
    bool ready_deadline_armed_ = false;
    unsigned long ready_deadline_generation_ = 0;
    std::optional<std::pair<bool, std::chrono::steady_clock::time_point>> ready_last_;

    // /status: requests waiting for the snapshot query in flight (one at a time, shared), and the last page.
    std::vector<Responder> status_waiting_;
    std::optional<std::pair<Response, std::chrono::steady_clock::time_point>> status_last_;
};

}  // namespace darkspere::worker
