// test/fuzz/stripe_signature.cpp — libFuzzer target for the Stripe-Signature header
// (src/common/stripe_signature.cpp).
//
// Input: secret, header and payload, separated by '\n'.
// Invariants: the header we produce for a payload is valid at its own time and stays valid with extra v0/v1
// items and unknown keys; it becomes too_old / too_new just past the tolerance; a stranger's header is valid
// only when it carries the v1 we would compute for its t; an empty secret never validates.
#include <cstdint>
#include <string>

#include "common/crypto.hpp"
#include "common/stripe_signature.hpp"
#include "fuzz_check.hpp"

using darkspere::StripeVerdict;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz::Pieces in(data, size);
    std::string_view secret = in.next();
    std::string_view header = in.next();
    std::string_view payload = in.rest();
    const long long now = 1700000000;
    const long long tol = darkspere::kStripeDefaultToleranceSeconds;

    StripeVerdict v = darkspere::stripe_signature_check(secret, payload, header, tol, now);
    FUZZ_CHECK(darkspere::stripe_verdict_name(v) != nullptr);
    FUZZ_CHECK(darkspere::stripe_signature_valid(secret, payload, header, tol, now) ==
               (v == StripeVerdict::valid));
    if (secret.empty())
        FUZZ_CHECK(v == StripeVerdict::empty_secret);
    if (v == StripeVerdict::valid || v == StripeVerdict::too_old || v == StripeVerdict::too_new) {
        // Authentic: some v1 item is the hex HMAC-SHA256 of "<t digits as sent>.<payload>".
        std::string_view t_digits;
        std::string_view rest = header;
        while (!rest.empty()) {
            std::string_view item = rest.substr(0, rest.find(','));
            rest = item.size() == rest.size() ? std::string_view() : rest.substr(item.size() + 1);
            if (item.substr(0, 2) == "t=")
                t_digits = item.substr(2);
        }
        FUZZ_CHECK(!t_digits.empty());
        std::string v1 = "v1=" + darkspere::to_hex(darkspere::hmac_sha256(
                                     secret, std::string(t_digits) + "." + std::string(payload)));
        FUZZ_CHECK(header.find(v1) != std::string_view::npos);
    }

    if (secret.empty())
        return 0;
    std::string ours = darkspere::stripe_signature_header(secret, payload, now);
    FUZZ_CHECK(darkspere::stripe_signature_check(secret, payload, ours, tol, now) == StripeVerdict::valid);
    FUZZ_CHECK(darkspere::stripe_signature_check(secret, payload, ours + ",v1=00,v0=ab,x=y", tol, now) ==
               StripeVerdict::valid);
    FUZZ_CHECK(darkspere::stripe_signature_check(secret, payload, "v1=00," + ours, tol, now) ==
               StripeVerdict::valid);
    FUZZ_CHECK(darkspere::stripe_signature_check(secret, payload, ours, tol, now + tol + 1) ==
               StripeVerdict::too_old);
    FUZZ_CHECK(darkspere::stripe_signature_check(secret, payload, ours, tol, now - tol - 1) ==
               StripeVerdict::too_new);
    // A repeated t is malformed, whatever else the header says.
    FUZZ_CHECK(darkspere::stripe_signature_check(secret, payload, ours + ",t=1", tol, now) ==
               StripeVerdict::malformed);
    // The fuzzed header appended to ours: whatever it adds, the verdict is one of the named ones.
    StripeVerdict mixed =
        darkspere::stripe_signature_check(secret, payload, ours + "," + std::string(header), tol, now);
    FUZZ_CHECK(darkspere::stripe_verdict_name(mixed) != nullptr);
    return 0;
}
