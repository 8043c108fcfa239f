// src/worker/alert_notify.cpp — alert webhook requests and their outcome (see alert_notify.hpp).
#include "alert_notify.hpp"

#include "agent_signature.hpp"

namespace darkspere::worker {

namespace {
constexpr size_t kMaxWebhookResponseBytes = 64 * 1024;  // the answer is not read; only its status counts
constexpr std::chrono::milliseconds kWebhookDeadline{10000};
}  // namespace

bool alert_notify_request(const nlohmann::json &payload, HttpRequest *request, std::string *error) {
    auto url = payload.find("webhook_url");
    auto body = payload.find("body");
    if (url == payload.end() || !url->is_string() || url->get<std::string>().empty()) {
        *error = "alert_notify payload has no webhook_url (channel removed?)";
        return false;
    }
    if (body == payload.end() || !body->is_object()) {
        *error = "alert_notify payload has no body object";
        return false;
    }
    std::vector<std::string> secrets;
    if (auto it = payload.find("signing_secrets"); it != payload.end() && it->is_array()) {
        for (const auto &secret : *it)
            if (secret.is_string())
                secrets.push_back(secret.get<std::string>());
    }
    HttpRequest req;
    req.method = "POST";
    req.url = url->get<std::string>();
    req.deadline = kWebhookDeadline;
    req.max_response_bytes = kMaxWebhookResponseBytes;
    req.headers = {{"Content-Type", "application/json"}};
    if (auto rid = payload.find("request_id"); rid != payload.end() && rid->is_string())
        req.headers.emplace_back("X-Request-Id", rid->get<std::string>());
    req.body = body->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    sign_agent_request(req, secrets);
    *request = std::move(req);
    return true;
}

AlertNotifyOutcome alert_notify_outcome(const HttpResponse &response) {
    AlertNotifyOutcome out;
    out.error = response.failure("webhook");
    out.delivered = out.error.empty();
    return out;
}

}  // namespace darkspere::worker
