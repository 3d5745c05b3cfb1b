//! HTTP load: the real binary with `--transport http` against the emulator
//! process. 500 legacy SSE streams are opened and held idle; then 200
//! concurrent clients each initialize a Streamable HTTP session and do
//! `tools/list` and `generate_image`. Reports failures (must be zero),
//! p50/p99 latency per operation and the server's memory.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::{BIN, Emulator, dechunk, ms, row};

const CLIENTS: usize = 200;
const IDLE_SSE: usize = 500;

pub fn run(work: &Path, quick: bool, rows: &mut Vec<(String, String, String)>) {
    let emu = Emulator::spawn(0);
    let server = HttpServer::spawn(&work.join("load"), &emu.url);
    let addr = server.addr.clone();
    std::thread::sleep(Duration::from_millis(300));
    let idle_rss = server.status_kib("VmRSS");

    // 500 idle legacy SSE streams, held open for the whole run.
    let mut streams = Vec::with_capacity(IDLE_SSE);
    let mut sse_failed = 0;
    for _ in 0..IDLE_SSE {
        match open_sse(&addr) {
            Some(s) => streams.push(s),
            None => sse_failed += 1,
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    let sse_rss = server.status_kib("VmRSS");

    // 200 concurrent Streamable HTTP clients.
    let clients = if quick { CLIENTS / 2 } else { CLIENTS };
    let barrier = Arc::new(Barrier::new(clients));
    let started = Instant::now();
    let handles: Vec<_> = (0..clients)
        .map(|i| {
            let addr = addr.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                client(&addr, i)
            })
        })
        .collect();
    let mut list = Vec::new();
    let mut generate = Vec::new();
    let mut failures: Vec<String> = Vec::new();
    for h in handles {
        match h.join() {
            Ok(Ok((l, g))) => {
                list.push(l);
                generate.push(g);
            }
            Ok(Err(e)) => failures.push(e),
            Err(_) => failures.push("client thread panicked".into()),
        }
    }
    let wall = started.elapsed();
    // The idle streams must still be alive: each gets a keep-alive or nothing,
    // but the connection must not have been closed.
    let alive = streams.iter_mut().map(still_open).filter(|o| *o).count();
    let peak = server.status_kib("VmHWM");
    let after = server.status_kib("VmRSS");
    drop(streams);
    // Once every client and stream is gone: what the server keeps.
    std::thread::sleep(Duration::from_secs(2));
    let settled = server.status_kib("VmRSS");
    drop(server);
    drop(emu);

    if let Some(first) = failures.first() {
        eprintln!("load: first failure: {first}");
    }
    rows.push(row(
        &format!("HTTP load: {clients} clients × (initialize, tools/list, generate_image) + {IDLE_SSE} idle SSE streams"),
        format!(
            "{} failed, {} SSE refused, {alive}/{} streams alive; wall {:.2} s",
            failures.len(),
            sse_failed,
            IDLE_SSE - sse_failed,
            wall.as_secs_f64()
        ),
        "0 failed",
    ));
    for (name, v) in [("tools/list", &mut list), ("generate_image", &mut generate)] {
        v.sort();
        if v.is_empty() {
            continue;
        }
        let p = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize];
        rows.push(row(
            &format!("HTTP load: {name} latency under load, p50 / p99"),
            format!("{:.1} / {:.1} ms", ms(p(0.5)), ms(p(0.99))),
            "",
        ));
    }
    rows.push(row(
        "HTTP load: server RSS idle → with 500 SSE streams → after the load → all closed; peak",
        format!(
            "{:.1} → {:.1} → {:.1} → {:.1} MiB; peak {:.1} MiB",
            idle_rss as f64 / 1024.0,
            sse_rss as f64 / 1024.0,
            after as f64 / 1024.0,
            settled as f64 / 1024.0,
            peak as f64 / 1024.0
        ),
        "",
    ));
}

