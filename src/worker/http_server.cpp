// src/worker/http_server.cpp — Beast HTTP/1.1 server sessions (see http_server.hpp).
#include "http_server.hpp"

#include <optional>

#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>

#include "log.hpp"

namespace darkspere::worker {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

// State shared by the server and its sessions, so a session outliving the server object stays safe.
struct HttpServer::Shared {
    RequestHandler handler;
    size_t max_connections = 0;
    size_t open = 0;
    bool accepting = false;
    bool paused = false;  // at the connection limit; resume when one closes
    std::function<void()> resume;
    std::function<void(unsigned)> rejected;
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

class Session : public std::enable_shared_from_this<Session> {
  public:
    Session(tcp::socket socket, std::shared_ptr<HttpServer::Shared> shared)
        : stream_(std::move(socket)), shared_(std::move(shared)) {
        ++shared_->open;
    }
    ~Session() {
        --shared_->open;
        if (shared_->paused && shared_->resume)
            shared_->resume();
    }

    void read() {
        parser_.emplace();
        configure_request_parser(*parser_);
        stream_.expires_after(std::chrono::seconds(CONNECTION_IDLE_SECONDS));
        http::async_read(stream_, buffer_, *parser_,
                         [self = shared_from_this()](beast::error_code ec, size_t) { self->on_read(ec); });
    }

  private:
    void on_read(beast::error_code ec) {
        if (ec) {
            if (auto refusal = read_refusal(ec))
                reject(std::move(*refusal));
            else
                close();
            return;
        }
        Request req = parser_->release();
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
        res.prepare_payload();
        auto msg = std::make_shared<Response>(std::move(res));
        stream_.expires_after(std::chrono::seconds(CONNECTION_IDLE_SECONDS));
        http::async_write(stream_, *msg, [self = shared_from_this(), msg](beast::error_code ec, size_t) {
            self->written_pending_ = false;
            if (ec || !msg->keep_alive()) {
                self->close();
                return;
            }
            self->read();
        });
    }

    void close() {
        beast::error_code ignored;
        stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
        stream_.socket().close(ignored);
    }

    beast::tcp_stream stream_;
    beast::flat_buffer buffer_{REQUEST_BUFFER_MAX};
    std::optional<http::request_parser<http::string_body>> parser_;
    std::shared_ptr<HttpServer::Shared> shared_;
    bool written_pending_ = false;
};

}  // namespace

HttpServer::HttpServer(asio::io_context &io, RequestHandler handler, size_t max_connections)
    : io_(io), acceptor_(io), retry_timer_(io), shared_(std::make_shared<Shared>()) {
    shared_->handler = std::move(handler);
    shared_->max_connections = max_connections;
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
    if (shared_->open >= shared_->max_connections) {
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
        socket.set_option(tcp::no_delay(true), ec);
        std::make_shared<Session>(std::move(socket), shared)->read();
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
