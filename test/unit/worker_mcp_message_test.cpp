// test/unit/worker_mcp_message_test.cpp — JSON-RPC framing: header value encoding, _meta, finding our
// response in JSON and SSE bodies.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "mcp_message.hpp"

using namespace darkspere::worker;
using nlohmann::json;

namespace {

HttpResponse response(std::string content_type, std::string body, long status = 200) {
    HttpResponse r;
    r.status = status;
    r.headers = {{"content-type", std::move(content_type)}};
    r.body = std::move(body);
    return r;
}

}  // namespace

TEST(McpMessage, Base64) {
    EXPECT_EQ(mcp_base64(""), "");
    EXPECT_EQ(mcp_base64("f"), "Zg==");
    EXPECT_EQ(mcp_base64("fo"), "Zm8=");
    EXPECT_EQ(mcp_base64("foo"), "Zm9v");
    EXPECT_EQ(mcp_base64("\xC3\xA9t\xC3\xA9"), "w6l0w6k=");  // "été"
}

TEST(McpMessage, PlainVisibleAsciiHeaderValuesGoAsIs) {
    EXPECT_EQ(mcp_header_value("reply"), "reply");
    EXPECT_EQ(mcp_header_value("tools/call"), "tools/call");
    EXPECT_EQ(mcp_header_value("two words"), "two words");  // inner spaces are fine
}

TEST(McpMessage, NonAsciiControlAndEdgeSpacesAreBase64Encoded) {
    EXPECT_EQ(mcp_header_value("\xC3\xA9t\xC3\xA9"), "=?base64?w6l0w6k=?=");
    EXPECT_EQ(mcp_header_value("a\nb"), "=?base64?" + mcp_base64("a\nb") + "?=");
    EXPECT_EQ(mcp_header_value("tab\there"), "=?base64?" + mcp_base64("tab\there") + "?=");
    EXPECT_EQ(mcp_header_value(" lead"), "=?base64?IGxlYWQ=?=");
    EXPECT_EQ(mcp_header_value("trail "), "=?base64?dHJhaWwg?=");
}

TEST(McpMessage, ValuesThatLookLikeTheSentinelAreEncoded) {
    EXPECT_EQ(mcp_header_value("=?base64?abc?="), "=?base64?" + mcp_base64("=?base64?abc?=") + "?=");
}

TEST(McpMessage, SessionIdMustBeVisibleAscii) {
    EXPECT_TRUE(mcp_is_visible_ascii("9b1f-AB_c"));
    EXPECT_FALSE(mcp_is_visible_ascii("has space"));
    EXPECT_FALSE(mcp_is_visible_ascii("a\r\nInjected: 1"));
}

TEST(McpMessage, ModernMetaCarriesVersionCapabilitiesAndClientInfo) {
    json meta = mcp_modern_meta("2026-07-28", "1.2.3");
    EXPECT_EQ(meta["io.modelcontextprotocol/protocolVersion"], "2026-07-28");
    EXPECT_EQ(meta["io.modelcontextprotocol/clientCapabilities"], json::object());
    EXPECT_EQ(meta["io.modelcontextprotocol/clientInfo"],
              json({{"name", "darkspere-worker"}, {"version", "1.2.3"}}));
}

TEST(McpMessage, RequestsAndNotifications) {
    EXPECT_EQ(mcp_request(5, "tools/list", nullptr),
              json({{"jsonrpc", "2.0"}, {"id", 5}, {"method", "tools/list"}}));
    EXPECT_EQ(mcp_notification("notifications/initialized", nullptr),
              json({{"jsonrpc", "2.0"}, {"method", "notifications/initialized"}}));
}

TEST(McpMessage, JsonBodyWithOurResponse) {
    auto parse =
        mcp_find_response(response("application/json", R"({"jsonrpc":"2.0","id":3,"result":{"a":1}})"), 3);
    EXPECT_EQ(parse.message["result"]["a"], 1);
}

TEST(McpMessage, JsonBodyWithAnotherIdIsNotOurs) {
    auto parse =
        mcp_find_response(response("application/json", R"({"jsonrpc":"2.0","id":4,"result":{}})"), 3);
    EXPECT_TRUE(parse.message.is_null());
}

TEST(McpMessage, JsonErrorWithNullIdCounts) {
    auto parse = mcp_find_response(
        response("application/json", R"({"jsonrpc":"2.0","id":null,"error":{"code":-32000,"message":"x"}})",
                 400),
        3);
    EXPECT_EQ(mcp_error_code(parse.message), -32000);
}

TEST(McpMessage, GarbageBodyIsUnparsable) {
    auto parse = mcp_find_response(response("application/json", "<html>oops</html>"), 1);
    EXPECT_TRUE(parse.body_unparsable);
    EXPECT_TRUE(parse.message.is_null());
}

TEST(McpMessage, SseSkipsPrimingEventNotificationsAndServerRequests) {
    std::string body =
        "id: p\ndata: \n\n"
        ": keep-alive\n\n"
        "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{}}\n\n"
        "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":99,\"method\":\"roots/list\"}\n\n"
        "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{\"ok\":true}}\n\n";
    auto parse = mcp_find_response(response("text/event-stream", body), 2);
    EXPECT_EQ(parse.message["result"]["ok"], true);
}

TEST(McpMessage, SseContentTypeIsMatchedCaseInsensitivelyWithParameters) {
    auto parse = mcp_find_response(response("Text/Event-Stream; charset=utf-8",
                                            "data: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\r\n\r\n"),
                                   1);
    EXPECT_TRUE(parse.message.contains("result"));
}

TEST(McpMessage, SseStreamEndingWithoutOurResponse) {
    auto parse = mcp_find_response(
        response("text/event-stream", "data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\"}\n\n"),
        1);
    EXPECT_TRUE(parse.message.is_null());
    EXPECT_FALSE(parse.body_unparsable);
}

TEST(McpMessage, EmptySseStreamIsUnparsable) {
    auto parse = mcp_find_response(response("text/event-stream", "id: p\ndata:\n\n"), 1);
    EXPECT_TRUE(parse.body_unparsable);
}
