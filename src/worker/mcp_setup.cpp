// src/worker/mcp_setup.cpp — the first steps of an MCP call: which protocol era the server speaks
// (server/discover, cached per agent and origin; docs/protocols.md#mcp-era-detection), the legacy initialize
// handshake and its session, and starting over when a cached era turns out stale. The steps after them are in
// mcp_client.cpp.
#include "mcp_call.hpp"

#include <utility>

namespace darkspere::worker::mcp_detail {

// start — the first step: use the cached era of the origin or probe for it.
void McpCall::start() {
    auto found = state_->eras.find(era_key_);
    if (found == state_->eras.end()) {
        probe();
        return;
    }
    enter_era(found->second);
}

// probe — server/discover in the modern shape; the answer decides the era
// (docs/protocols.md#mcp-era-detection).
void McpCall::probe() {
    era_ = McpEra::modern;
    modern_version_ = std::string(kMcpModernVersion);
    send_request("server/discover", nlohmann::json::object(), {},
                 [self = shared_from_this()](const RpcReply &reply) {
                     ProbeVerdict verdict = mcp_classify_probe(reply.status, reply.message);
                     if (verdict.era == McpEra::unknown) {
                         self->fail("era detection failed: " + verdict.error);
                         return;
                     }
                     OriginEra found{verdict.era, verdict.version};
                     self->state_->eras[self->era_key_] = found;
                     self->enter_era(found);
                 });
}

void McpCall::enter_era(const OriginEra &found) {
    era_ = found.era;
    if (era_ == McpEra::modern) {
        modern_version_ = found.version;
        after_setup();
        return;
    }
    offered_version_ = found.version;
    if (endpoint().session_ready) {
        session_id_ = endpoint().session_id;
        negotiated_version_ = endpoint().negotiated_version;
        after_setup();
        return;
    }
    initialize([self = shared_from_this()] { self->after_setup(); });
}

// initialize — the legacy handshake; then runs `then`. A new session replaces any earlier one.
void McpCall::initialize(std::function<void()> then) {
    // The new session stays private to this call until its handshake completes, so turns running
    // concurrently keep using the session they started with.
    session_id_.clear();
    negotiated_version_.clear();
    nlohmann::json params = {{"protocolVersion", offered_version_},
                             {"capabilities", nlohmann::json::object()},
                             {"clientInfo", mcp_client_info(state_->client_version)}};
    send_request("initialize", std::move(params), {},
                 [self = shared_from_this(), then = std::move(then)](const RpcReply &reply) {
                     self->on_initialized(reply, then);
                 });
}

void McpCall::on_initialized(const RpcReply &reply, const std::function<void()> &then) {
    if (!reply.has_result()) {
        // Era detection step 5: a server that refuses both eras may speak the unsupported 2024-11-05
        // transport.
        state_->eras.erase(era_key_);
        fail("legacy handshake failed: " + describe_failure(reply));
        return;
    }
    const auto &result = reply.message["result"];
    std::string version = result.contains("protocolVersion") && result["protocolVersion"].is_string()
                              ? result["protocolVersion"].get<std::string>()
                              : std::string();
    if (!mcp_is_supported_version(version) || mcp_is_modern_version(version)) {
        state_->eras.erase(era_key_);
        fail("unsupported protocol version " + (version.empty() ? std::string("(none)") : version));
        return;
    }
    if (!reply.session_id.empty() && !mcp_is_visible_ascii(reply.session_id)) {
        fail("invalid Mcp-Session-Id from agent");
        return;
    }
    session_id_ = reply.session_id;
    negotiated_version_ = version;
    send_notification("notifications/initialized", nullptr,
                      [self = shared_from_this(), then](const HttpResponse &response) {
                          if (response.status < 200 || response.status >= 300) {
                              self->fail("legacy handshake failed: notifications/initialized got http " +
                                         std::to_string(response.status));
                              return;
                          }
                          EndpointCache &cache = self->endpoint();
                          cache.session_ready = true;
                          cache.session_id = self->session_id_;
                          cache.negotiated_version = self->negotiated_version_;
                          then();
                      });
}

// recover_stale_era — a modern request answered the way a legacy server answers (or with -32022) means
// the cached era no longer holds: forget it and start over with a probe, once per call. Returns true when
// it took over the call.
bool McpCall::recover_stale_era(const RpcReply &reply) {
    if (era_ != McpEra::modern || reprobed_ || reply.http_ok()) {
        return false;
    }
    long code = reply.error_code();
    bool legacy_like = (reply.status == 400 || reply.status == 404 || reply.status == 405) &&
                       mcp_classify_probe(reply.status, reply.message).era == McpEra::legacy;
    if (code != kErrorUnsupportedProtocolVersion && !legacy_like) {
        return false;
    }
    reprobed_ = true;
    state_->eras.erase(era_key_);
    endpoint().tools_loaded = false;  // a different server may stand behind the endpoint now
    probe();
    return true;
}

}  // namespace darkspere::worker::mcp_detail
