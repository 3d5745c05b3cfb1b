//! The HTTP server under abuse and at the edges of the protocol, as a real
//! process: a legacy SSE client that stops reading, idle connections under
//! a low open-file limit, malformed requests, session deletion, the auth
//! scheme, shutdown with idle streams, and tool arguments of the wrong type.
//! Figures (memory, descriptors) are printed for the reliability notes
//! (`cargo test … -- --nocapture`).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::http::{Server, read_message};
use crate::support::INIT;

const JSON: (&str, &str) = ("Content-Type", "application/json");
const INITIALIZED: &str = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;

/// Resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Open file descriptors of a process.
fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count)
}

/// A PNG of noise (incompressible): about `w × h × 3` bytes.
fn noise_png(w: u32, h: u32) -> Vec<u8> {
    let pixels: Vec<u8> = (0..w * h * 3).map(|_| rand::random::<u8>()).collect();
    let img = image::RgbImage::from_raw(w, h, pixels).unwrap();
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// Waits until the server logged a line containing `text`.
fn wait_for_log(server: &Server, text: &str) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let log = server.log();
        if log.iter().any(|l| l.contains(text)) {
            return log;
        }
        assert!(Instant::now() < deadline, "no `{text}` in {log:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A legacy SSE client that never reads its stream while it asks for a
/// 6 MB image 200 times: its session is closed (one log line says why) and
/// its connection dropped, further POSTs get 404 with the next step, and
/// another session goes on working. Before the bound every POST got 202
/// and the server grew to about 2 GB.
#[test]
fn a_legacy_sse_client_that_stops_reading_is_closed_and_others_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "http", &[]);
    let pid = server.child.id();
    let png = noise_png(1450, 1450);
    let up = server.request("POST", "/files", &[("Content-Type", "image/png")], &png);
    assert!(matches!(up.status, 200 | 201), "{up:?}");
    let name = serde_json::from_str::<Value>(&up.body).unwrap()["filename"]
        .as_str()
        .unwrap()
        .to_owned();

    let post =
        |endpoint: &str, body: &str| server.request("POST", endpoint, &[JSON], body.as_bytes());
    // A client that reads.
    let (mut good, good_endpoint) = server.open_sse(&[]);
    assert_eq!(post(&good_endpoint, INIT).status, 202);
    read_message(&mut good, 1);
    assert_eq!(post(&good_endpoint, INITIALIZED).status, 202);
    // A client that stops reading after the endpoint event.
    let (mut slow, slow_endpoint) = server.open_sse(&[]);
    assert_eq!(post(&slow_endpoint, INIT).status, 202);
    assert_eq!(post(&slow_endpoint, INITIALIZED).status, 202);

    let rss_before = rss_kib(pid);
    let mut peak = rss_before;
    let mut closed_after = None;
    for i in 0..200 {
        let read = format!(
            r#"{{"jsonrpc":"2.0","id":{},"method":"resources/read","params":{{"uri":"media://files/{name}"}}}}"#,
            i + 10
        );
        let r = post(&slow_endpoint, &read);
        peak = peak.max(rss_kib(pid));
        if r.status == 404 {
            assert!(r.body.contains("GET /sse"), "{}", r.body);
            closed_after = Some(i);
            break;
        }
        assert_eq!(r.status, 202, "{r:?}");
    }
    eprintln!(
        "slow SSE reader, {} byte image: RSS before {} MiB, peak {} MiB; session closed after {:?} reads",
        png.len(),
        rss_before >> 10,
        peak >> 10,
        closed_after
    );
    let closed_after =
        closed_after.expect("the session of a client that does not read stayed open");
    assert!(closed_after < 200);
    let log = wait_for_log(&server, "closing legacy SSE session");
    let lines = log
        .iter()
        .filter(|l| l.contains("closing legacy SSE session"))
        .count();
    assert_eq!(lines, 1, "{log:?}");
    // Its connection was dropped: what the kernel still held drains, then
    // the stream ends (it does not just stall).
    slow.get_mut()
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut sink = Vec::new();
    match slow.read_to_end(&mut sink) {
        Ok(_) => {}
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
    }

    // The other session is not affected.
    let call = r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"generate_image","arguments":{"prompt":"still here"}}}"#;
    assert_eq!(post(&good_endpoint, call).status, 202);
    let result = read_message(&mut good, 2);
    assert_eq!(
        result["result"]["structuredContent"]["success"], true,
        "{result}"
    );
    eprintln!("slow SSE reader: RSS after {} MiB", rss_kib(pid) >> 10);
}

