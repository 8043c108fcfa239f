// test/unit/xml_test.cpp — escaping text for TwiML.
#include "common/xml.hpp"

#include <string>

#include <gtest/gtest.h>

using darkspere::xml_escape;

TEST(XmlEscape, PlainTextUnchanged) {
    EXPECT_EQ(xml_escape("Hello, world!"), "Hello, world!");
}

TEST(XmlEscape, AllFiveSpecialCharacters) {
    EXPECT_EQ(xml_escape("&<>\"'"), "&amp;&lt;&gt;&quot;&apos;");
}

TEST(XmlEscape, AmpersandOfExistingEntityIsEscapedAgain) {
    EXPECT_EQ(xml_escape("&amp;"), "&amp;amp;");
}

TEST(XmlEscape, MarkupBecomesText) {
    EXPECT_EQ(xml_escape("</Message><Redirect>x</Redirect>"),
              "&lt;/Message&gt;&lt;Redirect&gt;x&lt;/Redirect&gt;");
}

TEST(XmlEscape, Utf8PassesThrough) {
    EXPECT_EQ(xml_escape("✓ 😀 é"), "✓ 😀 é");
}

TEST(XmlEscape, EmptyString) {
    EXPECT_EQ(xml_escape(""), "");
}

TEST(XmlEscape, NewlinesPassThrough) {
    EXPECT_EQ(xml_escape("a\nb"), "a\nb");
}
