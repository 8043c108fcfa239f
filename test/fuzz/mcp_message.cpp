// test/fuzz/mcp_message.cpp — libFuzzer target for what an MCP agent sends back (src/worker/mcp_message.cpp,
// mcp_sse.cpp, mcp_tools.cpp): finding our JSON-RPC response in a JSON or SSE body, reading a tools/call
// result, binding tools from a tools/list result, and encoding values for Mcp-* headers.
//
// Input: one flag byte (bit 0: the body is text/event-stream), then the body.
// Invariants: a found message is the response to our id (or an id-less error); a tools/call result gives a
// failure with a reason or a success whose reply is trimmed; a bound tool's arguments always carry the
// message and its headers are visible ASCII; a header value is itself (plain) or the sentinel around the
// Base64 of its bytes, equal to OpenSSL's Base64.
#include <cstdint>
#include <string>

#include "common/crypto.hpp"
#include "fuzz_check.hpp"
#include "mcp_message.hpp"
#include "mcp_tools.hpp"

using namespace darkspere::worker;

namespace {

void check_header_value(std::string_view value) {
    std::string out = mcp_header_value(value);
    for (char c : out)
        FUZZ_CHECK(c >= 0x20 && c <= 0x7E);
    FUZZ_CHECK(out.empty() || (out.front() != ' ' && out.back() != ' '));
    if (out != value) {
        FUZZ_CHECK(out == "=?base64?" + darkspere::base64_encode(value) + "?=");
    }
}

bool is_trimmed(const std::string &s) {
    auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
    return s.empty() || (!space(s.front()) && !space(s.back()));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0)
        return 0;
    const bool sse = data[0] & 1;
    const long long id = 1 + (data[0] >> 1);
    HttpResponse response;
    response.status = 200;
    response.headers = {{"Content-Type", sse ? "text/event-stream" : "application/json"}};
    response.body.assign(reinterpret_cast<const char *>(data) + 1, size - 1);
    FUZZ_CHECK(mcp_is_event_stream(response) == sse);

    McpReplyParse parse = mcp_find_response(response, id);
    check_header_value(response.body.substr(0, 256));
    if (parse.message.is_null())
        return 0;
    FUZZ_CHECK(!parse.body_unparsable);
    const auto &message = parse.message;
    FUZZ_CHECK(message.is_object());
    FUZZ_CHECK(mcp_is_response_to(message, id) || message["id"].is_null());
    (void)mcp_error_code(message);
    if (!message.contains("result"))
        return 0;
    const auto &result = message["result"];

    AgentOutcome outcome = mcp_outcome_from_result(result);
    if (outcome.ok) {
        FUZZ_CHECK(outcome.error.empty());
        if (outcome.reply) {
            FUZZ_CHECK(!outcome.reply->empty());
            FUZZ_CHECK(is_trimmed(*outcome.reply));
        }
    } else {
        FUZZ_CHECK(!outcome.error.empty() && !outcome.reply);
    }

    if (!result.is_object() || !result.contains("tools") || !result["tools"].is_array())
        return 0;
    AgentTurn turn;
    turn.session_id = "42";
    turn.message = "hello";
    turn.from = "+14155550100";
    turn.to = "+14155550199";
    turn.history = nlohmann::json::array({{{"role", "user"}, {"content", "hi"}}});
    for (const auto &entry : result["tools"]) {
        auto tool = mcp_parse_tool(entry);
        if (!tool)
            continue;
        McpArguments args = mcp_tool_arguments(*tool, turn);
        if (!args.error.empty())
            continue;
        FUZZ_CHECK(args.arguments.is_object() && args.arguments.contains("message"));
        for (const auto &[name, value] : mcp_param_headers(*tool, args.arguments)) {
            FUZZ_CHECK(name.rfind("Mcp-Param-", 0) == 0);
            for (char c : value)
                FUZZ_CHECK(c >= 0x20 && c <= 0x7E);
        }
    }
    return 0;
}
