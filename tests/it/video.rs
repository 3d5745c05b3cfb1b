//! Video over real HTTP against the emulator, through the MCP tools: jobs
//! that succeed (with a contact sheet of the real MP4), every failure mode,
//! the deadline, extension, the duration rule, tasks, and a restart in the
//! middle of a job (the built binary, killed and started again).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use image::GenericImageView;
use rmcp::model::{CallToolResult, ReadResourceRequestParams, ResourceContents};
use serde_json::{Value, json};

use crate::mcp::{Harness, call, start, structured};
use crate::support::{bin_in, catalog_rows, media_files};

/// Fast polls: the emulator finishes an operation after a few of them.
const FAST: (&str, &str) = ("MCP_VIDEO_POLL_INTERVAL", "0.05");

async fn control(h: &Harness, body: Value) {
    let r = reqwest::Client::new()
        .post(format!("{}/emulator/control", h._emulator.base_url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
}

async fn stats(h: &Harness) -> Value {
    crate::support::emulator_stats(&h._emulator).await
}

/// Starts a video with `tool` and waits for its job to end.
async fn made(h: &Harness, tool: &'static str, args: Value) -> (Value, CallToolResult) {
    let r = call(h, tool, args).await;
    let started = structured(&r);
    assert_eq!(r.is_error, Some(false), "{started}");
    assert_eq!(started["status"], "running", "{started}");
    let id = started["job_id"].as_str().unwrap().to_owned();
    let r = call(
        h,
        "get_video_status",
        json!({"job_id": id, "wait_seconds": 60}),
    )
    .await;
    (structured(&r), r)
}

/// The contact sheet attached to a status result.
fn sheet(r: &CallToolResult) -> image::DynamicImage {
    let data = r
        .content
        .iter()
        .find_map(|c| c.as_image().map(|i| i.data.clone()))
        .expect("a contact sheet");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .unwrap();
    assert!(bytes.len() <= 100 * 1024, "within the preview budget");
    image::load_from_memory(&bytes).unwrap()
}

fn close(a: [u8; 3], b: [u8; 3], tolerance: u8) -> bool {
    a.iter().zip(b).all(|(x, y)| x.abs_diff(y) <= tolerance)
}

#[tokio::test]
async fn generate_video_saves_a_real_mp4_with_a_contact_sheet() {
    let h = start(&[FAST]).await;
    let prompt = "a paper boat on a pond";
    let (v, r) = made(
        &h,
        "generate_video",
        json!({"prompt": prompt, "duration": "5s"}),
    )
    .await;
    assert_eq!(v["status"], "succeeded", "{v}");
    let m = &v["metadata"];
    // 5s maps to 6 s on Veo 3.x; read back from the MP4 itself.
    assert_eq!(m["duration_seconds"], 6.0, "{m}");
    assert_eq!(
        (m["width"].as_u64(), m["height"].as_u64()),
        (Some(1280), Some(720))
    );
    assert_eq!(m["mime_type"], "video/mp4");
    assert!(m["note"].as_str().unwrap().contains("extend_video"), "{m}");
    let name = v["filename"].as_str().unwrap();
    assert!(
        name.starts_with("video_") && name.ends_with(".mp4"),
        "{name}"
    );
    assert_eq!(v["video_path"], h.out.join(name).display().to_string());
    assert_eq!(v["uri"], format!("media://files/{name}"));
    // A resource link (never the video inline) and a contact sheet whose
    // first cell shows the prompt's colours.
    let link = r
        .content
        .iter()
        .find_map(|c| c.as_resource_link().cloned())
        .unwrap();
    assert_eq!(link.mime_type.as_deref(), Some("video/mp4"));
    let img = sheet(&r);
    assert!(img.width() <= 512 && img.height() <= 512);
    let [top, _, _] = media_gen::emulator::video::colours(
        format!("veo-3.1-generate-preview\0{prompt}").as_bytes(),
    );
    let p = img.get_pixel(3, 1).0;
    assert!(close([p[0], p[1], p[2]], top, 30), "{p:?} vs {top:?}");
    // The emulator saw Veo's wire: 6 s, 16:9, 720p.
    let last = &stats(&h).await["last_video_request"];
    assert_eq!(
        (
            &last["duration_seconds"],
            &last["aspect_ratio"],
            &last["resolution"]
        ),
        (&json!(6), &json!("16:9"), &json!("720p"))
    );

    // The library knows it as a video.
    let list = structured(&call(&h, "list_generated", json!({"type": "video"})).await);
    assert_eq!(list["total"], 1);
    assert_eq!(list["files"][0]["type"], "video");
    let info = structured(&call(&h, "get_file_info", json!({"filename": name})).await);
    assert_eq!(
        (&info["mime_type"], &info["width"], &info["height"]),
        (&json!("video/mp4"), &json!(1280), &json!(720))
    );
    assert_eq!(info["metadata"]["job_id"], v["job_id"]);
    let read = h
        .client
        .read_resource(ReadResourceRequestParams::new(format!(
            "media://files/{name}"
        )))
        .await
        .unwrap();
    match &read.contents[0] {
        ResourceContents::BlobResourceContents {
            mime_type, blob, ..
        } => {
            assert_eq!(mime_type.as_deref(), Some("video/mp4"));
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(blob)
                .unwrap();
            assert_eq!(&bytes[4..8], b"ftyp");
        }
        other => panic!("expected a blob, got {other:?}"),
    }
    let del = call(
        &h,
        "delete_file",
        json!({"filename": name, "confirm": true}),
    )
    .await;
    assert_eq!(del.is_error, Some(false));
    assert!(media_files(&h.out).is_empty());
    // The job still says what it made, and that it is gone.
    let r = call(&h, "get_video_status", json!({"job_id": v["job_id"]})).await;
    let after = structured(&r);
    assert_eq!(after["status"], "succeeded");
    assert!(
        after["note"].as_str().unwrap().contains("deleted"),
        "{after}"
    );
}

#[tokio::test]
async fn failure_modes_end_the_job_with_their_codes_and_leave_nothing() {
    // A short request timeout so failing downloads end soon; the deadline
    // only for the job that never finishes (a loaded machine may take a
    // while over the others).
    let h = start(&[FAST, ("MCP_REQUEST_TIMEOUT", "2")]).await;
    let late = start(&[FAST, ("MCP_VIDEO_DEADLINE", "2")]).await;
    for (mode, code, says) in [
        (
            "operation_failed",
            "GENERATION_FAILED",
            "could not make the video",
        ),
        ("blocked", "CONTENT_BLOCKED", "safety"),
        (
            "download_error",
            "GENERATION_FAILED",
            "could not be downloaded",
        ),
        ("expired", "GENERATION_FAILED", "no longer has"),
        ("never_finishes", "GENERATION_TIMEOUT", "not ready within"),
    ] {
        let h = if mode == "never_finishes" { &late } else { &h };
        let (v, r) = made(
            h,
            "generate_video",
            json!({"prompt": format!("a storm [emulator:{mode}]"), "duration": "8s"}),
        )
        .await;
        assert_eq!(v["status"], "failed", "{mode}: {v}");
        assert_eq!(r.is_error, Some(true), "{mode}");
        assert_eq!(v["error"]["code"], code, "{mode}: {v}");
        let message = v["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{mode}: {message}");
        assert!(media_files(&h.out).is_empty(), "{mode} left a file");
    }
    // Refused at submission: a tool error at once, no job id.
    let r = call(
        &h,
        "generate_video",
        json!({"prompt": "a storm [emulator:auth]"}),
    )
    .await;
    assert_eq!(r.is_error, Some(true));
    assert_eq!(structured(&r)["error"]["code"], "AUTH_FAILED");
    assert!(
        structured(&r)["error"]["message"]
            .as_str()
            .unwrap()
            .contains("MCP_GEMINI_API_KEY")
    );
    assert_eq!(catalog_rows(&h.out), 0);
}

#[tokio::test]
async fn bad_requests_are_refused_before_any_backend_call() {
    let h = start(&[FAST]).await;
    for (args, code, says) in [
        (
            json!({"prompt": "x", "aspect_ratio": "1:1"}),
            "INVALID_PARAMETER",
            "16:9, 9:16",
        ),
        (
            json!({"prompt": "x", "duration": "forever"}),
            "INVALID_PARAMETER",
            "4s, 6s, 8s",
        ),
        (
            json!({"prompt": "x", "model": "veo-9"}),
            "INVALID_MODEL",
            "veo-3.1-generate-preview",
        ),
        (
            json!({"prompt": "x", "model": "veo-3.0-generate-001", "resolution": "4k"}),
            "INVALID_PARAMETER",
            "720p, 1080p",
        ),
        (
            json!({"prompt": "x", "reference_images": ["a", "b", "c", "d"]}),
            "INVALID_PARAMETER",
            "at most 3",
        ),
        (
            json!({"prompt": " "}),
            "INVALID_PARAMETER",
            "prompt is empty",
        ),
    ] {
        let r = call(&h, "generate_video", args.clone()).await;
        let v = structured(&r);
        assert_eq!(r.is_error, Some(true), "{args}");
        assert_eq!(v["error"]["code"], code, "{args}: {v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(says),
            "{args}: {v}"
        );
    }
    assert_eq!(stats(&h).await["video_submits"], 0);
    for (id, wait) in [("job_20260101_000000_000_nosuch", 0), ("../etc", 0)] {
        let v = structured(
            &call(
                &h,
                "get_video_status",
                json!({"job_id": id, "wait_seconds": wait}),
            )
            .await,
        );
        assert_eq!(v["error"]["code"], "JOB_NOT_FOUND", "{v}");
    }
    let v = structured(
        &call(
            &h,
            "get_video_status",
            json!({"job_id": "job_x", "wait_seconds": 500}),
        )
        .await,
    );
    assert_eq!(v["error"]["code"], "INVALID_PARAMETER", "{v}");
}

#[tokio::test]
async fn wait_seconds_returns_while_running_then_the_result() {
    let h = start(&[("MCP_VIDEO_POLL_INTERVAL", "0.3")]).await;
    control(&h, json!({"video_polls": 4})).await;
    let r = call(&h, "generate_video", json!({"prompt": "slow tide"})).await;
    let id = structured(&r)["job_id"].as_str().unwrap().to_owned();
    let at = Instant::now();
    let v = structured(
        &call(
            &h,
            "get_video_status",
            json!({"job_id": id, "wait_seconds": 0}),
        )
        .await,
    );
    assert!(at.elapsed() < Duration::from_secs(1));
    assert_eq!(v["status"], "running");
    assert!(v["note"].as_str().unwrap().contains("wait_seconds"), "{v}");
    let v = structured(
        &call(
            &h,
            "get_video_status",
            json!({"job_id": id, "wait_seconds": 60}),
        )
        .await,
    );
    assert_eq!(v["status"], "succeeded", "{v}");
}

#[tokio::test]
async fn image_to_video_starts_and_ends_on_the_given_frames() {
    let h = start(&[FAST]).await;
    std::fs::create_dir_all(&h.out).unwrap();
    let red = h.out.join("red.png");
    let blue = h.out.join("blue.png");
    image::RgbImage::from_pixel(900, 1600, image::Rgb([220, 20, 20]))
        .save(&red)
        .unwrap();
    image::RgbImage::from_pixel(900, 1600, image::Rgb([20, 20, 220]))
        .save(&blue)
        .unwrap();
    let (v, r) = made(
        &h,
        "image_to_video",
        json!({"image_path": red, "last_frame": blue, "prompt": "it turns blue", "duration": "4s"}),
    )
    .await;
    assert_eq!(v["status"], "succeeded", "{v}");
    // A portrait image gives a portrait video.
    let m = &v["metadata"];
    assert_eq!(
        (m["width"].as_u64(), m["height"].as_u64()),
        (Some(720), Some(1280)),
        "{m}"
    );
    assert_eq!(m["aspect_ratio"], "9:16");
    assert_eq!(m["operation"], "image_to_video");
    let last = &stats(&h).await["last_video_request"];
    assert_eq!(
        (&last["image"], &last["last_frame"]),
        (&json!(true), &json!(true))
    );
    let img = sheet(&r).to_rgb8();
    let first = img.get_pixel(img.width() / 4, img.height() / 4).0;
    let end = img.get_pixel(3 * img.width() / 4, 3 * img.height() / 4).0;
    assert!(close(first, [220, 20, 20], 40), "first frame {first:?}");
    assert!(close(end, [20, 20, 220], 40), "last frame {end:?}");
    // Veo 3.0 cannot end on a frame: refused with what can.
    let r = call(
        &h,
        "image_to_video",
        json!({"image_path": red, "last_frame": blue, "model": "veo-3.0-generate-001"}),
    )
    .await;
    assert_eq!(structured(&r)["error"]["code"], "INVALID_PARAMETER");
}

#[tokio::test]
async fn extend_video_continues_a_veo_video_until_its_copy_expires() {
    let h = start(&[FAST]).await;
    let (v, _) = made(
        &h,
        "generate_video",
        json!({"prompt": "a kite rising", "duration": "8s", "aspect_ratio": "9:16"}),
    )
    .await;
    let original = v["filename"].as_str().unwrap().to_owned();
    let (e, r) = made(
        &h,
        "extend_video",
        json!({"video": original, "prompt": "the kite loops"}),
    )
    .await;
    assert_eq!(e["status"], "succeeded", "{e}");
    let m = &e["metadata"];
    assert_eq!(m["duration_seconds"], 15.0, "8 s + 7 s: {m}");
    assert_eq!(
        (m["width"].as_u64(), m["height"].as_u64()),
        (Some(720), Some(1280))
    );
    assert_eq!(m["source"], original.as_str());
    assert_eq!(m["operation"], "extend_video");
    assert_ne!(e["filename"], original.as_str());
    sheet(&r);
    let last = &stats(&h).await["last_video_request"];
    assert!(
        last["extend"].as_str().unwrap().contains(":download"),
        "{last}"
    );
    // The extension's lineage points at the original.
    let info = structured(&call(&h, "get_file_info", json!({"filename": original})).await);
    assert_eq!(info["lineage"]["derived"][0], e["filename"]);

    // An image cannot be extended; nor can a video Veo 3.0 made.
    let img = structured(&call(&h, "generate_image", json!({"prompt": "a kite"})).await);
    let r = call(
        &h,
        "extend_video",
        json!({"video": img["filename"], "prompt": "x"}),
    )
    .await;
    let err = structured(&r);
    assert_eq!(err["error"]["code"], "INVALID_PARAMETER", "{err}");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("image_to_video")
    );
    let (old, _) = made(
        &h,
        "generate_video",
        json!({"prompt": "old", "model": "veo-3.0-fast-generate-001"}),
    )
    .await;
    let r = call(
        &h,
        "extend_video",
        json!({"video": old["filename"], "prompt": "x"}),
    )
    .await;
    assert!(
        structured(&r)["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Veo 3.1"),
        "{:?}",
        structured(&r)
    );
    let r = call(
        &h,
        "extend_video",
        json!({"video": "video_20260101_000000_000_abcdef.mp4", "prompt": "x"}),
    )
    .await;
    assert_eq!(structured(&r)["error"]["code"], "FILE_NOT_FOUND");

    // Once the provider's copy has expired, the provider refuses, clearly.
    control(&h, json!({"expire_samples": true})).await;
    let r = call(
        &h,
        "extend_video",
        json!({"video": original, "prompt": "more"}),
    )
    .await;
    let err = structured(&r);
    assert_eq!(r.is_error, Some(true));
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expired"),
        "{err}"
    );
}

