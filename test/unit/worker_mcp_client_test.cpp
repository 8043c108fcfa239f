// test/unit/worker_mcp_client_test.cpp — McpClient end to end against a scripted agent: era detection, the
// legacy session, tool lookup, result mapping, failures and deadlines.
//
// ScriptedAgent stands in for the remote MCP server behind HttpClient: each test queues the answers the
// server gives, in order, and inspects the requests the client sent. Answers are delivered from run(), never
// inside send(), the way the real event loop delivers them.
#include <gtest/gtest.h>

#include <deque>
#include <functional>
#include <optional>
#include <strings.h>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent_signature.hpp"
#include "mcp_client.hpp"
#include "mcp_tools.hpp"

using namespace darkspere::worker;
using nlohmann::json;

namespace {

struct Answer {
    Answer() = default;
    Answer(long answer_status, HeaderList answer_headers, std::string answer_body)
        : status(answer_status), headers(std::move(answer_headers)), body(std::move(answer_body)) {}
    long status = 200;
    HeaderList headers;
    std::string body;
    bool timed_out = false;
    bool too_large = false;  // the HttpClient aborted the body at max_response_bytes
    std::string transport_error;
};

using AnswerFor = std::function<Answer(const json &request)>;

class ScriptedAgent : public HttpClient {
  public:
    struct Sent {
        HttpRequest request;
        json body;
        bool stopped_early = false;  // on_body_chunk asked to end the transfer

        std::string method() const { return body.value("method", ""); }
        std::string header(const std::string &name) const {
            for (const auto &[key, value] : request.headers) {
                if (strcasecmp(key.c_str(), name.c_str()) == 0) {
                    return value;
                }
            }
            return {};
        }
        bool has_header(const std::string &name) const {
            for (const auto &entry : request.headers) {
                if (strcasecmp(entry.first.c_str(), name.c_str()) == 0) {
                    return true;
                }
            }
            return false;
        }
    };

    void answer(AnswerFor next) { script_.push_back(std::move(next)); }

    void send(HttpRequest request, std::function<void(HttpResponse)> on_done) override {
        pending_.push_back({std::move(request), std::move(on_done)});
    }

    // run — delivers answers until nothing is in flight, like one turn of the event loop.
    void run() {
        while (!pending_.empty()) {
            auto [request, on_done] = std::move(pending_.front());
            pending_.pop_front();
            Sent sent{request, json::parse(request.body), false};
            Answer answer;
            if (script_.empty()) {
                answer.status = 599;  // unscripted request: fail loudly
                ADD_FAILURE() << "unscripted request " << request.body;
            } else {
                answer = script_.front()(sent.body);
                script_.pop_front();
            }
            HttpResponse response;
            response.status = answer.status;
            response.headers = answer.headers;
            response.timed_out = answer.timed_out;
            response.error = answer.transport_error;
            if (answer.timed_out) {
                response.status = 0;
                response.error = "timeout";
            } else if (answer.too_large) {
                response.too_large = true;
                response.error =
                    "response larger than " + std::to_string(request.max_response_bytes) + " bytes";
            } else if (request.on_body_chunk) {
                // Deliver in small chunks so the early-stop hook sees realistic splits.
                for (size_t at = 0; at < answer.body.size(); at += 16) {
                    std::string chunk = answer.body.substr(at, 16);
                    response.body += chunk;
                    if (request.on_body_chunk(chunk)) {
                        sent.stopped_early = at + 16 < answer.body.size();
                        break;
                    }
                }
            } else {
                response.body = answer.body;
            }
            sent_.push_back(sent);
            on_done(std::move(response));
        }
    }

    const std::vector<Sent> &sent() const { return sent_; }
    std::vector<std::string> methods() const {
        std::vector<std::string> out;
        for (const auto &s : sent_) {
            out.push_back(s.method());
        }
        return out;
    }
    bool script_done() const { return script_.empty(); }

  private:
    std::deque<std::pair<HttpRequest, std::function<void(HttpResponse)>>> pending_;
    std::deque<AnswerFor> script_;
    std::vector<Sent> sent_;
};

// ---- canned answers
// -------------------------------------------------------------------------------------------

HeaderList json_type(HeaderList extra = {}) {
    extra.emplace_back("Content-Type", "application/json");
    return extra;
}

AnswerFor result(json value, HeaderList headers = {}) {
    return [value, headers](const json &request) {
        return Answer{200, json_type(headers),
                      json{{"jsonrpc", "2.0"}, {"id", request["id"]}, {"result", value}}.dump()};
    };
}

AnswerFor sse_result(json value, std::string before = "") {
    return [value, before](const json &request) {
        std::string body =
            before + "event: message\nid: e1\ndata: " +
            json{{"jsonrpc", "2.0"}, {"id", request["id"]}, {"result", value}}.dump() +
            "\n\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/late\"}\n\n";
        return Answer{200, {{"Content-Type", "text/event-stream"}}, body};
    };
}

AnswerFor rpc_error(long status, long code, json data = nullptr) {
    return [status, code, data](const json &request) {
        json error = {{"code", code}, {"message", "error"}};
        if (!data.is_null()) {
            error["data"] = data;
        }
        return Answer{status, json_type(),
                      json{{"jsonrpc", "2.0"}, {"id", request["id"]}, {"error", error}}.dump()};
    };
}

AnswerFor plain(long status, std::string body = "", std::string content_type = "text/plain") {
    return [=](const json &) { return Answer{status, {{"Content-Type", content_type}}, body}; };
}

AnswerFor accepted() {
    return plain(202);
}

AnswerFor timeout() {
    return [](const json &) {
        Answer a;
        a.timed_out = true;
        return a;
    };
}

// What @modelcontextprotocol/sdk 1.32 answers to the modern probe (observed, see docs/mcp-agents.md).
AnswerFor sdk1_probe_answer() {
    return plain(
        400,
        R"x({"jsonrpc":"2.0","error":{"code":-32000,"message":"Bad Request: Unsupported protocol version: )x"
        R"x(2026-07-28 (supported versions: 2025-11-25, 2025-06-18, 2025-03-26, 2024-11-05, 2024-10-07)"},)x"
        R"x("id":null})x",
        "application/json");
}

