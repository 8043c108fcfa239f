// bench/peer/webhook.hpp — inbound SMS webhooks as Twilio posts them, signed with the account's auth token.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/ip/tcp.hpp>

#include "common/form.hpp"
#include "server.hpp"

namespace darkspere::bench {

// Where webhooks go: an http:// URL on a literal IPv4 address or localhost (the worker listens on loopback).
struct WebhookTarget {
    boost::asio::ip::tcp::endpoint endpoint;
    std::string host;  // the Host header: host[:port] as given
    std::string path;  // path and query
};

// parse_target splits url into its endpoint, Host and path; nullopt (with *error set) if it is not one we
// post to.
std::optional<WebhookTarget> parse_target(std::string_view url, std::string *error);

// inbound_params returns the parameters Twilio sends for one inbound SMS, in the order and with the geo
// fields (empty strings included, they are signed too) of test/e2e/lib/twilio-webhook.mjs inboundParams.
std::vector<FormParam> inbound_params(const std::string &account_sid, const std::string &from,
                                      const std::string &to, const std::string &body,
                                      const std::string &message_sid);

// signed_webhook builds the POST of params to target, with X-Twilio-Signature computed over signed_url (the
// public URL Twilio would call: the worker verifies its --public-url + the request path) and a fresh
// I-Twilio-Idempotency-Token, as Twilio and the Node load generator send them.
Request signed_webhook(const WebhookTarget &target, const std::string &signed_url,
                       const std::string &auth_token, const std::vector<FormParam> &params);

}  // namespace darkspere::bench
