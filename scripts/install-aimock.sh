#!/usr/bin/env bash
# Installs @copilotkit/aimock (an independent OpenAI-compatible mock server)
# into .deps/ (git-ignored) for the provider tests. Needs node and npm.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
if [ -x "$root/.deps/node_modules/.bin/aimock" ]; then exit 0; fi
if ! command -v npm >/dev/null; then
  sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq nodejs npm
fi
mkdir -p "$root/.deps"
npm install --prefix "$root/.deps" --no-audit --no-fund --loglevel=error @copilotkit/aimock >/dev/null
