"""Three replicas of `media-gen serve --transport http` on one shared library: PostgreSQL
(catalog, jobs, usage ledger, change feed) and S3-compatible object storage (moto), all
three pointed at one emulator, driven by the official MCP client.

The servers come from `scripts/services` (scripts/test.sh and .ci/run start them and
export MEDIA_GEN_TEST_DATABASE_URL and MEDIA_GEN_TEST_S3_ENDPOINT); each test makes its
own database and bucket."""

import json
import os
import secrets
import signal
import subprocess
import urllib.error
import urllib.request

import anyio
import pytest
from mcp import Client

from conftest import HttpServer, structured

pytestmark = pytest.mark.anyio

PNG = b"\x89PNG\r\n\x1a\n"


def need(var: str) -> str:
    value = os.environ.get(var)
    if not value:
        pytest.fail(
            f"{var} is unset: start the test services first, "
            '`eval "$(scripts/services start DIR)"` (scripts/test.sh and .ci/run do)'
        )
    return value


@pytest.fixture
def shared():
    """A fresh database and bucket: the settings every replica gets."""
    db = need("MEDIA_GEN_TEST_DATABASE_URL")
    s3 = need("MEDIA_GEN_TEST_S3_ENDPOINT")
    name = "r" + secrets.token_hex(6)
    subprocess.run(["psql", db, "-qc", f"CREATE DATABASE {name}"], check=True, capture_output=True)
    urllib.request.urlopen(urllib.request.Request(f"{s3}/{name}", method="PUT"), timeout=10).read()
    yield {
        "MCP_DATABASE_URL": db.rsplit("/", 1)[0] + "/" + name,
        "MCP_STORAGE_URL": f"s3://{name}/library",
        "MCP_STORAGE_ENDPOINT": s3,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": "us-east-1",
    }
    subprocess.run(["psql", db, "-qc", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"], capture_output=True)


def emulator_stats(url: str) -> dict:
    with urllib.request.urlopen(f"{url}/emulator/stats", timeout=10) as r:
        return json.load(r)


def emulator_control(url: str, body: dict) -> None:
    req = urllib.request.Request(
        f"{url}/emulator/control",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    urllib.request.urlopen(req, timeout=10).read()


def start_replicas(bin_path, tmp_path, emulator, shared, n=3, **extra) -> list[HttpServer]:
    servers = []
    for i in range(n):
        out = tmp_path / f"replica{i}"
        out.mkdir()
        servers.append(
            HttpServer(
                bin_path,
                out,
                MCP_CLIPROXY_URL=emulator,
                MCP_GEMINI_URL=emulator,
                MCP_GEMINI_API_KEY="test-key",
                MCP_JOB_LEASE_SECONDS="3",
                MCP_VIDEO_POLL_INTERVAL="0.2",
                **shared,
                **extra,
            )
        )
    return servers


@pytest.fixture
def replicas(bin_path, tmp_path, emulator, shared):
    servers = start_replicas(bin_path, tmp_path, emulator, shared)
    yield servers
    for s in servers:
        if s.proc.poll() is None:
            s.stop()


def get(url: str, headers: dict | None = None) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


async def test_a_file_made_through_one_replica_is_listed_read_and_deleted_through_the_others(replicas):
    a, b, c = replicas
    async with (
        Client(f"{a.url}/mcp", mode="2026-07-28") as ca,
        Client(f"{b.url}/mcp", mode="2026-07-28") as cb,
        Client(f"{c.url}/mcp", mode="2026-07-28") as cc,
    ):
        made = structured(await ca.call_tool("generate_image", {"prompt": "a shared lighthouse"}))
        name = made["filename"]
        # Not on any machine's disk: no path, a link and a URI instead.
        assert "image_path" not in made and made["url"] == f"{a.url}/files/{name}"

        listed = structured(await cb.call_tool("list_generated", {}))
        assert [f["filename"] for f in listed["files"]] == [name] and listed["total"] == 1
        assert "path" not in listed["files"][0]
        info = structured(await cc.call_tool("get_file_info", {"filename": name}))
        assert info["metadata"]["prompt"] == "a shared lighthouse"

        status, from_a = get(made["url"])
        assert status == 200 and from_a.startswith(PNG)
        status, from_c = get(f"{c.url}/files/{name}")
        assert status == 200 and from_c == from_a
        status, head = get(f"{c.url}/files/{name}", {"Range": "bytes=0-7"})
        assert status == 206 and head == PNG

        r = structured(await cb.call_tool("delete_file", {"filename": name, "confirm": True}))
        assert r["success"] is True
        assert structured(await ca.call_tool("list_generated", {}))["total"] == 0
        assert get(f"{c.url}/files/{name}")[0] == 404
        gone = await cc.call_tool("get_file_info", {"filename": name})
        assert gone.is_error and structured(gone)["error"]["code"] == "FILE_NOT_FOUND"


async def test_library_changes_reach_the_clients_of_every_replica(replicas):
    a, b, _ = replicas
    arrived = anyio.Event()

    async def on_message(message) -> None:
        if getattr(message, "method", None) == "notifications/resources/list_changed":
            arrived.set()

    async with (
        Client(f"{b.url}/mcp", mode="legacy", message_handler=on_message) as listener,
        Client(f"{a.url}/mcp", mode="2026-07-28") as maker,
    ):
        assert (await listener.list_tools()).tools
        await maker.call_tool("generate_image", {"prompt": "heard on another replica"})
        with anyio.fail_after(15):
            await arrived.wait()


async def test_a_video_whose_replica_is_killed_is_finished_by_another_exactly_once(replicas, emulator):
    a, b, c = replicas
    # Long enough that the job is still running when its replica dies.
    emulator_control(emulator, {"video_polls": 12})
    async with Client(f"{a.url}/mcp", mode="2026-07-28") as ca:
        started = structured(await ca.call_tool("generate_video", {"prompt": "waves on a shore"}))
    job = started["job_id"]
    with anyio.fail_after(30):
        while emulator_stats(emulator)["video_polls"] < 2:
            await anyio.sleep(0.1)
    a.proc.send_signal(signal.SIGKILL)
    a.proc.wait(10)
    polls_before = emulator_stats(emulator)["video_polls"]

    async with Client(f"{b.url}/mcp", mode="2026-07-28") as cb:
        with anyio.fail_after(90):
            while True:
                status = structured(await cb.call_tool("get_video_status", {"job_id": job, "wait_seconds": 10}))
                if status["status"] in ("succeeded", "failed"):
                    break
        assert status["status"] == "succeeded", status
        assert emulator_stats(emulator)["video_polls"] > polls_before, "another replica went on polling"
        videos = structured(await cb.call_tool("list_generated", {"type": "video"}))
        assert videos["total"] == 1, videos
        assert videos["files"][0]["filename"] == status["filename"]
    # The third replica sees the same single file, and can serve it.
    status_c, body = get(f"{c.url}/files/{status['filename']}")
    assert status_c == 200 and body[4:8] == b"ftyp"


async def test_a_budget_cap_holds_for_calls_spread_over_replicas(bin_path, tmp_path, emulator, shared):
    servers = start_replicas(bin_path, tmp_path, emulator, shared, MCP_BUDGET_DAILY_USD="0.5")
    try:
        before = emulator_stats(emulator)["generate_requests"]
        results: list[dict] = []

        async def one(server: HttpServer, i: int) -> None:
            async with Client(f"{server.url}/mcp", mode="2026-07-28") as client:
                r = await client.call_tool("generate_image", {"prompt": f"kite {i}"})
                results.append(structured(r))

        async with anyio.create_task_group() as tg:
            for i in range(9):
                tg.start_soon(one, servers[i % 3], i)
        made = [r for r in results if r.get("success") is True]
        refused = [r for r in results if r.get("error", {}).get("code") == "BUDGET_EXCEEDED"]
        # 3 × $0.134 fits under $0.50; a fourth would not, whichever replica it reached.
        assert (len(made), len(refused)) == (3, 6), results
        assert emulator_stats(emulator)["generate_requests"] - before == 3
    finally:
        for s in servers:
            s.stop()


async def test_presigned_links_send_clients_to_the_store(bin_path, tmp_path, emulator, shared):
    (server,) = start_replicas(bin_path, tmp_path, emulator, shared, n=1, MCP_STORAGE_PRESIGN="1")
    try:
        async with Client(f"{server.url}/mcp", mode="2026-07-28") as client:
            made = structured(await client.call_tool("generate_image", {"prompt": "straight from the bucket"}))

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args, **kwargs):
                return None

        opener = urllib.request.build_opener(NoRedirect)
        with pytest.raises(urllib.error.HTTPError) as answer:
            opener.open(made["url"], timeout=10)
        assert answer.value.code == 307
        location = answer.value.headers["Location"]
        assert location.startswith(shared["MCP_STORAGE_ENDPOINT"]) and "X-Amz-Signature" in location
        status, body = get(location)
        assert status == 200 and body.startswith(PNG)
        # A download (attachment) is still served by the replica itself.
        status, served = get(made["url"] + "?download=1")
        assert status == 200 and served == body
    finally:
        server.stop()


def run(bin_path, env: dict, *args: str) -> subprocess.CompletedProcess:
    base = {"PATH": os.environ.get("PATH", ""), "HOME": env.get("HOME", "/nonexistent")}
    return subprocess.run([bin_path, *args], env={**base, **env}, capture_output=True, text=True, timeout=120)


def test_migrate_lists_then_applies_the_schema_once(bin_path, shared, tmp_path):
    env = {**shared, "HOME": str(tmp_path)}
    pending = run(bin_path, env, "migrate", "--dry-run")
    assert pending.returncode == 0, pending.stderr
    assert "would apply 1 migration" in pending.stdout and "0001_init" in pending.stdout
    applied = run(bin_path, env, "migrate")
    assert applied.returncode == 0 and "applied 1 migration" in applied.stdout, applied
    again = run(bin_path, env, "migrate", "--dry-run")
    assert "up to date" in again.stdout, again
    # A URL that is not PostgreSQL's: refused with the form it takes, never echoed.
    bad = run(bin_path, {**env, "MCP_DATABASE_URL": "mysql://u:hunter2@db.example/lib"}, "migrate")
    assert bad.returncode != 0 and "postgres://user:password@host" in bad.stderr, bad
    assert "hunter2" not in bad.stderr + bad.stdout
    # Without a database there is nothing to migrate: a clear refusal.
    local = run(bin_path, {"HOME": str(tmp_path), "MCP_OUTPUT_DIR": str(tmp_path / "out")}, "migrate")
    assert local.returncode != 0 and "MCP_DATABASE_URL" in local.stderr


async def test_a_local_library_is_imported_once_and_served_by_the_replicas(bin_path, tmp_path, shared, replicas):
    local = {"HOME": str(tmp_path), "MCP_OUTPUT_DIR": str(tmp_path / "local")}
    made = run(bin_path, local, "--emulator", "generate", "an old local picture", "another one")
    assert made.returncode == 0, made.stderr
    names = sorted(line.split("\t")[0].rsplit("/", 1)[1] for line in made.stdout.splitlines())
    env = {**shared, "HOME": str(tmp_path)}
    first = run(bin_path, env, "import", "--from", str(tmp_path / "local"))
    assert first.returncode == 0 and "imported 2 files (0 were there already)" in first.stdout, first
    second = run(bin_path, env, "import", "--from", str(tmp_path / "local"))
    assert "imported 0 files (2 were there already)" in second.stdout, second
    async with Client(f"{replicas[1].url}/mcp", mode="2026-07-28") as client:
        listed = structured(await client.call_tool("list_generated", {}))
    assert sorted(f["filename"] for f in listed["files"]) == names
    status, body = get(f"{replicas[2].url}/files/{names[0]}")
    assert status == 200 and body == (tmp_path / "local" / names[0]).read_bytes()
    missing = run(bin_path, env, "import", "--from", str(tmp_path / "nowhere"))
    assert missing.returncode != 0 and "no media-gen library" in missing.stderr


def test_readiness_follows_the_database(bin_path, tmp_path, emulator, shared):
    (server,) = start_replicas(bin_path, tmp_path, emulator, shared, n=1)
    try:
        status, body = get(f"{server.url}/readyz")
        assert status == 200 and json.loads(body) == {"status": "ready"}
        # The database goes away under the running replica.
        db = need("MEDIA_GEN_TEST_DATABASE_URL")
        name = shared["MCP_DATABASE_URL"].rsplit("/", 1)[1]
        subprocess.run(["psql", db, "-qc", f"DROP DATABASE {name} WITH (FORCE)"], check=True, capture_output=True)
        status, body = get(f"{server.url}/readyz")
        answer = json.loads(body)
        assert status == 503 and answer["status"] == "unavailable", answer
        # It names the database by host, port and name, never by its URL (which may hold a password).
        assert name in answer["error"] and "postgres://" not in answer["error"], answer
        assert get(f"{server.url}/healthz")[0] == 200, "alive, though not ready"
    finally:
        server.stop()
