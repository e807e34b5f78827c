#!/usr/bin/env bash
# Reproduces every figure of docs/performance.md (one line per figure, under 10 minutes on
# 2 cores): builds cmafleet in release mode and runs the fleet benchmark against the
# simulator on loopback. Options go to the benchmark, e.g.
#   benches/fleet.sh --only efficiency --time-scale 60 --keep /tmp/fleet-bench
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo bench --bench fleet -- "$@"
