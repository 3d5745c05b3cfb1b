"""The video tools driven by the official MCP Python client against the emulator: a job
started, waited on with progress notifications, saved as a real MP4 with a contact sheet;
an image animated to a last frame; an extension; an unknown job. Over stdio at both
protocol versions, and over HTTP."""

import base64
import io
import pathlib

import pytest
from mcp import Client
from PIL import Image

from conftest import structured
from test_http import HttpServer
from test_stdio import params

pytestmark = pytest.mark.anyio


def contact_sheet(result) -> Image.Image:
    images = [c for c in result.content if c.type == "image"]
    assert len(images) == 1, result.content
    data = base64.b64decode(images[0].data)
    assert len(data) <= 100 * 1024
    img = Image.open(io.BytesIO(data)).convert("RGB")
    assert max(img.size) <= 512
    return img


async def wait_for(client: Client, job_id: str) -> tuple[dict, object, list[float]]:
    progress: list[float] = []

    async def on_progress(p: float, total: float | None, message: str | None) -> None:
        progress.append(p)

    for _ in range(5):
        result = await client.call_tool(
            "get_video_status", {"job_id": job_id, "wait_seconds": 60}, progress_callback=on_progress
        )
        status = structured(result)
        if status["status"] not in ("queued", "running"):
            return status, result, progress
    raise AssertionError(f"job {job_id} never ended")


async def video_flow(client: Client, out_dir: pathlib.Path, inputs: pathlib.Path) -> None:
    tools = {t.name: t for t in (await client.list_tools()).tools}
    assert {"generate_video", "image_to_video", "extend_video", "get_video_status"} <= set(tools)
    assert tools["get_video_status"].annotations.read_only_hint is True
    assert tools["generate_video"].input_schema["required"] == ["prompt"]

    started = structured(await client.call_tool("generate_video", {"prompt": "a lantern in the rain", "duration": "10s"}))
    assert started["success"] and started["status"] == "running", started
    assert started["duration_seconds"] == 8  # 10s → the nearest Veo 3.x length
    assert "extend_video" in started["note"]

    status, result, progress = await wait_for(client, started["job_id"])
    assert status["status"] == "succeeded", status
    assert progress, "progress notifications while waiting"
    meta = status["metadata"]
    assert meta["duration_seconds"] == 8.0 and (meta["width"], meta["height"]) == (1280, 720)
    path = pathlib.Path(status["video_path"])
    assert path.parent == out_dir and path.read_bytes()[4:8] == b"ftyp"
    links = [c for c in result.content if c.type == "resource_link"]
    assert links and links[0].mime_type == "video/mp4"
    sheet = contact_sheet(result)
    assert sheet.width > sheet.height  # 2×2 landscape frames

    listed = structured(await client.call_tool("list_generated", {"type": "video"}))
    assert [f["filename"] for f in listed["files"]] == [status["filename"]]

    # A portrait image animated to a last frame.
    first = inputs / "first.png"
    last = inputs / "last.png"
    Image.new("RGB", (600, 1000), (230, 30, 30)).save(first)
    Image.new("RGB", (600, 1000), (30, 30, 230)).save(last)
    started = structured(await client.call_tool("image_to_video", {"image_path": str(first), "last_frame": str(last)}))
    animated, result, _ = await wait_for(client, started["job_id"])
    assert animated["status"] == "succeeded", animated
    meta = animated["metadata"]
    assert meta["aspect_ratio"] == "9:16" and (meta["width"], meta["height"]) == (720, 1280)
    assert meta["operation"] == "image_to_video"
    assert meta["parameters"]["last_frame"] == str(last.resolve())
    sheet = contact_sheet(result)
    r, g, b = sheet.getpixel((sheet.width // 4, sheet.height // 4))
    assert r > 170 and b < 90, "the first frame is the image"
    r, g, b = sheet.getpixel((3 * sheet.width // 4, 3 * sheet.height // 4))
    assert b > 170 and r < 90, "the last frame is the last_frame"

    # Extended by one step: the whole video plus 7 s, a new file.
    started = structured(await client.call_tool("extend_video", {"video": status["filename"], "prompt": "the lantern goes out"}))
    extended, _, _ = await wait_for(client, started["job_id"])
    assert extended["status"] == "succeeded", extended
    assert extended["metadata"]["duration_seconds"] == 15.0
    assert extended["metadata"]["source"] == status["filename"]
    assert extended["filename"] != status["filename"]

    unknown = await client.call_tool("get_video_status", {"job_id": "job_20200101_000000_000_nosuch"})
    assert unknown.is_error
    assert structured(unknown)["error"]["code"] == "JOB_NOT_FOUND"

    # 1:1 is not a Veo ratio: refused with what is allowed.
    refused = await client.call_tool("generate_video", {"prompt": "x", "aspect_ratio": "1:1"})
    assert refused.is_error
    err = structured(refused)["error"]
    assert err["code"] == "INVALID_PARAMETER" and "16:9" in err["message"]


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_video_over_stdio(bin_path, out_dir, tmp_path, mode):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    async with Client(params(bin_path, out_dir, "--emulator"), mode=mode) as client:
        await video_flow(client, out_dir, inputs)


async def test_video_over_http(bin_path, out_dir):
    # Over HTTP inputs must sit in the output directory (or MCP_INPUT_ROOTS).
    inputs = out_dir / "inputs"
    inputs.mkdir()
    server = HttpServer(bin_path, out_dir, "--emulator")
    try:
        async with Client(f"{server.url}/mcp") as client:
            await video_flow(client, out_dir, inputs)
    finally:
        server.stop()
