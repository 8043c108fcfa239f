// src/worker/twilio_sender.hpp — sms_send jobs: POST to Twilio's Messages API and classify the answer.
//
// Classification follows docs/queue-contract.md: 201 completes the job with the sid; 429, 5xx, transport
// failures and 21611 (sender queue full) retry with backoff; 21610 (recipient opted out at the carrier)
// records the opt-out and stops; every other 4xx fails without retry.
//
// Requests per Twilio account are bounded and shared between tenants by a SendGate (send_gate.hpp).
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "config.hpp"
#include "http_client.hpp"
#include "send_gate.hpp"

namespace darkspere::worker {

// The most a Twilio API response may hold: its answers are a few KiB, so anything far larger is not Twilio's.
inline constexpr size_t TWILIO_MAX_RESPONSE_BYTES = 64 * 1024;

struct SmsSendJob {
    std::string provider_account;  // Twilio AccountSid
    std::string from, to, body, request_id;
    std::string tenant;  // whose turn it is at the send gate (the job's tenant_of, set by the job runner)
};

struct SendOutcome {
    enum class Kind { sent, retry, fail, opted_out };
    Kind kind = Kind::fail;
    nlohmann::json result;                         // for sent: {"sid", "status", "segments"}
    std::string error;                             // for the others: reason recorded by fail_job
    std::chrono::steady_clock::duration waited{};  // for a free request slot, before the request started
    bool requested = false;                        // a Messages API request was made (and answered or not)
};

// TwilioSettings — what a send needs from the configuration (auth token looked up by AccountSid).
struct TwilioSettings {
    std::string twilio_base;
    std::string public_url;
    std::map<std::string, std::string> accounts;
    long deadline_ms = 10000;
    long max_concurrent = TWILIO_MAX_CONCURRENT_DEFAULT;  // requests open at once per AccountSid
    // The lease of a claimed send: a send still waiting for a slot when the rest of its lease could no longer
    // cover the request (lease − deadline − LEASE_MARGIN_MS after it arrived) is retried later, not started.
    long lease_ms = LEASE_SECONDS_DEFAULT * 1000;
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
    TwilioSender(boost::asio::io_context &io, HttpClient &http, std::function<TwilioSettings()> settings)
        : http_(http),
          settings_(std::move(settings)),
          gate_(io, [this] { return settings_().max_concurrent; }) {}
    // send — posts one message once its account has a free request slot; on_done runs once, on the event loop
    // or inside this call.
    void send(const SmsSendJob &job, std::function<void(SendOutcome)> on_done);
    long sends_waiting() const { return gate_.waiting(); }

  private:
    HttpClient &http_;
    std::function<TwilioSettings()> settings_;
    SendGate gate_;
};

}  // namespace darkspere::worker
