// bench/peer/webhook.cpp — signed inbound webhooks (see webhook.hpp).
#include "webhook.hpp"

#include <charconv>

#include <boost/asio/ip/address.hpp>

#include "clock_ids.hpp"
#include "common/twilio_signature.hpp"

namespace darkspere::bench {

std::optional<WebhookTarget> parse_target(std::string_view url, std::string *error) {
    constexpr std::string_view scheme = "http://";
    if (url.substr(0, scheme.size()) != scheme) {
        *error = "target must be an http:// URL";
        return std::nullopt;
    }
    std::string_view rest = url.substr(scheme.size());
    size_t slash = rest.find('/');
    std::string_view authority = rest.substr(0, slash);
    WebhookTarget target;
    target.host = std::string(authority);
    target.path = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
    std::string_view host = authority;
    unsigned short port = 80;
    size_t colon = authority.rfind(':');
    if (colon != std::string_view::npos) {
        host = authority.substr(0, colon);
        std::string_view digits = authority.substr(colon + 1);
        auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
        if (ec != std::errc() || end != digits.data() + digits.size()) {
            *error = "bad port in target";
            return std::nullopt;
        }
    }
    if (host == "localhost")
        host = "127.0.0.1";
    boost::system::error_code ec;
    auto address = boost::asio::ip::make_address(std::string(host), ec);
    if (ec) {
        *error = "target host must be an IP address or localhost";
        return std::nullopt;
    }
    target.endpoint = {address, port};
    return target;
}

std::vector<FormParam> inbound_params(const std::string &account_sid, const std::string &from,
                                      const std::string &to, const std::string &body,
                                      const std::string &message_sid) {
    return {{"ToCountry", "US"},
            {"ToState", "CA"},
            {"SmsMessageSid", message_sid},
            {"NumMedia", "0"},
            {"ToCity", ""},
            {"FromZip", ""},
            {"SmsSid", message_sid},
            {"FromState", "CA"},
            {"SmsStatus", "received"},
            {"FromCity", "SAN FRANCISCO"},
            {"Body", body},
            {"FromCountry", "US"},
            {"To", to},
            {"ToZip", ""},
            {"NumSegments", "1"},
            {"MessageSid", message_sid},
            {"AccountSid", account_sid},
            {"From", from},
            {"ApiVersion", "2010-04-01"}};
}

Request signed_webhook(const WebhookTarget &target, const std::string &signed_url,
                       const std::string &auth_token, const std::vector<FormParam> &params) {
    Request req{http::verb::post, target.path, 11};
    req.set(http::field::host, target.host);
    req.set(http::field::content_type, "application/x-www-form-urlencoded");
    req.set(http::field::user_agent, "TwilioProxy/1.1");
    req.set("X-Twilio-Signature", twilio_signature(auth_token, signed_url, params));
    req.set("I-Twilio-Idempotency-Token", random_hex(32));
    req.keep_alive(true);
    req.body() = encode_form(params);
    req.prepare_payload();
    return req;
}

}  // namespace darkspere::bench
