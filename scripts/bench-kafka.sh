#!/usr/bin/env bash
# Consumer-group figures for BENCHMARKS.md, against a real Kafka-protocol
# broker (Tansu, as scripts/test.sh installs it) on loopback:
#  * the spans/s `tracelens send --kafka-brokers` writes (the Collector's
#    record layout: one record per service and trace, keyed by trace id);
#  * consume throughput of one `tracelens serve` member catching up with a
#    full topic (every span analysed, published as partials and read back);
#  * end-to-end lag at a steady rate: from the last span written to every
#    span counted in the member's answers (trace idle timeout 1 s, publish
#    interval 1 s included).
#
# Usage: scripts/bench-kafka.sh [SPANS] [RATE]   (default: 1000000 spans, 20000 spans/s)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tracelens-target}"
cargo build --release --locked --quiet --bin tracelens
bin="$CARGO_TARGET_DIR/release/tracelens"
tansu="${TRACELENS_TEST_TANSU:-$HOME/.cache/tansu-0.6.0-libsql/bin/tansu}"
[ -x "$tansu" ] || { echo "bench-kafka.sh: $tansu missing (scripts/test.sh installs it)" >&2; exit 1; }
spans=${1:-1000000}
rate=${2:-20000}
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
api=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
(cd "$work" && RUST_LOG=error exec "$tansu" broker --listener-url "tcp://127.0.0.1:$port" \
  --advertised-listener-url "tcp://127.0.0.1:$port" --storage-engine sqlite://tansu.db > /dev/null 2>&1) &
pids+=($!)
sleep 1
"$tansu" topic create --broker "tcp://127.0.0.1:$port" --partitions 6 otlp_spans > /dev/null

now() { date +%s.%N; }
cpu() { # pid: user+system CPU seconds so far
  awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$1/stat"
}
counted() { curl -s "127.0.0.1:$api/api/v1/status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["live"]["spans_accepted"])' 2>/dev/null || echo 0; }
wait_counted() { # spans
  until [ "$(counted)" -ge "$1" ]; do sleep 0.05; done
}

"$bin" generate --spans "$spans" --seed 1 --format otlp-protobuf-stream -o "$work/a.pb" 2> "$work/gen.log"
n=$(grep -o '[0-9]* spans' "$work/gen.log" | cut -d' ' -f1)
t0=$(now)
"$bin" send --kafka-brokers "127.0.0.1:$port" "$work/a.pb" 2> "$work/send.log"
t1=$(now)
printf '%-58s %10.2f s %12.0f spans/s\n' "send --kafka-brokers ($n spans)" "$(echo "$t1 - $t0" | bc -l)" "$(echo "$n / ($t1 - $t0)" | bc -l)"

broker_cpu0=$(cpu "${pids[0]}")
t0=$(now)
"$bin" serve --grpc-addr 127.0.0.1:0 --http-addr 127.0.0.1:0 --api-addr "127.0.0.1:$api" --data-dir "$work/data" \
  --trace-idle 1s --kafka-brokers "127.0.0.1:$port" --kafka-instance-id bench-0 2> "$work/serve.log" &
pids+=($!)
wait_counted "$n"
t1=$(now)
rss=$(ps -o rss= -p "${pids[-1]}")
member_cpu=$(cpu "${pids[-1]}")
broker_cpu=$(echo "$(cpu "${pids[0]}") - $broker_cpu0" | bc -l)
printf '%-58s %10.2f s %12.0f spans/s  (RSS %d MiB)\n' "one member catches up with $n spans on 6 partitions" \
  "$(echo "$t1 - $t0" | bc -l)" "$(echo "$n / ($t1 - $t0)" | bc -l)" "$((rss / 1024))"
printf '%-58s %10.2f s %12.0f spans/CPU-s\n' "  the member's CPU time" "$member_cpu" "$(echo "$n / $member_cpu" | bc -l)"
printf '%-58s %10.2f s\n' "  the broker's CPU time meanwhile (same 2 cores)" "$broker_cpu"

"$bin" generate --spans "$((rate * 20))" --seed 2 --format otlp-protobuf-stream -o "$work/b.pb" 2> "$work/gen.log"
m=$(grep -o '[0-9]* spans' "$work/gen.log" | cut -d' ' -f1)
"$bin" send --kafka-brokers "127.0.0.1:$port" --rate "$rate" "$work/b.pb" 2> "$work/send.log"
t1=$(now)
wait_counted "$((n + m))"
t2=$(now)
printf '%-58s %10.2f s\n' "end-to-end lag at $rate spans/s (last span written -> counted)" "$(echo "$t2 - $t1" | bc -l)"
