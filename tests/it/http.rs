//! The HTTP server as a real process: routes, security (Host, Origin, token,
//! body limit, session cap), the legacy SSE bridge, graceful shutdown and
//! dual mode.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{INIT, bin_in};

/// A running `media-gen serve --transport http` on a free port.
pub(crate) struct Server {
    pub(crate) child: Child,
    /// `127.0.0.1:PORT`.
    pub(crate) addr: String,
    /// Every line the server wrote to stderr so far.
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Server {
    pub(crate) fn start(dir: &Path, transport: &str, env: &[(&str, &str)]) -> Self {
        Self::start_with(dir, transport, env, &["--emulator"])
    }

    pub(crate) fn start_with(
        dir: &Path,
        transport: &str,
        env: &[(&str, &str)],
        args: &[&str],
    ) -> Self {
        let mut cmd = bin_in(dir);
        cmd.args(["serve", "--transport", transport, "--port", "0"])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        Self::spawn(cmd)
    }

    pub(crate) fn spawn(mut cmd: Command) -> Self {
        let mut child = cmd.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let lines = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    let _ = tx.send(rest.split_whitespace().next().unwrap_or("").to_owned());
                }
                lines.lock().unwrap().push(line);
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("server did not announce its address");
        Self { child, addr, log }
    }

    /// What the server logged so far.
    pub(crate) fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// A raw HTTP/1.1 request; returns (status, headers, body).
    pub(crate) fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Reply {
        let mut s = TcpStream::connect(&self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut head = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
            head.push_str(&format!("Host: {}\r\n", self.addr));
        }
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        s.write_all(head.as_bytes()).unwrap();
        // A server may refuse before reading a large body; that is fine.
        let _ = s.write_all(body);
        let mut raw = Vec::new();
        let _ = s.read_to_end(&mut raw);
        Reply::parse(&raw)
    }

    pub(crate) fn post_mcp(&self, headers: &[(&str, &str)], body: &str) -> Reply {
        let mut all = vec![
            ("Content-Type", "application/json"),
            ("Accept", "application/json, text/event-stream"),
        ];
        all.extend_from_slice(headers);
        self.request("POST", "/mcp", &all, body.as_bytes())
    }

