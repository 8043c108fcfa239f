// test/unit/worker_job_runner_test.cpp — what the job runner reads from a job payload besides the call
// itself, and how it claims, acks, parks and drains (against a scripted database; see JobRunnerLogic).
#include <gtest/gtest.h>

#include <algorithm>
#include <deque>

#include "job_runner.hpp"
#include "scripted_pg.hpp"

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

// ---- The runner's claim / ack / park / drain logic, against a scripted database and scripted peers ----
//
// ScriptedPg stands in for the connection pool (PgClient): it keeps every statement the runner sends until
// the test answers it, so each test decides what the database says and when. The real database is covered by
// the e2e tests; here only the runner's own decisions are.

namespace {

using namespace darkspere::worker;
using darkspere::worker::testing::ScriptedPg;
using darkspere::worker::testing::Statement;
using Row = std::vector<std::optional<std::string>>;

// Agents and Twilio: every request waits until the test answers it.
class ScriptedHttp : public HttpClient {
  public:
    void send(HttpRequest request, std::function<void(HttpResponse)> on_done) override {
        calls.push_back({std::move(request), std::move(on_done)});
    }
    // answer — answers the oldest open request to url (the test fails without one).
    void answer(const std::string &url, long status, std::string body) {
        auto it =
            std::find_if(calls.begin(), calls.end(), [&](const Call &c) { return c.request.url == url; });
        if (it == calls.end()) {
            ADD_FAILURE() << "no request to " << url;
            return;
        }
        auto on_done = std::move(it->on_done);
        calls.erase(it);
        HttpResponse response;
        response.status = status;
        response.body = std::move(body);
        on_done(std::move(response));
    }
    size_t open(const std::string &url) const {
        return std::count_if(calls.begin(), calls.end(), [&](const Call &c) { return c.request.url == url; });
    }

    struct Call {
        HttpRequest request;
        std::function<void(HttpResponse)> on_done;
    };
    std::deque<Call> calls;
};

const std::string AGENT_URL = "https://agent.test/turn";
const std::string REPLY = R"({"reply":"hello"})";

// agent_call — a claim_jobs row for one turn of tenant `account` to agent `agent`.
Row agent_call(long long job_id, long long account = 1, long long agent = 5) {
    nlohmann::json payload = {{"account_id", account},
                              {"agent_id", agent},
                              {"endpoint", AGENT_URL},
                              {"body", "hi"},
                              {"request_id", "rq" + std::to_string(job_id)}};
    return {std::to_string(job_id), "1", "agent_call", payload.dump()};
}

PgResult rows(std::vector<std::string> columns, std::vector<Row> rows) {
    PgResult r;
    r.ok = true;
    r.columns = std::move(columns);
    r.rows = std::move(rows);
    return r;
}

PgResult claimed(std::vector<Row> jobs) {
    return rows({"job_id", "attempt", "kind", "payload"}, std::move(jobs));
}

// acked — ack_jobs' answer: one row per ack (ord 1..n, accepted) and, after them, the jobs handed off.
PgResult acked(std::vector<bool> accepted, std::vector<Row> handed_off = {}) {
    std::vector<Row> out;
    for (size_t i = 0; i < accepted.size(); ++i)
        out.push_back({std::to_string(i + 1), accepted[i] ? "t" : "f", std::nullopt, std::nullopt,
                       std::nullopt, std::nullopt});
    for (Row &job : handed_off) {
        Row row = {std::nullopt, std::nullopt};
        row.insert(row.end(), job.begin(), job.end());
        out.push_back(std::move(row));
    }
    return rows({"ord", "accepted", "job_id", "attempt", "kind", "payload"}, std::move(out));
}

PgResult sql_error(std::string sqlstate, std::string message = "boom") {
    PgResult r;
    r.sqlstate = std::move(sqlstate);
    r.error = std::move(message);
    return r;
}

PgResult unavailable() {
    PgResult r;
    r.unavailable = true;
    r.error = "connection lost";
    return r;
}

// ack_rows — the acks an ack_jobs statement carries (its first parameter).
nlohmann::json ack_rows(const Statement &s) {
    return nlohmann::json::parse(s.params.at(0).value_or("null"));
}

std::vector<long long> ack_job_ids(const Statement &s) {
    std::vector<long long> ids;
    for (const auto &row : ack_rows(s))
        ids.push_back(row.at("job_id").get<long long>());
    return ids;
}

class JobRunnerLogic : public ::testing::Test {
  protected:
    JobRunnerLogic() {
        settings.worker_name = "w1";
        settings.max_in_flight = 10;
        // The fallback poll and the tick never fire during a test: every claim here has a reason the test
        // gives.
        settings.poll_interval_ms = 3600 * 1000;
        settings.tick_interval_ms = 3600 * 1000;
        twilio_settings.twilio_base = "https://twilio.test";
        twilio_settings.public_url = "https://darkspere.test";
        twilio_settings.accounts = {{"AC1", "token"}};
    }
    // settle — runs every handler that is ready, never waiting for a timer.
    void settle() {
        io.poll();
        io.restart();
    }
    // start — the runner's first claim, answered with `jobs`.
    void start_with(std::vector<Row> jobs) {
        runner.start();
        pg.take("claim_jobs").on_done(claimed(std::move(jobs)));
        settle();
    }
    void agent_answers() {
        http.answer(AGENT_URL, 200, REPLY);
        settle();
    }
    unsigned long long jobs(const std::string &kind, const std::string &outcome) {
        return metrics.jobs[{kind, outcome}];
    }

