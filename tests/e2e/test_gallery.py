"""The web gallery in headless Chromium (Debian's, driven by Playwright) against a real
`media-gen serve --transport http --emulator`: it lists what was generated with the prompts,
opens a detail view, follows lineage, deletes after asking, shows new media live, works from
the keyboard and on a phone-sized screen, and keeps out foreign pages and missing tokens."""

import http.server
import json
import pathlib
import subprocess
import threading
import urllib.request

import pytest

from conftest import HttpServer, server_env

PROMPTS = ["a red fox in snow", "a lighthouse at dusk"]


def generate(bin_path: str, out_dir: pathlib.Path, *args: str) -> str:
    """Runs a CLI command against the emulator; the path it printed."""
    done = subprocess.run(
        [bin_path, *args, "--emulator"],
        env=server_env(out_dir),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout.split("\t")[0].strip()


def call_tool(server: HttpServer, tool: str, arguments: dict, token: str | None = None) -> dict:
    """A stateless (2026-07-28) tools/call over Streamable HTTP."""
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {
            "name": tool,
            "arguments": arguments,
            "_meta": {
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientInfo": {"name": "gallery-test", "version": "1"},
                "io.modelcontextprotocol/clientCapabilities": {},
            },
        },
    }
    headers = {
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": "2026-07-28",
        "Mcp-Method": "tools/call",
        "Mcp-Name": tool,
    }
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(
        f"{server.url}/mcp", data=json.dumps(body).encode(), headers=headers
    )
    with urllib.request.urlopen(req, timeout=60) as r:
        text = r.read().decode()
    for line in [text, *[l[5:] for l in text.splitlines() if l.startswith("data:")]]:
        try:
            return json.loads(line)["result"]["structuredContent"]
        except (ValueError, KeyError):
            continue
    raise AssertionError(f"no answer in {text}")


@pytest.fixture(scope="module")
def library(tmp_path_factory, request):
    """A library with two images and an upscale of the first, served over HTTP."""
    from conftest import binary

    out_dir = tmp_path_factory.mktemp("gallery") / "out"
    out_dir.mkdir()
    bin_path = binary()
    fox = generate(bin_path, out_dir, "generate", PROMPTS[0])
    generate(bin_path, out_dir, "generate", PROMPTS[1])
    upscaled = generate(bin_path, out_dir, "upscale", pathlib.Path(fox).name)
    server = HttpServer(bin_path, out_dir, "--emulator")
    yield {
        "server": server,
        "out": out_dir,
        "fox": pathlib.Path(fox).name,
        "upscaled": pathlib.Path(upscaled).name,
    }
    server.stop()


def open_gallery(chromium, url: str, **viewport):
    # The page's CSP forbids eval; the test's own waits evaluate strings.
    page = chromium.new_page(
        viewport=viewport or {"width": 1280, "height": 900}, bypass_csp=True
    )
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.wait_for_selector(".card")
    page.errors = errors
    return page


def card(page, name: str):
    return page.locator(f'.card[data-name="{name}"]')


def test_lists_images_with_prompts_and_opens_the_detail(chromium, library):
    page = open_gallery(chromium, f"{library['server'].url}/gallery")
    page.wait_for_function("document.querySelectorAll('.card').length === 3")
    texts = page.locator(".card .prompt").all_inner_texts()
    for prompt in PROMPTS:
        assert prompt in texts
    assert "3 files" in page.inner_text("#count")
    # Thumbnails load (from the server's cache, made once).
    page.wait_for_function(
        "[...document.querySelectorAll('.thumb img')].every(i => i.complete && i.naturalWidth > 0)"
    )
    card(page, library["fox"]).locator("a").click()
    page.wait_for_selector("#detail[open]")
    assert page.inner_text("#prompt") == PROMPTS[0]
    assert "gemini-3-pro-image-preview" in page.inner_text("#meta")
    page.wait_for_function("document.querySelector('#media img').naturalWidth === 1024")
    assert page.get_attribute("#download", "href") == f"/files/{library['fox']}?download=1"
    assert page.url.endswith(f"#/{library['fox']}")
    page.screenshot(path=str(library["out"].parent / "gallery-detail.png"))
    assert page.errors == []
    page.close()


def test_lineage_links_go_both_ways(chromium, library):
    page = open_gallery(chromium, f"{library['server'].url}/gallery#/{library['upscaled']}")
    page.wait_for_selector("#detail[open]")
    assert "upscale" in page.inner_text("#meta")
    page.click(f'#lineage a:has-text("{library["fox"]}")')
    page.wait_for_function(
        f"document.querySelector('#detail-title').textContent === '{library['fox']}'"
    )
    derived = page.locator("#lineage li a").all_inner_texts()
    assert library["upscaled"] in derived
    page.close()