/// Under `ulimit -n 256`, 400 connections that send a request line and
/// never finish their headers: each is closed after the header timeout,
/// the server never runs out of descriptors, and a generation over HTTP
/// still succeeds. Before, the server stopped accepting ("Too many open
/// files") and backend requests failed with CLIPROXY_UNAVAILABLE.
#[test]
fn stalled_connections_time_out_and_generations_still_run_under_a_low_fd_limit() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new("prlimit");
    cmd.args(["--nofile=256:256", "--", env!("CARGO_BIN_EXE_media-gen")]);
    crate::support::in_dir(&mut cmd, dir.path());
    cmd.args(["serve", "--transport", "http", "--port", "0", "--emulator"])
        .env("MCP_HTTP_HEADER_TIMEOUT", "2")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let server = Server::spawn(cmd);
    let pid = server.child.id();
    let idle_fds = fds(pid);

    let started = Instant::now();
    let mut stalled: Vec<TcpStream> = (0..400)
        .map(|_| {
            let mut s = TcpStream::connect(&server.addr).unwrap();
            s.write_all(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                .unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let attack_fds = fds(pid);

    // A whole session over HTTP while the stalled sockets are there.
    let init = server.post_mcp(&[], INIT);
    assert_eq!(init.status, 200, "{init:?}");
    let session = init
        .headers
        .lines()
        .find_map(|l| l.strip_prefix("mcp-session-id: "))
        .unwrap()
        .trim()
        .to_owned();
    let headers = [
        ("Mcp-Session-Id", session.as_str()),
        ("MCP-Protocol-Version", "2025-11-25"),
    ];
    assert_eq!(server.post_mcp(&headers, INITIALIZED).status, 202);
    let reply = server.post_mcp(
        &headers,
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"generate_image","arguments":{"prompt":"under siege"}}}"#,
    );
    assert!(reply.body.contains("\"success\":true"), "{reply:?}");
    let served_after = started.elapsed();

    // Every stalled connection was closed by the server.
    let mut closed = 0;
    for s in &mut stalled {
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut buf = Vec::new();
        match s.read_to_end(&mut buf) {
            Ok(_) => closed += 1,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => closed += 1,
            Err(e) => panic!("a stalled connection stayed open: {e}"),
        }
    }
    drop(stalled);
    std::thread::sleep(Duration::from_millis(300));
    let after_fds = fds(pid);
    eprintln!(
        "RLIMIT_NOFILE 256, 400 stalled sockets: server fds idle {idle_fds}, under attack {attack_fds}, after {after_fds}; generation answered after {:.1} s; {closed} closed by the server",
        served_after.as_secs_f64()
    );
    assert_eq!(closed, 400);
    assert!(attack_fds < 256, "{attack_fds}");
    let log = server.log();
    assert!(
        !log.iter().any(|l| l.contains("Too many open files")),
        "{log:?}"
    );
}

