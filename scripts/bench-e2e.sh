#!/usr/bin/env bash
# End-to-end figures for BENCHMARKS.md: wall time, spans/s and peak memory
# of `tracelens analyze` on generated dumps (shop, and the rich preset at one
# thread and at every core), and of `tracelens generate`.
#
# Usage: scripts/bench-e2e.sh [SPANS...]   (default: 1000000 5000000)
# Needs /usr/bin/time (Debian package "time"). Writes dumps to a temp dir.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tracelens-target}"
cargo build --release --locked --quiet
bin="$CARGO_TARGET_DIR/release/tracelens"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(1000000 5000000)

measure() { # label, command...
  local label=$1; shift
  /usr/bin/time -f "%e %M" -o "$work/time" "$@" > /dev/null 2> "$work/err" || { cat "$work/err" >&2; exit 1; }
  read -r secs kb < "$work/time"
  echo "$label $secs $kb"
}

printf '%-44s %10s %12s %12s\n' "run" "seconds" "spans/s" "peak RSS MiB"
for n in "${sizes[@]}"; do
  for fmt in otlp-protobuf-stream otlp-json-lines; do
    file="$work/$n.$fmt"
    read -r _ secs kb < <(measure gen "$bin" generate --spans "$n" --format "$fmt" -o "$file")
    spans=$(grep -o '[0-9]* spans' "$work/err" | cut -d' ' -f1)
    printf '%-44s %10s %12.0f %12.1f\n' "generate $fmt ($spans spans)" "$secs" "$(echo "$spans / $secs" | bc -l)" "$(echo "$kb / 1024" | bc -l)"
    read -r _ secs kb < <(measure analyze "$bin" analyze "$file")
    printf '%-44s %10s %12.0f %12.1f\n' "analyze $fmt ($(du -m "$file" | cut -f1) MiB)" "$secs" "$(echo "$spans / $secs" | bc -l)" "$(echo "$kb / 1024" | bc -l)"
    rm -f "$file"
  done
done

# The rich preset (about 30 spans per trace, 8+ attributes per span,
# interleaved traces): peak memory at one thread and at every core.
for n in "${sizes[@]}"; do
  for fmt in otlp-protobuf-stream otlp-json-lines; do
    file="$work/rich-$n.$fmt"
    "$bin" generate --preset rich --spans "$n" --format "$fmt" -o "$file" 2> "$work/err"
    spans=$(grep -o '[0-9]* spans' "$work/err" | cut -d' ' -f1)
    for threads in 1 "$(nproc)"; do
      read -r _ secs kb < <(measure analyze "$bin" analyze --threads "$threads" "$file")
      printf '%-44s %10s %12.0f %12.1f\n' "analyze rich $fmt --threads $threads ($(du -m "$file" | cut -f1) MiB)" "$secs" "$(echo "$spans / $secs" | bc -l)" "$(echo "$kb / 1024" | bc -l)"
    done
    rm -f "$file"
  done
done
