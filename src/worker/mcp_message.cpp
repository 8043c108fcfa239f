// src/worker/mcp_message.cpp — JSON-RPC framing of MCP messages over HTTP.
#include "mcp_message.hpp"

#include <algorithm>
#include <cctype>

#include "agent_json.hpp"
#include "mcp_sse.hpp"

namespace darkspere::worker {

namespace {

constexpr std::string_view kSentinelOpen = "=?base64?";
constexpr std::string_view kSentinelClose = "?=";

std::string lower(std::string_view text) {
    std::string out(text);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

bool looks_like_sentinel(std::string_view value) {
    return value.size() >= kSentinelOpen.size() + kSentinelClose.size() &&
           lower(value.substr(0, kSentinelOpen.size())) == kSentinelOpen &&
           value.substr(value.size() - kSentinelClose.size()) == kSentinelClose;
}

// parse_json — nullopt instead of an exception: agent bodies are untrusted input (nesting is limited too).
std::optional<nlohmann::json> parse_json(std::string_view text) {
    auto parsed = parse_foreign_json(text);
    if (parsed.is_discarded()) {
        return std::nullopt;
    }
    return parsed;
}

bool is_response_or_null_error(const nlohmann::json &message, long long id) {
    if (mcp_is_response_to(message, id)) {
        return true;
    }
    return message.is_object() && message.contains("error") && message.contains("id") &&
           message["id"].is_null();
}

}  // namespace

nlohmann::json mcp_request(long long id, std::string_view method, nlohmann::json params) {
    nlohmann::json request = {{"jsonrpc", "2.0"}, {"id", id}, {"method", method}};
    if (!params.is_null()) {
        request["params"] = std::move(params);
    }
    return request;
}

nlohmann::json mcp_notification(std::string_view method, nlohmann::json params) {
    nlohmann::json notification = {{"jsonrpc", "2.0"}, {"method", method}};
    if (!params.is_null()) {
        notification["params"] = std::move(params);
    }
    return notification;
}

nlohmann::json mcp_client_info(std::string_view client_version) {
    return {{"name", kMcpClientName}, {"version", client_version}};
}

nlohmann::json mcp_modern_meta(std::string_view protocol_version, std::string_view client_version) {
    return {{"io.modelcontextprotocol/protocolVersion", protocol_version},
            {"io.modelcontextprotocol/clientCapabilities", nlohmann::json::object()},
            {"io.modelcontextprotocol/clientInfo", mcp_client_info(client_version)}};
}

std::string mcp_base64(std::string_view bytes) {
    static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    out.reserve((bytes.size() + 2) / 3 * 4);
    size_t i = 0;
    for (; i + 2 < bytes.size(); i += 3) {
        unsigned v = static_cast<unsigned char>(bytes[i]) << 16 |
                     static_cast<unsigned char>(bytes[i + 1]) << 8 | static_cast<unsigned char>(bytes[i + 2]);
        out += kAlphabet[v >> 18 & 63];
        out += kAlphabet[v >> 12 & 63];
        out += kAlphabet[v >> 6 & 63];
        out += kAlphabet[v & 63];
    }
    if (i + 1 == bytes.size()) {
        unsigned v = static_cast<unsigned char>(bytes[i]) << 16;
        out += kAlphabet[v >> 18 & 63];
        out += kAlphabet[v >> 12 & 63];
        out += "==";
    } else if (i + 2 == bytes.size()) {
        unsigned v = static_cast<unsigned char>(bytes[i]) << 16 | static_cast<unsigned char>(bytes[i + 1])
                                                                      << 8;
        out += kAlphabet[v >> 18 & 63];
        out += kAlphabet[v >> 12 & 63];
        out += kAlphabet[v >> 6 & 63];
        out += '=';
    }
    return out;
}

bool mcp_is_visible_ascii(std::string_view value) {
    return std::all_of(value.begin(), value.end(), [](char c) { return c >= 0x21 && c <= 0x7E; });
}

std::string mcp_header_value(std::string_view value) {
    bool plain = std::all_of(value.begin(), value.end(), [](char c) { return c >= 0x20 && c <= 0x7E; });
    // Leading or trailing spaces would be stripped by HTTP itself, so they must travel encoded.
    if (!value.empty() && (value.front() == ' ' || value.back() == ' ')) {
        plain = false;
    }
    if (plain && !looks_like_sentinel(value)) {
        return std::string(value);
    }
    return std::string(kSentinelOpen) + mcp_base64(value) + std::string(kSentinelClose);
}

bool mcp_is_response_to(const nlohmann::json &message, long long id) {
    if (!message.is_object() || message.contains("method") || !message.contains("id")) {
        return false;
    }
    if (!message.contains("result") && !message.contains("error")) {
        return false;
    }
    const auto &got = message["id"];
    return got.is_number_integer() && got.get<long long>() == id;
}

long mcp_error_code(const nlohmann::json &message) {
    if (!message.is_object() || !message.contains("error") || !message["error"].is_object()) {
        return 0;
    }
    const auto &error = message["error"];
    if (!error.contains("code") || !error["code"].is_number_integer()) {
        return 0;
    }
    return error["code"].get<long>();
}

bool mcp_is_event_stream(const HttpResponse &response) {
    return lower(response.header("Content-Type")).rfind("text/event-stream", 0) == 0;
}

McpReplyParse mcp_find_response(const HttpResponse &response, long long id) {
    McpReplyParse parse;
    if (mcp_is_event_stream(response)) {
        SseParser parser;
        auto events = parser.feed(response.body);
        auto tail = parser.finish();
        events.insert(events.end(), tail.begin(), tail.end());
        bool any_data = false;
        for (const auto &event : events) {
            if (event.data.empty()) {
                continue;  // priming event or bare id/retry event
            }
            any_data = true;
            auto message = parse_json(event.data);
            if (message && is_response_or_null_error(*message, id)) {
                parse.message = std::move(*message);
                return parse;
            }
            if (message && message->is_object() && !message->contains("id")) {
                const nlohmann::json *method = json_member(*message, "method");
                parse.tools_list_changed =
                    parse.tools_list_changed ||
                    (method != nullptr && *method == "notifications/tools/list_changed");
            }
        }
        parse.body_unparsable = !any_data;
        return parse;
    }
    auto message = parse_json(response.body);
    if (message && is_response_or_null_error(*message, id)) {
        parse.message = std::move(*message);
    } else {
        parse.body_unparsable = true;
    }
    return parse;
}

}  // namespace darkspere::worker
