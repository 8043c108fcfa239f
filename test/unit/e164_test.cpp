// test/unit/e164_test.cpp — which strings are E.164 telephone numbers.
#include "common/e164.hpp"

#include <gtest/gtest.h>

using darkspere::is_e164;

TEST(IsE164, UsNumber) {
    EXPECT_TRUE(is_e164("+14155550100"));
}

TEST(IsE164, ShortestIsTwoDigits) {
    EXPECT_TRUE(is_e164("+12"));
}

TEST(IsE164, LongestIsFifteenDigits) {
    EXPECT_TRUE(is_e164("+123456789012345"));
}

TEST(IsE164, OneDigitIsTooShort) {
    EXPECT_FALSE(is_e164("+1"));
}

TEST(IsE164, SixteenDigitsIsTooLong) {
    EXPECT_FALSE(is_e164("+1234567890123456"));
}

TEST(IsE164, PlusIsRequired) {
    EXPECT_FALSE(is_e164("14155550100"));
}

TEST(IsE164, CountryCodeCannotStartWithZero) {
    EXPECT_FALSE(is_e164("+04155550100"));
}

TEST(IsE164, EmptyAndPlusAloneAreNot) {
    EXPECT_FALSE(is_e164(""));
    EXPECT_FALSE(is_e164("+"));
}

TEST(IsE164, NoSpacesOrPunctuation) {
    EXPECT_FALSE(is_e164("+1 415 555 0100"));
    EXPECT_FALSE(is_e164("+1-415-555-0100"));
    EXPECT_FALSE(is_e164("+1(415)5550100"));
}

TEST(IsE164, NoSecondPlusOrTrailingText) {
    EXPECT_FALSE(is_e164("++14155550100"));
    EXPECT_FALSE(is_e164("+14155550100 "));
    EXPECT_FALSE(is_e164("+14155550100x12"));
}

TEST(IsE164, NonAsciiDigitsAreNot) {
    EXPECT_FALSE(is_e164("+1٤١٥5550100"));
}
