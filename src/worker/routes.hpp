// src/worker/routes.hpp — maps method and path to handlers; serves /healthz, /readyz and /metrics itself.
#pragma once

#include <functional>
#include <string>

#include <boost/asio/io_context.hpp>

#include "http_server.hpp"
#include "metrics.hpp"
#include "pg_pool.hpp"
#include "routes_twilio.hpp"

namespace darkspere::worker {

// /readyz answers 503 when a trivial query takes longer than this.
constexpr std::chrono::milliseconds READY_QUERY_TIMEOUT{1000};

class Router {
  public:
    Router(boost::asio::io_context &io, PgPool &pool, Metrics &metrics, TwilioRoutes &twilio)
        : io_(io), pool_(pool), metrics_(metrics), twilio_(twilio) {}

    // handle — the RequestHandler given to HttpServer; counts every answer by route and status.
    void handle(Request &&req, Responder respond);

    // Refreshes gauges that are read rather than counted, just before /metrics renders.
    std::function<void()> before_metrics;

  private:
    void ready(Responder respond);

    boost::asio::io_context &io_;
    PgPool &pool_;
    Metrics &metrics_;
    TwilioRoutes &twilio_;
};

}  // namespace darkspere::worker
