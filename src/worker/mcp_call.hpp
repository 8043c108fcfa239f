// src/worker/mcp_call.hpp — one MCP call carried step by step (McpCall: a turn, a health probe or a tool-list
// refresh) and the caches it shares with McpClient. Private to the MCP client: mcp_setup.cpp holds era
// detection and the legacy handshake, mcp_client.cpp everything after them (tools, requests, responses, the
// outcome).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent_protocol.hpp"
#include "http_client.hpp"
#include "mcp_client.hpp"
#include "mcp_era.hpp"
#include "mcp_message.hpp"
#include "mcp_tools.hpp"

namespace darkspere::worker {

namespace mcp_detail {

using Clock = std::chrono::steady_clock;

// Legacy servers publish no ttlMs; five minutes keeps a changed tool list from lingering while sparing a
// tools/list round trip on nearly every turn. Also used when a modern server omits the (required) ttlMs.
inline constexpr std::chrono::milliseconds kDefaultToolListTtl{5 * 60 * 1000};
// notifications/cancelled is best effort; it must not keep a connection busy for long after the turn failed.
inline constexpr std::chrono::milliseconds kCancelDeadline{2000};
// A server that keeps handing out cursors is broken; stop paging rather than spend the whole deadline.
inline constexpr int kMaxToolListPages = 20;
// Tools kept from one listing (a hostile server could list far more within the response cap).
inline constexpr size_t kMaxListedTools = 1000;

inline constexpr long kErrorMethodNotFound = -32601;
inline constexpr long kErrorInvalidParams = -32602;
inline constexpr long kErrorHeaderMismatch = -32020;
inline constexpr long kErrorUnsupportedProtocolVersion = -32022;

}  // namespace mcp_detail

// OriginEra — what the last probe of an origin found.
struct OriginEra {
    McpEra era = McpEra::unknown;
    std::string version;  // modern: the revision in _meta; legacy: the revision offered in initialize
};

// EndpointCache — per agent and endpoint URL: the legacy MCP session and the tool list.
struct EndpointCache {
    bool session_ready = false;  // initialize and notifications/initialized both succeeded
    std::string session_id;      // may stay empty: servers need not issue one
    std::string negotiated_version;
    bool tools_loaded = false;
    mcp_detail::Clock::time_point tools_expire{};
    std::vector<McpTool> tools;
};

struct McpClientState {
    McpClientState(HttpClient &http_client, std::string version)
        : http(http_client), client_version(std::move(version)) {}
    HttpClient &http;
    std::string client_version;
    long long next_id = 1;
    // Both caches are keyed by agent id as well as URL: two tenants' agents at one origin must never share an
    // MCP session, a negotiated version or a tool list (one tenant's server state would leak to the other,
    // and a server that scopes sessions to its own tenants could be addressed through the other's agent).
    std::unordered_map<std::string, OriginEra> eras;           // by "<agent id> <mcp_origin(endpoint)>"
    std::unordered_map<std::string, EndpointCache> endpoints;  // by "<agent id> <endpoint>"
    McpToolsListener on_tools;
    std::unordered_map<long long, std::string> reported_tools;  // by agent id: the summary last reported
};

namespace mcp_detail {

// RpcReply — one answered request; transport failures, timeouts and 5xx never get this far.
struct RpcReply {
    long status = 0;
    nlohmann::json message;  // our JSON-RPC response, or null
    bool body_unparsable = false;
    bool tools_list_changed = false;  // notifications/tools/list_changed came in the stream
    std::string session_id;           // Mcp-Session-Id of the HTTP response

    bool http_ok() const { return status >= 200 && status < 300; }
    bool has_result() const { return message.is_object() && message.contains("result"); }
    bool has_error() const { return message.is_object() && message.contains("error"); }
    long error_code() const { return mcp_error_code(message); }
};

using ReplyHandler = std::function<void(const RpcReply &)>;

class McpCall : public std::enable_shared_from_this<McpCall> {
  public:
    // tools_only: a refresh of the tool list (no turn, no ping).
    McpCall(std::shared_ptr<McpClientState> state, AgentTurn turn, AgentCallback on_done,
            bool tools_only = false)
        : tools_only_(tools_only),
          state_(std::move(state)),
          turn_(std::move(turn)),
          on_done_(std::move(on_done)),
          started_(Clock::now()),
          deadline_at_(started_ + turn_.deadline),
          era_key_(std::to_string(turn_.agent_id) + ' ' + mcp_origin(turn_.endpoint)),
          endpoint_key_(std::to_string(turn_.agent_id) + ' ' + turn_.endpoint) {}

