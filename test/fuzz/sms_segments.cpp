// test/fuzz/sms_segments.cpp — libFuzzer target for the SMS segment counter (src/common/sms_segments.cpp):
// every reply an agent writes is counted (and billed, and rate-limited) by it.
//
// Invariants: invalid UTF-8 is refused by count_segments and utf8_length alike; units lie between the number
// of characters and twice that (an escape pair or a surrogate pair costs 2); a body within one SMS is one
// segment; a longer one needs at least ceil(units / per-part capacity) segments and at most one per unit;
// appending a plain letter adds exactly one unit, keeps the encoding and never lowers the segment count.
#include <cstdint>
#include <stdexcept>
#include <string>

#include "common/sms_segments.hpp"
#include "fuzz_check.hpp"

using darkspere::SegmentCount;
using darkspere::SmsEncoding;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    std::string_view text(reinterpret_cast<const char *>(data), size);
    SegmentCount count{};
    size_t chars = 0;
    bool counted = false, measured = false;
    try {
        count = darkspere::count_segments(text);
        counted = true;
    } catch (const std::invalid_argument &) {
    }
    try {
        chars = darkspere::utf8_length(text);
        measured = true;
    } catch (const std::invalid_argument &) {
    }
    FUZZ_CHECK(counted == measured);
    if (!counted)
        return 0;
    FUZZ_CHECK(darkspere::sms_encoding_name(count.encoding) != nullptr);
    if (chars == 0) {
        FUZZ_CHECK(count.encoding == SmsEncoding::gsm7 && count.segments == 1 && count.units == 0);
        return 0;
    }
    const size_t units = static_cast<size_t>(count.units);
    FUZZ_CHECK(units >= chars && units <= 2 * chars);
    const bool gsm = count.encoding == SmsEncoding::gsm7;
    const size_t single = gsm ? darkspere::kGsm7SingleSegmentSeptets : darkspere::kUcs2SingleSegmentUnits;
    const size_t part = gsm ? darkspere::kGsm7MultipartSegmentSeptets : darkspere::kUcs2MultipartSegmentUnits;
    FUZZ_CHECK(count.segments >= 1);
    if (units <= single) {
        FUZZ_CHECK(count.segments == 1);
    } else {
        FUZZ_CHECK(static_cast<size_t>(count.segments) >= (units + part - 1) / part);
        FUZZ_CHECK(static_cast<size_t>(count.segments) <= units);
    }

    SegmentCount longer = darkspere::count_segments(std::string(text) + "a");
    FUZZ_CHECK(longer.encoding == count.encoding);
    FUZZ_CHECK(longer.units == count.units + 1);
    FUZZ_CHECK(longer.segments >= count.segments);
    return 0;
}
