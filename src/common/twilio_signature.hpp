// src/common/twilio_signature.hpp — X-Twilio-Signature: computing and validating
// (docs/protocols.md#twilio-request-signatures).
//
// Vocabulary: the *URL* is the full URL Twilio requested (scheme, userinfo, host, port, path, query exactly
// as received); the *string to sign* is that URL followed by the sorted parameters; the *signature* is
// base64(HMAC-SHA1(auth token, string to sign)).
#pragma once

#ifdef POSTGRES_H
#error "src/common is pure C++: include its headers only where postgres.h is not included"
#endif

#include <string>
#include <string_view>
#include <vector>

#include "common/form.hpp"

namespace darkspere {

// twilio_string_to_sign returns url followed by name+value for every parameter: names sorted byte-wise, and
// for a repeated name its values de-duplicated and sorted, one name+value per remaining value (step 1 of
// docs/protocols.md#twilio-request-signatures). Twilio's HMAC-SHA256 SharedKey form (step 5) is not used.
std::string twilio_string_to_sign(std::string_view url, const std::vector<FormParam> &params);

// twilio_signature returns the X-Twilio-Signature for url and decoded form params: 28 characters of Base64.
std::string twilio_signature(std::string_view auth_token, std::string_view url,
                             const std::vector<FormParam> &params);

// twilio_url_variants returns the URL forms a validator must try (step 3): first without any port, then with
// the scheme's default port added (:443 https, :80 http) or the non-default explicit port kept. Userinfo,
// path and query are untouched. Identical forms appear once; a URL without "scheme://" is returned alone,
// unchanged.
std::vector<std::string> twilio_url_variants(std::string_view url);

// twilio_signature_valid returns whether signature matches url and params under any URL variant, compared in
// constant time. An empty auth token or an empty (missing) signature is never valid. The query is used as
// received: twilio-node's "legacy querystring" re-encoding (' versus %27) is not attempted.
bool twilio_signature_valid(std::string_view auth_token, std::string_view url,
                            const std::vector<FormParam> &params, std::string_view signature);

// twilio_json_signature_valid validates a JSON-body webhook (step 4): the URL's bodySHA256 query value must
// equal the lowercase hex SHA-256 of raw_body, and signature must match the URL alone (with its port
// variants).
bool twilio_json_signature_valid(std::string_view auth_token, std::string_view url, std::string_view raw_body,
                                 std::string_view signature);

}  // namespace darkspere