    boost::asio::io_context io;
    ScriptedPg pg;
    ScriptedHttp http;
    AgentHttp agent_http{http};
    McpClient mcp{http, "test"};
    TwilioSettings twilio_settings;
    TwilioSender twilio{io, http, [this] { return twilio_settings; }};
    Metrics metrics;
    RunnerSettings settings;
    JobRunner runner{io, pg, agent_http, mcp, twilio, metrics, [this] { return settings; }};
};

}  // namespace

TEST_F(JobRunnerLogic, AClaimAsksForTheRoomLeftAndEachJobClaimedRuns) {
    settings.max_in_flight = 3;
    settings.max_in_flight_per_agent = 3;
    settings.max_in_flight_per_account = 3;
    runner.start();
    Statement claim = pg.take("claim_jobs");
    EXPECT_EQ(claim.params, (PgParams{"w1", "3", "120 seconds", "{}", "{}"}));
    claim.on_done(claimed({agent_call(1), agent_call(2)}));
    settle();
    EXPECT_EQ(http.open(AGENT_URL), 2u);
    EXPECT_EQ(runner.in_flight(), 2);
    EXPECT_EQ(pg.count("claim_jobs"), 0u) << "fewer jobs than asked for: nothing more is waiting";
}

TEST_F(JobRunnerLogic, AFullClaimClaimsAgainOnceASlotIsFree) {
    settings.max_in_flight = 2;
    settings.max_in_flight_per_agent = 2;
    settings.max_in_flight_per_account = 2;
    start_with({agent_call(1), agent_call(2)});
    EXPECT_EQ(pg.count("claim_jobs"), 0u) << "no room: the claim waits for a free slot";
    agent_answers();
    Statement claim = pg.take("claim_jobs");
    EXPECT_EQ(claim.params.at(1), "1") << "one slot is free";
}

TEST_F(JobRunnerLogic, AnAgentAtItsSharePassedOverAndTheClaimFitsTheBusiestOther) {
    settings.max_in_flight_per_agent = 2;
    start_with({agent_call(1, 1, 5), agent_call(2, 1, 5)});
    Statement claim = pg.take("claim_jobs");  // a full claim: more work is likely waiting
    EXPECT_EQ(claim.params.at(3), "{5}") << "agent 5 runs its share";
    EXPECT_EQ(claim.params.at(1), "2")
        << "every job claimed could be the next agent's: no more than its share";
}

TEST_F(JobRunnerLogic, ATenantAtItsSharePassedOver) {
    settings.max_in_flight = 4;  // each tenant's share: 2, each agent's: 3
    start_with({agent_call(1, 7, 5), agent_call(2, 7, 6)});
    Statement claim = pg.take("claim_jobs");  // a full claim
    EXPECT_EQ(claim.params.at(4), "{7}") << "tenant 7 runs its share";
    EXPECT_EQ(claim.params.at(3), "{}");
    EXPECT_EQ(claim.params.at(1), "2") << "the slots left";
}

TEST_F(JobRunnerLogic, ARowWithoutAReadableJobIdIsNotRun) {
    start_with({{"x", "1", "agent_call", "{}"}, agent_call(2)});
    EXPECT_EQ(http.open(AGENT_URL), 1u);
    EXPECT_EQ(runner.in_flight(), 1);
    EXPECT_EQ(pg.count("ack_jobs"), 0u);
}

TEST_F(JobRunnerLogic, AJobOfAnUnknownKindFailsForGoodWithTheKindNamed) {
    start_with({{"4", "2", "fax", "{}"}});
    Statement ack = pg.take("ack_jobs");
    nlohmann::json row = ack_rows(ack).at(0);
    EXPECT_EQ(row.at("job_id"), 4);
    EXPECT_EQ(row.at("attempt"), 2);
    EXPECT_EQ(row.at("complete"), false);
    EXPECT_EQ(row.at("retryable"), false);
    EXPECT_EQ(row.at("error"), "unknown job kind: fax");
    ack.on_done(acked({true}));
    settle();
    EXPECT_EQ(jobs("unknown", "failed"), 1u);
}

