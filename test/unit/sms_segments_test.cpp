// test/unit/sms_segments_test.cpp — SMS encoding and segment counts
// (docs/protocols.md#sms-segments), every row of the upstream calculator's table.
#include "common/sms_segments.hpp"

#include <stdexcept>
#include <string>

#include <gtest/gtest.h>

using namespace darkspere;

namespace {

// digits returns S(n): the first n characters of "1234567890" repeated (the upstream calculator's notation).
std::string digits(int n) {
    std::string s;
    for (int i = 0; i < n; ++i) {
        s.push_back(static_cast<char>('0' + (i + 1) % 10));
    }
    return s;
}

// digits_with_first returns S(n) with its first character replaced by the UTF-8 character first.
std::string digits_with_first(const std::string &first, int n) {
    return first + digits(n).substr(1);
}

std::string repeated(const std::string &character, int n) {
    std::string s;
    for (int i = 0; i < n; ++i) {
        s += character;
    }
    return s;
}

// message_bits and total_bits are the calculator's sizes: units × 7 or × 16, plus a 48-bit UDH per segment of
// a multi-part message.
int message_bits(const SegmentCount &count) {
    return count.units * (count.encoding == SmsEncoding::gsm7 ? 7 : 16);
}
int total_bits(const SegmentCount &count) {
    return message_bits(count) + (count.segments > 1 ? 48 * count.segments : 0);
}

void expect_count(const std::string &body, SmsEncoding encoding, int units, int segments) {
    const SegmentCount count = count_segments(body);
    EXPECT_EQ(count.encoding, encoding) << body;
    EXPECT_EQ(count.units, units) << body;
    EXPECT_EQ(count.segments, segments) << body;
}

const std::string kExtensionCharacters[] = {"|", "^", "€", "{", "}", "[", "]", "~", "\\"};
const std::string kAccentedNotInGsm7[] = {"Á", "Ú", "ú", "ç", "í", "Í", "ó", "Ó"};

}  // namespace

TEST(SegmentHelpers, DigitsNotation) {
    EXPECT_EQ(digits(12), "123456789012");
    EXPECT_EQ(digits_with_first("{", 3), "{23");
}

// The upstream table (TwilioDevEd/message-segment-calculator), one row per test

TEST(CountSegments, Gsm7OneHundredSixtySeptetsIsOneSegment) {
    const SegmentCount count = count_segments(digits(160));
    expect_count(digits(160), SmsEncoding::gsm7, 160, 1);
    EXPECT_EQ(message_bits(count), 1120);
    EXPECT_EQ(total_bits(count), 1120);
}

TEST(CountSegments, Gsm7OneHundredSixtyOneSeptetsIsTwoSegments) {
    const SegmentCount count = count_segments(digits(161));
    expect_count(digits(161), SmsEncoding::gsm7, 161, 2);
    EXPECT_EQ(message_bits(count), 1127);
    EXPECT_EQ(total_bits(count), 1223);
}

TEST(CountSegments, Gsm7ThreeHundredSevenSeptetsIsThreeSegments) {
    const SegmentCount count = count_segments(digits(307));
    expect_count(digits(307), SmsEncoding::gsm7, 307, 3);
    EXPECT_EQ(message_bits(count), 2149);
    EXPECT_EQ(total_bits(count), 2293);
}

TEST(CountSegments, ExtensionCharacterFirstFillsOneSegmentExactly) {
    const std::string body = digits_with_first("{", 159);
    ASSERT_EQ(utf8_length(body), 159u);
    expect_count(body, SmsEncoding::gsm7, 160, 1);
    EXPECT_EQ(total_bits(count_segments(body)), 1120);
}

TEST(CountSegments, ExtensionCharacterFirstOverflowsToTwoSegments) {
    const std::string body = digits_with_first("{", 160);
    ASSERT_EQ(utf8_length(body), 160u);
    expect_count(body, SmsEncoding::gsm7, 161, 2);
    EXPECT_EQ(message_bits(count_segments(body)), 1127);
    EXPECT_EQ(total_bits(count_segments(body)), 1223);
}

TEST(CountSegments, EachExtensionCharacterCostsTwoSeptetsInOneSegment) {
    for (const std::string &character : kExtensionCharacters) {
        const std::string body = character + digits(158);
        expect_count(body, SmsEncoding::gsm7, 160, 1);
        EXPECT_EQ(total_bits(count_segments(body)), 1120) << character;
    }
}

TEST(CountSegments, EachExtensionCharacterCostsTwoSeptetsAcrossTwoSegments) {
    for (const std::string &character : kExtensionCharacters) {
        const std::string body = character + digits(159);
        expect_count(body, SmsEncoding::gsm7, 161, 2);
        EXPECT_EQ(message_bits(count_segments(body)), 1127) << character;
        EXPECT_EQ(total_bits(count_segments(body)), 1223) << character;
    }
}

