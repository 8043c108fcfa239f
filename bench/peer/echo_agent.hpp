// bench/peer/echo_agent.hpp — the instant agent of the benchmark, speaking DarkSpere's `http` agent protocol.
#pragma once

#include <string>

#include "server.hpp"

namespace darkspere::bench {

// echo_agent answers a turn {request_id, session_id, from, to, message, history} with 200
// {"reply": "<name>: <message> [history N]"}, exactly as test/e2e/peers/http-agent.mjs does in echo mode
// (test/e2e/peers/echo.mjs): run.mjs matches replies, and the database's latency rows, by that text. A body
// that is not JSON is answered 400, as the Node agent does.
Response echo_agent(const Request &req, const std::string &name);

}  // namespace darkspere::bench
