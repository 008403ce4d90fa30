#!/usr/bin/env bash
# Fuzzes tracelens's decoders with cargo fuzz (libFuzzer, nightly toolchain,
# AddressSanitizer): each target in fuzz/ for SECONDS (default 60), seeded
# with every file of testdata/ and ../shared/testdata/. A crash, leak, timeout
# or out-of-memory leaves its input in fuzz/artifacts/<target>/ and makes the
# script exit 1; each one found becomes a regression test in the normal
# suite.
#
# FUZZ_RUNS=N stops a target after N executions if that comes first (the
# goal in TESTING.md: 10 million executions or an hour).
#
# Usage: [FUZZ_RUNS=N] scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(read_any otlp_request otlp_json_record otlp_structured otlp_differential params wal_segment parquet)
fi
command -v cargo-fuzz >/dev/null 2>&1 || cargo install --locked cargo-fuzz
target_dir="${FUZZ_TARGET_DIR:-$HOME/.cache/tracelens-fuzz-target}"
corpus_root="${FUZZ_CORPUS_DIR:-$HOME/.cache/tracelens-fuzz-corpus}"
failed=()
for t in "${targets[@]}"; do
  corpus="$corpus_root/$t"
  mkdir -p "$corpus"
  # Seeds: every fixture and public dump (decompressed ones too, for the
  # raw-body targets), under 1 MiB each.
  find testdata ../shared/testdata -type f -size -1024k ! -name '*.md' ! -name '*.py' 2>/dev/null |
    while read -r f; do cp -n "$f" "$corpus/seed-$(echo "$f" | tr '/' '_')"; done
  echo "== fuzz $t for ${seconds}s"
  set +e
  cargo +nightly fuzz run --target-dir "$target_dir" "$t" "$corpus" -- \
      -max_total_time="$seconds" -runs="${FUZZ_RUNS:--1}" -max_len=1048576 -rss_limit_mb=4096 -timeout=20 -print_final_stats=1 2>&1 |
    grep -E '^(#[0-9]+.*(DONE|pulse)|==|SUMMARY|Done|stat::number_of_executed_units|stat::peak_rss)|panicked|ERROR'
  status=${PIPESTATUS[0]}
  set -e
  for kind in crash leak timeout oom; do
    if compgen -G "fuzz/artifacts/$t/$kind-*" >/dev/null; then
      status=1
    fi
  done
  if [ "$status" != 0 ]; then
    failed+=("$t")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "scripts/fuzz.sh: findings in ${failed[*]} (inputs in fuzz/artifacts/)" >&2
  exit 1
fi
echo "scripts/fuzz.sh: no crash in ${targets[*]} (${seconds}s each)"
