#!/usr/bin/env bash
# Every test: formatting, lints, Rust unit + integration tests, end-to-end tests
# that drive the built binary (stdio and HTTP) with the official Python MCP client,
# the packages (wheel, npm, MCP Bundle) built, installed and served, and the
# official MCP conformance suite against /mcp.
# Expects .venv with tests/e2e/requirements.txt, tests/conformance/node_modules
# and mcpb/node_modules (`.ci/run` installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets --all-features --locked -- -D warnings
echo "== cargo build"
cargo build --locked --bins --features conformance
echo "== cargo test (with throwaway PostgreSQL and S3 servers for the shared-store tests)"
SERVICES=$(mktemp -d)
trap 'scripts/services stop "$SERVICES"' EXIT
eval "$(scripts/services start "$SERVICES")"
cargo test --locked --features conformance --lib --bins --tests
echo "== integration tests again, the catalog, jobs and ledger in PostgreSQL (the shared deployment's database)"
MEDIA_GEN_IT_DATABASE_URL="$MEDIA_GEN_TEST_DATABASE_URL" cargo test --locked --features conformance --test it
echo "== end-to-end (Python mcp client; tests/e2e/test_replicas.py: three replicas on PostgreSQL + S3)"
"$PY" -m pytest -q -p no:cacheprovider tests/e2e
echo "== packages (wheel, npm, MCP Bundle from the debug build: installed and served)"
PKG_OUT=$(mktemp -d)
PYTHON="$PY" scripts/release --profile dev --out "$PKG_OUT"
rm -rf "$PKG_OUT"
echo "== MCP conformance suite"
scripts/conformance.sh
