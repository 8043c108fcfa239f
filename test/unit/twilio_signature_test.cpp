// test/unit/twilio_signature_test.cpp — X-Twilio-Signature, every vector of
// docs/protocols.md#twilio-test-vectors.
#include "common/twilio_signature.hpp"

#include <cctype>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/crypto.hpp"

using namespace darkspere;

namespace {

const std::string kToken = "12345";
// B: the base URL of the SDK suites.
const std::string kBaseUrl = "https://mycompany.com/myapp.php?foo=1&bar=2";
// P: the parameters of the SDK suites.
const std::vector<FormParam> kParams = {
    {"CallSid", "CA1234567890ABCDE"}, {"Caller", "+14158675309"}, {"Digits", "1234"},
    {"From", "+14158675309"},         {"To", "+18005551212"},
};

const std::string kT1 = "RSOYDt4T1cUTdK1PDd93/VVr8B8=";
const std::string kT2 = "kvajT1Ptam85bY51eRf/AJRuM3w=";
const std::string kT3 = "0ZXoZLH/DfblKGATFgpif+LLRf4=";
const std::string kT4 = "Zmvh+3yNM1Phv2jhDCwEM3q5ebU=";
const std::string kT9 = "ZQFR1PTIZXF2MXB8ZnKCvnnA+rI=";

const std::string kJ1Body = R"({"property": "value", "boolean": true})";
const std::string kJ1Hash = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620";
const std::string kJ3Hash = "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

}  // namespace

// String to sign (docs/protocols.md#twilio-request-signatures, step 1)

TEST(TwilioStringToSign, UrlThenSortedNamesAndValues) {
    EXPECT_EQ(
        twilio_string_to_sign(kBaseUrl, kParams),
        "https://mycompany.com/myapp.php?foo=1&bar=2CallSidCA1234567890ABCDECaller+14158675309Digits1234"
        "From+14158675309To+18005551212");
}

TEST(TwilioStringToSign, NamesSortedByteWiseCaseSensitive) {
    EXPECT_EQ(twilio_string_to_sign("u", {{"b", "1"}, {"B", "2"}, {"a", "3"}}), "uB2a3b1");
}

TEST(TwilioStringToSign, NamePrefixSortsFirst) {
    EXPECT_EQ(twilio_string_to_sign("u", {{"SidAccount", "AC123"}, {"Sid", "CA123"}}),
              "uSidCA123SidAccountAC123");
}

TEST(TwilioStringToSign, NonAsciiNamesSortAfterAscii) {
    EXPECT_EQ(twilio_string_to_sign("u", {{"\xC3\xA9", "1"}, {"z", "2"}}),
              "uz2\xC3\xA9"
              "1");
}

TEST(TwilioStringToSign, EmptyValueStillContributesName) {
    EXPECT_EQ(twilio_string_to_sign("u", {{"Body", ""}, {"A", "1"}}), "uA1Body");
}

TEST(TwilioStringToSign, RepeatedNameValuesDedupedAndSorted) {
    EXPECT_EQ(twilio_string_to_sign("u", {{"Digits", "5678"}, {"Digits", "1234"}, {"Digits", "1234"}}),
              "uDigits1234Digits5678");
}

TEST(TwilioStringToSign, NoParamsIsUrlAlone) {
    EXPECT_EQ(twilio_string_to_sign(kBaseUrl, {}), kBaseUrl);
}

// T1–T10: signatures computed for the URL exactly as given

TEST(TwilioSignature, T1BaseUrl) {
    EXPECT_EQ(twilio_signature(kToken, kBaseUrl, kParams), kT1);
}

TEST(TwilioSignature, T2HttpsWithPort443) {
    EXPECT_EQ(twilio_signature(kToken, "https://mycompany.com:443/myapp.php?foo=1&bar=2", kParams), kT2);
}

TEST(TwilioSignature, T3HttpWithPort80) {
    EXPECT_EQ(twilio_signature(kToken, "http://mycompany.com:80/myapp.php?foo=1&bar=2", kParams), kT3);
}

