// src/worker/egress_policy.cpp — address classification and URL scheme rules (see egress_policy.hpp).
#include "egress_policy.hpp"

#include <arpa/inet.h>
#include <libpq-fe.h>
#include <netdb.h>
#include <netinet/in.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <memory>

namespace darkspere::worker {

namespace {

IpAddress mapped_v4(const unsigned char v4[4]) {
    IpAddress ip{};
    ip[10] = ip[11] = 0xff;
    std::memcpy(ip.data() + 12, v4, 4);
    return ip;
}

bool prefix_is(const IpAddress &ip, std::initializer_list<unsigned char> prefix) {
    return std::equal(prefix.begin(), prefix.end(), ip.begin());
}

bool zero_bytes(const IpAddress &ip, size_t from, size_t to) {
    return std::all_of(ip.begin() + from, ip.begin() + to, [](unsigned char b) { return b == 0; });
}

std::optional<std::string_view> non_public_v4(const unsigned char *a) {
    auto in = [a](unsigned first, unsigned second, int bits) {
        unsigned value = a[0] << 24 | a[1] << 16 | a[2] << 8 | a[3];
        unsigned net = first << 24 | second << 16;
        unsigned mask = bits == 0 ? 0 : ~0u << (32 - bits);
        return (value & mask) == (net & mask);
    };
    if (in(0, 0, 8))
        return "this-network";  // 0.0.0.0/8: 0.0.0.0 reaches the local host on Linux
    if (in(127, 0, 8))
        return "loopback";
    if (in(10, 0, 8) || in(172, 16, 12) || in(192, 168, 16))
        return "private";
    if (in(100, 64, 10))
        return "carrier-grade-nat";
    if (in(169, 254, 16))
        return "link-local";  // includes the cloud metadata service 169.254.169.254
    if (in(192, 0, 24))
        return "ietf-reserved";  // 192.0.0.0/24
    if (in(198, 18, 15))
        return "benchmarking";
    if (in(224, 0, 4))
        return "multicast";
    if (in(240, 0, 4))
        return "reserved";  // 240.0.0.0/4, broadcast included
    return std::nullopt;
}

std::string lower(std::string_view text) {
    std::string out(text);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

// split_hosts — libpq's host and hostaddr accept comma-separated lists.
std::vector<std::string> split_hosts(const char *list) {
    std::vector<std::string> out;
    if (list == nullptr)
        return out;
    std::string_view rest(list);
    while (!rest.empty()) {
        size_t comma = rest.find(',');
        std::string_view item = rest.substr(0, comma);
        if (!item.empty())
            out.emplace_back(item);
        if (comma == std::string_view::npos)
            break;
        rest.remove_prefix(comma + 1);
    }
    return out;
}

void resolve_into(const std::string &host, std::vector<IpAddress> &out) {
    if (host.empty() || host[0] == '/' || host[0] == '@')
        return;  // a Unix-socket directory (or abstract socket): not reachable over TCP
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo *found = nullptr;
    if (getaddrinfo(host.c_str(), nullptr, &hints, &found) != 0)
        return;
    for (addrinfo *ai = found; ai != nullptr; ai = ai->ai_next) {
        if (auto ip = ip_from_sockaddr(ai->ai_addr);
            ip && std::find(out.begin(), out.end(), *ip) == out.end())
            out.push_back(*ip);
    }
    freeaddrinfo(found);
}

}  // namespace

std::optional<IpAddress> ip_from_sockaddr(const struct sockaddr *address) {
    if (address == nullptr)
        return std::nullopt;
    if (address->sa_family == AF_INET) {
        const auto *v4 = reinterpret_cast<const sockaddr_in *>(address);
        return mapped_v4(reinterpret_cast<const unsigned char *>(&v4->sin_addr));
    }
    if (address->sa_family == AF_INET6) {
        const auto *v6 = reinterpret_cast<const sockaddr_in6 *>(address);
        IpAddress ip;
        std::memcpy(ip.data(), &v6->sin6_addr, 16);
        return ip;
    }
    return std::nullopt;
}

std::optional<IpAddress> parse_ip(std::string_view text) {
    std::string s(text);
    unsigned char buf[16];
    if (inet_pton(AF_INET, s.c_str(), buf) == 1)
        return mapped_v4(buf);
    if (inet_pton(AF_INET6, s.c_str(), buf) == 1) {
        IpAddress ip;
        std::memcpy(ip.data(), buf, 16);
        return ip;
    }
    return std::nullopt;
}

std::string ip_text(const IpAddress &ip) {
    char buf[INET6_ADDRSTRLEN] = {0};
    if (prefix_is(ip, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff}))
        inet_ntop(AF_INET, ip.data() + 12, buf, sizeof buf);
    else
        inet_ntop(AF_INET6, ip.data(), buf, sizeof buf);
    return buf;
}

std::optional<std::string_view> non_public_kind(const IpAddress &ip) {
    // IPv4 carried inside IPv6: the embedded address decides.
    if (prefix_is(ip, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff}))
        return non_public_v4(ip.data() + 12);
    if (prefix_is(ip, {0x00, 0x64, 0xff, 0x9b}) && zero_bytes(ip, 4, 12))
        return non_public_v4(ip.data() + 12);  // NAT64 well-known prefix 64:ff9b::/96
    if (zero_bytes(ip, 0, 15) && ip[15] == 0)
        return "unspecified";  // ::
    if (zero_bytes(ip, 0, 15) && ip[15] == 1)
        return "loopback";  // ::1
    if (zero_bytes(ip, 0, 12))
        return non_public_v4(ip.data() + 12);  // IPv4-compatible ::a.b.c.d (deprecated, still routed by some)
    if ((ip[0] & 0xfe) == 0xfc)
        return "unique-local";  // fc00::/7
    if (ip[0] == 0xfe && (ip[1] & 0xc0) == 0x80)
        return "link-local";  // fe80::/10
    if (ip[0] == 0xfe && (ip[1] & 0xc0) == 0xc0)
        return "site-local";  // fec0::/10 (deprecated)
    if (ip[0] == 0xff)
        return "multicast";  // ff00::/8
    return std::nullopt;
}

