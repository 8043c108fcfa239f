// test/unit/crypto_test.cpp — hashes, HMACs and encodings against their RFC vectors.
#include "common/crypto.hpp"

#include <string>

#include <gtest/gtest.h>

using namespace darkspere;

// SHA-256 (FIPS 180-2 examples)

TEST(Sha256, EmptyInput) {
    EXPECT_EQ(to_hex(sha256("")), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(Sha256, Abc) {
    EXPECT_EQ(to_hex(sha256("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Sha256, ReturnsThirtyTwoRawBytes) {
    EXPECT_EQ(sha256("abc").size(), 32u);
}

// HMAC-SHA1 (RFC 2202)

TEST(HmacSha1, Rfc2202Case2) {
    EXPECT_EQ(to_hex(hmac_sha1("Jefe", "what do ya want for nothing?")),
              "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
}

TEST(HmacSha1, ReturnsTwentyRawBytes) {
    EXPECT_EQ(hmac_sha1("key", "message").size(), 20u);
}

TEST(HmacSha1, EmptyKeyAndMessage) {
    EXPECT_EQ(to_hex(hmac_sha1("", "")), "fbdb1d1b18aa6c08324b7d64b71fb76370690e1d");
}

// HMAC-SHA256 (RFC 4231)

TEST(HmacSha256, Rfc4231Case2) {
    EXPECT_EQ(to_hex(hmac_sha256("Jefe", "what do ya want for nothing?")),
              "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(HmacSha256, Rfc4231Case6KeyLongerThanBlock) {
    EXPECT_EQ(to_hex(hmac_sha256(std::string(131, '\xaa'),
                                 "Test Using Larger Than Block-Size Key - Hash Key First")),
              "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

TEST(HmacSha256, EmptyKeyAndMessage) {
    EXPECT_EQ(to_hex(hmac_sha256("", "")),
              "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

TEST(HmacSha256, KeyAndMessageMayContainNulBytes) {
    EXPECT_NE(hmac_sha256(std::string("k\0a", 3), "m"), hmac_sha256("k", "m"));
    EXPECT_NE(hmac_sha256("k", std::string("m\0", 2)), hmac_sha256("k", "m"));
}

// to_hex

TEST(ToHex, LowercaseTwoDigitsPerByte) {
    EXPECT_EQ(to_hex(std::string("\x00\x0f\xab\xff", 4)), "000fabff");
}

TEST(ToHex, EmptyInput) {
    EXPECT_EQ(to_hex(""), "");
}

// base64_encode (RFC 4648 §10)

TEST(Base64Encode, Rfc4648Vectors) {
    EXPECT_EQ(base64_encode(""), "");
    EXPECT_EQ(base64_encode("f"), "Zg==");
    EXPECT_EQ(base64_encode("fo"), "Zm8=");
    EXPECT_EQ(base64_encode("foo"), "Zm9v");
    EXPECT_EQ(base64_encode("foob"), "Zm9vYg==");
    EXPECT_EQ(base64_encode("fooba"), "Zm9vYmE=");
    EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
}

TEST(Base64Encode, StandardAlphabetUsesPlusAndSlash) {
    EXPECT_EQ(base64_encode("\xfb\xff\xbf"), "+/+/");
}

TEST(Base64Encode, NoLineBreaksInLongInput) {
    const std::string encoded = base64_encode(std::string(300, 'x'));
    EXPECT_EQ(encoded.size(), 400u);
    EXPECT_EQ(encoded.find('\n'), std::string::npos);
}

// constant_time_equal

TEST(ConstantTimeEqual, EqualBytes) {
    EXPECT_TRUE(constant_time_equal("abc", "abc"));
}

TEST(ConstantTimeEqual, DifferentLastByte) {
    EXPECT_FALSE(constant_time_equal("abc", "abd"));
}

TEST(ConstantTimeEqual, DifferentLengths) {
    EXPECT_FALSE(constant_time_equal("abc", "abcd"));
}

TEST(ConstantTimeEqual, EmptyEqualsEmpty) {
    EXPECT_TRUE(constant_time_equal("", ""));
}

TEST(ConstantTimeEqual, BytesAfterNulCount) {
    EXPECT_FALSE(constant_time_equal(std::string("a\0b", 3), std::string("a\0c", 3)));
}