TEST(TwilioSignature, T4HttpWithNonDefaultPort) {
    EXPECT_EQ(twilio_signature(kToken, "http://mycompany.com:1234/myapp.php?foo=1&bar=2", kParams), kT4);
}

TEST(TwilioSignature, T5RepeatedNameAndNamePrefix) {
    const std::vector<FormParam> params = {{"Sid", "CA123"},
                                           {"SidAccount", "AC123"},
                                           {"Digits", "5678"},
                                           {"Digits", "1234"},
                                           {"Digits", "1234"}};
    EXPECT_EQ(twilio_string_to_sign(kBaseUrl, params),
              kBaseUrl + "Digits1234Digits5678SidCA123SidAccountAC123");
    EXPECT_EQ(twilio_signature(kToken, kBaseUrl, params), "IK+Dwps556ElfBT0I3Rgjkr1wJU=");
}

TEST(TwilioSignature, T6RepeatedNameInEitherInputOrder) {
    const std::string expected = "83O6e2vORAoJHUNzJjDWN1jz+BA=";
    EXPECT_EQ(twilio_signature(kToken, kBaseUrl,
                               {{"MessagingBinding.Address", "+1415xxxxxxx"},
                                {"MessagingBinding.Address", "+1325xxxxxxx"}}),
              expected);
    EXPECT_EQ(twilio_signature(kToken, kBaseUrl,
                               {{"MessagingBinding.Address", "+1325xxxxxxx"},
                                {"MessagingBinding.Address", "+1415xxxxxxx"}}),
              expected);
}

TEST(TwilioSignature, T7PercentEncodedQuoteInQuery) {
    EXPECT_EQ(
        twilio_signature(kToken, "https://mycompany.com/myapp.php?foo=1&bar=2&Body=It%27s+amazing", kParams),
        "TfZzewPq8wqrGlMfyAud8+/IvJ0=");
}

TEST(TwilioSignature, T7LiteralQuoteInQuery) {
    EXPECT_EQ(
        twilio_signature(kToken, "https://mycompany.com/myapp.php?foo=1&bar=2&Body=It's+amazing", kParams),
        "dsq4Ehbj6cs+KdTkpF5sSSplOWw=");
}

TEST(TwilioSignature, T8UserinfoWithPassword) {
    EXPECT_EQ(twilio_signature(kToken, "https://user:pass@mycompany.com/myapp.php?foo=1&bar=2", kParams),
              "CukzLTc1tT5dXEDIHm/tKBanW10=");
}

TEST(TwilioSignature, T9UserinfoWithPort443) {
    EXPECT_EQ(twilio_signature(kToken, "https://user:pass@mycompany.com:443/myapp.php?foo=1&bar=2", kParams),
              kT9);
}

TEST(TwilioSignature, T10UserinfoWithoutPassword) {
    EXPECT_EQ(twilio_signature(kToken, "https://user@mycompany.com/myapp.php?foo=1&bar=2", kParams),
              "2YRLlVAflCqxaNicjMpJcSTgzSs=");
}

TEST(TwilioSignature, HttpBaseUrlWithoutPort) {
    EXPECT_EQ(twilio_signature(kToken, "http://mycompany.com/myapp.php?foo=1&bar=2", kParams),
              "OyGYPqTF6ztdbRNCvuQO/oPvqQ4=");
}

TEST(TwilioSignature, IsTwentyEightBase64Characters) {
    EXPECT_EQ(twilio_signature("t", "u", {}).size(), 28u);
}

// URL port variants (step 3)

TEST(TwilioUrlVariants, NoPortGetsDefaultHttpsPort) {
    EXPECT_EQ(twilio_url_variants("https://h.com/p?q=1"),
              (std::vector<std::string>{"https://h.com/p?q=1", "https://h.com:443/p?q=1"}));
}

TEST(TwilioUrlVariants, NoPortGetsDefaultHttpPort) {
    EXPECT_EQ(twilio_url_variants("http://h.com/p"),
              (std::vector<std::string>{"http://h.com/p", "http://h.com:80/p"}));
}

