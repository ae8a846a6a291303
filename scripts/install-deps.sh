#!/usr/bin/env bash
# Installs the Debian 12 packages bgagent builds with (as root, or with
# sudo); with --tests, also what the tests use (tmux: a real terminal for
# the live line's tests; chromium: the dashboard's, headless; dpkg-dev: the
# .deb's dependencies; prometheus: promtool, to check /metrics). Does
# nothing when they are all present already.
set -euo pipefail
packages=(g++ cmake ninja-build pkg-config libcaf-dev libcurl4-openssl-dev
  nlohmann-json3-dev libspdlog-dev catch2 libsqlite3-dev libcli11-dev
  libcpp-httplib-dev libssl-dev sqlite3 curl libvalijson-dev libyaml-cpp-dev
  libgoogle-perftools-dev)
if [ "${1:-}" = "--tests" ]; then
  packages+=(tmux chromium dpkg-dev prometheus)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing ${#missing[@]} Debian package(s) with apt-get (a few" \
       "minutes on a fresh machine): ${missing[*]}"
  start=$(date +%s)
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
  echo "installed in $(( $(date +%s) - start )) s"
fi
