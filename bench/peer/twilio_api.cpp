// bench/peer/twilio_api.cpp — the Twilio Messages API stand-in (see twilio_api.hpp).
#include "twilio_api.hpp"

#include <ctime>

#include <nlohmann/json.hpp>

#include "clock_ids.hpp"
#include "common/crypto.hpp"
#include "common/form.hpp"
#include "common/sms_segments.hpp"

namespace darkspere::bench {

namespace {

constexpr std::string_view API_VERSION = "2010-04-01";
constexpr std::string_view ACCOUNTS_PREFIX = "/2010-04-01/Accounts/";
constexpr std::string_view MESSAGES_SUFFIX = "/Messages.json";

struct KnownError {
    int code;
    unsigned status;
    const char *message;
};

// The Twilio errors the stand-in can answer, with the texts test/e2e/peers/twilio-api.mjs uses.
constexpr KnownError ERRORS[] = {
    {20001, 400, "Malformed request"},
    {20003, 401, "Authenticate"},
    {20404, 404, "The requested resource was not found"},
    {21211, 400, "The 'To' number is not a valid phone number."},
    {21602, 400, "Message body is required."},
    {21603, 400, "A 'From' phone number is required."},
    {21604, 400, "A 'To' phone number is required."},
    {21606, 400,
     "The 'From' phone number provided is not a valid message-capable Twilio phone number for this "
     "destination/account"},
    {21609, 400, "Invalid StatusCallback url"},
    {21617, 400, "The concatenated message body exceeds the 1600 character limit."},
};

// is_e164 mirrors /^\+[1-9]\d{1,14}$/.
bool is_e164(std::string_view s) {
    if (s.size() < 3 || s.size() > 16 || s[0] != '+' || s[1] < '1' || s[1] > '9')
        return false;
    for (char c : s.substr(2))
        if (c < '0' || c > '9')
            return false;
    return true;
}

// is_http_url approximates the Node stand-in's `new URL(text)` with an http: or https: protocol: the scheme
// and a non-empty host.
bool is_http_url(std::string_view s) {
    for (std::string_view scheme : {"http://", "https://"}) {
        if (s.size() > scheme.size() && s.substr(0, scheme.size()) == scheme)
            return s[scheme.size()] != '/' && s[scheme.size()] != '?' && s[scheme.size()] != '#';
    }
    return false;
}

// rfc2822 formats a time the way Twilio's JSON does: "Thu, 30 Jul 2015 20:12:31 +0000".
std::string rfc2822(std::time_t t) {
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[64];
    std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S +0000", &tm);
    return buf;
}

size_t characters(std::string_view body) {
    try {
        return utf8_length(body);
    } catch (const std::exception &) {
        return body.size();  // invalid UTF-8: count bytes, which can only overstate the length
    }
}

}  // namespace

Response twilio_error_response(int code, unsigned status) {
    const char *message = "Error";
    unsigned known_status = 400;
    for (const auto &e : ERRORS) {
        if (e.code == code) {
            message = e.message;
            known_status = e.status;
        }
    }
    unsigned s = status ? status : known_status;
    nlohmann::json body = {{"code", code},
                           {"message", message},
                           {"more_info", "https://www.twilio.com/docs/errors/" + std::to_string(code)},
                           {"status", s}};
    return json_response(s, body.dump());
}

TwilioApi::TwilioApi(const std::map<std::string, std::string> &accounts, OnMessage on_message)
    : on_message_(std::move(on_message)) {
    for (const auto &[sid, token] : accounts)
        expected_auth_[sid] = "Basic " + base64_encode(sid + ":" + token);
}

std::string_view TwilioApi::messages_path_account(std::string_view path) {
    if (path.size() <= ACCOUNTS_PREFIX.size() + MESSAGES_SUFFIX.size() ||
        path.substr(0, ACCOUNTS_PREFIX.size()) != ACCOUNTS_PREFIX ||
        path.substr(path.size() - MESSAGES_SUFFIX.size()) != MESSAGES_SUFFIX)
        return {};
    std::string_view sid =
        path.substr(ACCOUNTS_PREFIX.size(), path.size() - ACCOUNTS_PREFIX.size() - MESSAGES_SUFFIX.size());
    return sid.find('/') == std::string_view::npos ? sid : std::string_view{};
}

Response TwilioApi::error(int code, unsigned status) {
    ++refused_;
    return twilio_error_response(code, status);
}

Response TwilioApi::handle(const Request &req, std::string_view account_sid) {
    // GET lists messages on the real API and in the Node stand-in; this one keeps none, so it refuses.
    if (req.method() != http::verb::post)
        return error(20404, 405);
    auto expected = expected_auth_.find(account_sid);
    if (expected == expected_auth_.end() || req[http::field::authorization] != expected->second)
        return error(20003);

    std::string_view type = req[http::field::content_type];
    type = type.substr(0, type.find(';'));
    while (!type.empty() && type.back() == ' ')
        type.remove_suffix(1);
    if (!boost::beast::iequals(type, "application/x-www-form-urlencoded"))
        return error(21602);  // Twilio sees no parameters at all in a non-form body
    auto form = parse_form(req.body());
    if (!form)
        return error(20001);
    auto to = form_value(*form, "To");
    auto from = form_value(*form, "From");
    auto body = form_value(*form, "Body");
    auto status_callback = form_value(*form, "StatusCallback");
    auto service = form_value(*form, "MessagingServiceSid");
    if (!to || to->empty())
        return error(21604);
    if (!is_e164(*to))
        return error(21211);
    if ((!from || from->empty()) && (!service || service->empty()))
        return error(21603);
    if (from && !from->empty() && !is_e164(*from))
        return error(21606);
    size_t media = 0;
    for (const auto &p : *form)
        media += p.name == "MediaUrl";
    auto content = form_value(*form, "ContentSid");
    if ((!body || body->empty()) && media == 0 && (!content || content->empty()))
        return error(21602);
    if (body && characters(*body) > kSmsBodyMaxCharacters)
        return error(21617);
    if (status_callback && !is_http_url(*status_callback))
        return error(21609);

    SentMessage message;
    message.received_ms = epoch_ms();
    message.sid = "SM" + random_hex(32);
    message.to = *to;
    message.from = from.value_or("");
    message.body = body.value_or("");
    int segments = 1;
    try {
        segments = message.body.empty() ? 1 : count_segments(message.body).segments;
    } catch (const std::exception &) {
    }
    std::string date = rfc2822(static_cast<std::time_t>(message.received_ms / 1000));
    std::string uri = std::string(ACCOUNTS_PREFIX) + std::string(account_sid) + "/Messages/" + message.sid;
    nlohmann::json resource = {
        {"account_sid", account_sid},
        {"api_version", API_VERSION},
        {"body", message.body},
        {"date_created", date},
        {"date_sent", nullptr},
        {"date_updated", date},
        {"direction", "outbound-api"},
        {"error_code", nullptr},
        {"error_message", nullptr},
        {"from", from ? nlohmann::json(*from) : nlohmann::json(nullptr)},
        {"messaging_service_sid", service ? nlohmann::json(*service) : nlohmann::json(nullptr)},
        {"num_media", std::to_string(media)},
        {"num_segments", std::to_string(segments)},
        {"price", nullptr},
        {"price_unit", "USD"},
        {"sid", message.sid},
        {"status", "queued"},
        {"subresource_uris", {{"media", uri + "/Media.json"}, {"feedback", uri + "/Feedback.json"}}},
        {"to", message.to},
        {"uri", uri + ".json"},
    };
    Response res =
        json_response(201, resource.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    ++accepted_;
    if (on_message_)
        on_message_(message);
    return res;
}

}  // namespace darkspere::bench