def test_keyboard_and_phone(chromium, library):
    page = open_gallery(chromium, f"{library['server'].url}/gallery", width=390, height=844)
    # Two columns that fit the screen: nothing scrolls sideways.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.keyboard.press("Tab")  # skip link
    page.keyboard.press("Tab")  # first type filter
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.closest('.card') !== null"):
            break
    assert page.evaluate("document.activeElement.closest('.card') !== null")
    page.keyboard.press("Enter")
    page.wait_for_selector("#detail[open]")
    first = page.inner_text("#detail-title")
    page.keyboard.press("ArrowRight")
    page.wait_for_function(
        f"document.querySelector('#detail-title').textContent !== '{first}'"
    )
    page.keyboard.press("Escape")
    page.wait_for_selector("#detail:not([open])", state="attached")
    # Filters: videos (none), then back to all, then prompt text.
    page.click("#types label:has-text('Videos')")
    page.wait_for_selector("#empty:not([hidden])")
    page.click("#types label:has-text('All')")
    page.fill("#q", "lighthouse")
    page.wait_for_function("document.querySelectorAll('.card').length === 1")
    assert page.inner_text(".card .prompt") == PROMPTS[1]
    page.close()


def test_new_media_appear_live_and_delete_asks_first(chromium, library):
    server = library["server"]
    page = open_gallery(chromium, f"{server.url}/gallery")
    before = page.locator(".card").count()
    made = call_tool(server, "generate_image", {"prompt": "a live arrival"})
    assert made["url"] == f"{server.url}/files/{made['filename']}"
    page.wait_for_selector(f'.card[data-name="{made["filename"]}"]', timeout=15000)
    assert page.locator(".card").count() == before + 1
    assert page.locator(".card .prompt").first.inner_text() == "a live arrival"

    name = made["filename"]
    card(page, name).locator("a").click()
    page.wait_for_selector("#detail[open]")
    page.click("#delete")
    assert page.is_visible("#confirm")
    assert name in page.inner_text("#confirm-text")
    page.click("#confirm-no")  # changed my mind: nothing happens
    assert (library["out"] / name).exists()
    page.click("#delete")
    page.click("#confirm-yes")
    page.wait_for_selector(f'.card[data-name="{name}"]', state="detached")
    page.wait_for_selector("#detail:not([open])", state="attached")
    assert not (library["out"] / name).exists()
    assert not (library["out"] / "metadata" / f"{name}.json").exists()
    assert "Deleted" in page.inner_text("#status")
    page.close()


class ForeignSite:
    """A page on another origin that tries to delete and upload through the gallery's routes."""

    def __init__(self, target: str):
        page = f"""<!doctype html><script>
        window.attempts = Promise.all([
          fetch("{target}", {{method: "DELETE", credentials: "include"}}).then(r => r.status, e => "blocked"),
          fetch("{target.rsplit('/', 1)[0]}", {{method: "POST", mode: "no-cors", credentials: "include",
                headers: {{"Content-Type": "text/plain"}}, body: "x"}}).then(r => r.type, e => "blocked"),
        ]);
        </script>""".encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.end_headers()
                self.wfile.write(page)

            def log_message(self, *args):
                pass

        self.httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"

    def close(self):
        self.httpd.shutdown()


def test_foreign_pages_and_missing_tokens_are_refused(chromium, bin_path, tmp_path):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    name = pathlib.Path(generate(bin_path, out_dir, "generate", "guarded picture")).name
    token = "gallery-secret-token"
    server = HttpServer(bin_path, out_dir, "--emulator", MCP_HTTP_TOKEN=token)
    try:
        context = chromium.new_context(bypass_csp=True)
        page = context.new_page()
        # No token: refused, and the page says how to get in.
        response = page.goto(f"{server.url}/gallery")
        assert response.status == 401
        # The token once in the address: a cookie (HttpOnly, SameSite=Strict), then the
        # gallery works without it in the address.
        page.goto(f"{server.url}/gallery?token={token}")
        page.wait_for_selector(".card")
        assert "token" not in page.url
        cookies = page.context.cookies()
        assert any(c["name"] == "media_gen_token" and c["httpOnly"] and c["sameSite"] == "Strict"
                   for c in cookies), cookies
        page.wait_for_function(
            "document.querySelector('.thumb img').complete && document.querySelector('.thumb img').naturalWidth > 0"
        )
        # Another site, in the same browser (the cookie exists), gets nothing done.
        foreign = ForeignSite(f"{server.url}/files/{name}")
        try:
            evil = context.new_page()
            evil.goto(foreign.url)
            results = evil.evaluate("window.attempts")
            assert results[0] in ("blocked", 401, 403), results
            assert (out_dir / name).exists()
            assert len([p for p in out_dir.iterdir() if p.suffix == ".png"]) == 1
        finally:
            foreign.close()
        log = "".join(server.log)
        assert token not in log, "the token must never be logged"
    finally:
        server.stop()
