// bench/peer/clock_ids.hpp — wall-clock milliseconds and random hex ids, shared by the peers and the load.
#pragma once

#include <chrono>
#include <cstdint>
#include <random>
#include <string>

namespace darkspere::bench {

// epoch_ms is the wall clock in milliseconds since 1970, the unit run.mjs compares with Date.now() and with
// PostgreSQL's created_at: the same clock on the same machine, so differences across processes are
// meaningful.
inline long long epoch_ms() {
    using namespace std::chrono;
    return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

// random_hex returns n lower-case hex digits: Twilio-shaped sids (SM + 32) and idempotency tokens. A seeded
// 64-bit Mersenne Twister rather than /dev/urandom per call: ids only need to be unique, not secret, and this
// runs twice per message on the CPU the benchmark measures.
inline std::string random_hex(size_t n) {
    static std::mt19937_64 rng{std::random_device{}()};
    static const char digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(n);
    while (out.size() < n) {
        uint64_t bits = rng();
        for (int k = 0; k < 16 && out.size() < n; ++k, bits >>= 4)
            out.push_back(digits[bits & 0xf]);
    }
    return out;
}

}  // namespace darkspere::bench
