// test/unit/worker_routes_stripe_test.cpp — POST /stripe/webhook: the checks before the database (secret,
// Stripe-Signature, JSON body), the one SQL call and how its answers map to HTTP statuses and metrics, the
// route's 256 KiB body limit, and the secret never accepted on the command line.
#include <gtest/gtest.h>

#include <chrono>
#include <deque>

#include "common/stripe_signature.hpp"
#include "config.hpp"
#include "routes_stripe.hpp"

using namespace darkspere::worker;
namespace http = boost::beast::http;

namespace {

const std::string SECRET = "whsec_test_secret";
const std::string EVENT = R"({"id":"evt_1","type":"invoice.paid","created":1767225600,"data":{"object":{}}})";
constexpr long long NOW = 1767225600;

Request webhook(const std::string &body, const std::string &signature) {
    Request r{http::verb::post, "/stripe/webhook", 11};
    r.set(http::field::content_type, "application/json");
    if (!signature.empty())
        r.set("Stripe-Signature", signature);
    r.body() = body;
    return r;
}

// A PgClient that records each statement and answers from a queue.
class FakePg : public PgClient {
  public:
    std::deque<PgResult> answers;
    std::vector<std::pair<std::string, PgParams>> calls;
    void query(std::string sql, PgParams params, PgCallback on_done, PgPriority) override {
        calls.emplace_back(std::move(sql), std::move(params));
        PgResult r = answers.front();
        answers.pop_front();
        on_done(std::move(r));
    }
    size_t connected() const override { return 1; }
};

PgResult answer(const std::string &outcome) {
    PgResult r;
    r.ok = true;
    r.rows = {{outcome}};
    return r;
}

PgResult failure(const std::string &sqlstate) {
    PgResult r;
    r.sqlstate = sqlstate;
    r.error = "boom";
    return r;
}

long long now_unix() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

}  // namespace

TEST(StripeWebhook, ValidSignatureAndObjectBodyPass) {
    std::string sig = darkspere::stripe_signature_header(SECRET, EVENT, NOW);
    EXPECT_EQ(verify_stripe_webhook(webhook(EVENT, sig), SECRET, 300, NOW).status, 200u);
}

TEST(StripeWebhook, AnyOfSeveralV1Passes) {
    std::string good = darkspere::stripe_signature_header(SECRET, EVENT, NOW);
    std::string v1 = good.substr(good.find("v1="));
    std::string sig = "t=" + std::to_string(NOW) + ",v1=" + std::string(64, '0') + "," + v1;
    EXPECT_EQ(verify_stripe_webhook(webhook(EVENT, sig), SECRET, 300, NOW).status, 200u);
}

TEST(StripeWebhook, RefusalsBeforeTheDatabase) {
    std::string sig = darkspere::stripe_signature_header(SECRET, EVENT, NOW);
    StripeCheck none = verify_stripe_webhook(webhook(EVENT, sig), "", 300, NOW);
    EXPECT_EQ(none.status, 503u);
    EXPECT_EQ(none.outcome, "unconfigured");
    StripeCheck missing = verify_stripe_webhook(webhook(EVENT, ""), SECRET, 300, NOW);
    EXPECT_EQ(missing.status, 400u);
    EXPECT_EQ(missing.outcome, "bad_signature");
    StripeCheck other = verify_stripe_webhook(webhook(EVENT, sig), "whsec_other", 300, NOW);
    EXPECT_EQ(other.status, 400u);
    EXPECT_EQ(other.error.find("whsec"), std::string::npos);  // no secret in the answer
    StripeCheck old = verify_stripe_webhook(webhook(EVENT, sig), SECRET, 300, NOW + 301);
    EXPECT_EQ(old.status, 400u);
    EXPECT_NE(old.error.find("too_old"), std::string::npos);
    std::string tampered = EVENT;
    tampered[tampered.size() - 3] = ' ';
    EXPECT_EQ(verify_stripe_webhook(webhook(tampered, sig), SECRET, 300, NOW).status, 400u);
    for (std::string body : {"not json", "[1,2]", "\"text\""}) {
        std::string s = darkspere::stripe_signature_header(SECRET, body, NOW);
        StripeCheck c = verify_stripe_webhook(webhook(body, s), SECRET, 300, NOW);
        EXPECT_EQ(c.status, 400u) << body;
        EXPECT_EQ(c.outcome, "bad_body") << body;
    }
}

