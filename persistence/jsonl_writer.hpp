// An append-only JSON Lines file: the audit log and the alerts file.
//
// Contract: lines are appended in the order given and reach the file on
// flush() in one write each batch, so a crash never interleaves or reorders
// them. The file is never truncated or rewritten. Errors throw
// std::runtime_error naming the file.
#pragma once

#include <cstdint>
#include <string>

namespace bgagent {

class jsonl_writer {
public:
  explicit jsonl_writer(std::string path);
  ~jsonl_writer();
  jsonl_writer(const jsonl_writer&) = delete;
  jsonl_writer& operator=(const jsonl_writer&) = delete;

  const std::string& path() const { return path_; }

  // Buffers one line (without its newline).
  void append(const std::string& line);
  // Writes everything buffered to the file.
  void flush();
  bool has_buffered() const { return !buffer_.empty(); }

  // The `seq` of the last complete line of an existing file, or 0: lets a
  // resumed auditor keep seq strictly increasing across runs.
  static uint64_t last_seq(const std::string& path);

private:
  std::string path_;
  int fd_ = -1;
  std::string buffer_;
};

} // namespace bgagent
