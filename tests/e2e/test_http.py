"""media-gen over HTTP, driven by the official MCP Python client against the emulator:
Streamable HTTP (initialize sessions and stateless 2026-07-28) and the legacy SSE transport."""

import base64
import pathlib

import anyio
import pytest
from mcp import Client
from mcp.client.sse import sse_client

from conftest import HttpServer, structured, png_size, server_env

pytestmark = pytest.mark.anyio


@pytest.fixture
def http_server(bin_path, out_dir):
    server = HttpServer(bin_path, out_dir, "--emulator")
    yield server
    if server.proc.poll() is None:
        assert server.stop() == 0


def connect(server: HttpServer, how: str) -> Client:
    if how == "sse":
        return Client(sse_client(f"{server.url}/sse"), mode="legacy")
    if how == "streamable-legacy":
        return Client(f"{server.url}/mcp", mode="legacy")
    return Client(f"{server.url}/mcp", mode="2026-07-28")


HOWS = ["streamable-legacy", "streamable-2026-07-28", "sse"]


@pytest.mark.parametrize("how", HOWS)
async def test_generate_list_and_errors(http_server, out_dir, how):
    async with connect(http_server, how) as client:
        expected = "2026-07-28" if how.endswith("2026-07-28") else "2025-11-25"
        assert client.session.protocol_version == expected
        tools = {t.name for t in (await client.list_tools()).tools}
        assert {"generate_image", "generate_image_batch", "list_generated", "delete_file"} <= tools

        r = await client.call_tool("generate_image", {"prompt": f"over {how}", "aspect_ratio": "16:9"})
        assert not r.is_error
        data = structured(r)
        path = pathlib.Path(data["image_path"])
        assert path.parent == out_dir and png_size(path) == (1376, 768)

        r = await client.call_tool("generate_image", {"prompt": "  "})
        assert r.is_error and structured(r)["error"]["code"] == "INVALID_PROMPT"
        r = await client.call_tool("generate_image", {"prompt": "x [emulator:rate_limit]"})
        assert r.is_error

        listed = structured(await client.call_tool("list_generated", {}))
        assert listed["total"] == 1
        # Over SSE framing the Python SDK caps one event at 1 MiB (a real image
        # is bigger once base64-encoded); stateless requests get plain JSON.
        if how == "streamable-2026-07-28":
            read = await client.read_resource(data["uri"])
            assert read.contents[0].mime_type == "image/png"
            assert base64.b64decode(read.contents[0].blob) == path.read_bytes()


@pytest.mark.parametrize("how", HOWS)
async def test_batch_progress(http_server, how):
    steps: list[float] = []

    async def on_progress(progress, total, message):
        steps.append(progress)

    async with connect(http_server, how) as client:
        r = await client.call_tool(
            "generate_image_batch",
            {"prompts": ["one", "two", "three"]},
            progress_callback=on_progress,
        )
    assert structured(r)["succeeded"] == 3
    assert steps and steps == sorted(steps) and steps[-1] == 3


async def test_sessions_share_one_library(http_server):
    """Clients of different transports see the same catalog."""
    async with connect(http_server, "sse") as a, connect(http_server, "streamable-legacy") as b:
        made = structured(await a.call_tool("generate_image", {"prompt": "shared"}))["filename"]
        info = structured(await b.call_tool("get_file_info", {"filename": made}))
        assert info["metadata"]["prompt"] == "shared"


async def test_token_protects_every_client_path(bin_path, out_dir):
    import httpx2

    server = HttpServer(bin_path, out_dir, "--emulator", MCP_HTTP_TOKEN="tok-123")
    try:
        with pytest.raises(Exception):
            async with Client(f"{server.url}/mcp", mode="legacy") as client:
                await client.list_tools()
        headers = {"Authorization": "Bearer tok-123"}
        async with httpx2.AsyncClient(headers=headers) as http:
            from mcp.client.streamable_http import streamable_http_client

            async with Client(streamable_http_client(f"{server.url}/mcp", http_client=http), mode="legacy") as c:
                assert (await c.list_tools()).tools
        async with Client(sse_client(f"{server.url}/sse", headers=headers), mode="legacy") as c:
            assert (await c.list_tools()).tools
    finally:
        assert server.stop() == 0
