// src/common/stripe_signature.hpp — Stripe-Signature webhook header: checking and producing
// (docs/protocols.md#stripe-webhook-signatures).
#pragma once

#ifdef POSTGRES_H
#error "src/common is pure C++: include its headers only where postgres.h is not included"
#endif

#include <string>
#include <string_view>

namespace darkspere {

// The outcome of checking one Stripe-Signature header; only `valid` accepts the event.
enum class StripeVerdict {
    valid,         // a v1 signature matches and t is within tolerance of now
    malformed,     // not "t=<digits>" plus at least one non-empty v1 in comma-separated key=value items
    no_match,      // well-formed, but no v1 is the HMAC of this payload under this secret
    too_old,       // authentic, but signed more than the tolerance before now (a replay or a stalled queue)
    too_new,       // authentic, but signed more than the tolerance after now (clock skew)
    empty_secret,  // no endpoint secret configured: nothing can validate
};

// Stripe's SDKs accept events signed up to 300 s before now; we also reject as far after now.
constexpr long long kStripeDefaultToleranceSeconds = 300;

// stripe_signature_check returns the verdict for header on the raw payload bytes, with secret used verbatim
// as the HMAC key (a whsec_ prefix included). Rules, in order: an empty secret; a malformed header (empty
// items, items without '=', a missing, repeated or non-decimal t, no non-empty v1; v0 and unknown keys are
// ignored); no v1 matching (compared in constant time); t more than tolerance_s before now_unix; t more than
// tolerance_s after it. The signature is judged before the timestamp so that too_old and too_new describe
// authentic requests.
StripeVerdict stripe_signature_check(std::string_view secret, std::string_view payload,
                                     std::string_view header, long long tolerance_s, long long now_unix);

// stripe_signature_valid returns whether stripe_signature_check gives StripeVerdict::valid.
bool stripe_signature_valid(std::string_view secret, std::string_view payload, std::string_view header,
                            long long tolerance_s, long long now_unix);

// stripe_signature_header returns the header Stripe would send for payload signed at t: "t=<t>,v1=<hex>".
// For tests and tools that replay events against a webhook endpoint.
std::string stripe_signature_header(std::string_view secret, std::string_view payload, long long t);

// stripe_verdict_name returns the verdict's enumerator name ("valid", "too_old", ...) for logs and SQL.
const char *stripe_verdict_name(StripeVerdict verdict);

}  // namespace darkspere
