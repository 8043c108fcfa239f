// test/unit/stripe_signature_test.cpp — Stripe-Signature checks, every vector of
// docs/protocols.md#stripe-webhook-signatures.
#include "common/stripe_signature.hpp"

#include <string>

#include <gtest/gtest.h>

#include "common/crypto.hpp"

using namespace darkspere;

namespace {

// S1 (stripe-dotnet EventUtilityTest): 24 lines, two-space indentation, LF endings, exactly one final
// newline.
const std::string kS1Secret = "webhook_secret";
const std::string kS1Payload = R"json({
  "id": "evt_123",
  "object": "event",
  "account": "acct_123",
  "api_version": "2017-05-25",
  "created": 1533204620,
  "data": {
    "object": {
      "id": "cus_123",
      "object": "customer",
      "created": 123456789,
      "email": "test@stripe.com",
      "livemode": false,
      "metadata": {}
    }
  },
  "livemode": false,
  "pending_webhooks": 1,
  "request": {
    "id": "req_123",
    "idempotency_key": "idempotency-key-123"
  },
  "type": "customer.created"
}
)json";
const long long kS1Time = 1533204620;
const std::string kS1V1 = "2220f87ef101a04665f11cdf770523143f875572008577fa0f20882ddb9cc3c7";
const std::string kS1Header =
    "t=1533204620,v1=2220f87ef101a04665f11cdf770523143f875572008577fa0f20882ddb9cc3c7,"
    "v0=63f3a72374a733066c4be69ed7f8e5ac85c22c9f0a6a612ab9a025a9e4ee7eef";
// The S1 secret and payload signed at t=1700000000 (derived).
const std::string kS1V1At1700000000 = "17bebb6cb3b71bd0e1942e73dfa69ef97385869aed80910559a1bb391092b335";

// S2 (derived from stripe-python's dummy payload): 125 bytes, no trailing newline, whsec_ secret used
// verbatim.
const std::string kS2Secret = "whsec_test_secret";
const std::string kS2Payload =
    "{\n  \"id\": \"evt_test_webhook\",\n  \"object\": \"event\",\n  \"data\": { \"object\": { \"id\": "
    "\"rdr_123\", "
    "\"object\": \"terminal.reader\" } }\n}";

const long long kTolerance = kStripeDefaultToleranceSeconds;

StripeVerdict check_s1(std::string_view header, long long now) {
    return stripe_signature_check(kS1Secret, kS1Payload, header, kTolerance, now);
}

}  // namespace

// S1 fixture integrity: the payload bytes must be exactly the published ones.

TEST(StripeS1Payload, Is484Bytes) {
    EXPECT_EQ(kS1Payload.size(), 484u);
}

TEST(StripeS1Payload, Sha256MatchesSpec) {
    EXPECT_EQ(to_hex(sha256(kS1Payload)), "98cc89412549ca7faf118fca984763bdb6f81e13d1ce8c528dbbb5be602ec1be");
}

// S1 cases of the stripe-dotnet suite

TEST(StripeSignatureCheck, S1HeaderExpectedSignature) {
    EXPECT_EQ(stripe_signature_header(kS1Secret, kS1Payload, kS1Time), "t=1533204620,v1=" + kS1V1);
}

TEST(StripeSignatureCheck, S1ValidWithinTolerance) {
    EXPECT_EQ(check_s1(kS1Header, kS1Time + 100), StripeVerdict::valid);
    EXPECT_TRUE(stripe_signature_valid(kS1Secret, kS1Payload, kS1Header, kTolerance, kS1Time + 100));
}

TEST(StripeSignatureCheck, S1TooOldBeyondTolerance) {
    EXPECT_EQ(check_s1(kS1Header, kS1Time + 400), StripeVerdict::too_old);
    EXPECT_FALSE(stripe_signature_valid(kS1Secret, kS1Payload, kS1Header, kTolerance, kS1Time + 400));
}

TEST(StripeSignatureCheck, S1PayloadWithExtraBytesAppendedRejected) {
    EXPECT_EQ(stripe_signature_check(kS1Secret, kS1Payload + " ", kS1Header, kTolerance, kS1Time),
              StripeVerdict::no_match);
}

TEST(StripeSignatureCheck, S1PayloadWithoutTrailingNewlineRejected) {
    const std::string without_newline = kS1Payload.substr(0, kS1Payload.size() - 1);
    ASSERT_EQ(without_newline.size(), 483u);
    EXPECT_EQ(stripe_signature_header(kS1Secret, without_newline, kS1Time),
              "t=1533204620,v1=8c506d7d19ece69e9a38e398964787dda54eeb2583381ffc7f56070c28d7f119");
    EXPECT_EQ(stripe_signature_check(kS1Secret, without_newline, kS1Header, kTolerance, kS1Time),
              StripeVerdict::no_match);
}

