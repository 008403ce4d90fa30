#!/usr/bin/env bash
# Restart figures for BENCHMARKS.md: how soon `tracelens serve` answers and
# how long it takes to restore what its data directory kept, with its peak
# memory, for data directories holding generated shop spans as compacted
# Parquet files (1M spans per file, in this hour's partition).
#
# Usage: scripts/bench-restore.sh [SPANS...]   (default: 1000000 5000000)
# Needs curl and /usr/bin/time (Debian packages "curl", "time").
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tracelens-target}"
cargo build --release --locked --quiet
bin="$CARGO_TARGET_DIR/release/tracelens"
work=$(mktemp -d)
server=""
trap '[ -n "$server" ] && pkill -P "$server"; rm -rf "$work"' EXIT
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(1000000 5000000)

now() { date +%s.%N; }

printf '%-14s %16s %14s %12s %12s\n' "spans" "listening (s)" "restored (s)" "spans/s" "peak RSS MiB"
for n in "${sizes[@]}"; do
  data="$work/data-$n"
  partition="$data/parquet/date=$(date -u +%F)/hour=$(date -u +%H)"
  mkdir -p "$partition"
  left=$n file=1
  while [ "$left" -gt 0 ]; do
    chunk=$(( left < 1000000 ? left : 1000000 ))
    "$bin" generate --spans "$chunk" --seed "$file" --start "$(date -u -d '-30 min' +%FT%TZ)" \
      --format otlp-protobuf-stream -o "$work/dump.pb" 2> /dev/null
    "$bin" export "$work/dump.pb" --table spans --format parquet \
      -o "$partition/$(printf 'wal-%020d.parquet' "$file")" 2> /dev/null
    left=$(( left - chunk )) file=$(( file + 1 ))
  done
  rm -f "$work/dump.pb"
  start=$(now)
  /usr/bin/time -f "%M" -o "$work/rss" "$bin" serve --data-dir "$data" --grpc-addr 127.0.0.1:0 \
    --http-addr 127.0.0.1:0 --api-addr 127.0.0.1:0 2> "$work/log" &
  server=$!
  until grep -q "listening:" "$work/log" 2> /dev/null; do sleep 0.01; done
  api=$(grep -o 'api [0-9.:]*' "$work/log" | cut -d' ' -f2)
  until curl -sf "http://$api/readyz" > /dev/null; do sleep 0.01; done
  ready=$(echo "$(now) - $start" | bc)
  until [ "$(curl -s "http://$api/readyz")" = "ready" ]; do sleep 0.05; done
  restored=$(echo "$(now) - $start" | bc)
  pkill -INT -P "$server"
  wait "$server" || true
  server=""
  printf '%-14s %16.3f %14.2f %12.0f %12.1f\n' "$n" "$ready" "$restored" \
    "$(echo "$n / $restored" | bc -l)" "$(echo "$(cat "$work/rss") / 1024" | bc -l)"
  rm -rf "$data"
done
