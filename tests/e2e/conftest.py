"""Shared fixtures: where the media-gen binary is, and per-test output directories."""

import json
import os
import pathlib
import socket
import struct
import subprocess
import threading

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def binary() -> str:
    explicit = os.environ.get("MEDIA_GEN_BIN")
    if explicit:
        return explicit
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    return str(target / "debug" / "media-gen")


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
def bin_path() -> str:
    path = binary()
    assert os.path.exists(path), f"build media-gen first (cargo build): {path} missing"
    return path


@pytest.fixture
def out_dir(tmp_path) -> pathlib.Path:
    d = tmp_path / "out"
    d.mkdir()
    return d


def server_env(out_dir: pathlib.Path, **extra: str) -> dict[str, str]:
    env = {
        "MCP_OUTPUT_DIR": str(out_dir),
        "HOME": str(out_dir.parent),
        "XDG_CONFIG_HOME": str(out_dir.parent / "config"),
        "MEDIA_GEN_LOG": "info",
        "PATH": os.environ.get("PATH", ""),
    }
    env.update(extra)
    return env


@pytest.fixture
def emulator(bin_path):
    """`media-gen emulator` on a free port, as its own process: its URL."""
    proc = subprocess.Popen(
        [bin_path, "emulator", "--port", "0"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    url = proc.stdout.readline().strip()
    assert url.startswith("http://"), url
    yield url
    proc.terminate()
    proc.wait(30)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def png_size(path: pathlib.Path) -> tuple[int, int]:
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", head[16:24])


def structured(result) -> dict:
    """A tool result's structured content, checked to equal its text block."""
    data = result.structured_content
    assert data is not None, result
    texts = [c.text for c in result.content if c.type == "text"]
    assert texts and json.loads(texts[0]) == data
    return data


class HttpServer:
    """`media-gen serve --transport http` on a free port, announced on stderr."""

    def __init__(self, bin_path: str, out_dir: pathlib.Path, *args: str, **env: str):
        self.proc = subprocess.Popen(
            [bin_path, "serve", "--transport", "http", "--port", "0", *args],
            env=server_env(out_dir, **env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            cwd="/",
        )
        found = threading.Event()
        self.addr = ""
        self.log: list[str] = []

        def read() -> None:
            for line in self.proc.stderr:
                self.log.append(line)
                if "listening on http://" in line and not found.is_set():
                    self.addr = line.split("listening on http://")[1].split()[0]
                    found.set()

        threading.Thread(target=read, daemon=True).start()
        assert found.wait(20), "server did not announce its address"

    @property
    def url(self) -> str:
        return f"http://{self.addr}"

    def stop(self) -> int:
        self.proc.terminate()
        return self.proc.wait(30)


CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def chromium():
    """Debian's Chromium driven by Playwright (no browser download: `.ci/run`
    installs the `chromium` package). Module scope: the sync API runs its own
    event loop, kept apart from the anyio tests of other modules."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=os.environ.get("CHROMIUM", "/usr/bin/chromium"),
            args=CHROMIUM_ARGS,
        )
        yield browser
        browser.close()
