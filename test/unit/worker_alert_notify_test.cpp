// test/unit/worker_alert_notify_test.cpp — the alert webhook request (body as the database built it, signed
// with the channel's secret) and its outcome (2xx delivers; anything else is an error that does not quote the
// receiver).
#include <gtest/gtest.h>

#include "agent_signature.hpp"
#include "alert_notify.hpp"

using namespace darkspere::worker;

namespace {

std::string header_of(const HttpRequest &req, const std::string &name) {
    for (const auto &[k, v] : req.headers)
        if (k == name)
            return v;
    return "";
}

}  // namespace

TEST(AlertNotify, RequestIsTheBodySignedWithTheChannelSecret) {
    nlohmann::json payload = {{"webhook_url", "https://hooks.example/ops"},
                              {"request_id", "alert-7"},
                              {"signing_secrets", {"dsk_abc"}},
                              {"body", {{"text", "[CRITICAL] error_rate firing"}, {"alert_id", 7}}}};
    HttpRequest req;
    std::string error;
    ASSERT_TRUE(alert_notify_request(payload, &req, &error)) << error;
    EXPECT_EQ(req.method, "POST");
    EXPECT_EQ(req.url, "https://hooks.example/ops");
    EXPECT_EQ(nlohmann::json::parse(req.body), payload["body"]);
    EXPECT_EQ(header_of(req, "Content-Type"), "application/json");
    EXPECT_EQ(header_of(req, "X-Request-Id"), "alert-7");
    std::string sig = header_of(req, kAgentSignatureHeader);
    ASSERT_FALSE(sig.empty());
    long long t = std::stoll(sig.substr(2, sig.find(',') - 2));
    EXPECT_EQ(sig, agent_signature_header({"dsk_abc"}, t, req.body));
    EXPECT_EQ(req.body.find("dsk_abc"), std::string::npos);  // the secret signs, it is never sent
}

TEST(AlertNotify, UnusablePayloads) {
    HttpRequest req;
    std::string error;
    EXPECT_FALSE(alert_notify_request({{"body", {{"text", "x"}}}}, &req, &error));
    EXPECT_NE(error.find("webhook_url"), std::string::npos);
    EXPECT_FALSE(alert_notify_request({{"webhook_url", "https://h.example/"}, {"body", "x"}}, &req, &error));
    EXPECT_NE(error.find("body"), std::string::npos);
}

TEST(AlertNotify, Outcome) {
    HttpResponse ok;
    ok.status = 204;
    EXPECT_TRUE(alert_notify_outcome(ok).delivered);
    HttpResponse refused;
    refused.status = 500;
    refused.body = "secret stack trace";
    AlertNotifyOutcome out = alert_notify_outcome(refused);
    EXPECT_FALSE(out.delivered);
    EXPECT_EQ(out.error, "webhook http 500");
    HttpResponse none;
    none.timed_out = true;
    EXPECT_EQ(alert_notify_outcome(none).error, "timeout");
}
