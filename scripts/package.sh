#!/usr/bin/env bash
# Builds bgagent and its Debian package: build-deb/bgagent_VERSION_ARCH.deb,
# installable with `sudo apt-get install ./build-deb/bgagent_*.deb` on
# Debian 12 (its dependencies are Debian's own packages).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/install-deps.sh" --tests
BUILD_TARGETS="bgagent" "$root/scripts/build.sh" "$root/build-deb" \
  -DCMAKE_INSTALL_PREFIX=/usr
(cd "$root/build-deb" && cpack -G DEB)
ls "$root"/build-deb/bgagent_*.deb
