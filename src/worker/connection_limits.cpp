// src/worker/connection_limits.cpp — per-address connection counting (see connection_limits.hpp).
#include "connection_limits.hpp"

#include <string_view>

namespace darkspere::worker {

namespace ip = boost::asio::ip;

size_t PerIpConnections::KeyHash::operator()(const Key &key) const {
    return std::hash<std::string_view>{}(
        std::string_view(reinterpret_cast<const char *>(key.data()), key.size()));
}

PerIpConnections::Key PerIpConnections::key_of(const ip::address &address) {
    ip::address_v6 v6 =
        address.is_v4() ? ip::make_address_v6(ip::v4_mapped, address.to_v4()) : address.to_v6();
    return v6.to_bytes();
}

bool PerIpConnections::try_open(const ip::address &address) {
    auto [it, inserted] = counts_.try_emplace(key_of(address), 0);
    if (it->second >= max_per_ip_) {
        if (inserted)
            counts_.erase(it);  // a cap of 0: keep no entry for an address with nothing open
        return false;
    }
    ++it->second;
    return true;
}

void PerIpConnections::close(const ip::address &address) {
    auto it = counts_.find(key_of(address));
    if (it == counts_.end())
        return;
    if (--it->second == 0)
        counts_.erase(it);
}

size_t PerIpConnections::open_from(const ip::address &address) const {
    auto it = counts_.find(key_of(address));
    return it == counts_.end() ? 0 : it->second;
}

}  // namespace darkspere::worker
