// test/unit/worker_routes_twilio_test.cpp — verifying Twilio webhooks before anything is stored, and TwiML
// out.
#include <gtest/gtest.h>

#include "common/twilio_signature.hpp"
#include "routes_twilio.hpp"

using namespace darkspere::worker;
namespace http = boost::beast::http;

namespace {

const std::map<std::string, std::string> ACCOUNTS = {{"AC1", "token-1"}};
const std::vector<const char *> SMS_FIELDS = {"AccountSid", "From", "To", "MessageSid"};
const std::string BODY = "AccountSid=AC1&From=%2B14155550100&To=%2B14155550199&Body=hi&MessageSid=SM1";

Request webhook(const std::string &body, const std::string &signature,
                const std::string &content_type = "application/x-www-form-urlencoded") {
    Request r{http::verb::post, "/twilio/sms?x=1", 11};
    r.set(http::field::content_type, content_type);
    if (!signature.empty())
        r.set("X-Twilio-Signature", signature);
    r.body() = body;
    return r;
}

std::string sign(const std::string &url, const std::string &body) {
    return darkspere::twilio_signature("token-1", url, *darkspere::parse_form(body));
}

}  // namespace

TEST(TwilioWebhook, ValidSignatureOverPublicUrlPlusTarget) {
    std::string sig = sign("https://sms.example.com/twilio/sms?x=1", BODY);
    WebhookCheck c =
        verify_twilio_webhook(webhook(BODY, sig), "https://sms.example.com", ACCOUNTS, SMS_FIELDS);
    EXPECT_EQ(c.status, 200u);
    EXPECT_EQ(c.params.size(), 5u);
}

TEST(TwilioWebhook, PortVariantIsAccepted) {
    std::string sig = sign("https://sms.example.com:443/twilio/sms?x=1", BODY);
    EXPECT_EQ(
        verify_twilio_webhook(webhook(BODY, sig), "https://sms.example.com", ACCOUNTS, SMS_FIELDS).status,
        200u);
}

TEST(TwilioWebhook, Refusals) {
    std::string sig = sign("https://sms.example.com/twilio/sms?x=1", BODY);
    auto check = [](const Request &r) {
        return verify_twilio_webhook(r, "https://sms.example.com", ACCOUNTS, SMS_FIELDS);
    };
    EXPECT_EQ(check(webhook(BODY, sig, "application/json")).status, 415u);
    EXPECT_EQ(check(webhook(BODY, sig, "application/x-www-form-urlencoded; charset=UTF-8")).status, 200u);
    EXPECT_EQ(check(webhook("AccountSid=AC1&Body=%zz", sig)).status, 400u);
    WebhookCheck missing = check(webhook("AccountSid=AC1&From=%2B1&MessageSid=SM1", sig));
    EXPECT_EQ(missing.status, 400u);
    EXPECT_EQ(missing.error, "missing To");
    EXPECT_EQ(check(webhook("AccountSid=AC9&From=%2B1&To=%2B2&MessageSid=SM1", sig)).status, 403u);
    EXPECT_EQ(check(webhook(BODY, "")).status, 403u);
    EXPECT_EQ(check(webhook(BODY, "RSOYDt4T1cUTdK1PDd93/VVr8B8=")).status, 403u);
    EXPECT_EQ(check(webhook(BODY + "&Extra=1", sig)).status, 403u);  // every parameter is signed
}

TEST(TwilioWebhook, TwimlIsEmptyOrOneEscapedMessage) {
    EXPECT_EQ(twiml_response(std::nullopt), R"(<?xml version="1.0" encoding="UTF-8"?><Response/>)");
    EXPECT_EQ(
        twiml_response(std::string("a < b & \"c\"")),
        R"(<?xml version="1.0" encoding="UTF-8"?><Response><Message>a &lt; b &amp; &quot;c&quot;</Message></Response>)");
}

TEST(TwilioWebhook, SqlErrorsMapToStatuses) {
    PgResult data;
    data.sqlstate = "22023";
    EXPECT_EQ(sql_error_status(data), 400u);
    PgResult down;
    down.unavailable = true;
    EXPECT_EQ(sql_error_status(down), 503u);
    PgResult other;
    other.sqlstate = "42883";
    EXPECT_EQ(sql_error_status(other), 500u);
}

TEST(TwilioWebhook, RequestIdsAreSixteenHexDigits) {
    std::string a = new_request_id(), b = new_request_id();
    EXPECT_EQ(a.size(), 16u);
    EXPECT_EQ(a.find_first_not_of("0123456789abcdef"), std::string::npos);
    EXPECT_NE(a, b);
}
