// test/unit/worker_node_conninfo_test.cpp — conninfo_for_node: the coordinator's settings aimed at a worker
// node.
#include "node_conninfo.hpp"

#include <gtest/gtest.h>

using darkspere::worker::conninfo_for_node;

TEST(NodeConninfo, ReplacesHostAndPortKeepsTheRest) {
    std::string error;
    auto out = conninfo_for_node(
        "host=coord port=5432 dbname=sms user=darkspere_worker password=s3cret sslmode=require", "worker-1",
        6432, &error);
    ASSERT_TRUE(out.has_value()) << error;
    EXPECT_EQ(
        *out,
        "host='worker-1' port=6432 user='darkspere_worker' password='s3cret' dbname='sms' sslmode='require'");
}

TEST(NodeConninfo, ReadsUrisAndDropsHostaddr) {
    std::string error;
    auto out = conninfo_for_node("postgresql://w@10.0.0.1:5433/sms?hostaddr=10.0.0.1&application_name=x",
                                 "10.0.0.7", 5432, &error);
    ASSERT_TRUE(out.has_value()) << error;
    EXPECT_EQ(*out, "host='10.0.0.7' port=5432 user='w' dbname='sms' application_name='x'");
}

TEST(NodeConninfo, QuotesValuesSoTheyCannotAddSettings) {
    std::string error;
    // The password is: it's \ x host=evil (a quote, a backslash, and what would be a setting unquoted).
    auto out = conninfo_for_node("dbname=sms password='it\\'s \\\\ x host=evil'", "node a", 1, &error);
    ASSERT_TRUE(out.has_value()) << error;
    EXPECT_EQ(*out, "host='node a' port=1 password='it\\'s \\\\ x host=evil' dbname='sms'");
    // Read back by libpq, it says the same: the host stays the node's.
    auto again = conninfo_for_node(*out, "node a", 1, &error);
    ASSERT_TRUE(again.has_value()) << error;
    EXPECT_EQ(*again, *out);
}

TEST(NodeConninfo, RefusesWhatLibpqCannotParse) {
    std::string error;
    EXPECT_FALSE(conninfo_for_node("host=a port", "b", 1, &error).has_value());
    EXPECT_FALSE(error.empty());
}
