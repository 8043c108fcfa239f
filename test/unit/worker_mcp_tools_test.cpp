// test/unit/worker_mcp_tools_test.cpp — DarkSpere's tool binding (arguments by inputSchema, x-mcp-header) and
// the mapping of tools/call results to outcomes.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "mcp_tools.hpp"

using namespace darkspere::worker;
using nlohmann::json;

namespace {

AgentTurn sample_turn() {
    AgentTurn turn;
    turn.tool_name = "reply";
    turn.session_id = "42";
    turn.message = "What time do you open?";
    turn.from = "+14155550100";
    turn.to = "+14155550199";
    turn.history =
        json::array({{{"role", "user"}, {"content", "hi"}}, {{"role", "assistant"}, {"content", "hello"}}});
    return turn;
}

McpTool tool_with(json properties, json required = json::array()) {
    auto tool = mcp_parse_tool(
        {{"name", "reply"},
         {"inputSchema", {{"type", "object"}, {"properties", properties}, {"required", required}}}});
    EXPECT_TRUE(tool.has_value());
    return tool.value_or(McpTool{});
}

json text(const std::string &t) {
    return {{"type", "text"}, {"text", t}};
}

}  // namespace

TEST(McpToolArguments, OnlyMessageWhenSchemaDeclaresNothingElse) {
    auto args = mcp_tool_arguments(tool_with({{"message", {{"type", "string"}}}}), sample_turn());
    EXPECT_EQ(args.error, "");
    EXPECT_EQ(args.arguments, json({{"message", "What time do you open?"}}));
}

TEST(McpToolArguments, MessageIsSentEvenWhenNotDeclared) {
    auto args = mcp_tool_arguments(tool_with(json::object()), sample_turn());
    EXPECT_EQ(args.arguments, json({{"message", "What time do you open?"}}));
}

TEST(McpToolArguments, DeclaredConversationFieldsAreAdded) {
    auto args = mcp_tool_arguments(tool_with({{"message", {{"type", "string"}}},
                                              {"session_id", {{"type", "string"}}},
                                              {"from", {{"type", "string"}}},
                                              {"to", {{"type", "string"}}},
                                              {"history", {{"type", "array"}}}}),
                                   sample_turn());
    EXPECT_EQ(args.arguments["session_id"], "42");
    EXPECT_EQ(args.arguments["from"], "+14155550100");
    EXPECT_EQ(args.arguments["to"], "+14155550199");
    EXPECT_EQ(args.arguments["history"].size(), 2u);
    EXPECT_EQ(args.arguments["history"][0]["role"], "user");
}

TEST(McpToolArguments, UndeclaredFieldsStayOut) {
    auto args = mcp_tool_arguments(
        tool_with({{"message", {{"type", "string"}}}, {"history", json::object()}}), sample_turn());
    EXPECT_TRUE(args.arguments.contains("history"));
    EXPECT_FALSE(args.arguments.contains("from"));
    EXPECT_FALSE(args.arguments.contains("session_id"));
}

TEST(McpToolArguments, IntegerSessionIdIsSentAsNumber) {
    auto args = mcp_tool_arguments(tool_with({{"session_id", {{"type", "integer"}}}}), sample_turn());
    EXPECT_EQ(args.arguments["session_id"], 42);
}

TEST(McpToolArguments, TypeMismatchIsAConfigurationError) {
    EXPECT_NE(mcp_tool_arguments(tool_with({{"from", {{"type", "integer"}}}}), sample_turn()).error, "");
    EXPECT_NE(mcp_tool_arguments(tool_with({{"message", {{"type", "boolean"}}}}), sample_turn()).error, "");
    EXPECT_NE(mcp_tool_arguments(tool_with({{"history", {{"type", "string"}}}}), sample_turn()).error, "");
}

TEST(McpToolArguments, RequiredPropertyWeCannotFillIsAConfigurationError) {
    auto args = mcp_tool_arguments(tool_with({{"query", {{"type", "string"}}}}, {"query"}), sample_turn());
    EXPECT_NE(args.error.find("query"), std::string::npos);
}

