// src/worker/twilio_sender.cpp — Twilio Messages API client (see twilio_sender.hpp).
#include "twilio_sender.hpp"

#include <boost/asio/post.hpp>

#include "agent_json.hpp"
#include "common/form.hpp"
#include "common/sms_segments.hpp"

namespace darkspere::worker {

namespace {

// Twilio error codes with their own handling (docs/protocols.md#twilio-error-codes).
constexpr long TWILIO_CODE_OPTED_OUT = 21610;
constexpr long TWILIO_CODE_QUEUE_FULL = 21611;
constexpr long TWILIO_CODE_TOO_MANY_REQUESTS = 20429;

// Peer text in an error is cut short: it goes to logs and to the jobs table.
constexpr size_t ERROR_TEXT_MAX = 200;

std::string cut(std::string s) {
    if (s.size() > ERROR_TEXT_MAX)
        s = s.substr(0, ERROR_TEXT_MAX) + "…";
    return s;
}

long json_long(const nlohmann::json &v) {
    if (v.is_number_integer())
        return v.get<long>();
    if (v.is_string()) {
        try {
            return std::stol(v.get<std::string>());
        } catch (const std::exception &) {
        }
    }
    return 0;
}

std::string json_string(const nlohmann::json &obj, const char *key) {
    auto it = obj.find(key);
    return it != obj.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

bool parse_sms_send_job(const nlohmann::json &payload, SmsSendJob *job, std::string *error) {
    if (!payload.is_object()) {
        *error = "sms_send payload is not an object";
        return false;
    }
    job->provider_account = json_string(payload, "provider_account");
    job->from = json_string(payload, "from");
    job->to = json_string(payload, "to");
    job->body = json_string(payload, "body");
    job->request_id = json_string(payload, "request_id");
    for (auto [name, value] :
         {std::pair<const char *, const std::string *>{"provider_account", &job->provider_account},
          {"from", &job->from},
          {"to", &job->to}}) {
        if (value->empty()) {
            *error = std::string("sms_send payload lacks ") + name;
            return false;
        }
    }
    return true;
}

HttpRequest twilio_send_request(const SmsSendJob &job, const TwilioSettings &settings,
                                const std::string &token) {
    HttpRequest req;
    req.method = "POST";
    req.url =
        settings.twilio_base + "/2010-04-01/Accounts/" + form_encode(job.provider_account) + "/Messages.json";
    req.deadline = std::chrono::milliseconds(settings.deadline_ms);
    req.max_response_bytes = TWILIO_MAX_RESPONSE_BYTES;
    req.basic_auth_user = job.provider_account;
    req.basic_auth_password = token;
    req.headers = {{"Content-Type", "application/x-www-form-urlencoded"}, {"Accept", "application/json"}};
    req.body = encode_form({{"To", job.to},
                            {"From", job.from},
                            {"Body", job.body},
                            {"StatusCallback", settings.public_url + "/twilio/status"}});
    return req;
}

SendOutcome classify_twilio_response(const HttpResponse &response, const std::string &sent_body) {
    SendOutcome out;
    if (response.status == 0) {
        out.kind = SendOutcome::Kind::retry;
        out.error =
            "twilio unreachable: " + (response.error.empty() ? std::string("no response") : response.error);
        return out;
    }
    if (response.too_large) {
        // Accepted and then flooded: the message may exist, so a retry could send it twice. Anything else
        // oversized is no answer Twilio gives; retry it like a transport failure.
        bool accepted = response.status >= 200 && response.status < 300;
        out.kind = accepted ? SendOutcome::Kind::fail : SendOutcome::Kind::retry;
        out.error = "twilio http " + std::to_string(response.status) + ": " + response.error;
        return out;
    }
    nlohmann::json body = parse_foreign_json(response.body);
    if (response.status >= 200 && response.status < 300) {
        std::string sid = body.is_object() ? json_string(body, "sid") : "";
        if (sid.empty()) {
            // Twilio said yes without a sid: the message probably exists, so a retry could send it twice.
            out.kind = SendOutcome::Kind::fail;
            out.error = "twilio http " + std::to_string(response.status) + " without a message sid";
            return out;
        }
        out.kind = SendOutcome::Kind::sent;
        std::string status = json_string(body, "status");
        long segments = body.contains("num_segments") ? json_long(body["num_segments"]) : 0;
        if (segments <= 0) {
            // Messaging Services answer "0" until a sender is picked; count what we sent instead.
            try {
                segments = count_segments(sent_body).segments;
            } catch (const std::exception &) {
                segments = 1;
            }
        }
        out.result = {{"sid", sid}, {"status", status.empty() ? "queued" : status}, {"segments", segments}};
        return out;
    }

    // Two error shapes: the 2010 API's {code, message, more_info, status} and RFC 9457 problem JSON
    // {type, title, status, detail, code?}; tell them apart by their keys, as twilio-python does.
    long code = 0;
    std::string message;
    if (body.is_object()) {
        if (body.contains("code"))
            code = json_long(body["code"]);
        if (body.contains("type") || body.contains("title") || body.contains("detail")) {
            message = json_string(body, "detail");
            if (message.empty())
                message = json_string(body, "title");
        }
        if (message.empty())
            message = json_string(body, "message");
    }
    std::string label =
        code ? "twilio " + std::to_string(code) : "twilio http " + std::to_string(response.status);
    if (code == TWILIO_CODE_OPTED_OUT) {
        out.kind = SendOutcome::Kind::opted_out;
        out.error = "twilio 21610: recipient opted out";
        return out;
    }
    bool retryable = response.status == 429 || response.status >= 500 || code == TWILIO_CODE_QUEUE_FULL ||
                     code == TWILIO_CODE_TOO_MANY_REQUESTS;
    out.kind = retryable ? SendOutcome::Kind::retry : SendOutcome::Kind::fail;
    out.error = cut(message.empty() ? label : label + ": " + message);
    return out;
}

void TwilioSender::send(const SmsSendJob &job, std::function<void(SendOutcome)> on_done) {
    TwilioSettings settings = settings_();
    auto it = settings.accounts.find(job.provider_account);
    if (it == settings.accounts.end()) {
        SendOutcome out;
        out.kind = SendOutcome::Kind::fail;
        out.error = "no auth token configured for account " + job.provider_account;
        on_done(std::move(out));
        return;
    }
    auto entered = std::chrono::steady_clock::now();
    // Shared by the two gate callbacks, exactly one of which runs.
    auto done = std::make_shared<std::function<void(SendOutcome)>>(std::move(on_done));
    auto start = [this, done, entered, request = twilio_send_request(job, settings, it->second),
                  body = job.body](SendGate::Permit slot) mutable {
        auto waited = std::chrono::steady_clock::now() - entered;
        http_.send(std::move(request), [done, waited, body = std::move(body),
                                        slot = std::move(slot)](HttpResponse response) mutable {
            slot.reset();  // the answer is in: the next send may go
            SendOutcome out = classify_twilio_response(response, body);
            out.waited = waited;
            out.requested = true;
            (*done)(std::move(out));
        });
    };
    auto expired = [done, limit = settings.max_concurrent,
                    account = job.provider_account](SendGate::Clock::duration waited) {
        SendOutcome out;
        out.kind = SendOutcome::Kind::retry;
        out.waited = waited;
        long ms = static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(waited).count());
        out.error = "not sent: waited " + std::to_string(ms) + " ms for one of the " + std::to_string(limit) +
                    " request slots of account " + account +
                    " (twilio-max-concurrent); started later it could outlive its lease";
        (*done)(std::move(out));
    };
    auto max_wait = std::chrono::milliseconds(settings.lease_ms - settings.deadline_ms - LEASE_MARGIN_MS);
    gate_.enter(job.provider_account, job.tenant, max_wait, std::move(start), std::move(expired));
}

}  // namespace darkspere::worker
