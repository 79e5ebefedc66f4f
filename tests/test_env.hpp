#pragma once
// Tests that need something from outside the clone (the model cache, the built CLI, seccomp
// filters, a mountable tmpfs) skip on a machine that lacks it, so that a developer can run the
// rest. Under CI (the CI environment variable set, as CI services and .ci/run's callers do) a
// missing prerequisite is a failure instead: a suite that skips silently checks nothing.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

#include "ember/base/error.hpp"

namespace ember::test {

inline bool running_in_ci() {
  const char* ci = std::getenv("CI");
  if (ci == nullptr) return false;
  const std::string_view v = ci;
  return !v.empty() && v != "0" && v != "false";
}

// The message of the ember::Error `body` throws, or "" when it throws none (any other exception
// propagates and fails the test), for tests that check what an error names.
inline std::string error_of(const std::function<void()>& body) {
  try {
    body();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// A scratch directory named after the running test and the process (ctest runs tests as
// parallel processes), removed with everything in it when this object goes.
class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = std::filesystem::temp_directory_path() /
            ("ember-" + std::string(info != nullptr ? info->name() : "test") + "-" +
             std::to_string(::getpid()));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  TempDir(TempDir&&) = delete;
  TempDir& operator=(TempDir&&) = delete;
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

}  // namespace ember::test

// A macro, because GTEST_SKIP and FAIL return from the calling test function. `why` is streamed
// (`<< why`, also `"a" << b`), so it takes no parentheses.
// NOLINTBEGIN(bugprone-macro-parentheses): why is a stream expression, not an operand
#define EMBER_REQUIRE_OR_SKIP(condition, why)                                     \
  do {                                                                            \
    if (!(condition)) {                                                           \
      if (::ember::test::running_in_ci()) FAIL() << "required under CI: " << why; \
      GTEST_SKIP() << why;                                                        \
    }                                                                             \
  } while (0)
// NOLINTEND(bugprone-macro-parentheses)

// Defined in builds under AddressSanitizer (GCC spells it __SANITIZE_ADDRESS__, clang
// __has_feature), for the tests that cannot run there or would take minutes.
#if defined(__SANITIZE_ADDRESS__)
#define EMBER_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define EMBER_TEST_ASAN 1
#endif
#endif