TEST(CountSegments, EmojiFirstFillsOneUcs2SegmentExactly) {
    const std::string body = digits_with_first("😜", 69);
    ASSERT_EQ(utf8_length(body), 69u);
    expect_count(body, SmsEncoding::ucs2, 70, 1);
    EXPECT_EQ(message_bits(count_segments(body)), 1120);
    EXPECT_EQ(total_bits(count_segments(body)), 1120);
}

TEST(CountSegments, EmojiFirstOverflowsToTwoUcs2Segments) {
    const std::string body = digits_with_first("😜", 70);
    ASSERT_EQ(utf8_length(body), 70u);
    expect_count(body, SmsEncoding::ucs2, 71, 2);
    EXPECT_EQ(message_bits(count_segments(body)), 1136);
    EXPECT_EQ(total_bits(count_segments(body)), 1232);
}

TEST(CountSegments, EmojiFirstNeedsThreeUcs2Segments) {
    const std::string body = digits_with_first("😜", 134);
    ASSERT_EQ(utf8_length(body), 134u);
    expect_count(body, SmsEncoding::ucs2, 135, 3);
    EXPECT_EQ(message_bits(count_segments(body)), 2160);
    EXPECT_EQ(total_bits(count_segments(body)), 2304);
}

TEST(CountSegments, FlagFirstFillsOneUcs2SegmentExactly) {
    const std::string body = digits_with_first("🇮🇹", 67);
    expect_count(body, SmsEncoding::ucs2, 70, 1);
    EXPECT_EQ(total_bits(count_segments(body)), 1120);
}

TEST(CountSegments, FlagFirstOverflowsToTwoUcs2Segments) {
    const std::string body = digits_with_first("🇮🇹", 68);
    expect_count(body, SmsEncoding::ucs2, 71, 2);
    EXPECT_EQ(message_bits(count_segments(body)), 1136);
    EXPECT_EQ(total_bits(count_segments(body)), 1232);
}

TEST(CountSegments, ExtensionCharacterCostsOneUnitInUcs2) {
    expect_count("😀" + repeated("]", 68), SmsEncoding::ucs2, 70, 1);
}

TEST(CountSegments, ExtensionCharactersInUcs2OverflowToTwoSegments) {
    expect_count("😀" + repeated("]", 69), SmsEncoding::ucs2, 71, 2);
}

TEST(CountSegments, SeventyAccentedCharactersOutsideGsm7AreOneUcs2Segment) {
    for (const std::string &character : kAccentedNotInGsm7) {
        expect_count(repeated(character, 70), SmsEncoding::ucs2, 70, 1);
    }
}

TEST(CountSegments, SeventyOneAccentedCharactersOutsideGsm7AreTwoUcs2Segments) {
    for (const std::string &character : kAccentedNotInGsm7) {
        expect_count(repeated(character, 71), SmsEncoding::ucs2, 71, 2);
    }
}

// Segment boundaries: 160/153 septets, 70/67 units

TEST(CountSegments, Gsm7SegmentBoundaries) {
    expect_count(digits(1), SmsEncoding::gsm7, 1, 1);
    expect_count(digits(306), SmsEncoding::gsm7, 306, 2);
    expect_count(digits(459), SmsEncoding::gsm7, 459, 3);
    expect_count(digits(460), SmsEncoding::gsm7, 460, 4);
}

TEST(CountSegments, Ucs2SegmentBoundaries) {
    expect_count("é" + repeated("ç", 69), SmsEncoding::ucs2, 70, 1);
    expect_count(repeated("ç", 134), SmsEncoding::ucs2, 134, 2);
    expect_count(repeated("ç", 135), SmsEncoding::ucs2, 135, 3);
    expect_count(repeated("ç", 201), SmsEncoding::ucs2, 201, 3);
    expect_count(repeated("ç", 202), SmsEncoding::ucs2, 202, 4);
}

// Encoding: the GSM-7 character sets

TEST(CountSegments, WholeGsm7BasicSetIsOneSeptetEach) {
    const std::string basic =
        "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
        "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
    ASSERT_EQ(utf8_length(basic), 127u);
    expect_count(basic, SmsEncoding::gsm7, 127, 1);
}

TEST(CountSegments, FormFeedIsAnExtensionCharacter) {
    expect_count("\f", SmsEncoding::gsm7, 2, 1);
}

TEST(CountSegments, BacktickIsNotGsm7) {
    expect_count("`", SmsEncoding::ucs2, 1, 1);
}

TEST(CountSegments, OneEmojiMakesWholeMessageUcs2) {
    expect_count(digits(100) + "😀", SmsEncoding::ucs2, 102, 2);
}

TEST(CountSegments, SmartQuotesAreUcs2) {
    expect_count("It’s", SmsEncoding::ucs2, 4, 1);
}

TEST(CountSegments, TabIsNotGsm7) {
    expect_count("a\tb", SmsEncoding::ucs2, 3, 1);
}

// No straddling: characters never straddle a segment boundary

