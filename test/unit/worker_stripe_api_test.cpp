// test/unit/worker_stripe_api_test.cpp — Stripe API requests of /api/billing/… and stripe_meter jobs
// (src/worker/stripe_api.cpp): the form body, bearer key, Idempotency-Key and pinned Stripe-Version of a call
// SQL decided, refusal of calls that are not Stripe API calls, meter event payloads, and how answers
// classify.
#include <gtest/gtest.h>

#include "config.hpp"
#include "stripe_api.hpp"

using namespace darkspere::worker;

namespace {

std::string header(const HttpRequest &r, const std::string &name) {
    for (const auto &[k, v] : r.headers)
        if (k == name)
            return v;
    return "";
}

nlohmann::json checkout_call() {
    using J = nlohmann::json;
    J form = J::array({J::array({"mode", "subscription"}), J::array({"line_items[0][price]", "price_1"}),
                       J::array({"success_url", "https://a/b?c=d e"})});
    return {{"method", "POST"},
            {"path", "/v1/checkout/sessions"},
            {"form", form},
            {"idempotency_key", "darkspere-checkout-7-abc"}};
}

}  // namespace

TEST(StripeApi, FormEncodedWithKeyIdempotencyAndVersion) {
    std::string error;
    auto r = stripe_api_request(checkout_call(), "https://api.stripe.com/", "sk_test_k", &error);
    ASSERT_TRUE(r) << error;
    EXPECT_EQ(r->method, "POST");
    EXPECT_EQ(r->url, "https://api.stripe.com/v1/checkout/sessions");
    EXPECT_EQ(
        r->body,
        "mode=subscription&line_items%5B0%5D%5Bprice%5D=price_1&success_url=https%3A%2F%2Fa%2Fb%3Fc%3Dd+e");
    EXPECT_EQ(header(*r, "Authorization"), "Bearer sk_test_k");
    EXPECT_EQ(header(*r, "Idempotency-Key"), "darkspere-checkout-7-abc");
    EXPECT_EQ(header(*r, "Stripe-Version"), "2025-03-31.basil");
    EXPECT_EQ(header(*r, "Content-Type"), "application/x-www-form-urlencoded");
    EXPECT_EQ(r->max_response_bytes, STRIPE_MAX_RESPONSE_BYTES);
}

TEST(StripeApi, DeleteWithoutBody) {
    auto call = checkout_call();
    call["method"] = "DELETE";
    call["path"] = "/v1/subscriptions/sub_1";
    call["form"] = nlohmann::json::array();
    auto r = stripe_api_request(call, "http://127.0.0.1:9", "sk", nullptr);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->method, "DELETE");
    EXPECT_EQ(r->body, "");
    EXPECT_EQ(header(*r, "Content-Type"), "");
}

TEST(StripeApi, RefusesWhatIsNotAStripeCall) {
    for (auto [field, value] :
         std::vector<std::pair<std::string, nlohmann::json>>{{"method", "GET"},
                                                             {"path", "/v2/x"},
                                                             {"path", "/v1/../../evil"},
                                                             {"path", "/v1/x?y=1"},
                                                             {"path", "//evil.example/v1/x"},
                                                             {"idempotency_key", ""},
                                                             {"idempotency_key", std::string(256, 'k')},
                                                             {"idempotency_key", "has space"},
                                                             {"form", {{"a"}}},
                                                             {"form", {{"a", 1}}},
                                                             {"form", "a=b"}}) {
        auto call = checkout_call();
        call[field] = value;
        std::string error;
        EXPECT_FALSE(stripe_api_request(call, "https://api.stripe.com", "sk", &error)) << field << value;
        EXPECT_FALSE(error.empty());
    }
}

TEST(StripeApi, MeterEventCall) {
    nlohmann::json payload = {{"event_name", "darkspere_sms_in_overage"},
                              {"stripe_customer_id", "cus_1"},
                              {"value", "120"},
                              {"identifier", "7:sms_in:1767225600"},
                              {"timestamp", 1767225600}};
    auto call = stripe_meter_call(payload, nullptr);
    ASSERT_TRUE(call);
    auto r = stripe_api_request(*call, "https://api.stripe.com", "sk", nullptr);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->url, "https://api.stripe.com/v1/billing/meter_events");
    EXPECT_EQ(
        r->body,
        "event_name=darkspere_sms_in_overage&payload%5Bstripe_customer_id%5D=cus_1&payload%5Bvalue%5D=120"
        "&identifier=7%3Asms_in%3A1767225600&timestamp=1767225600");
    EXPECT_EQ(header(*r, "Idempotency-Key"), "darkspere-meter-7:sms_in:1767225600");
    payload.erase("value");
    std::string error;
    EXPECT_FALSE(stripe_meter_call(payload, &error));
    EXPECT_NE(error.find("value"), std::string::npos);
}

TEST(StripeApi, MeterAnswersClassify) {
    EXPECT_EQ(classify_stripe_meter(200), StripeMeterVerdict::reported);
    for (long s : {0L, 401L, 403L, 409L, 429L, 500L, 503L})
        EXPECT_EQ(classify_stripe_meter(s), StripeMeterVerdict::retry) << s;
    for (long s : {400L, 402L, 404L})
        EXPECT_EQ(classify_stripe_meter(s), StripeMeterVerdict::fail) << s;
}

TEST(StripeApi, AnswerTextNeverEmpty) {
    HttpResponse r;
    r.error = "connection refused";
    EXPECT_EQ(stripe_answer_text(r), "connection refused");
    r.timed_out = true;
    EXPECT_EQ(stripe_answer_text(r), "timeout");
    r.too_large = true;
    EXPECT_NE(stripe_answer_text(r).find("larger"), std::string::npos);
}

TEST(StripeApi, KeyFromFileOrEnvironmentNeverTheCommandLine) {
    ConfigSources s;
    s.getenv = [](const std::string &name) -> std::optional<std::string> {
        if (name == "DARKSPERE_STRIPE_API_KEY")
            return "sk_test_from_env";
        return std::nullopt;
    };
    s.read_file = [](const std::string &) -> std::optional<std::string> { return std::nullopt; };
    auto c = load_config(s);
    ASSERT_TRUE(c);
    EXPECT_EQ(c->stripe_api_key, "sk_test_from_env");
    s.args = {"--stripe-api-key", "sk_test_on_argv"};
    try {
        load_config(s);
        FAIL() << "the key was accepted on the command line";
    } catch (const ConfigError &e) {
        EXPECT_EQ(std::string(e.what()).find("sk_test_on_argv"), std::string::npos);
        EXPECT_NE(std::string(e.what()).find("command line"), std::string::npos);
    }
}
