// src/worker/mcp_tools.hpp — DarkSpere's tool binding and the reading of tools/call results
// (docs/protocols.md#mcp-tools).
//
// A *tool binding* is one entry of a server's tools/list as the worker needs it: the input schema that
// decides which conversation fields are sent, and the x-mcp-header annotations that become Mcp-Param-*
// headers.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent_protocol.hpp"
#include "http_client.hpp"

namespace darkspere::worker {

struct McpTool {
    std::string name;
    std::string description;  // as the server gave it (shown to the tenant, never used to decide anything)
    nlohmann::json input_schema = nlohmann::json::object();
    // (property, header suffix) for every x-mcp-header annotation: property "region" annotated "Region" is
    // sent as Mcp-Param-Region.
    std::vector<std::pair<std::string, std::string>> header_params;
};

// At most this many tools of one server are stored (record_agent_tools refuses more), descriptions cut to
// this many bytes (at a character boundary).
inline constexpr size_t kMcpToolsStored = 100;
inline constexpr size_t kMcpToolDescriptionBytes = 500;

// mcp_choose_tool — the tool a turn calls: `configured` (the agent's tool_name) when set, else the tool named
// "chat", else the only tool. nullptr with *error saying why when there is none to call.
const McpTool *mcp_choose_tool(const std::vector<McpTool> &tools, const std::string &configured,
                               std::string *error);

// mcp_tools_summary — what darkspere.record_agent_tools stores of a tool list: [{name, description}] of at
// most kMcpToolsStored tools (the agent may be hostile: its list is bounded before it leaves the worker).
nlohmann::json mcp_tools_summary(const std::vector<McpTool> &tools);

// mcp_parse_tool — the binding for one tools/list entry; nullopt when the entry is malformed or carries an
// invalid x-mcp-header annotation (the modern spec requires such tools to be dropped from the client's view).
std::optional<McpTool> mcp_parse_tool(const nlohmann::json &entry);

// McpArguments — the tools/call arguments for a turn, or why they cannot be built (a configuration error).
struct McpArguments {
    nlohmann::json arguments = nlohmann::json::object();
    std::string error;
};

// mcp_tool_arguments — `message` always; `session_id`, `from`, `to` and `history` only when the tool's
// inputSchema.properties declares them. Declared types are checked (session_id may be declared as a number);
// a required property the worker cannot fill is a configuration error.
McpArguments mcp_tool_arguments(const McpTool &tool, const AgentTurn &turn);

// mcp_param_headers — Mcp-Param-<Name> headers for the annotated properties present in arguments.
HeaderList mcp_param_headers(const McpTool &tool, const nlohmann::json &arguments);

// mcp_outcome_from_result — maps a tools/call result to an outcome (latency left at 0): text items joined
// with
// "\n" and trimmed; no text → ok with no reply; isError or resultType input_required → failure.
AgentOutcome mcp_outcome_from_result(const nlohmann::json &result);

}  // namespace darkspere::worker
