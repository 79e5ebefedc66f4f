// Chat templates against jinja2 as transformers configures it (tests/fixtures/chat, made by
// tools/chat/make_chat_fixtures.py), and the limits that keep hostile templates bounded.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

#include "../test_env.hpp"
#include "ember/base/error.hpp"
#include "ember/generation/chat_template.hpp"

namespace ember::generation {
namespace {

const nlohmann::ordered_json& fixtures() {
  static const nlohmann::ordered_json j = [] {
    std::ifstream in(std::filesystem::path(EMBER_SOURCE_DIR) /
                     "tests/fixtures/chat/chat_cases.json");
    return nlohmann::ordered_json::parse(in);
  }();
  return j;
}

using ::ember::test::error_of;

TEST(ChatTemplate, RealTemplatesRenderAsTransformers) {
  const auto& f = fixtures();
  ASSERT_GE(f.at("cases").size(), 80u);
  for (const auto& c : f.at("cases")) {
    const auto& spec = f.at("templates").at(c.at("template").get<std::string>());
    const ChatTemplate tmpl(spec.at("template").get<std::string>());
    ChatRequest request;
    request.messages = f.at("conversations").at(c.at("conversation").get<std::string>());
    request.add_generation_prompt = c.at("add_generation_prompt").get<bool>();
    request.bos_token = spec.at("bos_token").get<std::string>();
    request.eos_token = spec.at("eos_token").get<std::string>();
    if (c.at("tools").get<bool>()) request.tools = f.at("tools");
    const std::string label = c.at("template").get<std::string>() + " / " +
                              c.at("conversation").get<std::string>() +
                              (request.add_generation_prompt ? " +prompt" : "");
    if (c.contains("error")) {
      // raise_exception's message, as transformers' TemplateError carries it.
      EXPECT_EQ(error_of([&] { (void)apply_chat_template(tmpl, request); }),
                "chat template: " + c.at("error").get<std::string>())
          << label;
    } else {
      EXPECT_EQ(apply_chat_template(tmpl, request), c.at("expected").get<std::string>()) << label;
    }
  }
}

TEST(ChatTemplate, JinjaSubsetMatchesJinja2) {
  for (const auto& c : fixtures().at("jinja_cases")) {
    const std::string source = c.at("template").get<std::string>();
    const ChatTemplate tmpl(source);
    if (!c.contains("error")) {
      EXPECT_EQ(tmpl.render(c.at("variables")), c.at("expected").get<std::string>()) << source;
      continue;
    }
    const std::string want = c.at("error").get<std::string>();
    const std::string got = error_of([&] { (void)tmpl.render(c.at("variables")); });
    EXPECT_FALSE(got.empty()) << source;
    if (want.rfind("custom failure", 0) == 0) {
      EXPECT_EQ(got, "chat template: " + want);
    }
    // Python's own errors: ours names the place instead.
    if (want.rfind("undefined: ", 0) == 0) {
      EXPECT_NE(got.find(want.substr(11)), std::string::npos) << got;
    }
  }
}

TEST(ChatTemplate, ParseErrorsNameLineAndColumn) {
  const auto parse_error = [](const std::string& source) {
    return error_of([&] { ChatTemplate t(source); });
  };
  EXPECT_EQ(parse_error("hello\n{{ x + }}"), "chat template line 2, column 8: unexpected '}}'");
  EXPECT_EQ(parse_error("{% for m in messages %}{{ m }}"),
            "chat template line 1, column 31: missing '{% endfor %}'");
  EXPECT_EQ(parse_error("ab{% macro f() %}{% endmacro %}"),
            "chat template line 1, column 6: unknown or unsupported tag 'macro'");
  EXPECT_EQ(parse_error("x\n  {{ 'unterminated }}"),
            "chat template line 2, column 6: unterminated string");
  EXPECT_EQ(parse_error("{{ a"), "chat template line 1, column 1: unclosed '{{'");
  // Both integer forms (a literal and jinja2's `x.0` item syntax) are range-checked.
  EXPECT_EQ(parse_error("{{ 99999999999999999999 }}"),
            "chat template line 1, column 4: integer literal out of range");
  EXPECT_EQ(parse_error("{{ loop.99999999999999999999 }}"),
            "chat template line 1, column 9: integer literal out of range");
  EXPECT_EQ(parse_error("{% if %}{% endif %}"),
            "chat template line 1, column 7: unexpected end of tag");
  EXPECT_EQ(parse_error("{{ a $ b }}"), "chat template line 1, column 6: unexpected character '$'");
  EXPECT_EQ(parse_error("{% endif %}"),
            "chat template line 1, column 4: unknown or unsupported tag 'endif'");
  // Runtime errors name the place too.
  const ChatTemplate t("line one\n{{ messages.nope.deeper }}");
  EXPECT_EQ(error_of([&] {
              (void)t.render({{"messages", nlohmann::ordered_json::array()}});
            }),
            "chat template line 2, column 17: 'nope' is undefined");
}

TEST(ChatTemplate, HostileTemplatesHitLimitsQuickly) {
  ChatTemplateLimits limits;
  limits.max_output_bytes = 1 << 20;
  limits.max_steps = 1 << 16;
  const auto fails = [&](const std::string& source, const std::string& what) {
    const auto start = std::chrono::steady_clock::now();
    const std::string err = error_of([&] {
      const ChatTemplate t(source, limits);
      (void)t.render(nlohmann::ordered_json::object());
    });
    EXPECT_NE(err.find(what), std::string::npos) << source << " -> " << err;
    // Generous on purpose (sanitizer builds, loaded CI): without the limits these run for hours.
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(20)) << source;
  };
  fails("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
        "steps");
  fails("{% for i in range(60000) %}{{ 'x' * 1000 }}{% endfor %}", "bytes");
  fails("{{ 'x' * 100000000000 }}", "bytes");
  fails(
      "{% for i in range(100) %}{{ '' * 100000000000 }}{{ [] * 100000000000 }}{% endfor %}{{ x.y "
      "}}",
      "'x' is undefined");
  fails(
      "{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% "
      "endfor %}",
      "bytes");
  fails(
      "{% set ns = namespace(s='ab' * 1000) %}{% for i in range(30000) %}{% set ns.s = ns.s[1:] ~ "
      "'c' %}{% endfor %}",
      "too much text");
  fails("{{ " + std::string(100000, '(') + "1" + std::string(100000, ')') + " }}",
        "nesting deeper");
  fails("{{ " + std::string(100000, '[') + std::string(100000, ']') + " }}", "nesting deeper");
  fails("{{ " + std::string(100000, '[') + " }}", "unclosed");
  std::string nested;
  for (int i = 0; i < 10000; ++i) nested += "{% if true %}";
  fails(nested, "nesting deeper");
  fails("{{ 2 ** 100 }}", "integer overflow");
  fails(
      "{{ 1 ** 1000000000000000000 }}{{ (-1) ** 999999999999999999 }}{{ [1, 2, "
      "3][1::9223372036854775807] }}"
      "{{ 9223372036854775807 // -2 }}{{ 9223372036854775807 % -2 }}{{ y.z }}",
      "'y' is undefined");
  // Values nested one level per iteration, and a namespace that holds itself.
  fails(
      "{% set ns = namespace(x=1) %}{% for i in range(50000) %}{% set ns.x = [ns.x] %}{% endfor %}"
      "{{ ns.x }}",
      "values nest deeper");
  fails(
      "{% set ns = namespace() %}{% set ns.me = ns %}{% set ns.l = [ns, ns.me] %}{{ ns.l }}"
      "{{ ns.l == ns.l }}{{ ns.l | tojson }}",
      "not JSON serializable");
  limits.max_template_bytes = 100;
  fails(std::string(101, 'x'), "more than the limit");
}

TEST(ChatTemplate, UndefinedAndSpecialVariablesBehaveAsInJinja) {
  const ChatTemplate t(
      "{{ tools is none }}{{ documents is defined }}{{ missing }}|{% for x in missing %}x{% endfor "
      "%}"
      "{{ bos_token }}{{ add_generation_prompt }}");
  ChatRequest request;
  request.bos_token = "<s>";
  EXPECT_EQ(apply_chat_template(t, request), "TrueTrue|<s>True");
}

}  // namespace
}  // namespace ember::generation