    /// Opens `GET /sse` and returns the stream and the endpoint it names.
    pub(crate) fn open_sse(&self, headers: &[(&str, &str)]) -> (BufReader<TcpStream>, String) {
        let mut s = TcpStream::connect(&self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut head = format!("GET /sse HTTP/1.1\r\nHost: {}\r\n", self.addr);
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("Accept: text/event-stream\r\n\r\n");
        s.write_all(head.as_bytes()).unwrap();
        let mut r = BufReader::new(s);
        let mut status = String::new();
        r.read_line(&mut status).unwrap();
        assert!(status.contains(" 200 "), "{status}");
        let mut endpoint = String::new();
        loop {
            let mut line = String::new();
            if r.read_line(&mut line).unwrap() == 0 {
                panic!("SSE stream ended before the endpoint event");
            }
            if let Some(data) = line.trim().strip_prefix("data: ")
                && data.starts_with("/messages")
            {
                endpoint = data.to_owned();
            }
            if !endpoint.is_empty() {
                break;
            }
        }
        (r, endpoint)
    }

    pub(crate) fn stop(mut self) -> std::process::ExitStatus {
        // SIGTERM: the graceful path.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "server did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: String,
    pub(crate) body: String,
}

impl Reply {
    fn parse(raw: &[u8]) -> Self {
        let text = String::from_utf8_lossy(raw);
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        Self {
            status,
            headers: head.to_ascii_lowercase(),
            body: body.to_owned(),
        }
    }
}

/// An SSE `data:` line holding a JSON-RPC message with `id`.
pub(crate) fn read_message(r: &mut BufReader<TcpStream>, id: u64) -> serde_json::Value {
    loop {
        let mut line = String::new();
        assert!(r.read_line(&mut line).unwrap() > 0, "stream ended");
        if let Some(data) = line.trim().strip_prefix("data: ")
            && let Ok(v) = serde_json::from_str::<serde_json::Value>(data)
            && v["id"] == id
        {
            return v;
        }
    }
}

/// The default log of `serve` over HTTP is one line per request, not the
/// library's internals, and the warning about an open address names the
/// port really bound (`--port 0` asks the system for one).
#[test]
fn default_logs_are_a_line_per_request_and_name_the_real_port() {
    let dir = tempfile::tempdir().unwrap();
    // The default filter (the test helper's environment asks for `warn`).
    let server = Server::start_with(
        dir.path(),
        "http",
        &[("MEDIA_GEN_LOG", "")],
        &["--emulator", "--host", "0.0.0.0"],
    );
    let port = server.addr.rsplit(':').next().unwrap().to_owned();
    assert_ne!(port, "0");
    let r = server.request("GET", "/healthz", &[], b"");
    assert_eq!(r.status, 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server.log().iter().any(|l| l.contains("GET /healthz 200")) {
        assert!(
            Instant::now() < deadline,
            "no request line: {:?}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let log = server.log();
    let warning = log
        .iter()
        .find(|l| l.contains("WITHOUT MCP_HTTP_TOKEN"))
        .unwrap_or_else(|| panic!("no warning: {log:?}"));
    assert!(warning.contains(&format!(":{port}")), "{warning}");
    assert!(
        !log.iter()
            .any(|l| l.contains("reconciled") || l.contains("ReconcileReport")),
        "{log:?}"
    );
}

#[test]
fn healthz_and_streamable_http_initialize() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "http", &[]);
    let r = server.request("GET", "/healthz", &[], b"");
    assert_eq!(r.status, 200);
    assert!(r.body.contains("\"status\":\"ok\""), "{}", r.body);
    assert!(r.body.contains("\"service\":\"media-gen\""), "{}", r.body);
    let r = server.post_mcp(&[], INIT);
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.headers.contains("mcp-session-id"), "{}", r.headers);
    assert!(
        r.body.contains("\"protocolVersion\":\"2025-11-25\""),
        "{}",
        r.body
    );
    assert!(server.stop().success());
}

#[test]
fn foreign_origin_and_host_are_refused_on_every_route() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "http", &[]);
    let evil = [("Origin", "http://evil.example")];
    assert_eq!(server.post_mcp(&evil, INIT).status, 403);
    assert_eq!(server.request("GET", "/sse", &evil, b"").status, 403);
    assert_eq!(
        server
            .request("POST", "/messages?sessionId=x", &evil, b"{}")
            .status,
        403
    );
    // A look-alike of an allowed origin is still foreign.
    let lookalike = [("Origin", "http://localhost.evil.example:8318")];
    assert_eq!(server.post_mcp(&lookalike, INIT).status, 403);
    // DNS rebinding: a loopback server reached under another name.
    let rebound = [("Host", "evil.example:8318")];
    assert_eq!(server.post_mcp(&rebound, INIT).status, 403);
    assert_eq!(server.request("GET", "/sse", &rebound, b"").status, 403);
    assert_eq!(
        server
            .request("POST", "/messages?sessionId=x", &rebound, b"{}")
            .status,
        403
    );
    // Local web clients and non-browser clients pass.
    let local = [("Origin", "http://localhost:5173")];
    assert_eq!(server.post_mcp(&local, INIT).status, 200);
    assert_eq!(server.post_mcp(&[], INIT).status, 200);
}

#[test]
fn configured_origins_replace_the_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        "http",
        &[("MCP_HTTP_ALLOWED_ORIGINS", "https://app.example.com")],
    );
    let app = [("Origin", "https://app.example.com")];
    assert_eq!(server.post_mcp(&app, INIT).status, 200);
    let local = [("Origin", "http://localhost:5173")];
    assert_eq!(server.post_mcp(&local, INIT).status, 403);
}

