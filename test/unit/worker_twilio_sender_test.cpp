// test/unit/worker_twilio_sender_test.cpp — what each Messages API answer means for an sms_send job.
#include <gtest/gtest.h>

#include <thread>
#include <vector>

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
    SmsSendJob job{"AC1", "+14155550199", "+14155550100", "We open at 7 & close at 5.", "rq-1", "1"};
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
    boost::asio::io_context io;
    TwilioSender sender(io, http, [] { return TwilioSettings{"http://x", "http://y", {}, 1000}; });
    SendOutcome got;
    sender.send(SmsSendJob{"AC404", "+1", "+2", "hi", "rq", "1"}, [&got](SendOutcome o) { got = o; });
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

namespace {

// An HTTP client that holds every request until the test answers it.
struct HeldHttp : HttpClient {
    std::vector<std::pair<HttpRequest, std::function<void(HttpResponse)>>> open;
    void send(HttpRequest r, std::function<void(HttpResponse)> done) override {
        open.emplace_back(std::move(r), std::move(done));
    }
};

// One Twilio request slot for account AC1, and a lease that lets a send wait at most max_wait_ms for it.
std::function<TwilioSettings()> one_slot(long max_wait_ms) {
    return [max_wait_ms] {
        TwilioSettings s{"http://x", "http://y", {{"AC1", "tok"}}, 1000};
        s.max_concurrent = 1;
        s.lease_ms = s.deadline_ms + LEASE_MARGIN_MS + max_wait_ms;
        return s;
    };
}

// Two sends from one tenant of AC1, their outcomes collected in *got.
void send_two(TwilioSender &sender, std::vector<SendOutcome> *got) {
    for (const char *to : {"+15550001", "+15550002"})
        sender.send(SmsSendJob{"AC1", "+1", to, "hi", "rq", "7"},
                    [got](SendOutcome o) { got->push_back(o); });
}

}  // namespace

TEST(TwilioSender, SendsBeyondTheAccountLimitWaitAndGoWhenAnAnswerArrives) {
    HeldHttp http;
    boost::asio::io_context io;
    TwilioSender sender(io, http, one_slot(60000));
    std::vector<SendOutcome> got;
    send_two(sender, &got);
    ASSERT_EQ(http.open.size(), 1u);
    EXPECT_EQ(sender.sends_waiting(), 1);
    http.open[0].second(answer(201, R"({"sid":"SM1","status":"queued"})"));
    ASSERT_EQ(got.size(), 1u);
    EXPECT_TRUE(got[0].requested);
    io.run();
    ASSERT_EQ(http.open.size(), 2u);
    EXPECT_NE(http.open[1].first.body.find("To=%2B15550002"), std::string::npos);
    EXPECT_EQ(sender.sends_waiting(), 0);
}

TEST(TwilioSender, ASendThatCannotStartInTimeIsRetriedWithoutARequest) {
    HeldHttp http;
    boost::asio::io_context io;
    TwilioSender sender(io, http, one_slot(0));
    std::vector<SendOutcome> got;
    send_two(sender, &got);
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    http.open[0].second(answer(201, R"({"sid":"SM1","status":"queued"})"));
    io.run();
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(http.open.size(), 1u) << "the late send made no request";
    EXPECT_EQ(got[1].kind, Kind::retry);
    EXPECT_FALSE(got[1].requested);
    EXPECT_NE(got[1].error.find("request slots of account AC1 (twilio-max-concurrent)"), std::string::npos)
        << got[1].error;
}

// ---- oversized answers (issue #10 item 2)

TEST(TwilioSender, RequestsAreCappedAt64KiB) {
    TwilioSettings settings;
    settings.twilio_base = "https://api.twilio.com";
    settings.public_url = "https://sms.example.com";
    SmsSendJob job{"AC1", "+14155550199", "+14155550100", "hi", "rq"};
    EXPECT_EQ(twilio_send_request(job, settings, "token").max_response_bytes, 64u * 1024);
}

TEST(TwilioSender, OversizedAcceptedAnswerIsNotRetried) {
    // Twilio may have created the message: sending again could deliver it twice.
    HttpResponse r = answer(201, "");
    r.too_large = true;
    r.error = "response larger than 65536 bytes";
    SendOutcome o = classify_twilio_response(r, "x");
    EXPECT_EQ(o.kind, Kind::fail);
    EXPECT_EQ(o.error, "twilio http 201: response larger than 65536 bytes");
}

TEST(TwilioSender, OversizedOtherAnswerIsRetried) {
    HttpResponse r = answer(0, "");
    r.too_large = true;
    r.error = "response larger than 65536 bytes";
    EXPECT_EQ(classify_twilio_response(r, "x").kind, Kind::retry);
    r.status = 502;
    EXPECT_EQ(classify_twilio_response(r, "x").kind, Kind::retry);
}
