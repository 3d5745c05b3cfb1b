"""media-gen as users install it: from the wheel, the npm tarballs and the MCP
Bundle that `scripts/release` builds, each installed into a clean temporary
place and driven with the official MCP Python client, with no Rust toolchain
on PATH.

These tests run when `scripts/release` (and so the install step of
scripts/test.sh) points them at what it built and installed:

- MEDIA_GEN_INSTALLED_BIN: the `media-gen` entry point of the wheel, installed
  into a fresh virtual environment;
- MEDIA_GEN_WHEEL: the wheel itself (run with `uvx --from` when uv is here);
- MEDIA_GEN_NPM_DIR: a directory where the npm tarballs were installed (the
  launcher package and the platform package);
- MEDIA_GEN_MCPB: the `.mcpb` bundle.

Without them (a plain `pytest tests/e2e`) they are skipped.
"""

import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
import zipfile

import pytest
from mcp import Client, StdioServerParameters

from conftest import ROOT, png_size, server_env, structured

pytestmark = pytest.mark.anyio

VERSION = tomllib.loads((ROOT / "Cargo.toml").read_text())["package"]["version"]


def artifact(var: str) -> str:
    value = os.environ.get(var)
    if not value:
        pytest.skip(f"{var} not set (scripts/release sets it)")
    assert os.path.exists(value), f"{var}={value} does not exist"
    return value


def no_rust_path(*first: str) -> str:
    """PATH without any directory that holds a Rust toolchain: what a machine
    without Rust has (the artifacts must not need cargo or rustc)."""
    dirs = [d for d in os.environ.get("PATH", "").split(":") if d]
    kept = [d for d in dirs if not any(os.path.exists(os.path.join(d, t)) for t in ("cargo", "rustc"))]
    return ":".join([*first, *kept])


def install_env(out_dir: pathlib.Path, *first_on_path: str, **extra: str) -> dict[str, str]:
    env = server_env(out_dir, **extra)
    env["PATH"] = no_rust_path(*first_on_path)
    return env


async def check_server(params: StdioServerParameters, out_dir: pathlib.Path, expected_tools=None) -> None:
    """initialize, the tools, one image from the emulator into out_dir."""
    async with Client(params, mode="legacy") as client:
        assert (client.server_info.name, client.server_info.version) == ("media-gen", VERSION)
        names = {t.name for t in (await client.list_tools()).tools}
        assert {"generate_image", "edit_image", "list_generated"} <= names
        if expected_tools is not None:
            assert names == expected_tools
        result = await client.call_tool("generate_image", {"prompt": "a lighthouse", "aspect_ratio": "16:9"})
        assert not result.is_error, result
        data = structured(result)
        path = pathlib.Path(data["image_path"])
        assert path.parent == out_dir and png_size(path) == (1376, 768)


# --- the wheel (PyPI) ---------------------------------------------------------


def test_wheel_entry_point_version():
    bin_path = artifact("MEDIA_GEN_INSTALLED_BIN")
    # A console script in the venv's bin, not a link into a Cargo target dir.
    assert "target" not in pathlib.Path(bin_path).resolve().parts
    out = subprocess.run([bin_path, "--version"], capture_output=True, text=True, timeout=30, env={"PATH": no_rust_path()})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"media-gen {VERSION}"


async def test_wheel_serves_stdio(out_dir):
    bin_path = artifact("MEDIA_GEN_INSTALLED_BIN")
    params = StdioServerParameters(
        command=bin_path, args=["serve", "--emulator"], env=install_env(out_dir), cwd="/"
    )
    await check_server(params, out_dir)


