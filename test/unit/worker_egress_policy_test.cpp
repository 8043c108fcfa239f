// test/unit/worker_egress_policy_test.cpp — which addresses an agent call may connect to, and which URL
// schemes outbound calls may use (issue #10 item 8).
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

#include "egress_policy.hpp"

using namespace darkspere::worker;

namespace {

struct AddressCase {
    const char *address;
    const char *kind;  // nullptr = public: an agent may be reached there
};

// Every range the worker refuses, each at its edges where that matters, and public neighbours just outside.
const AddressCase kAddresses[] = {
    // IPv4 special ranges
    {"0.0.0.0", "this-network"},
    {"0.255.255.255", "this-network"},
    {"127.0.0.1", "loopback"},
    {"127.255.255.254", "loopback"},
    {"10.0.0.1", "private"},
    {"10.255.255.255", "private"},
    {"172.16.0.1", "private"},
    {"172.31.255.254", "private"},
    {"192.168.0.1", "private"},
    {"192.168.255.255", "private"},
    {"100.64.0.1", "carrier-grade-nat"},
    {"100.127.255.254", "carrier-grade-nat"},
    {"169.254.0.1", "link-local"},
    {"169.254.169.254", "link-local"},  // cloud metadata service
    {"192.0.0.8", "ietf-reserved"},
    {"198.18.0.1", "benchmarking"},
    {"198.19.255.255", "benchmarking"},
    {"224.0.0.1", "multicast"},
    {"239.255.255.250", "multicast"},
    {"240.0.0.1", "reserved"},
    {"255.255.255.255", "reserved"},
    // IPv4 public neighbours
    {"1.1.1.1", nullptr},
    {"8.8.8.8", nullptr},
    {"9.255.255.255", nullptr},
    {"11.0.0.0", nullptr},
    {"100.63.255.255", nullptr},
    {"100.128.0.0", nullptr},
    {"126.255.255.255", nullptr},
    {"128.0.0.1", nullptr},
    {"169.253.255.255", nullptr},
    {"169.255.0.0", nullptr},
    {"172.15.255.255", nullptr},
    {"172.32.0.0", nullptr},
    {"192.0.1.1", nullptr},
    {"192.167.255.255", nullptr},
    {"192.169.0.0", nullptr},
    {"198.17.255.255", nullptr},
    {"198.20.0.0", nullptr},
    {"223.255.255.255", nullptr},
    // IPv6
    {"::", "unspecified"},
    {"::1", "loopback"},
    {"fc00::1", "unique-local"},
    {"fdff:ffff::1", "unique-local"},
    {"fe80::1", "link-local"},
    {"febf:ffff::1", "link-local"},
    {"fec0::1", "site-local"},
    {"ff02::1", "multicast"},
    {"ff05::1:3", "multicast"},
    {"2001:4860:4860::8888", nullptr},
    {"2606:4700:4700::1111", nullptr},
    {"fbff:ffff::1", nullptr},
    {"fe00::1", nullptr},
    // IPv4-mapped forms judged by the IPv4 address they carry
    {"::ffff:127.0.0.1", "loopback"},
    {"::ffff:10.1.2.3", "private"},
    {"::ffff:169.254.169.254", "link-local"},
    {"::ffff:100.64.0.1", "carrier-grade-nat"},
    {"::ffff:0.0.0.0", "this-network"},
    {"::ffff:224.0.0.1", "multicast"},
    {"::ffff:192.168.1.1", "private"},
    {"::ffff:8.8.8.8", nullptr},
    // IPv4-compatible (deprecated) and NAT64 forms
    {"::127.0.0.1", "loopback"},
    {"::10.0.0.1", "private"},
    {"::8.8.8.8", nullptr},
    {"64:ff9b::127.0.0.1", "loopback"},
    {"64:ff9b::a9fe:a9fe", "link-local"},  // 169.254.169.254 through NAT64
    {"64:ff9b::8.8.8.8", nullptr},
};

sockaddr_storage socket_address(const char *text) {
    sockaddr_storage storage{};
    auto *v4 = reinterpret_cast<sockaddr_in *>(&storage);
    auto *v6 = reinterpret_cast<sockaddr_in6 *>(&storage);
    if (inet_pton(AF_INET, text, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(443);
    } else {
        EXPECT_EQ(inet_pton(AF_INET6, text, &v6->sin6_addr), 1) << text;
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(443);
    }
    return storage;
}

}  // namespace

TEST(EgressPolicy, ClassifiesEveryAddressInTheTable) {
    for (const auto &c : kAddresses) {
        auto ip = parse_ip(c.address);
        ASSERT_TRUE(ip) << c.address;
        auto kind = non_public_kind(*ip);
        if (c.kind == nullptr)
            EXPECT_FALSE(kind) << c.address << " is public, judged " << *kind;
        else
            EXPECT_EQ(kind.value_or("public"), c.kind) << c.address;
    }
}

TEST(EgressPolicy, SocketAddressesOfBothFamiliesAreJudgedAlike) {
    for (const auto &c : kAddresses) {
        sockaddr_storage storage = socket_address(c.address);
        std::string refusal = agent_address_refusal(reinterpret_cast<const sockaddr *>(&storage), false, {});
        if (c.kind == nullptr) {
            EXPECT_EQ(refusal, "") << c.address;
        } else {
            EXPECT_NE(refusal.find(c.kind), std::string::npos) << c.address << ": " << refusal;
            EXPECT_NE(refusal.find("agent-allow-private"), std::string::npos) << refusal;
        }
    }
}

TEST(EgressPolicy, RefusalNamesTheAddressAndTheSetting) {
    sockaddr_storage storage = socket_address("169.254.169.254");
    EXPECT_EQ(
        agent_address_refusal(reinterpret_cast<const sockaddr *>(&storage), false, {}),
        "refused to connect to agent address 169.254.169.254 (link-local): agents may only be reached at "
        "public addresses unless agent-allow-private is on");
}

TEST(EgressPolicy, AllowPrivateLiftsEveryRule) {
    auto database = std::vector<IpAddress>{*parse_ip("203.0.113.5")};
    for (const char *address : {"127.0.0.1", "::1", "169.254.169.254", "fd00::1", "203.0.113.5"}) {
        sockaddr_storage storage = socket_address(address);
        EXPECT_EQ(agent_address_refusal(reinterpret_cast<const sockaddr *>(&storage), true, database), "")
            << address;
    }
}

TEST(EgressPolicy, TheDatabaseHostIsRefusedEvenAtAPublicAddress) {
    auto database = std::vector<IpAddress>{*parse_ip("203.0.113.5"), *parse_ip("2001:db8::5")};
    for (const char *address : {"203.0.113.5", "::ffff:203.0.113.5", "2001:db8::5"}) {
        sockaddr_storage storage = socket_address(address);
        std::string refusal =
            agent_address_refusal(reinterpret_cast<const sockaddr *>(&storage), false, database);
        EXPECT_NE(refusal.find("the database host"), std::string::npos) << address << ": " << refusal;
    }
    sockaddr_storage other = socket_address("203.0.113.6");
    EXPECT_EQ(agent_address_refusal(reinterpret_cast<const sockaddr *>(&other), false, database), "");
}

TEST(EgressPolicy, NonIpSocketsAreRefused) {
    sockaddr unix_address{};
    unix_address.sa_family = AF_UNIX;
    EXPECT_NE(agent_address_refusal(&unix_address, false, {}), "");
}

TEST(EgressPolicy, DatabaseAddressesComeFromTheConninfoHosts) {
    auto contains = [](const std::vector<IpAddress> &list, const char *text) {
        return std::find(list.begin(), list.end(), *parse_ip(text)) != list.end();
    };
    auto kv = database_addresses("host=203.0.113.7,/var/run/postgresql port=5432 dbname=x");
    EXPECT_TRUE(contains(kv, "203.0.113.7"));
    EXPECT_EQ(kv.size(), 1u);  // the socket directory adds nothing
    auto uri = database_addresses("postgresql://[2001:db8::9]:5432/x");
    EXPECT_TRUE(contains(uri, "2001:db8::9"));
    auto hostaddr = database_addresses("host=db.invalid hostaddr=198.51.100.4");
    EXPECT_TRUE(contains(hostaddr, "198.51.100.4"));
    EXPECT_TRUE(database_addresses("this is not a conninfo").empty() || true);  // never throws
}

TEST(EgressPolicy, IpTextPrintsMappedAddressesAsIpv4) {
    EXPECT_EQ(ip_text(*parse_ip("10.0.0.1")), "10.0.0.1");
    EXPECT_EQ(ip_text(*parse_ip("::ffff:10.0.0.1")), "10.0.0.1");
    EXPECT_EQ(ip_text(*parse_ip("fe80::1")), "fe80::1");
    EXPECT_FALSE(parse_ip("localhost"));
    EXPECT_FALSE(parse_ip("10.0.0"));
}

TEST(EgressPolicy, UrlSchemes) {
    EXPECT_EQ(url_scheme_refusal("https://agent.example.com/mcp", false), "");
    EXPECT_EQ(url_scheme_refusal("HTTPS://agent.example.com/", false), "");
    EXPECT_EQ(url_scheme_refusal("http://agent.example.com/", true), "");
    EXPECT_EQ(url_scheme_refusal("http://agent.example.com/", false),
              "refused URL scheme http: https is required unless allow-insecure-http is on");
    EXPECT_NE(url_scheme_refusal("ftp://agent.example.com/", true).find("refused URL scheme ftp"),
              std::string::npos);
    EXPECT_NE(url_scheme_refusal("file:///etc/passwd", true).find("refused URL scheme file"),
              std::string::npos);
    EXPECT_NE(url_scheme_refusal("agent.example.com", true).find("(none)"), std::string::npos);
    // A tenant's junk is not echoed back into logs.
    EXPECT_NE(url_scheme_refusal("a\nb://x", true).find("(none)"), std::string::npos);
}
