#include "persistence/jsonl_writer.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <stdexcept>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

namespace bgagent {

jsonl_writer::jsonl_writer(std::string path) : path_(std::move(path)) {
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0)
    throw std::runtime_error("cannot open " + path_ + ": " +
                             std::strerror(errno));
  // A line torn by a crash of an earlier process must not glue onto ours.
  struct stat st {};
  if (::fstat(fd_, &st) == 0 && st.st_size > 0) {
    int rfd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    char last = '\n';
    if (rfd >= 0) {
      if (::pread(rfd, &last, 1, st.st_size - 1) != 1)
        last = '\n';
      ::close(rfd);
    }
    if (last != '\n')
      buffer_ = "\n";
  }
}

jsonl_writer::~jsonl_writer() {
  try {
    flush();
  } catch (...) {
  }
  if (fd_ >= 0)
    ::close(fd_);
}

void jsonl_writer::append(const std::string& line) {
  buffer_ += line;
  buffer_ += '\n';
}

void jsonl_writer::write_all(const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    auto n = ::write(fd_, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      throw std::runtime_error("cannot write " + path_ + ": " +
                               std::strerror(errno));
    }
    off += static_cast<size_t>(n);
  }
}

void jsonl_writer::flush() {
  write_all(buffer_);
  buffer_.clear();
}

namespace {

// The seq of the last complete line among the last 64 KiB of `fd` (`size`
// bytes long), or 0; `last` gets the file's last byte.
uint64_t scan_last_seq(int fd, off_t size, char& last) {
  uint64_t result = 0;
  last = '\n';
  if (size <= 0)
    return 0;
  off_t len = size < 65536 ? size : 65536;
  std::string tail(static_cast<size_t>(len), '\0');
  if (::pread(fd, tail.data(), tail.size(), size - len) != len)
    return 0;
  last = tail.back();
  // Walk back over lines until one parses with a seq (a torn last line
  // does not).
  size_t end = tail.size();
  while (end > 0) {
    size_t nl = tail.rfind('\n', end - 1);
    size_t start = nl == std::string::npos ? 0 : nl + 1;
    if (end > start) {
      auto j = nlohmann::json::parse(tail.substr(start, end - start), nullptr,
                                     false);
      if (j.is_object() && j.contains("seq") &&
          j["seq"].is_number_unsigned()) {
        result = j["seq"].get<uint64_t>();
        break;
      }
    }
    if (nl == std::string::npos)
      break;
    end = nl;
  }
  return result;
}

// An exclusive flock() for the length of a scope.
class file_lock {
public:
  file_lock(int fd, const std::string& path) : fd_(fd) {
    while (::flock(fd_, LOCK_EX) != 0) {
      if (errno != EINTR)
        throw std::runtime_error("cannot lock " + path + ": " +
                                 std::strerror(errno));
    }
  }
  ~file_lock() { ::flock(fd_, LOCK_UN); }
  file_lock(const file_lock&) = delete;
  file_lock& operator=(const file_lock&) = delete;

private:
  int fd_;
};

} // namespace

void jsonl_writer::scan_tail(int64_t size) {
  // The append descriptor is write-only: read through another one.
  int rfd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (rfd < 0)
    throw std::runtime_error("cannot read " + path_ + ": " +
                             std::strerror(errno));
  char last = '\n';
  known_last_seq_ = scan_last_seq(rfd, static_cast<off_t>(size), last);
  ::close(rfd);
  ends_with_newline_ = last == '\n';
  known_size_ = size;
}

void jsonl_writer::append_locked(
  const std::function<uint64_t(uint64_t, std::string&)>& choose) {
  file_lock lock(fd_, path_);
  struct stat st {};
  if (::fstat(fd_, &st) != 0)
    throw std::runtime_error("cannot stat " + path_ + ": " +
                             std::strerror(errno));
  if (!buffer_.empty()) {
    // Lines appended before (numbered by the writer's owner).
    write_all(buffer_);
    buffer_.clear();
    known_size_ = -1;
    if (::fstat(fd_, &st) != 0)
      throw std::runtime_error("cannot stat " + path_ + ": " +
                               std::strerror(errno));
  }
  if (static_cast<int64_t>(st.st_size) != known_size_)
    scan_tail(static_cast<int64_t>(st.st_size));
  std::string out;
  auto last = choose(known_last_seq_, out);
  if (out.empty())
    return;
  if (!ends_with_newline_ && known_size_ > 0)
    out.insert(out.begin(), '\n');
  write_all(out);
  known_last_seq_ = last;
  ends_with_newline_ = true;
  if (::fstat(fd_, &st) == 0)
    known_size_ = static_cast<int64_t>(st.st_size);
  else
    known_size_ = -1;
}

uint64_t jsonl_writer::last_seq_locked() {
  uint64_t last = 0;
  append_locked([&](uint64_t seq, std::string&) {
    last = seq;
    return seq;
  });
  return last;
}

uint64_t jsonl_writer::last_seq(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return 0;
  struct stat st {};
  uint64_t result = 0;
  char last = '\n';
  if (::fstat(fd, &st) == 0)
    result = scan_last_seq(fd, st.st_size, last);
  ::close(fd);
  return result;
}

} // namespace bgagent
