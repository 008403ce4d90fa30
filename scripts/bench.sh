#!/usr/bin/env bash
# Every figure in BENCHMARKS.md: the criterion suite, then the binary's
# end-to-end runs with peak memory, then the receiver's restart. Takes about 25 minutes on 2 cores (the
# benches build polars in release first: about 20 more on a cold cache).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tracelens-target}"
cargo bench --locked --benches
scripts/bench-e2e.sh "$@"
scripts/bench-restore.sh