/// Malformed JSON is a JSON-RPC parse error with 400; a JSON value that is
/// no message, an invalid request; DELETE answers 204, then 404; `/messages`
/// wants JSON; the bearer scheme is case-insensitive.
#[test]
fn http_protocol_details() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "http", &[("MCP_HTTP_TOKEN", "tok-123")]);
    let auth = ("Authorization", "Bearer tok-123");

    let r = server.post_mcp(&[auth], r#"{"jsonrpc":"2.0","id":1,"method":"#);
    assert_eq!(r.status, 400, "{r:?}");
    assert!(
        r.headers.contains("content-type: application/json"),
        "{}",
        r.headers
    );
    let body: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(body["error"]["code"], -32700, "{body}");
    assert_eq!(body["id"], Value::Null);
    let r = server.post_mcp(&[auth], r#"{"id":7,"hello":"world"}"#);
    assert_eq!(r.status, 400, "{r:?}");
    let body: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(body["error"]["code"], -32600, "{body}");
    assert_eq!(body["id"], 7);

    // The scheme in any case.
    for scheme in ["bearer", "BEARER", "BeArEr"] {
        let value = format!("{scheme} tok-123");
        let r = server.post_mcp(&[("Authorization", value.as_str())], INIT);
        assert_eq!(r.status, 200, "{scheme}: {r:?}");
    }

    // DELETE: 204 once, then 404.
    let init = server.post_mcp(&[auth], INIT);
    let session = init
        .headers
        .lines()
        .find_map(|l| l.strip_prefix("mcp-session-id: "))
        .unwrap()
        .trim()
        .to_owned();
    let delete = [
        auth,
        ("Mcp-Session-Id", session.as_str()),
        ("MCP-Protocol-Version", "2025-11-25"),
    ];
    let r = server.request("DELETE", "/mcp", &delete, b"");
    assert_eq!(r.status, 204, "{r:?}");
    let r = server.request("DELETE", "/mcp", &delete, b"");
    assert_eq!(r.status, 404, "{r:?}");
    assert!(r.body.contains("initialize"), "{}", r.body);

    // `/messages` takes JSON only.
    let (_stream, endpoint) = server.open_sse(&[auth]);
    for ct in [Some("text/plain"), None] {
        let mut headers = vec![auth];
        headers.extend(ct.map(|c| ("Content-Type", c)));
        let r = server.request("POST", &endpoint, &headers, INIT.as_bytes());
        assert_eq!(r.status, 415, "{ct:?}: {r:?}");
        assert!(r.body.contains("application/json"), "{}", r.body);
    }
    let r = server.request(
        "POST",
        &endpoint,
        &[auth, ("Content-Type", "application/json; charset=utf-8")],
        INIT.as_bytes(),
    );
    assert_eq!(r.status, 202, "{r:?}");
}

/// SIGTERM with a long grace period: idle streams (a legacy SSE session,
/// a Streamable HTTP GET stream) end at once, a legacy SSE session with a
/// generation under way gets its answer, and the server exits without
/// waiting out the grace period.
#[test]
fn shutdown_closes_idle_streams_and_lets_work_finish() {
    let dir = tempfile::tempdir().unwrap();
    let emulator = crate::support::EmulatorProcess::start(&["--latency-ms", "2000"]);
    let server = Server::start_with(
        dir.path(),
        "http",
        &[
            ("MCP_CLIPROXY_URL", emulator.url.as_str()),
            ("MCP_HTTP_SHUTDOWN_GRACE", "120"),
        ],
        &[],
    );
    let post = |endpoint: &str, body: &str| {
        server
            .request("POST", endpoint, &[JSON], body.as_bytes())
            .status
    };
    let (mut idle, idle_endpoint) = server.open_sse(&[]);
    assert_eq!(post(&idle_endpoint, INIT), 202);
    read_message(&mut idle, 1);
    let (mut busy, busy_endpoint) = server.open_sse(&[]);
    assert_eq!(post(&busy_endpoint, INIT), 202);
    read_message(&mut busy, 1);
    assert_eq!(post(&busy_endpoint, INITIALIZED), 202);
    // A Streamable HTTP session's GET stream.
    let init = server.post_mcp(&[], INIT);
    let session = init
        .headers
        .lines()
        .find_map(|l| l.strip_prefix("mcp-session-id: "))
        .unwrap()
        .trim()
        .to_owned();
    let mut get = TcpStream::connect(&server.addr).unwrap();
    write!(
        get,
        "GET /mcp HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\nMcp-Session-Id: {session}\r\nMCP-Protocol-Version: 2025-11-25\r\n\r\n",
        server.addr
    )
    .unwrap();
    let mut head = [0u8; 12];
    get.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 200", "{}", String::from_utf8_lossy(&head));

    let call = r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"generate_image","arguments":{"prompt":"finish me"}}}"#;
    assert_eq!(post(&busy_endpoint, call), 202);
    std::thread::sleep(Duration::from_millis(300));
    let pid = server.child.id();
    let stopping = Instant::now();
    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    // The idle streams end (EOF), long before the grace period.
    let mut rest = Vec::new();
    idle.read_to_end(&mut rest).unwrap();
    get.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    get.read_to_end(&mut rest).unwrap();
    // The busy session still gets its answer.
    let result = read_message(&mut busy, 2);
    assert_eq!(
        result["result"]["structuredContent"]["success"], true,
        "{result}"
    );
    let status = server.stop();
    assert!(status.success(), "{status:?}");
    let took = stopping.elapsed();
    eprintln!(
        "shutdown with idle streams and one generation: {:.1} s",
        took.as_secs_f64()
    );
    assert!(
        took < Duration::from_secs(60),
        "waited for the grace period: {took:?}"
    );
    assert_eq!(
        crate::support::media_files(&dir.path().join("out")).len(),
        1
    );
}

