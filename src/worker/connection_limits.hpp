// src/worker/connection_limits.hpp — how many inbound connections each client address holds open, so one
// address (a slow-loris client) cannot take every one of max-connections.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <unordered_map>

#include <boost/asio/ip/address.hpp>

namespace darkspere::worker {

// PerIpConnections — open connections counted by client address, O(1) per accept and per close. An address
// is in the map only while it has a connection open, so the map never holds more entries than there are
// open connections (which max-connections bounds).
class PerIpConnections {
  public:
    explicit PerIpConnections(size_t max_per_ip) : max_per_ip_(max_per_ip) {}

    // try_open — counts one more connection from address and returns true, or returns false (and counts
    // nothing) when the address already holds max_per_ip connections.
    bool try_open(const boost::asio::ip::address &address);
    // close — a connection counted by try_open has closed.
    void close(const boost::asio::ip::address &address);

    size_t open_from(const boost::asio::ip::address &address) const;
    size_t addresses() const { return counts_.size(); }
    size_t max_per_ip() const { return max_per_ip_; }

  private:
    // An IPv4 client seen on a dual-stack socket arrives as ::ffff:a.b.c.d; both forms are one key, the
    // 16 bytes of the IPv6 (or IPv4-mapped) address.
    using Key = std::array<uint8_t, 16>;
    struct KeyHash {
        size_t operator()(const Key &key) const;
    };
    static Key key_of(const boost::asio::ip::address &address);

    size_t max_per_ip_;
    std::unordered_map<Key, size_t, KeyHash> counts_;
};

}  // namespace darkspere::worker
