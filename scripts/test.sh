#!/usr/bin/env bash
# Runs every test of tracelens on a fresh machine: installs what the tests
# need, then runs the whole suite (unit, integration, doc tests).
#
# Tests need cargo, Graphviz (`dot` checks the graph command's DOT output),
# curl and jq (the deploy-gate docs' CI snippets run as pasted) and, for the
# receiver's interop tests, the OpenTelemetry Python SDK with
# its OTLP gRPC and HTTP exporters in ./.venv, with pyarrow (another
# Parquet implementation reads the receiver's compacted files) and
# schemathesis (the API against its OpenAPI description), and a Kafka-protocol broker
# (Tansu, from crates.io) for the consumer-group tests, and headless Chromium
# (Debian's chromium and chromium-driver) driven by Playwright (playwright-core
# from npm, in tests/browser) for the report and web UI tests. Tests that need more outside
# parts get their install step here, so this stays the one command that runs
# everything.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
  echo "scripts/test.sh: cargo is required (https://rustup.rs)" >&2
  exit 1
fi
# Debian packages: Graphviz (`dot` checks the graph command's DOT output);
# bash, curl and jq run the snippets of docs/deploy-gates.md as pasted.
missing=()
command -v dot >/dev/null 2>&1 || missing+=(graphviz)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v jq >/dev/null 2>&1 || missing+=(jq)
# Chromium and ChromeDriver for the report and web UI tests; Node.js runs Playwright.
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
command -v node >/dev/null 2>&1 || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "scripts/test.sh: installing ${missing[*]}" >&2
  if [ "$(id -u)" = 0 ]; then sudo=; else sudo=sudo; fi
  $sudo apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c "import opentelemetry.exporter.otlp.proto.grpc, opentelemetry.exporter.otlp.proto.http, pyarrow.parquet, schemathesis" 2>/dev/null; then
  echo "scripts/test.sh: installing the OpenTelemetry Python SDK, OTLP exporters, pyarrow and schemathesis into .venv" >&2
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check \
    "opentelemetry-sdk>=1.30,<2" "opentelemetry-exporter-otlp-proto-grpc>=1.30,<2" "opentelemetry-exporter-otlp-proto-http>=1.30,<2" \
    "pyarrow>=15" "schemathesis>=4.3,<5"
fi
# A real Kafka-protocol broker for the consumer-group tests: Tansu, built
# once from crates.io (about 18 minutes) with its SQLite storage (data that
# survives a broker restart), kept outside the clone.
TANSU_ROOT="${TANSU_ROOT:-$HOME/.cache/tansu-0.6.0-libsql}"
if [ ! -x "$TANSU_ROOT/bin/tansu" ]; then
  echo "scripts/test.sh: installing the Tansu Kafka broker into $TANSU_ROOT (once; about 18 minutes)" >&2
  tansu_build="$(mktemp -d)"
  CARGO_TARGET_DIR="$tansu_build" cargo install --locked --quiet tansu --version 0.6.0 --features libsql --root "$TANSU_ROOT"
  rm -rf "$tansu_build"
fi
export TRACELENS_TEST_TANSU="$TANSU_ROOT/bin/tansu"
# Playwright's library only (it drives the system Chromium; no browser download).
pinned="$(sed -n 's/.*"playwright-core": "\(.*\)".*/\1/p' tests/browser/package.json)"
installed="$(sed -n 's/^  "version": "\(.*\)".*/\1/p' tests/browser/node_modules/playwright-core/package.json 2>/dev/null || true)"
if [ "$pinned" != "$installed" ]; then
  echo "scripts/test.sh: installing playwright-core into tests/browser" >&2
  (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
if [ ! -d ../shared/testdata ]; then
  echo "scripts/test.sh: ../shared/testdata is missing; the public test traces must sit beside the project" >&2
  exit 1
fi

# The layers hold by crate dependencies: the core builds without an async
# runtime, a network stack or polars.
if cargo tree --locked -p tracelens-core -e normal --prefix none | grep -E '^(polars|tokio|tonic|axum|hyper)( |-)'; then
  echo "scripts/test.sh: tracelens-core depends on the crates above; it must not" >&2
  exit 1
fi

# Unit, integration and doc tests of every crate (benches are
# compile-checked by clippy in CI).
cargo test --locked
