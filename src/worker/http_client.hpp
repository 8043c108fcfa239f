// src/worker/http_client.hpp — the worker's one outbound HTTP interface (implemented on libcurl multi +
// Asio).
//
// Every outbound call (agents, Twilio, Stripe) goes through HttpClient::send. Completion is always reported
// exactly once, on the io_context thread, whether a response arrived, the deadline passed or the transport
// failed. Nothing here blocks the event loop.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace darkspere::worker {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

// Default cap on what one response may hold (headers and body); callers set their own per request.
inline constexpr size_t kDefaultMaxResponseBytes = 256 * 1024;

struct HttpRequest {
    std::string method = "POST";
    std::string url;
    HeaderList headers;
    std::string body;
    // Whole-request deadline, connect included.
    std::chrono::milliseconds deadline{10000};
    // HTTP Basic credentials; sent only when user is non-empty. Never logged.
    std::string basic_auth_user;
    std::string basic_auth_password;
    // Optional streaming hook: called with each body chunk as it arrives. Returning true ends the transfer
    // early (the response then completes with the body received so far and status as received). Used by the
    // MCP client to stop reading an SSE stream once the JSON-RPC response has arrived.
    std::function<bool(std::string_view chunk)> on_body_chunk;
    // The most the response may hold, header lines and body counted together: a peer sending more has the
    // transfer aborted (too_large) instead of growing the worker's memory. Checked before on_body_chunk sees
    // a byte, so what that hook buffers is bounded too.
    size_t max_response_bytes = kDefaultMaxResponseBytes;
};

struct HttpResponse {
    long status = 0;     // 0 when no HTTP response was received
    HeaderList headers;  // names as received; look up with header()
    std::string body;
    std::string error;       // transport error ("timeout", "connection refused", …); empty on a response
    bool timed_out = false;  // the deadline passed before completion
    // The response exceeded max_response_bytes: the transfer was aborted, the body dropped, and error says
    // so; status is the HTTP status if one had arrived (0 otherwise).
    bool too_large = false;
    std::chrono::milliseconds elapsed{0};

    // header — the first value of a header, compared case-insensitively; empty when absent.
    std::string header(std::string_view name) const;
    // failure — why this is not a 2xx answer, prefixed with what was called ("probe", "webhook"): the size
    // cap, "timeout", the transport error or "no response", or "<what> http <status>"; empty for a 2xx
    // answer.
    std::string failure(std::string_view what) const;
};

class HttpClient {
  public:
    virtual ~HttpClient() = default;
    // send — starts the request and returns at once; on_done runs once on the event loop.
    virtual void send(HttpRequest request, std::function<void(HttpResponse)> on_done) = 0;
};

}  // namespace darkspere::worker