TEST(TwilioUrlVariants, DefaultPortRemoved) {
    EXPECT_EQ(twilio_url_variants("https://h.com:443/p"),
              (std::vector<std::string>{"https://h.com/p", "https://h.com:443/p"}));
}

TEST(TwilioUrlVariants, NonDefaultPortRemovedOrKept) {
    EXPECT_EQ(twilio_url_variants("https://h.com:1234/p"),
              (std::vector<std::string>{"https://h.com/p", "https://h.com:1234/p"}));
}

TEST(TwilioUrlVariants, UserinfoKeptInBoth) {
    EXPECT_EQ(twilio_url_variants("https://user:pass@h.com/p"),
              (std::vector<std::string>{"https://user:pass@h.com/p", "https://user:pass@h.com:443/p"}));
}

TEST(TwilioUrlVariants, HostWithoutPath) {
    EXPECT_EQ(twilio_url_variants("https://h.com"),
              (std::vector<std::string>{"https://h.com", "https://h.com:443"}));
}

TEST(TwilioUrlVariants, ColonInQueryIsNotAPort) {
    EXPECT_EQ(twilio_url_variants("https://h.com?t=12:30"),
              (std::vector<std::string>{"https://h.com?t=12:30", "https://h.com:443?t=12:30"}));
}

TEST(TwilioUrlVariants, Ipv6LiteralHost) {
    EXPECT_EQ(twilio_url_variants("http://[::1]:8080/p"),
              (std::vector<std::string>{"http://[::1]/p", "http://[::1]:8080/p"}));
}

TEST(TwilioUrlVariants, SchemeIsCaseInsensitive) {
    EXPECT_EQ(twilio_url_variants("HTTPS://h.com/p"),
              (std::vector<std::string>{"HTTPS://h.com/p", "HTTPS://h.com:443/p"}));
}

TEST(TwilioUrlVariants, UnknownSchemeWithoutPortHasOneForm) {
    EXPECT_EQ(twilio_url_variants("wss://h.com/p"), (std::vector<std::string>{"wss://h.com/p"}));
}

TEST(TwilioUrlVariants, NotAUrlReturnedUnchanged) {
    EXPECT_EQ(twilio_url_variants("/sms/inbound"), (std::vector<std::string>{"/sms/inbound"}));
}

// Validation-level expectations

TEST(TwilioSignatureValid, T1ForBaseUrl) {
    EXPECT_TRUE(twilio_signature_valid(kToken, kBaseUrl, kParams, kT1));
}

TEST(TwilioSignatureValid, NonDefaultHttpsPortRemovedMatchesT1) {
    EXPECT_TRUE(
        twilio_signature_valid(kToken, "https://mycompany.com:1234/myapp.php?foo=1&bar=2", kParams, kT1));
}

TEST(TwilioSignatureValid, NonDefaultHttpPortKeptMatchesT4) {
    EXPECT_TRUE(
        twilio_signature_valid(kToken, "http://mycompany.com:1234/myapp.php?foo=1&bar=2", kParams, kT4));
}

TEST(TwilioSignatureValid, Port443AddedMatchesT2) {
    EXPECT_TRUE(twilio_signature_valid(kToken, kBaseUrl, kParams, kT2));
}

TEST(TwilioSignatureValid, Port80AddedMatchesT3) {
    EXPECT_TRUE(twilio_signature_valid(kToken, "http://mycompany.com/myapp.php?foo=1&bar=2", kParams, kT3));
}

TEST(TwilioSignatureValid, Port443AddedWithUserinfoMatchesT9) {
    EXPECT_TRUE(twilio_signature_valid(kToken, "https://user:pass@mycompany.com/myapp.php?foo=1&bar=2",
                                       kParams, kT9));
}

TEST(TwilioSignatureValid, OneCharacterChangedIsInvalid) {
    std::string tampered = kT2;
    tampered[0] = tampered[0] == 'k' ? 'K' : 'k';
    EXPECT_FALSE(twilio_signature_valid(kToken, kBaseUrl, kParams, tampered));
}

