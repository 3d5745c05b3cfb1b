//! The web routes beside MCP, served in process as `serve` serves them:
//! downloads (`GET /files/NAME`: bytes, Range, ETag, names), uploads
//! (`POST /files`: raw and multipart, bad and oversize images), deletes,
//! the gallery's API, thumbnails and events, download `url`s in HTTP
//! results, and the guard (token, cookie, Origin) on all of them.

use std::sync::Arc;
use std::time::Duration;

use media_gen::app::{MakeHandler, Server};
use media_gen::tools::MediaServer;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::mcp::{Harness, call, start, structured};
use crate::support::{catalog_rows, media_files};

/// An HTTP server over a harness's service, on a free port.
struct Web {
    h: Harness,
    base: String,
    http: reqwest::Client,
    shutdown: CancellationToken,
}

impl Drop for Web {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn serve(env: &[(&str, &str)]) -> Web {
    let h = start(env).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let service = h.service.clone();
    let make: MakeHandler<MediaServer> =
        Arc::new(move |access| MediaServer::new(service.clone(), access));
    let shutdown = CancellationToken::new();
    let server = Server::new(h.service.clone(), &h.settings)
        .http_server_on(listener, make, &shutdown)
        .unwrap();
    let base = format!("http://{}", server.local_addr().unwrap());
    tokio::spawn(server.run(shutdown.clone()));
    Web {
        h,
        base,
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        shutdown,
    }
}

impl Web {
    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.get(format!("{}{path}", self.base))
    }

    fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.post(format!("{}{path}", self.base))
    }

    /// `POST path` with a body of `content_type`.
    async fn upload(&self, path: &str, content_type: &str, body: Vec<u8>) -> reqwest::Response {
        self.post(path)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap()
    }

    /// An image generated through the in-memory MCP client (stdio-like: no `url`).
    async fn generate(&self, prompt: &str) -> Value {
        let r = call(
            &self.h,
            "generate_image",
            json!({"prompt": prompt, "aspect_ratio": "1:1"}),
        )
        .await;
        structured(&r)
    }

    /// A tools/call over Streamable HTTP (stateless, 2026-07-28): its
    /// structured result.
    async fn call_http(&self, tool: &str, args: Value) -> Value {
        let body = json!({
            "jsonrpc": "2.0", "id": 7, "method": "tools/call",
            "params": {"name": tool, "arguments": args, "_meta": {
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientInfo": {"name": "web-test", "version": "1"},
                "io.modelcontextprotocol/clientCapabilities": {}
            }}
        });
        let r = self
            .post("/mcp")
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", "tools/call")
            .header("mcp-name", tool)
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let text = r.text().await.unwrap();
        let answer: Value = serde_json::from_str(&text)
            .ok()
            .or_else(|| {
                text.lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .find_map(|d| serde_json::from_str(d.trim()).ok())
            })
            .unwrap_or_else(|| panic!("no JSON-RPC answer in {text}"));
        answer["result"]["structuredContent"].clone()
    }
}

