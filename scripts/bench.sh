#!/usr/bin/env bash
# Runs the benchmark scenarios against the local services and writes
# bench/results/*.json and BENCHMARKS.md. Expects `make services tools build`.
# A quick (smoke) run writes to .local/bench-quick/ instead, so that the
# published report changes only with a full run.
#
#   scripts/bench.sh [--quick] [bench flags...]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${root}"
# shellcheck source=SCRIPTDIR/env.sh
source scripts/env.sh
for a in "$@"; do
  if [[ "${a}" == --quick ]]; then
    mkdir -p .local/bench-quick
    exec bin/bench "$@" --out .local/bench-quick --report .local/bench-quick/BENCHMARKS.md
  fi
done
exec bin/bench "$@"