    // start — the first step: use the cached era of the origin or probe for it.
    void start();

  private:
    EndpointCache &endpoint();

    // probe — server/discover in the modern shape; the answer decides the era
    // (docs/protocols.md#mcp-era-detection).
    void probe();

    void enter_era(const OriginEra &found);

    // initialize — the legacy handshake; then runs `then`. A new session replaces any earlier one.
    void initialize(std::function<void()> then);

    void on_initialized(const RpcReply &reply, const std::function<void()> &then);

    // after_setup — once the era (and a legacy session) is settled: a turn goes on to its tool, a health
    // probe (turn_.probe_only) sends ping instead.
    void after_setup();

    // ping — the health probe: JSON-RPC ping, then tools/list (the tool list is refreshed at every probe); a
    // server without ping (-32601) passes by answering tools/list.
    void ping();

    void pass();

    // ensure_tools — the cached tool list when fresh, otherwise tools/list page by page.
    void ensure_tools();

    void list_tools_page(const std::string &cursor, int page);

    void on_tools_page(const RpcReply &reply, const std::string &cursor, int page);

    // report_tools — hands a tool list just read from the server to the listener: always for a probe or a
    // refresh, for a turn only when it differs from the list last reported for the agent.
    void report_tools(const std::vector<McpTool> &tools);

    // call_tool — tools/call with the arguments the tool's inputSchema asks for.
    void call_tool();

    void on_tool_result(const RpcReply &reply);

    // recover_stale_era — a modern request answered the way a legacy server answers (or with -32022) means
    // the cached era no longer holds: forget it and start over with a probe, once per call. Returns true when
    // it took over the call.
    bool recover_stale_era(const RpcReply &reply);

    // describe_failure — a short reason for a reply that carried no usable result.
    static std::string describe_failure(const RpcReply &reply);

    // headers_for — the headers of one POST in the current era (docs/protocols.md#mcp-headers).
    HeaderList headers_for(const std::string &method, const nlohmann::json &params);

    // remaining — what is left of the turn's deadline; every request gets only that much.
    std::chrono::milliseconds remaining() const;

    // send_request — POSTs one JSON-RPC request and hands the answer to on_reply. Timeouts, transport errors
    // and 5xx end the call here; so does a legacy 404 after the one re-initialize it triggers.
    void send_request(const std::string &method, nlohmann::json params, HeaderList extra_headers,
                      ReplyHandler on_reply);

    void on_response(const HttpResponse &response, long long id, McpEra sent_era, const std::string &method,
                     nlohmann::json params, HeaderList extra_headers, ReplyHandler on_reply);

    // stop_after_response — the on_body_chunk hook: ends an SSE transfer as soon as our response has arrived,
    // since servers may keep the stream open after it. JSON bodies are left to complete normally.
    static std::function<bool(std::string_view)> stop_after_response(long long id);

    // send_notification — POSTs a JSON-RPC notification (legacy era only); the server answers 202.
    void send_notification(const std::string &method, nlohmann::json params,
                           std::function<void(const HttpResponse &)> on_done);

    // send_cancel — best-effort notifications/cancelled for a legacy request that ran out of time; nobody
    // waits for the answer.
    void send_cancel(long long id);

    void fail_timeout();

    void fail(std::string error);

    // finish — reports the outcome, exactly once.
    void finish(AgentOutcome outcome);

    bool tools_only_;
    std::shared_ptr<McpClientState> state_;
    AgentTurn turn_;
    AgentCallback on_done_;
    Clock::time_point started_;
    Clock::time_point deadline_at_;
    std::string era_key_;       // "<agent id> <origin>": the era cache entry of this call
    std::string endpoint_key_;  // "<agent id> <endpoint URL>": the session and tool-list cache entry

    McpEra era_ = McpEra::unknown;
    std::string modern_version_;
    std::string offered_version_ = std::string(kMcpLegacyVersion);
    std::string session_id_;          // legacy: the MCP session this call speaks in (may be empty)
    std::string negotiated_version_;  // legacy: MCP-Protocol-Version of that session
    std::vector<McpTool> listed_tools_;
    std::chrono::milliseconds tools_ttl_ = kDefaultToolListTtl;

    bool finished_ = false;
    bool reinitialized_ = false;
    bool relisted_ = false;
    bool reprobed_ = false;
    bool pinged_ = false;         // probe: ping answered (tools/list only refreshes the list)
    bool tools_changed_ = false;  // the server said notifications/tools/list_changed
};

}  // namespace mcp_detail

}  // namespace darkspere::worker