json discover() {
    return {{"resultType", "complete"},
            {"supportedVersions", {"2026-07-28"}},
            {"capabilities", {{"tools", json::object()}}},
            {"ttlMs", 60000},
            {"cacheScope", "public"}};
}

json initialize_result(std::string version = "2025-11-25") {
    return {{"protocolVersion", version},
            {"capabilities", {{"tools", json::object()}}},
            {"serverInfo", {{"name", "agent"}, {"version", "1"}}}};
}

json tool(std::string name, json properties = {{"message", {{"type", "string"}}}}) {
    return {{"name", name}, {"inputSchema", {{"type", "object"}, {"properties", properties}}}};
}

json tools(std::vector<json> list, long long ttl_ms = 60000) {
    return {{"tools", list}, {"ttlMs", ttl_ms}, {"cacheScope", "public"}};
}

json text_result(std::string text) {
    return {{"content", {{{"type", "text"}, {"text", text}}}}};
}

AgentTurn turn(std::string tool_name = "reply") {
    AgentTurn t;
    t.agent_id = 7;
    t.endpoint = "http://127.0.0.1:3101/mcp";
    t.tool_name = tool_name;
    t.session_id = "42";
    t.message = "What time do you open?";
    t.from = "+14155550100";
    t.to = "+14155550199";
    t.request_id = "rq-1";
    t.history = json::array({{{"role", "user"}, {"content", "hi"}}});
    t.deadline = std::chrono::milliseconds(5000);
    return t;
}

class McpClientTest : public ::testing::Test {
  protected:
    // run_turn — one call, run to completion; asserts the callback ran exactly once.
    AgentOutcome run_turn(const AgentTurn &t) {
        int reports = 0;
        AgentOutcome got;
        client.call(t, [&](AgentOutcome outcome) {
            ++reports;
            got = std::move(outcome);
        });
        agent.run();
        EXPECT_EQ(reports, 1);
        return got;
    }

    // script_modern_until_call — a modern server that lists `listed` tools.
    void script_modern_until_call(std::vector<json> listed = {tool("reply")}) {
        agent.answer(result(discover()));
        agent.answer(result(tools(listed)));
    }

    // script_legacy_until_call — an SDK 1.x-like server with a session.
    void script_legacy_until_call(std::vector<json> listed = {tool("reply")},
                                  std::string session = "sess-1") {
        agent.answer(sdk1_probe_answer());
        agent.answer(result(initialize_result(), {{"Mcp-Session-Id", session}}));
        agent.answer(accepted());
        agent.answer(result(tools(listed)));
    }

    ScriptedAgent agent;
    McpClient client{agent, "1.2.3"};
};

}  // namespace

// ---- modern era
// -------------------------------------------------------------------------------------------------

TEST_F(McpClientTest, ModernDiscoverResultThenListThenCall) {
    script_modern_until_call();
    agent.answer(result(text_result("We open at 7.")));
    AgentOutcome outcome = run_turn(turn());
    EXPECT_TRUE(outcome.ok) << outcome.error;
    EXPECT_EQ(outcome.reply, "We open at 7.");
    EXPECT_EQ(agent.methods(), (std::vector<std::string>{"server/discover", "tools/list", "tools/call"}));
}

TEST_F(McpClientTest, ModernRequestsCarryHeadersAndMeta) {
    script_modern_until_call();
    agent.answer(result(text_result("ok")));
    run_turn(turn());
    for (const auto &sent : agent.sent()) {
        EXPECT_EQ(sent.request.method, "POST");
        EXPECT_EQ(sent.request.url, "http://127.0.0.1:3101/mcp");
        EXPECT_EQ(sent.header("Content-Type"), "application/json");
        EXPECT_EQ(sent.header("Accept"), "application/json, text/event-stream");
        EXPECT_EQ(sent.header("MCP-Protocol-Version"), "2026-07-28");
        EXPECT_EQ(sent.header("Mcp-Method"), sent.method());
        EXPECT_FALSE(sent.has_header("Mcp-Session-Id"));
        const json &meta = sent.body["params"]["_meta"];
        EXPECT_EQ(meta["io.modelcontextprotocol/protocolVersion"], "2026-07-28");
        EXPECT_EQ(meta["io.modelcontextprotocol/clientCapabilities"], json::object());
        EXPECT_EQ(meta["io.modelcontextprotocol/clientInfo"],
                  json({{"name", "darkspere-worker"}, {"version", "1.2.3"}}));
        EXPECT_EQ(sent.body["jsonrpc"], "2.0");
    }
    const auto &call = agent.sent().back();
    EXPECT_EQ(call.header("Mcp-Name"), "reply");
    EXPECT_FALSE(agent.sent()[1].has_header("Mcp-Name"));  // tools/list names nothing
    EXPECT_EQ(call.body["params"]["name"], "reply");
    EXPECT_EQ(call.body["params"]["arguments"], json({{"message", "What time do you open?"}}));
}