TEST(CountSegments, EscapePairMovesWholeToNextSegment) {
    // 152 septets, then '{' (2), then 152 more: 306 septets would fit 2 × 153, but the escape pair cannot
    // straddle the first boundary, so part 1 holds 152, part 2 holds 153 and a third part takes the last
    // septet.
    expect_count(digits(152) + "{" + digits(152), SmsEncoding::gsm7, 306, 3);
}

TEST(CountSegments, SurrogatePairMovesWholeToNextSegment) {
    // 66 units then an emoji (2): 68 units; with 66 more units the total is 134 = 2 × 67, but the emoji
    // cannot straddle the first boundary, so a third part is needed.
    expect_count(repeated("ç", 66) + "😀" + repeated("ç", 66), SmsEncoding::ucs2, 134, 3);
}

TEST(CountSegments, FlagPairMovesWholeToNextSegment) {
    // 65 units, then a 4-unit flag: splitting at 67 would cut the flag between its two regional indicators.
    expect_count(repeated("ç", 65) + "🇮🇹" + repeated("ç", 65), SmsEncoding::ucs2, 134, 3);
}

TEST(CountSegments, ConsecutiveFlagsPairUp) {
    // 66 units, then two flags (8 units): the first flag moves whole to part 2, the second follows it.
    expect_count(repeated("ç", 66) + "🇮🇹🇮🇹", SmsEncoding::ucs2, 74, 2);
}

TEST(CountSegments, ZwjSequenceMovesWholeToNextSegment) {
    // Family emoji: man ZWJ woman ZWJ girl = 8 units; 62 units before it leaves 5 in the first part.
    expect_count(repeated("ç", 62) + "👨‍👩‍👧" + repeated("ç", 64), SmsEncoding::ucs2, 134, 3);
}

TEST(CountSegments, SkinToneModifierStaysWithItsEmoji) {
    expect_count(repeated("ç", 66) + "👍🏽" + repeated("ç", 64), SmsEncoding::ucs2, 134, 3);
}

TEST(CountSegments, CombiningMarkStaysWithItsBase) {
    // e + U+0301 (combining acute) is two units that stay together.
    expect_count(repeated("ç", 66) + "e\u0301" + repeated("ç", 66), SmsEncoding::ucs2, 134, 3);
}

// Empty bodies and invalid input

TEST(CountSegments, EmptyBodyIsOneGsm7SegmentOfZeroUnits) {
    expect_count("", SmsEncoding::gsm7, 0, 1);
}

TEST(CountSegments, InvalidUtf8Throws) {
    EXPECT_THROW(count_segments("\xFF"), std::invalid_argument);
    EXPECT_THROW(count_segments("abc\xE2\x9C"), std::invalid_argument);
}

// sms_encoding_name

TEST(SmsEncodingName, Names) {
    EXPECT_STREQ(sms_encoding_name(SmsEncoding::gsm7), "GSM-7");
    EXPECT_STREQ(sms_encoding_name(SmsEncoding::ucs2), "UCS-2");
}

// utf8_length

TEST(Utf8Length, CountsCodePointsNotBytes) {
    EXPECT_EQ(utf8_length("abc"), 3u);
    EXPECT_EQ(utf8_length("é✓😀"), 3u);
    EXPECT_EQ(utf8_length(""), 0u);
}

TEST(Utf8Length, FlagIsTwoCodePoints) {
    EXPECT_EQ(utf8_length("🇮🇹"), 2u);
}

TEST(Utf8Length, NulIsACodePoint) {
    EXPECT_EQ(utf8_length(std::string("a\0b", 3)), 3u);
}

TEST(Utf8Length, StrayContinuationByteThrows) {
    EXPECT_THROW(utf8_length("\x80"), std::invalid_argument);
}

TEST(Utf8Length, TruncatedSequenceThrows) {
    EXPECT_THROW(utf8_length("\xF0\x9F\x98"), std::invalid_argument);
}

TEST(Utf8Length, OverlongEncodingThrows) {
    EXPECT_THROW(utf8_length("\xC0\xAF"), std::invalid_argument);
    EXPECT_THROW(utf8_length("\xE0\x80\xAF"), std::invalid_argument);
}

TEST(Utf8Length, EncodedSurrogateThrows) {
    EXPECT_THROW(utf8_length("\xED\xA0\x80"), std::invalid_argument);
}

TEST(Utf8Length, AboveU10FFFFThrows) {
    EXPECT_THROW(utf8_length("\xF4\x90\x80\x80"), std::invalid_argument);
}

TEST(Utf8Length, InvalidUtf8MessageSaysSo) {
    try {
        utf8_length("ok\xFF");
        FAIL() << "expected std::invalid_argument";
    } catch (const std::invalid_argument &error) {
        EXPECT_EQ(std::string(error.what()).rfind("invalid UTF-8", 0), 0u) << error.what();
    }
}

TEST(Utf8Length, MaximumBodyIsSixteenHundredCharacters) {
    EXPECT_EQ(kSmsBodyMaxCharacters, 1600u);
    EXPECT_EQ(utf8_length(repeated("✓", 1600)), kSmsBodyMaxCharacters);
}
