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
    // An unknown AccountSid is answered exactly as a bad signature: same status, same body.
    WebhookCheck unknown = check(webhook("AccountSid=AC9&From=%2B1&To=%2B2&MessageSid=SM1", sig));
    WebhookCheck forged = check(webhook(BODY, "bm90IGEgc2lnbmF0dXJl"));
    EXPECT_EQ(unknown.status, 403u);
    EXPECT_EQ(forged.status, 403u);
    EXPECT_EQ(unknown.error, forged.error);
    EXPECT_EQ(unknown.cause, "unknown account");
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

TEST(TwilioWebhook, NulBytesAndInvalidUtf8AreRefusedNamingTheField) {
    auto check = [](const std::string &body) {
        std::string sig = sign("https://sms.example.com/twilio/sms?x=1", body);
        return verify_twilio_webhook(webhook(body, sig), "https://sms.example.com", ACCOUNTS, SMS_FIELDS);
    };
    // Signed correctly, so only the content is wrong: libpq would store "hi" for "hi\0there".
    WebhookCheck nul = check(BODY + "&Note=hi%00there");
    EXPECT_EQ(nul.status, 400u);
    EXPECT_EQ(nul.error, "NUL byte in field Note");
    WebhookCheck latin1 = check("AccountSid=AC1&From=%2B1&To=%2B2&MessageSid=SM1&Body=caf%E9");
    EXPECT_EQ(latin1.status, 400u);
    EXPECT_EQ(latin1.error, "invalid UTF-8 in field Body");
    EXPECT_EQ(check(BODY + "&%00x=1").error, "NUL byte in field (unprintable name)");
    EXPECT_EQ(check(BODY + "&Body2=caf%C3%A9+%F0%9F%98%80").status, 200u);
}

TEST(Utf8, WellFormedOnly) {
    EXPECT_TRUE(valid_utf8(""));
    EXPECT_TRUE(valid_utf8("plain ascii"));
    EXPECT_TRUE(valid_utf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
    EXPECT_FALSE(valid_utf8("\xe9"));              // Latin-1
    EXPECT_FALSE(valid_utf8("\xc0\xaf"));          // overlong '/'
    EXPECT_FALSE(valid_utf8("\xed\xa0\x80"));      // a UTF-16 surrogate
    EXPECT_FALSE(valid_utf8("\xf4\x90\x80\x80"));  // past U+10FFFF
    EXPECT_FALSE(valid_utf8("\xe2\x82"));          // truncated
}

TEST(LogThrottle, OneLinePerSecondPerCauseWithTheCountLeftOut) {
    LogThrottle t;
    auto t0 = LogThrottle::Clock::time_point{};
    EXPECT_EQ(t.admit("a", t0), std::optional<unsigned long long>(0));
    EXPECT_EQ(t.admit("a", t0 + std::chrono::milliseconds(10)), std::nullopt);
    EXPECT_EQ(t.admit("a", t0 + std::chrono::milliseconds(20)), std::nullopt);
    EXPECT_EQ(t.admit("b", t0 + std::chrono::milliseconds(30)), std::optional<unsigned long long>(0));
    EXPECT_EQ(t.admit("a", t0 + std::chrono::milliseconds(1000)), std::optional<unsigned long long>(2));
}
