// test/unit/worker_receive_batcher_test.cpp — the messages argument of darkspere.receive_sms_batch, as the
// worker builds it from verified webhooks; and the delegated path (Citus, one queue per node): each message
// through receive_sms_for with its number's account.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "receive_batcher.hpp"
#include "scripted_pg.hpp"

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

namespace {

using darkspere::worker::testing::row;
using darkspere::worker::testing::ScriptedPg;

struct Delegated {
    ScriptedPg pg;
    Metrics metrics;
    ReceiveBatcher batcher{pg, metrics, [] { return size_t{4}; }};
    std::vector<PgResult> answers;
    Delegated() { batcher.set_delegated(true); }
    void submit(InboundSms m) {
        batcher.submit(std::move(m), [this](PgResult r) { answers.push_back(std::move(r)); });
    }
};

PgResult routed() {
    return row({"disposition", "session_id", "message_id", "agent_id", "reply"},
               {"routed", "1", "2", "3", std::nullopt});
}

}  // namespace

TEST(ReceiveDelegated, LooksTheAccountUpOnceThenCallsTheKeyedEntryPoint) {
    Delegated d;
    d.submit(sms("hello", std::make_shared<FakeSlot>()));
    auto lookup = d.pg.take("number_account");
    EXPECT_EQ(lookup.params, (PgParams{"AC1", "+14155550199"}));
    lookup.on_done(row({"number_account"}, {"42"}));
    auto call = d.pg.take("receive_sms_for");
    // The account first, then receive_sms's seven arguments; no hand-off arguments (the slot is let go).
    EXPECT_EQ(call.params,
              (PgParams{"42", "AC1", "+14155550199", "+14155550100", "hello", "SM1", "0", "req-1"}));
    call.on_done(routed());
    ASSERT_EQ(d.answers.size(), 1u);
    EXPECT_EQ(d.answers[0].value(0, "disposition"), "routed");
    // The next message of the same number needs no lookup.
    d.submit(sms("again"));
    EXPECT_EQ(d.pg.count("number_account"), 0u);
    d.pg.take("receive_sms_for").on_done(routed());
    EXPECT_EQ(d.answers.size(), 2u);
}

TEST(ReceiveDelegated, AnUnknownNumberIsAnsweredByReceiveSms) {
    Delegated d;
    d.submit(sms("hello"));
    d.pg.take("number_account").on_done(row({"number_account"}, {std::nullopt}));
    auto plain = d.pg.take("darkspere.receive_sms(");
    EXPECT_EQ(plain.params.size(), 7u);
    plain.on_done(row({"disposition", "session_id", "message_id", "agent_id", "reply"},
                      {"unknown_number", std::nullopt, std::nullopt, std::nullopt, std::nullopt}));
    ASSERT_EQ(d.answers.size(), 1u);
    EXPECT_EQ(d.answers[0].value(0, "disposition"), "unknown_number");
}

TEST(ReceiveDelegated, ANumberThatMovedIsLookedUpAgainAndStored) {
    Delegated d;
    d.submit(sms("hello"));
    d.pg.take("number_account").on_done(row({"number_account"}, {"42"}));
    PgResult moved;
    moved.sqlstate = "22023";
    moved.error = "to_number +14155550199 is not a number of account 42";
    d.pg.take("receive_sms_for").on_done(moved);
    EXPECT_TRUE(d.answers.empty());  // not answered: looked up again
    d.pg.take("number_account").on_done(row({"number_account"}, {"43"}));
    auto call = d.pg.take("receive_sms_for");
    EXPECT_EQ(call.params[0], "43");
    call.on_done(routed());
    ASSERT_EQ(d.answers.size(), 1u);
    EXPECT_TRUE(d.answers[0].ok);
}

TEST(ReceiveDelegated, OtherErrorsAndOutagesAreTheWebhooksAnswer) {
    Delegated d;
    d.submit(sms("hello"));
    PgResult down;
    down.unavailable = true;
    d.pg.take("number_account").on_done(down);
    ASSERT_EQ(d.answers.size(), 1u);
    EXPECT_TRUE(d.answers[0].unavailable);
    EXPECT_EQ(d.pg.sent.size(), 0u);
}

TEST(ReceiveDelegated, MessagesWaitingForATurnGoOneByOneNeverBatched) {
    ScriptedPg pg;
    Metrics metrics;
    ReceiveBatcher batcher{pg, metrics, [] { return size_t{1}; }};
    batcher.set_delegated(true);
    std::vector<PgResult> answers;
    for (int i = 0; i < 3; ++i)
        batcher.submit(sms("m" + std::to_string(i)), [&](PgResult r) { answers.push_back(std::move(r)); });
    EXPECT_EQ(batcher.waiting(), 2u);
    pg.take("number_account").on_done(row({"number_account"}, {"42"}));
    for (int i = 0; i < 3; ++i) {
        EXPECT_EQ(pg.count("receive_sms_batch"), 0u);
        pg.take("receive_sms_for").on_done(routed());
    }
    EXPECT_EQ(answers.size(), 3u);
}
