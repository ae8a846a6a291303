#include "persistence/jsonl_writer.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <stdexcept>
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

void jsonl_writer::flush() {
  size_t off = 0;
  while (off < buffer_.size()) {
    auto n = ::write(fd_, buffer_.data() + off, buffer_.size() - off);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      throw std::runtime_error("cannot write " + path_ + ": " +
                               std::strerror(errno));
    }
    off += static_cast<size_t>(n);
  }
  buffer_.clear();
}

uint64_t jsonl_writer::last_seq(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return 0;
  struct stat st {};
  uint64_t result = 0;
  if (::fstat(fd, &st) == 0 && st.st_size > 0) {
    off_t len = st.st_size < 65536 ? st.st_size : 65536;
    std::string tail(static_cast<size_t>(len), '\0');
    if (::pread(fd, tail.data(), tail.size(), st.st_size - len) == len) {
      // Walk back over lines until one parses with a seq.
      size_t end = tail.size();
      while (end > 0) {
        size_t nl = tail.rfind('\n', end - 1);
        size_t start = nl == std::string::npos ? 0 : nl + 1;
        if (end > start) {
          auto j = nlohmann::json::parse(tail.substr(start, end - start),
                                         nullptr, false);
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
    }
  }
  ::close(fd);
  return result;
}

} // namespace bgagent
