// test/unit/worker_agent_json_test.cpp — JSON from agents and Twilio is parsed with a nesting limit, so no
// answer can make the worker recurse itself to death (issue #10 item 1).
#include <gtest/gtest.h>

#include <string>

#include "agent_http.hpp"
#include "agent_json.hpp"
#include "mcp_message.hpp"
#include "mcp_tools.hpp"

using namespace darkspere::worker;

namespace {

std::string nested(size_t depth, const std::string &inner = "1") {
    return std::string(depth, '[') + inner + std::string(depth, ']');
}

// The shape of the attack: a tools/call result whose content is 200,000 arrays deep (about 400 KB).
std::string deep_tool_result(size_t depth) {
    return R"({"jsonrpc":"2.0","id":5,"result":{"content":)" + nested(depth) + "}}";
}

}  // namespace

TEST(AgentJson, DepthUpToTheLimitParses) {
    EXPECT_FALSE(parse_foreign_json(nested(kMaxForeignJsonDepth)).is_discarded());
    EXPECT_TRUE(parse_foreign_json(nested(kMaxForeignJsonDepth + 1)).is_discarded());
    EXPECT_FALSE(json_depth_exceeds(nested(3), 3));
    EXPECT_TRUE(json_depth_exceeds(nested(4), 3));
    EXPECT_TRUE(json_depth_exceeds(R"({"a":{"b":{"c":{}}}})", 3));
}

TEST(AgentJson, BracketsInsideStringsDoNotCount) {
    std::string text = R"({"text":"[[[[[[[[[[{{{{{{{{ \" [[[[[[ \\"})";
    EXPECT_FALSE(json_depth_exceeds(text, 1));
    EXPECT_EQ(parse_foreign_json(text, 1)["text"], "[[[[[[[[[[{{{{{{{{ \" [[[[[[ \\");
}

TEST(AgentJson, UnbalancedClosersNeitherWrapNorPass) {
    EXPECT_FALSE(json_depth_exceeds("]]]]]]]]", 2));
    EXPECT_TRUE(parse_foreign_json("]]]]").is_discarded());
    EXPECT_TRUE(json_depth_exceeds("]]]][[[", 2));
}

TEST(AgentJson, InvalidJsonIsDiscardedNotThrown) {
    EXPECT_TRUE(parse_foreign_json("{").is_discarded());
    EXPECT_TRUE(parse_foreign_json("").is_discarded());
    EXPECT_TRUE(parse_foreign_json("\"unterminated").is_discarded());
}

TEST(AgentJson, DeeplyNestedMcpAnswerIsUnparsableAndReadingItNeverRecurses) {
    HttpResponse response;
    response.status = 200;
    response.headers = {{"Content-Type", "application/json"}};
    response.body = deep_tool_result(200000);
    McpReplyParse parse = mcp_find_response(response, 5);
    EXPECT_TRUE(parse.body_unparsable);
    EXPECT_TRUE(parse.message.is_null());
}

TEST(AgentJson, DeeplyNestedSseEventIsSkipped) {
    HttpResponse response;
    response.status = 200;
    response.headers = {{"Content-Type", "text/event-stream"}};
    response.body = "event: message\ndata: " + deep_tool_result(200000) + "\n\n";
    McpReplyParse parse = mcp_find_response(response, 5);
    EXPECT_TRUE(parse.message.is_null());
}

TEST(AgentJson, DeeplyNestedHttpAgentAnswerFails) {
    HttpResponse response;
    response.status = 200;
    response.body = R"({"reply":"hi","x":)" + nested(200000) + "}";
    AgentOutcome outcome = agent_http_outcome(response);
    EXPECT_FALSE(outcome.ok);
    EXPECT_EQ(outcome.error, "agent answer is not a JSON object");
}

TEST(AgentJson, ToolResultsAreReadInPlace) {
    // Within the limit, a nested non-text item is skipped; the text items still make the reply.
    auto result = parse_foreign_json(R"({"content":[{"type":"text","text":"a"},)" + nested(60) +
                                     R"(,{"type":"text","text":"b"}],"resultType":)" + nested(2) + "}");
    ASSERT_FALSE(result.is_discarded());
    AgentOutcome outcome = mcp_outcome_from_result(result);
    EXPECT_TRUE(outcome.ok);
    EXPECT_EQ(outcome.reply, "a\nb");
}
