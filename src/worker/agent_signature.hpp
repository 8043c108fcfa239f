// src/worker/agent_signature.hpp — X-DarkSpere-Signature: how an agent knows a request comes from DarkSpere.
//
// Every POST to an agent (the `http` turn, and each MCP request and notification, initialize included)
// carries
//   X-DarkSpere-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
// with the agent's signing secret (register_agent / rotate_agent_secret). While a rotated-out secret is in
// its grace period the header carries one v1 per secret, current first, as Stripe does, so an agent that
// still knows only the old secret keeps accepting requests. Verification: docs/mcp-agents.md.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "http_client.hpp"

namespace darkspere::worker {

constexpr const char *kAgentSignatureHeader = "X-DarkSpere-Signature";

// agent_signature_header — the header value for body at unix_time, one v1 per secret in the order given.
std::string agent_signature_header(const std::vector<std::string> &secrets, long long unix_time,
                                   std::string_view body);

// sign_agent_request — adds the header for request.body at the current time; nothing when secrets is empty.
void sign_agent_request(HttpRequest &request, const std::vector<std::string> &secrets);

}  // namespace darkspere::worker
