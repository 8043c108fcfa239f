// test/unit/reply_chunks_test.cpp — a reply becomes ≤1,600-character messages within a segment budget, read
// once.
#include "common/reply_chunks.hpp"

#include <stdexcept>
#include <string>

#include <gtest/gtest.h>

using namespace darkspere;

namespace {

std::string repeated(const std::string &piece, std::size_t n) {
    std::string s;
    s.reserve(piece.size() * n);
    for (std::size_t i = 0; i < n; ++i) {
        s += piece;
    }
    return s;
}

std::string_view text_of(const std::string &reply, const ReplyChunk &chunk) {
    return std::string_view(reply).substr(chunk.offset, chunk.length);
}

int total_segments(const ReplyPlan &plan) {
    int total = 0;
    for (const ReplyChunk &chunk : plan.chunks) {
        total += chunk.count.segments;
    }
    return total;
}

// Every plan: chunks follow each other from the start of the reply, each at most max_chars characters and
// counted as count_segments counts it, within the budget.
void expect_well_formed(const std::string &reply, const ReplyPlan &plan, int budget, std::size_t max_chars) {
    std::size_t pos = 0;
    for (const ReplyChunk &chunk : plan.chunks) {
        EXPECT_EQ(chunk.offset, pos);
        EXPECT_GT(chunk.length, 0u);
        EXPECT_LE(utf8_length(text_of(reply, chunk)), max_chars);
        EXPECT_EQ(count_segments(text_of(reply, chunk)).segments, chunk.count.segments);
        pos += chunk.length;
    }
    EXPECT_LE(total_segments(plan), budget);
    EXPECT_EQ(plan.truncated, pos < reply.size());
}

}  // namespace

TEST(ReplyChunks, EmptyReplyHasNoMessage) {
    ReplyPlan plan = plan_reply("", 10);
    EXPECT_TRUE(plan.chunks.empty());
    EXPECT_FALSE(plan.truncated);
}

TEST(ReplyChunks, ShortReplyIsOneMessage) {
    const std::string reply = "We open at 9.";
    ReplyPlan plan = plan_reply(reply, 10);
    ASSERT_EQ(plan.chunks.size(), 1u);
    EXPECT_EQ(text_of(reply, plan.chunks[0]), reply);
    EXPECT_EQ(plan.chunks[0].count.segments, 1);
    EXPECT_FALSE(plan.truncated);
}

TEST(ReplyChunks, LongReplySplitsAfterASpaceWithinTheBudget) {
    const std::string reply = repeated("word ", 400);  // 2,000 characters, 14 segments in all
    ReplyPlan plan = plan_reply(reply, 100);
    ASSERT_EQ(plan.chunks.size(), 2u);
    EXPECT_EQ(plan.chunks[0].length, 1600u);
    EXPECT_EQ(plan.chunks[1].length, 400u);
    EXPECT_FALSE(plan.truncated);
    expect_well_formed(reply, plan, 100, kSmsBodyMaxCharacters);
}

TEST(ReplyChunks, WordsStayWholeAcrossMessages) {
    const std::string reply = "a" + repeated(" abcdefghi", 200);  // the 1,592nd character is a space
    ReplyPlan plan = plan_reply(reply, 100);
    ASSERT_GE(plan.chunks.size(), 2u);
    std::string_view first = text_of(reply, plan.chunks[0]);
    EXPECT_EQ(first.back(), ' ');
    EXPECT_EQ(first.size(), 1592u);  // up to and with the last space of the first 1,600 characters
    expect_well_formed(reply, plan, 100, kSmsBodyMaxCharacters);
}

TEST(ReplyChunks, GsmReplyIsCutAtTheSegmentBoundary) {
    // 10 segments of GSM-7 hold 10 × 153 septets.
    ReplyPlan exact = plan_reply(repeated("a", 1530), 10);
    ASSERT_EQ(exact.chunks.size(), 1u);
    EXPECT_EQ(exact.chunks[0].count.segments, 10);
    EXPECT_FALSE(exact.truncated);

    const std::string reply = repeated("a", 1531);
    ReplyPlan cut = plan_reply(reply, 10);
    ASSERT_EQ(cut.chunks.size(), 1u);
    EXPECT_EQ(cut.chunks[0].length, 1530u);
    EXPECT_EQ(cut.chunks[0].count.segments, 10);
    EXPECT_TRUE(cut.truncated);
}

TEST(ReplyChunks, Ucs2ReplyIsCutAtTheSegmentBoundary) {
    const std::string reply = repeated("ж", 1000);  // Cyrillic: UCS-2, 67 characters per segment
    ReplyPlan plan = plan_reply(reply, 10);
    ASSERT_EQ(plan.chunks.size(), 1u);
    EXPECT_EQ(utf8_length(text_of(reply, plan.chunks[0])), 670u);
    EXPECT_EQ(plan.chunks[0].count.encoding, SmsEncoding::ucs2);
    EXPECT_EQ(plan.chunks[0].count.segments, 10);
    EXPECT_TRUE(plan.truncated);
}

TEST(ReplyChunks, BudgetSpentAtAMessageBoundaryStillMarksTheCut) {
    const std::string reply = repeated("a", 25);
    ReplyPlan plan = plan_reply(reply, 2, 10);  // messages of 10 characters, one segment each
    ASSERT_EQ(plan.chunks.size(), 2u);
    EXPECT_TRUE(plan.truncated);
    expect_well_formed(reply, plan, 2, 10);
}

TEST(ReplyChunks, TenMegabytesCostTheBudgetOnly) {
    const std::string reply = repeated("All work and no play. ", 10 * 1024 * 1024 / 22);
    for (int budget : {1, 10, 100}) {
        ReplyPlan plan = plan_reply(reply, budget);
        EXPECT_TRUE(plan.truncated);
        EXPECT_LE(plan.chunks.size(), static_cast<std::size_t>(budget));
        expect_well_formed(reply, plan, budget, kSmsBodyMaxCharacters);
    }
}

TEST(ReplyChunks, TextPastTheLookAheadIsNeverRead) {
    // Invalid UTF-8 far after the cut is not looked at; inside the first message it is refused.
    std::string reply = repeated("a", 5000) + "\xff";
    ReplyPlan plan = plan_reply(reply, 10);
    EXPECT_TRUE(plan.truncated);
    EXPECT_THROW(plan_reply("ab\xff", 10), std::invalid_argument);
    EXPECT_THROW(plan_reply("ab\xc3", 10), std::invalid_argument);      // cut-off sequence
    EXPECT_THROW(plan_reply("ab\xc3\x28", 10), std::invalid_argument);  // bad continuation byte
}

TEST(ReplyChunks, MixedTextStaysWithinEveryBudget) {
    const std::string reply = repeated("Hello 👋 wörld, ça va? € ", 500);
    for (int budget = 1; budget <= 40; ++budget) {
        ReplyPlan plan = plan_reply(reply, budget);
        expect_well_formed(reply, plan, budget, kSmsBodyMaxCharacters);
        EXPECT_FALSE(plan.chunks.empty());
    }
}

TEST(ReplyChunks, RefusesAnEmptyBudget) {
    EXPECT_THROW(plan_reply("hi", 0), std::invalid_argument);
    EXPECT_THROW(plan_reply("hi", 1, 0), std::invalid_argument);
}