TEST_F(McpClientTest, IdsIncreasePerClient) {
    script_modern_until_call();
    agent.answer(result(text_result("ok")));
    run_turn(turn());
    long long previous = 0;
    for (const auto &sent : agent.sent()) {
        EXPECT_GT(sent.body["id"].get<long long>(), previous);
        previous = sent.body["id"].get<long long>();
    }
}

TEST_F(McpClientTest, EraAndToolListAreCachedAcrossTurns) {
    script_modern_until_call();
    agent.answer(result(text_result("one")));
    agent.answer(result(text_result("two")));
    EXPECT_EQ(run_turn(turn()).reply, "one");
    EXPECT_EQ(run_turn(turn()).reply, "two");
    EXPECT_EQ(agent.methods(),
              (std::vector<std::string>{"server/discover", "tools/list", "tools/call", "tools/call"}));
}

TEST_F(McpClientTest, ZeroTtlToolListIsReadAgainNextTurn) {
    agent.answer(result(discover()));
    agent.answer(result(tools({tool("reply")}, 0)));
    agent.answer(result(text_result("one")));
    agent.answer(result(tools({tool("reply")}, 0)));
    agent.answer(result(text_result("two")));
    run_turn(turn());
    run_turn(turn());
    EXPECT_EQ(agent.methods(), (std::vector<std::string>{"server/discover", "tools/list", "tools/call",
                                                         "tools/list", "tools/call"}));
}

TEST_F(McpClientTest, UnsupportedVersionErrorWithModernSupportStaysModern) {
    agent.answer(rpc_error(400, -32022, {{"supported", {"2026-07-28", "2025-11-25"}}, {"requested", "x"}}));
    agent.answer(result(tools({tool("reply")})));
    agent.answer(result(text_result("ok")));
    EXPECT_TRUE(run_turn(turn()).ok);
    EXPECT_EQ(agent.sent()[1].header("MCP-Protocol-Version"), "2026-07-28");
}

TEST_F(McpClientTest, UnsupportedVersionErrorWithLegacyOnlyOffersNewestMutualVersion) {
    agent.answer(rpc_error(400, -32022, {{"supported", {"2025-06-18", "2025-03-26"}}}));
    agent.answer(result(initialize_result("2025-06-18")));
    agent.answer(accepted());
    agent.answer(result(tools({tool("reply")})));
    agent.answer(result(text_result("ok")));
    EXPECT_TRUE(run_turn(turn()).ok);
    EXPECT_EQ(agent.sent()[1].method(), "initialize");
    EXPECT_EQ(agent.sent()[1].body["params"]["protocolVersion"], "2025-06-18");
    EXPECT_EQ(agent.sent()[2].header("MCP-Protocol-Version"), "2025-06-18");
}

TEST_F(McpClientTest, ToolNameNeedingEncodingIsBase64InMcpName) {
    script_modern_until_call({tool("r\xC3\xA9ponse")});
    agent.answer(result(text_result("ok")));
    EXPECT_TRUE(run_turn(turn("r\xC3\xA9ponse")).ok);
    EXPECT_EQ(agent.sent().back().header("Mcp-Name"), "=?base64?csOpcG9uc2U=?=");
    EXPECT_EQ(agent.sent().back().body["params"]["name"], "r\xC3\xA9ponse");  // the body keeps the real name
}

TEST_F(McpClientTest, XMcpHeaderAnnotationsBecomeMcpParamHeaders) {
    script_modern_until_call(
        {tool("reply", {{"message", {{"type", "string"}}},
                        {"session_id", {{"type", "string"}, {"x-mcp-header", "Session"}}}})});
    agent.answer(result(text_result("ok")));
    EXPECT_TRUE(run_turn(turn()).ok);
    EXPECT_EQ(agent.sent().back().header("Mcp-Param-Session"), "42");
}

TEST_F(McpClientTest, ModernToolListIsPagedThroughNextCursor) {
    agent.answer(result(discover()));
    agent.answer(result({{"tools", {tool("other")}}, {"nextCursor", "page2"}, {"ttlMs", 60000}}));
    agent.answer(result({{"tools", {tool("reply")}}, {"ttlMs", 60000}}));
    agent.answer(result(text_result("ok")));
    EXPECT_TRUE(run_turn(turn()).ok);
    EXPECT_FALSE(agent.sent()[1].body["params"].contains("cursor"));
    EXPECT_EQ(agent.sent()[2].body["params"]["cursor"], "page2");
}

TEST_F(McpClientTest, StaleModernEraIsReprobedOnce) {
    script_modern_until_call();
    agent.answer(result(text_result("one")));
    run_turn(turn());
    // The server was replaced by a legacy one: the call is rejected the way SDK 1.x rejects modern requests.
    agent.answer(sdk1_probe_answer());
    agent.answer(sdk1_probe_answer());
    agent.answer(result(initialize_result()));
    agent.answer(accepted());
    agent.answer(result(tools({tool("reply")})));
    agent.answer(result(text_result("two")));
    AgentOutcome outcome = run_turn(turn());
    EXPECT_EQ(outcome.reply, "two") << outcome.error;
}

// ---- legacy era
// -------------------------------------------------------------------------------------------------

TEST_F(McpClientTest, LegacyFallbackOnSdkOneProbeAnswer) {
    script_legacy_until_call();
    agent.answer(result(text_result("legacy hi")));
    AgentOutcome outcome = run_turn(turn());
    EXPECT_EQ(outcome.reply, "legacy hi") << outcome.error;
    EXPECT_EQ(agent.methods(),
              (std::vector<std::string>{"server/discover", "initialize", "notifications/initialized",
                                        "tools/list", "tools/call"}));
    const json &init = agent.sent()[1].body;
    EXPECT_EQ(init["params"]["protocolVersion"], "2025-11-25");
    EXPECT_EQ(init["params"]["capabilities"], json::object());
    EXPECT_EQ(init["params"]["clientInfo"], json({{"name", "darkspere-worker"}, {"version", "1.2.3"}}));
    EXPECT_FALSE(agent.sent()[2].body.contains("id"));  // a notification
}

