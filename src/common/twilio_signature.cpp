// src/common/twilio_signature.cpp — X-Twilio-Signature computation, URL port variants and validation.
#include "common/twilio_signature.hpp"

#include <algorithm>
#include <optional>
#include <utility>

#include "common/crypto.hpp"

namespace darkspere {

namespace {

// UrlParts splits a URL into the pieces the port variants rewrite: prefix is "scheme://userinfo@host",
// port the digits after the host's ':' (empty if none), suffix the path, query and fragment.
struct UrlParts {
    std::string_view scheme;
    std::string_view prefix;
    bool has_port = false;
    std::string_view port;
    std::string_view suffix;
};

// split_url returns url's parts, or false if it has no "scheme://".
bool split_url(std::string_view url, UrlParts &parts) {
    const std::size_t scheme_end = url.find("://");
    if (scheme_end == std::string_view::npos || scheme_end == 0) {
        return false;
    }
    const std::size_t authority_start = scheme_end + 3;
    const std::size_t authority_end = std::min(url.find_first_of("/?#", authority_start), url.size());
    const std::string_view authority = url.substr(authority_start, authority_end - authority_start);

    // The host starts after the last '@' (userinfo may itself contain ':'); an IPv6 literal ends at ']'.
    const std::size_t at = authority.rfind('@');
    const std::size_t host_start = at == std::string_view::npos ? 0 : at + 1;
    std::size_t host_end = authority.size();
    const std::size_t bracket = authority.find(']', host_start);
    const std::size_t colon = authority.find(':', bracket == std::string_view::npos ? host_start : bracket);
    if (colon != std::string_view::npos) {
        const std::string_view digits = authority.substr(colon + 1);
        if (std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
            host_end = colon;
            parts.has_port = true;
            parts.port = digits;
        }
    }
    parts.scheme = url.substr(0, scheme_end);
    parts.prefix = url.substr(0, authority_start + host_end);
    parts.suffix = url.substr(authority_end);
    return true;
}

// ascii_iequal returns whether a and b are equal ignoring ASCII case (URL schemes are case-insensitive).
bool ascii_iequal(std::string_view a, std::string_view b) {
    return a.size() == b.size() &&
           std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return (x | 0x20) == (y | 0x20); });
}

// default_port returns the scheme's default port, or an empty view if Twilio would never use the scheme.
std::string_view default_port(std::string_view scheme) {
    if (ascii_iequal(scheme, "https")) {
        return "443";
    }
    if (ascii_iequal(scheme, "http")) {
        return "80";
    }
    return {};
}

// raw_query_value returns the still-encoded value of the first query parameter of url called name, or
// nullopt. The rest of the query is never decoded, so an unrelated odd escape cannot make a valid request
// fail.
std::optional<std::string_view> raw_query_value(std::string_view url, std::string_view name) {
    const std::size_t question = url.find('?');
    if (question == std::string_view::npos) {
        return std::nullopt;
    }
    std::string_view query = url.substr(question + 1);
    query = query.substr(0, query.find('#'));
    while (!query.empty()) {
        const std::size_t amp = query.find('&');
        const std::string_view piece = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
        const std::size_t eq = piece.find('=');
        if (eq != std::string_view::npos && piece.substr(0, eq) == name) {
            return piece.substr(eq + 1);
        }
    }
    return std::nullopt;
}

}  // namespace

std::string twilio_string_to_sign(std::string_view url, const std::vector<FormParam> &params) {
    // Sorting whole pairs orders names byte-wise (std::string compares as unsigned char), and for a repeated
    // name orders its values; unique() then drops repeated values.
    std::vector<std::pair<std::string_view, std::string_view>> pairs;
    pairs.reserve(params.size());
    for (const FormParam &param : params) {
        pairs.emplace_back(param.name, param.value);
    }
    std::sort(pairs.begin(), pairs.end());
    pairs.erase(std::unique(pairs.begin(), pairs.end()), pairs.end());

    std::string text(url);
    for (const auto &[name, value] : pairs) {
        text += name;
        text += value;
    }
    return text;
}

std::string twilio_signature(std::string_view auth_token, std::string_view url,
                             const std::vector<FormParam> &params) {
    return base64_encode(hmac_sha1(auth_token, twilio_string_to_sign(url, params)));
}

std::vector<std::string> twilio_url_variants(std::string_view url) {
    UrlParts parts;
    if (!split_url(url, parts)) {
        return {std::string(url)};
    }
    std::string without_port = std::string(parts.prefix) + std::string(parts.suffix);

    std::string with_port;
    const std::string_view port =
        parts.has_port && !parts.port.empty() ? parts.port : default_port(parts.scheme);
    if (port.empty()) {
        with_port = without_port;
    } else {
        with_port = std::string(parts.prefix) + ":" + std::string(port) + std::string(parts.suffix);
    }

    if (with_port == without_port) {
        return {std::move(without_port)};
    }
    return {std::move(without_port), std::move(with_port)};
}

bool twilio_signature_valid(std::string_view auth_token, std::string_view url,
                            const std::vector<FormParam> &params, std::string_view signature) {
    if (auth_token.empty() || signature.empty()) {
        return false;
    }
    bool valid = false;
    // Every variant is computed and compared, so the time taken does not reveal which one matched.
    for (const std::string &variant : twilio_url_variants(url)) {
        valid |= constant_time_equal(twilio_signature(auth_token, variant, params), signature);
    }
    return valid;
}

bool twilio_json_signature_valid(std::string_view auth_token, std::string_view url, std::string_view raw_body,
                                 std::string_view signature) {
    // The value is lowercase hex, which form encoding leaves unchanged, so it is compared still encoded.
    const auto body_hash = raw_query_value(url, "bodySHA256");
    if (!body_hash || *body_hash != to_hex(sha256(raw_body))) {
        return false;
    }
    return twilio_signature_valid(auth_token, url, {}, signature);
}

}  // namespace darkspere