fn png(width: u32, height: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(width, height, |x, y| image::Rgb([x as u8, y as u8, 90]));
    let mut out = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

fn multipart(field: &str, filename: &str, bytes: &[u8]) -> (String, Vec<u8>) {
    let boundary = "media-gen-test-boundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n\
--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{filename}\"\r\n\
Content-Type: image/png\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[tokio::test]
async fn downloads_serve_bytes_ranges_and_validators() {
    let web = serve(&[]).await;
    let image = web.generate("a lighthouse").await;
    let name = image["filename"].as_str().unwrap();
    let on_disk = std::fs::read(image["image_path"].as_str().unwrap()).unwrap();
    assert!(image.get("url").is_none(), "stdio results carry no url");

    let whole = web.get(&format!("/files/{name}")).send().await.unwrap();
    assert_eq!(whole.status(), StatusCode::OK);
    let h = whole.headers().clone();
    assert_eq!(h["content-type"], "image/png");
    assert_eq!(h["accept-ranges"], "bytes");
    assert_eq!(
        h["content-disposition"],
        format!("inline; filename=\"{name}\"").as_str()
    );
    let etag = h["etag"].to_str().unwrap().to_owned();
    assert_eq!(whole.bytes().await.unwrap(), on_disk);

    let attachment = web
        .get(&format!("/files/{name}?download=1"))
        .send()
        .await
        .unwrap();
    assert!(
        attachment.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment;")
    );

    let part = web
        .get(&format!("/files/{name}"))
        .header("range", "bytes=8-23")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        part.headers()["content-range"],
        format!("bytes 8-23/{}", on_disk.len()).as_str()
    );
    assert_eq!(part.bytes().await.unwrap(), on_disk[8..24]);
    let tail = web
        .get(&format!("/files/{name}"))
        .header("range", "bytes=-12")
        .send()
        .await
        .unwrap();
    assert_eq!(tail.bytes().await.unwrap(), on_disk[on_disk.len() - 12..]);
    let beyond = web
        .get(&format!("/files/{name}"))
        .header("range", format!("bytes={}-", on_disk.len()))
        .send()
        .await
        .unwrap();
    assert_eq!(beyond.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    // A range for another version of the file is ignored: the whole file.
    let stale = web
        .get(&format!("/files/{name}"))
        .header("range", "bytes=0-3")
        .header("if-range", "\"something-else\"")
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), StatusCode::OK);

    let cached = web
        .get(&format!("/files/{name}"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(cached.status(), StatusCode::NOT_MODIFIED);
    assert!(cached.bytes().await.unwrap().is_empty());

    // Names that are not library files: refused with the contract's codes,
    // never read from elsewhere.
    let canary_dir = tempfile::tempdir().unwrap();
    std::fs::write(canary_dir.path().join("canary.png"), b"secret").unwrap();
    for bad in [
        "/files/..%2F..%2Fcanary.png",
        "/files/%2Ftmp%2Fcanary.png",
        "/files/..",
        "/files/image_20990101_000000_000_zzzzzz.png",
        "/files/catalog.sqlite",
    ] {
        let r = web.get(bad).send().await.unwrap();
        assert!(
            matches!(r.status().as_u16(), 400 | 404),
            "{bad}: {}",
            r.status()
        );
        let body: Value = r.json().await.unwrap_or(Value::Null);
        if !body.is_null() {
            assert_eq!(body["success"], false, "{bad}");
            assert!(
                ["INVALID_PARAMETER", "FILE_NOT_FOUND"]
                    .contains(&body["error"]["code"].as_str().unwrap()),
                "{bad}: {body}"
            );
        }
    }
}

#[tokio::test]
async fn http_results_carry_download_urls() {
    let web = serve(&[("MCP_PUBLIC_URL", "https://media.example.com/")]).await;
    let image = web
        .call_http("generate_image", json!({"prompt": "over http"}))
        .await;
    let name = image["filename"].as_str().unwrap();
    assert_eq!(
        image["url"],
        format!("https://media.example.com/files/{name}")
    );
    let listed = web.call_http("list_generated", json!({})).await;
    assert_eq!(
        listed["files"][0]["url"],
        format!("https://media.example.com/files/{name}")
    );
    let info = web
        .call_http("get_file_info", json!({"filename": name}))
        .await;
    assert_eq!(info["url"], image["url"]);
    let batch = web
        .call_http("generate_image_batch", json!({"prompts": ["one", "two"]}))
        .await;
    for item in batch["results"].as_array().unwrap() {
        let url = item["url"].as_str().unwrap();
        assert!(url.ends_with(item["filename"].as_str().unwrap()), "{url}");
    }
}

#[tokio::test]
async fn the_default_url_is_the_bound_address_and_downloads() {
    let web = serve(&[]).await;
    let image = web
        .call_http("generate_image", json!({"prompt": "fetch me"}))
        .await;
    let url = image["url"].as_str().unwrap();
    assert!(url.starts_with(&web.base), "{url} vs {}", web.base);
    let bytes = web
        .http
        .get(url)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(
        bytes,
        std::fs::read(image["image_path"].as_str().unwrap()).unwrap()
    );
}

#[tokio::test]
async fn uploads_become_library_inputs() {
    let web = serve(&[
        ("MCP_INPUT_MAX_BYTES", "200K"),
        ("MCP_INPUT_MAX_PIXELS", "20000"),
    ])
    .await;
    let out = &web.h.out;

    // A raw body, named with ?name=.
    let r = web
        .upload("/files?name=holiday%20photo.png", "image/png", png(64, 48))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let up: Value = r.json().await.unwrap();
    assert_eq!(up["success"], true);
    assert_eq!(
        (up["width"].as_u64(), up["height"].as_u64()),
        (Some(64), Some(48))
    );
    let name = up["filename"].as_str().unwrap().to_owned();
    assert_eq!(up["uri"], format!("media://files/{name}"));
    assert_eq!(up["url"], format!("{}/files/{name}", web.base));
    let info = web
        .call_http("get_file_info", json!({"filename": name}))
        .await;
    assert_eq!(info["metadata"]["operation"], "upload");
    assert_eq!(info["metadata"]["original_name"], "holiday photo.png");

    // An upload is an input like any other: edit it over HTTP.
    let edited = web
        .call_http("upscale", json!({"image_path": name, "scale": 2}))
        .await;
    assert_eq!(edited["success"], true, "{edited}");
    assert_eq!(edited["metadata"]["source"], name.as_str());

    // Multipart, the field `file` among others.
    let (ct, body) = multipart("file", "../../cat.png", &png(32, 32));
    let r = web.upload("/files", &ct, body).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let up: Value = r.json().await.unwrap();
    let info = web
        .call_http("get_file_info", json!({"filename": up["filename"]}))
        .await;
    assert_eq!(info["metadata"]["original_name"], "cat.png");

    let files_before = media_files(out);
    let rows_before = catalog_rows(out);
    // Not an image; a truncated PNG; over the size limit; no `file` field;
    // no content type: each refused with its code, nothing written.
    let truncated = png(64, 64)[..60].to_vec();
    let (mp_ct, mp_body) = multipart("picture", "x.png", &png(8, 8));
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        (
            "image/png",
            b"not an image at all".to_vec(),
            400,
            "INVALID_IMAGE",
        ),
        ("image/png", truncated, 400, "INVALID_IMAGE"),
        ("image/png", vec![0u8; 300 * 1024], 413, "INVALID_IMAGE"),
        (mp_ct.as_str(), mp_body, 400, "INVALID_PARAMETER"),
        ("text/plain", b"hello".to_vec(), 415, "INVALID_PARAMETER"),
    ];
    for (ct, body, status, code) in cases {
        let r = web.upload("/files", ct, body).await;
        assert_eq!(r.status().as_u16(), status, "{ct}");
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["error"]["code"], code, "{ct}: {e}");
        assert!(!e["error"]["message"].as_str().unwrap().is_empty());
    }
    // Too many pixels: refused from the header.
    let big = web.upload("/files", "image/png", png(200, 200)).await;
    assert_eq!(big.status(), StatusCode::BAD_REQUEST);
    let e: Value = big.json().await.unwrap();
    assert_eq!(e["error"]["code"], "INVALID_IMAGE");
    assert_eq!(e["error"]["details"]["max_pixels"], 20000);
    assert_eq!(media_files(out), files_before);
    assert_eq!(catalog_rows(out), rows_before);
}

