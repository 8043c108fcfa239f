// src/worker/mcp_client.cpp — runs conversation turns as MCP tools/call requests (dual era, Streamable HTTP).
//
// One McpCall object carries one turn through its steps, each a method that sends one HTTP request and names
// the next step in its callback:
//
//   start ─┬─ era cached ──────────────────────────┐
//          └─ probe (server/discover) ─────────────┤
//                                                  ├─ modern ─────────────────────────┐
//                                                  └─ legacy ─ ensure_session ────────┤
//                                                       (initialize + initialized)    │
//                                      ensure_tools (tools/list, cached, paged) ──────┘
//                                      call_tool (tools/call) ─ finish
//
// A health probe (ping) and a tool refresh (after notifications/tools/list_changed) end with tools/list; the
// list read from the server is reported to the tools listener (probes and refreshes always, turns when it
// changed), which stores it in the database.
//
// Recoveries, each at most once per call: legacy 404 with a session → re-initialize and resend; -32602 or
// -32020 on tools/call → re-read tools/list and call again; a modern request rejected as if by a legacy
// server (or with -32022) → forget the cached era and probe again.
//
// Era detection and the legacy handshake (start, probe, initialize) are in mcp_setup.cpp; the call's state
// and the shared caches in mcp_call.hpp.
#include "mcp_client.hpp"

#include <chrono>
#include <utility>
#include <vector>

#include "agent_json.hpp"
#include "agent_signature.hpp"
#include "mcp_call.hpp"
#include "mcp_sse.hpp"