/// Memory after a burst: the real binary (`--transport http`) against the
/// emulator process at zero latency, 200 concurrent clients each doing one
/// 1K `generate_image` (default preview), nothing else held open. Prints
/// the server's RSS idle, its peak, right after the burst and 5 s and 15 s
/// later, against the target: settled RSS within 2 × idle + 50 MiB.
pub fn memory(work: &Path, quick: bool, rows: &mut Vec<(String, String, String)>) {
    let emu = Emulator::spawn(0);
    let server = HttpServer::spawn(&work.join("memory"), &emu.url);
    let addr = server.addr.clone();
    std::thread::sleep(Duration::from_millis(500));
    let idle = server.status_kib("VmRSS");
    let clients = if quick { CLIENTS / 2 } else { CLIENTS };
    let barrier = Arc::new(Barrier::new(clients));
    let handles: Vec<_> = (0..clients)
        .map(|i| {
            let addr = addr.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                client(&addr, i)
            })
        })
        .collect();
    let mut failures: Vec<String> = Vec::new();
    for h in handles {
        match h.join() {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => failures.push(e),
            Err(_) => failures.push("client thread panicked".into()),
        }
    }
    if let Some(first) = failures.first() {
        eprintln!("memory: first failure: {first}");
    }
    let failed = failures.len();
    let after = server.status_kib("VmRSS");
    let peak = server.status_kib("VmHWM");
    std::thread::sleep(Duration::from_secs(5));
    let settled = server.status_kib("VmRSS");
    std::thread::sleep(Duration::from_secs(10));
    let later = server.status_kib("VmRSS");
    drop(server);
    drop(emu);
    let mib = |k: u64| k as f64 / 1024.0;
    let target = 2.0 * mib(idle) + 50.0;
    rows.push(row(
        &format!(
            "memory: {clients} concurrent generate_image 1K ({failed} failed): RSS idle → peak → right after → 5 s → 15 s"
        ),
        format!(
            "{:.1} → {:.1} → {:.1} → {:.1} → {:.1} MiB",
            mib(idle),
            mib(peak),
            mib(after),
            mib(settled),
            mib(later)
        ),
        &format!("5 s after ≤ 2 × idle + 50 = {target:.0} MiB"),
    ));
}

/// One client: initialize, initialized, tools/list, generate_image, DELETE.
/// Returns the latencies of tools/list and generate_image.
fn client(addr: &str, i: usize) -> Result<(Duration, Duration), String> {
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "load", "version": "1"}}});
    let (status, headers, body) = post(addr, &[], &init)?;
    if status != 200 {
        return Err(format!("initialize: HTTP {status}: {body}"));
    }
    let session = headers
        .lines()
        .find_map(|l| l.strip_prefix("mcp-session-id: "))
        .ok_or("no session id")?
        .trim()
        .to_owned();
    let h = [
        ("Mcp-Session-Id", session.as_str()),
        ("MCP-Protocol-Version", "2025-11-25"),
    ];
    let (status, _, _) = post(
        addr,
        &h,
        &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )?;
    if status != 202 {
        return Err(format!("initialized: HTTP {status}"));
    }
    let t = Instant::now();
    let (status, _, body) = post(
        addr,
        &h,
        &json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
    )?;
    let list = t.elapsed();
    let tools = message(&body, 2).ok_or_else(|| format!("tools/list: HTTP {status}: {body}"))?;
    if tools["result"]["tools"]
        .as_array()
        .is_none_or(Vec::is_empty)
    {
        return Err(format!("tools/list: {tools}"));
    }
    let t = Instant::now();
    let (status, _, body) = post(
        addr,
        &h,
        &json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
            "name": "generate_image", "arguments": {"prompt": format!("load client {i}")}}}),
    )?;
    let generate = t.elapsed();
    let result =
        message(&body, 3).ok_or_else(|| format!("generate_image: HTTP {status}: {body}"))?;
    if result["result"]["structuredContent"]["success"] != true {
        return Err(format!("generate_image: {result}"));
    }
    // A client that is done ends its session, as the SDK clients do.
    let (status, _, body) = request(addr, "DELETE", &h, "")?;
    if !(200..300).contains(&status) {
        return Err(format!("DELETE session: HTTP {status}: {body}"));
    }
    Ok((list, generate))
}