#[tokio::test]
async fn gallery_api_thumbnails_delete_and_events() {
    let web = serve(&[]).await;
    let first = web.generate("a red fox in snow").await;
    let second = web.generate("a lighthouse at dusk").await;

    let page = web.get("/gallery").send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(
        page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    assert!(page.text().await.unwrap().contains("/gallery/app.js"));
    for asset in ["/gallery/app.js", "/gallery/app.css"] {
        assert_eq!(web.get(asset).send().await.unwrap().status(), 200);
    }

    let list: Value = web
        .get("/gallery/api/files?q=fox&type=image")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["total"], 1);
    assert_eq!(list["files"][0]["prompt"], "a red fox in snow");
    assert!(
        list["files"][0]["url"]
            .as_str()
            .unwrap()
            .starts_with(&web.base)
    );
    let videos: Value = web
        .get("/gallery/api/files?type=video")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(videos["total"], 0);

    // A thumbnail: small, made once and cached beside the sidecar.
    let name = second["filename"].as_str().unwrap();
    let thumb = web
        .get(&format!("/gallery/thumbs/{name}"))
        .send()
        .await
        .unwrap();
    assert_eq!(thumb.status(), StatusCode::OK);
    assert_eq!(thumb.headers()["content-type"], "image/jpeg");
    let etag = thumb.headers()["etag"].to_str().unwrap().to_owned();
    let bytes = thumb.bytes().await.unwrap();
    let decoded = image::load_from_memory(&bytes).unwrap();
    assert_eq!(decoded.width().max(decoded.height()), 480);
    let cached = web.h.out.join("metadata").join(format!("{name}.thumb"));
    assert_eq!(std::fs::read(&cached).unwrap(), bytes);
    let again = web
        .get(&format!("/gallery/thumbs/{name}"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);

    // Events: a new file and a delete arrive on the stream.
    let mut events = web.get("/gallery/events").send().await.unwrap();
    assert_eq!(events.headers()["content-type"], "text/event-stream");
    let third = web.generate("a third one").await;
    let third_name = third["filename"].as_str().unwrap();
    let deleted = web
        .http
        .delete(format!("{}/files/{name}", web.base))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::OK);
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !(seen.contains(&format!("event: added\ndata: {third_name}"))
        && seen.contains(&format!("event: removed\ndata: {name}")))
    {
        let chunk = tokio::time::timeout_at(deadline, events.chunk())
            .await
            .expect("events arrive")
            .unwrap()
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    // The delete took the file, sidecar, thumbnail and row.
    assert!(!cached.exists());
    assert!(!web.h.out.join(name).exists());
    let gone = web
        .get(&format!("/gallery/api/files/{name}"))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    let again = web
        .http
        .delete(format!("{}/files/{name}", web.base))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_FOUND);
    let first_name = first["filename"].as_str().unwrap();
    assert!(web.h.out.join(first_name).exists());
}

