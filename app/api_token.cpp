#include "app/api_token.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "app/errors.hpp"
#include "app/random_hex.hpp"

namespace bgagent {

namespace {

std::string read_token_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    throw usage_error(path + ": cannot read the API token: " +
                      std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw usage_error(path + ": not a regular file (the API token file)");
  }
  if ((st.st_mode & 077) != 0) {
    ::close(fd);
    char mode[8];
    std::snprintf(mode, sizeof(mode), "%04o",
                  static_cast<unsigned>(st.st_mode & 07777));
    throw usage_error(path + ": mode " + mode +
                      " lets others read the API token; run `chmod 600 " +
                      path + "` (or delete it for a new token)");
  }
  char buf[600];
  auto n = ::read(fd, buf, sizeof(buf));
  ::close(fd);
  std::string token(buf, n > 0 ? static_cast<size_t>(n) : 0);
  while (!token.empty() && (token.back() == '\n' || token.back() == '\r'))
    token.pop_back();
  if (token.size() < 16 || token.size() > 512 ||
      token.find_first_of(" \t\r\n") != std::string::npos)
    throw usage_error(path + ": does not hold one API token (16 to 512 "
                             "characters); delete it for a new token");
  return token;
}

} // namespace

api_token resolve_api_token(const std::string& configured,
                            const std::string& db_path) {
  if (!configured.empty())
    return {configured, "BG_AGENT_API_TOKEN"};
  auto path = db_path + ".api-token";
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0)
    return {read_token_file(path), path};
  // Written whole to a file of its own, then linked into place: a crash
  // leaves either no token file or a complete one, and of two processes
  // starting at once the second reads the first's.
  auto tmp = path + ".new-" + std::to_string(::getpid());
  ::unlink(tmp.c_str());
  int fd = ::open(tmp.c_str(),
                  O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0)
    throw usage_error(path + ": cannot create the API token file: " +
                      std::strerror(errno));
  auto token = random_hex(32);
  auto line = token + "\n";
  bool ok = ::write(fd, line.data(), line.size()) ==
              static_cast<ssize_t>(line.size()) &&
            ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) {
    ::unlink(tmp.c_str());
    throw usage_error(path + ": cannot write the API token file");
  }
  int linked = ::link(tmp.c_str(), path.c_str());
  int link_errno = errno;
  ::unlink(tmp.c_str());
  if (linked != 0) {
    if (link_errno == EEXIST)
      return {read_token_file(path), path};
    throw usage_error(path + ": cannot create the API token file: " +
                      std::strerror(link_errno));
  }
  return {token, path};
}

bool token_matches(const std::string& presented, const std::string& expected) {
  if (presented.size() != expected.size())
    return false;
  return CRYPTO_memcmp(presented.data(), expected.data(), expected.size()) ==
         0;
}

} // namespace bgagent
