"""The packaging files, checked offline against the binary they describe:
server.json (the MCP Registry entry) against the registry's schema and the
settings the binary documents, the MCP Bundle manifest with Anthropic's mcpb
tool and against the server's tools, the names and versions every package
carries, and the container's entry point (token required)."""

import json
import os
import pathlib
import re
import subprocess
import tomllib
import urllib.error
import urllib.request

import jsonschema
import pytest
from mcp import Client, StdioServerParameters

from conftest import ROOT, HttpServer, server_env

SCHEMA = ROOT / "tests" / "e2e" / "schemas" / "server.schema.2025-12-11.json"
SERVER_JSON = json.loads((ROOT / "server.json").read_text())
MANIFEST = json.loads((ROOT / "mcpb" / "manifest.json").read_text())
NPM_MAIN = json.loads((ROOT / "npm" / "media-gen" / "package.json").read_text())
NPM_PLATFORM = json.loads((ROOT / "npm" / "platform" / "package.json").read_text())
VERSION = tomllib.loads((ROOT / "Cargo.toml").read_text())["package"]["version"]
MCPB = ROOT / "mcpb" / "node_modules" / ".bin" / "mcpb"


def test_server_json_is_valid_for_the_registry_schema():
    schema = json.loads(SCHEMA.read_text())
    assert SERVER_JSON["$schema"] == schema["$id"]
    validator = jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(SERVER_JSON)]
    assert errors == []


def test_schema_check_catches_a_broken_entry():
    """The validation above can fail: an entry the registry would refuse."""
    schema = json.loads(SCHEMA.read_text())
    broken = json.loads(json.dumps(SERVER_JSON))
    broken["name"] = "media-gen"  # no namespace
    broken["packages"][0]["version"] = "latest"
    errors = list(jsonschema.Draft7Validator(schema).iter_errors(broken))
    assert len(errors) >= 2


def documented_variables(bin_path: str, tmp_path: pathlib.Path) -> tuple[set[str], set[str]]:
    """Every environment variable the binary documents: the settings that
    `media-gen config --json` lists (each with its variables), and the
    `[env: X]` of `media-gen serve --help` (the config file, the log filter).
    Also which of them are secrets: the settings it shows as `<redacted>`."""
    env = server_env(tmp_path / "out")
    cfg = subprocess.run([bin_path, "config", "--json"], capture_output=True, text=True, env=env, timeout=30)
    assert cfg.returncode == 0, cfg.stderr
    settings = json.loads(cfg.stdout)["settings"]
    names = {v for s in settings for v in s["env"]}
    # Secrets: with the variables server.json calls secret set, the settings
    # shown redacted (those, and any secret with a built-in default).
    declared = {e["name"] for p in SERVER_JSON["packages"] for e in p["environmentVariables"] if e.get("isSecret")}
    secret_env = env | {v: "s3cret-value" for v in declared}
    cfg2 = subprocess.run([bin_path, "config", "--json"], capture_output=True, text=True, env=secret_env, timeout=30)
    assert cfg2.returncode == 0, cfg2.stderr
    secrets = {v for s in json.loads(cfg2.stdout)["settings"] if s["value"] == "<redacted>" for v in s["env"]}
    help_text = subprocess.run([bin_path, "serve", "--help"], capture_output=True, text=True, env=env, timeout=30).stdout
    names |= set(re.findall(r"\[env: ([A-Z0-9_]+)", help_text))
    return names, secrets


def test_server_json_lists_every_documented_variable(bin_path, tmp_path):
    documented, secrets = documented_variables(bin_path, tmp_path)
    assert {"MCP_CLIPROXY_API_KEY", "MCP_OUTPUT_DIR", "MCP_CONFIG", "MEDIA_GEN_LOG"} <= documented
    for package in SERVER_JSON["packages"]:
        listed = [e["name"] for e in package["environmentVariables"]]
        assert len(listed) == len(set(listed)), f"{package['identifier']}: a variable twice"
        assert set(listed) == documented, (
            f"{package['registryType']} {package['transport']['type']}: "
            f"missing {sorted(documented - set(listed))}, not read by the binary {sorted(set(listed) - documented)}"
        )
        marked = {e["name"] for e in package["environmentVariables"] if e.get("isSecret")}
        assert marked == secrets, f"isSecret on {sorted(marked)}, the binary redacts {sorted(secrets)}"
    assert {"MCP_CLIPROXY_API_KEY", "MCP_GEMINI_API_KEY", "GEMINI_API_KEY", "MCP_HTTP_TOKEN"} <= secrets


def test_server_json_packages_and_transports():
    by_transport = {(p["registryType"], p["transport"]["type"]) for p in SERVER_JSON["packages"]}
    assert by_transport == {("pypi", "stdio"), ("npm", "stdio"), ("pypi", "streamable-http")}
    for p in SERVER_JSON["packages"]:
        assert p["identifier"] == "media-gen"
        args = [a.get("value") for a in p.get("packageArguments", [])]
        assert args[0] == "serve"
        if p["transport"]["type"] == "streamable-http":
            # The remote-capable option: HTTP, behind the token.
            assert args[1:] == ["http"] and p["packageArguments"][1]["name"] == "--transport"
            assert p["transport"]["url"].endswith("/mcp")
            (auth,) = p["transport"]["headers"]
            assert auth["name"] == "Authorization" and auth["value"] == "Bearer {MCP_HTTP_TOKEN}"
            token = next(e for e in p["environmentVariables"] if e["name"] == "MCP_HTTP_TOKEN")
            assert token["isRequired"] is True


