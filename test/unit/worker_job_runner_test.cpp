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