struct ProbeCase {
    const char *name;
    AnswerFor answer;
};

class McpLegacyFallbackTest : public McpClientTest, public ::testing::WithParamInterface<ProbeCase> {};

TEST_P(McpLegacyFallbackTest, FallsBackToInitialize) {
    agent.answer(GetParam().answer);
    agent.answer(result(initialize_result()));
    agent.answer(accepted());
    agent.answer(result(tools({tool("reply")})));
    agent.answer(result(text_result("ok")));
    AgentOutcome outcome = run_turn(turn());
    EXPECT_TRUE(outcome.ok) << outcome.error;
    EXPECT_EQ(agent.sent()[1].method(), "initialize");
}

INSTANTIATE_TEST_SUITE_P(
    ProbeAnswers, McpLegacyFallbackTest,
    ::testing::Values(ProbeCase{"Status400NonModernBody",
                                plain(400, R"({"error":"bad request"})", "application/json")},
                      ProbeCase{"Status400Empty", plain(400)}, ProbeCase{"Status404Empty", plain(404)},
                      ProbeCase{"Status404Html", plain(404, "<h1>Not Found</h1>", "text/html")},
                      ProbeCase{"Status405", plain(405)},
                      ProbeCase{"Status200MethodNotFound", rpc_error(200, -32601)},
                      ProbeCase{"SdkOne", sdk1_probe_answer()}),
    [](const ::testing::TestParamInfo<ProbeCase> &info) { return std::string(info.param.name); });

TEST_F(McpClientTest, LegacySessionAndVersionHeadersOnEveryLaterRequest) {
    agent.answer(plain(405));
    agent.answer(result(initialize_result("2025-06-18"), {{"Mcp-Session-Id", "sess-abc"}}));
    agent.answer(accepted());
    agent.answer(result(tools({tool("reply")})));
    agent.answer(result(text_result("ok")));
    run_turn(turn());
    const auto &sent = agent.sent();
    EXPECT_FALSE(sent[1].has_header("Mcp-Session-Id"));  // initialize opens the session
    EXPECT_FALSE(sent[1].has_header("Mcp-Method"));      // no modern headers in the legacy era
    for (size_t i = 2; i < sent.size(); ++i) {
        EXPECT_EQ(sent[i].header("Mcp-Session-Id"), "sess-abc") << sent[i].method();
        EXPECT_EQ(sent[i].header("MCP-Protocol-Version"), "2025-06-18") << sent[i].method();
        EXPECT_EQ(sent[i].header("Accept"), "application/json, text/event-stream");
        EXPECT_FALSE(sent[i].body.value("params", json::object()).contains("_meta"));
    }
}

TEST_F(McpClientTest, LegacySessionIsReusedAcrossTurns) {
    script_legacy_until_call();
    agent.answer(result(text_result("one")));
    agent.answer(result(text_result("two")));
    run_turn(turn());
    EXPECT_EQ(run_turn(turn()).reply, "two");
    EXPECT_EQ(agent.sent().back().header("Mcp-Session-Id"), "sess-1");
    EXPECT_EQ(agent.sent().size(), 6u);
}

TEST_F(McpClientTest, Legacy404WithSessionReinitializesAndRetriesOnce) {
    script_legacy_until_call();
    agent.answer(result(text_result("one")));
    run_turn(turn());
    agent.answer(plain(404,
                       R"({"jsonrpc":"2.0","error":{"code":-32001,"message":"Session not found"},"id":null})",
                       "application/json"));
    agent.answer(result(initialize_result(), {{"Mcp-Session-Id", "sess-2"}}));
    agent.answer(accepted());
    agent.answer(result(text_result("after reinit")));
    AgentOutcome outcome = run_turn(turn());
    EXPECT_EQ(outcome.reply, "after reinit") << outcome.error;
    const auto &sent = agent.sent();
    ASSERT_EQ(sent.size(), 9u);
    EXPECT_EQ(sent[5].header("Mcp-Session-Id"), "sess-1");
    EXPECT_EQ(sent[6].method(), "initialize");
    EXPECT_FALSE(sent[6].has_header("Mcp-Session-Id"));
    EXPECT_EQ(sent[8].method(), "tools/call");
    EXPECT_EQ(sent[8].header("Mcp-Session-Id"), "sess-2");
}

TEST_F(McpClientTest, ConcurrentTurnsEachKeepTheSessionTheyHandshook) {
    script_legacy_until_call();
    agent.answer(result(text_result("warm-up")));
    run_turn(turn());
    std::vector<AgentOutcome> outcomes;
    client.call(turn(), [&](AgentOutcome o) { outcomes.push_back(std::move(o)); });
    client.call(turn(), [&](AgentOutcome o) { outcomes.push_back(std::move(o)); });
    agent.answer(plain(404));  // both turns find sess-1 gone
    agent.answer(plain(404));
    agent.answer(result(initialize_result(), {{"Mcp-Session-Id", "sess-2"}}));
    agent.answer(result(initialize_result(), {{"Mcp-Session-Id", "sess-3"}}));
    agent.answer(accepted());
    agent.answer(accepted());
    agent.answer(result(text_result("a")));
    agent.answer(result(text_result("b")));
    agent.run();
    ASSERT_EQ(outcomes.size(), 2u);
    EXPECT_TRUE(outcomes[0].ok && outcomes[1].ok);
    const auto &sent = agent.sent();
    EXPECT_EQ(sent[sent.size() - 2].header("Mcp-Session-Id"), "sess-2");
    EXPECT_EQ(sent[sent.size() - 1].header("Mcp-Session-Id"), "sess-3");
}

