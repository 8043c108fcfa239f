// src/worker/routes_stripe.hpp — POST /stripe/webhook: Stripe events verified with Stripe-Signature and
// handed whole to one SQL call, darkspere.stripe_event, which decides everything (docs/billing.md).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "config.hpp"
#include "http_server.hpp"
#include "log_throttle.hpp"
#include "metrics.hpp"
#include "pg_client.hpp"

namespace darkspere::worker {

// StripeCheck — the verdict on a Stripe webhook before the database is asked anything.
struct StripeCheck {
    unsigned status =
        200;  // 200: verified, body is a JSON object; otherwise the response status (400 or 503)
    std::string
        outcome;  // for darkspere_stripe_events_total when refused: bad_signature, bad_body, unconfigured
    std::string error;  // the plain-text answer of a refusal (never the secret)
};

// verify_stripe_webhook — secret configured (else 503), Stripe-Signature valid for the raw body within
// tolerance_s of now_unix (any of several v1), body a JSON object (else 400). Pure, for tests.
StripeCheck verify_stripe_webhook(const Request &req, const std::string &secret, long long tolerance_s,
                                  long long now_unix);

// stripe_sql_status — the HTTP status for a failed darkspere.stripe_event: 400 for a malformed event
// (SQLSTATE class 22), 500 for anything else, so Stripe retries.
unsigned stripe_sql_status(const PgResult &result);

class StripeRoutes {
  public:
    StripeRoutes(PgClient &pool, Metrics &metrics, std::function<std::shared_ptr<const Config>()> config)
        : pool_(pool), metrics_(metrics), config_(std::move(config)) {}

    // webhook — POST /stripe/webhook.
    void webhook(Request &&req, Responder respond);

  private:
    PgClient &pool_;
    Metrics &metrics_;
    std::function<std::shared_ptr<const Config>()> config_;
    LogThrottle refusal_log_;
};

}  // namespace darkspere::worker
