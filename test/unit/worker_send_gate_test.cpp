// test/unit/worker_send_gate_test.cpp — request slots per Twilio account: the bound holds, freed slots go to
// the tenants in turn, a send that waited too long is handed back instead of started, and slots may outlive
// the gate without starting anything.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <thread>
#include <vector>

#include "send_gate.hpp"

using namespace darkspere::worker;
using namespace std::chrono_literals;

namespace {

// Records which sends started and keeps their slots until the test frees them.
struct Sends {
    std::vector<std::string> started;
    std::vector<std::string> expired;
    std::map<std::string, SendGate::Permit> slots;

    void enter(SendGate &gate, const std::string &account, const std::string &tenant, const std::string &name,
               SendGate::Clock::duration max_wait = 1h) {
        gate.enter(
            account, tenant, max_wait,
            [this, name](SendGate::Permit p) {
                started.push_back(name);
                slots[name] = std::move(p);
            },
            [this, name](SendGate::Clock::duration) { expired.push_back(name); });
    }
    void finish(const std::string &name) { slots.erase(name); }
};

// One gate whose limit each test sets, the event loop it posts to, and the sends' record.
class SendGateTest : public ::testing::Test {
  protected:
    void run() {
        io.run();
        io.restart();
    }
    void enter(const std::string &account, const std::string &tenant, const std::string &name,
               SendGate::Clock::duration max_wait = std::chrono::hours(1)) {
        s.enter(gate, account, tenant, name, max_wait);
    }

    boost::asio::io_context io;
    long limit = 1;
    SendGate gate{io, [this] { return limit; }};
    Sends s;
};

}  // namespace

TEST_F(SendGateTest, StartsAtOnceWhileTheAccountHasAFreeSlot) {
    limit = 2;
    enter("AC1", "1", "a");
    enter("AC1", "1", "b");
    EXPECT_EQ(s.started, (std::vector<std::string>{"a", "b"}));
    EXPECT_EQ(gate.open("AC1"), 2);
    EXPECT_EQ(gate.waiting(), 0);
}

TEST_F(SendGateTest, NoMoreThanTheLimitOpenAndTheNextStartsWhenOneFinishes) {
    limit = 2;
    for (const char *name : {"a", "b", "c", "d"})
        enter("AC1", "1", name);
    EXPECT_EQ(s.started.size(), 2u);
    EXPECT_EQ(gate.waiting(), 2);
    s.finish("a");
    EXPECT_EQ(s.started.size(), 2u)
        << "the next send starts from the event loop, not inside the finished one";
    run();
    EXPECT_EQ(s.started, (std::vector<std::string>{"a", "b", "c"}));
    EXPECT_EQ(gate.open("AC1"), 2);
    EXPECT_EQ(gate.waiting(), 1);
}

TEST_F(SendGateTest, EachTwilioAccountHasItsOwnSlots) {
    enter("AC1", "1", "a1");
    enter("AC1", "1", "a2");
    enter("AC2", "1", "b1");
    EXPECT_EQ(s.started, (std::vector<std::string>{"a1", "b1"}));
    EXPECT_EQ(gate.open("AC1"), 1);
    EXPECT_EQ(gate.open("AC2"), 1);
}

TEST_F(SendGateTest, FreedSlotsGoToTenantsInTurnSoABurstDoesNotHoldOthersBack) {
    enter("AC1", "busy", "busy0");
    for (int i = 1; i <= 5; ++i)
        enter("AC1", "busy", "busy" + std::to_string(i));
    enter("AC1", "quiet", "quiet1");
    enter("AC1", "other", "other1");
    enter("AC1", "quiet", "quiet2");
    for (int step = 0; step < 8; ++step) {
        s.finish(s.started.back());
        run();
    }
    // busy1 was first in line; after it, each tenant with sends waiting gets one slot in turn.
    EXPECT_EQ(s.started, (std::vector<std::string>{"busy0", "busy1", "quiet1", "other1", "busy2", "quiet2",
                                                   "busy3", "busy4", "busy5"}));
    EXPECT_EQ(gate.waiting(), 0);
}

TEST_F(SendGateTest, ASendThatWaitedLongerThanItsMaxWaitIsHandedBackNotStarted) {
    enter("AC1", "1", "first");
    enter("AC1", "1", "stale", 0ms);
    enter("AC1", "1", "fresh");
    std::this_thread::sleep_for(2ms);
    s.finish("first");
    run();
    EXPECT_EQ(s.expired, (std::vector<std::string>{"stale"}));
    EXPECT_EQ(s.started, (std::vector<std::string>{"first", "fresh"})) << "its slot went to the next send";
    EXPECT_EQ(gate.open("AC1"), 1);
}

TEST_F(SendGateTest, ARaisedLimitLetsWaitingSendsStartAtTheNextRelease) {
    for (const char *name : {"a", "b", "c"})
        enter("AC1", "1", name);
    limit = 3;
    s.finish("a");
    run();
    EXPECT_EQ(s.started, (std::vector<std::string>{"a", "b", "c"}));
}

// A slot may be released after its gate is gone (an HTTP transfer torn down at shutdown): it must neither
// reach into the destroyed gate (the sanitize build would report the use after free) nor start anything.
TEST(SendGate, ASlotFreedAfterTheGateIsGoneStartsNothing) {
    boost::asio::io_context io;
    Sends s;
    {
        SendGate gate(io, [] { return 1L; });
        s.enter(gate, "AC1", "1", "a");
        s.enter(gate, "AC1", "1", "b");  // waits for a's slot
        ASSERT_EQ(gate.waiting(), 1);
    }
    s.finish("a");
    EXPECT_EQ(io.run(), 0u) << "no admission was posted for the gone gate";
    EXPECT_EQ(s.started, (std::vector<std::string>{"a"}));
    EXPECT_TRUE(s.expired.empty());
}

// The other order: the slot is freed while the gate lives (its next send's admission is posted), and the gate
// is destroyed before the event loop runs it: the admission finds the gate gone and starts nothing.
TEST(SendGate, AnAdmissionPostedBeforeTheGateWentStartsNothing) {
    boost::asio::io_context io;
    Sends s;
    {
        SendGate gate(io, [] { return 1L; });
        s.enter(gate, "AC1", "1", "a");
        s.enter(gate, "AC1", "1", "b");
        s.finish("a");
        EXPECT_EQ(s.started, (std::vector<std::string>{"a"})) << "b starts from the event loop";
    }
    EXPECT_EQ(io.run(), 1u) << "the posted admission ran";
    EXPECT_EQ(s.started, (std::vector<std::string>{"a"}));
    EXPECT_TRUE(s.expired.empty());
}
