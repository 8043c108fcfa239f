// src/worker/egress_policy.hpp — where the worker may call out: which resolved addresses an agent connection
// may reach, and which URL schemes agent and API calls may use.
//
// Agent URLs are chosen by tenants, so a tenant could otherwise point "its agent" at the worker's own
// neighbourhood: loopback services, the private network, the cloud metadata service (169.254.169.254) or the
// database. The check runs on the address curl is about to connect to (CURLOPT_OPENSOCKETFUNCTION), after
// DNS, so a name that resolves to a private address — or is rebound to one after a first public answer — is
// refused as well.
#pragma once

#include <sys/socket.h>

#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace darkspere::worker {

// IpAddress — an IPv6 address, or an IPv4 address in its IPv4-mapped form (::ffff:a.b.c.d), so that both
// families compare alike.
using IpAddress = std::array<unsigned char, 16>;

// ip_from_sockaddr — the address of an AF_INET or AF_INET6 socket address; nullopt for other families.
std::optional<IpAddress> ip_from_sockaddr(const struct sockaddr *address);

// parse_ip — a numeric IPv4 or IPv6 address ("10.0.0.1", "::ffff:10.0.0.1", "fe80::1"); nullopt otherwise.
std::optional<IpAddress> parse_ip(std::string_view text);

// ip_text — printable form: dotted quad for IPv4 (and IPv4-mapped) addresses, RFC 5952 for IPv6.
std::string ip_text(const IpAddress &ip);

// non_public_kind — why ip is not a public unicast address ("loopback", "private", "link-local", …), or
// nullopt when it is public. IPv4 addresses embedded in IPv6 (mapped ::ffff:0:0/96, compatible ::/96,
// NAT64 64:ff9b::/96) are judged by the IPv4 address they carry.
std::optional<std::string_view> non_public_kind(const IpAddress &ip);

// database_addresses — every address the database host(s) named in conninfo (or PGHOST / PGHOSTADDR when it
// names none) resolve to; Unix-socket directories are skipped. Resolution blocks: call it at start-up.
std::vector<IpAddress> database_addresses(const std::string &conninfo);

// agent_address_refusal — why an agent connection to address must not be opened (the message names the
// address and the setting that allows it), or an empty string when it may. allow_private lifts every rule.
std::string agent_address_refusal(const struct sockaddr *address, bool allow_private,
                                  const std::vector<IpAddress> &database);

// url_scheme_refusal — for an outbound URL: empty when its scheme is https, or http with allow_insecure_http;
// otherwise a message naming the scheme and the setting.
std::string url_scheme_refusal(std::string_view url, bool allow_insecure_http);

}  // namespace darkspere::worker
