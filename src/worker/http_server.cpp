// src/worker/http_server.cpp — Beast HTTP/1.1 server sessions (see http_server.hpp).
#include "http_server.hpp"

#include <algorithm>
#include <optional>

#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>

#include "connection_limits.hpp"
#include "log.hpp"

namespace darkspere::worker {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

// State shared by the server and its sessions, so a session outliving the server object stays safe.
struct HttpServer::Shared {
    explicit Shared(HttpLimits l) : limits(l), per_ip(l.max_connections_per_ip) {}
    RequestHandler handler;
    HttpLimits limits;
    PerIpConnections per_ip;
    size_t open = 0;
    bool accepting = false;
    bool paused = false;  // at the connection limit; resume when one closes
    std::function<void()> resume;
    std::function<void(unsigned)> rejected;
    std::function<void(const char *)> refused;
};

Response make_response(unsigned status, const std::string &content_type, std::string body) {
    Response res{static_cast<http::status>(status), 11};
    res.set(http::field::server, "darkspere-worker");
    if (!content_type.empty())
        res.set(http::field::content_type, content_type);
    res.body() = std::move(body);
    return res;
}

void configure_request_parser(RequestParser &parser) {
    parser.body_limit(REQUEST_BODY_MAX);
    parser.header_limit(REQUEST_HEADER_MAX);
}

uint64_t request_body_limit(std::string_view target) {
    std::string_view path = target.substr(0, target.find('?'));
    return path == "/stripe/webhook" ? STRIPE_WEBHOOK_BODY_MAX : REQUEST_BODY_MAX;
}

std::optional<Response> read_refusal(const beast::error_code &ec) {
    const char *const text_type = "text/plain; charset=utf-8";
    if (ec == http::error::end_of_stream || ec == beast::error::timeout || ec == asio::error::eof ||
        ec == asio::error::connection_reset || ec == asio::error::operation_aborted)
        return std::nullopt;
    if (ec == http::error::body_limit)
        return make_response(413, text_type, "request body too large\n");
    if (ec == http::error::header_limit || ec == http::error::buffer_overflow)
        return make_response(431, text_type, "request header, chunk header or trailer too large\n");
    return make_response(400, text_type, "malformed http request\n");
}

namespace {

// Session — one connection. Each request is read in two steps with their own clocks: the header must be
// complete by a deadline set when the connection was accepted (or the previous response was written), however
// slowly its bytes trickle in; the body then gets REQUEST_BODY_SECONDS. Between requests a kept-alive
// connection waits at most idle_timeout for the next one to start.
class Session : public std::enable_shared_from_this<Session> {
  public:
    Session(tcp::socket socket, asio::ip::address peer, std::shared_ptr<HttpServer::Shared> shared)
        : stream_(std::move(socket)), peer_(std::move(peer)), shared_(std::move(shared)) {
        ++shared_->open;
    }
    ~Session() {
        --shared_->open;
        shared_->per_ip.close(peer_);  // try_open counted this connection before it was made
        if (shared_->paused && shared_->resume)
            shared_->resume();
    }

    // start — the first request; its header deadline runs from the accept.
    void start() {
        header_deadline_ = std::chrono::steady_clock::now() + shared_->limits.header_timeout;
        read_header();
    }

  private:
    // await_request — after a kept-alive response: the next request must start within idle_timeout and its
    // header be complete within header_timeout, both counted from now.
    void await_request() {
        auto now = std::chrono::steady_clock::now();
        header_deadline_ = now + shared_->limits.header_timeout;
        if (buffer_.size() > 0) {  // a pipelined request is already here
            read_header();
            return;
        }
        stream_.expires_at(std::min(now + shared_->limits.idle_timeout, header_deadline_));
        size_t room = std::min<size_t>(4096, buffer_.max_size() - buffer_.size());
        stream_.async_read_some(buffer_.prepare(room),
                                [self = shared_from_this()](beast::error_code ec, size_t n) {
                                    if (ec) {
                                        self->close();  // idle too long, or the client went away
                                        return;
                                    }
                                    self->buffer_.commit(n);
                                    self->read_header();
                                });
    }

    void read_header() {
        parser_.emplace();
        configure_request_parser(*parser_);
        stream_.expires_at(header_deadline_);
        http::async_read_header(
            stream_, buffer_, *parser_,
            [self = shared_from_this()](beast::error_code ec, size_t) { self->on_header(ec); });
    }

    void on_header(beast::error_code ec) {
        if (ec) {
            on_read_error(ec);
            return;
        }
        if (parser_->is_done()) {
            on_request();
            return;
        }
        parser_->body_limit(request_body_limit(parser_->get().target()));
        stream_.expires_after(std::chrono::seconds(REQUEST_BODY_SECONDS));
        http::async_read(stream_, buffer_, *parser_,
                         [self = shared_from_this()](beast::error_code ec, size_t) {
                             if (ec)
                                 self->on_read_error(ec);
                             else
                                 self->on_request();
                         });
    }

    void on_read_error(beast::error_code ec) {
        if (auto refusal = read_refusal(ec))
            reject(std::move(*refusal));
        else
            close();
    }

