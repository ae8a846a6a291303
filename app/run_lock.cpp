#include "app/run_lock.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include "app/errors.hpp"

namespace bgagent {

run_lock::run_lock(const std::string& db_path) {
  auto path = db_path + ".lock";
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0)
    throw usage_error("cannot create lock file " + path + ": " +
                      std::strerror(errno));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd_);
    fd_ = -1;
    throw usage_error("database " + db_path +
                      " is in use by another `bgagent run` (lock " + path +
                      ")");
  }
}

bool run_lock::held(const std::string& db_path) {
  auto path = db_path + ".lock";
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return false;
  bool taken = ::flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
  ::close(fd);
  return taken;
}

run_lock::~run_lock() {
  if (fd_ >= 0)
    ::close(fd_);
}

} // namespace bgagent
