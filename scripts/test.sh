#!/usr/bin/env bash
# Every test: formatting, lints, Rust unit + integration tests, end-to-end tests
# that drive the built binary (stdio and HTTP) with the official Python MCP client,
# and the official MCP conformance suite against /mcp.
# Expects .venv with tests/e2e/requirements.txt and tests/conformance/node_modules
# (`.ci/run` installs both).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets --all-features --locked -- -D warnings
echo "== cargo build"
cargo build --locked --bins --features conformance
echo "== cargo test"
cargo test --locked --features conformance --lib --bins --tests
echo "== end-to-end (Python mcp client)"
"$PY" -m pytest -q -p no:cacheprovider tests/e2e
echo "== MCP conformance suite"
scripts/conformance.sh
