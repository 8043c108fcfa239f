// src/worker/mcp_era.cpp — MCP protocol revisions the worker speaks and the era-detection verdicts of
// docs/protocols.md#mcp-era-detection.
#include "mcp_era.hpp"

#include <algorithm>
#include <cctype>

namespace darkspere::worker {

namespace {

// Modern JSON-RPC errors that prove the server understood the modern request shape
// (docs/protocols.md#mcp-era-detection, step 3).
constexpr long kUnsupportedProtocolVersion = -32022;
constexpr long kHeaderMismatch = -32020;
constexpr long kMissingRequiredClientCapability = -32021;
constexpr long kMethodNotFound = -32601;

ProbeVerdict legacy_verdict() {
    return ProbeVerdict{McpEra::legacy, std::string(kMcpLegacyVersion), {}};
}

ProbeVerdict verdict_for_version(const std::string &version) {
    if (mcp_is_modern_version(version)) {
        return ProbeVerdict{McpEra::modern, version, {}};
    }
    return ProbeVerdict{McpEra::legacy, version, {}};
}

}  // namespace

const std::vector<std::string> &mcp_supported_versions() {
    static const std::vector<std::string> versions = {std::string(kMcpModernVersion), "2025-11-25",
                                                      "2025-06-18", "2025-03-26"};
    return versions;
}

bool mcp_is_modern_version(std::string_view version) {
    // Revisions are ISO dates, so string order is date order; 2026-07-28 opened the stateless era.
    return version.size() == 10 && version >= kMcpModernVersion;
}

bool mcp_is_supported_version(std::string_view version) {
    const auto &versions = mcp_supported_versions();
    return std::find(versions.begin(), versions.end(), version) != versions.end();
}

std::optional<std::string> mcp_newest_mutual_version(const nlohmann::json &server_versions) {
    if (!server_versions.is_array()) {
        return std::nullopt;
    }
    for (const auto &ours : mcp_supported_versions()) {
        for (const auto &theirs : server_versions) {
            if (theirs.is_string() && theirs.get<std::string>() == ours) {
                return ours;
            }
        }
    }
    return std::nullopt;
}

ProbeVerdict mcp_classify_probe(long status, const nlohmann::json &message) {
    bool has_result = message.is_object() && message.contains("result") && message["result"].is_object();
    bool has_error = message.is_object() && message.contains("error") && message["error"].is_object();
    if (status >= 200 && status < 300) {
        if (has_result && message["result"].contains("supportedVersions")) {
            auto version = mcp_newest_mutual_version(message["result"]["supportedVersions"]);
            if (!version) {
                return ProbeVerdict{McpEra::unknown, {}, "no mutually supported protocol version"};
            }
            return verdict_for_version(*version);
        }
        // Any other 2xx (typically -32601 from a server that ignored the modern headers) is a legacy server.
        return legacy_verdict();
    }
    if ((status == 400 || status == 404) && has_error) {
        const auto &error = message["error"];
        long code =
            error.contains("code") && error["code"].is_number_integer() ? error["code"].get<long>() : 0;
        if (code == kUnsupportedProtocolVersion && error.contains("data") && error["data"].is_object() &&
            error["data"].contains("supported")) {
            auto version = mcp_newest_mutual_version(error["data"]["supported"]);
            if (!version) {
                return ProbeVerdict{McpEra::unknown, {}, "no mutually supported protocol version"};
            }
            return verdict_for_version(*version);
        }
        if (code == kMethodNotFound || code == kHeaderMismatch || code == kMissingRequiredClientCapability) {
            return ProbeVerdict{McpEra::modern, std::string(kMcpModernVersion), {}};
        }
    }
    if (status == 400 || status == 404 || status == 405) {
        return legacy_verdict();
    }
    return ProbeVerdict{McpEra::unknown, {}, "http " + std::to_string(status)};
}

std::string mcp_origin(std::string_view url) {
    size_t scheme_end = url.find("://");
    size_t authority_start = scheme_end == std::string_view::npos ? 0 : scheme_end + 3;
    size_t authority_end = url.find_first_of("/?#", authority_start);
    std::string origin(url.substr(0, authority_end == std::string_view::npos ? url.size() : authority_end));
    std::transform(origin.begin(), origin.end(), origin.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return origin;
}

}  // namespace darkspere::worker
