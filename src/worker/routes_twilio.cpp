// src/worker/routes_twilio.cpp — Twilio inbound and status webhooks (see routes_twilio.hpp).
#include "routes_twilio.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <random>

#include <boost/asio/steady_timer.hpp>

#include "common/twilio_signature.hpp"
#include "common/xml.hpp"
#include "log.hpp"

namespace darkspere::worker {

namespace http = boost::beast::http;

namespace {

// The AccountSid whose token verified the callback goes along: the extension applies a status only to
// messages of that account's numbers.
// From is our number that sent the message: with the AccountSid it names the tenant, so the database reads
// one account's messages (one shard on Citus). A callback without From is still recorded (NULL).
const char *const SQL_DELIVERY_STATUS =
    "SELECT darkspere.record_delivery_status($1, $2, $3, $4, $5) AS outcome";

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

// A stand-in token for an unknown AccountSid: the signature is computed anyway, so the refusal takes as long
// and reads the same as a bad signature and does not tell a prober which AccountSids are configured.
const char *const NO_SUCH_ACCOUNT_TOKEN = "00000000000000000000000000000000";

// field_label — a field name fit to echo in a refusal: Twilio's names are short ASCII identifiers; anything
// else (a prober's bytes) is not repeated back.
std::string field_label(const std::string &name) {
    bool plain = !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
    });
    return plain ? name : std::string("(unprintable name)");
}

}  // namespace

bool valid_utf8(std::string_view s) {
    size_t i = 0;
    while (i < s.size()) {
        auto c = static_cast<unsigned char>(s[i]);
        size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
        if (len == 0 || i + len > s.size())
            return false;
        uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1f) : len == 3 ? (c & 0x0f) : (c & 0x07);
        for (size_t k = 1; k < len; ++k) {
            auto cc = static_cast<unsigned char>(s[i + k]);
            if ((cc >> 6) != 0x2)
                return false;
            cp = (cp << 6) | (cc & 0x3f);
        }
        // Overlong forms, UTF-16 surrogates and code points past U+10FFFF are not UTF-8 (RFC 3629).
        static const uint32_t MIN_FOR_LEN[] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < MIN_FOR_LEN[len] || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
            return false;
        i += len;
    }
    return true;
}

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
    auto refuse = [&check](unsigned status, std::string error, const char *cause) {
        check.status = status;
        check.error = std::move(error);
        check.cause = cause;
        return check;
    };
    if (!is_form_content_type(req[http::field::content_type]))
        return refuse(415, "content type must be application/x-www-form-urlencoded", "content type");
    auto params = parse_form(req.body());
    if (!params)
        return refuse(400, "malformed form body", "malformed form");
    // Checked after decoding: libpq would cut a value at %00, and PostgreSQL refuses invalid UTF-8, so the
    // stored text would differ from the signed one (or a whole receive batch would fail).
    for (const auto &p : *params) {
        for (const std::string *text : {&p.name, &p.value}) {
            if (text->find('\0') != std::string::npos)
                return refuse(400, "NUL byte in field " + field_label(p.name), "NUL byte");
            if (!valid_utf8(*text))
                return refuse(400, "invalid UTF-8 in field " + field_label(p.name), "invalid UTF-8");
        }
    }
    for (const char *name : required) {
        auto v = form_value(*params, name);
        if (!v || v->empty())
            return refuse(400, std::string("missing ") + name, "missing field");
    }
    std::string account = form_value(*params, "AccountSid").value_or("");
    auto token = accounts.find(account);
    bool known = token != accounts.end();
    std::string url = public_url + std::string(req.target());
    bool signed_ok = twilio_signature_valid(known ? token->second : std::string(NO_SUCH_ACCOUNT_TOKEN), url,
                                            *params, req["X-Twilio-Signature"]);
    if (!known || !signed_ok) {
        // One answer for both: a different one for an unknown AccountSid would list the configured ones. The
        // cause (logged, never answered) tells the operator which it was.
        return refuse(403, "invalid signature", known ? "invalid signature" : "unknown account");
    }
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
        // A refused signature (or unknown account: the same answer) counts for the failed_signatures alert.
        if (check.status == 403 && signature_failures_ != nullptr)
            signature_failures_->add(std::string(req[PEER_ADDRESS_FIELD]));
        // A stranger can send refusals as fast as the network allows: one line a second per cause, carrying
        // how many were not logged since the last one.
        if (auto suppressed = refusal_log_.admit(std::string(route) + ": " + check.cause)) {
            log_warn(std::string(route) + " webhook refused", {{"request_id", request_id},
                                                               {"status", check.status},
                                                               {"cause", check.cause},
                                                               {"error", check.error},
                                                               {"suppressed", *suppressed}});
        }
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

