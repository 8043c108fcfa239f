// src/worker/stripe_api.cpp — Stripe API requests for /api/billing/… (see stripe_api.hpp).
#include "stripe_api.hpp"

#include <vector>

#include "common/form.hpp"

namespace darkspere::worker {

namespace {

// A path SQL built from ids Stripe gave: /v1/ and then letters, digits, '_', '-' and '/' only, so nothing in
// it can reach another host or carry a query.
bool stripe_path_ok(const std::string &path) {
    if (path.rfind("/v1/", 0) != 0 || path.size() > 256)
        return false;
    for (char c : path) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                  c == '-' || c == '/';
        if (!ok)
            return false;
    }
    return true;
}

// Idempotency keys: printable ASCII without spaces, at most 255 bytes (Stripe's limit).
bool idempotency_key_ok(const std::string &key) {
    if (key.empty() || key.size() > 255)
        return false;
    for (char c : key) {
        if (c <= ' ' || c > '~')
            return false;
    }
    return true;
}

}  // namespace

std::optional<HttpRequest> stripe_api_request(const nlohmann::json &call, const std::string &base,
                                              const std::string &api_key, std::string *error) {
    auto fail = [error](const char *why) -> std::optional<HttpRequest> {
        if (error)
            *error = why;
        return std::nullopt;
    };
    if (!call.is_object())
        return fail("the Stripe call is not an object");
    auto method = call.find("method");
    auto path = call.find("path");
    auto form = call.find("form");
    auto key = call.find("idempotency_key");
    if (method == call.end() || !method->is_string() || (*method != "POST" && *method != "DELETE"))
        return fail("method must be POST or DELETE");
    if (path == call.end() || !path->is_string() || !stripe_path_ok(path->get<std::string>()))
        return fail("path must be /v1/… of letters, digits, '_', '-' and '/'");
    if (key == call.end() || !key->is_string() || !idempotency_key_ok(key->get<std::string>()))
        return fail("idempotency_key must be 1 to 255 printable ASCII characters");
    if (form == call.end() || !form->is_array())
        return fail("form must be an array of [name, value] pairs");
    std::vector<FormParam> params;
    for (const auto &pair : *form) {
        if (!pair.is_array() || pair.size() != 2 || !pair[0].is_string() || !pair[1].is_string())
            return fail("form must be an array of [name, value] pairs");
        params.push_back({pair[0].get<std::string>(), pair[1].get<std::string>()});
    }
    HttpRequest r;
    r.method = method->get<std::string>();
    std::string root = base;
    while (!root.empty() && root.back() == '/')
        root.pop_back();
    r.url = root + path->get<std::string>();
    r.body = encode_form(params);
    r.headers = {{"Authorization", "Bearer " + api_key},
                 {"Idempotency-Key", key->get<std::string>()},
                 {"Stripe-Version", STRIPE_API_VERSION}};
    if (!r.body.empty() || r.method == "POST")
        r.headers.emplace_back("Content-Type", "application/x-www-form-urlencoded");
    r.deadline = STRIPE_DEADLINE;
    r.max_response_bytes = STRIPE_MAX_RESPONSE_BYTES;
    return r;
}

std::optional<nlohmann::json> stripe_meter_call(const nlohmann::json &payload, std::string *error) {
    auto text = [&payload](const char *key) -> std::optional<std::string> {
        auto it = payload.find(key);
        if (it == payload.end() || !it->is_string() || it->get<std::string>().empty())
            return std::nullopt;
        return it->get<std::string>();
    };
    auto event = text("event_name"), customer = text("stripe_customer_id"), value = text("value"),
         identifier = text("identifier");
    auto ts = payload.find("timestamp");
    if (!payload.is_object() || !event || !customer || !value || !identifier || ts == payload.end() ||
        !ts->is_number_integer()) {
        if (error)
            *error =
                "a stripe_meter payload needs event_name, stripe_customer_id, value, identifier (strings) "
                "and timestamp (an integer)";
        return std::nullopt;
    }
    nlohmann::json form =
        nlohmann::json::array({nlohmann::json::array({"event_name", *event}),
                               nlohmann::json::array({"payload[stripe_customer_id]", *customer}),
                               nlohmann::json::array({"payload[value]", *value}),
                               nlohmann::json::array({"identifier", *identifier}),
                               nlohmann::json::array({"timestamp", std::to_string(ts->get<long long>())})});
    return nlohmann::json{{"method", "POST"},
                          {"path", "/v1/billing/meter_events"},
                          {"form", form},
                          {"idempotency_key", "darkspere-meter-" + *identifier}};
}

StripeMeterVerdict classify_stripe_meter(long status) {
    if (status >= 200 && status < 300)
        return StripeMeterVerdict::reported;
    if (status == 0 || status == 401 || status == 403 || status == 409 || status == 429 || status >= 500)
        return StripeMeterVerdict::retry;
    return StripeMeterVerdict::fail;
}

std::string stripe_answer_text(const HttpResponse &response) {
    if (response.too_large)
        return "the response was larger than " + std::to_string(STRIPE_MAX_RESPONSE_BYTES) + " bytes";
    if (response.status == 0)
        return response.timed_out ? "timeout" : (response.error.empty() ? "no response" : response.error);
    return response.body;
}

}  // namespace darkspere::worker