TEST_F(McpClientTest, LegacySecond404FailsTheTurn) {
    script_legacy_until_call();
    agent.answer(plain(404));
    agent.answer(result(initialize_result(), {{"Mcp-Session-Id", "sess-2"}}));
    agent.answer(accepted());
    agent.answer(plain(404));
    AgentOutcome outcome = run_turn(turn());
    EXPECT_FALSE(outcome.ok);
    EXPECT_TRUE(agent.script_done());
}

TEST_F(McpClientTest, LegacyServerWithoutSessionIdSendsNoSessionHeader) {
    agent.answer(plain(400));
    agent.answer(result(initialize_result()));
    agent.answer(accepted());
    agent.answer(result(tools({tool("reply")})));
    agent.answer(result(text_result("ok")));
    EXPECT_TRUE(run_turn(turn()).ok);
    EXPECT_FALSE(agent.sent().back().has_header("Mcp-Session-Id"));
    EXPECT_EQ(agent.sent().back().header("MCP-Protocol-Version"), "2025-11-25");
}

TEST_F(McpClientTest, LegacyUnsupportedNegotiatedVersionFails) {
    agent.answer(plain(400));
    agent.answer(result(initialize_result("2024-11-05")));
    AgentOutcome outcome = run_turn(turn());
    EXPECT_FALSE(outcome.ok);
    EXPECT_NE(outcome.error.find("2024-11-05"), std::string::npos);
}

TEST_F(McpClientTest, LegacyHandshakeRefusedMarksAgentMisconfigured) {
    agent.answer(plain(400));
    agent.answer(plain(400));
    AgentOutcome outcome = run_turn(turn());
    EXPECT_FALSE(outcome.ok);
    EXPECT_EQ(outcome.error, "legacy handshake failed: http 400");
}

TEST_F(McpClientTest, LegacyToolArgumentsFollowInputSchema) {
    script_legacy_until_call({tool("reply", {{"message", {{"type", "string"}}},
                                             {"session_id", {{"type", "string"}}},
                                             {"history", {{"type", "array"}}}})});
    agent.answer(result(text_result("ok")));
    run_turn(turn());
    const json &arguments = agent.sent().back().body["params"]["arguments"];
    EXPECT_EQ(arguments, json({{"message", "What time do you open?"},
                               {"session_id", "42"},
                               {"history", {{{"role", "user"}, {"content", "hi"}}}}}));
}

// ---- responses as SSE
// -------------------------------------------------------------------------------------------

TEST_F(McpClientTest, SseResponseWithPrimingEventAndNotificationsFirst) {
    agent.answer(sdk1_probe_answer());
    agent.answer(sse_result(initialize_result()));
    agent.answer(accepted());
    agent.answer(sse_result(tools({tool("reply")})));
    agent.answer(sse_result(
        text_result("from sse"),
        "id: prime\ndata: \n\n: keep-alive\n\nevent: message\ndata: "
        "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"progress\":1}}\n\n"));
    AgentOutcome outcome = run_turn(turn());
    EXPECT_EQ(outcome.reply, "from sse") << outcome.error;
    EXPECT_TRUE(agent.sent().back().stopped_early);  // the trailing notification was never read
}

TEST_F(McpClientTest, SseWithCrLfLineEnds) {
    script_modern_until_call();
    agent.answer([](const json &request) {
        std::string body =
            "event: message\r\ndata: " +
            json{{"jsonrpc", "2.0"}, {"id", request["id"]}, {"result", text_result("crlf")}}.dump() +
            "\r\n\r\n";
        return Answer{200, {{"Content-Type", "text/event-stream"}}, body};
    });
    EXPECT_EQ(run_turn(turn()).reply, "crlf");
}

TEST_F(McpClientTest, SseStreamThatEndsWithoutOurResponseFails) {
    script_modern_until_call();
    agent.answer(plain(200, "id: prime\ndata:\n\n", "text/event-stream"));
    AgentOutcome outcome = run_turn(turn());
    EXPECT_FALSE(outcome.ok);
}

// ---- results and failures
// ---------------------------------------------------------------------------------------

TEST_F(McpClientTest, ToolNotListedFails) {
    script_modern_until_call({tool("other")});
    AgentOutcome outcome = run_turn(turn("reply"));
    EXPECT_FALSE(outcome.ok);
    EXPECT_EQ(outcome.error, "tool reply not offered by agent");
}

TEST_F(McpClientTest, IsErrorFailsWithoutLeakingText) {
    script_modern_until_call();
    agent.answer(
        result({{"isError", true}, {"content", {{{"type", "text"}, {"text", "Traceback: secret"}}}}}));
    AgentOutcome outcome = run_turn(turn());
    EXPECT_FALSE(outcome.ok);
    EXPECT_EQ(outcome.reply, std::nullopt);
    EXPECT_EQ(outcome.error.find("secret"), std::string::npos);
}

TEST_F(McpClientTest, InputRequiredFails) {
    script_modern_until_call();
    agent.answer(result({{"resultType", "input_required"}, {"inputRequests", json::object()}}));
    EXPECT_FALSE(run_turn(turn()).ok);
}

