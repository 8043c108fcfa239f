// bench/peer/twilio_api.hpp — a stand-in for Twilio's Messages API (2010-04-01), send only.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "server.hpp"

namespace darkspere::bench {

// One message the stand-in accepted, handed to whoever waits for replies.
struct SentMessage {
    std::string sid, to, from, body;
    long long received_ms = 0;  // wall clock when the send was accepted (Node: received_at)
};

// TwilioApi answers POST /2010-04-01/Accounts/{AccountSid}/Messages.json with the checks of
// test/e2e/peers/twilio-api.mjs, in its order: Basic auth (401 / 20003), a form body (21602), To (21604,
// 21211), From (21603, 21606), Body (21602, 21617 over 1600 characters), StatusCallback an http(s) URL
// (21609); then 201 with the Message resource (a fresh SM… sid, status "queued", num_segments). Not mirrored,
// because the benchmark never uses them: GET (listing and fetching messages), programmed failures (/_fail),
// status callbacks and the control endpoints (/_messages, /_requests).
class TwilioApi {
  public:
    using OnMessage = std::function<void(const SentMessage &)>;

    // accounts maps AccountSid → AuthToken; on_message is called for every accepted send, after the answer is
    // built (the Node stand-in emits its 'message' event after replying too).
    TwilioApi(const std::map<std::string, std::string> &accounts, OnMessage on_message);

    // handle answers one request whose path matched the Messages.json route for account_sid.
    Response handle(const Request &req, std::string_view account_sid);

    // messages_path_account returns the AccountSid of a …/Accounts/{sid}/Messages.json path, or "" otherwise.
    static std::string_view messages_path_account(std::string_view path);

    unsigned long long accepted() const { return accepted_; }
    unsigned long long refused() const { return refused_; }

  private:
    Response error(int code, unsigned status = 0);

    // AccountSid → the exact Authorization header value expected ("Basic " + base64(sid:token)), computed
    // once so a request costs a string comparison rather than a Base64 decode.
    std::map<std::string, std::string, std::less<>> expected_auth_;
    OnMessage on_message_;
    unsigned long long accepted_ = 0, refused_ = 0;
};

// twilio_error_response builds Twilio's 2010 error body {code, message, more_info, status}.
Response twilio_error_response(int code, unsigned status = 0);

}  // namespace darkspere::bench