// spool_then — spools a verified webhook and answers it as stored once the spool's write is durable (a
// "spooled" disposition and no reply), or as unavailable when the spool is full or cannot be written.
void TwilioRoutes::spool_then(PgParams args, PgCallback done) {
    SpooledSms sms{std::move(args), std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count()};
    spool_->append(sms, [done = std::move(done)](bool stored, const std::string &error) {
        PgResult r;
        if (stored) {
            r.ok = true;
            r.columns = {"disposition"};
            r.rows = {{std::string("spooled")}};
        } else {
            r.unavailable = true;
            r.error = error;
        }
        done(std::move(r));
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
            // Behind texts already spooled, a new one is spooled too: replay stores them in arrival order,
            // so a phone's later text never overtakes an earlier one.
            if (spool_ && spool_->active()) {
                spool_then(std::move(sms.args), std::move(done));
                return;
            }
            if (!spool_) {
                receiver_.submit(std::move(sms), std::move(done));
                return;
            }
            // Whichever comes first answers the webhook: the statement's result, or spool-after-ms (a hung
            // connection or a lock held for long must not keep Twilio waiting past its 15 s timeout). A
            // statement that commits after its webhook was spooled makes the replay a duplicate, which stores
            // nothing.
            PgParams args = sms.args;
            auto answered = std::make_shared<bool>(false);
            auto answer = std::make_shared<PgCallback>(std::move(done));
            auto timer = std::make_shared<boost::asio::steady_timer>(
                spool_->io(), std::chrono::milliseconds(config_()->spool_after_ms));
            timer->async_wait([this, answered, answer, args](const boost::system::error_code &ec) {
                if (ec || *answered)
                    return;
                *answered = true;
                log_warn("receive_sms did not answer within spool-after-ms; spooling the webhook",
                         {{"request_id", args[6].value_or("")}, {"message_sid", args[4].value_or("")}});
                spool_then(args, *answer);
            });
            receiver_.submit(std::move(sms), [this, args = std::move(args), answered, answer, timer,
                                              slot](PgResult r) mutable {
                timer->cancel();
                if (*answered) {
                    // Answered from the spool already; a call this late commit leased to the worker still
                    // runs.
                    if (r.ok && slot && r.value(0, "job_id"))
                        slot->take(r);
                    return;
                }
                *answered = true;
                // The database is unreachable (a connection-class error, a broken or no connection): the
                // text goes to the spool instead of a 503. If the statement committed before the connection
                // broke, replay finds a duplicate.
                if (!r.ok && r.unavailable) {
                    spool_then(std::move(args), *answer);
                    return;
                }
                (*answer)(std::move(r));
            });
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
            std::string from = form_value(check.params, "From").value_or("");
            pool_.query(SQL_DELIVERY_STATUS,
                        {form_value(check.params, "AccountSid").value_or(""),
                         form_value(check.params, "MessageSid").value_or(""),
                         form_value(check.params, "MessageStatus").value_or(""),
                         error_code.empty() ? std::nullopt : std::optional<std::string>(error_code),
                         from.empty() ? std::nullopt : std::optional<std::string>(from)},
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
