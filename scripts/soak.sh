#!/usr/bin/env bash
# The soak suite (not part of the test command, which runs a short version
# of each): on a release build,
#   * crash cycles (tests/soak.rs): senders at full speed over OTLP/HTTP and
#     OTLP/gRPC, kill -9 at a random moment (during compaction, during the
#     restore), restart; every acknowledged trace readable at once with
#     exactly its spans, every kept trace counted once in the graph at the
#     end, the data directory bounded;
#   * overload (tests/soak.rs): four senders at full speed for 60 s against
#     a --max-memory budget; peak memory under it, every acknowledged trace
#     counted once;
#   * schemathesis against the API's OpenAPI description, with many more
#     examples per operation and a seed of its own.
# Prints each run's summary; exits 1 when either finds a problem.
#
# Usage: scripts/soak.sh [CYCLES] [EXAMPLES]   (defaults: 100 cycles, 1000 examples)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tracelens-target}"
cycles=${1:-100}
examples=${2:-1000}
[ -x .venv/bin/schemathesis ] || { echo "run scripts/test.sh once first (it installs .venv)" >&2; exit 2; }
summary=$(mktemp)
trap 'rm -f "$summary"' EXIT
status=0

# Runs one test of tests/soak.rs with the given environment; prints the
# summary it writes, or marks the run failed.
soak() {
  local name=$1 filter=$2 start
  shift 2
  echo "== $name"
  start=$(date +%s)
  if env "$@" TRACELENS_SOAK_SUMMARY="$summary" TRACELENS_OVERLOAD_SUMMARY="$summary" \
      cargo test --release --locked --test soak -- --nocapture "$filter"; then
    echo "$name: $(cat "$summary") ($(( $(date +%s) - start )) s)"
  else
    echo "$name: FAILED" >&2
    status=1
  fi
}
soak "crash cycles" crash_cycles TRACELENS_SOAK_CYCLES="$cycles"
soak "overload" overload TRACELENS_OVERLOAD_SECONDS=60

echo "== schemathesis: $examples examples per operation"
seed=$(date +%s)
if TRACELENS_SCHEMATHESIS_EXAMPLES=$examples TRACELENS_SCHEMATHESIS_SEED=$seed \
    cargo test --release --locked --test serve -- --exact schemathesis_finds_no_server_error_or_undocumented_answer; then
  echo "schemathesis: $examples examples per operation, seed $seed: no failure"
else
  echo "schemathesis: FAILED with seed $seed" >&2
  status=1
fi
exit $status
