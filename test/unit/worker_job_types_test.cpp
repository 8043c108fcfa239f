// test/unit/worker_job_types_test.cpp — job ids, kinds and states as the worker reads them from the database:
// one mapping each way, and a clear "no" for anything else.
#include <gtest/gtest.h>

#include "job_runner.hpp"
#include "job_types.hpp"

using namespace darkspere::worker;

TEST(JobTypes, EveryKindAndStateRoundTripsThroughItsSqlString) {
    for (JobKind k : {JobKind::agent_call, JobKind::sms_send, JobKind::health_probe, JobKind::alert_notify})
        EXPECT_EQ(job_kind_from_sql(sql_text(k)), k) << sql_text(k);
    for (JobState s : {JobState::pending, JobState::running, JobState::done, JobState::dead})
        EXPECT_EQ(job_state_from_sql(sql_text(s)), s) << sql_text(s);
    EXPECT_EQ(sql_text(JobKind::agent_call), "agent_call");
    EXPECT_EQ(sql_text(JobKind::sms_send), "sms_send");
    EXPECT_EQ(sql_text(JobKind::health_probe), "health_probe");
    EXPECT_EQ(sql_text(JobState::dead), "dead");
}

TEST(JobTypes, AStringTheWorkerDoesNotKnowIsNoKindOrState) {
    for (const char *s : {"", "AGENT_CALL", "agent_call ", "email", "running"})
        EXPECT_FALSE(job_kind_from_sql(s)) << s;
    for (const char *s : {"", "Pending", "sms_send", "failed"})
        EXPECT_FALSE(job_state_from_sql(s)) << s;
    EXPECT_EQ(job_kind_label(std::nullopt), "unknown");
    EXPECT_EQ(job_state_label(std::nullopt), "unknown");
    EXPECT_EQ(job_kind_label(JobKind::sms_send), "sms_send");
}

TEST(JobTypes, JobIdsAreBigintsReadStrictly) {
    EXPECT_EQ(parse_job_id(std::string("9")), 9);
    EXPECT_EQ(parse_job_id(std::string("9223372036854775807")), INT64_MAX);
    for (const char *s : {"", "x", "12x", " 12", "9223372036854775808", "1.5"})
        EXPECT_FALSE(parse_job_id(std::string(s))) << s;
    EXPECT_FALSE(parse_job_id(std::nullopt));
    EXPECT_EQ(parse_attempt(std::string("3")), 3);
    EXPECT_FALSE(parse_attempt(std::string("2147483648")));
}

// Acks go in job order so that two workers' batches lock job rows in the same order: numeric order, which the
// old text ids only had by sorting on length first.
TEST(JobTypes, JobIdsCompareAsNumbers) {
    EXPECT_LT(*parse_job_id(std::string("9")), *parse_job_id(std::string("10")));
}

namespace {

PgResult claim_result(std::vector<std::vector<std::optional<std::string>>> rows) {
    PgResult r;
    r.ok = true;
    r.columns = {"job_id", "attempt", "kind", "payload"};
    r.rows = std::move(rows);
    return r;
}

}  // namespace

TEST(JobFromRow, ReadsIdAttemptKindTenantAndRequestId) {
    PgResult r = claim_result({{"12", "2", "sms_send", R"({"account_id":7,"request_id":"rq"})"}});
    std::optional<ClaimedJob> job = job_from_row(r, 0);
    ASSERT_TRUE(job);
    EXPECT_EQ(job->job_id, 12);
    EXPECT_EQ(job->attempt, 2);
    EXPECT_EQ(job->kind, JobKind::sms_send);
    EXPECT_EQ(job->tenant, "7");
    EXPECT_EQ(job->request_id, "rq");
    EXPECT_EQ(job->unusable, "");
}

TEST(JobFromRow, AnUnknownKindOrABadPayloadMakesTheJobUnusableWithTheReason) {
    PgResult r = claim_result({{"1", "1", "fax", "{}"}, {"2", "1", "agent_call", "{not json"}});
    EXPECT_EQ(job_from_row(r, 0)->unusable, "unknown job kind: fax");
    EXPECT_FALSE(job_from_row(r, 0)->kind);
    EXPECT_EQ(job_from_row(r, 1)->unusable, "malformed job payload");
}

TEST(JobFromRow, ARowWithoutAReadableIdOrAttemptCannotBeAckedAndIsNoJob) {
    PgResult r = claim_result({{std::nullopt, "1", "sms_send", "{}"}, {"5", "one", "sms_send", "{}"}});
    EXPECT_FALSE(job_from_row(r, 0));
    EXPECT_FALSE(job_from_row(r, 1));
}

TEST(JobFromRow, AResultWithoutAKindColumnTakesTheKindItIsKnownToHold) {
    PgResult r;
    r.ok = true;
    r.columns = {"job_id", "attempt", "payload"};
    r.rows = {{"4", "1", "{}"}};
    EXPECT_EQ(job_from_row(r, 0, JobKind::agent_call)->kind, JobKind::agent_call);
    EXPECT_EQ(job_from_row(r, 0, JobKind::agent_call)->unusable, "");
}