/// Sends one JSON-RPC message to `/mcp` at protocol `version` (in a
/// session when `session` is given); the first JSON-RPC message of the
/// answer (JSON or an SSE event) and the session id it names, if any.
fn rpc(port: u16, version: &str, session: Option<&str>, body: &Value) -> (Value, Option<String>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let body = body.to_string();
    let mut head = format!(
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nMCP-Protocol-Version: {version}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if let Some(id) = session {
        head.push_str(&format!("Mcp-Session-Id: {id}\r\n"));
    }
    if version == "2026-07-28" {
        // The 2026-07-28 transport names the method (and tool) in headers.
        if let Some(m) = body_method(&body) {
            head.push_str(&format!("Mcp-Method: {m}\r\n"));
        }
        let params = serde_json::from_str::<Value>(&body).unwrap_or_default()["params"].clone();
        if let Some(n) = params["name"].as_str().or(params["taskId"].as_str()) {
            head.push_str(&format!("Mcp-Name: {n}\r\n"));
        }
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body.as_bytes()).unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (headers, rest) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let session = headers.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("mcp-session-id")
            .then(|| value.trim().to_owned())
    });
    let message = rest
        .lines()
        .map(|l| l.strip_prefix("data: ").unwrap_or(l))
        .find_map(|l| {
            serde_json::from_str::<Value>(l.trim())
                .ok()
                .filter(|v| v.get("jsonrpc").is_some())
        })
        .unwrap_or(Value::Null);
    (message, session)
}