namespace darkspere::worker {

namespace mcp_detail {

EndpointCache &McpCall::endpoint() {
    return state_->endpoints[endpoint_key_];
}

// after_setup — once the era (and a legacy session) is settled: a turn goes on to its tool, a health
// probe (turn_.probe_only) sends ping instead.
void McpCall::after_setup() {
    if (turn_.probe_only) {
        ping();
        return;
    }
    if (tools_only_) {
        listed_tools_.clear();
        list_tools_page(std::string(), 1);
        return;
    }
    ensure_tools();
}

// ping — the health probe: JSON-RPC ping, then tools/list (the tool list is refreshed at every probe); a
// server without ping (-32601) passes by answering tools/list.
void McpCall::ping() {
    send_request("ping", nlohmann::json::object(), {}, [self = shared_from_this()](const RpcReply &reply) {
        if (reply.has_result()) {
            self->pinged_ = true;
            self->listed_tools_.clear();
            self->list_tools_page(std::string(), 1);
            return;
        }
        if (reply.has_error() && reply.error_code() == kErrorMethodNotFound) {
            self->listed_tools_.clear();
            self->list_tools_page(std::string(), 1);
            return;
        }
        if (self->recover_stale_era(reply)) {
            return;
        }
        self->fail("ping failed: " + describe_failure(reply));
    });
}

void McpCall::pass() {
    AgentOutcome outcome;
    outcome.ok = true;
    finish(std::move(outcome));
}

// ensure_tools — the cached tool list when fresh, otherwise tools/list page by page.
void McpCall::ensure_tools() {
    EndpointCache &cache = endpoint();
    if (cache.tools_loaded && Clock::now() < cache.tools_expire) {
        call_tool();
        return;
    }
    listed_tools_.clear();
    list_tools_page(std::string(), 1);
}

void McpCall::list_tools_page(const std::string &cursor, int page) {
    nlohmann::json params = nlohmann::json::object();
    if (!cursor.empty()) {
        params["cursor"] = cursor;
    }
    send_request("tools/list", std::move(params), {},
                 [self = shared_from_this(), cursor, page](const RpcReply &reply) {
                     self->on_tools_page(reply, cursor, page);
                 });
}

void McpCall::on_tools_page(const RpcReply &reply, const std::string &cursor, int page) {
    if (!reply.has_result() || !reply.message["result"].is_object()) {
        if (pinged_) {
            pass();  // the probe passed on its ping; the tool list stays as last stored
            return;
        }
        if (recover_stale_era(reply)) {
            return;
        }
        fail("tools/list failed: " + describe_failure(reply));
        return;
    }
    const auto &result = reply.message["result"];
    if (page == 1) {
        tools_ttl_ = kDefaultToolListTtl;
        if (era_ == McpEra::modern && result.contains("ttlMs") && result["ttlMs"].is_number_unsigned()) {
            tools_ttl_ = std::chrono::milliseconds(result["ttlMs"].get<long long>());
        }
    }
    if (result.contains("tools") && result["tools"].is_array()) {
        for (const auto &entry : result["tools"]) {
            if (listed_tools_.size() == kMaxListedTools) {
                break;
            }
            if (auto tool = mcp_parse_tool(entry)) {
                listed_tools_.push_back(std::move(*tool));
            }
        }
    }
    std::string next = result.contains("nextCursor") && result["nextCursor"].is_string()
                           ? result["nextCursor"].get<std::string>()
                           : std::string();
    if (!next.empty() && next != cursor && page < kMaxToolListPages) {
        list_tools_page(next, page + 1);
        return;
    }
    EndpointCache &cache = endpoint();
    cache.tools = std::move(listed_tools_);
    cache.tools_loaded = true;
    cache.tools_expire = Clock::now() + tools_ttl_;
    report_tools(cache.tools);
    if (turn_.probe_only || tools_only_) {
        pass();  // a probe passes when the server answered ping or, without ping, tools/list
        return;
    }
    call_tool();
}

// report_tools — hands a tool list just read from the server to the listener: always for a probe or a
// refresh, for a turn only when it differs from the list last reported for the agent.
void McpCall::report_tools(const std::vector<McpTool> &tools) {
    if (!state_->on_tools) {
        return;
    }
    nlohmann::json summary = mcp_tools_summary(tools);
    std::string dumped = summary.dump();
    std::string &last = state_->reported_tools[turn_.agent_id];
    if (!turn_.probe_only && !tools_only_ && last == dumped) {
        return;
    }
    last = std::move(dumped);
    McpToolsListener listener = state_->on_tools;  // the listener may replace itself
    listener(turn_.agent_id, std::move(summary));
}

// call_tool — tools/call with the arguments the tool's inputSchema asks for.
void McpCall::call_tool() {
    const EndpointCache &cache = endpoint();
    std::string why;
    const McpTool *tool = mcp_choose_tool(cache.tools, turn_.tool_name, &why);
    if (tool == nullptr) {
        fail(why);
        return;
    }
    McpArguments arguments = mcp_tool_arguments(*tool, turn_);
    if (!arguments.error.empty()) {
        fail(arguments.error);
        return;
    }
    HeaderList headers =
        era_ == McpEra::modern ? mcp_param_headers(*tool, arguments.arguments) : HeaderList{};
    nlohmann::json params = {{"name", tool->name}, {"arguments", std::move(arguments.arguments)}};
    send_request("tools/call", std::move(params), std::move(headers),
                 [self = shared_from_this()](const RpcReply &reply) { self->on_tool_result(reply); });
}

void McpCall::on_tool_result(const RpcReply &reply) {
    if (reply.has_result()) {
        finish(mcp_outcome_from_result(reply.message["result"]));
        return;
    }
    long code = reply.error_code();
    if (reply.has_error() && (code == kErrorInvalidParams || code == kErrorHeaderMismatch)) {
        // The tool may have changed its schema (or its x-mcp-header annotations) since we listed it.
        endpoint().tools_loaded = false;
        if (!relisted_) {
            relisted_ = true;
            ensure_tools();
            return;
        }
    }
    if (recover_stale_era(reply)) {
        return;
    }
    if (reply.has_error()) {
        fail("mcp error " + std::to_string(code));
        return;
    }
    fail(describe_failure(reply));
}

// describe_failure — a short reason for a reply that carried no usable result.
std::string McpCall::describe_failure(const RpcReply &reply) {
    if (reply.has_error()) {
        return "mcp error " + std::to_string(reply.error_code());
    }
    if (!reply.http_ok()) {
        return "http " + std::to_string(reply.status);
    }
    if (reply.body_unparsable) {
        return "unparsable response";  // not JSON-RPC, or JSON nested more than 64 levels
    }
    return "response stream ended without a reply";
}

// headers_for — the headers of one POST in the current era (docs/protocols.md#mcp-headers).
HeaderList McpCall::headers_for(const std::string &method, const nlohmann::json &params) {
    HeaderList headers = {{"Content-Type", "application/json"},
                          {"Accept", "application/json, text/event-stream"}};
    if (era_ == McpEra::modern) {
        headers.emplace_back("MCP-Protocol-Version", modern_version_);
        headers.emplace_back("Mcp-Method", mcp_header_value(method));
        if (method == "tools/call" && params.contains("name") && params["name"].is_string()) {
            headers.emplace_back("Mcp-Name", mcp_header_value(params["name"].get<std::string>()));
        }
        return headers;
    }
    if (method == "initialize") {
        return headers;  // a new session: no session id, and the version is still being negotiated
    }
    if (!session_id_.empty()) {
        headers.emplace_back("Mcp-Session-Id", session_id_);
    }
    if (!negotiated_version_.empty()) {
        headers.emplace_back("MCP-Protocol-Version", negotiated_version_);
    }
    return headers;
}

// remaining — what is left of the turn's deadline; every request gets only that much.
std::chrono::milliseconds McpCall::remaining() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(deadline_at_ - Clock::now());
}

// send_request — POSTs one JSON-RPC request and hands the answer to on_reply. Timeouts, transport errors
// and 5xx end the call here; so does a legacy 404 after the one re-initialize it triggers.
void McpCall::send_request(const std::string &method, nlohmann::json params, HeaderList extra_headers,
                           ReplyHandler on_reply) {
    std::chrono::milliseconds budget = remaining();
    if (budget.count() <= 0) {
        fail_timeout();
        return;
    }
    long long id = state_->next_id++;
    HttpRequest request;
    request.url = turn_.endpoint;
    request.headers = headers_for(method, params);
    request.headers.insert(request.headers.end(), extra_headers.begin(), extra_headers.end());
    request.deadline = budget;
    request.max_response_bytes = turn_.max_response_bytes;
    request.on_body_chunk = stop_after_response(id);
    nlohmann::json body_params = params;
    if (era_ == McpEra::modern) {
        body_params["_meta"] = mcp_modern_meta(modern_version_, state_->client_version);
    }
    request.body = mcp_request(id, method, std::move(body_params)).dump();
    sign_agent_request(request, turn_.signing_secrets);
    McpEra sent_era = era_;
    state_->http.send(std::move(request),
                      [self = shared_from_this(), id, method, params = std::move(params),
                       extra_headers = std::move(extra_headers), on_reply = std::move(on_reply),
                       sent_era](HttpResponse response) mutable {
                          self->on_response(response, id, sent_era, method, std::move(params),
                                            std::move(extra_headers), std::move(on_reply));
                      });
}

void McpCall::on_response(const HttpResponse &response, long long id, McpEra sent_era,
                          const std::string &method, nlohmann::json params, HeaderList extra_headers,
                          ReplyHandler on_reply) {
    if (finished_) {
        return;
    }
    if (response.timed_out) {
        if (sent_era == McpEra::legacy && method != "initialize") {
            // Disconnecting does not cancel in the legacy era (docs/protocols.md#mcp-cancellation); a
            // modern server cancels on close.
            send_cancel(id);
        }
        fail_timeout();
        return;
    }
    if (response.too_large) {
        fail("agent " + response.error);
        return;
    }
    if (response.status == 0) {
        fail("transport error: " + (response.error.empty() ? std::string("no response") : response.error));
        return;
    }
    if (response.status >= 500) {
        fail("http " + std::to_string(response.status));
        return;
    }
    if (sent_era == McpEra::legacy && response.status == 404 && method != "initialize" &&
        !session_id_.empty()) {
        if (reinitialized_) {
            fail("mcp session lost twice (http 404)");
            return;
        }
        // The server forgot our session (restart, expiry): a fresh one, then the same request again. New
        // turns must not start in the dead session either.
        reinitialized_ = true;
        if (endpoint().session_id == session_id_) {
            endpoint().session_ready = false;
        }
        initialize([self = shared_from_this(), method, params = std::move(params),
                    extra_headers = std::move(extra_headers), on_reply = std::move(on_reply)]() mutable {
            self->send_request(method, std::move(params), std::move(extra_headers), std::move(on_reply));
        });
        return;
    }
    McpReplyParse parse = mcp_find_response(response, id);
    RpcReply reply;
    reply.status = response.status;
    reply.message = std::move(parse.message);
    reply.body_unparsable = parse.body_unparsable;
    reply.tools_list_changed = parse.tools_list_changed;
    reply.session_id = response.header("Mcp-Session-Id");
    if (reply.tools_list_changed) {
        // The cached list is stale; a refresh reads and reports the new one once this call is done.
        endpoint().tools_loaded = false;
        tools_changed_ = true;
    }
    on_reply(reply);
}

// stop_after_response — the on_body_chunk hook: ends an SSE transfer as soon as our response has arrived,
// since servers may keep the stream open after it. JSON bodies are left to complete normally.
std::function<bool(std::string_view)> McpCall::stop_after_response(long long id) {
    auto parser = std::make_shared<SseParser>();
    auto is_json = std::make_shared<int>(-1);  // -1 undecided, 0 SSE, 1 plain JSON
    return [parser, is_json, id](std::string_view chunk) {
        if (*is_json == -1) {
            size_t first = chunk.find_first_not_of(" \t\r\n");
            if (first == std::string_view::npos) {
                return false;
            }
            *is_json = chunk[first] == '{' || chunk[first] == '[' ? 1 : 0;
        }
        if (*is_json == 1) {
            return false;
        }
        for (const auto &event : parser->feed(chunk)) {
            if (event.data.empty()) {
                continue;
            }
            auto message = parse_foreign_json(event.data);
            if (!message.is_discarded() &&
                (mcp_is_response_to(message, id) || mcp_error_code(message) != 0)) {
                return true;
            }
        }
        return false;
    };
}

// send_notification — POSTs a JSON-RPC notification (legacy era only); the server answers 202.
void McpCall::send_notification(const std::string &method, nlohmann::json params,
                                std::function<void(const HttpResponse &)> on_done) {
    std::chrono::milliseconds budget = remaining();
    if (budget.count() <= 0) {
        fail_timeout();
        return;
    }
    HttpRequest request;
    request.url = turn_.endpoint;
    request.headers = headers_for(method, params);
    request.deadline = budget;
    request.max_response_bytes = turn_.max_response_bytes;
    request.body = mcp_notification(method, std::move(params)).dump();
    sign_agent_request(request, turn_.signing_secrets);
    state_->http.send(std::move(request),
                      [self = shared_from_this(), on_done = std::move(on_done)](HttpResponse response) {
                          if (self->finished_) {
                              return;
                          }
                          if (response.timed_out) {
                              self->fail_timeout();
                              return;
                          }
                          if (response.too_large) {
                              self->fail("agent " + response.error);
                              return;
                          }
                          if (response.status == 0) {
                              self->fail("transport error: " + response.error);
                              return;
                          }
                          on_done(response);
                      });
}

// send_cancel — best-effort notifications/cancelled for a legacy request that ran out of time; nobody
// waits for the answer.
void McpCall::send_cancel(long long id) {
    HttpRequest request;
    request.url = turn_.endpoint;
    request.headers = headers_for("notifications/cancelled", nullptr);
    request.deadline = kCancelDeadline;
    request.max_response_bytes = turn_.max_response_bytes;
    request.body =
        mcp_notification("notifications/cancelled", {{"requestId", id}, {"reason", "deadline"}}).dump();
    sign_agent_request(request, turn_.signing_secrets);
    state_->http.send(std::move(request), [](HttpResponse) {});
}

void McpCall::fail_timeout() {
    fail("timeout after " + std::to_string(turn_.deadline.count()) + " ms");
}

void McpCall::fail(std::string error) {
    AgentOutcome outcome;
    outcome.error = std::move(error);
    finish(std::move(outcome));
}

// finish — reports the outcome, exactly once.
void McpCall::finish(AgentOutcome outcome) {
    if (finished_) {
        return;
    }
    finished_ = true;
    outcome.latency_ms = static_cast<long>(
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started_).count());
    AgentCallback on_done = std::move(on_done_);
    on_done(std::move(outcome));
    if (tools_changed_ && !tools_only_ && state_->on_tools) {
        AgentTurn refresh = turn_;
        refresh.probe_only = false;
        std::make_shared<McpCall>(
            state_, std::move(refresh), [](AgentOutcome) {}, true)
            ->start();
    }
}

}  // namespace mcp_detail

McpClient::McpClient(HttpClient &http, std::string client_version)
    : state_(std::make_shared<McpClientState>(http, std::move(client_version))) {}

McpClient::~McpClient() = default;

void McpClient::call(const AgentTurn &turn, AgentCallback on_done) {
    std::make_shared<mcp_detail::McpCall>(state_, turn, std::move(on_done))->start();
}

void McpClient::set_tools_listener(McpToolsListener listener) {
    state_->on_tools = std::move(listener);
}

void McpClient::ping(const AgentTurn &turn, AgentCallback on_done) {
    AgentTurn probe = turn;
    probe.probe_only = true;
    std::make_shared<mcp_detail::McpCall>(state_, std::move(probe), std::move(on_done))->start();
}

}  // namespace darkspere::worker
