// src/common/stripe_signature.cpp — Stripe-Signature parsing, HMAC-SHA256 matching and timestamp tolerance.
#include "common/stripe_signature.hpp"

#include <charconv>
#include <limits>
#include <optional>
#include <vector>

#include "common/crypto.hpp"

namespace darkspere {

namespace {

// SignatureHeader is a parsed Stripe-Signature: t's digits exactly as received (they are signed) and its
// value.
struct SignatureHeader {
    std::string_view t_digits;
    long long t = 0;
    std::vector<std::string_view> v1;
};

// parse_unix_seconds returns the value of a non-empty run of ASCII digits, or nullopt (sign, space,
// overflow).
std::optional<long long> parse_unix_seconds(std::string_view digits) {
    long long value = 0;
    const char *end = digits.data() + digits.size();
    if (digits.empty() || digits.front() < '0' || digits.front() > '9') {
        return std::nullopt;
    }
    const auto [ptr, ec] = std::from_chars(digits.data(), end, value);
    if (ec != std::errc() || ptr != end) {
        return std::nullopt;
    }
    return value;
}

// parse_header returns the parsed header, or nullopt if it is malformed
// (docs/protocols.md#stripe-webhook-signatures, step 1).
std::optional<SignatureHeader> parse_header(std::string_view header) {
    SignatureHeader parsed;
    bool have_t = false;
    std::size_t start = 0;
    while (true) {
        const std::size_t comma = header.find(',', start);
        const std::string_view item =
            header.substr(start, comma == std::string_view::npos ? comma : comma - start);
        const std::size_t eq = item.find('=');
        if (item.empty() || eq == std::string_view::npos) {
            return std::nullopt;
        }
        const std::string_view key = item.substr(0, eq);
        const std::string_view value = item.substr(eq + 1);
        if (key == "t") {
            const auto t = parse_unix_seconds(value);
            if (have_t || !t) {
                return std::nullopt;
            }
            have_t = true;
            parsed.t_digits = value;
            parsed.t = *t;
        } else if (key == "v1" && !value.empty()) {
            parsed.v1.push_back(value);
        }
        if (comma == std::string_view::npos) {
            break;
        }
        start = comma + 1;
    }
    if (!have_t || parsed.v1.empty()) {
        return std::nullopt;
    }
    return parsed;
}

// expected_v1 returns the lowercase hex HMAC-SHA256 of "<t digits>.<payload>" under secret.
std::string expected_v1(std::string_view secret, std::string_view t_digits, std::string_view payload) {
    std::string signed_payload;
    signed_payload.reserve(t_digits.size() + 1 + payload.size());
    signed_payload.append(t_digits).append(1, '.').append(payload);
    return to_hex(hmac_sha256(secret, signed_payload));
}

}  // namespace

StripeVerdict stripe_signature_check(std::string_view secret, std::string_view payload,
                                     std::string_view header, long long tolerance_s, long long now_unix) {
    if (secret.empty()) {
        return StripeVerdict::empty_secret;
    }
    const auto parsed = parse_header(header);
    if (!parsed) {
        return StripeVerdict::malformed;
    }

    const std::string expected = expected_v1(secret, parsed->t_digits, payload);
    bool matched = false;
    // Compare against every v1 so the time taken does not reveal which one matched.
    for (std::string_view candidate : parsed->v1) {
        matched |= constant_time_equal(expected, candidate);
    }
    if (!matched) {
        return StripeVerdict::no_match;
    }

    // t is never negative, so now - t cannot overflow when now >= t; t - now can only when now is very
    // negative.
    const long long t = parsed->t;
    if (now_unix >= t) {
        return now_unix - t > tolerance_s ? StripeVerdict::too_old : StripeVerdict::valid;
    }
    if (now_unix < 0 && t > std::numeric_limits<long long>::max() + now_unix) {
        return StripeVerdict::too_new;
    }
    return t - now_unix > tolerance_s ? StripeVerdict::too_new : StripeVerdict::valid;
}

bool stripe_signature_valid(std::string_view secret, std::string_view payload, std::string_view header,
                            long long tolerance_s, long long now_unix) {
    return stripe_signature_check(secret, payload, header, tolerance_s, now_unix) == StripeVerdict::valid;
}

std::string stripe_signature_header(std::string_view secret, std::string_view payload, long long t) {
    const std::string t_digits = std::to_string(t);
    return "t=" + t_digits + ",v1=" + expected_v1(secret, t_digits, payload);
}

const char *stripe_verdict_name(StripeVerdict verdict) {
    switch (verdict) {
        case StripeVerdict::valid:
            return "valid";
        case StripeVerdict::malformed:
            return "malformed";
        case StripeVerdict::no_match:
            return "no_match";
        case StripeVerdict::too_old:
            return "too_old";
        case StripeVerdict::too_new:
            return "too_new";
        case StripeVerdict::empty_secret:
            return "empty_secret";
    }
    return "unknown";
}

}  // namespace darkspere
