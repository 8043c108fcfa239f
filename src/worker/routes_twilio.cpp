// src/worker/routes_twilio.cpp — Twilio inbound and status webhooks (see routes_twilio.hpp).
#include "routes_twilio.hpp"

#include <cctype>
#include <chrono>
#include <random>

#include "common/twilio_signature.hpp"
#include "common/xml.hpp"
#include "log.hpp"

namespace darkspere::worker {

namespace http = boost::beast::http;

namespace {

// The AccountSid whose token verified the callback goes along: the extension applies a status only to
// messages of that account's numbers.
const char *const SQL_DELIVERY_STATUS = "SELECT darkspere.record_delivery_status($1, $2, $3, $4) AS outcome";

const char *const TWIML_TYPE = "text/xml; charset=utf-8";
const char *const TEXT_TYPE = "text/plain; charset=utf-8";

// How long a client should wait before retrying while the database is unavailable.
const char *const RETRY_AFTER_SECONDS = "5";

bool is_form_content_type(std::string_view value) {
    std::string v;
    for (char c : value.substr(0, value.find(';')))
        v.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    while (!v.empty() && v.back() == ' ')
        v.pop_back();
    return v == "application/x-www-form-urlencoded";
}

Response error_response(const PgResult &r) {
    unsigned status = sql_error_status(r);
    std::string text = status == 400   ? r.error + "\n"
                       : status == 503 ? std::string("database unavailable\n")
                                       : std::string("internal error\n");
    Response res = make_response(status, TEXT_TYPE, text);
    if (status == 503)
        res.set(http::field::retry_after, RETRY_AFTER_SECONDS);
    return res;
}

double seconds_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

std::string new_request_id() {
    static std::mt19937_64 rng{std::random_device{}()};
    static const char *hex = "0123456789abcdef";
    uint64_t v = rng();
    std::string out(16, '0');
    for (int i = 15; i >= 0; --i, v >>= 4)
        out[i] = hex[v & 0xf];
    return out;
}

unsigned sql_error_status(const PgResult &r) {
    if (r.unavailable)
        return 503;
    if (r.sqlstate.rfind("22", 0) == 0)
        return 400;
    return 500;
}

std::string twiml_response(const std::optional<std::string> &reply) {
    std::string out = R"(<?xml version="1.0" encoding="UTF-8"?>)";
    if (!reply)
        return out + "<Response/>";
    return out + "<Response><Message>" + xml_escape(*reply) + "</Message></Response>";
}

WebhookCheck verify_twilio_webhook(const Request &req, const std::string &public_url,
                                   const std::map<std::string, std::string> &accounts,
                                   const std::vector<const char *> &required) {
    WebhookCheck check;
    auto refuse = [&check](unsigned status, std::string error) {
        check.status = status;
        check.error = std::move(error);
        return check;
    };
    if (!is_form_content_type(req[http::field::content_type]))
        return refuse(415, "content type must be application/x-www-form-urlencoded");
    auto params = parse_form(req.body());
    if (!params)
        return refuse(400, "malformed form body");
    for (const char *name : required) {
        auto v = form_value(*params, name);
        if (!v || v->empty())
            return refuse(400, std::string("missing ") + name);
    }
    std::string account = form_value(*params, "AccountSid").value_or("");
    auto token = accounts.find(account);
    if (token == accounts.end())
        return refuse(403, "unknown account");
    std::string url = public_url + std::string(req.target());
    if (!twilio_signature_valid(token->second, url, *params, req["X-Twilio-Signature"]))
        return refuse(403, "invalid signature");
    check.params = std::move(*params);
    return check;
}

void TwilioRoutes::store_then_answer(const Request &req, Responder respond, const char *route,
                                     const std::vector<const char *> &required, const char *statement,
                                     Store store, Answer answer) {
    auto started = std::chrono::steady_clock::now();
    auto config = config_();
    std::string request_id = new_request_id();
    WebhookCheck check = verify_twilio_webhook(req, config->public_url, config->twilio_accounts, required);
    if (check.status != 200) {
        log_warn(std::string(route) + " webhook refused",
                 {{"request_id", request_id}, {"status", check.status}, {"error", check.error}});
        respond(make_response(check.status, TEXT_TYPE, check.error + "\n"));
        return;
    }
    auto verified = std::make_shared<WebhookCheck>(std::move(check));
    ++in_progress_;
    // The answer waits for the commit: Twilio does not redeliver, so 200 must mean "stored".
    store(*verified, request_id,
          [this, respond = std::move(respond), answer = std::move(answer), verified, request_id, statement,
           started](PgResult r) {
              --in_progress_;
              metrics_.webhook_seconds.observe(seconds_since(started));
              if (!r.ok) {
                  log_warn(std::string(statement) + " failed",
                           {{"request_id", request_id},
                            {"message_sid", form_value(verified->params, "MessageSid").value_or("")},
                            {"sqlstate", r.sqlstate},
                            {"error", r.error}});
                  respond(error_response(r));
                  return;
              }
              respond(answer(r, *verified, request_id));
          });
}

void TwilioRoutes::sms(Request &&req, Responder respond) {
    // Reserved before the statement: a worker with room takes the call with the commit that stores the
    // message.
    std::shared_ptr<CallSlot> slot = handoff_.reserve ? handoff_.reserve() : nullptr;
    store_then_answer(
        req, std::move(respond), "sms", {"AccountSid", "From", "To", "MessageSid"}, "receive_sms",
        [this, slot](const WebhookCheck &check, const std::string &request_id, PgCallback done) {
            auto field = [&check](const char *name) { return form_value(check.params, name).value_or(""); };
            std::string num_media = field("NumMedia");
            InboundSms sms{
                {field("AccountSid"), field("To"), field("From"), field("Body"), field("MessageSid"),
                 num_media.empty() ? std::string("0") : num_media, request_id},
                slot};
            receiver_.submit(std::move(sms), std::move(done));
        },
        [slot](const PgResult &r, const WebhookCheck &check, const std::string &request_id) {
            std::optional<std::string> reply = r.value(0, "reply");
            log_info("sms received", {{"request_id", request_id},
                                      {"message_sid", form_value(check.params, "MessageSid").value_or("")},
                                      {"disposition", r.value(0, "disposition").value_or("")},
                                      {"session_id", r.value(0, "session_id").value_or("")},
                                      {"message_id", r.value(0, "message_id").value_or("")},
                                      {"agent_id", r.value(0, "agent_id").value_or("")},
                                      {"inline_reply", reply.has_value()}});
            if (slot && r.value(0, "job_id"))
                slot->take(r);
            return make_response(200, TWIML_TYPE, twiml_response(reply));
        });
}

void TwilioRoutes::status(Request &&req, Responder respond) {
    store_then_answer(
        req, std::move(respond), "status", {"AccountSid", "MessageSid", "MessageStatus"},
        "record_delivery_status",
        [this](const WebhookCheck &check, const std::string &, PgCallback done) {
            std::string error_code = form_value(check.params, "ErrorCode").value_or("");
            pool_.query(SQL_DELIVERY_STATUS,
                        {form_value(check.params, "AccountSid").value_or(""),
                         form_value(check.params, "MessageSid").value_or(""),
                         form_value(check.params, "MessageStatus").value_or(""),
                         error_code.empty() ? std::nullopt : std::optional<std::string>(error_code)},
                        std::move(done), PgPriority::interactive);
        },
        [](const PgResult &r, const WebhookCheck &check, const std::string &request_id) {
            std::string outcome = r.value(0, "outcome").value_or("");
            nlohmann::json fields{{"request_id", request_id},
                                  {"account_sid", form_value(check.params, "AccountSid").value_or("")},
                                  {"message_sid", form_value(check.params, "MessageSid").value_or("")},
                                  {"message_status", form_value(check.params, "MessageStatus").value_or("")},
                                  {"outcome", outcome}};
            // Another account's message: nothing changed. Twilio still gets 200 (a retry would change
            // nothing, and a different answer would tell the caller that the sid exists elsewhere).
            if (outcome == "account_mismatch") {
                log_warn("delivery status refused: the message belongs to another account", fields);
            } else {
                log_info("delivery status", fields);
            }
            return make_response(200, TWIML_TYPE, twiml_response(std::nullopt));
        });
}

}  // namespace darkspere::worker
