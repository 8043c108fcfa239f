// bench/peer/client_pool.cpp — keep-alive client connections (see client_pool.hpp).
#include "client_pool.hpp"

#include <optional>

#include <boost/asio/post.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>

namespace darkspere::bench {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;

// A response body larger than this is an error: the worker answers webhooks with a few bytes of TwiML.
constexpr size_t RESPONSE_BODY_LIMIT = 1 << 20;

struct ClientPool::Connection {
    explicit Connection(asio::io_context &io) : stream(io) {}
    beast::tcp_stream stream;
    beast::flat_buffer buffer;
    Request req;
    std::optional<http::response_parser<http::string_body>> parser;
    bool connected = false;
};

ClientPool::ClientPool(asio::io_context &io, tcp::endpoint endpoint, size_t max_connections,
                       std::chrono::milliseconds timeout)
    : io_(io),
      endpoint_(std::move(endpoint)),
      max_connections_(max_connections ? max_connections : 1),
      timeout_(timeout) {}

void ClientPool::post(Request req, Done done) {
    if (closed_) {
        asio::post(io_, [done = std::move(done)] { done({0, "pool closed"}); });
        return;
    }
    if (!idle_.empty()) {
        ConnectionPtr c = std::move(idle_.back());
        idle_.pop_back();
        start(c, std::move(req), std::move(done));
    } else if (all_.size() < max_connections_) {
        open_for(std::move(req), std::move(done));
    } else {
        waiting_.emplace_back(std::move(req), std::move(done));
    }
}

void ClientPool::open_for(Request req, Done done) {
    auto c = std::make_shared<Connection>(io_);
    all_.insert(c);
    ++opened_;
    start(c, std::move(req), std::move(done));
}

void ClientPool::start(const ConnectionPtr &c, Request req, Done done) {
    c->req = std::move(req);
    c->stream.expires_after(timeout_);  // one bound for connect, write and read together
    if (c->connected) {
        write(c, std::move(done));
        return;
    }
    c->stream.async_connect(
        endpoint_, [self = shared_from_this(), c, done = std::move(done)](beast::error_code ec) mutable {
            if (ec) {
                self->finish(c, {0, "connect: " + ec.message()}, std::move(done), false);
                return;
            }
            c->connected = true;
            beast::error_code ignored;
            c->stream.socket().set_option(tcp::no_delay(true), ignored);
            self->write(c, std::move(done));
        });
}

void ClientPool::write(const ConnectionPtr &c, Done done) {
    http::async_write(
        c->stream, c->req,
        [self = shared_from_this(), c, done = std::move(done)](beast::error_code ec, size_t) mutable {
            if (ec) {
                self->finish(c, {0, "write: " + ec.message()}, std::move(done), false);
                return;
            }
            c->parser.emplace();
            c->parser->body_limit(RESPONSE_BODY_LIMIT);
            http::async_read(c->stream, c->buffer, *c->parser,
                             [self, c, done = std::move(done)](beast::error_code ec, size_t) mutable {
                                 if (ec) {
                                     self->finish(c, {0, "read: " + ec.message()}, std::move(done), false);
                                     return;
                                 }
                                 c->stream.expires_never();
                                 const auto &res = c->parser->get();
                                 self->finish(c, {res.result_int(), ""}, std::move(done), res.keep_alive());
                             });
        });
}

void ClientPool::finish(const ConnectionPtr &c, PostResult result, Done done, bool reusable) {
    if (!reusable || closed_) {
        c->stream.close();  // also cancels the connection's timeout timer
        all_.erase(c);
        // The queue waits for a free connection: a closed one frees a slot for a new one.
        if (!closed_ && !waiting_.empty()) {
            auto [req, next] = std::move(waiting_.front());
            waiting_.pop_front();
            open_for(std::move(req), std::move(next));
        }
    } else if (!waiting_.empty()) {
        auto [req, next] = std::move(waiting_.front());
        waiting_.pop_front();
        start(c, std::move(req), std::move(next));
    } else {
        idle_.push_back(c);
    }
    done(std::move(result));
}

void ClientPool::close() {
    closed_ = true;
    idle_.clear();
    // Closing a socket makes its pending operation complete with operation_aborted, which lands in finish().
    for (const auto &c : all_)
        c->stream.close();
    all_.clear();  // handlers in flight hold their connection; finish() erasing it again is harmless
    for (auto &[req, done] : waiting_)
        asio::post(io_, [done = std::move(done)] { done({0, "pool closed"}); });
    waiting_.clear();
}

}  // namespace darkspere::bench
