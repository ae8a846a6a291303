// Installable as users install a service: the .deb that `cpack -G DEB`
// makes from this build, looked at with Debian's own tool (dpkg-deb): its
// files in the usual places, its declared dependencies, a unit that starts
// `serve`, and a packaged binary that runs.
#include <catch2/catch.hpp>

#include <filesystem>
#include <unistd.h>

#include "tests/support/process.hpp"
#include "tests/temp_dir.hpp"

using namespace bgagent;
using namespace bgagent::testing;

namespace {

std::string shell(const std::string& command, const std::string& cwd) {
  auto r = run({"/bin/sh", "-c", command}, cwd, {}, 300);
  INFO(command << "\n" << r.err);
  REQUIRE(r.exit_code == 0);
  return r.out;
}

} // namespace

TEST_CASE("the .deb holds the binary, the systemd unit and the example "
          "environment file in the usual places and declares its Debian "
          "dependencies",
          "[package]") {
  temp_dir dir;
  shell("cpack -G DEB -B '" + dir.path("out") + "' --config '" +
          std::string(BGAGENT_BUILD_DIR) + "/CPackConfig.cmake'",
        dir.path());
  std::string deb;
  for (auto& e : std::filesystem::directory_iterator(dir.path("out")))
    if (e.path().extension() == ".deb")
      deb = e.path().string();
  REQUIRE(!deb.empty());
  CHECK(std::filesystem::path(deb).filename().string().rfind(
          "bgagent_" BGAGENT_VERSION "_", 0) == 0);

  CHECK(shell("dpkg-deb -f '" + deb + "' Package", dir.path()) ==
        "bgagent\n");
  auto depends = shell("dpkg-deb -f '" + deb + "' Depends", dir.path());
  for (auto* lib : {"libcaf-core0.17", "libcaf-io0.17", "libcaf-openssl0.17",
                    "libcpp-httplib0.11", "libcurl4", "libsqlite3-0",
                    "libssl3", "libyaml-cpp0.7", "libspdlog1.10",
                    "libstdc++6", "libc6"}) {
    INFO(depends);
    CHECK(depends.find(lib) != std::string::npos);
  }
#ifndef __SANITIZE_ADDRESS__
  // The allocator bgagent is linked with (the sanitizers bring their own).
  CHECK(depends.find("libtcmalloc-minimal4") != std::string::npos);
#endif
  auto files = shell("dpkg-deb -c '" + deb + "'", dir.path());
  for (auto* path : {"./usr/bin/bgagent",
                     "./usr/lib/systemd/system/bgagent.service",
                     "./usr/share/bgagent/bgagent.env",
                     "./usr/share/doc/bgagent/README.md"}) {
    INFO(path);
    CHECK(files.find(std::string(path) + "\n") != std::string::npos);
  }
  CHECK(files.find("rwxr-xr-x root/root") != std::string::npos);

  shell("dpkg-deb -x '" + deb + "' root", dir.path());
  auto unit = read_file(dir.path("root/usr/lib/systemd/system/bgagent.service"));
  CHECK(unit.find("\nExecStart=/usr/bin/bgagent serve\n") != std::string::npos);
  CHECK(unit.find("\nSuccessExitStatus=143\n") != std::string::npos);
  CHECK(unit.find("\nEnvironmentFile=-/etc/bgagent/bgagent.env\n") !=
        std::string::npos);
  CHECK(unit.find("\nStateDirectory=bgagent\n") != std::string::npos);
  // systemd's own check of the unit (pointed at the extracted binary, as
  // the package is not installed here).
  if (access("/usr/bin/systemd-analyze", X_OK) == 0) {
    auto copy = unit;
    auto binary = dir.path("root/usr/bin/bgagent");
    for (auto p = copy.find("/usr/bin/bgagent"); p != std::string::npos;
         p = copy.find("/usr/bin/bgagent", p + binary.size()))
      copy.replace(p, 16, binary);
    write_file(dir.path("bgagent.service"), copy);
    auto verify = run({"/usr/bin/systemd-analyze", "verify", "--man=no",
                       dir.path("bgagent.service")},
                      dir.path());
    INFO(verify.out << verify.err);
    CHECK(verify.exit_code == 0);
    CHECK(verify.err.empty());
  }
  // The packaged (stripped) binary runs.
  auto version = run({dir.path("root/usr/bin/bgagent"), "--version"},
                     dir.path());
  CHECK(version.exit_code == 0);
  CHECK(version.out == "bgagent " BGAGENT_VERSION "\n");
  // The example environment file is one bgagent reads without a warning.
  auto env = read_file(dir.path("root/usr/share/bgagent/bgagent.env"));
  write_file(dir.path(".env"), env);
  auto check = run({dir.path("root/usr/bin/bgagent"), "status"}, dir.path());
  CHECK(check.err.find("is not a bgagent variable") == std::string::npos);
  CHECK(check.err.find("BG_AGENT_") == std::string::npos);
}