TEST_F(McpClientTest, JsonRpcErrorFails) {
    script_modern_until_call();
    agent.answer(rpc_error(200, -32603));
    AgentOutcome outcome = run_turn(turn());
    EXPECT_FALSE(outcome.ok);
    EXPECT_EQ(outcome.error, "mcp error -32603");
}

TEST_F(McpClientTest, InvalidParamsRereadsToolListAndRetriesOnce) {
    script_modern_until_call();
    agent.answer(rpc_error(200, -32602));
    agent.answer(
        result(tools({tool("reply", {{"message", {{"type", "string"}}}, {"from", {{"type", "string"}}}})})));
    agent.answer(result(text_result("now with from")));
    AgentOutcome outcome = run_turn(turn());
    EXPECT_EQ(outcome.reply, "now with from") << outcome.error;
    EXPECT_EQ(agent.sent().back().body["params"]["arguments"]["from"], "+14155550100");
}

TEST_F(McpClientTest, HeaderMismatchTwiceFails) {
    script_modern_until_call();
    agent.answer(rpc_error(400, -32020));
    agent.answer(result(tools({tool("reply")})));
    agent.answer(rpc_error(400, -32020));
    AgentOutcome outcome = run_turn(turn());
    EXPECT_FALSE(outcome.ok);
    EXPECT_EQ(outcome.error, "mcp error -32020");
}

TEST_F(McpClientTest, ServerErrorFails) {
    script_modern_until_call();
    agent.answer(plain(503, "busy"));
    AgentOutcome outcome = run_turn(turn());
    EXPECT_FALSE(outcome.ok);
    EXPECT_EQ(outcome.error, "http 503");
}

TEST_F(McpClientTest, ProbeServerErrorFailsAndIsNotCached) {
    agent.answer(plain(500));
    EXPECT_EQ(run_turn(turn()).error, "http 500");
    script_modern_until_call();
    agent.answer(result(text_result("ok")));
    EXPECT_TRUE(run_turn(turn()).ok);
}

TEST_F(McpClientTest, UnparsableBodyFails) {
    script_modern_until_call();
    agent.answer(plain(200, "<html>proxy error</html>", "text/html"));
    AgentOutcome outcome = run_turn(turn());
    EXPECT_FALSE(outcome.ok);
    EXPECT_EQ(outcome.error, "unparsable response");
}

TEST_F(McpClientTest, TransportErrorFails) {
    agent.answer([](const json &) {
        Answer a;
        a.status = 0;
        a.transport_error = "connection refused";
        return a;
    });
    AgentOutcome outcome = run_turn(turn());
    EXPECT_FALSE(outcome.ok);
    EXPECT_EQ(outcome.error, "transport error: connection refused");
}

TEST_F(McpClientTest, EmptyTextIsOkWithoutReply) {
    script_modern_until_call();
    agent.answer(result(text_result("   ")));
    AgentOutcome outcome = run_turn(turn());
    EXPECT_TRUE(outcome.ok);
    EXPECT_EQ(outcome.reply, std::nullopt);
}

// ---- deadlines
// --------------------------------------------------------------------------------------------------

TEST_F(McpClientTest, EveryRequestFitsInsideTheTurnDeadline) {
    script_legacy_until_call();
    agent.answer(result(text_result("ok")));
    AgentTurn t = turn();
    t.deadline = std::chrono::milliseconds(1500);
    run_turn(t);
    for (const auto &sent : agent.sent()) {
        EXPECT_LE(sent.request.deadline.count(), 1500);
        EXPECT_GT(sent.request.deadline.count(), 0);
    }
}

TEST_F(McpClientTest, ModernTimeoutFailsWithoutCancelNotification) {
    script_modern_until_call();
    agent.answer(timeout());
    AgentOutcome outcome = run_turn(turn());
    EXPECT_FALSE(outcome.ok);
    EXPECT_EQ(outcome.error, "timeout after 5000 ms");
    EXPECT_EQ(agent.sent().size(), 3u);
}

TEST_F(McpClientTest, LegacyTimeoutSendsCancelledNotification) {
    script_legacy_until_call();
    agent.answer(timeout());
    agent.answer(accepted());  // the notifications/cancelled
    AgentOutcome outcome = run_turn(turn());
    EXPECT_FALSE(outcome.ok);
    EXPECT_EQ(outcome.error, "timeout after 5000 ms");
    const auto &sent = agent.sent();
    ASSERT_EQ(sent.size(), 6u);
    EXPECT_EQ(sent[5].method(), "notifications/cancelled");
    EXPECT_EQ(sent[5].body["params"]["requestId"], sent[4].body["id"]);
    EXPECT_EQ(sent[5].body["params"]["reason"], "deadline");
    EXPECT_EQ(sent[5].header("Mcp-Session-Id"), "sess-1");
}

TEST_F(McpClientTest, ExhaustedBudgetFailsBeforeSending) {
    AgentTurn t = turn();
    t.deadline = std::chrono::milliseconds(0);
    AgentOutcome outcome = run_turn(t);
    EXPECT_FALSE(outcome.ok);
    EXPECT_EQ(outcome.error, "timeout after 0 ms");
    EXPECT_TRUE(agent.sent().empty());
}

TEST_F(McpClientTest, LatencyIsMeasured) {
    script_modern_until_call();
    agent.answer(result(text_result("ok")));
    EXPECT_GE(run_turn(turn()).latency_ms, 0);
}

// ---- what an agent may send back, and whom a cache belongs to (issue #10)
// -----------------------------------------------------------------------------------------------------------

