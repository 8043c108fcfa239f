// test/unit/worker_node_queues_test.cpp — share: the worker's limits divided among its runners (the
// coordinator's queue and one per Citus worker node), so that together they stay within what was configured.
#include "node_queues.hpp"

#include <gtest/gtest.h>

using darkspere::worker::RunnerSettings;
using darkspere::worker::share;

TEST(NodeQueuesShare, OneQueueKeepsTheLimits) {
    RunnerSettings s;
    s.max_in_flight = 2500;
    s.max_in_flight_per_agent = 100;
    RunnerSettings one = share(s, 1);
    EXPECT_EQ(one.max_in_flight, 2500);
    EXPECT_EQ(one.max_in_flight_per_agent, 100);
}

TEST(NodeQueuesShare, SeveralQueuesDivideEveryLimitAndKeepDefaultsDefault) {
    RunnerSettings s;
    s.max_in_flight = 2500;
    s.max_in_flight_per_agent = 100;
    s.max_in_flight_per_account = 0;  // 0: derived from max_in_flight by each runner
    RunnerSettings third = share(s, 3);
    EXPECT_EQ(third.max_in_flight, 833);
    EXPECT_EQ(third.max_in_flight_per_agent, 33);
    EXPECT_EQ(third.max_in_flight_per_account, 0);
    EXPECT_EQ(third.lease_seconds, s.lease_seconds);  // what is not a limit is not shared
}

TEST(NodeQueuesShare, NoRunnerIsLeftWithoutRoom) {
    RunnerSettings s;
    s.max_in_flight = 2;
    s.max_in_flight_per_agent = 1;
    RunnerSettings tiny = share(s, 5);
    EXPECT_EQ(tiny.max_in_flight, 1);
    EXPECT_EQ(tiny.max_in_flight_per_agent, 1);
}
