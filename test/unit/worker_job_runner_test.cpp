// test/unit/worker_job_runner_test.cpp — what the job runner reads from a job payload besides the call
// itself.
#include <gtest/gtest.h>

#include "job_runner.hpp"

using darkspere::worker::tenant_of;

TEST(JobRunner, TenantIsThePayloadAccountIdAsText) {
    EXPECT_EQ(tenant_of(nlohmann::json::parse(R"({"account_id":42,"body":"x"})")), "42");
    EXPECT_EQ(tenant_of(nlohmann::json::parse(R"({"account_id":"42"})")), "42");
}

TEST(JobRunner, AJobWithoutAnAccountHasTheEmptyTenant) {
    EXPECT_EQ(tenant_of(nlohmann::json::parse(R"({"body":"x"})")), "");
}

using darkspere::worker::agent_turn_from_payload;
using darkspere::worker::AgentTurn;
using darkspere::worker::transient_sqlstate;

TEST(JobRunner, SigningSecretsComeFromThePayloadCurrentFirst) {
    AgentTurn turn;
    std::string protocol, error;
    ASSERT_TRUE(agent_turn_from_payload(
        nlohmann::json::parse(R"({"endpoint":"https://a/","signing_secrets":["dsk_new","dsk_old",7,""]})"),
        std::chrono::milliseconds(1000), &turn, &protocol, &error))
        << error;
    EXPECT_EQ(turn.signing_secrets, (std::vector<std::string>{"dsk_new", "dsk_old"}));
    ASSERT_TRUE(agent_turn_from_payload(nlohmann::json::parse(R"({"endpoint":"https://a/"})"),
                                        std::chrono::milliseconds(1000), &turn, &protocol, &error));
    EXPECT_TRUE(turn.signing_secrets.empty());
}

// An ack refused with one of these is retried as it is; any other SQL error is a refusal that, repeated,
// fails the job for good instead of letting its lease expire and the job run twice.
TEST(JobRunner, TransientSqlstatesAreConnectionConflictResourceAndShutdownErrors) {
    for (const char *s :
         {"08006", "08P01", "40001", "40P01", "53300", "53200", "57P01", "57P03", "55P03", "57014"})
        EXPECT_TRUE(transient_sqlstate(s)) << s;
    for (const char *s : {"P0001", "23505", "22023", "42883", "XX000", "", "4000"})
        EXPECT_FALSE(transient_sqlstate(s)) << s;
}
