// src/worker/agent_protocol.hpp — one conversation turn handed to an agent, and what came back.
//
// Both agent protocols (plain `http` JSON and `mcp` over streamable HTTP) take an AgentTurn and report one
// AgentOutcome. The outcome decides complete_job versus fail_job; the protocol code never talks to the
// database.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace darkspere::worker {

struct AgentTurn {
    long long agent_id = 0;
    std::string endpoint;    // agent URL
    std::string tool_name;   // MCP tool to call; empty: "chat", else the only tool (ignored by `http`)
    std::string session_id;  // DarkSpere session id, as a decimal string
    std::string message;     // the inbound SMS text of this turn
    std::string from;        // end user's phone, E.164
    std::string to;          // service number, E.164
    std::string request_id;  // stable across retries of this turn
    nlohmann::json history =
        nlohmann::json::array();  // [{role, content}], oldest first, current turn excluded
    std::chrono::milliseconds deadline{10000};
    size_t max_response_bytes = 256 * 1024;  // each HTTP response of the turn (agent-max-response-bytes)
    // The agent's signing secrets, current first (two during a rotation's grace period): every request of
    // the turn is signed with each (agent_signature.hpp). Never logged.
    std::vector<std::string> signing_secrets;
    // A health probe, not a turn: MCP sends ping (McpClient::ping); the conversation fields are empty.
    bool probe_only = false;
};

struct AgentOutcome {
    bool ok = false;
    // On success: the reply text (trimmed). std::nullopt = the agent answered but gave no usable text
    // (the database then sends the account's fallback text); "" = the agent asked to send nothing.
    std::optional<std::string> reply;
    std::string
        error;  // on failure: short reason for logs and fail_job (never a secret, never raw agent text)
    long latency_ms = 0;
};

using AgentCallback = std::function<void(AgentOutcome)>;

}  // namespace darkspere::worker