TEST(McpToolHeaders, AnnotatedPropertiesBecomeMcpParamHeaders) {
    auto tool = tool_with({{"session_id", {{"type", "integer"}, {"x-mcp-header", "Session"}}},
                           {"from", {{"type", "string"}, {"x-mcp-header", "From"}}},
                           {"message", {{"type", "string"}}}});
    auto args = mcp_tool_arguments(tool, sample_turn());
    auto headers = mcp_param_headers(tool, args.arguments);
    ASSERT_EQ(headers.size(), 2u);
    EXPECT_EQ(headers, (HeaderList{{"Mcp-Param-From", "+14155550100"}, {"Mcp-Param-Session", "42"}}));
}

TEST(McpToolHeaders, AnnotatedValueNeedingEncodingIsBase64) {
    auto tool = tool_with({{"message", {{"type", "string"}, {"x-mcp-header", "Msg"}}}});
    AgentTurn turn = sample_turn();
    turn.message = "caf\xC3\xA9";
    auto headers = mcp_param_headers(tool, mcp_tool_arguments(tool, turn).arguments);
    EXPECT_EQ(headers, (HeaderList{{"Mcp-Param-Msg", "=?base64?Y2Fmw6k=?="}}));
}

TEST(McpToolHeaders, AbsentPropertiesSendNoHeader) {
    auto tool = tool_with({{"region", {{"type", "string"}, {"x-mcp-header", "Region"}}}});
    EXPECT_TRUE(mcp_param_headers(tool, mcp_tool_arguments(tool, sample_turn()).arguments).empty());
}

TEST(McpToolList, ToolsWithInvalidAnnotationsAreDropped) {
    auto not_primitive = json{
        {"name", "t"},
        {"inputSchema",
         {{"type", "object"}, {"properties", {{"history", {{"type", "array"}, {"x-mcp-header", "H"}}}}}}}};
    auto bad_name = json{
        {"name", "t"},
        {"inputSchema",
         {{"type", "object"}, {"properties", {{"a", {{"type", "string"}, {"x-mcp-header", "Bad Name"}}}}}}}};
    auto duplicate = json{{"name", "t"},
                          {"inputSchema",
                           {{"type", "object"},
                            {"properties",
                             {{"a", {{"type", "string"}, {"x-mcp-header", "Same"}}},
                              {"b", {{"type", "string"}, {"x-mcp-header", "same"}}}}}}}};
    EXPECT_FALSE(mcp_parse_tool(not_primitive).has_value());
    EXPECT_FALSE(mcp_parse_tool(bad_name).has_value());
    EXPECT_FALSE(mcp_parse_tool(duplicate).has_value());
    EXPECT_FALSE(mcp_parse_tool(json{{"title", "no name"}}).has_value());
}

TEST(McpToolResult, TextItemsJoinedWithNewlineAndTrimmed) {
    auto outcome = mcp_outcome_from_result(
        {{"content",
          {text("  We open at 7."), {{"type", "image"}, {"data", "AA=="}}, text("See you!  \n")}}});
    EXPECT_TRUE(outcome.ok);
    EXPECT_EQ(outcome.reply, "We open at 7.\nSee you!");
}

TEST(McpToolResult, NoTextMeansOkWithoutReply) {
    auto empty = mcp_outcome_from_result({{"content", json::array()}});
    EXPECT_TRUE(empty.ok);
    EXPECT_EQ(empty.reply, std::nullopt);
    auto blank = mcp_outcome_from_result({{"content", {text("  \n ")}}});
    EXPECT_TRUE(blank.ok);
    EXPECT_EQ(blank.reply, std::nullopt);
    auto structured_only =
        mcp_outcome_from_result({{"content", json::array()}, {"structuredContent", {{"a", 1}}}});
    EXPECT_EQ(structured_only.reply, std::nullopt);
}

TEST(McpToolResult, IsErrorIsAFailureThatHidesTheText) {
    auto outcome =
        mcp_outcome_from_result({{"isError", true}, {"content", {text("stack trace with secrets")}}});
    EXPECT_FALSE(outcome.ok);
    EXPECT_EQ(outcome.reply, std::nullopt);
    EXPECT_EQ(outcome.error.find("secrets"), std::string::npos);
}

TEST(McpToolResult, InputRequiredIsAFailure) {
    auto outcome =
        mcp_outcome_from_result({{"resultType", "input_required"}, {"inputRequests", json::object()}});
    EXPECT_FALSE(outcome.ok);
    EXPECT_NE(outcome.error.find("input_required"), std::string::npos);
}

TEST(McpToolResult, CompleteResultTypeIsNormal) {
    EXPECT_TRUE(mcp_outcome_from_result({{"resultType", "complete"}, {"content", {text("x")}}}).ok);
}
