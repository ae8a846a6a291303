// One `bgagent run` per database at a time.
//
// Contract: acquire() takes an exclusive flock on "<db>.lock" or throws
// usage_error naming the database; the lock dies with the process, so a
// kill -9 never leaves a stale lock behind. held() says whether a run
// holds it now (without creating the file).
#pragma once

#include <string>

namespace bgagent {

class run_lock {
public:
  explicit run_lock(const std::string& db_path);
  ~run_lock();
  run_lock(const run_lock&) = delete;
  run_lock& operator=(const run_lock&) = delete;

  static bool held(const std::string& db_path);

private:
  int fd_ = -1;
};

} // namespace bgagent
