// test/unit/worker_receive_batcher_test.cpp — the messages argument of darkspere.receive_sms_batch, as the
// worker builds it from verified webhooks.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "receive_batcher.hpp"

using namespace darkspere::worker;

namespace {

// A reserved call slot, as far as the JSON is concerned.
class FakeSlot : public CallSlot {
  public:
    const HandoffOffer &offer() const override { return offer_; }
    void take(const PgResult &) override {}

  private:
    HandoffOffer offer_{"w", "30 seconds", "{}"};
};

InboundSms sms(std::string body, std::shared_ptr<CallSlot> slot = nullptr) {
    return {{"AC1", "+14155550199", "+14155550100", std::move(body), "SM1", "0", "req-1"}, std::move(slot)};
}

}  // namespace

TEST(ReceiveBatchJson, OneObjectPerMessageWithTheFunctionsArgumentNames) {
    InboundSms a = sms("hello", std::make_shared<FakeSlot>());
    InboundSms b = sms("again");
    auto json = nlohmann::json::parse(*receive_batch_json({&a, &b}));
    ASSERT_TRUE(json.is_array());
    ASSERT_EQ(json.size(), 2u);
    EXPECT_EQ(json[0], nlohmann::json({{"provider_account", "AC1"},
                                       {"to_number", "+14155550199"},
                                       {"from_number", "+14155550100"},
                                       {"body", "hello"},
                                       {"message_sid", "SM1"},
                                       {"num_media", "0"},
                                       {"request_id", "req-1"},
                                       {"take_call", true}}));
    EXPECT_EQ(json[1]["body"], "again");
    EXPECT_EQ(json[1]["take_call"], false);  // no slot: the call waits for a claim
}

TEST(ReceiveBatchJson, BodiesSurviveQuotesControlCharactersAndUnicode) {
    std::string body = "say \"hi\"\\ \n\t\x01 — 👋";
    InboundSms a = sms(body);
    EXPECT_EQ(nlohmann::json::parse(*receive_batch_json({&a}))[0]["body"], body);
}

TEST(ReceiveBatchJson, InvalidUtf8IsNotBatched) {
    // Not replaced (that would store a different text than the single statement refuses with a 400): the
    // batch is not built, and its messages are stored one by one.
    InboundSms good = sms("fine");
    InboundSms bad = sms(std::string("bad \xff byte"));
    EXPECT_FALSE(receive_batch_json({&good, &bad}).has_value());
    EXPECT_TRUE(receive_batch_json({&good}).has_value());
}

TEST(ReceiveBatchJson, NullArgumentsAreLeftOut) {
    InboundSms a = sms("x");
    a.args[0] = std::nullopt;  // no provider account
    a.args[6] = std::nullopt;  // no request id
    auto item = nlohmann::json::parse(*receive_batch_json({&a}))[0];
    EXPECT_FALSE(item.contains("provider_account"));
    EXPECT_FALSE(item.contains("request_id"));
    EXPECT_EQ(item["num_media"], "0");  // text, parsed by the database like the single statement's parameter
}
