#include "ember/base/utf8.hpp"

#include <gtest/gtest.h>

#include <string>

#include "ember/base/error.hpp"

namespace ember {
namespace {

TEST(Utf8, AcceptsEveryWellFormedLength) {
  EXPECT_TRUE(is_valid_utf8(""));
  EXPECT_TRUE(is_valid_utf8("plain ascii\x7f"));
  EXPECT_TRUE(is_valid_utf8("\xc2\x80 \xdf\xbf"));                       // U+0080, U+07FF
  EXPECT_TRUE(is_valid_utf8("\xe0\xa0\x80 \xed\x9f\xbf \xef\xbf\xbf"));  // U+0800, U+D7FF, U+FFFF
  EXPECT_TRUE(is_valid_utf8("\xf0\x90\x80\x80 \xf4\x8f\xbf\xbf"));       // U+10000, U+10FFFF
  EXPECT_TRUE(is_valid_utf8(std::string("a\0b", 3)));                    // NUL is a code point
}

TEST(Utf8, RefusesEveryMalformedKind) {
  EXPECT_FALSE(is_valid_utf8("\x80"));              // lone continuation byte
  EXPECT_FALSE(is_valid_utf8("\xc0\xaf"));          // overlong two-byte lead
  EXPECT_FALSE(is_valid_utf8("\xe0\x9f\xbf"));      // overlong three-byte form of U+07FF
  EXPECT_FALSE(is_valid_utf8("\xf0\x8f\xbf\xbf"));  // overlong four-byte form of U+FFFF
  EXPECT_FALSE(is_valid_utf8("\xed\xa0\x80"));      // surrogate U+D800
  EXPECT_FALSE(is_valid_utf8("\xf4\x90\x80\x80"));  // U+110000
  EXPECT_FALSE(is_valid_utf8("\xf5\x80\x80\x80"));  // lead above U+10FFFF
  EXPECT_FALSE(is_valid_utf8("ok\xe2\x82"));        // truncated at the end
  EXPECT_FALSE(is_valid_utf8("\xe2\x28\xa1"));      // non-continuation inside a sequence
}

TEST(Utf8, DecodesEveryLengthAndRefusesMalformedText) {
  EXPECT_EQ(decode_utf8("a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"), U"a\u00e9\u20ac\U0001F600");
  EXPECT_EQ(decode_utf8(""), U"");
  EXPECT_THROW(decode_utf8("ok\xe2\x82"), Error);
}

}  // namespace
}  // namespace ember
