"""The MCP App viewer (`ui://media-gen/viewer`) in headless Chromium, inside a test host.

The host is what a web MCP host does, kept small: it connects to a real
`media-gen serve --transport http --emulator` as a client that declares the MCP Apps
extension, reads the viewer page through `resources/read`, embeds it in a sandboxed iframe
under the default CSP the specification (2026-01-26) makes hosts apply, speaks the host side
of the protocol over postMessage (`ui/initialize`, `tool-input`, `tool-result`,
`size-changed`, teardown) and proxies the page's `resources/read` and `tools/call` to the
server. It feeds real tool results and checks what the page shows."""

import json
import urllib.request

import pytest
from playwright.sync_api import expect

from conftest import HttpServer

UI_EXTENSION = "io.modelcontextprotocol/ui"
APP_MIME = "text/html;profile=mcp-app"
VIEWER = "ui://media-gen/viewer"

# What hosts MUST apply to a UI resource that declares no `_meta.ui.csp`
# (MCP Apps specification 2026-01-26, "Host Behavior").
DEFAULT_CSP = (
    "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; media-src 'self' data:; connect-src 'none';"
)


class RpcError(Exception):
    def __init__(self, error: dict):
        super().__init__(error.get("message"))
        self.error = error


class McpHttp:
    """The host's connection to media-gen: JSON-RPC over Streamable HTTP in a 2025-11-25
    session, as a client that renders MCP Apps."""

    def __init__(self, base: str):
        self.url = f"{base}/mcp"
        self.session: str | None = None
        self.next_id = 0
        init = self.request(
            "initialize",
            {
                "protocolVersion": "2025-11-25",
                "capabilities": {"extensions": {UI_EXTENSION: {"mimeTypes": [APP_MIME]}}},
                "clientInfo": {"name": "media-gen test host", "version": "1"},
            },
        )
        self.capabilities = init["capabilities"]
        self._post({"jsonrpc": "2.0", "method": "notifications/initialized"}).close()

    def _post(self, body: dict):
        headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
        if self.session:
            headers["Mcp-Session-Id"] = self.session
            headers["MCP-Protocol-Version"] = "2025-11-25"
        req = urllib.request.Request(self.url, data=json.dumps(body).encode(), headers=headers, method="POST")
        return urllib.request.urlopen(req, timeout=180)

    def request(self, method: str, params: dict) -> dict:
        self.next_id += 1
        rid = self.next_id
        with self._post({"jsonrpc": "2.0", "id": rid, "method": method, "params": params}) as resp:
            self.session = self.session or resp.headers.get("mcp-session-id")
            if resp.headers.get("content-type", "").startswith("text/event-stream"):
                answer = next(m for m in sse_messages(resp) if m.get("id") == rid)
            else:
                answer = json.load(resp)
        if "error" in answer:
            raise RpcError(answer["error"])
        return answer["result"]

    def close(self) -> None:
        req = urllib.request.Request(self.url, headers={"Mcp-Session-Id": self.session or ""}, method="DELETE")
        urllib.request.urlopen(req, timeout=10).close()


def sse_messages(resp):
    """The JSON-RPC messages of an SSE stream (events without data, such as the priming
    event that carries only an id, are skipped)."""
    data: list[str] = []
    for raw in resp:
        line = raw.decode().rstrip("\r\n")
        if line.startswith("data:"):
            data.append(line[5:].lstrip())
        elif not line:
            if "".join(data).strip():
                yield json.loads("\n".join(data))
            data = []


def call_tool(mcp: McpHttp, name: str, arguments: dict) -> dict:
    return mcp.request("tools/call", {"name": name, "arguments": arguments})


