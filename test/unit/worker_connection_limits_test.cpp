// test/unit/worker_connection_limits_test.cpp — per-address connection counting (connection_limits.hpp).
#include <gtest/gtest.h>

#include "connection_limits.hpp"

using namespace darkspere::worker;
namespace ip = boost::asio::ip;

TEST(PerIpConnections, RefusesAnAddressAtItsCapOnly) {
    PerIpConnections limits(3);
    auto a = ip::make_address("127.0.0.2");
    auto b = ip::make_address("127.0.0.1");
    for (int i = 0; i < 3; ++i)
        EXPECT_TRUE(limits.try_open(a));
    EXPECT_FALSE(limits.try_open(a));
    EXPECT_FALSE(limits.try_open(a));
    EXPECT_EQ(limits.open_from(a), 3u) << "a refused connection is not counted";
    EXPECT_TRUE(limits.try_open(b)) << "another address is not affected";
    limits.close(a);
    EXPECT_TRUE(limits.try_open(a)) << "a closed connection frees its slot";
}

TEST(PerIpConnections, ForgetsAnAddressWithNothingOpen) {
    PerIpConnections limits(2);
    for (int i = 0; i < 1000; ++i) {
        auto a = ip::make_address_v4(0x0a000000u + static_cast<uint32_t>(i));
        ASSERT_TRUE(limits.try_open(a));
        limits.close(a);
    }
    EXPECT_EQ(limits.addresses(), 0u) << "the map holds only addresses with open connections";
    auto a = ip::make_address("10.0.0.1");
    limits.try_open(a);
    limits.try_open(a);
    limits.try_open(a);  // refused: must not leave anything behind either
    EXPECT_EQ(limits.addresses(), 1u);
    limits.close(a);
    limits.close(a);
    EXPECT_EQ(limits.addresses(), 0u);
    limits.close(a);  // closing an unknown address is harmless
    EXPECT_EQ(limits.addresses(), 0u);
}

TEST(PerIpConnections, AnIpv4ClientIsOneAddressInBothForms) {
    PerIpConnections limits(2);
    EXPECT_TRUE(limits.try_open(ip::make_address("192.0.2.7")));
    EXPECT_TRUE(limits.try_open(ip::make_address("::ffff:192.0.2.7")));
    EXPECT_FALSE(limits.try_open(ip::make_address("192.0.2.7")));
    EXPECT_TRUE(limits.try_open(ip::make_address("2001:db8::7")));
}

TEST(PerIpConnections, ACapOfZeroRefusesEverythingAndKeepsNoEntry) {
    PerIpConnections limits(0);
    EXPECT_FALSE(limits.try_open(ip::make_address("192.0.2.7")));
    EXPECT_EQ(limits.addresses(), 0u);
}