    void on_request() {
        Request req = parser_->release();
        req.erase(PEER_ADDRESS_FIELD);  // a client cannot choose the address it is counted under
        req.set(PEER_ADDRESS_FIELD, peer_.to_string());
        bool keep_alive = req.keep_alive();
        unsigned version = req.version();
        stream_.expires_never();  // the handler may wait on the database; its own paths bound the wait
        auto self = shared_from_this();
        shared_->handler(std::move(req), [self, keep_alive, version](Response res) {
            self->write(std::move(res), keep_alive, version);
        });
    }

    void reject(Response res) {
        if (shared_->rejected)
            shared_->rejected(res.result_int());
        write(std::move(res), false, 11);
    }

    void write(Response res, bool keep_alive, unsigned version) {
        if (written_pending_)
            return;  // a handler answered twice; the first answer stands
        written_pending_ = true;
        res.version(version == 10 ? 10 : 11);
        res.keep_alive(keep_alive);
        // Tell the client how long an idle connection stays open, so it does not send its next request on
        // one we are closing (undici, curl and browsers read the hint).
        auto idle_seconds =
            std::chrono::duration_cast<std::chrono::seconds>(shared_->limits.idle_timeout).count();
        if (keep_alive && idle_seconds > 0)
            res.set(http::field::keep_alive, "timeout=" + std::to_string(idle_seconds));
        res.prepare_payload();
        auto msg = std::make_shared<Response>(std::move(res));
        stream_.expires_after(std::chrono::seconds(RESPONSE_WRITE_SECONDS));
        http::async_write(stream_, *msg, [self = shared_from_this(), msg](beast::error_code ec, size_t) {
            self->written_pending_ = false;
            if (ec || !msg->keep_alive()) {
                self->close();
                return;
            }
            self->await_request();
        });
    }

    void close() {
        beast::error_code ignored;
        stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
        stream_.socket().close(ignored);
    }

    beast::tcp_stream stream_;
    asio::ip::address peer_;
    beast::flat_buffer buffer_{REQUEST_BUFFER_MAX};
    std::optional<http::request_parser<http::string_body>> parser_;
    std::shared_ptr<HttpServer::Shared> shared_;
    std::chrono::steady_clock::time_point header_deadline_;
    bool written_pending_ = false;
};

}  // namespace

HttpServer::HttpServer(asio::io_context &io, RequestHandler handler, HttpLimits limits)
    : io_(io), acceptor_(io), retry_timer_(io), shared_(std::make_shared<Shared>(limits)) {
    shared_->handler = std::move(handler);
}

HttpServer::~HttpServer() {
    shared_->resume = nullptr;
    shared_->accepting = false;
}

uint16_t HttpServer::listen(const std::string &host, uint16_t port) {
    tcp::endpoint endpoint(asio::ip::make_address(host), port);
    acceptor_.open(endpoint.protocol());
    acceptor_.set_option(asio::socket_base::reuse_address(true));
    acceptor_.bind(endpoint);
    acceptor_.listen(asio::socket_base::max_listen_connections);
    shared_->accepting = true;
    shared_->rejected = [this](unsigned status) {
        if (on_rejected)
            on_rejected(status);
    };
    shared_->refused = [this](const char *reason) {
        if (on_refused)
            on_refused(reason);
    };
    shared_->resume = [this] {
        if (shared_->paused && shared_->accepting) {
            shared_->paused = false;
            accept();
        }
    };
    accept();
    return acceptor_.local_endpoint().port();
}

void HttpServer::accept() {
    if (!shared_->accepting)
        return;
    if (shared_->open >= shared_->limits.max_connections) {
        shared_->paused = true;  // the kernel backlog holds further clients until a session closes
        return;
    }
    acceptor_.async_accept([this, shared = shared_](beast::error_code ec, tcp::socket socket) {
        if (!shared->accepting)
            return;
        if (ec) {
            if (ec != asio::error::operation_aborted) {
                // EMFILE and friends: log and try again shortly instead of spinning.
                log_warn("accept failed", {{"error", ec.message()}});
                retry_timer_.expires_after(std::chrono::milliseconds(100));
                retry_timer_.async_wait([this, shared](beast::error_code wait_ec) {
                    if (!wait_ec && shared->accepting)
                        accept();
                });
            }
            return;
        }
        auto peer = socket.remote_endpoint(ec);
        if (ec) {  // the client is already gone
            accept();
            return;
        }
        // Refused before a session exists: the connection costs no buffer and no timer, and frees its file
        // descriptor at once, so an address at its cap cannot hold more of max-connections by opening more.
        if (!shared->per_ip.try_open(peer.address())) {
            socket.close(ec);
            if (shared->refused)
                shared->refused("per_ip");
            accept();
            return;
        }
        socket.set_option(tcp::no_delay(true), ec);
        std::make_shared<Session>(std::move(socket), peer.address(), shared)->start();
        accept();
    });
}

void HttpServer::stop_accepting() {
    shared_->accepting = false;
    beast::error_code ignored;
    acceptor_.close(ignored);
    retry_timer_.cancel();
}

size_t HttpServer::open_connections() const {
    return shared_->open;
}

}  // namespace darkspere::worker