TEST_F(JobRunnerLogic, AnAgentsReplyCompletesTheJob) {
    start_with({agent_call(3)});
    agent_answers();
    Statement ack = pg.take("ack_jobs");
    nlohmann::json row = ack_rows(ack).at(0);
    EXPECT_EQ(row.at("job_id"), 3);
    EXPECT_EQ(row.at("complete"), true);
    EXPECT_EQ(row.at("result").at("reply"), "hello");
    EXPECT_EQ(ack.params.at(1), "w1");
    EXPECT_EQ(ack.params.at(3), "10") << "room for hand-offs: every slot is free again";
    ack.on_done(acked({true}));
    settle();
    EXPECT_EQ(jobs("agent_call", "completed"), 1u);
    EXPECT_EQ(runner.stats()["jobs_completed"], 1);
}

TEST_F(JobRunnerLogic, AcksThatFinishWhileABatchRunsGoTogetherInTheNextInJobOrder) {
    start_with({agent_call(10), agent_call(11), agent_call(9)});
    agent_answers();  // job 10
    Statement first = pg.take("ack_jobs");
    EXPECT_EQ(ack_job_ids(first), (std::vector<long long>{10}));
    agent_answers();  // job 11
    agent_answers();  // job 9
    EXPECT_EQ(pg.count("ack_jobs"), 0u) << "the tenant has acks in the running batch: they wait for it";
    first.on_done(acked({true}));
    settle();
    Statement second = pg.take("ack_jobs");
    EXPECT_EQ(ack_job_ids(second), (std::vector<long long>{9, 11}))
        << "numeric order, one lock order for all";
    second.on_done(acked({true, true}));
    settle();
    EXPECT_EQ(jobs("agent_call", "completed"), 3u);
}

TEST_F(JobRunnerLogic, ATenantWithoutABacklogIsAckedBesideTheRunningBatch) {
    start_with({agent_call(1, 1), agent_call(2, 1), agent_call(3, 2)});
    agent_answers();  // job 1, tenant 1: the batch
    agent_answers();  // job 2, tenant 1: waits for the batch
    agent_answers();  // job 3, tenant 2: goes at once
    ASSERT_EQ(pg.count("ack_jobs"), 2u);
    EXPECT_EQ(ack_job_ids(pg.take("ack_jobs")), (std::vector<long long>{1}));
    EXPECT_EQ(ack_job_ids(pg.take("ack_jobs")), (std::vector<long long>{3}));
}

TEST_F(JobRunnerLogic, AnAckTheDatabaseNoLongerAcceptsIsALostLease) {
    start_with({agent_call(1)});
    agent_answers();
    pg.take("ack_jobs").on_done(acked({false}));
    settle();
    EXPECT_EQ(jobs("agent_call", "lease_lost"), 1u);
    EXPECT_EQ(jobs("agent_call", "completed"), 0u);
    EXPECT_EQ(runner.stats()["acks_lease_lost"], 1);
}

TEST_F(JobRunnerLogic, ABatchTheDatabaseRollsBackIsAckedOneByOne) {
    start_with({{"1", "1", "fax", "{}"}, {"2", "1", "fax", "{}"}, {"3", "1", "fax", "{}"}});
    pg.take("ack_jobs").on_done(acked({true}));  // job 1; 2 and 3 waited
    settle();
    Statement batch = pg.take("ack_jobs");
    EXPECT_EQ(ack_job_ids(batch), (std::vector<long long>{2, 3}));
    batch.on_done(sql_error("40P01", "deadlock detected"));
    settle();
    EXPECT_EQ(metrics.ack_batch_fallbacks, 1u);
    ASSERT_EQ(pg.count("ack_jobs"), 2u);
    EXPECT_EQ(ack_job_ids(pg.take("ack_jobs")), (std::vector<long long>{2}));
    EXPECT_EQ(ack_job_ids(pg.take("ack_jobs")), (std::vector<long long>{3}));
}

TEST_F(JobRunnerLogic, AnAckThatCannotReachTheDatabaseIsParkedAndSentAfterReconnecting) {
    start_with({agent_call(1)});
    agent_answers();
    pg.up = 0;
    pg.take("ack_jobs").on_done(unavailable());
    settle();
    EXPECT_EQ(runner.acks_parked(), 1u);
    EXPECT_EQ(metrics.acks_pending, 1);
    runner.database_reconnected();  // a reconnect hook while still down changes nothing
    settle();
    EXPECT_EQ(pg.count("ack_jobs"), 0u);
    EXPECT_EQ(runner.acks_parked(), 1u);
    pg.up = 1;
    runner.database_reconnected();
    settle();
    EXPECT_EQ(runner.acks_parked(), 0u);
    Statement ack = pg.take("ack_jobs");
    EXPECT_EQ(ack_job_ids(ack), (std::vector<long long>{1}));
    ack.on_done(acked({true}));
    settle();
    EXPECT_EQ(jobs("agent_call", "completed"), 1u);
}