TEST(TwilioSignatureValid, MissingHeaderIsInvalid) {
    EXPECT_FALSE(twilio_signature_valid(kToken, kBaseUrl, kParams, ""));
}

TEST(TwilioSignatureValid, UnexpectedQueryParameterIsInvalid) {
    EXPECT_FALSE(twilio_signature_valid(kToken, kBaseUrl + "&somethingUnexpected=true", kParams, kT1));
}

TEST(TwilioSignatureValid, EmptyTokenIsInvalid) {
    EXPECT_FALSE(twilio_signature_valid("", kBaseUrl, kParams, twilio_signature("", kBaseUrl, kParams)));
}

TEST(TwilioSignatureValid, WrongTokenIsInvalid) {
    EXPECT_FALSE(twilio_signature_valid("54321", kBaseUrl, kParams, kT1));
}

TEST(TwilioSignatureValid, ChangedParameterIsInvalid) {
    std::vector<FormParam> params = kParams;
    params[2].value = "1235";
    EXPECT_FALSE(twilio_signature_valid(kToken, kBaseUrl, params, kT1));
}

TEST(TwilioSignatureValid, QueryIsNotReencoded) {
    // twilio-node also tries a "legacy querystring" form (' for %27); we sign the query exactly as received.
    EXPECT_FALSE(twilio_signature_valid(kToken,
                                        "https://mycompany.com/myapp.php?foo=1&bar=2&Body=It's+amazing",
                                        kParams, "TfZzewPq8wqrGlMfyAud8+/IvJ0="));
}

// Derived SMS vector: the raw body goes through parse_form

TEST(TwilioSignatureValid, DerivedSmsVectorFromRawBody) {
    const std::string url = "https://example.com/sms/inbound";
    const auto params = parse_form(
        "AccountSid=AC00000000000000000000000000000000&ApiVersion=2010-04-01&Body=Hello%2C+world%21+%E2%9C%"
        "93+"
        "%F0%9F%98%80&From=%2B14155550100&MessageSid=SM11111111111111111111111111111111&NumMedia=0&"
        "NumSegments=1&"
        "SmsMessageSid=SM11111111111111111111111111111111&SmsSid=SM11111111111111111111111111111111&"
        "SmsStatus=received&To=%2B14155550199");
    ASSERT_TRUE(params);
    EXPECT_EQ(form_value(*params, "Body"), std::optional<std::string>("Hello, world! \u2713 \U0001F600"));

    const std::string to_sign = twilio_string_to_sign(url, *params);
    EXPECT_EQ(
        to_sign,
        "https://example.com/sms/inboundAccountSidAC00000000000000000000000000000000ApiVersion2010-04-01"
        "BodyHello, world! \u2713 \U0001F600From+14155550100MessageSidSM11111111111111111111111111111111"
        "NumMedia0NumSegments1SmsMessageSidSM11111111111111111111111111111111"
        "SmsSidSM11111111111111111111111111111111SmsStatusreceivedTo+14155550199");
    EXPECT_EQ(to_sign.size(), 320u);
    EXPECT_EQ(twilio_signature(kToken, url, *params), "1a3Rnwg3jZvCkd4uQVa+vvCfPz0=");
    EXPECT_TRUE(twilio_signature_valid(kToken, url, *params, "1a3Rnwg3jZvCkd4uQVa+vvCfPz0="));
}

// J1–J3 (step 4): JSON bodies signed through bodySHA256

TEST(TwilioJsonSignature, J1HashOfBody) {
    EXPECT_EQ(to_hex(sha256(kJ1Body)), kJ1Hash);
}

TEST(TwilioJsonSignature, J1BaseUrlWithBodyHash) {
    const std::string url = kBaseUrl + "&bodySHA256=" + kJ1Hash;
    EXPECT_EQ(twilio_signature(kToken, url, {}), "a9nBmqA0ju/hNViExpshrM61xv4=");
    EXPECT_TRUE(twilio_json_signature_valid(kToken, url, kJ1Body, "a9nBmqA0ju/hNViExpshrM61xv4="));
}

