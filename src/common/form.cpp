// src/common/form.cpp — application/x-www-form-urlencoded decoding and encoding.
#include "common/form.hpp"

namespace darkspere {

namespace {

// hex_value returns the value of one hex digit, or -1 if c is not one.
int hex_value(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

// form_decode returns one name or value with '+' and %XX decoded, or nullopt on a malformed escape.
std::optional<std::string> form_decode(std::string_view text) {
    std::string decoded;
    decoded.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (c == '+') {
            decoded.push_back(' ');
        } else if (c == '%') {
            if (text.size() - i < 3) {
                return std::nullopt;
            }
            const int high = hex_value(text[i + 1]);
            const int low = hex_value(text[i + 2]);
            if (high < 0 || low < 0) {
                return std::nullopt;
            }
            decoded.push_back(static_cast<char>(high * 16 + low));
            i += 2;
        } else {
            decoded.push_back(c);
        }
    }
    return decoded;
}

bool is_unreserved(unsigned char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

}  // namespace

std::optional<std::vector<FormParam>> parse_form(std::string_view body) {
    std::vector<FormParam> params;
    while (!body.empty()) {
        const std::size_t amp = body.find('&');
        const std::string_view piece = body.substr(0, amp);
        body = amp == std::string_view::npos ? std::string_view() : body.substr(amp + 1);
        if (piece.empty()) {
            continue;
        }
        const std::size_t eq = piece.find('=');
        auto name = form_decode(piece.substr(0, eq));
        auto value = form_decode(eq == std::string_view::npos ? std::string_view() : piece.substr(eq + 1));
        if (!name || !value) {
            return std::nullopt;
        }
        params.push_back(FormParam{std::move(*name), std::move(*value)});
    }
    return params;
}

std::string form_encode(std::string_view text) {
    static const char digits[] = "0123456789ABCDEF";
    std::string encoded;
    encoded.reserve(text.size());
    for (unsigned char c : text) {
        if (is_unreserved(c)) {
            encoded.push_back(static_cast<char>(c));
        } else if (c == ' ') {
            encoded.push_back('+');
        } else {
            encoded.push_back('%');
            encoded.push_back(digits[c >> 4]);
            encoded.push_back(digits[c & 0x0F]);
        }
    }
    return encoded;
}

std::string encode_form(const std::vector<FormParam> &params) {
    std::string body;
    for (const FormParam &param : params) {
        if (!body.empty()) {
            body.push_back('&');
        }
        body += form_encode(param.name);
        body.push_back('=');
        body += form_encode(param.value);
    }
    return body;
}

std::optional<std::string> form_value(const std::vector<FormParam> &params, std::string_view name) {
    for (const FormParam &param : params) {
        if (param.name == name) {
            return param.value;
        }
    }
    return std::nullopt;
}

}  // namespace darkspere
