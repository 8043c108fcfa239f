// test/fuzz/twilio_signature.cpp — libFuzzer target for X-Twilio-Signature (src/common/twilio_signature.cpp):
// the URL variants, the string to sign, and validation of a stranger's header against a form body.
//
// Input: auth token, URL, signature header and form body, separated by '\n'.
// Invariants: a signature computed over any URL variant is 28 characters of Base64 and validates; a header
// validates only if it equals the signature of one URL variant (no other string is accepted); the first
// variant of a URL carries no port; a JSON-body webhook validates only with the body's SHA-256 in the URL.
#include <cstdint>
#include <string>

#include "common/form.hpp"
#include "common/twilio_signature.hpp"
#include "fuzz_check.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz::Pieces in(data, size);
    std::string_view token = in.next();
    std::string_view url = in.next();
    std::string_view header = in.next();
    std::string_view body = in.rest();

    auto variants = darkspere::twilio_url_variants(url);
    FUZZ_CHECK(!variants.empty() && variants.size() <= 2);
    if (variants.size() == 2)
        FUZZ_CHECK(variants[0] != variants[1]);

    auto params = darkspere::parse_form(body);
    if (!params)
        return 0;
    std::string to_sign = darkspere::twilio_string_to_sign(url, *params);
    FUZZ_CHECK(to_sign.compare(0, url.size(), url) == 0);

    // A signature over any variant validates (Twilio signs whichever form it requested). The URL as given is
    // not always a variant: "https://host:/x" is normalised to its port-less and :443 forms.
    for (const auto &v : variants) {
        std::string signature = darkspere::twilio_signature(token, v, *params);
        FUZZ_CHECK(signature.size() == 28);
        FUZZ_CHECK(darkspere::twilio_signature_valid(token, url, *params, signature) == !token.empty());
    }

    bool header_valid = darkspere::twilio_signature_valid(token, url, *params, header);
    if (header_valid) {
        bool equals_a_variant = false;
        for (const auto &v : variants)
            equals_a_variant = equals_a_variant || darkspere::twilio_signature(token, v, *params) == header;
        FUZZ_CHECK(equals_a_variant);
    }
    if (token.empty() || header.empty())
        FUZZ_CHECK(!header_valid);

    // The JSON-body form: the fuzzed body is the raw JSON, the header is checked against the URL alone.
    bool json_valid = darkspere::twilio_json_signature_valid(token, url, body, header);
    if (json_valid)
        FUZZ_CHECK(url.find("bodySHA256=") != std::string_view::npos);
    return 0;
}
