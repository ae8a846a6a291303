#!/usr/bin/env bash
# Configures and builds bgagent.
# Usage: scripts/build.sh [BUILD_DIR] [cmake args...]
# BUILD_TARGETS="bgagent ..." builds only those targets (default: all).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="${1:-$root/build}"
shift || true
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
cmake -S "$root" -B "$dir" "${generator[@]}" -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}" "$@" >/dev/null
targets=()
for t in ${BUILD_TARGETS:-}; do
  targets+=(--target "$t")
done
echo "compiling ${BUILD_TARGETS:-everything} in $dir with $(nproc) job(s)"
start=$(date +%s)
cmake --build "$dir" -j "$(nproc)" "${targets[@]}"
echo "compiled in $(( $(date +%s) - start )) s"