/// Arguments of the wrong type are the contract's INVALID_PARAMETER
/// result (structured, naming the parameter and what it expects) for every
/// tool; `tools/call` without params, or with `arguments` that are not an
/// object, is -32602 (invalid params).
#[test]
fn wrong_argument_types_are_invalid_parameter_results() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "http", &[]);
    let init = server.post_mcp(&[], INIT);
    let session = init
        .headers
        .lines()
        .find_map(|l| l.strip_prefix("mcp-session-id: "))
        .unwrap()
        .trim()
        .to_owned();
    let headers = [
        ("Mcp-Session-Id", session.as_str()),
        ("MCP-Protocol-Version", "2025-11-25"),
    ];
    assert_eq!(server.post_mcp(&headers, INITIALIZED).status, 202);
    let answer = |body: String| -> Value {
        let r = server.post_mcp(&headers, &body);
        // An SSE stream, or (an error rmcp maps to an HTTP status) JSON.
        serde_json::from_str::<Value>(&r.body)
            .ok()
            .into_iter()
            .chain(
                r.body
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok()),
            )
            .find(|v| v.get("id").is_some())
            .unwrap_or_else(|| panic!("no answer: {r:?}"))
    };
    let call = |tool: &str, arguments: &str| {
        answer(format!(
            r#"{{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{{"name":"{tool}","arguments":{arguments}}}}}"#
        ))
    };
    for (tool, arguments, parameter, expected) in [
        (
            "generate_image",
            r#"{"prompt":123}"#,
            "prompt",
            "expected a string",
        ),
        ("generate_image", r#"{}"#, "prompt", "is required"),
        (
            "generate_image",
            r#"{"prompt":"x","reference_images":"a.png"}"#,
            "reference_images",
            "expected a sequence",
        ),
        (
            "edit_image",
            r#"{"image_path":5,"prompt":"x"}"#,
            "image_path",
            "expected a string",
        ),
        (
            "generate_video",
            r#"{"prompt":["a"]}"#,
            "prompt",
            "expected a string",
        ),
        (
            "delete_file",
            r#"{"filename":true}"#,
            "filename",
            "expected a string",
        ),
        ("list_generated", r#"{"limit":"ten"}"#, "limit", "expected"),
    ] {
        let v = call(tool, arguments);
        let result = &v["result"];
        assert_eq!(result["isError"], true, "{tool} {arguments}: {v}");
        let error = &result["structuredContent"]["error"];
        assert_eq!(
            error["code"], "INVALID_PARAMETER",
            "{tool} {arguments}: {v}"
        );
        assert_eq!(error["details"]["parameter"], parameter, "{tool}: {v}");
        let message = error["message"].as_str().unwrap();
        assert!(message.contains(expected), "{tool}: {message}");
        assert!(
            message.contains(&format!("`{parameter}`")),
            "{tool}: {message}"
        );
        assert_eq!(result["structuredContent"]["success"], false);
    }
    // No params, or `arguments` that are not an object.
    for body in [
        r#"{"jsonrpc":"2.0","id":4,"method":"tools/call"}"#,
        r#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"generate_image","arguments":"prompt=x"}}"#,
    ] {
        let v = answer(body.to_owned());
        assert_eq!(v["error"]["code"], -32602, "{body}: {v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("arguments"),
            "{v}"
        );
    }
    // An unknown method is still -32601.
    let v = answer(r#"{"jsonrpc":"2.0","id":5,"method":"no/such"}"#.to_owned());
    assert_eq!(v["error"]["code"], -32601, "{v}");
}
