// bench/peer/server.hpp — a keep-alive HTTP/1.1 server on loopback handing every request to one handler.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/http.hpp>

namespace darkspere::bench {

namespace http = boost::beast::http;
using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

// Both peers answer at once, so a handler is synchronous: request in, response out.
using Handler = std::function<Response(const Request &)>;

// json_response builds a response with a JSON body (Content-Length is set when it is written).
Response json_response(unsigned status, std::string body);

class Server {
  public:
    // Listens on 127.0.0.1:port (0: the kernel picks one) and starts accepting.
    Server(boost::asio::io_context &io, unsigned short port, Handler handler);
    unsigned short port() const { return port_; }
    // open_connections counts the sessions alive now (for the stats command).
    size_t open_connections() const;

  private:
    void accept();

    boost::asio::ip::tcp::acceptor acceptor_;
    boost::asio::steady_timer retry_;
    std::shared_ptr<Handler> handler_;
    std::shared_ptr<size_t> open_;
    unsigned short port_ = 0;
};

}  // namespace darkspere::bench