def test_names_and_versions_agree():
    """One registry name and one version (Cargo.toml's) in every package."""
    name = SERVER_JSON["name"]
    pypi_readme = (ROOT / "pypi" / "README.md").read_text()
    assert f"mcp-name: {name}" in pypi_readme
    assert NPM_MAIN["mcpName"] == name
    assert SERVER_JSON["version"] == VERSION
    assert all(p["version"] == VERSION for p in SERVER_JSON["packages"])
    assert NPM_MAIN["version"] == VERSION == NPM_PLATFORM["version"] == MANIFEST["version"]
    assert set(NPM_MAIN["optionalDependencies"].values()) == {VERSION}
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["project"]["dynamic"] == ["version"]  # maturin takes Cargo.toml's
    assert pyproject["project"]["name"] == NPM_MAIN["name"] == MANIFEST["name"] == "media-gen"
    # The launcher knows every platform package the main package depends on.
    launcher = (ROOT / "npm" / "media-gen" / "bin" / "media-gen.js").read_text()
    for dep in NPM_MAIN["optionalDependencies"]:
        assert f'"{dep}"' in launcher


def test_bundle_manifest_validates_with_mcpb():
    assert MCPB.exists(), "npm ci --prefix mcpb (installs Anthropic's mcpb tool; .ci/run does)"
    out = subprocess.run([str(MCPB), "validate", str(ROOT / "mcpb" / "manifest.json")], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "passes" in out.stdout


def test_mcpb_validate_catches_a_broken_manifest(tmp_path):
    assert MCPB.exists(), "npm ci --prefix mcpb"
    broken = json.loads(json.dumps(MANIFEST))
    broken["server"]["type"] = "rust"
    (tmp_path / "manifest.json").write_text(json.dumps(broken))
    out = subprocess.run([str(MCPB), "validate", str(tmp_path / "manifest.json")], capture_output=True, text=True, timeout=60)
    assert out.returncode != 0


def test_bundle_manifest_settings():
    cfg = MANIFEST["server"]["mcp_config"]
    assert MANIFEST["server"]["type"] == "binary"
    assert cfg["command"] == "${__dirname}/" + MANIFEST["server"]["entry_point"]
    assert cfg["args"] == ["serve"]
    user = MANIFEST["user_config"]
    assert cfg["env"] == {
        "MCP_OUTPUT_DIR": "${user_config.output_dir}",
        "MCP_CLIPROXY_URL": "${user_config.cliproxy_url}",
        "MCP_CLIPROXY_API_KEY": "${user_config.cliproxy_api_key}",
        "MCP_GEMINI_API_KEY": "${user_config.gemini_api_key}",
    }
    assert user["output_dir"]["type"] == "directory"
    assert {k for k, v in user.items() if v.get("sensitive")} == {"cliproxy_api_key", "gemini_api_key"}
    assert not any(v.get("required") for v in user.values())  # the emulator-free defaults work


@pytest.mark.anyio
async def test_bundle_manifest_lists_the_server_tools(bin_path, out_dir):
    params = StdioServerParameters(command=bin_path, args=["serve", "--emulator"], env=server_env(out_dir), cwd="/")
    async with Client(params, mode="legacy") as client:
        names = {t.name for t in (await client.list_tools()).tools}
    assert {t["name"] for t in MANIFEST["tools"]} == names


# --- the container's entry point ----------------------------------------------

ENTRYPOINT = ROOT / "docker" / "entrypoint.sh"


def entrypoint_env(bin_path: str, out_dir: pathlib.Path, **extra: str) -> dict[str, str]:
    # The image has the binary on PATH as `media-gen`.
    bindir = out_dir.parent / "bin"
    bindir.mkdir(exist_ok=True)
    link = bindir / "media-gen"
    if not link.exists():
        link.symlink_to(bin_path)
    env = server_env(out_dir, **extra)
    env["PATH"] = f"{bindir}:{env['PATH']}"
    return env


@pytest.mark.parametrize(
    "args,env",
    [
        (["serve", "--transport", "http", "--host", "127.0.0.1", "--port", "0"], {}),
        (["serve", "--transport=dual", "--port", "0"], {}),
        (["serve", "--port", "0"], {"MCP_TRANSPORT": "http"}),
    ],
)
def test_container_refuses_http_without_token(bin_path, out_dir, args, env):
    out = subprocess.run(
        ["sh", str(ENTRYPOINT), *args], capture_output=True, text=True, timeout=30,
        env=entrypoint_env(bin_path, out_dir, **env), stdin=subprocess.DEVNULL,
    )
    assert out.returncode == 2
    assert "MCP_HTTP_TOKEN is not set" in out.stderr and "listening" not in out.stderr


def test_container_runs_other_commands_without_token(bin_path, out_dir):
    out = subprocess.run(
        ["sh", str(ENTRYPOINT), "list"], capture_output=True, text=True, timeout=30,
        env=entrypoint_env(bin_path, out_dir), stdin=subprocess.DEVNULL,
    )
    assert out.returncode == 0, out.stderr


def test_container_serves_with_token_and_requires_it(bin_path, out_dir):
    token = "t0ken-for-the-test"
    env = entrypoint_env(bin_path, out_dir, MCP_HTTP_TOKEN=token)
    # HttpServer runs `<bin> serve --transport http --port 0`: give it the entry point.
    wrapper = out_dir.parent / "entry"
    wrapper.write_text(f"#!/bin/sh\nexec sh {ENTRYPOINT} \"$@\"\n")
    wrapper.chmod(0o755)
    server = HttpServer(str(wrapper), out_dir, "--host", "127.0.0.1", MCP_HTTP_TOKEN=token, PATH=env["PATH"])
    try:
        with urllib.request.urlopen(f"{server.url}/healthz", timeout=10) as r:
            assert r.status == 200
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping"}).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(urllib.request.Request(f"{server.url}/mcp", body, headers), timeout=10)
        assert e.value.code == 401
    finally:
        assert server.stop() == 0
