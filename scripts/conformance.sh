#!/usr/bin/env bash
# The official MCP conformance suite (@modelcontextprotocol/conformance, pinned in
# tests/conformance/package.json) against media-gen's Streamable HTTP endpoint, for
# the 2025-11-25 and 2026-07-28 requirement sets. The server is
# `media-gen-conformance` (cargo feature `conformance`): media-gen's server with
# the suite's fixture tools, resources, prompts and tasks beside it, on the real
# HTTP transport. Expected failures (none today) would be listed with their reasons
# in tests/conformance/expected-failures-*.yaml; anything else failing, or a listed
# entry that starts passing, fails this script.
# Expects `npm ci --prefix tests/conformance` (`.ci/run` does it) and a built
# `media-gen-conformance` (`cargo build --features conformance --bins`).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${MEDIA_GEN_CONFORMANCE_BIN:-${CARGO_TARGET_DIR:-target}/debug/media-gen-conformance}
CONF=tests/conformance
export PATH="$PWD/$CONF/node_modules/.bin:$PATH"
if ! node --version 2>/dev/null | grep -q '^v22\.'; then
    echo "conformance needs Node 22 from $CONF/node_modules (run: npm ci --prefix $CONF)" >&2
    exit 1
fi
work=$(mktemp -d)
pid=
cleanup() {
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
MCP_OUTPUT_DIR="$work/out" HOME="$work" XDG_CONFIG_HOME="$work/config" MEDIA_GEN_LOG=warn \
    "$BIN" --port 0 2>"$work/server.log" &
pid=$!
addr=
for _ in $(seq 200); do
    addr=$(sed -n 's/.*listening on http:\/\/\([^ ]*\).*/\1/p' "$work/server.log" | head -n 1)
    [ -n "$addr" ] && break
    sleep 0.05
done
if [ -z "$addr" ]; then
    echo "media-gen did not start:" >&2
    cat "$work/server.log" >&2
    exit 1
fi
status=0
for req in 2025-11-25 2026-07-28; do
    log="$work/conformance-$req.log"
    if conformance server --url "http://$addr/mcp" --requirements "$req" \
        --expected-failures "$CONF/expected-failures-$req.yaml" >"$log" 2>&1; then
        echo "conformance $req: $(grep -E '^Total:' "$log" | tail -n 1); every failure is an expected one"
    else
        echo "conformance $req FAILED:" >&2
        sed -n '/=== SUMMARY ===/,$p' "$log" >&2
        status=1
    fi
done
exit $status
