// bench/peer/server.cpp — Beast server sessions (see server.hpp).
#include "server.hpp"

#include <chrono>
#include <cstdio>
#include <optional>

#include <boost/asio/ip/address.hpp>
#include <boost/beast/core/flat_buffer.hpp>

namespace darkspere::bench {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;

Response json_response(unsigned status, std::string body) {
    Response res{static_cast<http::status>(status), 11};
    res.set(http::field::content_type, "application/json; charset=utf-8");
    res.body() = std::move(body);
    return res;
}

namespace {

// A request body larger than this is refused: the worker's bodies are a few kB (the agent's history).
constexpr size_t BODY_LIMIT = 1 << 20;

// Session reads requests one after another on one connection and answers each before reading the next
// (HTTP/1.1 without pipelining, which is how curl and the worker use a connection). No idle timeout: the
// clients (the worker's connection pools) decide when a connection ends, and closing one from this side could
// race a request the client is sending on it; the process itself lives only as long as one benchmark.
class Session : public std::enable_shared_from_this<Session> {
  public:
    Session(tcp::socket socket, std::shared_ptr<Handler> handler, std::shared_ptr<size_t> open)
        : socket_(std::move(socket)), handler_(std::move(handler)), open_(std::move(open)) {
        ++*open_;
    }
    ~Session() { --*open_; }

    void read() {
        parser_.emplace();
        parser_->body_limit(BODY_LIMIT);
        http::async_read(socket_, buffer_, *parser_,
                         [self = shared_from_this()](beast::error_code ec, size_t) { self->on_read(ec); });
    }

  private:
    void on_read(beast::error_code ec) {
        if (ec) {
            // end of stream, reset, or a request we cannot parse: nothing useful to answer, just close.
            close();
            return;
        }
        Request req = parser_->release();
        res_ = (*handler_)(req);
        res_.version(req.version());
        res_.keep_alive(req.keep_alive());
        res_.prepare_payload();
        http::async_write(socket_, res_, [self = shared_from_this()](beast::error_code ec, size_t) {
            if (ec || !self->res_.keep_alive()) {
                self->close();
                return;
            }
            self->read();
        });
    }

    void close() {
        beast::error_code ignored;
        socket_.shutdown(tcp::socket::shutdown_both, ignored);
        socket_.close(ignored);
    }

    tcp::socket socket_;
    beast::flat_buffer buffer_;
    std::optional<http::request_parser<http::string_body>> parser_;
    Response res_;
    std::shared_ptr<Handler> handler_;
    std::shared_ptr<size_t> open_;
};

}  // namespace

Server::Server(asio::io_context &io, unsigned short port, Handler handler)
    : acceptor_(io),
      retry_(io),
      handler_(std::make_shared<Handler>(std::move(handler))),
      open_(std::make_shared<size_t>(0)) {
    tcp::endpoint endpoint{asio::ip::make_address("127.0.0.1"), port};
    acceptor_.open(endpoint.protocol());
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    acceptor_.bind(endpoint);
    // The worker opens hundreds of connections at once when a round starts: a short backlog would drop SYNs
    // and add a one-second retransmit to some first requests.
    acceptor_.listen(asio::socket_base::max_listen_connections);
    port_ = acceptor_.local_endpoint().port();
    accept();
}

size_t Server::open_connections() const {
    return *open_;
}

void Server::accept() {
    acceptor_.async_accept([this](beast::error_code ec, tcp::socket socket) {
        if (ec == asio::error::operation_aborted)
            return;
        if (ec) {
            // Typically EMFILE: accepting again at once would spin; wait for some connection to close.
            std::fprintf(stderr, "darkspere-bench-peer: accept: %s\n", ec.message().c_str());
            retry_.expires_after(std::chrono::milliseconds(100));
            retry_.async_wait([this](beast::error_code wait_ec) {
                if (!wait_ec)
                    accept();
            });
            return;
        }
        beast::error_code ignored;
        socket.set_option(tcp::no_delay(true), ignored);
        std::make_shared<Session>(std::move(socket), handler_, open_)->read();
        accept();
    });
}

}  // namespace darkspere::bench
