// src/common/crypto.cpp — hashes, HMACs and encodings on top of OpenSSL 3 libcrypto.
#include "common/crypto.hpp"

#include <climits>
#include <stdexcept>

#include <openssl/crypto.h>
#include <openssl/evp.h>

namespace darkspere {

namespace {

// hmac returns the raw HMAC of message under key with the named digest ("SHA1", "SHA256").
std::string hmac(const char *digest, std::string_view key, std::string_view message) {
    // OpenSSL 3 treats a NULL key as "keep the previous key", so an empty key must still be a real pointer.
    static const unsigned char empty_key = 0;
    const void *key_bytes = key.empty() ? static_cast<const void *>(&empty_key) : key.data();

    unsigned char out[EVP_MAX_MD_SIZE];
    size_t out_len = 0;
    if (EVP_Q_mac(nullptr, "HMAC", nullptr, digest, nullptr, key_bytes, key.size(),
                  reinterpret_cast<const unsigned char *>(message.data()), message.size(), out, sizeof out,
                  &out_len) == nullptr) {
        throw std::runtime_error(std::string("HMAC-") + digest + " failed in libcrypto");
    }
    return std::string(reinterpret_cast<const char *>(out), out_len);
}

}  // namespace

std::string hmac_sha1(std::string_view key, std::string_view message) {
    return hmac("SHA1", key, message);
}

std::string hmac_sha256(std::string_view key, std::string_view message) {
    return hmac("SHA256", key, message);
}

std::string sha256(std::string_view data) {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int out_len = 0;
    if (EVP_Digest(data.data(), data.size(), out, &out_len, EVP_sha256(), nullptr) != 1) {
        throw std::runtime_error("SHA-256 failed in libcrypto");
    }
    return std::string(reinterpret_cast<const char *>(out), out_len);
}

std::string to_hex(std::string_view bytes) {
    static const char digits[] = "0123456789abcdef";
    std::string hex;
    hex.reserve(bytes.size() * 2);
    for (unsigned char byte : bytes) {
        hex.push_back(digits[byte >> 4]);
        hex.push_back(digits[byte & 0x0F]);
    }
    return hex;
}

std::string base64_encode(std::string_view bytes) {
    // EVP_EncodeBlock takes an int length; webhook material is tiny, so a larger input is a caller bug.
    if (bytes.size() > static_cast<std::size_t>(INT_MAX / 4 * 3)) {
        throw std::length_error("base64_encode: input too large");
    }
    std::string encoded(4 * ((bytes.size() + 2) / 3), '\0');
    const int written = EVP_EncodeBlock(reinterpret_cast<unsigned char *>(encoded.data()),
                                        reinterpret_cast<const unsigned char *>(bytes.data()),
                                        static_cast<int>(bytes.size()));
    encoded.resize(static_cast<std::size_t>(written));
    return encoded;
}

bool constant_time_equal(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) {
        return false;
    }
    return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace darkspere
