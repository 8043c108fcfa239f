// src/worker/agent_signature.cpp — signs requests to agents (see agent_signature.hpp).
#include "agent_signature.hpp"

#include <ctime>

#include "common/crypto.hpp"

namespace darkspere::worker {

std::string agent_signature_header(const std::vector<std::string> &secrets, long long unix_time,
                                   std::string_view body) {
    std::string t = std::to_string(unix_time);
    std::string signed_payload;
    signed_payload.reserve(t.size() + 1 + body.size());
    signed_payload.append(t).append(1, '.').append(body);
    std::string header = "t=" + t;
    for (const std::string &secret : secrets)
        header += ",v1=" + darkspere::to_hex(darkspere::hmac_sha256(secret, signed_payload));
    return header;
}

void sign_agent_request(HttpRequest &request, const std::vector<std::string> &secrets) {
    if (secrets.empty())
        return;
    request.headers.emplace_back(
        kAgentSignatureHeader,
        agent_signature_header(secrets, static_cast<long long>(std::time(nullptr)), request.body));
}

}  // namespace darkspere::worker