# The host page: the view in a sandboxed iframe (scripts only: an opaque origin, apart
# from the host's), the host side of the protocol, and a log of every message.
HOST_HTML = """<!DOCTYPE html>
<html><body style="margin:0;background:#8a8a8a">
<iframe id="app" sandbox="allow-scripts" style="display:block;width:760px;height:120px;border:0"></iframe>
<script>
window.hostLog = [];
let frame;
function send(method, params) {
  frame.contentWindow.postMessage({ jsonrpc: "2.0", method, params }, "*");
}
function ask(id, method, params) {
  frame.contentWindow.postMessage({ jsonrpc: "2.0", id, method, params }, "*");
}
function start(html, toolArgs, toolResult, hostContext) {
  frame = document.getElementById("app");
  window.addEventListener("message", async (event) => {
    if (event.source !== frame.contentWindow) return;
    const msg = event.data;
    hostLog.push(msg);
    const reply = (result) => frame.contentWindow.postMessage({ jsonrpc: "2.0", id: msg.id, result }, "*");
    const fail = (error) => frame.contentWindow.postMessage({ jsonrpc: "2.0", id: msg.id, error }, "*");
    switch (msg.method) {
      case "ui/initialize":
        reply({
          protocolVersion: "2026-01-26",
          hostInfo: { name: "media-gen test host", version: "1" },
          hostCapabilities: { serverTools: {}, serverResources: {}, logging: {} },
          hostContext,
        });
        break;
      case "ui/notifications/initialized":
        send("ui/notifications/tool-input", { arguments: toolArgs });
        send("ui/notifications/tool-result", toolResult);
        break;
      case "ui/notifications/size-changed":
        frame.style.height = `${msg.params.height}px`;
        break;
      case "tools/call":
      case "resources/read": {
        const answer = await window.mcpProxy(msg.method, msg.params);
        if (answer.error) fail(answer.error); else reply(answer.result);
        break;
      }
      default:
        if (msg.method !== undefined && msg.id !== undefined) fail({ code: -32601, message: "not supported" });
    }
  });
  frame.srcdoc = html;
}
</script>
</body></html>"""


@pytest.fixture
def server(bin_path, out_dir):
    s = HttpServer(bin_path, out_dir, "--emulator", MCP_VIDEO_POLL_INTERVAL="0.2")
    yield s
    if s.proc.poll() is None:
        assert s.stop() == 0


@pytest.fixture
def mcp(server):
    m = McpHttp(server.url)
    yield m
    m.close()


def viewer_html(mcp: McpHttp, tool: str) -> str:
    """The page the tool links, read as a host reads it, with the default CSP put in force."""
    tools = {t["name"]: t for t in mcp.request("tools/list", {})["tools"]}
    meta = tools[tool]["_meta"]
    assert meta["ui"]["resourceUri"] == VIEWER == meta["ui/resourceUri"]
    assert mcp.capabilities["extensions"][UI_EXTENSION] == {"mimeTypes": [APP_MIME]}
    [content] = mcp.request("resources/read", {"uri": VIEWER})["contents"]
    assert content["uri"] == VIEWER and content["mimeType"] == APP_MIME
    assert "csp" not in content["_meta"]["ui"]
    html = content["text"]
    csp = f'<meta http-equiv="Content-Security-Policy" content="{DEFAULT_CSP}">'
    return html.replace("<head>", f"<head>\n{csp}", 1)


def open_host(browser, mcp: McpHttp, html: str, args: dict, result: dict, context: dict):
    page = browser.new_page(viewport={"width": 800, "height": 1000})
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text))

    def proxy(method: str, params: dict) -> dict:
        try:
            return {"result": mcp.request(method, params)}
        except RpcError as e:
            return {"error": e.error}

    page.expose_function("mcpProxy", proxy)
    page.set_content(HOST_HTML)
    page.evaluate("([h, a, r, c]) => start(h, a, r, c)", [html, args, result, context])
    return page, page.frame_locator("#app"), console


def host_log(page) -> list[dict]:
    return page.evaluate("() => hostLog")


def csp_violations(console: list[str]) -> list[str]:
    return [m for m in console if "Content Security Policy" in m]


