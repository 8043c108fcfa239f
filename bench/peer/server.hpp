// bench/peer/server.hpp — the peer answers through the worker's own HTTP server (src/worker/http_server.hpp:
// Beast, keep-alive, bounded bodies); this header names its types for the peer and adds JSON responses.
#pragma once

#include <string>
#include <utility>

#include "http_server.hpp"

namespace darkspere::bench {

namespace http = boost::beast::http;
using worker::HttpServer;
using worker::Request;
using worker::Responder;
using worker::Response;

// json_response — a response with a JSON body (Content-Length is set when it is written).
inline Response json_response(unsigned status, std::string body) {
    Response res = worker::make_response(status, "application/json; charset=utf-8", std::move(body));
    res.set(http::field::server, "darkspere-bench-peer");
    return res;
}

}  // namespace darkspere::bench