#[tokio::test]
async fn web_routes_keep_the_guard_and_take_the_token_cookie() {
    let web = serve(&[("MCP_HTTP_TOKEN", "s3cret-token")]).await;
    let image = web.generate("guarded").await;
    let file = format!("/files/{}", image["filename"].as_str().unwrap());

    for path in [
        "/gallery",
        "/gallery/api/files",
        file.as_str(),
        "/gallery/events",
    ] {
        let r = web.get(path).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{path}");
    }
    let upload = web.upload("/files", "image/png", png(8, 8)).await;
    assert_eq!(upload.status(), StatusCode::UNAUTHORIZED);
    // The bearer token works as on /mcp.
    let r = web
        .get(&file)
        .bearer_auth("s3cret-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // A wrong ?token= is refused; the right one sets the cookie once and
    // redirects to the same page without it.
    let wrong = web.get("/gallery?token=nope").send().await.unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let r = web
        .get("/gallery?type=image&token=s3cret-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/gallery?type=image");
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    let pair = cookie.split(';').next().unwrap().to_owned();
    let r = web.get(&file).header("cookie", &pair).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // The cookie is for the web routes only: MCP still wants the header.
    let mcp = web
        .post("/mcp")
        .header("cookie", &pair)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(crate::support::INIT)
        .send()
        .await
        .unwrap();
    assert_eq!(mcp.status(), StatusCode::UNAUTHORIZED);

    // A foreign page cannot delete even with the cookie; the gallery's own
    // origin (same host and port) can.
    let name = image["filename"].as_str().unwrap();
    let foreign = web
        .http
        .delete(format!("{}{file}", web.base))
        .header("cookie", &pair)
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), StatusCode::FORBIDDEN);
    assert!(web.h.out.join(name).exists());
    let own = web
        .http
        .delete(format!("{}{file}", web.base))
        .header("cookie", &pair)
        .header("origin", web.base.as_str())
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), StatusCode::OK);
    assert!(!web.h.out.join(name).exists());
}

#[tokio::test]
async fn video_thumbnails_are_their_first_frame() {
    let web = serve(&[("MCP_VIDEO_POLL_INTERVAL", "0.05")]).await;
    let started = call(
        &web.h,
        "generate_video",
        json!({"prompt": "a fox running", "duration": "4s"}),
    )
    .await;
    let job = structured(&started)["job_id"].as_str().unwrap().to_owned();
    let status = call(
        &web.h,
        "get_video_status",
        json!({"job_id": job, "wait_seconds": 120}),
    )
    .await;
    let status = structured(&status);
    assert_eq!(status["status"], "succeeded", "{status}");
    let name = status["filename"].as_str().unwrap();
    let thumb = web
        .get(&format!("/gallery/thumbs/{name}"))
        .send()
        .await
        .unwrap();
    assert_eq!(thumb.status(), StatusCode::OK);
    let img = image::load_from_memory(&thumb.bytes().await.unwrap()).unwrap();
    let (w, h) = (img.width(), img.height());
    assert_eq!(w.max(h), 480);
    assert!(w > h, "a 16:9 video gives a landscape thumbnail: {w}×{h}");
    let video = web.get(&format!("/files/{name}")).send().await.unwrap();
    assert_eq!(video.headers()["content-type"], "video/mp4");
}