def test_wheel_with_uvx_generates(out_dir, tmp_path):
    """`uvx media-gen generate "a lighthouse" --emulator`, from the built wheel,
    offline, with no Rust on PATH."""
    wheel = artifact("MEDIA_GEN_WHEEL")
    uvx = shutil.which("uvx", path=os.path.dirname(sys.executable) + ":" + os.environ.get("PATH", ""))
    if uvx is None:
        pytest.skip("uv is not installed (tests/e2e/requirements.txt installs it)")
    env = install_env(out_dir, os.path.dirname(uvx), UV_CACHE_DIR=str(tmp_path / "uv-cache"), UV_OFFLINE="1", UV_NO_CONFIG="1")
    out = subprocess.run(
        [uvx, "--from", wheel, "media-gen", "generate", "a lighthouse", "--emulator"],
        capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    path = pathlib.Path(out.stdout.split("\t")[0])
    assert path.parent == out_dir and path.suffix == ".png" and path.is_file()


# --- the npm packages ---------------------------------------------------------


def npm_env(out_dir: pathlib.Path, npm_dir: str) -> dict[str, str]:
    node = os.path.dirname(shutil.which("node") or "/usr/bin/node")
    # Offline: npx must find the installed package, never the registry.
    return install_env(out_dir, node, npm_config_offline="true", npm_config_update_notifier="false",
                       npm_config_cache=str(out_dir.parent / "npm-cache"))


def test_npx_version(out_dir):
    npm_dir = artifact("MEDIA_GEN_NPM_DIR")
    out = subprocess.run(
        ["npx", "-y", "media-gen", "--version"],
        capture_output=True, text=True, timeout=60, env=npm_env(out_dir, npm_dir), cwd=npm_dir,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"media-gen {VERSION}"
    # The launcher found the platform package's binary, not something else.
    launcher = pathlib.Path(npm_dir, "node_modules", "media-gen", "bin", "media-gen.js")
    assert launcher.is_file()
    (plat,) = pathlib.Path(npm_dir, "node_modules", "@media-gen").iterdir()
    assert os.access(plat / "bin" / "media-gen", os.X_OK)


def test_npx_passes_exit_status_and_stderr(out_dir):
    npm_dir = artifact("MEDIA_GEN_NPM_DIR")
    out = subprocess.run(
        ["npx", "-y", "media-gen", "no-such-command"],
        capture_output=True, text=True, timeout=60, env=npm_env(out_dir, npm_dir), cwd=npm_dir,
    )
    assert out.returncode == 2  # the binary's "command line is wrong"
    assert "no-such-command" in out.stderr and out.stdout == ""


def test_launcher_without_platform_package_says_how_to_fix(out_dir, tmp_path):
    """`npm install --omit=optional` leaves the binary out: the launcher says so."""
    npm_dir = artifact("MEDIA_GEN_NPM_DIR")
    alone = tmp_path / "node_modules" / "media-gen"
    shutil.copytree(pathlib.Path(npm_dir, "node_modules", "media-gen"), alone)
    out = subprocess.run(
        ["node", str(alone / "bin" / "media-gen.js"), "--version"],
        capture_output=True, text=True, timeout=30, env=npm_env(out_dir, npm_dir), cwd=tmp_path,
    )
    assert out.returncode == 1 and out.stdout == ""
    assert "is not installed" in out.stderr and "--omit=optional" in out.stderr


def test_npx_stop_reaches_the_binary(out_dir):
    """A host stops `npx media-gen serve` with SIGTERM to the process it
    started; npm does not pass that on, so the launcher must notice and stop
    the binary (else it is left running, holding its port)."""
    npm_dir = artifact("MEDIA_GEN_NPM_DIR")
    proc = subprocess.Popen(
        ["npx", "-y", "media-gen", "serve", "--transport", "http", "--port", "0", "--emulator"],
        env=npm_env(out_dir, npm_dir), cwd=npm_dir, stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    try:
        addr = ""
        for line in proc.stderr:
            if "listening on http://" in line:
                addr = line.split("listening on http://")[1].split()[0]
                break
        assert addr, "the server did not start"
        host, port = addr.rsplit(":", 1)
        socket.create_connection((host, int(port)), timeout=5).close()
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection((host, int(port)), timeout=1).close()
            except OSError:
                return  # the binary has stopped
            time.sleep(0.2)
        pytest.fail(f"media-gen still listening on {addr} after npx was stopped")
    finally:
        try:  # whatever is left of it (npx, the launcher, the binary) is in its session
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(10)
        proc.stderr.close()


async def test_npx_serves_stdio(out_dir):
    npm_dir = artifact("MEDIA_GEN_NPM_DIR")
    params = StdioServerParameters(
        command="npx", args=["-y", "media-gen", "serve", "--emulator"],
        env=npm_env(out_dir, npm_dir), cwd=npm_dir,
    )
    await check_server(params, out_dir)


# --- the MCP Bundle -----------------------------------------------------------


def unpack_bundle(tmp_path: pathlib.Path) -> tuple[pathlib.Path, dict]:
    bundle = artifact("MEDIA_GEN_MCPB")
    dest = tmp_path / "bundle"
    with zipfile.ZipFile(bundle) as z:
        for info in z.infolist():
            z.extract(info, dest)
            mode = info.external_attr >> 16
            if mode:
                os.chmod(dest / info.filename, mode & 0o777)
    manifest = json.loads((dest / "manifest.json").read_text())
    return dest, manifest


def test_bundle_holds_the_platform_binary(tmp_path):
    dest, manifest = unpack_bundle(tmp_path)
    assert manifest["version"] == VERSION
    server = manifest["server"]
    assert server["type"] == "binary"
    entry = dest / server["entry_point"]
    assert entry.is_file() and os.access(entry, os.X_OK)
    platform = {"linux": "linux", "darwin": "darwin"}[sys.platform]
    assert manifest["compatibility"]["platforms"] == [platform]


async def test_bundle_serves_as_claude_desktop_starts_it(tmp_path, out_dir):
    """The manifest's mcp_config with its variables filled in as the host
    does: ${__dirname} the unpacked bundle, ${user_config.*} the user's answers
    (here the output directory; the keys left empty, as a user may)."""
    dest, manifest = unpack_bundle(tmp_path)
    answers = {"output_dir": str(out_dir), "cliproxy_url": "http://127.0.0.1:8317", "cliproxy_api_key": "", "gemini_api_key": ""}
    assert set(answers) == set(manifest["user_config"])

    def fill(value: str) -> str:
        value = value.replace("${__dirname}", str(dest))
        for k, v in answers.items():
            value = value.replace("${user_config.%s}" % k, v)
        assert "${" not in value, value
        return value

    cfg = manifest["server"]["mcp_config"]
    env = install_env(out_dir)
    env.update({k: fill(v) for k, v in cfg["env"].items()})
    params = StdioServerParameters(
        command=fill(cfg["command"]), args=[*map(fill, cfg["args"]), "--emulator"], env=env, cwd="/"
    )
    await check_server(params, out_dir, expected_tools={t["name"] for t in manifest["tools"]})