#[test]
fn token_is_required_everywhere_but_healthz() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "http", &[("MCP_HTTP_TOKEN", "s3cret-token")]);
    assert_eq!(server.request("GET", "/healthz", &[], b"").status, 200);
    // The readiness probe too (a load balancer has no token): the library's
    // database answers.
    let ready = server.request("GET", "/readyz", &[], b"");
    assert_eq!(ready.status, 200);
    assert!(
        ready.body.contains("{\"status\":\"ready\"}"),
        "{}",
        ready.body
    );
    for auth in [
        None,
        Some("Bearer wrong"),
        Some("Basic czNjcmV0LXRva2Vu"),
        Some("Bearer s3cret-toke"),
    ] {
        let headers: Vec<(&str, &str)> = auth.map(|a| ("Authorization", a)).into_iter().collect();
        let r = server.post_mcp(&headers, INIT);
        assert_eq!(r.status, 401, "{auth:?}");
        assert!(
            r.headers.contains("www-authenticate: bearer"),
            "{}",
            r.headers
        );
        assert!(!r.body.contains("s3cret"), "the token must not be echoed");
        assert_eq!(server.request("GET", "/sse", &headers, b"").status, 401);
        assert_eq!(
            server
                .request("POST", "/messages?sessionId=x", &headers, b"{}")
                .status,
            401
        );
    }
    let ok = [("Authorization", "Bearer s3cret-token")];
    assert_eq!(server.post_mcp(&ok, INIT).status, 200);
    let (_stream, endpoint) = server.open_sse(&ok);
    assert!(endpoint.starts_with("/messages?sessionId="));
}

#[test]
fn oversize_bodies_get_413() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "http", &[("MCP_HTTP_MAX_BODY_BYTES", "64K")]);
    let big = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"ping","params":{{"pad":"{}"}}}}"#,
        "x".repeat(100 * 1024)
    );
    assert_eq!(server.post_mcp(&[], &big).status, 413);
    let (_stream, endpoint) = server.open_sse(&[]);
    let r = server.request(
        "POST",
        &endpoint,
        &[("Content-Type", "application/json")],
        big.as_bytes(),
    );
    assert_eq!(r.status, 413);
}

#[test]
fn legacy_sse_session_round_trip_and_unknown_session() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "sse", &[]);
    let r = server.request(
        "POST",
        "/messages?sessionId=00000000000000000000000000000000",
        &[("Content-Type", "application/json")],
        INIT.as_bytes(),
    );
    assert_eq!(r.status, 404);
    let (mut stream, endpoint) = server.open_sse(&[]);
    let post = |body: &str| {
        server
            .request(
                "POST",
                &endpoint,
                &[("Content-Type", "application/json")],
                body.as_bytes(),
            )
            .status
    };
    assert_eq!(post(INIT), 202);
    let init = read_message(&mut stream, 1);
    assert_eq!(init["result"]["protocolVersion"], "2025-11-25");
    assert_eq!(
        post(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#),
        202
    );
    assert_eq!(
        post(
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"generate_image","arguments":{"prompt":"over legacy sse"}}}"#
        ),
        202
    );
    let result = read_message(&mut stream, 2);
    assert_eq!(
        result["result"]["structuredContent"]["success"], true,
        "{result}"
    );
    assert_eq!(post("not json"), 400);
    // Closing the stream ends the session: its endpoint is gone.
    drop(stream);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = post(r#"{"jsonrpc":"2.0","id":3,"method":"ping"}"#);
        if status == 404 {
            break;
        }
        assert!(Instant::now() < deadline, "session outlived its stream");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn session_cap_counts_both_transports() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "http", &[("MCP_HTTP_MAX_SESSIONS", "2")]);
    let (_a, _) = server.open_sse(&[]);
    assert_eq!(server.post_mcp(&[], INIT).status, 200);
    // Two open: a third of either kind is refused.
    assert_eq!(server.request("GET", "/sse", &[], b"").status, 503);
    let r = server.post_mcp(&[], INIT);
    assert_eq!(r.status, 503, "{r:?}");
    assert!(r.body.contains("too many sessions"), "{}", r.body);
}