fn body_method(body: &str) -> Option<String> {
    serde_json::from_str::<Value>(body)
        .ok()?
        .get("method")?
        .as_str()
        .map(str::to_owned)
}

struct Served {
    child: Child,
    port: u16,
}

impl Served {
    fn start(dir: &std::path::Path, emulator: &str, env: &[(&str, &str)]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut cmd = bin_in(dir);
        cmd.args(["serve", "--transport", "http", "--port", &port.to_string()])
            .env("MCP_GEMINI_URL", emulator)
            .env("MCP_GEMINI_API_KEY", "test-key")
            .env("MCP_CLIPROXY_URL", emulator)
            .env("MCP_VIDEO_POLL_INTERVAL", "0.2")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        // Ready when it says where it listens.
        let stderr = child.stderr.take().unwrap();
        let mut lines = BufReader::new(stderr).lines();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            assert!(Instant::now() < deadline, "server did not start");
            match lines.next() {
                Some(Ok(l)) if l.contains("listening on") => break,
                Some(_) => {}
                None => panic!("server exited"),
            }
        }
        std::thread::spawn(move || for _ in lines.by_ref() {});
        Self { child, port }
    }

    fn call(&self, session: Option<&str>, id: u64, method: &str, params: Value) -> Value {
        let mut params = params;
        if session.is_none() {
            // 2026-07-28: every request says who it is and what it supports.
            params["_meta"] = json!({
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientCapabilities": {"extensions": {"io.modelcontextprotocol/tasks": {}}},
                "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"}
            });
        }
        let version = if session.is_some() {
            "2025-11-25"
        } else {
            "2026-07-28"
        };
        let (reply, _) = rpc(
            self.port,
            version,
            session,
            &json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}),
        );
        assert!(reply.is_object(), "no answer to {method}");
        reply
    }

    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn emulator() -> media_gen::emulator::EmulatorHandle {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    media_gen::emulator::start(listener, media_gen::emulator::EmulatorOptions::default())
        .await
        .unwrap()
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_survives_a_server_killed_mid_way_and_its_file_appears_once() {
    let emu = emulator().await;
    let url = emu.base_url();
    reqwest::Client::new()
        .post(format!("{url}/emulator/control"))
        .json(&json!({"video_polls": 1000}))
        .send()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    let (server, id) = {
        let url = url.clone();
        blocking(move || {
            let server = Served::start(&path, &url, &[]);
            let r = server.call(
                None,
                1,
                "tools/call",
                json!({"name": "generate_video", "arguments": {"prompt": "a clock ticking"}}),
            );
            // This request declares the tasks extension: the answer is a
            // task, whose id is the job's.
            let id = r["result"]["taskId"]
                .as_str()
                .or_else(|| r["result"]["structuredContent"]["job_id"].as_str())
                .unwrap_or_else(|| panic!("{r}"))
                .to_owned();
            (server, id)
        })
        .await
    };
    // Polled at least once by the first server, then killed (SIGKILL).
    let deadline = Instant::now() + Duration::from_secs(20);
    while crate::support::emulator_stats(&emu).await["video_polls"].as_u64() < Some(1) {
        assert!(Instant::now() < deadline, "never polled");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    blocking(move || server.kill()).await;
    let polls_before = crate::support::emulator_stats(&emu).await["video_polls"]
        .as_u64()
        .unwrap();
    // The provider finishes while no server runs.
    reqwest::Client::new()
        .post(format!("{url}/emulator/control"))
        .json(&json!({"video_polls": 0}))
        .send()
        .await
        .unwrap();
    let path = dir.path().to_owned();
    let out = dir.path().join("out");
    let job = id.clone();
    let status = blocking(move || {
        let server = Served::start(&path, &url, &[]);
        let r = server.call(
            None,
            2,
            "tools/call",
            json!({"name": "get_video_status", "arguments": {"job_id": job, "wait_seconds": 60}}),
        );
        drop(server);
        r
    })
    .await;
    let v = &status["result"]["structuredContent"];
    assert_eq!(v["status"], "succeeded", "{status}");
    let polls_after = crate::support::emulator_stats(&emu).await["video_polls"]
        .as_u64()
        .unwrap();
    assert!(
        polls_after > polls_before,
        "the second server resumed polling"
    );
    let files: Vec<String> = media_files(&out)
        .into_iter()
        .filter(|f| f.ends_with(".mp4"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(v["filename"], files[0].as_str());
    assert_eq!(catalog_rows(&out), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_task_flow_at_both_protocol_versions() {
    let emu = emulator().await;
    let url = emu.base_url();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    blocking(move || {
        let server = Served::start(&path, &url, &[]);
        // 2025-11-25: initialize with the tasks extension, then a session.
        let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {"extensions": {"io.modelcontextprotocol/tasks": {}}},
            "clientInfo": {"name": "t", "version": "1"}}});
        let (r, session) = rpc(server.port, "2025-11-25", None, &init);
        assert!(r["result"]["capabilities"]["extensions"]["io.modelcontextprotocol/tasks"].is_object(), "{r}");
        let session = session.expect("a session id");
        rpc(
            server.port,
            "2025-11-25",
            Some(&session),
            &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        );
        for (label, session) in [("2025-11-25", Some(session.as_str())), ("2026-07-28", None)] {
            let r = server.call(session, 10, "tools/call", json!({"name": "generate_video", "arguments": {"prompt": format!("task {label}")}}));
            assert_eq!(r["result"]["resultType"], "task", "{label}: {r}");
            assert_eq!(r["result"]["status"], "working", "{label}: {r}");
            let task = r["result"]["taskId"].as_str().unwrap().to_owned();
            let deadline = Instant::now() + Duration::from_secs(30);
            let done = loop {
                let g = server.call(session, 11, "tasks/get", json!({"taskId": task}));
                if g["result"]["status"] == "completed" {
                    break g;
                }
                assert_eq!(g["result"]["status"], "working", "{label}: {g}");
                assert!(Instant::now() < deadline, "{label}: task never completed");
                std::thread::sleep(Duration::from_millis(100));
            };
            let result = &done["result"]["result"];
            assert_eq!(result["structuredContent"]["status"], "succeeded", "{label}: {done}");
            assert_eq!(result["isError"], false);
            assert!(
                result["content"].as_array().unwrap().iter().any(|c| c["type"] == "image"),
                "{label}: the finished video's contact sheet"
            );
            // Cancelled: no file, the task says so.
            let r = server.call(session, 12, "tools/call", json!({"name": "generate_video", "arguments": {"prompt": format!("never [emulator:never_finishes] {label}")}}));
            let task = r["result"]["taskId"].as_str().unwrap().to_owned();
            let c = server.call(session, 13, "tasks/cancel", json!({"taskId": task}));
            assert!(c.get("error").is_none(), "{label}: {c}");
            let g = server.call(session, 14, "tasks/get", json!({"taskId": task}));
            assert_eq!(g["result"]["status"], "cancelled", "{label}: {g}");
            let g = server.call(session, 15, "tasks/get", json!({"taskId": "job_nope"}));
            assert_eq!(g["error"]["code"], -32602, "{label}: {g}");
        }
    })
    .await;
}

#[tokio::test]
async fn cliproxy_serves_videos_through_its_openai_routes() {
    let h = start(&[FAST, ("MCP_VIDEO_BACKEND", "cliproxy")]).await;
    // The default becomes CLIProxyAPI's model; 1:1 is one of its ratios.
    let (v, r) = made(
        &h,
        "generate_video",
        json!({"prompt": "a square dance", "aspect_ratio": "1:1"}),
    )
    .await;
    assert_eq!(v["status"], "succeeded", "{v}");
    let m = &v["metadata"];
    assert_eq!(m["model"], "grok-imagine-video");
    assert_eq!(
        (m["width"].as_u64(), m["height"].as_u64()),
        (Some(720), Some(720))
    );
    assert_eq!(m["duration_seconds"], 6.0);
    sheet(&r);
    let last = &stats(&h).await["last_video_request"];
    assert_eq!(
        (&last["api"], &last["aspect_ratio"]),
        (&json!("openai"), &json!("1:1"))
    );
    // Veo is not served here: refused, saying what to set.
    let r = call(
        &h,
        "generate_video",
        json!({"prompt": "x", "model": "veo-3.1-generate-preview"}),
    )
    .await;
    let err = structured(&r);
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("MCP_VIDEO_BACKEND=gemini"),
        "{err}"
    );
    // A moderated request ends as CONTENT_BLOCKED.
    let (v, _) = made(
        &h,
        "generate_video",
        json!({"prompt": "x [emulator:blocked]"}),
    )
    .await;
    assert_eq!(v["error"]["code"], "CONTENT_BLOCKED", "{v}");
}

#[tokio::test]
async fn an_mp4_put_in_the_library_by_hand_is_catalogued_as_a_video() {
    let h = start(&[]).await;
    std::fs::create_dir_all(&h.out).unwrap();
    let mp4 = media_gen::emulator::video::render_mp4(&media_gen::emulator::video::Clip {
        seed: b"by hand".to_vec(),
        prompt: "by hand".into(),
        width: 320,
        height: 180,
        seconds: 2,
        first: None,
        last: None,
    })
    .unwrap();
    std::fs::write(h.out.join("holiday.mp4"), &mp4).unwrap();
    h.service.reconcile().await.unwrap();
    let list = structured(&call(&h, "list_generated", json!({"type": "video"})).await);
    assert_eq!(list["total"], 1, "{list}");
    let f = &list["files"][0];
    assert_eq!(
        (&f["filename"], &f["mime_type"], &f["width"], &f["height"]),
        (
            &json!("holiday.mp4"),
            &json!("video/mp4"),
            &json!(320),
            &json!(180)
        )
    );
    let info = structured(&call(&h, "get_file_info", json!({"filename": "holiday.mp4"})).await);
    assert_eq!(info["metadata"]["duration_seconds"], 2.0, "{info}");
    // Not made here: nothing to extend.
    let r = call(
        &h,
        "extend_video",
        json!({"video": "holiday.mp4", "prompt": "more"}),
    )
    .await;
    assert!(
        structured(&r)["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not made by a video job"),
    );
}
