// src/common/sms_segments.hpp — SMS encoding and segment counting as Twilio bills it
// (docs/protocols.md#sms-segments).
//
// Vocabulary: a *septet* is one 7-bit GSM-7 unit; a *unit* is a septet (GSM-7) or a UTF-16 code unit (UCS-2);
// a *segment* is one SMS on the air, the unit Twilio bills and carriers rate-limit.
#pragma once

#ifdef POSTGRES_H
#error "src/common is pure C++: include its headers only where postgres.h is not included"
#endif

#include <cstddef>
#include <string_view>

namespace darkspere {

// A message that fits one SMS may use all 140 bytes: 160 septets or 70 UTF-16 units.
constexpr int kGsm7SingleSegmentSeptets = 160;
constexpr int kUcs2SingleSegmentUnits = 70;
// Each part of a multi-part SMS loses 6 bytes to the concatenation header (UDH).
constexpr int kGsm7MultipartSegmentSeptets = 153;
constexpr int kUcs2MultipartSegmentUnits = 67;
// Twilio refuses bodies longer than 1,600 characters (code points); it recommends at most 320.
constexpr std::size_t kSmsBodyMaxCharacters = 1600;

enum class SmsEncoding { gsm7, ucs2 };

struct SegmentCount {
    SmsEncoding encoding;
    int segments;
    int units;  // septets for GSM-7, UTF-16 code units for UCS-2
};

// count_segments returns the encoding, segment count and units of a UTF-8 body. GSM-7 if every character is
// in the GSM 03.38 basic set (1 septet) or extension table (2 septets), otherwise UCS-2 for the whole
// message. Characters never straddle a segment boundary: a GSM-7 escape pair, a surrogate pair, and
// (approximating Twilio's calculator, which keeps grapheme clusters whole) a regional-indicator flag pair or
// a base character with its combining marks, variation selectors, emoji modifiers, tags and ZWJ-joined
// successors move whole to the next segment. An empty body counts as 1 GSM-7 segment of 0 units, since a sent
// SMS occupies at least one. Throws std::invalid_argument on invalid UTF-8.
SegmentCount count_segments(std::string_view utf8);

// sms_encoding_name returns "GSM-7" or "UCS-2".
const char *sms_encoding_name(SmsEncoding encoding);

// utf8_length returns the number of code points in utf8 (what Twilio's 1,600-character limit counts).
// Throws std::invalid_argument on invalid UTF-8.
std::size_t utf8_length(std::string_view utf8);

}  // namespace darkspere