def test_viewer_shows_an_image_result_and_recent_items(chromium, mcp, server, tmp_path):
    html = viewer_html(mcp, "generate_image")
    earlier = call_tool(mcp, "generate_image", {"prompt": "an earlier teal square"})["structuredContent"]
    args = {"prompt": "a lighthouse at dusk", "aspect_ratio": "16:9"}
    result = call_tool(mcp, "generate_image", args)
    out = result["structuredContent"]
    assert not result.get("isError"), out
    assert out["metadata"]["width"] == 1376
    context = {
        "theme": "dark",
        "styles": {"variables": {"--color-background-primary": "rgb(20, 24, 31)"}},
        "displayMode": "inline",
        "containerDimensions": {"width": 760, "maxHeight": 4000},
        "platform": "web",
    }
    page, view, console = open_host(chromium, mcp, html, args, result, context)

    # The file itself, read through the host, replaces the inline preview.
    image = view.locator("#image")
    expect(image).to_have_attribute("data-full", "true", timeout=30_000)
    assert image.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [1376, 768]
    assert image.evaluate("img => img.src.startsWith('data:image/png;base64,')")
    expect(view.locator("#prompt")).to_have_text("a lighthouse at dusk")
    facts = view.locator("#facts").inner_text()
    assert "gemini-3-pro-image-preview" in facts and "1376×768" in facts and "16:9" in facts
    expect(view.locator("#file")).to_have_text(out["filename"])

    # Recent items come from list_generated, their thumbnails from resources/read.
    recent = view.locator("#recent button")
    expect(recent).to_have_count(1)
    assert recent.get_attribute("data-uri") == earlier["uri"]
    view.locator("#recent img").evaluate(
        "img => img.complete && img.naturalWidth ? 0 : new Promise((ok) => img.addEventListener('load', ok))"
    )
    assert view.locator("#recent img").evaluate("img => img.naturalWidth") == 1024
    page.screenshot(path=tmp_path / "viewer-image.png")
    # Choosing it shows it in the main area.
    recent.click()
    expect(view.locator("#prompt")).to_have_text("an earlier teal square")
    expect(view.locator("#image")).to_have_attribute("data-full", "true")

    # The host's theme and styles are applied, and changes to them.
    body = view.locator("body")
    assert body.evaluate("b => getComputedStyle(b).backgroundColor") == "rgb(20, 24, 31)"
    assert body.evaluate("() => getComputedStyle(document.documentElement).colorScheme") == "dark"
    page.evaluate("() => send('ui/notifications/host-context-changed', { theme: 'light' })")
    expect(view.locator("html")).to_have_attribute("data-theme", "light")
    assert body.evaluate("() => getComputedStyle(document.documentElement).colorScheme") == "light"

    log = host_log(page)
    methods = [m.get("method") for m in log]
    # The handshake comes first, then the view's own requests.
    assert methods[:2] == ["ui/initialize", "ui/notifications/initialized"]
    assert log[0]["params"]["protocolVersion"] == "2026-01-26"
    assert log[0]["params"]["appInfo"]["name"] == "media-gen viewer"
    reads = [m["params"]["uri"] for m in log if m.get("method") == "resources/read"]
    assert out["uri"] in reads and earlier["uri"] in reads
    calls = [m["params"]["name"] for m in log if m.get("method") == "tools/call"]
    assert calls == ["list_generated"]
    # The view reports its size; the host sized the frame to it.
    sizes = [m["params"] for m in log if m.get("method") == "ui/notifications/size-changed"]
    assert sizes and sizes[-1]["width"] == 760 and sizes[-1]["height"] > 500
    assert page.locator("#app").evaluate("f => f.getBoundingClientRect().height") == sizes[-1]["height"]

    # Everything above ran under the default CSP without breaking it, and the CSP is in
    # force: the page's own attempt to reach the server is refused by it.
    assert csp_violations(console) == [], console
    violated = body.evaluate(
        """(_, url) => new Promise((ok) => {
            document.addEventListener("securitypolicyviolation", (e) => ok(e.effectiveDirective), { once: true });
            window.fetch(url).catch(() => setTimeout(() => ok("none"), 2000));
        })""",
        f"{server.url}/healthz",
    )
    assert violated == "connect-src"

    # Teardown: the host asks, the view answers.
    page.evaluate("() => ask('teardown-1', 'ui/resource-teardown', { reason: 'test over' })")
    page.wait_for_function("() => hostLog.some((m) => m.id === 'teardown-1')")
    assert [m for m in host_log(page) if m.get("id") == "teardown-1"] == [
        {"jsonrpc": "2.0", "id": "teardown-1", "result": {}}
    ]
    page.close()


def test_viewer_shows_a_batch_tile_by_tile(chromium, mcp, tmp_path):
    html = viewer_html(mcp, "generate_image_batch")
    args = {"prompts": ["a red kite", "a cat [emulator:blocked]", "a blue boat"], "aspect_ratio": "3:2"}
    result = call_tool(mcp, "generate_image_batch", args)
    out = result["structuredContent"]
    assert (out["succeeded"], out["failed"]) == (2, 1), out

    page, view, console = open_host(chromium, mcp, html, args, result, {})
    # The first image is shown; every entry has its tile, the failure its code.
    expect(view.locator("#image")).to_have_attribute("data-full", "true", timeout=30_000)
    expect(view.locator("#prompt")).to_have_text("a red kite")
    expect(view.locator("#batch-title")).to_have_text("This batch: 2 of 3")
    tiles = view.locator("#batch button")
    expect(tiles).to_have_count(3)
    expect(tiles.nth(1)).to_be_disabled()
    expect(tiles.nth(1)).to_have_text("CONTENT_BLOCKED")
    # Tiles are the inline previews the result carried (no read needed for them).
    assert tiles.nth(2).locator("img").evaluate("img => img.naturalWidth") > 0
    tiles.nth(2).click()
    expect(view.locator("#prompt")).to_have_text("a blue boat")
    expect(view.locator("#image")).to_have_attribute("data-full", "true")
    assert view.locator("#image").evaluate("img => img.naturalWidth") == out["results"][2]["metadata"]["width"]
    # The batch's own files are not repeated as "recent" (the library holds only them).
    expect(view.locator("#recent")).to_be_hidden()
    assert csp_violations(console) == [], console
    page.screenshot(path=tmp_path / "viewer-batch.png")
    page.close()