TEST(StripeWebhook, OneSqlCallAndItsAnswers) {
    FakePg pg;
    Metrics metrics;
    auto config = std::make_shared<Config>();
    config->stripe_webhook_secret = SECRET;
    StripeRoutes routes(pg, metrics, [config] { return config; });
    struct Case {
        PgResult result;
        unsigned status;
        std::string outcome;
    };
    std::vector<Case> cases = {
        {answer("processed"), 200, "processed"}, {answer("duplicate"), 200, "duplicate"},
        {answer("ignored"), 200, "ignored"},     {failure("22023"), 400, "bad_event"},
        {failure("42704"), 500, "error"},        {failure("40001"), 500, "error"}};
    std::map<std::string, unsigned long long> expected;
    for (const auto &c : cases) {
        ++expected[c.outcome];
        pg.answers.push_back(c.result);
        std::string sig = darkspere::stripe_signature_header(SECRET, EVENT, now_unix());
        unsigned status = 0;
        std::string body;
        routes.webhook(webhook(EVENT, sig), [&](Response res) {
            status = res.result_int();
            body = res.body();
        });
        EXPECT_EQ(status, c.status) << c.outcome;
        EXPECT_EQ(metrics.stripe_events[c.outcome], expected[c.outcome]) << c.outcome;
        if (c.status == 200) {
            EXPECT_EQ(body, R"({"outcome":")" + c.outcome + "\"}");
        }
    }
    ASSERT_EQ(pg.calls.size(), cases.size());
    EXPECT_EQ(pg.calls[0].first, "SELECT darkspere.stripe_event($1::jsonb)");
    ASSERT_EQ(pg.calls[0].second.size(), 1u);
    EXPECT_EQ(*pg.calls[0].second[0], EVENT);  // the signed bytes, exactly

    // A bad signature never reaches the database.
    routes.webhook(webhook(EVENT, "t=1,v1=00"), [](Response res) { EXPECT_EQ(res.result_int(), 400u); });
    EXPECT_EQ(pg.calls.size(), cases.size());
    EXPECT_EQ(metrics.stripe_events["bad_signature"], 1u);
}

TEST(StripeWebhook, BodyLimitIsPerPath) {
    EXPECT_EQ(request_body_limit("/stripe/webhook"), 256u * 1024);
    EXPECT_EQ(request_body_limit("/stripe/webhook?x=1"), 256u * 1024);
    EXPECT_EQ(request_body_limit("/twilio/sms"), REQUEST_BODY_MAX);
    EXPECT_EQ(request_body_limit("/api/agents"), REQUEST_BODY_MAX);
}

TEST(StripeWebhook, SecretFromFileOrEnvironmentNeverTheCommandLine) {
    ConfigSources s;
    s.getenv = [](const std::string &name) -> std::optional<std::string> {
        if (name == "DARKSPERE_STRIPE_WEBHOOK_SECRET")
            return "whsec_from_env";
        return std::nullopt;
    };
    s.read_file = [](const std::string &) -> std::optional<std::string> { return std::nullopt; };
    auto c = load_config(s);
    ASSERT_TRUE(c);
    EXPECT_EQ(c->stripe_webhook_secret, "whsec_from_env");

    s.args = {"--stripe-webhook-secret", "whsec_on_argv"};
    try {
        load_config(s);
        FAIL() << "the secret was accepted on the command line";
    } catch (const ConfigError &e) {
        EXPECT_EQ(std::string(e.what()).find("whsec_on_argv"), std::string::npos);
        EXPECT_NE(std::string(e.what()).find("command line"), std::string::npos);
    }
}
