// test/unit/worker_routes_api_test.cpp — the HTTP API's routing table and bearer-token parsing
// (src/worker/routes_api.cpp): which method and path name which darkspere.api_call route, and which do not.
#include <gtest/gtest.h>

#include "routes_api.hpp"

using darkspere::worker::bearer_token;
using darkspere::worker::match_api_route;
namespace http = boost::beast::http;

TEST(ApiRoutes, EveryDocumentedRouteMapsToItsSqlRoute) {
    EXPECT_EQ(match_api_route(http::verb::get, "/api/agents").route, "agents.list");
    EXPECT_EQ(match_api_route(http::verb::post, "/api/agents").route, "agents.create");
    EXPECT_EQ(match_api_route(http::verb::post, "/api/agents/heartbeat").route, "agents.heartbeat");
    EXPECT_EQ(match_api_route(http::verb::get, "/api/usage").route, "usage");
    auto get = match_api_route(http::verb::get, "/api/agents/42");
    EXPECT_EQ(get.route, "agents.get");
    EXPECT_EQ(get.agent_id, 42);
    EXPECT_EQ(match_api_route(http::verb::patch, "/api/agents/42").route, "agents.update");
    EXPECT_EQ(match_api_route(http::verb::delete_, "/api/agents/42").route, "agents.delete");
    EXPECT_EQ(match_api_route(http::verb::post, "/api/agents/42/rotate-key").route, "agents.rotate_key");
    auto health = match_api_route(http::verb::get, "/api/agents/7/health");
    EXPECT_EQ(health.route, "agents.health");
    EXPECT_EQ(health.agent_id, 7);
    EXPECT_EQ(match_api_route(http::verb::post, "/api/billing/checkout").route, "billing.checkout");
    EXPECT_EQ(match_api_route(http::verb::post, "/api/billing/portal").route, "billing.portal");
    EXPECT_EQ(match_api_route(http::verb::post, "/api/billing/cancel").route, "billing.cancel");
    EXPECT_EQ(match_api_route(http::verb::get, "/api/billing/cancel").allow, "POST");
}

TEST(ApiRoutes, AKnownPathWithAnotherMethodListsTheAllowedOnes) {
    auto m = match_api_route(http::verb::put, "/api/agents/42");
    EXPECT_EQ(m.route, "");
    EXPECT_EQ(m.allow, "GET, PATCH, DELETE");
    EXPECT_EQ(match_api_route(http::verb::get, "/api/agents/heartbeat").allow, "POST");
    EXPECT_EQ(match_api_route(http::verb::delete_, "/api/agents").allow, "GET, POST");
}

TEST(ApiRoutes, IdsAreOneToEighteenDigitsAndNothingElseMatches) {
    for (const char *path :
         {"/api/agents/", "/api/agents/abc", "/api/agents/-1", "/api/agents/1e3",
          "/api/agents/1234567890123456789", "/api/agents/42/", "/api/agents/42/other",
          "/api/agents/42/health/x", "/api/nothing", "/api/agents//health", "/api/usage/"}) {
        auto m = match_api_route(http::verb::get, path);
        EXPECT_EQ(m.route, "") << path;
        EXPECT_EQ(m.allow, "") << path;
    }
    EXPECT_EQ(match_api_route(http::verb::get, "/api/agents/123456789012345678").agent_id,
              123456789012345678);
}

TEST(ApiRoutes, BearerTokens) {
    EXPECT_EQ(bearer_token("Bearer dsk_abc"), "dsk_abc");
    EXPECT_EQ(bearer_token("bearer   dsk_abc  "), "dsk_abc");
    EXPECT_EQ(bearer_token("BEARER dsk_abc"), "dsk_abc");
    EXPECT_EQ(bearer_token("Basic eDp5"), std::nullopt);
    EXPECT_EQ(bearer_token("Bearer "), std::nullopt);
    EXPECT_EQ(bearer_token("Bearer"), std::nullopt);
    EXPECT_EQ(bearer_token(""), std::nullopt);
    EXPECT_EQ(bearer_token("Bearer " + std::string(129, 'k')), std::nullopt);
    EXPECT_EQ(bearer_token("Bearer " + std::string(128, 'k')), std::string(128, 'k'));
}
