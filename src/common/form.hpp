// src/common/form.hpp — application/x-www-form-urlencoded bodies: Twilio webhooks in, Twilio/Stripe requests
// out.
#pragma once

#ifdef POSTGRES_H
#error "src/common is pure C++: include its headers only where postgres.h is not included"
#endif

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace darkspere {

// One decoded name=value pair. Names may repeat; values are raw bytes (UTF-8 in practice).
struct FormParam {
    std::string name, value;
};

// parse_form decodes an application/x-www-form-urlencoded body, preserving order and repeated names.
// Pairs are split on '&' and empty pieces skipped; the first '=' separates name from value (a piece with no
// '=' is a name with an empty value); '+' becomes a space and %XX the byte XX (either hex case). Returns
// nullopt if a '%' is not followed by two hex digits: a malformed body must not be signed or stored
// half-decoded.
std::optional<std::vector<FormParam>> parse_form(std::string_view body);

// form_encode percent-encodes text for a form body: unreserved bytes (ALPHA DIGIT - . _ ~) stay, space
// becomes
// '+' (as browsers and the Twilio SDKs send it), every other byte becomes %XX with upper-case hex.
std::string form_encode(std::string_view text);

// encode_form returns params as name=value pairs joined by '&', each side form_encode'd, in the given order.
std::string encode_form(const std::vector<FormParam> &params);

// form_value returns the value of the first parameter called name, or nullopt if there is none.
std::optional<std::string> form_value(const std::vector<FormParam> &params, std::string_view name);

}  // namespace darkspere
