// test/unit/worker_twilio_sender_test.cpp — what each Messages API answer means for an sms_send job.
#include <gtest/gtest.h>

#include "twilio_sender.hpp"

using namespace darkspere::worker;
using Kind = SendOutcome::Kind;

namespace {

HttpResponse answer(long status, std::string body) {
    HttpResponse r;
    r.status = status;
    r.body = std::move(body);
    return r;
}

}  // namespace

TEST(TwilioSender, CreatedCompletesWithSidStatusAndSegments) {
    SendOutcome o = classify_twilio_response(
        answer(201, R"({"sid":"SM123","status":"queued","num_segments":"2"})"), "hello");
    EXPECT_EQ(o.kind, Kind::sent);
    EXPECT_EQ(o.result["sid"], "SM123");
    EXPECT_EQ(o.result["status"], "queued");
    EXPECT_EQ(o.result["segments"], 2);
}

TEST(TwilioSender, ZeroSegmentsFromAMessagingServiceAreCountedLocally) {
    std::string body(200, 'a');  // two GSM-7 segments
    SendOutcome o = classify_twilio_response(
        answer(201, R"({"sid":"SM1","status":"accepted","num_segments":"0"})"), body);
    EXPECT_EQ(o.result["segments"], 2);
}

TEST(TwilioSender, SuccessWithoutSidIsNotRetried) {
    EXPECT_EQ(classify_twilio_response(answer(201, "{}"), "x").kind, Kind::fail);
}

TEST(TwilioSender, RetryableAnswers) {
    EXPECT_EQ(classify_twilio_response(answer(429, R"({"code":20429,"message":"Too many"})"), "").kind,
              Kind::retry);
    EXPECT_EQ(classify_twilio_response(answer(500, "oops"), "").kind, Kind::retry);
    EXPECT_EQ(classify_twilio_response(answer(503, ""), "").kind, Kind::retry);
    EXPECT_EQ(classify_twilio_response(answer(400, R"({"code":21611,"message":"queue full"})"), "").kind,
              Kind::retry);
    HttpResponse timeout;
    timeout.timed_out = true;
    timeout.error = "timeout after 10000 ms";
    SendOutcome o = classify_twilio_response(timeout, "");
    EXPECT_EQ(o.kind, Kind::retry);
    EXPECT_NE(o.error.find("timeout"), std::string::npos);
}

TEST(TwilioSender, OptedOutRecipientIsRecordedAndNotRetried) {
    SendOutcome o = classify_twilio_response(
        answer(400, R"({"code":21610,"message":"Attempt to send to unsubscribed recipient","status":400})"),
        "");
    EXPECT_EQ(o.kind, Kind::opted_out);
    EXPECT_EQ(o.error, "twilio 21610: recipient opted out");
}

TEST(TwilioSender, OtherClientErrorsFailWithCodeAndMessage) {
    SendOutcome o = classify_twilio_response(
        answer(400, R"({"code":21211,"message":"Invalid 'To' Phone Number","more_info":"x","status":400})"),
        "");
    EXPECT_EQ(o.kind, Kind::fail);
    EXPECT_EQ(o.error, "twilio 21211: Invalid 'To' Phone Number");
    EXPECT_EQ(classify_twilio_response(answer(401, R"({"code":20003,"message":"Authenticate"})"), "").kind,
              Kind::fail);
    EXPECT_EQ(classify_twilio_response(answer(404, "not json"), "").error, "twilio http 404");
}

TEST(TwilioSender, ProblemJsonShapeIsUnderstood) {
    SendOutcome o = classify_twilio_response(
        answer(400, R"({"type":"https://www.twilio.com/docs/errors/21211","title":"Invalid To","status":400,
                       "code":21211,"detail":"The 'To' number is not valid"})"),
        "");
    EXPECT_EQ(o.kind, Kind::fail);
    EXPECT_EQ(o.error, "twilio 21211: The 'To' number is not valid");
}

TEST(TwilioSender, RequestIsAFormPostWithBasicAuthAndStatusCallback) {
    SmsSendJob job{"AC1", "+14155550199", "+14155550100", "We open at 7 & close at 5.", "rq-1"};
    TwilioSettings s{"http://127.0.0.1:9999", "https://sms.example.com", {{"AC1", "tok"}}, 4000};
    HttpRequest r = twilio_send_request(job, s, "tok");
    EXPECT_EQ(r.method, "POST");
    EXPECT_EQ(r.url, "http://127.0.0.1:9999/2010-04-01/Accounts/AC1/Messages.json");
    EXPECT_EQ(r.basic_auth_user, "AC1");
    EXPECT_EQ(r.basic_auth_password, "tok");
    EXPECT_EQ(r.deadline.count(), 4000);
    EXPECT_EQ(r.body,
              "To=%2B14155550100&From=%2B14155550199&Body=We+open+at+7+%26+close+at+5.&StatusCallback=https%"
              "3A%2F%2F"
              "sms.example.com%2Ftwilio%2Fstatus");
}

TEST(TwilioSender, UnknownAccountFailsWithoutCallingTwilio) {
    struct NoHttp : HttpClient {
        int calls = 0;
        void send(HttpRequest, std::function<void(HttpResponse)>) override { ++calls; }
    } http;
    TwilioSender sender(http, [] { return TwilioSettings{"http://x", "http://y", {}, 1000}; });
    SendOutcome got;
    sender.send(SmsSendJob{"AC404", "+1", "+2", "hi", "rq"}, [&got](SendOutcome o) { got = o; });
    EXPECT_EQ(http.calls, 0);
    EXPECT_EQ(got.kind, Kind::fail);
    EXPECT_NE(got.error.find("no auth token configured for account"), std::string::npos);
}

TEST(TwilioSender, PayloadNeedsAccountFromAndTo) {
    SmsSendJob job;
    std::string error;
    EXPECT_TRUE(parse_sms_send_job(
        nlohmann::json::parse(
            R"({"provider_account":"AC1","from":"+1","to":"+2","body":"x","request_id":"r"})"),
        &job, &error));
    EXPECT_FALSE(parse_sms_send_job(nlohmann::json::parse(R"({"from":"+1","to":"+2"})"), &job, &error));
    EXPECT_EQ(error, "sms_send payload lacks provider_account");
    EXPECT_FALSE(parse_sms_send_job(nlohmann::json::parse("[]"), &job, &error));
}
