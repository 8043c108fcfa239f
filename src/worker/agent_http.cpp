// src/worker/agent_http.cpp — plain `http` agent protocol (see agent_http.hpp).
#include "agent_http.hpp"

#include "agent_json.hpp"
#include "agent_signature.hpp"
#include "mcp_era.hpp"

namespace darkspere::worker {

std::string trim_reply(const std::string &text) {
    const char *ws = " \t\r\n\v\f";
    size_t b = text.find_first_not_of(ws);
    if (b == std::string::npos)
        return "";
    size_t e = text.find_last_not_of(ws);
    return text.substr(b, e - b + 1);
}

HttpRequest agent_http_request(const AgentTurn &turn) {
    nlohmann::json body = {{"request_id", turn.request_id},
                           {"session_id", turn.session_id},
                           {"from", turn.from},
                           {"to", turn.to},
                           {"message", turn.message},
                           {"history", turn.history}};
    HttpRequest req;
    req.method = "POST";
    req.url = turn.endpoint;
    req.deadline = turn.deadline;
    req.max_response_bytes = turn.max_response_bytes;
    req.headers = {{"Content-Type", "application/json"},
                   {"Accept", "application/json"},
                   {"Idempotency-Key", turn.request_id}};
    req.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    sign_agent_request(req, turn.signing_secrets);
    return req;
}

AgentOutcome agent_http_outcome(const HttpResponse &response) {
    AgentOutcome out;
    out.latency_ms = static_cast<long>(response.elapsed.count());
    if (response.too_large) {
        out.error = "agent " + response.error;
        return out;
    }
    if (response.status == 0) {
        out.error = response.error.empty() ? "no response" : response.error;
        return out;
    }
    if (response.status != 200) {
        out.error = "agent http " + std::to_string(response.status);
        return out;
    }
    nlohmann::json body = parse_foreign_json(response.body);
    if (body.is_discarded() || !body.is_object()) {
        out.error = "agent answer is not a JSON object";
        return out;
    }
    auto it = body.find("reply");
    if (it == body.end()) {
        out.error = "agent answer has no reply";
        return out;
    }
    if (!it->is_string()) {
        out.error = "agent reply is not a string";
        return out;
    }
    out.ok = true;
    out.reply = trim_reply(it->get<std::string>());
    return out;
}

HttpRequest agent_probe_request(const AgentTurn &turn, const std::string &probe_path) {
    HttpRequest req;
    req.method = "GET";
    req.url = mcp_origin(turn.endpoint) + probe_path;
    req.deadline = turn.deadline;
    req.max_response_bytes = turn.max_response_bytes;
    req.headers = {{"Accept", "application/json, text/plain, */*"}, {"X-Request-Id", turn.request_id}};
    sign_agent_request(req, turn.signing_secrets);
    return req;
}

AgentOutcome agent_probe_outcome(const HttpResponse &response) {
    AgentOutcome out;
    out.latency_ms = static_cast<long>(response.elapsed.count());
    out.error = response.failure("probe");
    out.ok = out.error.empty();
    return out;
}

void AgentHttp::probe(const AgentTurn &turn, const std::string &probe_path, AgentCallback on_done) {
    http_.send(agent_probe_request(turn, probe_path), [on_done = std::move(on_done)](HttpResponse response) {
        on_done(agent_probe_outcome(response));
    });
}

void AgentHttp::call(const AgentTurn &turn, AgentCallback on_done) {
    http_.send(agent_http_request(turn), [on_done = std::move(on_done)](HttpResponse response) {
        on_done(agent_http_outcome(response));
    });
}

}  // namespace darkspere::worker