TEST_F(McpClientTest, TwoAgentsAtOneUrlEachInitializeTheirOwnSession) {
    // Two tenants' agents registered at the same URL: each gets its own era probe, handshake and session.
    AgentTurn tenant_a = turn();
    tenant_a.agent_id = 7;
    AgentTurn tenant_b = turn();
    tenant_b.agent_id = 8;
    ASSERT_EQ(tenant_a.endpoint, tenant_b.endpoint);

    script_legacy_until_call({tool("reply")}, "sess-a");
    agent.answer(result(text_result("for a")));
    EXPECT_EQ(run_turn(tenant_a).reply, "for a");
    script_legacy_until_call({tool("reply")}, "sess-b");
    agent.answer(result(text_result("for b")));
    EXPECT_EQ(run_turn(tenant_b).reply, "for b");
    agent.answer(result(text_result("a again")));
    agent.answer(result(text_result("b again")));
    EXPECT_EQ(run_turn(tenant_a).reply, "a again");
    EXPECT_EQ(run_turn(tenant_b).reply, "b again");

    const auto &sent = agent.sent();
    ASSERT_EQ(sent.size(), 12u);
    EXPECT_EQ(agent.methods(), (std::vector<std::string>{
                                   "server/discover", "initialize", "notifications/initialized", "tools/list",
                                   "tools/call", "server/discover", "initialize", "notifications/initialized",
                                   "tools/list", "tools/call", "tools/call", "tools/call"}));
    EXPECT_EQ(sent[4].header("Mcp-Session-Id"), "sess-a");
    EXPECT_FALSE(sent[6].has_header("Mcp-Session-Id"));  // B's initialize does not travel in A's session
    for (size_t i : {7, 8, 9})
        EXPECT_EQ(sent[i].header("Mcp-Session-Id"), "sess-b") << sent[i].method();
    EXPECT_EQ(sent[10].header("Mcp-Session-Id"), "sess-a");
    EXPECT_EQ(sent[11].header("Mcp-Session-Id"), "sess-b");
}

TEST_F(McpClientTest, EveryRequestCarriesTheTurnsResponseCap) {
    AgentTurn t = turn();
    t.max_response_bytes = 12345;
    script_legacy_until_call();
    agent.answer(result(text_result("ok")));
    run_turn(t);
    for (const auto &sent : agent.sent())
        EXPECT_EQ(sent.request.max_response_bytes, 12345u) << sent.method();
}

TEST_F(McpClientTest, OversizedResponseFailsTheTurn) {
    script_modern_until_call();
    agent.answer([](const json &) {
        Answer a;
        a.too_large = true;
        return a;
    });
    AgentOutcome outcome = run_turn(turn());
    EXPECT_FALSE(outcome.ok);
    EXPECT_EQ(outcome.error, "agent response larger than 262144 bytes");
}

TEST_F(McpClientTest, DeeplyNestedContentFailsTheTurn) {
    script_modern_until_call();
    agent.answer([](const json &request) {
        std::string deep = std::string(200000, '[') + std::string(200000, ']');
        return Answer{
            200, json_type(),
            R"({"jsonrpc":"2.0","id":)" + request["id"].dump() + R"(,"result":{"content":)" + deep + "}}"};
    });
    AgentOutcome outcome = run_turn(turn());
    EXPECT_FALSE(outcome.ok);
}

// ---- request signing (X-DarkSpere-Signature)
// ------------------------------------------------------------------

TEST_F(McpClientTest, EveryPostIsSignedInitializeNotificationsAndCancelIncluded) {
    script_legacy_until_call();
    agent.answer(timeout());
    agent.answer(accepted());  // the notifications/cancelled
    AgentTurn t = turn();
    t.signing_secrets = {"dsk_new", "dsk_old"};
    run_turn(t);
    const auto &sent = agent.sent();
    ASSERT_EQ(sent.size(), 6u);  // probe, initialize, initialized, tools/list, tools/call, cancelled
    for (const auto &s : sent) {
        std::string header = s.header("X-DarkSpere-Signature");
        EXPECT_EQ(header,
                  agent_signature_header(t.signing_secrets, std::stoll(header.substr(2)), s.request.body))
            << s.method();
        EXPECT_NE(header.find(",v1="), header.rfind(",v1="))
            << "both signatures during grace: " << s.method();
    }
    EXPECT_EQ(sent[1].method(), "initialize");
}

TEST_F(McpClientTest, NoSecretsNoSignatureHeader) {
    script_modern_until_call();
    agent.answer(result(text_result("ok")));
    run_turn(turn());
    for (const auto &s : agent.sent()) {
        EXPECT_FALSE(s.has_header("X-DarkSpere-Signature")) << s.method();
    }
}

// ---- health probes and tool discovery (issue #13)
// ------------------------------------------------------------------------------

namespace {

// ToolsSeen — what the tools listener received, in order.
struct ToolsSeen {
    std::vector<std::pair<long long, json>> reports;
    McpToolsListener listener() {
        return [this](long long agent_id, json tools) { reports.emplace_back(agent_id, std::move(tools)); };
    }
};

AgentOutcome run_probe(McpClient &client, ScriptedAgent &agent, const AgentTurn &t) {
    int reports = 0;
    AgentOutcome got;
    client.ping(t, [&](AgentOutcome outcome) {
        ++reports;
        got = std::move(outcome);
    });
    agent.run();
    EXPECT_EQ(reports, 1);
    return got;
}

}  // namespace

