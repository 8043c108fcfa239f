// src/worker/routes_api.cpp — the HTTP API (/api/…): one request, one call of darkspere.api_call.
//
// The worker decides only what it must before the database sees the request: which route (404/405), how large
// a body may be (413) and whether it is JSON at all (400). Keys, rate limits, ownership, plan limits and
// field validation are api_call's (sql/darkspere--0.1.0--0.2.0.sql), so every worker answers alike. The
// bearer key is passed as a parameter and never logged.
#include "routes_api.hpp"

#include <cctype>

#include <nlohmann/json.hpp>

#include "log.hpp"
#include "stripe_api.hpp"

namespace darkspere::worker {

namespace http = boost::beast::http;

namespace {

const char *const JSON_TYPE = "application/json";
// The longest bearer token passed on; keys are 47 ("dsk_" + 43) or 68 ("dsk_" + 64 hex) characters.
constexpr size_t BEARER_TOKEN_MAX = 128;

const char *const SQL_API_CALL =
    "SELECT http_status, response::text, retry_after"
    "  FROM darkspere.api_call($1, $2, $3, $4::bigint, $5::jsonb)";
const char *const SQL_BILLING_RESULT =
    "SELECT http_status, response::text, NULL::int"
    "  FROM darkspere.billing_result($1::bigint, $2, $3::jsonb, $4::int, $5)";

// parse_id — 1 to 18 decimal digits (below 2^63), else nullopt.
std::optional<int64_t> parse_id(std::string_view s) {
    if (s.empty() || s.size() > 18)
        return std::nullopt;
    int64_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9')
            return std::nullopt;
        v = v * 10 + (c - '0');
    }
    return v;
}

Response json_response(unsigned status, std::string body) {
    return make_response(status, JSON_TYPE, std::move(body));
}

Response error_response(unsigned status, std::string_view code, std::string_view message) {
    return json_response(status, api_error_body(code, message));
}

}  // namespace

std::string api_error_body(std::string_view code, std::string_view message) {
    nlohmann::json body = {{"error", {{"code", code}, {"message", message}}}};
    return body.dump();
}

ApiMatch match_api_route(http::verb method, std::string_view path) {
    ApiMatch m;
    auto pick = [&](std::initializer_list<std::pair<http::verb, const char *>> allowed) {
        for (const auto &[verb, route] : allowed) {
            if (verb == method) {
                m.route = route;
                return;
            }
        }
        for (const auto &[verb, route] : allowed) {
            if (!m.allow.empty())
                m.allow += ", ";
            m.allow += std::string(http::to_string(verb));
        }
    };
    if (path == "/api/usage")
        pick({{http::verb::get, "usage"}});
    else if (path == "/api/billing/checkout")
        pick({{http::verb::post, "billing.checkout"}});
    else if (path == "/api/billing/portal")
        pick({{http::verb::post, "billing.portal"}});
    else if (path == "/api/billing/cancel")
        pick({{http::verb::post, "billing.cancel"}});
    else if (path == "/api/agents")
        pick({{http::verb::get, "agents.list"}, {http::verb::post, "agents.create"}});
    else if (path == "/api/agents/heartbeat")
        pick({{http::verb::post, "agents.heartbeat"}});
    else if (path.rfind("/api/agents/", 0) == 0) {
        std::string_view rest = path.substr(12);
        std::string_view id_part = rest.substr(0, rest.find('/'));
        std::string_view tail =
            id_part.size() < rest.size() ? rest.substr(id_part.size()) : std::string_view();
        auto id = parse_id(id_part);
        if (!id)
            return m;
        if (tail.empty())
            pick({{http::verb::get, "agents.get"},
                  {http::verb::patch, "agents.update"},
                  {http::verb::delete_, "agents.delete"}});
        else if (tail == "/rotate-key")
            pick({{http::verb::post, "agents.rotate_key"}});
        else if (tail == "/health")
            pick({{http::verb::get, "agents.health"}});
        else
            return m;
        m.agent_id = id;
    }
    return m;
}

std::optional<std::string> bearer_token(std::string_view authorization) {
    constexpr std::string_view scheme = "bearer ";
    if (authorization.size() <= scheme.size())
        return std::nullopt;
    for (size_t i = 0; i < scheme.size(); ++i) {
        if (std::tolower(static_cast<unsigned char>(authorization[i])) != scheme[i])
            return std::nullopt;
    }
    std::string_view token = authorization.substr(scheme.size());
    while (!token.empty() && token.front() == ' ')
        token.remove_prefix(1);
    while (!token.empty() && (token.back() == ' ' || token.back() == '\t'))
        token.remove_suffix(1);
    if (token.empty() || token.size() > BEARER_TOKEN_MAX)
        return std::nullopt;
    return std::string(token);
}