std::vector<IpAddress> database_addresses(const std::string &conninfo) {
    std::vector<IpAddress> out;
    char *error = nullptr;
    std::unique_ptr<PQconninfoOption, void (*)(PQconninfoOption *)> options(
        PQconninfoParse(conninfo.c_str(), &error), PQconninfoFree);
    if (error != nullptr)
        PQfreemem(error);
    const char *host = nullptr, *hostaddr = nullptr;
    for (PQconninfoOption *o = options.get(); o != nullptr && o->keyword != nullptr; ++o) {
        if (std::strcmp(o->keyword, "host") == 0)
            host = o->val;
        else if (std::strcmp(o->keyword, "hostaddr") == 0)
            hostaddr = o->val;
    }
    // libpq falls back to the environment for settings the conninfo leaves out.
    if (host == nullptr || *host == '\0')
        host = std::getenv("PGHOST");
    if (hostaddr == nullptr || *hostaddr == '\0')
        hostaddr = std::getenv("PGHOSTADDR");
    for (const auto &h : split_hosts(host))
        resolve_into(h, out);
    for (const auto &h : split_hosts(hostaddr))
        resolve_into(h, out);
    return out;
}

std::string agent_address_refusal(const struct sockaddr *address, bool allow_private,
                                  const std::vector<IpAddress> &database) {
    if (allow_private)
        return {};
    auto ip = ip_from_sockaddr(address);
    if (!ip)
        return "refused to connect an agent call over a non-IP socket";
    std::string_view kind;
    if (auto k = non_public_kind(*ip))
        kind = *k;
    else if (std::find(database.begin(), database.end(), *ip) != database.end())
        kind = "the database host";
    else
        return {};
    return "refused to connect to agent address " + ip_text(*ip) + " (" + std::string(kind) +
           "): agents may only be reached at public addresses unless agent-allow-private is on";
}

std::string url_scheme_refusal(std::string_view url, bool allow_insecure_http) {
    std::string head = lower(url.substr(0, 8));
    if (head.rfind("https://", 0) == 0)
        return {};
    if (head.rfind("http://", 0) == 0) {
        if (allow_insecure_http)
            return {};
        return "refused URL scheme http: https is required unless allow-insecure-http is on";
    }
    size_t colon = url.find(':');
    std::string scheme = colon == std::string_view::npos || colon == 0 || colon > 16
                             ? std::string()
                             : lower(url.substr(0, colon));
    // The URL is a tenant's: only a plausible scheme name is repeated in the error.
    if (scheme.empty() || !std::all_of(scheme.begin(), scheme.end(), [](char c) {
            return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '-' || c == '.';
        }))
        scheme = "(none)";
    return "refused URL scheme " + scheme + ": only https (and http with allow-insecure-http) may be used";
}

}  // namespace darkspere::worker