#[test]
fn sigterm_lets_an_in_flight_generation_finish() {
    let dir = tempfile::tempdir().unwrap();
    // An emulator process that takes 1.5 s per image.
    let emulator = crate::support::EmulatorProcess::start(&["--latency-ms", "1500"]);
    let server = Server::start_with(
        dir.path(),
        "http",
        &[("MCP_CLIPROXY_URL", emulator.url.as_str())],
        &[],
    );
    let addr = server.addr.clone();
    let init = server.post_mcp(&[], INIT);
    let session = init
        .headers
        .lines()
        .find_map(|l| l.strip_prefix("mcp-session-id: "))
        .unwrap()
        .trim()
        .to_owned();
    let call = std::thread::spawn(move || {
        let s = Server {
            child: Command::new("true").spawn().unwrap(),
            addr,
            log: std::sync::Arc::default(),
        };
        s.post_mcp(
            &[
                ("Mcp-Session-Id", &session),
                ("MCP-Protocol-Version", "2025-11-25"),
            ],
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"generate_image","arguments":{"prompt":"slow one"}}}"#,
        )
    });
    std::thread::sleep(Duration::from_millis(400));
    let status = server.stop();
    let reply = call.join().unwrap();
    assert!(status.success(), "{status:?}");
    assert_eq!(reply.status, 200, "{reply:?}");
    assert!(reply.body.contains("\"success\":true"), "{}", reply.body);
    assert_eq!(
        crate::support::media_files(&dir.path().join("out")).len(),
        1
    );
    drop(emulator);
}

#[test]
fn dual_mode_serves_stdio_and_http_and_ends_on_stdin_eof() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), "dual", &[("MCP_HTTP_SHUTDOWN_GRACE", "1")]);
    // HTTP side.
    assert_eq!(server.post_mcp(&[], INIT).status, 200);
    // stdio side, same process.
    let mut stdin = server.child.stdin.take().unwrap();
    writeln!(stdin, "{INIT}").unwrap();
    let mut out = BufReader::new(server.child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(line.contains("\"protocolVersion\""), "{line}");
    // EOF on stdin ends the whole process, cleanly.
    drop(stdin);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            assert!(status.success(), "{status:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "dual mode did not end on stdin EOF"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The HTTP transport served in process from a listener the test bound
/// itself: a session is opened, an image generated over Streamable HTTP,
/// the guard applies, and shutdown ends the server.
#[tokio::test]
async fn http_served_in_process_from_a_bound_listener() {
    use std::sync::Arc;

    use media_gen::app::{MakeHandler, Server};
    use media_gen::tools::MediaServer;

    let h = crate::mcp::start(&[]).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let service = h.service.clone();
    let make: MakeHandler<MediaServer> =
        Arc::new(move |access| MediaServer::new(service.clone(), access));
    let shutdown = tokio_util::sync::CancellationToken::new();
    let server = Server::new(h.service.clone(), &h.settings)
        .http_server_on(listener, make, &shutdown)
        .unwrap();
    let base = format!("http://{}", server.local_addr().unwrap());
    let serving = tokio::spawn(server.run(shutdown.clone()));

    let http = reqwest::Client::new();
    let post = |body: String, session: Option<String>| {
        let mut rb = http
            .post(format!("{base}/mcp"))
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body);
        if let Some(id) = session {
            rb = rb.header("mcp-session-id", id);
        }
        rb.send()
    };
    let init = post(INIT.to_owned(), None).await.unwrap();
    assert_eq!(init.status(), 200);
    let session = init.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(init.text().await.unwrap().contains("\"serverInfo\""));
    let initialized = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
    let r = post(initialized.to_owned(), Some(session.clone()))
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let call = r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"generate_image","arguments":{"prompt":"in process","aspect_ratio":"16:9"}}}"#;
    let body = post(call.to_owned(), Some(session))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // The answer comes as a server-sent event on the request's stream.
    let answer: serde_json::Value = body
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str(d.trim()).ok())
        .find(|v: &serde_json::Value| v["id"] == 2)
        .unwrap_or_else(|| panic!("no answer in {body}"));
    let result = &answer["result"]["structuredContent"];
    assert_eq!(result["success"], true, "{answer}");
    assert_eq!(result["metadata"]["width"], 1376);
    let path = std::path::PathBuf::from(result["image_path"].as_str().unwrap());
    assert_eq!(
        crate::support::png_size(&std::fs::read(&path).unwrap()),
        (1376, 768)
    );

    // The same guard as the product binary's: a foreign origin is refused.
    let refused = http
        .post(format!("{base}/mcp"))
        .header("origin", "http://evil.example")
        .body(INIT)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let health = http.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(15), serving)
        .await
        .expect("the server stops after shutdown")
        .unwrap()
        .unwrap();
}
