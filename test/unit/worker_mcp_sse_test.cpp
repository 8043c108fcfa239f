// test/unit/worker_mcp_sse_test.cpp — the text/event-stream parser used for MCP responses sent as SSE.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "mcp_sse.hpp"

using darkspere::worker::SseEvent;
using darkspere::worker::SseParser;

namespace {

// parse_all — feeds the whole stream at once and closes it.
std::vector<SseEvent> parse_all(const std::string &stream) {
    SseParser parser;
    auto events = parser.feed(stream);
    auto tail = parser.finish();
    events.insert(events.end(), tail.begin(), tail.end());
    return events;
}

// parse_bytewise — the same stream one byte per chunk: every split point must give the same events.
std::vector<SseEvent> parse_bytewise(const std::string &stream) {
    SseParser parser;
    std::vector<SseEvent> events;
    for (char c : stream) {
        auto got = parser.feed(std::string(1, c));
        events.insert(events.end(), got.begin(), got.end());
    }
    auto tail = parser.finish();
    events.insert(events.end(), tail.begin(), tail.end());
    return events;
}

}  // namespace

TEST(McpSse, SdkShapedEventWithEventIdAndData) {
    auto events =
        parse_all("event: message\nid: 7_1\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n");
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].event, "message");
    EXPECT_EQ(events[0].id, "7_1");
    EXPECT_EQ(events[0].data, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}");
}

TEST(McpSse, PrimingEventWithEmptyDataIsDispatchedWithEmptyData) {
    auto events = parse_all("id: prime\ndata: \n\nevent: message\ndata: {}\n\n");
    ASSERT_EQ(events.size(), 2u);
    EXPECT_EQ(events[0].id, "prime");
    EXPECT_EQ(events[0].data, "");
    EXPECT_EQ(events[1].data, "{}");
}

TEST(McpSse, RetryFieldIsReadOnlyWhenAllDigits) {
    auto events = parse_all("id: a\nretry: 1500\ndata:\n\nretry: 15x0\ndata: x\n\n");
    ASSERT_EQ(events.size(), 2u);
    EXPECT_EQ(events[0].retry_ms, 1500);
    EXPECT_FALSE(events[1].retry_ms.has_value());
}

TEST(McpSse, MultipleDataLinesJoinWithNewline) {
    auto events = parse_all("data: {\"a\":\ndata: 1}\n\n");
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].data, "{\"a\":\n1}");
}

TEST(McpSse, CommentsAndKeepAlivesAreIgnored) {
    auto events = parse_all(": keep-alive\n\n:another\ndata: x\n: in the middle\n\n");
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].data, "x");
}

TEST(McpSse, CrLfLineEndings) {
    auto events = parse_all("event: message\r\ndata: one\r\ndata: two\r\n\r\ndata: three\r\n\r\n");
    ASSERT_EQ(events.size(), 2u);
    EXPECT_EQ(events[0].data, "one\ntwo");
    EXPECT_EQ(events[1].data, "three");
}

TEST(McpSse, BareCrLineEndings) {
    auto events = parse_all("data: one\r\rdata: two\r\r");
    ASSERT_EQ(events.size(), 2u);
    EXPECT_EQ(events[1].data, "two");
}

TEST(McpSse, CrLfSplitAcrossChunksIsOneLineEnd) {
    auto events = parse_bytewise("data: a\r\n\r\ndata: b\r\n\r\n");
    ASSERT_EQ(events.size(), 2u);
    EXPECT_EQ(events[0].data, "a");
    EXPECT_EQ(events[1].data, "b");
}

TEST(McpSse, ByteByByteGivesTheSameEvents) {
    const std::string stream = ": hi\nid: 1\ndata:\n\nevent: message\nid: 2\ndata: {\"x\":1}\ndata: 2\n\n";
    auto whole = parse_all(stream);
    auto bytewise = parse_bytewise(stream);
    ASSERT_EQ(whole.size(), bytewise.size());
    for (size_t i = 0; i < whole.size(); ++i) {
        EXPECT_EQ(whole[i].data, bytewise[i].data);
        EXPECT_EQ(whole[i].id, bytewise[i].id);
    }
}

TEST(McpSse, OnlyOneLeadingSpaceIsStrippedAndColonlessLinesAreFieldNames) {
    auto events = parse_all("data:  two spaces\ndata\n\n");
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].data, " two spaces\n");
}

TEST(McpSse, UnknownFieldsAreIgnored) {
    auto events = parse_all("foo: bar\ndata: x\n\n");
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].data, "x");
}

TEST(McpSse, LeadingBomIsSkipped) {
    auto events = parse_bytewise(
        "\xEF\xBB\xBF"
        "data: x\n\n");
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].data, "x");
}

TEST(McpSse, FinalEventWithoutBlankLineIsStillReadAtEndOfStream) {
    SseParser parser;
    EXPECT_TRUE(parser.feed("data: last").empty());
    auto tail = parser.finish();
    ASSERT_EQ(tail.size(), 1u);
    EXPECT_EQ(tail[0].data, "last");
}

TEST(McpSse, EventIsNotDispatchedBeforeItsBlankLine) {
    SseParser parser;
    EXPECT_TRUE(parser.feed("data: x\n").empty());
    EXPECT_EQ(parser.feed("\n").size(), 1u);
}
