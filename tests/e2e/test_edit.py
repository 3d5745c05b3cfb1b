"""The edit tools and reference images, driven by the official MCP Python client against
the emulator over stdio and over HTTP (where inputs must sit in the output directory or
MCP_INPUT_ROOTS)."""

import pathlib

import pytest
from mcp import Client
from PIL import Image

from conftest import structured
from test_http import HttpServer
from test_stdio import params

pytestmark = pytest.mark.anyio


def photo(path: pathlib.Path, w: int, h: int) -> pathlib.Path:
    img = Image.new("RGB", (w, h))
    img.putdata([((x * 7) % 256, (y * 3) % 256, ((x ^ y) * 5) % 256) for y in range(h) for x in range(w)])
    img.save(path)
    return path


def mask(path: pathlib.Path, w: int, h: int, box: tuple[int, int, int, int]) -> pathlib.Path:
    img = Image.new("L", (w, h), 0)
    img.paste(255, box)
    img.save(path)
    return path


async def edit_everything(client: Client, inputs: pathlib.Path, out_dir: pathlib.Path) -> None:
    src = photo(inputs / "photo.png", 400, 300)
    m = mask(inputs / "mask.png", 400, 300, (100, 75, 300, 225))

    # A reference image travels with the prompt and is recorded.
    r = structured(await client.call_tool("generate_image", {"prompt": "a lighthouse", "reference_images": [str(src)]}))
    assert r["success"], r
    assert r["metadata"]["parameters"]["reference_images"] == [str(src.resolve())]
    library_file = r["filename"]

    # edit_image of a library file: same size, lineage both ways.
    e = structured(await client.call_tool("edit_image", {"image_path": library_file, "prompt": "at night"}))
    assert e["success"], e
    assert (e["metadata"]["width"], e["metadata"]["height"]) == (1024, 1024)
    assert e["metadata"]["operation"] == "edit" and e["metadata"]["source"] == library_file
    info = structured(await client.call_tool("get_file_info", {"filename": library_file}))
    assert info["lineage"]["derived"] == [e["filename"]]

    # inpaint: every pixel outside the mask is the source's.
    i = structured(await client.call_tool("inpaint", {"image_path": str(src), "mask_path": str(m), "prompt": "a door", "feather": 0}))
    assert i["success"], i
    out = Image.open(i["image_path"]).convert("RGB")
    ref = Image.open(src).convert("RGB")
    assert out.size == (400, 300)
    changed_inside = 0
    for y in range(0, 300, 3):
        for x in range(0, 400, 3):
            inside = 100 <= x < 300 and 75 <= y < 225
            if inside:
                changed_inside += out.getpixel((x, y)) != ref.getpixel((x, y))
            else:
                assert out.getpixel((x, y)) == ref.getpixel((x, y)), (x, y)
    assert changed_inside > 0.75 * (200 // 3) * (150 // 3)

    # outpaint right by 128: 528×300, the original kept.
    o = structured(await client.call_tool("outpaint", {"image_path": str(src), "direction": "right", "prompt": "more", "extend_pixels": 128}))
    assert o["success"], o
    out = Image.open(o["image_path"]).convert("RGB")
    assert out.size == (528, 300)
    assert out.crop((0, 0, 400, 300)).tobytes() == ref.tobytes()

    # upscale ×2 (local) and ×2 by the model: exact sizes.
    for method in ["lanczos", "model"]:
        u = structured(await client.call_tool("upscale", {"image_path": str(src), "scale_factor": 2, "method": method}))
        assert u["success"], u
        assert Image.open(u["image_path"]).size == (800, 600), method
        assert u["metadata"]["parameters"]["method"] == method

    # Bad inputs: codes, nothing written.
    before = sorted(p.name for p in out_dir.iterdir() if p.is_file())
    bad = await client.call_tool("edit_image", {"image_path": str(inputs / "missing.png"), "prompt": "x"})
    assert bad.is_error and structured(bad)["error"]["code"] == "FILE_NOT_FOUND"
    black = mask(inputs / "black.png", 400, 300, (0, 0, 0, 0))
    bad = await client.call_tool("inpaint", {"image_path": str(src), "mask_path": str(black), "prompt": "x"})
    assert bad.is_error and structured(bad)["error"]["code"] == "INVALID_PARAMETER"
    text = inputs / "notes.png"
    text.write_text("not an image")
    bad = await client.call_tool("upscale", {"image_path": str(text)})
    assert bad.is_error and structured(bad)["error"]["code"] == "INVALID_IMAGE"
    after = sorted(p.name for p in out_dir.iterdir() if p.is_file())
    assert before == after


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_edit_tools_over_stdio(bin_path, out_dir, tmp_path, mode):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    async with Client(params(bin_path, out_dir, "--emulator"), mode=mode) as client:
        tools = {t.name for t in (await client.list_tools()).tools}
        assert {"edit_image", "inpaint", "outpaint", "upscale"} <= tools
        await edit_everything(client, inputs, out_dir)


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_edit_tools_over_http(bin_path, out_dir, tmp_path, mode):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    canary = photo(outside / "canary.png", 16, 16)
    canary_bytes = canary.read_bytes()
    server = HttpServer(bin_path, out_dir, "--emulator", MCP_INPUT_ROOTS=str(inputs))
    try:
        async with Client(f"{server.url}/mcp", mode=mode) as client:
            await edit_everything(client, inputs, out_dir)
            # Over HTTP a path outside the output directory and the input roots is refused.
            for path in [str(canary), str(inputs / ".." / "outside" / "canary.png"), "canary.png"]:
                r = await client.call_tool("edit_image", {"image_path": path, "prompt": "x"})
                assert r.is_error and structured(r)["error"]["code"] == "INVALID_PARAMETER", path
        assert canary.read_bytes() == canary_bytes
    finally:
        assert server.stop() == 0