TEST_F(McpClientTest, ProbePingsThenListsToolsAndReportsThem) {
    ToolsSeen seen;
    client.set_tools_listener(seen.listener());
    json weather = tool("weather");
    weather["description"] = "the forecast";
    agent.answer(result(discover()));
    agent.answer(result(json::object()));  // ping
    agent.answer(result(tools({tool("chat"), weather})));
    AgentOutcome outcome = run_probe(client, agent, turn(""));
    EXPECT_TRUE(outcome.ok) << outcome.error;
    EXPECT_EQ(agent.methods(), (std::vector<std::string>{"server/discover", "ping", "tools/list"}));
    ASSERT_EQ(seen.reports.size(), 1u);
    EXPECT_EQ(seen.reports[0].first, 7);
    EXPECT_EQ(seen.reports[0].second,
              json::parse(R"([{"name":"chat"},{"name":"weather","description":"the forecast"}])"));
}

TEST_F(McpClientTest, ProbeFallsBackToToolsListWhenPingIsMethodNotFound) {
    ToolsSeen seen;
    client.set_tools_listener(seen.listener());
    agent.answer(result(discover()));
    agent.answer(rpc_error(200, -32601));  // no ping on this server
    agent.answer(result(tools({tool("chat")})));
    AgentOutcome outcome = run_probe(client, agent, turn(""));
    EXPECT_TRUE(outcome.ok) << outcome.error;
    EXPECT_EQ(agent.methods(), (std::vector<std::string>{"server/discover", "ping", "tools/list"}));
    EXPECT_EQ(seen.reports.size(), 1u);
}

TEST_F(McpClientTest, ProbeWithoutPingFailsWhenToolsListFailsToo) {
    agent.answer(result(discover()));
    agent.answer(rpc_error(200, -32601));
    agent.answer(rpc_error(200, -32601));
    AgentOutcome outcome = run_probe(client, agent, turn(""));
    EXPECT_FALSE(outcome.ok);
    EXPECT_EQ(outcome.error, "tools/list failed: mcp error -32601");
}

TEST_F(McpClientTest, ProbePassesOnPingWhenOnlyToolsListFails) {
    agent.answer(result(discover()));
    agent.answer(result(json::object()));
    agent.answer(plain(400, "nope"));
    AgentOutcome outcome = run_probe(client, agent, turn(""));
    EXPECT_TRUE(outcome.ok) << outcome.error;
}

TEST_F(McpClientTest, DefaultToolIsChatElseTheOnlyTool) {
    script_modern_until_call({tool("other"), tool("chat")});
    agent.answer(result(text_result("from chat")));
    AgentOutcome outcome = run_turn(turn(""));
    EXPECT_TRUE(outcome.ok) << outcome.error;
    EXPECT_EQ(agent.sent().back().body["params"]["name"], "chat");

    ScriptedAgent only_agent;
    McpClient only_client{only_agent, "1.2.3"};
    only_agent.answer(result(discover()));
    only_agent.answer(result(tools({tool("answer")})));
    only_agent.answer(result(text_result("from the only tool")));
    AgentOutcome only;
    only_client.call(turn(""), [&](AgentOutcome o) { only = std::move(o); });
    only_agent.run();
    EXPECT_TRUE(only.ok) << only.error;
    EXPECT_EQ(only_agent.sent().back().body["params"]["name"], "answer");
}

TEST_F(McpClientTest, NoDefaultToolAmongSeveralFailsNamingTheSetting) {
    script_modern_until_call({tool("a"), tool("b")});
    AgentOutcome outcome = run_turn(turn(""));
    EXPECT_FALSE(outcome.ok);
    EXPECT_EQ(outcome.error, "agent offers 2 tools and none named chat: set the agent's tool_name");
}

TEST_F(McpClientTest, ATurnReportsItsToolListOnlyWhenItChanged) {
    ToolsSeen seen;
    client.set_tools_listener(seen.listener());
    agent.answer(result(discover()));
    agent.answer(result(tools({tool("chat")}, 0)));
    agent.answer(result(text_result("one")));
    agent.answer(result(tools({tool("chat")}, 0)));
    agent.answer(result(text_result("two")));
    EXPECT_TRUE(run_turn(turn("")).ok);
    EXPECT_TRUE(run_turn(turn("")).ok);
    EXPECT_EQ(seen.reports.size(), 1u);
}

TEST_F(McpClientTest, ToolsListChangedNotificationStartsARefreshAfterTheTurn) {
    ToolsSeen seen;
    client.set_tools_listener(seen.listener());
    script_modern_until_call({tool("chat")});
    agent.answer(sse_result(text_result("hello"),
                            "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":"
                            "\"notifications/tools/list_changed\"}\n\n"));
    agent.answer(result(tools({tool("chat"), tool("news")})));
    AgentOutcome outcome = run_turn(turn(""));
    EXPECT_TRUE(outcome.ok) << outcome.error;
    EXPECT_EQ(outcome.reply, "hello");
    EXPECT_EQ(agent.methods(),
              (std::vector<std::string>{"server/discover", "tools/list", "tools/call", "tools/list"}));
    ASSERT_EQ(seen.reports.size(), 2u);
    EXPECT_EQ(seen.reports[1].second, json::parse(R"([{"name":"chat"},{"name":"news"}])"));
}

TEST(McpToolsSummary, BoundsCountAndDescriptionsAtCharacterBoundaries) {
    std::vector<McpTool> many(150);
    for (size_t i = 0; i < many.size(); i++) {
        many[i].name = "t" + std::to_string(i);
    }
    many[0].description = std::string(499, 'x') + "\xc3\xa9" + "tail";  // é straddles byte 500
    json summary = mcp_tools_summary(many);
    EXPECT_EQ(summary.size(), kMcpToolsStored);
    EXPECT_EQ(summary[0]["description"].get<std::string>(), std::string(499, 'x'));
    EXPECT_FALSE(summary[1].contains("description"));
}
