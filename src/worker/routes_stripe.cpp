// src/worker/routes_stripe.cpp — POST /stripe/webhook: verify, then one call of darkspere.stripe_event.
//
// The worker checks only what it must before the database sees the event: that a secret is configured (503),
// the Stripe-Signature header over the raw body (400) and that the body is a JSON object (400). The event is
// then passed whole; idempotency, ordering and every plan change are the SQL function's. 200 on 'processed',
// 'duplicate' and 'ignored'; 400 on a malformed event (SQLSTATE class 22); 500 on any other error, so Stripe
// retries (nothing was recorded: the call is one transaction). The secret is never logged or answered.
#include "routes_stripe.hpp"

#include <chrono>

#include <nlohmann/json.hpp>

#include "common/stripe_signature.hpp"
#include "log.hpp"

namespace darkspere::worker {

namespace http = boost::beast::http;

namespace {

const char *const TEXT_TYPE = "text/plain; charset=utf-8";
const char *const SQL_STRIPE_EVENT = "SELECT darkspere.stripe_event($1::jsonb)";

}  // namespace

StripeCheck verify_stripe_webhook(const Request &req, const std::string &secret, long long tolerance_s,
                                  long long now_unix) {
    StripeCheck c;
    if (secret.empty()) {
        c.status = 503;
        c.outcome = "unconfigured";
        c.error = "stripe webhooks are not configured\n";
        return c;
    }
    std::string_view header;
    if (auto h = req.find("Stripe-Signature"); h != req.end())
        header = h->value();
    StripeVerdict verdict = stripe_signature_check(secret, req.body(), header, tolerance_s, now_unix);
    if (verdict != StripeVerdict::valid) {
        c.status = 400;
        c.outcome = "bad_signature";
        c.error = std::string("invalid Stripe-Signature (") + stripe_verdict_name(verdict) + ")\n";
        return c;
    }
    // nlohmann checks the syntax and UTF-8; the text itself travels, so PostgreSQL parses what was signed.
    nlohmann::json body = nlohmann::json::parse(req.body(), nullptr, false);
    if (body.is_discarded() || !body.is_object()) {
        c.status = 400;
        c.outcome = "bad_body";
        c.error = "the body is not a JSON object\n";
        return c;
    }
    return c;
}

unsigned stripe_sql_status(const PgResult &result) {
    return result.sqlstate.rfind("22", 0) == 0 ? 400 : 500;
}

void StripeRoutes::webhook(Request &&req, Responder respond) {
    auto config = config_();
    long long now =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
            .count();
    StripeCheck check =
        verify_stripe_webhook(req, config->stripe_webhook_secret, kStripeDefaultToleranceSeconds, now);
    if (check.status != 200) {
        ++metrics_.stripe_events[check.outcome];
        if (auto left_out = refusal_log_.admit(check.outcome))
            log_warn("stripe webhook refused", {{"cause", check.outcome}, {"left_out", *left_out}});
        respond(make_response(check.status, TEXT_TYPE, std::move(check.error)));
        return;
    }
    pool_.query(
        SQL_STRIPE_EVENT, {std::optional<std::string>(req.body())},
        [this, respond = std::move(respond)](PgResult r) {
            if (!r.ok || r.rows.size() != 1 || !r.rows[0][0]) {
                unsigned status = r.ok ? 500 : stripe_sql_status(r);
                std::string outcome = status == 400 ? "bad_event" : "error";
                ++metrics_.stripe_events[outcome];
                // The event's text is not logged (it names customers); its SQL error is.
                if (auto left_out = refusal_log_.admit(outcome))
                    log_warn("stripe event failed",
                             {{"sqlstate", r.sqlstate}, {"error", r.error}, {"left_out", *left_out}});
                respond(make_response(status, TEXT_TYPE,
                                      status == 400 ? r.error + "\n" : "the event could not be stored\n"));
                return;
            }
            const std::string &outcome = *r.rows[0][0];
            ++metrics_.stripe_events[outcome];
            nlohmann::json body = {{"outcome", outcome}};
            respond(make_response(200, "application/json", body.dump()));
        },
        PgPriority::interactive);
}

}  // namespace darkspere::worker
