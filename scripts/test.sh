#!/usr/bin/env bash
# Runs every test of tracelens on a fresh machine: installs what the tests
# need, then runs the whole suite (unit, integration, doc tests).
#
# Today the tests need only cargo. Tests that need outside parts (Python
# OpenTelemetry SDK exporters, Graphviz, …) get their install step here, so
# this stays the one command that runs everything.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
  echo "scripts/test.sh: cargo is required (https://rustup.rs)" >&2
  exit 1
fi
if [ ! -d ../shared/testdata ]; then
  echo "scripts/test.sh: ../shared/testdata is missing; the public test traces must sit beside the project" >&2
  exit 1
fi

# Unit, integration and doc tests (benches are compile-checked by clippy in CI).
cargo test --locked