/// POST /mcp with `Connection: close`; (status, lower-case headers, body).
fn post(
    addr: &str,
    headers: &[(&str, &str)],
    msg: &Value,
) -> Result<(u16, String, String), String> {
    request(addr, "POST", headers, &msg.to_string())
}

/// One request to /mcp with `Connection: close`; (status, lower-case headers, body).
fn request(
    addr: &str,
    method: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<(u16, String, String), String> {
    let mut s = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(120)))
        .map_err(|e| e.to_string())?;
    let mut head = format!(
        "{method} /mcp HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes())
        .and_then(|()| s.write_all(body.as_bytes()))
        .map_err(|e| format!("write: {e}"))?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).map_err(|e| format!("read: {e}"))?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no header end")?;
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let payload = &raw[split + 4..];
    let payload = if head.contains("transfer-encoding: chunked") {
        dechunk(payload)
    } else {
        payload.to_vec()
    };
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok((status, head, String::from_utf8_lossy(&payload).into_owned()))
}

/// The JSON-RPC message with `id` in an SSE or JSON body.
pub(crate) fn message(body: &str, id: u64) -> Option<Value> {
    if let Ok(v) = serde_json::from_str::<Value>(body)
        && v["id"] == id
    {
        return Some(v);
    }
    body.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .find(|v| v["id"] == id)
}

/// Opens `GET /sse` and reads up to the endpoint event.
fn open_sse(addr: &str) -> Option<BufReader<TcpStream>> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "GET /sse HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n"
    )
    .ok()?;
    let mut r = BufReader::new(s);
    let mut status = String::new();
    r.read_line(&mut status).ok()?;
    if !status.contains(" 200 ") {
        return None;
    }
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if line.contains("/messages?sessionId=") {
            return Some(r);
        }
    }
}

/// True if the server has not closed the stream (a read would block).
fn still_open(r: &mut BufReader<TcpStream>) -> bool {
    let s = r.get_mut();
    if s.set_nonblocking(true).is_err() {
        return false;
    }
    let mut buf = [0u8; 4096];
    let open = loop {
        match s.read(&mut buf) {
            Ok(0) => break false,
            Ok(_) => continue, // keep-alive comments
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break true,
            Err(_) => break false,
        }
    };
    let _ = s.set_nonblocking(false);
    open
}

pub(crate) struct HttpServer {
    child: Child,
    pub(crate) addr: String,
}

impl HttpServer {
    fn spawn(out: &Path, backend: &str) -> Self {
        Self::spawn_with(out, backend, &[])
    }

    /// `env` is applied after the defaults.
    pub(crate) fn spawn_with(out: &Path, backend: &str, env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(BIN)
            .args(["serve", "--transport", "http", "--port", "0"])
            .env_clear()
            .env("MCP_OUTPUT_DIR", out)
            .env("HOME", out.with_extension("home"))
            .env("MCP_CLIPROXY_URL", backend)
            .env("MEDIA_GEN_LOG", "error")
            // glibc allocator tuning passes through, to compare its effect.
            .envs(
                ["MALLOC_MMAP_THRESHOLD_", "MALLOC_ARENA_MAX"]
                    .into_iter()
                    .filter_map(|k| std::env::var(k).ok().map(|v| (k, v))),
            )
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn media-gen");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    let _ = tx.send(rest.split_whitespace().next().unwrap_or("").to_owned());
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("server address");
        Self { child, addr }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn status_kib(&self, field: &str) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with(field))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