TEST(TwilioJsonSignature, J2BodyHashOnlyQueryParameter) {
    const std::string url = "https://mycompany.com/myapp.php?bodySHA256=" + kJ1Hash;
    EXPECT_EQ(twilio_signature(kToken, url, {}), "y77kIzt2vzLz71DgmJGsen2scGs=");
    EXPECT_TRUE(twilio_json_signature_valid(kToken, url, kJ1Body, "y77kIzt2vzLz71DgmJGsen2scGs="));
}

TEST(TwilioJsonSignature, J3EmptyObjectHash) {
    EXPECT_EQ(to_hex(sha256("{}")), kJ3Hash);
}

TEST(TwilioJsonSignature, J3SignedWithPort443) {
    EXPECT_EQ(
        twilio_signature(kToken, "https://mycompany.com:443/myapp.php?foo=1&bar=2&bodySHA256=" + kJ3Hash, {}),
        "Ldidvp12m26NI7eqEvxnEpkd9Hc=");
    EXPECT_EQ(twilio_signature(kToken, kBaseUrl + "&bodySHA256=" + kJ3Hash, {}),
              "rw/jVviOgicj2+kHZULvebnA4ag=");
}

TEST(TwilioJsonSignature, J3ReceivedWithoutPortMatchesPort443Variant) {
    EXPECT_TRUE(twilio_json_signature_valid(kToken, kBaseUrl + "&bodySHA256=" + kJ3Hash, "{}",
                                            "Ldidvp12m26NI7eqEvxnEpkd9Hc="));
}

TEST(TwilioJsonSignature, BodyHashFoundBesideOddQueryEscapes) {
    const std::string url = "https://mycompany.com/myapp.php?discount=100%&bodySHA256=" + kJ1Hash;
    EXPECT_TRUE(twilio_json_signature_valid(kToken, url, kJ1Body, twilio_signature(kToken, url, {})));
}

TEST(TwilioJsonSignature, BodyHashNameIsCaseSensitive) {
    const std::string url = kBaseUrl + "&bodysha256=" + kJ1Hash;
    EXPECT_FALSE(twilio_json_signature_valid(kToken, url, kJ1Body, twilio_signature(kToken, url, {})));
}

TEST(TwilioJsonSignature, ChangedBodyIsInvalid) {
    EXPECT_FALSE(twilio_json_signature_valid(kToken, kBaseUrl + "&bodySHA256=" + kJ1Hash, kJ1Body + " ",
                                             "a9nBmqA0ju/hNViExpshrM61xv4="));
}

TEST(TwilioJsonSignature, MissingBodyHashIsInvalid) {
    EXPECT_FALSE(
        twilio_json_signature_valid(kToken, kBaseUrl, kJ1Body, twilio_signature(kToken, kBaseUrl, {})));
}

TEST(TwilioJsonSignature, UppercaseBodyHashIsInvalid) {
    std::string upper = kJ1Hash;
    for (char &c : upper) {
        c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
    const std::string url = kBaseUrl + "&bodySHA256=" + upper;
    EXPECT_FALSE(twilio_json_signature_valid(kToken, url, kJ1Body, twilio_signature(kToken, url, {})));
}

TEST(TwilioJsonSignature, WrongSignatureIsInvalid) {
    EXPECT_FALSE(twilio_json_signature_valid(kToken, kBaseUrl + "&bodySHA256=" + kJ1Hash, kJ1Body,
                                             "y77kIzt2vzLz71DgmJGsen2scGs="));
}

TEST(TwilioJsonSignature, EmptyTokenIsInvalid) {
    const std::string url = kBaseUrl + "&bodySHA256=" + kJ1Hash;
    EXPECT_FALSE(twilio_json_signature_valid("", url, kJ1Body, twilio_signature("", url, {})));
}
