// src/worker/http_server.hpp — the inbound HTTP/1.1 server (Boost.Beast): keep-alive, bounded bodies, time
// limits on every read and a bounded number of open connections, in all and per client address. It knows
// nothing about routes; it hands each request to a handler and writes whatever response the handler reports,
// whenever it reports it.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/http.hpp>

namespace darkspere::worker {

// Twilio refuses to send bodies over 64 kB (error 11750); nothing we serve needs more.
constexpr uint64_t REQUEST_BODY_MAX = 64 * 1024;
// POST /stripe/webhook reads up to this (a Stripe event with its objects expanded can pass 64 kB).
constexpr uint64_t STRIPE_WEBHOOK_BODY_MAX = 256 * 1024;
constexpr uint32_t REQUEST_HEADER_MAX = 16 * 1024;
// The read buffer holds a whole header, a chunk header (extensions included) or a trailer before Beast parses
// it; Beast 1.74 bounds neither chunk extensions nor trailers, so this cap is what stops a request that sends
// them without end. Body bytes leave the buffer as they are parsed, so a request costs at most about
// REQUEST_BUFFER_MAX + REQUEST_BODY_MAX (~100 KiB).
constexpr size_t REQUEST_BUFFER_MAX = REQUEST_HEADER_MAX + 16 * 1024;
// A request's body must arrive within this long of its header, and a response must be written within this
// long; either running late closes the connection. (The header has its own, shorter limit: HttpLimits.)
constexpr int REQUEST_BODY_SECONDS = 60;
constexpr int RESPONSE_WRITE_SECONDS = 60;

// HttpLimits — what one listener allows its connections (settings and defaults in config.hpp).
struct HttpLimits {
    size_t max_connections = 0;                // open at once; further clients wait in the kernel's backlog
    size_t max_connections_per_ip = 0;         // open at once from one address; more are closed at once
    std::chrono::milliseconds header_timeout;  // accept, or the previous response written → whole header read
    std::chrono::milliseconds idle_timeout;    // previous response written → the next request's first byte
};

using Request = boost::beast::http::request<boost::beast::http::string_body>;
// The server writes the client's address into this field of every request it hands on (replacing any the
// client sent), so handlers can rate-limit by address without a wider handler signature.
constexpr const char *PEER_ADDRESS_FIELD = "X-DarkSpere-Peer-Address";
using Response = boost::beast::http::response<boost::beast::http::string_body>;
using Responder = std::function<void(Response)>;
using RequestHandler = std::function<void(Request &&, Responder)>;

// make_response — a response with status, content type and body (Content-Length set by the server).
Response make_response(unsigned status, const std::string &content_type, std::string body);

using RequestParser = boost::beast::http::request_parser<boost::beast::http::string_body>;

// configure_request_parser — the limits every request is read under. Shared with test/fuzz/http_request.cpp,
// so the fuzzer reads requests exactly as a session does.
void configure_request_parser(RequestParser &parser);

// request_body_limit — the largest body read for a request target (its header read): 256 KiB for
// /stripe/webhook (Stripe events), REQUEST_BODY_MAX for every other path.
uint64_t request_body_limit(std::string_view target);

// read_refusal — the answer to a request that could not be read (413, 431 or 400 with a reason); nullopt when
// the peer went away or timed out, and the connection is just closed.
std::optional<Response> read_refusal(const boost::beast::error_code &ec);

class HttpServer {
  public:
    HttpServer(boost::asio::io_context &io, RequestHandler handler, HttpLimits limits);
    ~HttpServer();

    // listen — binds and starts accepting; returns the bound port (useful with port 0). Throws on failure.
    uint16_t listen(const std::string &host, uint16_t port);
    // stop_accepting — closes the listening socket; open connections finish their current request.
    void stop_accepting();
    size_t open_connections() const;

    // on_rejected — called for a request refused before routing (413, 400), with its status.
    std::function<void(unsigned status)> on_rejected;
    // on_refused — called for a connection closed as soon as it was accepted, with the reason ("per_ip").
    std::function<void(const char *reason)> on_refused;

    struct Shared;

  private:
    void accept();

    boost::asio::io_context &io_;
    boost::asio::ip::tcp::acceptor acceptor_;
    boost::asio::steady_timer retry_timer_;
    std::shared_ptr<Shared> shared_;
};

}  // namespace darkspere::worker