TEST_F(JobRunnerLogic, AnAckRefusedAgainAndAgainIsReplacedByAFinalFailureCarryingTheError) {
    start_with({agent_call(1)});
    agent_answers();
    pg.take("ack_jobs").on_done(sql_error("P0001", "no such job"));  // the batch: retried alone
    settle();
    for (int refusal = 1; refusal <= ACK_REFUSALS_MAX; ++refusal) {
        Statement alone = pg.take("ack_jobs");
        EXPECT_EQ(ack_rows(alone).at(0).at("complete"), true) << "refusal " << refusal;
        alone.on_done(sql_error("P0001", "no such job"));
        settle();
        // Parked (with a backoff timer that may already have sent it again on a slow machine): retry now.
        if (refusal < ACK_REFUSALS_MAX && runner.acks_parked() > 0) {
            runner.database_reconnected();
            settle();
        }
    }
    Statement final_failure = pg.take("ack_jobs");
    nlohmann::json row = ack_rows(final_failure).at(0);
    EXPECT_EQ(row.at("job_id"), 1);
    EXPECT_EQ(row.at("complete"), false);
    EXPECT_EQ(row.at("retryable"), false);
    EXPECT_EQ(row.at("error"), "the database refused the job's ack (SQLSTATE P0001): no such job");
    EXPECT_EQ(jobs("agent_call", "ack_refused"), 1u);
    final_failure.on_done(acked({true}));
    settle();
    EXPECT_EQ(jobs("agent_call", "failed"), 1u);
}

TEST_F(JobRunnerLogic, ATransientErrorIsRetriedAsItIsNotCountedAsARefusal) {
    start_with({agent_call(1)});
    agent_answers();
    pg.take("ack_jobs").on_done(sql_error("40001"));  // the batch
    settle();
    for (int i = 0; i < ACK_REFUSALS_MAX + 1; ++i) {
        Statement alone = pg.take("ack_jobs");
        EXPECT_EQ(ack_rows(alone).at(0).at("complete"), true) << "try " << i;
        alone.on_done(sql_error("40001"));
        settle();
        if (runner.acks_parked() > 0) {
            runner.database_reconnected();
            settle();
        }
    }
    EXPECT_EQ(jobs("agent_call", "ack_refused"), 0u);
}

TEST_F(JobRunnerLogic, SendsAnAckHandsOffAreRunAsIfClaimed) {
    start_with({agent_call(1)});
    agent_answers();
    nlohmann::json send = {{"account_id", 1},   {"provider_account", "AC1"}, {"from", "+15550001"},
                           {"to", "+15550002"}, {"body", "hello"},           {"request_id", "rq1"}};
    pg.take("ack_jobs").on_done(acked({true}, {{"20", "1", "sms_send", send.dump()}}));
    settle();
    EXPECT_EQ(metrics.jobs_handed_off, 1u);
    EXPECT_EQ(runner.in_flight(), 1);
    ASSERT_EQ(http.calls.size(), 1u);
    EXPECT_NE(http.calls.front().request.url.find("https://twilio.test/"), std::string::npos);
}

TEST_F(JobRunnerLogic, DrainingStopsClaimingAndEndsOnceEveryRunningJobIsAcked) {
    start_with({agent_call(1)});
    bool drained = false;
    runner.drain(std::chrono::hours(1), [&] { drained = true; });
    runner.wake();
    settle();
    EXPECT_EQ(pg.count("claim_jobs"), 0u);
    EXPECT_EQ(runner.reserve_call_slot(), nullptr) << "no hand-offs while draining";
    EXPECT_FALSE(drained) << "a job still runs";
    agent_answers();
    Statement ack = pg.take("ack_jobs");
    EXPECT_EQ(ack.params.at(3), "0") << "no room for handed-off sends while draining";
    settle();
    EXPECT_FALSE(drained) << "its ack is not in yet";
    ack.on_done(acked({true}));
    settle();
    EXPECT_TRUE(drained);
}

TEST_F(JobRunnerLogic, DrainingGivesUpAtItsTimeoutLeavingJobsToLeaseExpiry) {
    start_with({agent_call(1)});
    bool drained = false;
    runner.drain(std::chrono::milliseconds(1), [&] { drained = true; });
    for (int i = 0; i < 100 && !drained; ++i)
        io.run_one_for(std::chrono::milliseconds(100));
    EXPECT_TRUE(drained);
    EXPECT_EQ(runner.in_flight(), 1);
}
