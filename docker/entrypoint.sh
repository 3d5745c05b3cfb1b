#!/bin/sh
# The container's entry point: runs media-gen with the given arguments, but
# refuses to start the HTTP server without MCP_HTTP_TOKEN. In a container the
# server listens on every interface (0.0.0.0), where media-gen itself only
# warns when no token is set; anyone who can reach the published port could
# otherwise generate on your account and read the library.
# `serve --transport stdio` (docker run -i) and the other commands (`list`,
# `doctor`, `generate`, …) run as given.
set -eu
if [ "${1:-}" = serve ] && [ -z "${MCP_HTTP_TOKEN:-}" ]; then
    # The transport as media-gen will see it: MCP_TRANSPORT (default stdio)
    # unless a --transport flag says otherwise.
    transport=${MCP_TRANSPORT:-stdio}
    prev=
    for arg in "$@"; do
        case "$prev/$arg" in
        --transport/*) transport=$arg ;;
        */--transport=*) transport=${arg#--transport=} ;;
        esac
        prev=$arg
    done
    if [ "$transport" != stdio ]; then
        echo "media-gen: MCP_HTTP_TOKEN is not set; in this container the HTTP server listens on every interface, so it requires a bearer token" >&2
        echo "  → run it with -e MCP_HTTP_TOKEN=\"\$(openssl rand -hex 32)\" and give clients the header 'Authorization: Bearer <token>'" >&2
        exit 2
    fi
fi
exec media-gen "$@"
