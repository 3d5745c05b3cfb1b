#!/usr/bin/env bash
# Every test: formatting, lints, Rust unit + integration tests, end-to-end tests
# that drive the built binary over stdio with the official Python MCP client.
# Expects .venv with tests/e2e/requirements.txt (`.ci/run` creates it).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets --locked -- -D warnings
echo "== cargo build"
cargo build --locked --bins
echo "== cargo test"
cargo test --locked --lib --bins --tests
echo "== end-to-end (Python mcp client)"
"$PY" -m pytest -q -p no:cacheprovider tests/e2e
