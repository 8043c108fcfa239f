// test/unit/form_test.cpp — application/x-www-form-urlencoded parsing and encoding.
#include "common/form.hpp"

#include <string>
#include <vector>

#include <gtest/gtest.h>

using namespace darkspere;

namespace {

// parsed returns the params of a body that must parse.
std::vector<FormParam> parsed(std::string_view body) {
    auto params = parse_form(body);
    EXPECT_TRUE(params.has_value()) << body;
    return params.value_or(std::vector<FormParam>{});
}

}  // namespace

namespace darkspere {
bool operator==(const FormParam &a, const FormParam &b) {
    return a.name == b.name && a.value == b.value;
}
}  // namespace darkspere

// parse_form

TEST(ParseForm, NameValuePairsInOrder) {
    EXPECT_EQ(parsed("b=2&a=1"), (std::vector<FormParam>{{"b", "2"}, {"a", "1"}}));
}

TEST(ParseForm, EmptyBodyHasNoParams) {
    EXPECT_TRUE(parsed("").empty());
}

TEST(ParseForm, PlusIsSpace) {
    EXPECT_EQ(parsed("Body=Hello+world")[0].value, "Hello world");
}

TEST(ParseForm, PercentEscapeIsByte) {
    EXPECT_EQ(parsed("From=%2B14155550100")[0].value, "+14155550100");
}

TEST(ParseForm, PercentEscapeEitherHexCase) {
    EXPECT_EQ(parsed("a=%c3%a9")[0].value, "é");
    EXPECT_EQ(parsed("a=%C3%A9")[0].value, "é");
}

TEST(ParseForm, EncodedPlusStaysPlus) {
    EXPECT_EQ(parsed("a=1%2B1")[0].value, "1+1");
}

TEST(ParseForm, Utf8BytesDecoded) {
    EXPECT_EQ(parsed("Body=%E2%9C%93+%F0%9F%98%80")[0].value, "\xE2\x9C\x93 \xF0\x9F\x98\x80");
}

TEST(ParseForm, NamesAreDecodedToo) {
    EXPECT_EQ(parsed("My+Name%21=x")[0].name, "My Name!");
}

TEST(ParseForm, FirstEqualsSplitsNameFromValue) {
    EXPECT_EQ(parsed("a=b=c")[0].value, "b=c");
}

TEST(ParseForm, PairWithoutEqualsHasEmptyValue) {
    EXPECT_EQ(parsed("flag&a=1"), (std::vector<FormParam>{{"flag", ""}, {"a", "1"}}));
}

TEST(ParseForm, EmptyValueKept) {
    EXPECT_EQ(parsed("Body=&a=1"), (std::vector<FormParam>{{"Body", ""}, {"a", "1"}}));
}

TEST(ParseForm, EmptyPiecesSkipped) {
    EXPECT_EQ(parsed("&a=1&&b=2&"), (std::vector<FormParam>{{"a", "1"}, {"b", "2"}}));
}

TEST(ParseForm, RepeatedNamesAllKept) {
    EXPECT_EQ(parsed("d=5678&d=1234&d=1234"),
              (std::vector<FormParam>{{"d", "5678"}, {"d", "1234"}, {"d", "1234"}}));
}

TEST(ParseForm, PercentEncodedNulByteKept) {
    EXPECT_EQ(parsed("a=x%00y")[0].value, std::string("x\0y", 3));
}

TEST(ParseForm, TruncatedEscapeIsMalformed) {
    EXPECT_FALSE(parse_form("a=%"));
    EXPECT_FALSE(parse_form("a=%4"));
    EXPECT_FALSE(parse_form("a=1%2"));
}

TEST(ParseForm, NonHexEscapeIsMalformed) {
    EXPECT_FALSE(parse_form("a=%zz"));
    EXPECT_FALSE(parse_form("a=%4g"));
    EXPECT_FALSE(parse_form("a=100%"));
}

TEST(ParseForm, MalformedEscapeInNameIsMalformed) {
    EXPECT_FALSE(parse_form("%x=1"));
}

TEST(ParseForm, MalformedEscapeAnywhereRejectsWholeBody) {
    EXPECT_FALSE(parse_form("a=1&b=%&c=3"));
}

// form_encode

TEST(FormEncode, UnreservedUnchanged) {
    EXPECT_EQ(form_encode("AZaz09-._~"), "AZaz09-._~");
}

TEST(FormEncode, SpaceIsPlus) {
    EXPECT_EQ(form_encode("Hello world"), "Hello+world");
}

TEST(FormEncode, ReservedBytesPercentEncodedUppercase) {
    EXPECT_EQ(form_encode("+1&a=b/c?d%e'*"), "%2B1%26a%3Db%2Fc%3Fd%25e%27%2A");
}

TEST(FormEncode, Utf8EncodedPerByte) {
    EXPECT_EQ(form_encode("✓"), "%E2%9C%93");
}

TEST(FormEncode, ControlBytesEncoded) {
    EXPECT_EQ(form_encode(std::string("\n\0", 2)), "%0A%00");
}

// encode_form

TEST(EncodeForm, PairsJoinedInOrder) {
    EXPECT_EQ(encode_form({{"To", "+14155550199"}, {"Body", "Hi there"}}), "To=%2B14155550199&Body=Hi+there");
}

TEST(EncodeForm, NoParamsIsEmpty) {
    EXPECT_EQ(encode_form({}), "");
}

TEST(EncodeForm, BracketedNamesEncoded) {
    EXPECT_EQ(encode_form({{"metadata[k]", "v"}}), "metadata%5Bk%5D=v");
}

TEST(EncodeForm, RoundTripsThroughParseForm) {
    const std::vector<FormParam> params{{"Body", "a+b & c=d 100% ✓"}, {"", ""}, {"x", "\n"}};
    EXPECT_EQ(parsed(encode_form(params)), params);
}

// form_value

TEST(FormValue, FirstValueOfName) {
    EXPECT_EQ(form_value({{"a", "1"}, {"b", "2"}, {"a", "3"}}, "a"), std::optional<std::string>("1"));
}

TEST(FormValue, MissingName) {
    EXPECT_EQ(form_value({{"a", "1"}}, "A"), std::nullopt);
}

TEST(FormValue, PresentButEmpty) {
    EXPECT_EQ(form_value({{"Body", ""}}, "Body"), std::optional<std::string>(""));
}
