// src/worker/mcp_client.hpp — runs conversation turns as MCP tools/call requests (dual era, Streamable HTTP).
//
// Glossary (see docs/mcp-agents.md). A *turn* is one inbound SMS handed to one agent. A *call* is the work
// McpClient does for a turn: era detection if needed, the legacy handshake if needed, tools/list if the
// cached list is stale, then tools/call — all inside the turn's deadline. An *MCP session* (legacy
// Mcp-Session-Id) is a transport session shared by every conversation with that agent; it is not a
// DarkSpere session.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "agent_protocol.hpp"
#include "http_client.hpp"

namespace darkspere::worker {

struct McpClientState;  // caches shared with calls in flight (mcp_client.cpp)

// McpToolsListener — receives an agent's tool list as read from its server (mcp_tools_summary's shape).
using McpToolsListener = std::function<void(long long agent_id, nlohmann::json tools)>;

class McpClient {
  public:
    // McpClient — http must outlive every call in flight; client_version goes into clientInfo.
    McpClient(HttpClient &http, std::string client_version);
    ~McpClient();
    McpClient(const McpClient &) = delete;
    McpClient &operator=(const McpClient &) = delete;

    // call — runs one conversation turn as an MCP tools/call on turn.endpoint, tool turn.tool_name; reports
    // exactly once through on_done (on the caller's event loop thread, via the HttpClient callbacks).
    // Not thread-safe: call it from the event loop thread that runs the HttpClient callbacks.
    void call(const AgentTurn &turn, AgentCallback on_done);
    // ping — a health probe of turn.endpoint: JSON-RPC ping and tools/list after the same era detection and
    // legacy handshake as a turn; ok when the server answered ping (or, without ping, tools/list).
    void ping(const AgentTurn &turn, AgentCallback on_done);
    // set_tools_listener — called with every tool list a probe or a refresh read, and with a turn's when it
    // changed; a server's notifications/tools/list_changed starts a refresh after the call it came in.
    void set_tools_listener(McpToolsListener listener);

  private:
    // Calls in flight hold the state too, so destroying the client early never leaves them dangling.
    std::shared_ptr<McpClientState> state_;
};

}  // namespace darkspere::worker
