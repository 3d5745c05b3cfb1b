"""media-gen over stdio, driven by the official MCP Python client against the emulator."""

import json
import pathlib

import anyio
import pytest
from mcp import Client, StdioServerParameters

from conftest import structured, free_port, png_size, server_env

pytestmark = pytest.mark.anyio


def params(bin_path: str, out_dir: pathlib.Path, *args: str, **env: str) -> StdioServerParameters:
    return StdioServerParameters(
        command=bin_path,
        args=["serve", *args],
        env=server_env(out_dir, **env),
        cwd="/",  # desktop hosts start servers in /; nothing may land there
    )


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_generate_image_both_protocols(bin_path, out_dir, mode):
    async with Client(params(bin_path, out_dir, "--emulator"), mode=mode) as client:
        # legacy = the initialize handshake; a version pin = stateless 2026-07-28.
        expected = "2025-11-25" if mode == "legacy" else mode
        assert client.session.protocol_version == expected
        tools = await client.list_tools()
        by_name = {t.name: t for t in tools.tools}
        assert {"generate_image", "generate_image_batch"} <= set(by_name)
        gen = by_name["generate_image"]
        assert gen.output_schema is not None
        assert gen.annotations.open_world_hint is True
        assert "16:9" in gen.input_schema["properties"]["aspect_ratio"]["enum"]

        result = await client.call_tool(
            "generate_image", {"prompt": "a lighthouse at dusk", "aspect_ratio": "16:9"}
        )
        assert not result.is_error
        data = structured(result)
        assert data["success"] is True
        path = pathlib.Path(data["image_path"])
        assert path.parent == out_dir and path.is_file()
        assert png_size(path) == (1376, 768)
        meta = data["metadata"]
        assert (meta["width"], meta["height"]) == (1376, 768)
        assert meta["file_size_bytes"] == path.stat().st_size
        assert meta["prompt"] == "a lighthouse at dusk"
        assert data["uri"] == f"media://files/{data['filename']}"
        sidecar = out_dir / "metadata" / f"{data['filename']}.json"
        assert json.loads(sidecar.read_text())["prompt"] == "a lighthouse at dusk"
        # No base64 in structured content; a resource link and a small preview instead.
        assert "base64" not in json.dumps(data)
        kinds = [c.type for c in result.content]
        assert kinds == ["text", "resource_link", "image"]
        link = result.content[1]
        assert str(link.uri) == data["uri"]
        preview = result.content[2]
        assert len(preview.data) < 140_000  # ≈100 KB before base64


async def test_batch_keeps_order_reports_progress_and_isolates_failures(bin_path, out_dir):
    prompts = ["red apple", "a cat [emulator:blocked]", "blue sky", "   "]
    steps: list[tuple[float, float | None]] = []

    async def on_progress(progress, total, message):
        steps.append((progress, total))

    async with Client(params(bin_path, out_dir, "--emulator"), mode="legacy") as client:
        result = await client.call_tool(
            "generate_image_batch",
            {"prompts": prompts, "aspect_ratio": "3:2"},
            progress_callback=on_progress,
        )
    data = structured(result)
    assert data["succeeded"] == 2 and data["failed"] == 2 and data["success"] is False
    assert not result.is_error  # some images were made
    r = data["results"]
    assert r[0]["metadata"]["prompt"] == "red apple"
    assert r[1]["error"]["code"] == "CONTENT_BLOCKED" and r[1]["prompt"] == prompts[1]
    assert r[2]["metadata"]["prompt"] == "blue sky"
    assert r[3]["error"]["code"] == "INVALID_PROMPT"
    for ok in (r[0], r[2]):
        assert png_size(pathlib.Path(ok["image_path"])) == (1264, 848)
    assert steps, "no progress notifications"
    assert [p for p, _ in steps] == sorted(p for p, _ in steps)
    assert steps[-1][0] == steps[-1][1]
    # Exactly the two images and their sidecars were written; nothing for the failures.
    files = sorted(p.name for p in out_dir.iterdir() if p.is_file() and not p.name.startswith("catalog"))
    assert len(files) == 2


async def test_errors_are_tool_results_with_codes(bin_path, out_dir):
    async with Client(params(bin_path, out_dir, "--emulator"), mode="legacy") as client:
        r = await client.call_tool("generate_image", {"prompt": "   "})
        assert r.is_error and structured(r)["error"]["code"] == "INVALID_PROMPT"

        r = await client.call_tool("generate_image", {"prompt": "x", "aspect_ratio": "7:5"})
        err = structured(r)["error"]
        assert r.is_error and err["code"] == "INVALID_PARAMETER"
        assert "16:9" in err["message"]

        r = await client.call_tool("generate_image", {"prompt": "x", "model": "dall-e-3"})
        assert structured(r)["error"]["code"] == "INVALID_MODEL"

        r = await client.call_tool("generate_image", {"prompt": "x [emulator:auth]"})
        assert structured(r)["error"]["code"] == "AUTH_FAILED"
    files = [p for p in out_dir.iterdir() if p.is_file() and not p.name.startswith("catalog")]
    assert files == []


