#!/usr/bin/env bash
# Quick start 1: install, build, and run the five sample tasks. With no API
# key set it uses the offline provider; with OPENROUTER_API_KEY set it calls
# OpenRouter. Results land in ./bgagent.db (see `build/bgagent results`).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/install-deps.sh"
# Only the binary: the tests and benchmarks are built by scripts/test.sh.
# A unity build: half the compile time (scripts/test.sh says why).
BUILD_TARGETS=bgagent "$root/scripts/build.sh" "$root/build" -DCMAKE_UNITY_BUILD=ON
"$root/build/bgagent" run --tasks "$root/examples/sample_tasks.jsonl" "$@"
"$root/build/bgagent" results
