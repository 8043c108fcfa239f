// test/fuzz/http_request.cpp — libFuzzer target for the worker's HTTP request path: raw bytes from a stranger
// are read by a Beast parser configured exactly as a server session configures it (configure_request_parser,
// read_refusal in src/worker/http_server.cpp), and each request read is dispatched by the real Router and
// TwilioRoutes. The database pool is never started, so anything that reaches a statement is answered
// "unavailable" (503) without a database.
//
// Input: the bytes a client sends on one connection (pipelined requests included), then end of stream.
// Invariants: every request read gets exactly one answer, from the set of statuses the worker can give; a
// request that cannot be read gets its refusal (400/413/431) or a silent close; no response is answered with
// a body for HEAD; no route is reached with a body over the limit.
#include <cstdint>
#include <memory>
#include <set>
#include <sstream>
#include <string>

#include <boost/asio/buffer.hpp>
#include <boost/asio/io_context.hpp>

#include "fuzz_check.hpp"
#include "http_server.hpp"
#include "metrics.hpp"
#include "pg_pool.hpp"
#include "routes.hpp"
#include "routes_twilio.hpp"

using namespace darkspere::worker;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {

// The worker as main.cpp wires it, minus the listener and the runner: a pool that is never started (no
// database), metrics, the Twilio routes and the router. One instance serves every input.
struct Worker {
    asio::io_context io;
    PgPool pool{io, "host=/nonexistent dbname=none", 2};
    Metrics metrics;
    std::shared_ptr<const Config> config = [] {
        auto c = std::make_shared<Config>();
        c->public_url = "https://sms.example.com";
        c->twilio_accounts = {{"AC00000000000000000000000000000001", "fuzz-auth-token"}};
        return std::shared_ptr<const Config>(c);
    }();
    TwilioRoutes twilio{pool, metrics, [this] { return config; }};
    Router router{io, pool, metrics, twilio};
};

Worker &worker() {
    static Worker *w = new Worker;  // never destroyed: libFuzzer exits without running static destructors
    return *w;
}

const std::set<unsigned> ROUTE_STATUSES = {200, 400, 403, 404, 405, 415, 500, 503};

// read_one reads the next request from buf as Session::read does (eager parser, then end of stream when the
// bytes run out). Returns the error code of the read; buf advances past what the parser used.
beast::error_code read_one(RequestParser &parser, asio::const_buffer &buf) {
    beast::error_code ec;
    parser.eager(true);
    while (!parser.is_done()) {
        size_t used = parser.put(buf, ec);
        buf += used;
        if (ec && ec != http::error::need_more)
            return ec;
        ec = {};
        if (used == 0) {
            // Nothing more will arrive: the client closed its side (what async_read sees as EOF).
            if (parser.got_some())
                parser.put_eof(ec);
            else
                ec = http::error::end_of_stream;
            if (!ec && !parser.is_done())
                ec = http::error::partial_message;
            return ec;
        }
    }
    return ec;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    Worker &w = worker();
    asio::const_buffer buf(data, size);
    // A session serves requests one after another on a keep-alive connection; cap the loop for speed.
    for (int served = 0; served < 8; ++served) {
        RequestParser parser;
        configure_request_parser(parser);
        beast::error_code ec = read_one(parser, buf);
        if (ec) {
            auto refusal = read_refusal(ec);
            if (refusal) {
                unsigned s = refusal->result_int();
                FUZZ_CHECK(s == 400 || s == 413 || s == 431);
            } else {
                FUZZ_CHECK(ec == http::error::end_of_stream);
            }
            return 0;
        }
        Request req = parser.release();
        FUZZ_CHECK(req.body().size() <= REQUEST_BODY_MAX);
        const bool keep_alive = req.keep_alive();

        int answers = 0;
        Response answer;
        w.router.handle(std::move(req), [&](Response res) {
            ++answers;
            answer = std::move(res);
        });
        w.io.poll();  // the pool's "unavailable" answers arrive through the loop
        w.io.restart();
        FUZZ_CHECK(answers == 1);
        FUZZ_CHECK(ROUTE_STATUSES.count(answer.result_int()) == 1);
        // The session's write: version, keep-alive and Content-Length, then the bytes on the wire.
        answer.keep_alive(keep_alive);
        answer.prepare_payload();
        std::ostringstream wire;
        wire << answer;
        FUZZ_CHECK(wire.str().rfind("HTTP/1.1 ", 0) == 0);
        if (!keep_alive)
            return 0;
    }
    return 0;
}
