// src/worker/agent_http.hpp — the plain `http` agent protocol (docs/protocols.md#http-agent-protocol): one
// JSON POST per turn.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "agent_protocol.hpp"
#include "http_client.hpp"

namespace darkspere::worker {

// agent_http_request — the POST for one turn: JSON body {request_id, session_id, from, to, message, history}
// and the Idempotency-Key header, so an agent can drop a retried turn it already answered.
HttpRequest agent_http_request(const AgentTurn &turn);

// agent_http_outcome — reads the agent's answer: 200 with {"reply": string} succeeds (reply trimmed; "" =
// send nothing); anything else is a failure whose error never quotes the agent's text.
AgentOutcome agent_http_outcome(const HttpResponse &response);

class AgentHttp {
  public:
    explicit AgentHttp(HttpClient &http) : http_(http) {}
    // call — runs one turn; on_done runs once on the event loop.
    void call(const AgentTurn &turn, AgentCallback on_done);
    // probe — the health probe of an http agent: GET {origin of turn.endpoint}{probe_path}, signed like a
    // turn (over an empty body); any 2xx passes.
    void probe(const AgentTurn &turn, const std::string &probe_path, AgentCallback on_done);
    // send — any other request to the outside (alert webhooks) through the same client and egress policy.
    void send(HttpRequest request, std::function<void(HttpResponse)> on_done) {
        http_.send(std::move(request), std::move(on_done));
    }

  private:
    HttpClient &http_;
};

// agent_probe_request — the probe's GET (see AgentHttp::probe); agent_probe_outcome — 2xx passes, anything
// else fails with a reason that never quotes the agent.
HttpRequest agent_probe_request(const AgentTurn &turn, const std::string &probe_path);
AgentOutcome agent_probe_outcome(const HttpResponse &response);

// trim_reply — the reply without surrounding whitespace (a reply of only whitespace becomes "").
std::string trim_reply(const std::string &text);

}  // namespace darkspere::worker