TEST(StripeSignatureCheck, S1DerivedSignatureAt1700000000) {
    EXPECT_EQ(stripe_signature_header(kS1Secret, kS1Payload, 1700000000),
              "t=1700000000,v1=" + kS1V1At1700000000);
}

TEST(StripeSignatureCheck, AnyV1MatchesGoodThenBad) {
    const std::string header = "t=1700000000,v1=" + kS1V1At1700000000 + ",v1=deadbeef" + std::string(56, '0');
    EXPECT_EQ(check_s1(header, 1700000010), StripeVerdict::valid);
}

TEST(StripeSignatureCheck, AnyV1MatchesBadThenGood) {
    const std::string header = "t=1700000000,v1=deadbeef" + std::string(56, '0') + ",v1=" + kS1V1At1700000000;
    EXPECT_EQ(check_s1(header, 1700000010), StripeVerdict::valid);
}

TEST(StripeSignatureCheck, OnlyV0PresentIsMalformed) {
    EXPECT_EQ(
        check_s1("t=1533204620,v0=63f3a72374a733066c4be69ed7f8e5ac85c22c9f0a6a612ab9a025a9e4ee7eef", kS1Time),
        StripeVerdict::malformed);
}

TEST(StripeSignatureCheck, EmptyTimestampIsMalformed) {
    EXPECT_EQ(check_s1("t=,v1=" + kS1V1, kS1Time), StripeVerdict::malformed);
}

TEST(StripeSignatureCheck, ItemsWithoutValuesAreMalformed) {
    EXPECT_EQ(check_s1("t,v1=,v0=", kS1Time), StripeVerdict::malformed);
}

TEST(StripeSignatureCheck, EmptyItemsAreMalformed) {
    EXPECT_EQ(check_s1(",,", kS1Time), StripeVerdict::malformed);
}

TEST(StripeSignatureCheck, BareTIsMalformed) {
    EXPECT_EQ(check_s1("t", kS1Time), StripeVerdict::malformed);
}

TEST(StripeSignatureCheck, EmptySecretRejected) {
    EXPECT_EQ(stripe_signature_check("", kS1Payload, kS1Header, kTolerance, kS1Time),
              StripeVerdict::empty_secret);
    EXPECT_EQ(stripe_signature_check("", kS1Payload, stripe_signature_header("", kS1Payload, kS1Time),
                                     kTolerance, kS1Time),
              StripeVerdict::empty_secret);
}

// S2: whsec_ secret used verbatim, payload without trailing newline

TEST(StripeS2Payload, Is125BytesWithoutTrailingNewline) {
    EXPECT_EQ(kS2Payload.size(), 125u);
    EXPECT_EQ(kS2Payload.back(), '}');
}

TEST(StripeS2Payload, Sha256MatchesSpec) {
    EXPECT_EQ(to_hex(sha256(kS2Payload)), "3b538d7c82820105fcdc02c25620eba837c401a7d6256f877fc0c4875a73bc93");
}

TEST(StripeSignatureHeader, S2ExpectedHeader) {
    EXPECT_EQ(stripe_signature_header(kS2Secret, kS2Payload, 1700000000),
              "t=1700000000,v1=3bfab77baf5f7b6991a46c9b53b6547d7afc56148b10468fcad9f35c1992ffbd");
}

TEST(StripeSignatureCheck, S2Valid) {
    EXPECT_EQ(stripe_signature_check(
                  kS2Secret, kS2Payload,
                  "t=1700000000,v1=3bfab77baf5f7b6991a46c9b53b6547d7afc56148b10468fcad9f35c1992ffbd",
                  kTolerance, 1700000000),
              StripeVerdict::valid);
}

TEST(StripeSignatureCheck, S2SecretWithoutPrefixDoesNotMatch) {
    EXPECT_EQ(stripe_signature_check(
                  "test_secret", kS2Payload,
                  "t=1700000000,v1=3bfab77baf5f7b6991a46c9b53b6547d7afc56148b10468fcad9f35c1992ffbd",
                  kTolerance, 1700000000),
              StripeVerdict::no_match);
}

// Tolerance boundaries and future timestamps

TEST(StripeSignatureCheck, ExactlyToleranceOldIsValid) {
    EXPECT_EQ(check_s1(kS1Header, kS1Time + kTolerance), StripeVerdict::valid);
}

