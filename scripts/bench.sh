#!/usr/bin/env bash
# Every figure in BENCHMARKS.md: the criterion suite, then the binary's
# end-to-end runs with peak memory, the receiver's restart, a Kafka consumer group's throughput and
# lag (needs the Tansu broker scripts/test.sh installs), and the report and web UI in headless Chromium (scripts/bench-ui.sh). Takes about 27 minutes on 2 cores (the
# benches build polars in release first: about 20 more on a cold cache).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tracelens-target}"
cargo bench --locked --benches
scripts/bench-e2e.sh "$@"
scripts/bench-restore.sh
scripts/bench-kafka.sh
scripts/bench-ui.sh
