// test/unit/worker_mcp_era_test.cpp — era detection verdicts
// (docs/protocols.md#mcp-era-detection) and version negotiation.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "mcp_era.hpp"

using namespace darkspere::worker;
using nlohmann::json;

namespace {

json rpc_error(long code, json data = nullptr) {
    json error = {{"code", code}, {"message", "x"}};
    if (!data.is_null()) {
        error["data"] = data;
    }
    return {{"jsonrpc", "2.0"}, {"id", 1}, {"error", error}};
}

json discover_result(json versions) {
    return {
        {"jsonrpc", "2.0"},
        {"id", 1},
        {"result",
         {{"resultType", "complete"}, {"supportedVersions", versions}, {"capabilities", json::object()}}}};
}

}  // namespace

TEST(McpEra, DiscoverResultMeansModern) {
    auto verdict = mcp_classify_probe(200, discover_result({"2026-07-28", "2025-11-25"}));
    EXPECT_EQ(verdict.era, McpEra::modern);
    EXPECT_EQ(verdict.version, "2026-07-28");
}

TEST(McpEra, DiscoverResultListingOnlyLegacyVersionsMeansLegacy) {
    auto verdict = mcp_classify_probe(200, discover_result({"2025-06-18"}));
    EXPECT_EQ(verdict.era, McpEra::legacy);
    EXPECT_EQ(verdict.version, "2025-06-18");
}

TEST(McpEra, UnsupportedVersionErrorPicksNewestMutualVersion) {
    auto modern = mcp_classify_probe(400, rpc_error(-32022, {{"supported", {"2025-11-25", "2026-07-28"}}}));
    EXPECT_EQ(modern.era, McpEra::modern);
    EXPECT_EQ(modern.version, "2026-07-28");
    auto legacy = mcp_classify_probe(400, rpc_error(-32022, {{"supported", {"2025-03-26", "2025-11-25"}}}));
    EXPECT_EQ(legacy.era, McpEra::legacy);
    EXPECT_EQ(legacy.version, "2025-11-25");
}

TEST(McpEra, UnsupportedVersionErrorWithNothingInCommonFails) {
    auto verdict = mcp_classify_probe(400, rpc_error(-32022, {{"supported", {"2030-01-01"}}}));
    EXPECT_EQ(verdict.era, McpEra::unknown);
    EXPECT_FALSE(verdict.error.empty());
}

TEST(McpEra, RecognisedModernErrorsMeanModern) {
    EXPECT_EQ(mcp_classify_probe(404, rpc_error(-32601)).era, McpEra::modern);
    EXPECT_EQ(mcp_classify_probe(400, rpc_error(-32020)).era, McpEra::modern);
    EXPECT_EQ(mcp_classify_probe(400, rpc_error(-32021)).era, McpEra::modern);
}

TEST(McpEra, SdkOneLegacyAnswerMeansLegacy) {
    // What @modelcontextprotocol/sdk 1.32 actually answers to the probe (see docs/mcp-agents.md).
    json body = {
        {"jsonrpc", "2.0"},
        {"id", nullptr},
        {"error", {{"code", -32000}, {"message", "Bad Request: Unsupported protocol version: 2026-07-28"}}}};
    auto verdict = mcp_classify_probe(400, body);
    EXPECT_EQ(verdict.era, McpEra::legacy);
    EXPECT_EQ(verdict.version, "2025-11-25");
}

TEST(McpEra, EmptyOrUnrecognisedClientErrorsMeanLegacy) {
    EXPECT_EQ(mcp_classify_probe(400, nullptr).era, McpEra::legacy);
    EXPECT_EQ(mcp_classify_probe(404, nullptr).era, McpEra::legacy);
    EXPECT_EQ(mcp_classify_probe(405, nullptr).era, McpEra::legacy);
    EXPECT_EQ(mcp_classify_probe(400, rpc_error(-32022)).era,
              McpEra::legacy);  // -32022 without data.supported
}

TEST(McpEra, TwoHundredWithoutDiscoverResultMeansLegacy) {
    EXPECT_EQ(mcp_classify_probe(200, rpc_error(-32601)).era, McpEra::legacy);
    EXPECT_EQ(mcp_classify_probe(200, json{{"jsonrpc", "2.0"}, {"id", 1}, {"result", json::object()}}).era,
              McpEra::legacy);
    EXPECT_EQ(mcp_classify_probe(202, nullptr).era, McpEra::legacy);
}

TEST(McpEra, OtherStatusesAreProbeFailures) {
    EXPECT_EQ(mcp_classify_probe(401, nullptr).era, McpEra::unknown);
    EXPECT_EQ(mcp_classify_probe(403, rpc_error(-32601)).era, McpEra::unknown);
    EXPECT_EQ(mcp_classify_probe(302, nullptr).era, McpEra::unknown);
}

TEST(McpEra, VersionSets) {
    EXPECT_TRUE(mcp_is_modern_version("2026-07-28"));
    EXPECT_FALSE(mcp_is_modern_version("2025-11-25"));
    EXPECT_TRUE(mcp_is_supported_version("2025-03-26"));
    EXPECT_FALSE(mcp_is_supported_version("2024-11-05"));
    EXPECT_FALSE(mcp_newest_mutual_version("2025-11-25").has_value());  // not an array
}

TEST(McpEra, OriginIsSchemeHostAndPortLowerCased) {
    EXPECT_EQ(mcp_origin("HTTP://Agent.Example.com:8080/mcp?x=1"), "http://agent.example.com:8080");
    EXPECT_EQ(mcp_origin("https://a.example/"), "https://a.example");
    EXPECT_EQ(mcp_origin("https://a.example"), "https://a.example");
}
