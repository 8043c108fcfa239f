// src/worker/routes_twilio.hpp — Twilio webhooks: POST /twilio/sms (inbound message) and POST /twilio/status
// (delivery status callback). Both are verified with X-Twilio-Signature before anything is stored.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "signature_failures.hpp"
#include "call_handoff.hpp"
#include "common/form.hpp"
#include "config.hpp"
#include "http_server.hpp"
#include "log_throttle.hpp"
#include "metrics.hpp"
#include "pg_pool.hpp"
#include "receive_batcher.hpp"
#include "spool_replay.hpp"

namespace darkspere::worker {

// WebhookCheck — the verdict on a webhook before the database is asked anything.
struct WebhookCheck {
    unsigned status = 200;  // 200 = verified; otherwise the response status
    std::string error;      // plain-text reason for a refusal, as answered
    std::string cause;  // a fixed category for the log (e.g. "unknown account", which is answered as a bad
                        // signature)
    std::vector<FormParam> params;
};

// verify_twilio_webhook — content type, form syntax, required fields, the account's token and the signature
// over public_url + target (every port variant). Pure, for tests.
WebhookCheck verify_twilio_webhook(const Request &req, const std::string &public_url,
                                   const std::map<std::string, std::string> &accounts,
                                   const std::vector<const char *> &required);

// valid_utf8 — whether s is well-formed UTF-8 (RFC 3629: no overlong forms, surrogates or code points past
// U+10FFFF).
bool valid_utf8(std::string_view s);

// twiml_response — the TwiML body: an empty <Response/>, or one <Message> with the XML-escaped reply.
std::string twiml_response(const std::optional<std::string> &reply);

// sql_error_status — the HTTP status for a failed statement: 400 for data errors (SQLSTATE class 22),
// 503 when the database is unavailable, 500 otherwise.
unsigned sql_error_status(const PgResult &result);

// new_request_id — 16 random hex digits; follows one inbound message through every log line.
std::string new_request_id();

class TwilioRoutes {
  public:
    TwilioRoutes(PgPool &pool, Metrics &metrics, std::function<std::shared_ptr<const Config>()> config,
                 CallHandoff handoff = {})
        : pool_(pool),
          metrics_(metrics),
          config_(std::move(config)),
          handoff_(std::move(handoff)),
          // Inbound statements may fill every pool connection but one, which the pool keeps for background
          // work.
          receiver_(pool, metrics, [this] { return pool_.size() > 1 ? pool_.size() - 1 : 1; }) {}

    void sms(Request &&req, Responder respond);
    void status(Request &&req, Responder respond);
    size_t inbound_waiting() const { return receiver_.waiting(); }
    // set_spool — from now on, webhooks the database cannot take are spooled (nullptr: refused with 503).
    void set_spool(Spool *spool) { spool_ = spool; }
    // set_signature_failures — refused signatures are counted there per source address (nullptr: not
    // counted).
    void set_signature_failures(SignatureFailures *counter) { signature_failures_ = counter; }
    // store_replayed — the spool's way into the receive path: one replayed message, without a call slot (the
    // agent call waits for a claim like any other).
    void store_replayed(PgParams args, PgCallback done) {
        receiver_.submit(InboundSms{std::move(args), nullptr}, std::move(done));
    }
    // delegate_to_nodes — from now on each text is stored through receive_sms_for on its tenant's node
    // (Citus, one queue per node: node_queues.hpp, ReceiveBatcher::set_delegated).
    void delegate_to_nodes() { receiver_.set_delegated(true); }
    // webhooks_in_progress — verified webhooks not yet answered (the drain answers them before it ends).
    long webhooks_in_progress() const { return in_progress_; }

  private:
    // The shape both webhooks share: verify (refusals answered and logged under `route`), `store` what the
    // verified form says, time the webhook, answer a failed statement (logged as `statement` failed) with its
    // HTTP status, and hand a stored result to `answer`.
    using Store =
        std::function<void(const WebhookCheck &check, const std::string &request_id, PgCallback done)>;
    using Answer =
        std::function<Response(const PgResult &r, const WebhookCheck &check, const std::string &request_id)>;
    void spool_then(PgParams args, PgCallback done);
    void store_then_answer(const Request &req, Responder respond, const char *route,
                           const std::vector<const char *> &required, const char *statement, Store store,
                           Answer answer);

    PgPool &pool_;
    Metrics &metrics_;
    std::function<std::shared_ptr<const Config>()> config_;
    CallHandoff handoff_;
    ReceiveBatcher receiver_;
    Spool *spool_ = nullptr;
    SignatureFailures *signature_failures_ = nullptr;
    long in_progress_ = 0;
    LogThrottle refusal_log_;
};

}  // namespace darkspere::worker
