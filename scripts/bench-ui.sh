#!/usr/bin/env bash
# Figures of the pictures for BENCHMARKS.md, in Debian's headless Chromium
# (as scripts/test.sh installs it, driven by tests/browser/ui.mjs):
#  * a report of a 200-service, 10,000-edge graph holding a 100,000-span
#    trace: time from opening the file to the graph drawn, and from
#    choosing the trace to its waterfall drawn;
#  * the size of the report of 1M generated spans.
#
# Usage: scripts/bench-ui.sh [RUNS]   (default 3 runs of the browser timing)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tracelens-target}"
cargo build --release --locked --quiet --bin tracelens
bin="$CARGO_TARGET_DIR/release/tracelens"
[ -d tests/browser/node_modules/playwright-core ] || { echo "bench-ui.sh: run scripts/test.sh first (it installs Chromium and playwright-core)" >&2; exit 1; }
runs=${1:-3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# 10,000 three-span traces, one per (caller, callee) pair of 200 services
# (an internal root, its client span, the callee's server span: no edge
# from outside), and one trace of 100,000 in-process spans of one service:
# 1,000 sequential steps, each with 99 overlapping children.
python3 - "$work/graph.jsonl" <<'PY'
import json, sys
out = open(sys.argv[1], "w")
T0 = 1_793_527_200_000_000_000
def svc(i): return f"svc-{i:03d}"
def span(tid, sid, parent, name, kind, start, end, error=False):
    s = {"traceId": tid, "spanId": sid, "name": name, "kind": kind,
         "startTimeUnixNano": str(start), "endTimeUnixNano": str(end)}
    if parent: s["parentSpanId"] = parent
    if error: s["status"] = {"code": 2}
    return s
def write(groups):
    rs = [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": name}}]},
           "scopeSpans": [{"scope": {}, "spans": spans}]} for name, spans in groups.items()]
    out.write(json.dumps({"resourceSpans": rs}, separators=(",", ":")) + "\n")
for i in range(10_000):
    a = i % 200
    b = (a + 1 + i // 200) % 200
    tid = f"{i + 1:032x}"
    t = T0 + i * 1_000_000
    d = 1_000_000 + (i * 7919) % 50_000_000
    write({svc(a): [span(tid, f"{3*i+1:016x}", None, f"job {b % 10}", 1, t, t + d + 200_000),
                    span(tid, f"{3*i+2:016x}", f"{3*i+1:016x}", f"call {svc(b)}", 3, t + 100_000, t + d + 100_000)],
           svc(b): [span(tid, f"{3*i+3:016x}", f"{3*i+2:016x}", f"GET /{b}", 2, t + 150_000, t + d + 50_000, error=(i % 97 == 0))]})
tid = "f" * 32
groups = {}
n = 1
root = f"{n:016x}"
t = T0
groups.setdefault(svc(0), []).append(span(tid, root, None, "batch", 1, t, t + 1000 * 1_100_000 + 1_000))
for c in range(1000):
    n += 1
    cid = f"{n:016x}"
    cs = t + 500 + c * 1_100_000
    groups.setdefault(svc(0), []).append(span(tid, cid, root, f"step {c % 50}", 1, cs, cs + 1_000_000))
    for g in range(99):
        n += 1
        gs = cs + 1_000 + g * 5_000
        groups.setdefault(svc(0), []).append(span(tid, f"{n:016x}", cid, f"work {g % 20}", 1, gs, gs + 900_000 - g * 5_000))
    if c % 10 == 9:
        write(groups)
        groups = {}
PY
"$bin" report "$work/graph.jsonl" -o "$work/graph.html" 2>&1 | sed 's/^/  /'
echo "report of the 200-service graph: $(stat -c %s "$work/graph.html") bytes"
for run in $(seq "$runs"); do
  node tests/browser/ui.mjs bench "file://$work/graph.html"
done

"$bin" generate --spans 1000000 --format otlp-protobuf-stream -o "$work/1m.pb" 2>/dev/null
/usr/bin/time -f "%e s, %M KiB peak" "$bin" report "$work/1m.pb" -o "$work/1m.html" 2>&1 | sed 's/^/  /'
echo "report of 1M generated spans: $(stat -c %s "$work/1m.html") bytes"
