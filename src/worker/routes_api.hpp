// src/worker/routes_api.hpp — the HTTP API for tenants and agents (/api/…, docs/api.md): matches the route,
// bounds and parses the JSON body, takes the bearer key and the client address, and hands all of it to one
// SQL call, darkspere.api_call, which decides everything (keys, rate limits, plan limits, validation). The
// billing routes make the Stripe request api_call decided and hand Stripe's answer to
// darkspere.billing_result.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "config.hpp"
#include "http_client.hpp"
#include "http_server.hpp"
#include "log_throttle.hpp"
#include "pg_pool.hpp"

namespace darkspere::worker {

// ApiMatch — what a method and path under /api/ name: the SQL route (empty when none), the agent id of the
// path, and for a known path with the wrong method the methods it allows.
struct ApiMatch {
    std::string route;  // agents.create, agents.list, … (darkspere.api_call); empty: 404 or 405
    std::optional<int64_t> agent_id;
    std::string allow;  // non-empty: the path exists, the method does not (405)
};

// match_api_route — pure, for tests. An {id} is 1 to 18 decimal digits; anything else is an unknown path.
ApiMatch match_api_route(boost::beast::http::verb method, std::string_view path);

// bearer_token — the token of an `Authorization: Bearer <token>` header (scheme case-insensitive); nullopt
// when the header is missing, of another scheme, or the token is empty or longer than 128 bytes.
std::optional<std::string> bearer_token(std::string_view authorization);

// api_error_body — {"error": {"code": …, "message": …}} as JSON text.
std::string api_error_body(std::string_view code, std::string_view message);

class ApiRoutes {
  public:
    // stripe: the client /api/billing/… calls Stripe with (nullptr: those routes answer 503).
    ApiRoutes(PgPool &pool, std::function<std::shared_ptr<const Config>()> config,
              HttpClient *stripe = nullptr)
        : pool_(pool), config_(std::move(config)), stripe_(stripe) {}

    // handle — any request whose path starts with /api/.
    void handle(Request &&req, Responder respond);

  private:
    // call_stripe — api_call answered status 0: make the Stripe request it decided, then let
    // darkspere.billing_result turn Stripe's answer into the response.
    void call_stripe(const std::string &route, const std::string &decided, Responder respond);
    void answer(const std::string &route, PgResult r, Responder respond);

    PgPool &pool_;
    std::function<std::shared_ptr<const Config>()> config_;
    HttpClient *stripe_;
    LogThrottle failure_log_;
};

}  // namespace darkspere::worker
