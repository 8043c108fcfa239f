// src/worker/mcp_era.hpp — MCP protocol revisions the worker speaks and the era-detection verdicts of
// docs/protocols.md#mcp-era-detection.
//
// Glossary. An *era* is how a server expects to be talked to: *modern* (2026-07-28 and later: stateless,
// every request carries its version in params._meta) or *legacy* (2025-11-25 and earlier: an initialize
// handshake and an optional Mcp-Session-Id). The era belongs to the server, so it is cached per agent and
// endpoint *origin* (never shared between agents, see mcp_client.cpp).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace darkspere::worker {

enum class McpEra { unknown, modern, legacy };

// The one modern revision implemented, and the legacy revision offered in initialize.
inline constexpr std::string_view kMcpModernVersion = "2026-07-28";
inline constexpr std::string_view kMcpLegacyVersion = "2025-11-25";

// mcp_supported_versions — every revision the worker speaks, newest first; the order decides negotiation.
const std::vector<std::string> &mcp_supported_versions();

// mcp_is_modern_version — true for revisions that use the stateless (modern) request shape.
bool mcp_is_modern_version(std::string_view version);

// mcp_is_supported_version — true when the worker speaks this revision (either era).
bool mcp_is_supported_version(std::string_view version);

// mcp_newest_mutual_version — the newest revision in both our list and the server's `supported` array
// (from a -32022 error or a DiscoverResult); nullopt when there is none or the array is malformed.
std::optional<std::string> mcp_newest_mutual_version(const nlohmann::json &server_versions);

// ProbeVerdict — what one server/discover answer says about the server.
struct ProbeVerdict {
    McpEra era = McpEra::unknown;  // unknown = the probe itself failed (error says why); do not cache
    std::string version;           // the revision to speak from now on
    std::string error;
};

// mcp_classify_probe — applies steps 1–4 of docs/protocols.md#mcp-era-detection to the HTTP status and the
// JSON-RPC message of the probe answer (nullptr when the body held none). Transport failures, timeouts and
// 5xx are the caller's to handle first.
ProbeVerdict mcp_classify_probe(long status, const nlohmann::json &message);

// mcp_origin — "scheme://host[:port]" of a URL, lower-cased; the key of the era cache.
std::string mcp_origin(std::string_view url);

}  // namespace darkspere::worker
