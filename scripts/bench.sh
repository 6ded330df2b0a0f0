#!/usr/bin/env bash
# Runs the benchmark scenarios against the local services and writes
# bench/results/*.json and BENCHMARKS.md. Expects `make services tools build`.
#
#   scripts/bench.sh [--quick] [bench flags...]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${root}"
# shellcheck source=SCRIPTDIR/env.sh
source scripts/env.sh
exec bin/bench "$@"
