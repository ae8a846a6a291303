// An append-only JSON Lines file: the audit log and the alerts file.
//
// Contract: lines are appended in the order given and reach the file on
// flush() in one write each batch, so a crash never interleaves or reorders
// them. The file is never truncated or rewritten. Errors throw
// std::runtime_error naming the file.
//
// append_locked() is for a log several processes append to (the audit log:
// a `run` and a `submit` at the same time): under an exclusive flock() on
// the file it tells the caller the `seq` of the file's last complete line
// and writes what the caller chose to append, in one write. A line torn by
// a crash (no final newline) is ended first, so it never glues onto ours.
#pragma once

#include <cstdint>
#include <functional>
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

  // Under an exclusive lock on the file: `choose(last_seq, out)` gets the
  // seq of the file's last complete line (0 when none), appends whole lines
  // (each ending with a newline) to `out`, which is then written in one
  // write, and returns the seq of the last line it appended (last_seq when
  // none). Anything buffered by append() is written first.
  void append_locked(
    const std::function<uint64_t(uint64_t last_seq, std::string& out)>&
      choose);
  // The seq of the file's last complete line, read under the lock.
  uint64_t last_seq_locked();

  // The `seq` of the last complete line of an existing file, or 0: lets a
  // resumed auditor keep seq strictly increasing across runs.
  static uint64_t last_seq(const std::string& path);

private:
  // Reads the tail of the file (of `size` bytes): the last seq, and whether
  // the file ends with a newline.
  void scan_tail(int64_t size);
  void write_all(const std::string& data);

  std::string path_;
  int fd_ = -1;
  std::string buffer_;
  // What the file looked like after our last locked write (or scan): if its
  // size is unchanged, nobody else wrote since.
  int64_t known_size_ = -1;
  uint64_t known_last_seq_ = 0;
  bool ends_with_newline_ = true;
};

} // namespace bgagent