async def test_unreachable_backend_names_the_url(bin_path, out_dir):
    port = free_port()  # nothing listens there
    url = f"http://127.0.0.1:{port}"
    p = params(bin_path, out_dir, MCP_CLIPROXY_URL=url, MCP_REQUEST_TIMEOUT="5")
    async with Client(p, mode="legacy") as client:
        r = await client.call_tool("generate_image", {"prompt": "a fox"})
    err = structured(r)["error"]
    assert r.is_error and err["code"] == "CLIPROXY_UNAVAILABLE"
    assert f"127.0.0.1:{port}" in err["message"]
    assert "--emulator" in err["message"]


async def test_library_tools_and_resources(bin_path, out_dir):
    async with Client(params(bin_path, out_dir, "--emulator"), mode="legacy") as client:
        made = []
        for prompt in ["first cat", "second dog", "third cat"]:
            r = await client.call_tool("generate_image", {"prompt": prompt})
            made.append(structured(r)["filename"])

        listed = structured(await client.call_tool("list_generated", {"query": "cat"}))
        assert listed["total"] == 2
        assert [f["filename"] for f in listed["files"]] == [made[2], made[0]]

        info = structured(await client.call_tool("get_file_info", {"filename": made[1]}))
        assert info["metadata"]["prompt"] == "second dog"
        assert (info["width"], info["height"]) == (1024, 1024)

        models = structured(await client.call_tool("list_models", {"type": "image"}))
        assert all(m["available"] is True for m in models["models"])

        resources = await client.list_resources()
        assert sorted(r.name for r in resources.resources) == sorted(made)
        templates = await client.list_resource_templates()
        assert templates.resource_templates[0].uri_template == "media://files/{filename}"
        read = await client.read_resource(f"media://files/{made[0]}")
        import base64

        assert base64.b64decode(read.contents[0].blob) == (out_dir / made[0]).read_bytes()

        r = await client.call_tool("delete_file", {"filename": made[1]})
        assert r.is_error and structured(r)["error"]["code"] == "CONFIRMATION_REQUIRED"
        r = await client.call_tool("delete_file", {"filename": made[1], "confirm": True})
        assert structured(r) == {"success": True, "deleted": made[1]}
        assert not (out_dir / made[1]).exists()

        r = await client.call_tool("get_file_info", {"filename": "../../etc/passwd"})
        assert structured(r)["error"]["code"] in ("INVALID_PARAMETER", "FILE_NOT_FOUND")
        total = structured(await client.call_tool("list_generated", {}))["total"]
        assert total == 2


async def test_resource_list_changes_reach_initialize_sessions(bin_path, out_dir):
    """2025-11-25: notifications/resources/list_changed after a file is added or deleted."""
    changes: list[str] = []
    arrived = anyio.Event()

    async def on_message(message) -> None:
        if getattr(message, "method", None) == "notifications/resources/list_changed":
            changes.append(message.method)
            arrived.set()

    client = Client(params(bin_path, out_dir, "--emulator"), mode="legacy", message_handler=on_message)
    async with client:
        r = structured(await client.call_tool("generate_image", {"prompt": "a changed list"}))
        with anyio.fail_after(10):
            await arrived.wait()
        arrived = anyio.Event()
        await client.call_tool("delete_file", {"filename": r["filename"], "confirm": True})
        with anyio.fail_after(10):
            await arrived.wait()
        # A refused delete changes nothing and announces nothing.
        before = len(changes)
        await client.call_tool("delete_file", {"filename": r["filename"], "confirm": True})
        await anyio.sleep(0.3)
        assert len(changes) == before


async def test_resource_list_changes_reach_2026_listeners(bin_path, out_dir):
    """2026-07-28: the same changes arrive through subscriptions/listen."""
    async with Client(params(bin_path, out_dir, "--emulator"), mode="2026-07-28") as client:
        async with client.listen(resources_list_changed=True) as sub:
            assert sub.honored.resources_list_changed is True
            await client.call_tool("generate_image", {"prompt": "heard by a listener"})
            with anyio.fail_after(10):
                event = await sub.__anext__()
            assert type(event).__name__ == "ResourcesListChanged"
            resources = await client.list_resources()
            assert len(resources.resources) == 1
