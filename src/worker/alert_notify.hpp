// src/worker/alert_notify.hpp — the webhook POST of an alert_notify job (issue #14; docs/operations.md
// "Alerts"): the Slack-compatible body the database built ({"text": …} plus structured fields), signed with
// the channel's secret like an agent call (X-DarkSpere-Signature), sent through the agents' HTTP client and
// egress policy.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "http_client.hpp"

namespace darkspere::worker {

// alert_notify_request — the signed POST for a claimed alert_notify payload ({webhook_url, body,
// signing_secrets, request_id}); false with *error when the payload is unusable.
bool alert_notify_request(const nlohmann::json &payload, HttpRequest *request, std::string *error);

// AlertNotifyOutcome — delivered on a 2xx; otherwise the error (status or transport), never the receiver's
// text.
struct AlertNotifyOutcome {
    bool delivered = false;
    std::string error;
};
AlertNotifyOutcome alert_notify_outcome(const HttpResponse &response);

}  // namespace darkspere::worker
