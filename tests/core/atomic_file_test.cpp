// AtomicFile and read_regular_file: every failure leaves the old file whole and no temporary
// behind. Write failures are injected with a file-size limit (RLIMIT_FSIZE, in a child process)
// and, where this process may mount, a full 64 KiB tmpfs.
#include "ember/core/atomic_file.hpp"

#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

#include "../test_env.hpp"
#include "ember/base/error.hpp"

namespace ember {
namespace {

namespace fs = std::filesystem;

class AtomicFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("ember_atomic_test." + std::to_string(::getpid()) + "." +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::permissions(dir_, fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(dir_, ec);
  }
  fs::path dir_;
};

std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void put(const fs::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

std::vector<std::string> listing(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) names.push_back(entry.path().filename());
  std::sort(names.begin(), names.end());
  return names;
}

using ::ember::test::error_of;

TEST_F(AtomicFileTest, WritesANewFileWithTheUmaskMode) {
  const fs::path target = dir_ / "model.bin";
  write_file_atomically(target, "hello");
  EXPECT_EQ(slurp(target), "hello");
  EXPECT_EQ(listing(dir_), std::vector<std::string>{"model.bin"});
  const mode_t mask = ::umask(0);
  ::umask(mask);
  struct stat st {};
  ASSERT_EQ(::stat(target.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0666 & ~mask);
}

TEST_F(AtomicFileTest, ReplacesAFileAndKeepsItsMode) {
  const fs::path target = dir_ / "model.bin";
  put(target, "old contents");
  ASSERT_EQ(::chmod(target.c_str(), 0640), 0);
  write_file_atomically(target, "new");
  EXPECT_EQ(slurp(target), "new");
  struct stat st {};
  ASSERT_EQ(::stat(target.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
  EXPECT_EQ(listing(dir_), std::vector<std::string>{"model.bin"});
}

TEST_F(AtomicFileTest, WithoutCommitTheTargetIsUntouchedAndTheTemporaryRemoved) {
  const fs::path target = dir_ / "model.bin";
  put(target, "old contents");
  {
    AtomicFile file(target);
    file.write(std::string(100000, 'x'));
  }
  EXPECT_EQ(slurp(target), "old contents");
  EXPECT_EQ(listing(dir_), std::vector<std::string>{"model.bin"});
}

// The fixed "<out>.tmp" name of old consumed a user's own file of that name.
TEST_F(AtomicFileTest, TemporaryNamesAreUniqueAndNeverAUsersFile) {
  const fs::path target = dir_ / "keep.bin";
  put(dir_ / "keep.bin.tmp", "the user's file");
  AtomicFile first(target);
  AtomicFile second(target);
  first.write("first");
  second.write("second");
  first.commit();
  EXPECT_EQ(slurp(target), "first");
  second.commit();
  EXPECT_EQ(slurp(target), "second");
  EXPECT_EQ(slurp(dir_ / "keep.bin.tmp"), "the user's file");
  EXPECT_EQ(listing(dir_), (std::vector<std::string>{"keep.bin", "keep.bin.tmp"}));
}

TEST_F(AtomicFileTest, RefusesTargetsThatAreNotRegularFiles) {
  fs::create_directories(dir_ / "subdir");
  EXPECT_NE(
      error_of([&] { write_file_atomically(dir_ / "subdir", "x"); }).find("is not a regular file"),
      std::string::npos);
  ASSERT_EQ(::mkfifo((dir_ / "fifo").c_str(), 0600), 0);
  EXPECT_NE(
      error_of([&] { write_file_atomically(dir_ / "fifo", "x"); }).find("is not a regular file"),
      std::string::npos);
  // As root, the old rename replaced a device node itself. The node is the test's own twin of
  // /dev/null, so that a regression replaces nothing the system needs.
  if (::mknod((dir_ / "null").c_str(), S_IFCHR | 0666, makedev(1, 3)) == 0) {
    EXPECT_NE(
        error_of([&] { write_file_atomically(dir_ / "null", "x"); }).find("not a regular file"),
        std::string::npos);
    struct stat st {};
    ASSERT_EQ(::stat((dir_ / "null").c_str(), &st), 0);
    EXPECT_TRUE(S_ISCHR(st.st_mode));
    fs::remove(dir_ / "null");
  }
  EXPECT_NE(error_of([&] {
              write_file_atomically(dir_ / "missing" / "m.bin", "x");
            }).find("cannot create a temporary file"),
            std::string::npos);
  EXPECT_EQ(listing(dir_), (std::vector<std::string>{"fifo", "subdir"}));
}

// Refused even for root, who could write it: read-only marks a file the user means to keep.
TEST_F(AtomicFileTest, RefusesAReadOnlyTarget) {
  const fs::path target = dir_ / "model.bin";
  put(target, "keep me");
  ASSERT_EQ(::chmod(target.c_str(), 0444), 0);
  EXPECT_NE(error_of([&] { write_file_atomically(target, "x"); }).find("read-only"),
            std::string::npos);
  EXPECT_EQ(slurp(target), "keep me");
  EXPECT_EQ(listing(dir_), std::vector<std::string>{"model.bin"});
}

TEST_F(AtomicFileTest, FollowsASymbolicLink) {
  put(dir_ / "real.bin", "old");
  fs::create_symlink("real.bin", dir_ / "link.bin");
  write_file_atomically(dir_ / "link.bin", "new");
  EXPECT_TRUE(fs::is_symlink(dir_ / "link.bin"));
  EXPECT_EQ(slurp(dir_ / "real.bin"), "new");
}

// A full disk, simulated by a file-size limit: the write fails with EFBIG where ENOSPC would.
// The limit is process-wide, so the write runs in a child.
TEST_F(AtomicFileTest, AFailedWriteKeepsTheOldFile) {
  const fs::path target = dir_ / "model.bin";
  put(target, "old contents");
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    std::signal(SIGXFSZ, SIG_IGN);
    const rlimit limit{4096, 4096};
    ::setrlimit(RLIMIT_FSIZE, &limit);
    const std::string message =
        error_of([&] { write_file_atomically(target, std::string(100000, 'x')); });
    ::_exit(message.find("cannot write") != std::string::npos ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "the write did not fail with a 'cannot write' error";
  EXPECT_EQ(slurp(target), "old contents");
  EXPECT_EQ(listing(dir_), std::vector<std::string>{"model.bin"});
}

TEST_F(AtomicFileTest, AFullFileSystemKeepsTheOldFile) {
  const fs::path mount_point = dir_ / "small";
  fs::create_directories(mount_point);
  EMBER_REQUIRE_OR_SKIP(::mount("tmpfs", mount_point.c_str(), "tmpfs", 0, "size=64k") == 0,
                        "cannot mount a tmpfs here (needs root): " << std::strerror(errno));
  struct Unmount {
    const fs::path& at;
    ~Unmount() { ::umount(at.c_str()); }
  } unmount{mount_point};
  const fs::path target = mount_point / "model.bin";
  write_file_atomically(target, "old contents");
  const std::string message =
      error_of([&] { write_file_atomically(target, std::string(1 << 20, 'x')); });
  EXPECT_NE(message.find("No space left"), std::string::npos) << message;
  EXPECT_EQ(slurp(target), "old contents");
  EXPECT_EQ(listing(mount_point), std::vector<std::string>{"model.bin"});
}

TEST_F(AtomicFileTest, ReadsRegularFilesWithinTheLimit) {
  put(dir_ / "a.txt", "abc");
  EXPECT_EQ(read_regular_file(dir_ / "a.txt", 3), "abc");
  EXPECT_NE(error_of([&] { (void)read_regular_file(dir_ / "a.txt", 2); }).find("larger than"),
            std::string::npos);
  put(dir_ / "empty", "");
  EXPECT_EQ(read_regular_file(dir_ / "empty", 0), "");
  EXPECT_NE(error_of([&] { (void)read_regular_file(dir_ / "none", 10); }).find("cannot open"),
            std::string::npos);
}

// A FIFO used to block forever and /dev/zero to grow without bound.
TEST_F(AtomicFileTest, ReadRefusesFifosDevicesAndDirectories) {
  ASSERT_EQ(::mkfifo((dir_ / "fifo").c_str(), 0600), 0);
  for (const fs::path& path : {dir_ / "fifo", fs::path("/dev/zero"), dir_}) {
    SCOPED_TRACE(path);
    EXPECT_NE(error_of([&] { (void)read_regular_file(path, 1 << 20); }).find("not a regular file"),
              std::string::npos);
  }
}

}  // namespace
}  // namespace ember
