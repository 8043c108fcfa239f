// test/unit/worker_agent_http_test.cpp — the plain `http` agent protocol
// (docs/protocols.md#http-agent-protocol): request and answers.
#include <gtest/gtest.h>

#include "agent_http.hpp"
#include "job_runner.hpp"

using namespace darkspere::worker;

namespace {

HttpResponse answer(long status, std::string body) {
    HttpResponse r;
    r.status = status;
    r.body = std::move(body);
    return r;
}

}  // namespace

TEST(AgentHttp, RequestCarriesTheTurnAndAnIdempotencyKey) {
    AgentTurn t;
    t.endpoint = "http://127.0.0.1:3101/agent";
    t.session_id = "42";
    t.message = "What time do you open?";
    t.from = "+14155550100";
    t.to = "+14155550199";
    t.request_id = "rq-1";
    t.history = nlohmann::json::array({{{"role", "user"}, {"content", "hi"}}});
    t.deadline = std::chrono::milliseconds(2500);
    HttpRequest r = agent_http_request(t);
    EXPECT_EQ(r.method, "POST");
    EXPECT_EQ(r.url, t.endpoint);
    EXPECT_EQ(r.deadline.count(), 2500);
    HttpResponse headers;
    headers.headers = r.headers;
    EXPECT_EQ(headers.header("content-type"), "application/json");
    EXPECT_EQ(headers.header("accept"), "application/json");
    EXPECT_EQ(headers.header("idempotency-key"), "rq-1");
    auto body = nlohmann::json::parse(r.body);
    EXPECT_EQ(body["request_id"], "rq-1");
    EXPECT_EQ(body["session_id"], "42");  // a string, stable across failover
    EXPECT_EQ(body["from"], "+14155550100");
    EXPECT_EQ(body["to"], "+14155550199");
    EXPECT_EQ(body["message"], "What time do you open?");
    EXPECT_EQ(body["history"][0]["content"], "hi");
}

TEST(AgentHttp, ReplyStringSucceedsTrimmed) {
    AgentOutcome o = agent_http_outcome(answer(200, R"({"reply":"  We open at 7.\n"})"));
    EXPECT_TRUE(o.ok);
    EXPECT_EQ(o.reply, std::optional<std::string>("We open at 7."));
}

TEST(AgentHttp, EmptyReplyMeansSendNothing) {
    AgentOutcome o = agent_http_outcome(answer(200, R"({"reply":"","extra":1})"));
    EXPECT_TRUE(o.ok);
    EXPECT_EQ(o.reply, std::optional<std::string>(""));
}

TEST(AgentHttp, EverythingElseIsAFailure) {
    const std::vector<HttpResponse> bad = {
        answer(500, R"({"reply":"x"})"),
        answer(201, R"({"reply":"x"})"),
        answer(200, "not json"),
        answer(200, R"(["reply"])"),
        answer(200, R"({})"),
        answer(200, R"({"reply":null})"),
        answer(200, R"({"reply":42})"),
        answer(200, ""),
    };
    for (const auto &r : bad) {
        AgentOutcome o = agent_http_outcome(r);
        EXPECT_FALSE(o.ok) << r.status << " " << r.body;
        EXPECT_FALSE(o.error.empty());
        EXPECT_EQ(o.error.find("reply\":"), std::string::npos);  // never quotes the agent's text
    }
}

TEST(AgentHttp, TimeoutIsReportedAsSuch) {
    HttpResponse r;
    r.timed_out = true;
    r.error = "timeout after 10000 ms";
    AgentOutcome o = agent_http_outcome(r);
    EXPECT_FALSE(o.ok);
    EXPECT_EQ(o.error, "timeout after 10000 ms");
}

TEST(AgentHttp, TurnFromAgentCallPayload) {
    auto payload = nlohmann::json::parse(R"({"agent_id": 7, "endpoint": "http://a/mcp", "protocol": "mcp",
        "tool_name": "ask", "account_id": 1, "session_id": 42, "message_id": 900, "from": "+1", "to": "+2",
        "body": "hi", "request_id": "rq-9", "history": [{"role":"user","content":"x"}]})");
    AgentTurn t;
    std::string protocol, error;
    ASSERT_TRUE(agent_turn_from_payload(payload, std::chrono::milliseconds(3000), &t, &protocol, &error));
    EXPECT_EQ(protocol, "mcp");
    EXPECT_EQ(t.agent_id, 7);
    EXPECT_EQ(t.tool_name, "ask");
    EXPECT_EQ(t.session_id, "42");
    EXPECT_EQ(t.message, "hi");
    EXPECT_EQ(t.request_id, "rq-9");
    EXPECT_EQ(t.history.size(), 1u);
    EXPECT_EQ(t.deadline.count(), 3000);

    EXPECT_FALSE(agent_turn_from_payload(nlohmann::json::parse(R"({"protocol":"http"})"),
                                         std::chrono::milliseconds(1), &t, &protocol, &error));
    EXPECT_EQ(error, "agent_call payload lacks endpoint");
}

TEST(AgentHttp, ProbeIsASignedGetOfTheOriginPlusTheProbePath) {
    AgentTurn t;
    t.endpoint = "https://Agent.Example:8443/bots/one?x=1";
    t.request_id = "probe-7-1";
    t.deadline = std::chrono::milliseconds(5000);
    t.signing_secrets = {"secret-one"};
    HttpRequest r = agent_probe_request(t, "/healthz?deep=1");
    EXPECT_EQ(r.method, "GET");
    EXPECT_EQ(r.url, "https://agent.example:8443/healthz?deep=1");
    EXPECT_EQ(r.body, "");
    EXPECT_EQ(r.deadline, std::chrono::milliseconds(5000));
    bool signed_request = false;
    for (const auto &[name, value] : r.headers)
        signed_request = signed_request || name == "X-DarkSpere-Signature";
    EXPECT_TRUE(signed_request);
}

TEST(AgentHttp, ProbePassesOnAny2xxOnly) {
    EXPECT_TRUE(agent_probe_outcome(answer(200, "")).ok);
    EXPECT_TRUE(agent_probe_outcome(answer(204, "")).ok);
    AgentOutcome down = agent_probe_outcome(answer(503, "{\"status\": \"down\"}"));
    EXPECT_FALSE(down.ok);
    EXPECT_EQ(down.error, "probe http 503");
    EXPECT_FALSE(agent_probe_outcome(answer(301, "")).ok);
    HttpResponse timeout;
    timeout.timed_out = true;
    timeout.error = "timeout";
    EXPECT_EQ(agent_probe_outcome(timeout).error, "timeout");
}
