// test/fuzz/fuzz_check.hpp — FUZZ_CHECK: an invariant a fuzz target asserts. A broken invariant aborts, which
// libFuzzer records as a crash with the input that broke it (like a sanitizer report).
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#define FUZZ_CHECK(cond)                                                                      \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            std::fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #cond); \
            std::abort();                                                                     \
        }                                                                                     \
    } while (0)

namespace fuzz {

// Splits fuzz input into pieces at a separator byte, so one input can carry several fields (token, URL,
// body).
class Pieces {
  public:
    Pieces(const uint8_t *data, size_t size) : rest_(reinterpret_cast<const char *>(data), size) {}
    // next — the bytes up to the next '\n' (or the rest); empty once exhausted.
    std::string_view next() {
        auto nl = rest_.find('\n');
        std::string_view piece = rest_.substr(0, nl);
        rest_ = nl == std::string_view::npos ? std::string_view() : rest_.substr(nl + 1);
        return piece;
    }
    std::string_view rest() const { return rest_; }

  private:
    std::string_view rest_;
};

}  // namespace fuzz
