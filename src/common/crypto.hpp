// src/common/crypto.hpp — hashes, HMACs and encodings (OpenSSL libcrypto) for webhook signatures.
//
// Pure C++: no PostgreSQL state. Every function returns raw bytes in a std::string unless it says otherwise,
// and throws std::runtime_error only if libcrypto itself fails.
#pragma once

#ifdef POSTGRES_H
#error "src/common is pure C++: include its headers only where postgres.h is not included"
#endif

#include <string>
#include <string_view>

namespace darkspere {

// hmac_sha1 returns the raw 20-byte HMAC-SHA1 of message under key (Twilio X-Twilio-Signature).
std::string hmac_sha1(std::string_view key, std::string_view message);

// hmac_sha256 returns the raw 32-byte HMAC-SHA256 of message under key (Stripe-Signature, Twilio SharedKey).
std::string hmac_sha256(std::string_view key, std::string_view message);

// sha256 returns the raw 32-byte SHA-256 digest of data (Twilio bodySHA256).
std::string sha256(std::string_view data);

// to_hex returns bytes as lowercase hexadecimal, two characters per byte.
std::string to_hex(std::string_view bytes);

// base64_encode returns bytes in standard Base64 (RFC 4648 §4 alphabet) with '=' padding and no line breaks.
std::string base64_encode(std::string_view bytes);

// constant_time_equal returns whether a and b hold the same bytes. The time taken depends only on the
// lengths, never on the content: lengths are public (a signature's length is fixed by its scheme), so a
// length mismatch returns false at once.
bool constant_time_equal(std::string_view a, std::string_view b);

}  // namespace darkspere
