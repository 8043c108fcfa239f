// test/unit/worker_agent_signature_test.cpp — X-DarkSpere-Signature: the header format, checked against an
// HMAC computed here with OpenSSL's one-shot HMAC() (not the worker's code), and that `http` turns are
// signed.
#include <gtest/gtest.h>

#include <ctime>
#include <regex>
#include <string>
#include <vector>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "agent_http.hpp"
#include "agent_signature.hpp"

using namespace darkspere::worker;

namespace {

// independent_hmac_hex — lowercase hex HMAC-SHA256, straight from OpenSSL.
std::string independent_hmac_hex(const std::string &key, const std::string &message) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
         reinterpret_cast<const unsigned char *>(message.data()), message.size(), mac, &len);
    static const char digits[] = "0123456789abcdef";
    std::string hex;
    for (unsigned int i = 0; i < len; ++i) {
        hex += digits[mac[i] >> 4];
        hex += digits[mac[i] & 0xF];
    }
    return hex;
}

const std::string kSecret = "dsk_" + std::string(64, 'a');
const std::string kOldSecret = "dsk_" + std::string(64, 'b');

std::string header_of(const HttpRequest &request) {
    std::string found;
    int count = 0;
    for (const auto &[name, value] : request.headers) {
        if (name == kAgentSignatureHeader) {
            found = value;
            ++count;
        }
    }
    EXPECT_LE(count, 1);
    return found;
}

}  // namespace

TEST(AgentSignature, OneSecretIsTimestampAndHmacOfTimestampDotBody) {
    std::string body = R"({"message":"hi"})";
    EXPECT_EQ(agent_signature_header({kSecret}, 1700000000, body),
              "t=1700000000,v1=" + independent_hmac_hex(kSecret, "1700000000." + body));
}

TEST(AgentSignature, DuringGraceBothSignaturesCurrentFirst) {
    std::string body = "{}";
    EXPECT_EQ(agent_signature_header({kSecret, kOldSecret}, 42, body),
              "t=42,v1=" + independent_hmac_hex(kSecret, "42.{}") +
                  ",v1=" + independent_hmac_hex(kOldSecret, "42.{}"));
}

TEST(AgentSignature, BodyBytesAreSignedExactly) {
    std::string body("a\0b\xff", 4);  // NUL and non-UTF-8 bytes are part of what is signed
    EXPECT_EQ(agent_signature_header({kSecret}, 1, body),
              "t=1,v1=" + independent_hmac_hex(kSecret, std::string("1.") + body));
}

TEST(AgentSignature, NoSecretNoHeader) {
    HttpRequest request;
    request.body = "{}";
    sign_agent_request(request, {});
    EXPECT_TRUE(request.headers.empty());
}

TEST(AgentSignature, HttpTurnIsSignedOverItsBodyAtTheCurrentTime) {
    AgentTurn turn;
    turn.endpoint = "https://agent.example/chat";
    turn.message = "What time do you open?";
    turn.request_id = "rq-1";
    turn.signing_secrets = {kSecret};
    long long before = static_cast<long long>(std::time(nullptr));
    HttpRequest request = agent_http_request(turn);
    long long after = static_cast<long long>(std::time(nullptr));
    std::string header = header_of(request);
    std::smatch m;
    ASSERT_TRUE(std::regex_match(header, m, std::regex("t=([0-9]+),v1=([0-9a-f]{64})"))) << header;
    long long t = std::stoll(m[1]);
    EXPECT_GE(t, before);
    EXPECT_LE(t, after);
    EXPECT_EQ(m[2].str(), independent_hmac_hex(kSecret, m[1].str() + "." + request.body));
}

TEST(AgentSignature, HttpTurnWithoutSecretsIsUnsigned) {
    AgentTurn turn;
    turn.endpoint = "https://agent.example/chat";
    EXPECT_EQ(header_of(agent_http_request(turn)), "");
}
