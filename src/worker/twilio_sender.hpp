// src/worker/twilio_sender.hpp — sms_send jobs: POST to Twilio's Messages API and classify the answer.
//
// Classification follows docs/queue-contract.md: 201 completes the job with the sid; 429, 5xx, transport
// failures and 21611 (sender queue full) retry with backoff; 21610 (recipient opted out at the carrier)
// records the opt-out and stops; every other 4xx fails without retry.
#pragma once

#include <functional>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "http_client.hpp"

namespace darkspere::worker {

struct SmsSendJob {
    std::string provider_account;  // Twilio AccountSid
    std::string from, to, body, request_id;
};

struct SendOutcome {
    enum class Kind { sent, retry, fail, opted_out };
    Kind kind = Kind::fail;
    nlohmann::json result;  // for sent: {"sid", "status", "segments"}
    std::string error;      // for the others: reason recorded by fail_job
};

// TwilioSettings — what a send needs from the configuration (auth token looked up by AccountSid).
struct TwilioSettings {
    std::string twilio_base;
    std::string public_url;
    std::map<std::string, std::string> accounts;
    long deadline_ms = 10000;
};

// parse_sms_send_job — reads the job payload; false when a required field is missing.
bool parse_sms_send_job(const nlohmann::json &payload, SmsSendJob *job, std::string *error);

// twilio_send_request — the Messages.json POST for a job (form body, Basic auth, StatusCallback).
HttpRequest twilio_send_request(const SmsSendJob &job, const TwilioSettings &settings,
                                const std::string &token);

// classify_twilio_response — the outcome of one Messages API call, from status and body alone.
SendOutcome classify_twilio_response(const HttpResponse &response, const std::string &sent_body);

class TwilioSender {
  public:
    TwilioSender(HttpClient &http, std::function<TwilioSettings()> settings)
        : http_(http), settings_(std::move(settings)) {}
    // send — posts one message; on_done runs once on the event loop.
    void send(const SmsSendJob &job, std::function<void(SendOutcome)> on_done);

  private:
    HttpClient &http_;
    std::function<TwilioSettings()> settings_;
};

}  // namespace darkspere::worker
