// test/unit/worker_fair_queue_test.cpp — keys are served in turn, FIFO within a key.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "fair_queue.hpp"

using darkspere::worker::FairQueue;

namespace {

std::vector<std::string> drain(FairQueue<std::string> &q) {
    std::vector<std::string> out;
    while (!q.empty())
        out.push_back(q.pop());
    return out;
}

}  // namespace

TEST(FairQueue, OneKeyIsPlainFifo) {
    FairQueue<std::string> q;
    for (const char *item : {"a1", "a2", "a3"})
        q.push("a", item);
    EXPECT_EQ(q.size(), 3u);
    EXPECT_EQ(drain(q), (std::vector<std::string>{"a1", "a2", "a3"}));
    EXPECT_TRUE(q.empty());
}

TEST(FairQueue, AnItemBehindABurstOfAnotherKeyIsServedAfterOneOfIt) {
    FairQueue<std::string> q;
    for (int i = 1; i <= 4; ++i)
        q.push("burst", "b" + std::to_string(i));
    q.push("single", "s1");
    EXPECT_EQ(drain(q), (std::vector<std::string>{"b1", "s1", "b2", "b3", "b4"}));
}

TEST(FairQueue, KeysTakeTurnsInTheOrderTheyStartedWaiting) {
    FairQueue<std::string> q;
    q.push("a", "a1");
    q.push("b", "b1");
    q.push("a", "a2");
    q.push("c", "c1");
    q.push("b", "b2");
    EXPECT_EQ(drain(q), (std::vector<std::string>{"a1", "b1", "c1", "a2", "b2"}));
}

TEST(FairQueue, AKeyThatEmptiedJoinsTheEndOfTheTurnsAgain) {
    FairQueue<std::string> q;
    q.push("a", "a1");
    q.push("b", "b1");
    q.push("b", "b2");
    EXPECT_EQ(q.pop(), "a1");
    q.push("a", "a2");  // a had nothing waiting: it waits behind b's turn
    EXPECT_EQ(drain(q), (std::vector<std::string>{"b1", "a2", "b2"}));
}

TEST(FairQueue, TakeLightTakesKeysWithoutABacklogAndLeavesTheBacklogsQueued) {
    FairQueue<std::string> q;
    for (int i = 1; i <= 5; ++i)
        q.push("burst", "b" + std::to_string(i));
    q.push("one", "o1");
    q.push("two", "t1");
    q.push("two", "t2");
    EXPECT_EQ(q.take_light(2, 10, [](const std::string &) { return false; }),
              (std::vector<std::string>{"o1", "t1", "t2"}));
    EXPECT_EQ(q.size(), 5u);
    EXPECT_EQ(drain(q), (std::vector<std::string>{"b1", "b2", "b3", "b4", "b5"}));
}

TEST(FairQueue, TakeLightStaysWithinItsTotalAndTakesAKeyWhole) {
    FairQueue<std::string> q;
    q.push("a", "a1");
    q.push("b", "b1");
    q.push("b", "b2");
    q.push("c", "c1");
    // b would not fit whole after a (1 + 2 > 2), so it stays; c still fits.
    EXPECT_EQ(q.take_light(2, 2, [](const std::string &) { return false; }),
              (std::vector<std::string>{"a1", "c1"}));
    EXPECT_EQ(drain(q), (std::vector<std::string>{"b1", "b2"}));
}

TEST(FairQueue, TakeLightLeavesSkippedKeys) {
    FairQueue<std::string> q;
    q.push("a", "a1");
    q.push("b", "b1");
    EXPECT_EQ(q.take_light(2, 10, [](const std::string &key) { return key == "a"; }),
              (std::vector<std::string>{"b1"}));
    EXPECT_EQ(drain(q), (std::vector<std::string>{"a1"}));
}
