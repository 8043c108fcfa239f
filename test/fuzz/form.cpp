// test/fuzz/form.cpp — libFuzzer target for the form decoder and encoder (src/common/form.cpp): what Twilio
// (or anyone) posts to /twilio/sms and /twilio/status goes through parse_form before the signature check.
//
// Invariants: a decoded form re-encodes to a body that decodes to the same pairs; any byte string survives
// form_encode → parse_form as a value; form_value finds the first pair of a name.
#include <cstdint>
#include <string>

#include "common/form.hpp"
#include "fuzz_check.hpp"

using darkspere::FormParam;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    std::string_view body(reinterpret_cast<const char *>(data), size);
    auto params = darkspere::parse_form(body);
    if (params) {
        std::string again = darkspere::encode_form(*params);
        auto reparsed = darkspere::parse_form(again);
        FUZZ_CHECK(reparsed.has_value());
        // Pairs with an empty name and value ("=") are the only ones encode_form cannot carry through: the
        // encoded piece "=" decodes as such, so sizes match too.
        FUZZ_CHECK(reparsed->size() == params->size());
        for (size_t i = 0; i < params->size(); ++i) {
            FUZZ_CHECK((*reparsed)[i].name == (*params)[i].name);
            FUZZ_CHECK((*reparsed)[i].value == (*params)[i].value);
        }
        for (const FormParam &p : *params) {
            auto first = darkspere::form_value(*params, p.name);
            FUZZ_CHECK(first.has_value());
        }
        if (!params->empty()) {
            const FormParam &p = params->front();
            FUZZ_CHECK(darkspere::form_value(*params, p.name) == p.value);
        }
    }
    // Any bytes, encoded, come back unchanged as a value (the worker encodes SMS bodies this way for Twilio).
    std::string encoded = darkspere::form_encode(body);
    for (char c : encoded)
        FUZZ_CHECK(c != '&' && c != '=' && c != ' ' && static_cast<unsigned char>(c) < 0x80);
    auto one = darkspere::parse_form("Body=" + encoded);
    FUZZ_CHECK(one && one->size() == 1 && (*one)[0].name == "Body" && (*one)[0].value == body);
    return 0;
}
