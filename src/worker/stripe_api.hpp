// src/worker/stripe_api.hpp — Stripe API requests for /api/billing/…: the request darkspere.billing_prepare
// decided, made into HTTP (form body, bearer API key, Idempotency-Key, pinned Stripe-Version).
//
// The worker decides nothing about billing: SQL says which path, method, form fields and idempotency key;
// this file only checks that what SQL handed over is a Stripe API call and encodes it (docs/billing.md).
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "http_client.hpp"

namespace darkspere::worker {

// The Stripe API version every request is made with; the SQL reads answers (and webhook events) in its
// shapes.
inline constexpr const char *STRIPE_API_VERSION = "2025-03-31.basil";
// Stripe's answers to these calls are a few KiB; a larger one is not Stripe's and is cut off.
inline constexpr size_t STRIPE_MAX_RESPONSE_BYTES = 64 * 1024;
inline constexpr std::chrono::milliseconds STRIPE_DEADLINE{10000};

// stripe_api_request — the HTTP request for `call` ({method: POST|DELETE, path: /v1/…, form: [[name,
// value]…], idempotency_key}) against base with api_key; nullopt (and *error) when call is not of that shape.
std::optional<HttpRequest> stripe_api_request(const nlohmann::json &call, const std::string &base,
                                              const std::string &api_key, std::string *error);

// stripe_meter_call — the call for a stripe_meter job's payload ({event_name, stripe_customer_id, value,
// identifier, timestamp}, made by darkspere.queue_meter_reports): POST /v1/billing/meter_events with
// event_name, payload[stripe_customer_id], payload[value], identifier and timestamp, the Idempotency-Key
// derived from the identifier. nullopt (and *error) when a field is missing or of the wrong type.
std::optional<nlohmann::json> stripe_meter_call(const nlohmann::json &payload, std::string *error);

// StripeMeterVerdict — what becomes of a stripe_meter job after Stripe's answer.
enum class StripeMeterVerdict { reported, retry, fail };
// classify_stripe_meter — 2xx reported; no answer, 401/403 (the key), 409, 429 and 5xx retried (the same
// identifier and Idempotency-Key make a retry a no-op at Stripe); any other 4xx fails (never recorded there).
StripeMeterVerdict classify_stripe_meter(long status);

// stripe_answer_text — what billing_result is given as Stripe's body: the body of a response, or for no
// response (status 0) the transport error, which never holds the API key.
std::string stripe_answer_text(const HttpResponse &response);

}  // namespace darkspere::worker
