// src/common/sms_segments.cpp — UTF-8 decoding, GSM-7 classification and segment packing.
#include "common/sms_segments.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

namespace darkspere {

namespace {

// GSM 03.38 basic character set in table order (0x00–0x7F), 0x1B (ESC) left out: 127 characters, 1 septet
// each.
constexpr std::string_view kGsm7BasicSet =
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
// GSM 03.38 extension table: ESC followed by a code, 2 septets each.
constexpr std::string_view kGsm7ExtensionSet = "\f^{}\\[~]|€";

// decode_utf8 returns the code points of utf8, rejecting overlong forms, surrogates, values above U+10FFFF
// and truncated or stray continuation bytes.
std::vector<char32_t> decode_utf8(std::string_view utf8) {
    std::vector<char32_t> code_points;
    code_points.reserve(utf8.size());
    std::size_t i = 0;
    while (i < utf8.size()) {
        const auto lead = static_cast<unsigned char>(utf8[i]);
        int length;
        char32_t cp;
        char32_t minimum;
        if (lead < 0x80) {
            length = 1, cp = lead, minimum = 0;
        } else if ((lead & 0xE0) == 0xC0) {
            length = 2, cp = lead & 0x1F, minimum = 0x80;
        } else if ((lead & 0xF0) == 0xE0) {
            length = 3, cp = lead & 0x0F, minimum = 0x800;
        } else if ((lead & 0xF8) == 0xF0) {
            length = 4, cp = lead & 0x07, minimum = 0x10000;
        } else {
            throw std::invalid_argument("invalid UTF-8: unexpected byte at offset " + std::to_string(i));
        }
        if (utf8.size() - i < static_cast<std::size_t>(length)) {
            throw std::invalid_argument("invalid UTF-8: truncated sequence at offset " + std::to_string(i));
        }
        for (int k = 1; k < length; ++k) {
            const auto next = static_cast<unsigned char>(utf8[i + k]);
            if ((next & 0xC0) != 0x80) {
                throw std::invalid_argument("invalid UTF-8: truncated sequence at offset " +
                                            std::to_string(i));
            }
            cp = (cp << 6) | (next & 0x3F);
        }
        if (cp < minimum || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
            throw std::invalid_argument(
                "invalid UTF-8: overlong, surrogate or out-of-range code point at offset " +
                std::to_string(i));
        }
        code_points.push_back(cp);
        i += static_cast<std::size_t>(length);
    }
    return code_points;
}

// sorted_code_points returns the code points of a UTF-8 literal, sorted for binary search.
std::vector<char32_t> sorted_code_points(std::string_view utf8) {
    std::vector<char32_t> code_points = decode_utf8(utf8);
    std::sort(code_points.begin(), code_points.end());
    return code_points;
}

// gsm7_septets returns what cp costs in GSM-7: 1 (basic set), 2 (extension table) or 0 (not encodable).
int gsm7_septets(char32_t cp) {
    static const std::vector<char32_t> basic = sorted_code_points(kGsm7BasicSet);
    static const std::vector<char32_t> extension = sorted_code_points(kGsm7ExtensionSet);
    if (std::binary_search(basic.begin(), basic.end(), cp)) {
        return 1;
    }
    if (std::binary_search(extension.begin(), extension.end(), cp)) {
        return 2;
    }
    return 0;
}

// utf16_units returns how many UTF-16 code units cp takes: 2 (a surrogate pair) above the BMP, else 1.
int utf16_units(char32_t cp) {
    return cp > 0xFFFF ? 2 : 1;
}

bool is_regional_indicator(char32_t cp) {
    return cp >= 0x1F1E6 && cp <= 0x1F1FF;
}

constexpr char32_t kZeroWidthJoiner = 0x200D;

// extends_cluster returns whether cp belongs to the grapheme cluster before it: combining marks, variation
// selectors, emoji skin-tone modifiers, emoji tag characters and the zero-width joiner.
bool extends_cluster(char32_t cp) {
    return (cp >= 0x0300 && cp <= 0x036F) || (cp >= 0x1AB0 && cp <= 0x1AFF) ||
           (cp >= 0x1DC0 && cp <= 0x1DFF) || (cp >= 0x20D0 && cp <= 0x20FF) ||
           (cp >= 0xFE20 && cp <= 0xFE2F) || (cp >= 0xFE00 && cp <= 0xFE0F) ||
           (cp >= 0xE0100 && cp <= 0xE01EF) || (cp >= 0x1F3FB && cp <= 0x1F3FF) ||
           (cp >= 0xE0020 && cp <= 0xE007F) || cp == kZeroWidthJoiner;
}

// ucs2_cluster_units returns the UTF-16 units of each indivisible run of code points, in order. A cluster
// that would not fit one multi-part segment is cut at a code point boundary instead (surrogate pairs stay
// whole).
std::vector<int> ucs2_cluster_units(const std::vector<char32_t> &code_points) {
    std::vector<int> clusters;
    char32_t previous = 0;
    int regional_indicators = 0;  // in the current cluster: a flag is exactly two
    for (char32_t cp : code_points) {
        const int units = utf16_units(cp);
        const bool joins = !clusters.empty() && (extends_cluster(cp) || previous == kZeroWidthJoiner ||
                                                 (is_regional_indicator(cp) && regional_indicators == 1));
        if (joins && clusters.back() + units <= kUcs2MultipartSegmentUnits) {
            clusters.back() += units;
        } else {
            clusters.push_back(units);
            regional_indicators = 0;
        }
        if (is_regional_indicator(cp)) {
            ++regional_indicators;
        }
        previous = cp;
    }
    return clusters;
}

// gsm7_character_septets returns the septets of each character, or an empty vector if one is not GSM-7.
std::vector<int> gsm7_character_septets(const std::vector<char32_t> &code_points) {
    std::vector<int> septets;
    septets.reserve(code_points.size());
    for (char32_t cp : code_points) {
        const int cost = gsm7_septets(cp);
        if (cost == 0) {
            return {};
        }
        septets.push_back(cost);
    }
    return septets;
}

// pack_segments returns how many multi-part segments of capacity units hold the indivisible pieces in order.
int pack_segments(const std::vector<int> &pieces, int capacity) {
    int segments = 1;
    int used = 0;
    for (int piece : pieces) {
        if (used + piece > capacity) {
            ++segments;
            used = 0;
        }
        used += piece;
    }
    return segments;
}

// segment_count returns the count for pieces in one encoding with its single and multi-part capacities.
SegmentCount segment_count(SmsEncoding encoding, const std::vector<int> &pieces, int single, int multipart) {
    int units = 0;
    for (int piece : pieces) {
        units += piece;
    }
    const int segments = units <= single ? 1 : pack_segments(pieces, multipart);
    return SegmentCount{encoding, segments, units};
}

}  // namespace

SegmentCount count_segments(std::string_view utf8) {
    const std::vector<char32_t> code_points = decode_utf8(utf8);
    if (code_points.empty()) {
        return SegmentCount{SmsEncoding::gsm7, 1, 0};
    }
    const std::vector<int> septets = gsm7_character_septets(code_points);
    if (!septets.empty()) {
        return segment_count(SmsEncoding::gsm7, septets, kGsm7SingleSegmentSeptets,
                             kGsm7MultipartSegmentSeptets);
    }
    return segment_count(SmsEncoding::ucs2, ucs2_cluster_units(code_points), kUcs2SingleSegmentUnits,
                         kUcs2MultipartSegmentUnits);
}

const char *sms_encoding_name(SmsEncoding encoding) {
    switch (encoding) {
        case SmsEncoding::gsm7:
            return "GSM-7";
        case SmsEncoding::ucs2:
            return "UCS-2";
    }
    return "unknown";
}

std::size_t utf8_length(std::string_view utf8) {
    return decode_utf8(utf8).size();
}

}  // namespace darkspere