def wait_for_video(mcp: McpHttp, job_id: str) -> dict:
    for _ in range(10):
        result = call_tool(mcp, "get_video_status", {"job_id": job_id, "wait_seconds": 30})
        if result["structuredContent"]["status"] not in ("queued", "running"):
            return result
    raise AssertionError(f"job {job_id} never ended")


def check_video(view, status: dict) -> None:
    sheet = view.locator("#sheet")
    expect(sheet).to_be_visible(timeout=60_000)
    assert sheet.evaluate("img => img.naturalWidth") > 0
    assert sheet.evaluate("img => img.src.startsWith('data:image/')")
    video = view.locator("#video")
    expect(video).to_be_visible(timeout=30_000)
    video.evaluate(
        "v => v.readyState >= 1 ? 0 : new Promise((ok, no) => {"
        " v.addEventListener('loadedmetadata', ok); v.addEventListener('error', () => no(v.error.message)); })"
    )
    meta = status["metadata"]
    assert video.evaluate("v => [v.videoWidth, v.videoHeight]") == [meta["width"], meta["height"]]
    assert abs(video.evaluate("v => v.duration") - meta["duration_seconds"]) < 0.2
    assert video.evaluate("v => v.src.startsWith('data:video/mp4;base64,')")
    expect(view.locator("#prompt")).to_have_text(meta["prompt"])
    assert f"{meta['duration_seconds']:.1f} s" in view.locator("#facts").inner_text()


def test_viewer_shows_a_finished_video_with_its_contact_sheet(chromium, mcp, tmp_path):
    html = viewer_html(mcp, "get_video_status")
    args = {"prompt": "a lantern swinging in the rain", "duration": "4s"}
    started = call_tool(mcp, "generate_video", args)["structuredContent"]
    result = wait_for_video(mcp, started["job_id"])
    status = result["structuredContent"]
    assert status["status"] == "succeeded"
    assert [c["type"] for c in result["content"]] == ["text", "resource_link", "image"]

    page, view, console = open_host(
        chromium, mcp, html, {"job_id": started["job_id"]}, result, {"theme": "light"}
    )
    check_video(view, status)
    log = host_log(page)
    assert status["uri"] in [m["params"]["uri"] for m in log if m.get("method") == "resources/read"]
    # A finished status needs no more asking.
    assert "get_video_status" not in [m["params"]["name"] for m in log if m.get("method") == "tools/call"]
    assert csp_violations(console) == [], console
    page.screenshot(path=tmp_path / "viewer-video.png")
    page.close()


def test_viewer_follows_a_started_video_job_to_the_end(chromium, mcp):
    html = viewer_html(mcp, "generate_video")
    args = {"prompt": "a paper boat on a stream", "duration": "4s"}
    result = call_tool(mcp, "generate_video", args)
    started = result["structuredContent"]
    assert started["status"] in ("queued", "running")

    page, view, console = open_host(chromium, mcp, html, args, result, {})
    # The view asks get_video_status through the host until the job ends.
    final = wait_for_video(mcp, started["job_id"])["structuredContent"]
    check_video(view, final)
    asked = [m["params"] for m in host_log(page) if m.get("method") == "tools/call"]
    assert asked[0]["name"] == "get_video_status"
    assert asked[0]["arguments"]["job_id"] == started["job_id"]
    assert csp_violations(console) == [], console
    page.close()


def test_viewer_shows_a_failure_with_its_code(chromium, mcp):
    html = viewer_html(mcp, "generate_image")
    args = {"prompt": "   "}
    result = call_tool(mcp, "generate_image", args)
    assert result["isError"]

    page, view, _ = open_host(chromium, mcp, html, args, result, {})
    status = view.locator("#status")
    expect(status).to_have_class("error")
    expect(status.locator("code")).to_have_text("INVALID_PROMPT")
    expect(view.locator("#result")).to_be_hidden()
    page.close()
