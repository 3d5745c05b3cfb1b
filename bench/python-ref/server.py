"""A small, honest reference of the seed's Python stack (the design in the
seed's mcp-design.md): the official `mcp` SDK over stdio, httpx to
CLIProxyAPI's OpenAI chat-completions route, Pillow for the upscale.

It does what the seed's design does and nothing more: no preview, no
catalog, no retries. generate_image posts one request, decodes the base64
image, writes the file and a metadata JSON beside it; the batch runs the
prompts one after the other; upscale is Pillow's LANCZOS resize saved as
PNG. The peers bench (bench/peers/run) measures it beside media-gen.

Settings (the seed's names): MCP_CLIPROXY_URL, MCP_OUTPUT_DIR.
"""

from __future__ import annotations

import base64
import json
import os
from datetime import datetime
from pathlib import Path

import httpx
from mcp.server.mcpserver import MCPServer
from PIL import Image

CLIPROXY_URL = os.environ.get("MCP_CLIPROXY_URL", "http://127.0.0.1:8317").rstrip("/")
CLIPROXY_AUTH = "Bearer ccs-internal-managed"
REQUEST_TIMEOUT = 120
OUTPUT_DIR = Path(os.environ.get("MCP_OUTPUT_DIR", "+generated_images"))
METADATA_DIR = OUTPUT_DIR / "metadata"
DEFAULT_MODEL = "gemini-3-pro-image-preview"

mcp = MCPServer("media-gen-python-ref")


class CLIProxyClient:
    """The seed's client: one httpx.AsyncClient for every call."""

    def __init__(self) -> None:
        self._http = httpx.AsyncClient(
            base_url=CLIPROXY_URL,
            headers={"Authorization": CLIPROXY_AUTH},
            timeout=REQUEST_TIMEOUT,
        )

    async def generate_image(self, prompt: str, model: str, aspect_ratio: str, image_size: str) -> bytes:
        payload = {
            "model": model,
            "messages": [{"role": "user", "content": [{"type": "text", "text": prompt}]}],
            "modalities": ["image", "text"],
            "image_config": {"aspect_ratio": aspect_ratio, "image_size": image_size},
        }
        r = await self._http.post("/v1/chat/completions", json=payload)
        r.raise_for_status()
        message = r.json()["choices"][0]["message"]
        url = message["images"][0]["image_url"]["url"]
        return base64.b64decode(url.split("base64,", 1)[1])


client = CLIProxyClient()
counter = 0


def save(data: bytes, meta: dict) -> dict:
    """Writes the image and its metadata JSON; returns the seed's result."""
    global counter
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    METADATA_DIR.mkdir(parents=True, exist_ok=True)
    now = datetime.now()
    path = OUTPUT_DIR / f"image_{now:%Y%m%d_%H%M%S}_{counter}.png"
    counter += 1
    path.write_bytes(data)
    metadata = {**meta, "file_size_bytes": len(data), "timestamp": now.isoformat(timespec="seconds")}
    (METADATA_DIR / f"{path.stem}.json").write_text(json.dumps(metadata))
    return {"success": True, "image_path": str(path.resolve()), "metadata": metadata}


async def generate_one(prompt: str, model: str, aspect_ratio: str, image_size: str) -> dict:
    data = await client.generate_image(prompt, model, aspect_ratio, image_size)
    meta = {"prompt": prompt, "model": model, "aspect_ratio": aspect_ratio, "image_size": image_size}
    return save(data, meta)


@mcp.tool()
async def generate_image(
    prompt: str, model: str = DEFAULT_MODEL, aspect_ratio: str = "1:1", image_size: str = "1K"
) -> dict:
    """Generate an image from a text prompt using Gemini image models"""
    try:
        return await generate_one(prompt, model, aspect_ratio, image_size)
    except Exception as e:  # the seed reports failures as success: false
        return {"success": False, "error": str(e)}


@mcp.tool()
async def generate_image_batch(
    prompts: list[str], model: str = DEFAULT_MODEL, aspect_ratio: str = "1:1", image_size: str = "1K"
) -> dict:
    """Generate multiple images from a list of prompts"""
    results = []
    for prompt in prompts:  # one after the other, as the seed's loop does
        try:
            results.append(await generate_one(prompt, model, aspect_ratio, image_size))
        except Exception as e:
            results.append({"success": False, "error": str(e)})
    ok = sum(1 for r in results if r["success"])
    return {"success": ok == len(results), "succeeded": ok, "results": results}


@mcp.tool()
def upscale(image_path: str, scale_factor: int = 2) -> dict:
    """Upscale image resolution"""
    try:
        with Image.open(image_path) as img:
            out = img.resize((img.width * scale_factor, img.height * scale_factor), Image.LANCZOS)
        meta = {"source": image_path, "scale_factor": scale_factor, "size": [out.width, out.height]}
        global counter
        OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
        path = OUTPUT_DIR / f"upscaled_{datetime.now():%Y%m%d_%H%M%S}_{counter}.png"
        counter += 1
        out.save(path, "PNG")
        return {"success": True, "image_path": str(path.resolve()), "metadata": meta}
    except Exception as e:
        return {"success": False, "error": str(e)}


if __name__ == "__main__":
    mcp.run()  # stdio