void ApiRoutes::handle(Request &&req, Responder respond) {
    std::string_view target = req.target();
    std::string path(target.substr(0, target.find('?')));
    ApiMatch m = match_api_route(req.method(), path);
    if (m.route.empty()) {
        if (!m.allow.empty()) {
            Response res = error_response(405, "method_not_allowed", "this path does not take that method");
            res.set(http::field::allow, m.allow);
            respond(std::move(res));
        } else {
            respond(error_response(404, "not_found", "no such API route"));
        }
        return;
    }
    auto config = config_();
    const std::string &raw = req.body();
    if (static_cast<long>(raw.size()) > config->api_max_body_bytes) {
        respond(error_response(
            413, "body_too_large",
            "the body is larger than " + std::to_string(config->api_max_body_bytes) + " bytes"));
        return;
    }
    // A body is read only where a route takes one; elsewhere it is ignored, as HTTP allows.
    bool takes_body = req.method() == http::verb::post || req.method() == http::verb::patch;
    std::optional<std::string> body;
    if (takes_body && raw.find_first_not_of(" \t\r\n") != std::string::npos) {
        // nlohmann checks the syntax and UTF-8; the text itself travels, so PostgreSQL parses what was sent.
        if (!nlohmann::json::accept(raw)) {
            respond(error_response(400, "malformed_json", "the body is not valid JSON"));
            return;
        }
        body = raw;
    }
    std::optional<std::string> key;
    if (auto h = req.find(http::field::authorization); h != req.end())
        key = bearer_token(h->value());
    std::string peer(req[PEER_ADDRESS_FIELD]);
    if (peer.empty())
        peer = "unknown";
    PgParams params = {m.route, key, peer,
                       m.agent_id ? std::optional<std::string>(std::to_string(*m.agent_id)) : std::nullopt,
                       body};
    pool_.query(
        SQL_API_CALL, std::move(params),
        [this, route = m.route, respond = std::move(respond)](PgResult r) mutable {
            answer(route, std::move(r), std::move(respond));
        },
        PgPriority::interactive);
}

void ApiRoutes::answer(const std::string &route, PgResult r, Responder respond) {
    if (!r.ok || r.rows.size() != 1) {
        unsigned status = r.unavailable ? 503 : r.sqlstate.rfind("22", 0) == 0 ? 400 : 500;
        // The statement's parameters (the key among them) are never logged; the route and the error are.
        if (status == 500 || status == 503) {
            if (auto left_out = failure_log_.admit(status == 503 ? "unavailable" : "failed"))
                log_warn("api call failed", {{"route", route},
                                             {"sqlstate", r.sqlstate},
                                             {"error", r.error},
                                             {"left_out", *left_out}});
        }
        respond(status == 400   ? error_response(400, "bad_request", r.error)
                : status == 503 ? error_response(503, "unavailable", "the database is not available")
                                : error_response(500, "internal", "the request could not be completed"));
        return;
    }
    unsigned status = static_cast<unsigned>(std::stoi(r.rows[0][0].value_or("500")));
    if (status == 0 && route.rfind("billing.", 0) == 0 && r.rows[0][1]) {
        call_stripe(route, *r.rows[0][1], std::move(respond));
        return;
    }
    if (status < 100) {  // only billing routes answer 0, and only with a Stripe call
        respond(error_response(500, "internal", "the request could not be completed"));
        return;
    }
    Response res = json_response(status, r.rows[0][1].value_or("null"));
    if (r.rows[0][2])
        res.set(http::field::retry_after, *r.rows[0][2]);
    res.set(http::field::cache_control, "no-store");  // bodies may hold a key shown once, or a session URL
    respond(std::move(res));
}

void ApiRoutes::call_stripe(const std::string &route, const std::string &decided, Responder respond) {
    auto config = config_();
    if (!stripe_ || config->stripe_api_key.empty()) {
        respond(error_response(503, "billing_unconfigured", "billing through Stripe is not configured"));
        return;
    }
    nlohmann::json body = nlohmann::json::parse(decided, nullptr, false);
    std::string problem;
    std::optional<HttpRequest> request;
    std::string account;
    if (body.is_object() && body.contains("stripe") && body["account_id"].is_number_integer()) {
        account = std::to_string(body["account_id"].get<int64_t>());
        request = stripe_api_request(body["stripe"], config->stripe_base, config->stripe_api_key, &problem);
    } else {
        problem = "no account_id or stripe call";
    }
    if (!request) {
        log_error("billing call refused", {{"route", route}, {"error", problem}});
        respond(error_response(500, "internal", "the request could not be completed"));
        return;
    }
    std::string call = body["stripe"].dump();
    stripe_->send(std::move(*request), [this, route, account, call = std::move(call),
                                        respond = std::move(respond)](HttpResponse res) mutable {
        // A response cut off for its size is no answer: billing_result is told status 0.
        long status = res.too_large ? 0 : res.status;
        if (status == 0 || status >= 500) {
            // Status and transport error only: neither the key nor the request body is logged.
            if (auto left_out = failure_log_.admit("stripe"))
                log_warn("stripe api call failed", {{"route", route},
                                                    {"status", status},
                                                    {"error", stripe_answer_text(res).substr(0, 200)},
                                                    {"left_out", *left_out}});
        }
        PgParams params = {account, route, call, std::to_string(status), stripe_answer_text(res)};
        pool_.query(
            SQL_BILLING_RESULT, std::move(params),
            [this, route, respond = std::move(respond)](PgResult r) mutable {
                answer(route, std::move(r), std::move(respond));
            },
            PgPriority::interactive);
    });
}

}  // namespace darkspere::worker
