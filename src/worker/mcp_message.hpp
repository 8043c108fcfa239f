// src/worker/mcp_message.hpp — JSON-RPC framing of MCP messages over HTTP: request bodies, the modern _meta
// block, header value encoding, and finding our response in a JSON or SSE body.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "http_client.hpp"

namespace darkspere::worker {

// The name every MCP server sees in clientInfo.
inline constexpr std::string_view kMcpClientName = "darkspere-worker";

// mcp_request — a JSON-RPC 2.0 request object; params is omitted when null.
nlohmann::json mcp_request(long long id, std::string_view method, nlohmann::json params);

// mcp_notification — a JSON-RPC 2.0 notification (no id); params is omitted when null.
nlohmann::json mcp_notification(std::string_view method, nlohmann::json params);

// mcp_modern_meta — the params._meta block every modern-era request carries
// (docs/protocols.md#mcp-modern-requests).
nlohmann::json mcp_modern_meta(std::string_view protocol_version, std::string_view client_version);

// mcp_client_info — {"name": "darkspere-worker", "version": client_version}.
nlohmann::json mcp_client_info(std::string_view client_version);

// mcp_base64 — standard Base64 with padding.
std::string mcp_base64(std::string_view bytes);

// mcp_header_value — value as it may go into an Mcp-* header: as-is when it is plain visible ASCII (inner
// spaces allowed), otherwise =?base64?<Base64 of the UTF-8 bytes>?=. A value that itself looks like that
// sentinel is encoded too, so the server never decodes something we meant literally.
std::string mcp_header_value(std::string_view value);

// mcp_is_visible_ascii — true when every byte is 0x21–0x7E (the rule for Mcp-Session-Id).
bool mcp_is_visible_ascii(std::string_view value);

// McpReplyParse — the outcome of looking for our JSON-RPC response in an HTTP body.
struct McpReplyParse {
    nlohmann::json message;  // the response object (has "result" or "error"); null when none was found
    bool body_unparsable = false;
    // The server sent notifications/tools/list_changed in the stream before our response.
    bool tools_list_changed = false;
};

// mcp_find_response — our response in a response body. JSON bodies must hold one response object; SSE bodies
// are scanned event by event, skipping empty data (priming events), notifications and server requests. A
// response whose id is null (an error the server could not tie to a request) also counts.
McpReplyParse mcp_find_response(const HttpResponse &response, long long id);

// mcp_is_event_stream — whether the response declares Content-Type text/event-stream.
bool mcp_is_event_stream(const HttpResponse &response);

// mcp_is_response_to — whether a JSON-RPC message is the response to request `id`.
bool mcp_is_response_to(const nlohmann::json &message, long long id);

// mcp_error_code — the integer code of a JSON-RPC error message; 0 when it has none.
long mcp_error_code(const nlohmann::json &message);

}  // namespace darkspere::worker