TEST(StripeSignatureCheck, OneSecondBeyondToleranceIsTooOld) {
    EXPECT_EQ(check_s1(kS1Header, kS1Time + kTolerance + 1), StripeVerdict::too_old);
}

TEST(StripeSignatureCheck, ExactlyToleranceInFutureIsValid) {
    EXPECT_EQ(check_s1(kS1Header, kS1Time - kTolerance), StripeVerdict::valid);
}

TEST(StripeSignatureCheck, BeyondToleranceInFutureIsTooNew) {
    EXPECT_EQ(check_s1(kS1Header, kS1Time - kTolerance - 1), StripeVerdict::too_new);
}

TEST(StripeSignatureCheck, SignatureJudgedBeforeTimestamp) {
    EXPECT_EQ(check_s1("t=1533204620,v1=" + std::string(64, '0'), kS1Time + 400), StripeVerdict::no_match);
}

// Header syntax

TEST(StripeSignatureCheck, ItemOrderDoesNotMatter) {
    EXPECT_EQ(check_s1("v0=abc,v1=" + kS1V1 + ",t=1533204620", kS1Time), StripeVerdict::valid);
}

TEST(StripeSignatureCheck, UnknownKeysIgnored) {
    EXPECT_EQ(check_s1("t=1533204620,v2=xyz,v1=" + kS1V1, kS1Time), StripeVerdict::valid);
}

TEST(StripeSignatureCheck, EmptyV1IgnoredBesideGoodOne) {
    EXPECT_EQ(check_s1("t=1533204620,v1=,v1=" + kS1V1, kS1Time), StripeVerdict::valid);
}

TEST(StripeSignatureCheck, MissingTimestampIsMalformed) {
    EXPECT_EQ(check_s1("v1=" + kS1V1, kS1Time), StripeVerdict::malformed);
}

TEST(StripeSignatureCheck, NonDecimalTimestampIsMalformed) {
    EXPECT_EQ(check_s1("t=15332o4620,v1=" + kS1V1, kS1Time), StripeVerdict::malformed);
    EXPECT_EQ(check_s1("t=-1,v1=" + kS1V1, kS1Time), StripeVerdict::malformed);
    EXPECT_EQ(check_s1("t=+1533204620,v1=" + kS1V1, kS1Time), StripeVerdict::malformed);
    EXPECT_EQ(check_s1("t= 1533204620,v1=" + kS1V1, kS1Time), StripeVerdict::malformed);
}

TEST(StripeSignatureCheck, OverflowingTimestampIsMalformed) {
    EXPECT_EQ(check_s1("t=99999999999999999999,v1=" + kS1V1, kS1Time), StripeVerdict::malformed);
}

TEST(StripeSignatureCheck, RepeatedTimestampIsMalformed) {
    EXPECT_EQ(check_s1("t=1533204620,t=1533204620,v1=" + kS1V1, kS1Time), StripeVerdict::malformed);
}

TEST(StripeSignatureCheck, TrailingCommaIsMalformed) {
    EXPECT_EQ(check_s1(kS1Header + ",", kS1Time), StripeVerdict::malformed);
}

TEST(StripeSignatureCheck, EmptyHeaderIsMalformed) {
    EXPECT_EQ(check_s1("", kS1Time), StripeVerdict::malformed);
}

TEST(StripeSignatureCheck, TimestampDigitsSignedAsReceived) {
    // Leading zeros change the signed payload, so Stripe's signature no longer matches.
    EXPECT_EQ(check_s1("t=01533204620,v1=" + kS1V1, kS1Time), StripeVerdict::no_match);
}

TEST(StripeSignatureCheck, UppercaseHexDoesNotMatch) {
    std::string upper = kS1V1;
    for (char &c : upper) {
        if (c >= 'a' && c <= 'f') {
            c = static_cast<char>(c - 'a' + 'A');
        }
    }
    EXPECT_EQ(check_s1("t=1533204620,v1=" + upper, kS1Time), StripeVerdict::no_match);
}

// stripe_verdict_name

TEST(StripeVerdictName, NamesMatchEnumerators) {
    EXPECT_STREQ(stripe_verdict_name(StripeVerdict::valid), "valid");
    EXPECT_STREQ(stripe_verdict_name(StripeVerdict::malformed), "malformed");
    EXPECT_STREQ(stripe_verdict_name(StripeVerdict::no_match), "no_match");
    EXPECT_STREQ(stripe_verdict_name(StripeVerdict::too_old), "too_old");
    EXPECT_STREQ(stripe_verdict_name(StripeVerdict::too_new), "too_new");
    EXPECT_STREQ(stripe_verdict_name(StripeVerdict::empty_secret), "empty_secret");
}
