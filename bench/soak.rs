//! Soak: the real binary with `--transport http` against the emulator
//! process, holding many concurrent sessions with a mixed workload for
//! minutes. Reports requests, failures (target 0), latency per operation and
//! the server's memory over time (target: growth under 10 % after warm-up).
//!
//! Sessions are of three kinds, as real clients are: Streamable HTTP with a
//! session (2025-11-25), stateless Streamable HTTP (2026-07-28) and legacy
//! HTTP+SSE. Each loops until the end: think (0.5–3.5 s), then one of
//! tools/list, list_generated, generate_image, get_file_info, resources/read,
//! delete_file, a `/files` download. A session deletes what it made, so the
//! library stays about the same size and memory can be judged flat.
//!
//! Runs only when named: `cargo bench --bench bench -- soak`.
//! `MEDIA_GEN_SOAK_SECS` (default 600; `--quick` 60) and
//! `MEDIA_GEN_SOAK_SESSIONS` (default 1000; `--quick` 200) change its size.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::oneshot;

use crate::load::HttpServer;
use crate::{Emulator, ms, row};

/// Prompts the sessions draw from: the emulator renders each once, then
/// answers from its cache, so the server's own work dominates.
const PROMPTS: usize = 24;
/// Backend latency of every generation.
const BACKEND_LATENCY_MS: u64 = 100;

pub fn run(work: &Path, quick: bool, rows: &mut Vec<(String, String, String)>) {
    let env_or = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let secs = env_or("MEDIA_GEN_SOAK_SECS", if quick { 60 } else { 600 });
    let sessions = env_or("MEDIA_GEN_SOAK_SESSIONS", if quick { 200 } else { 1000 }) as usize;
    raise_fd_limit();
    let emu = Emulator::spawn(BACKEND_LATENCY_MS);
    let server = HttpServer::spawn_with(
        &work.join("soak"),
        &emu.url,
        &[("MCP_HTTP_MAX_SESSIONS", &(sessions + 64).to_string())],
    );
    let pid = server.pid();
    let base = format!("http://{}", server.addr);
    std::thread::sleep(Duration::from_millis(300));
    let idle = server.status_kib("VmRSS");

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let report = rt.block_on(soak(base, sessions, Duration::from_secs(secs), pid));
    let peak = server.status_kib("VmHWM");
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0);
    drop(rt);
    std::thread::sleep(Duration::from_secs(2));
    let settled = server.status_kib("VmRSS");
    drop(server);
    drop(emu);

    let Report {
        requests,
        failures,
        mut latencies,
        samples,
        wall,
        first_failures,
    } = report;
    for f in &first_failures {
        eprintln!("soak: failure: {f}");
    }
    let kinds = "2025-11-25 sessions, 2026-07-28 stateless, legacy SSE";
    rows.push(row(
        &format!("soak: {sessions} concurrent HTTP sessions ({kinds}) for {secs} s"),
        format!(
            "{requests} requests ({:.0}/s), {failures} failed",
            requests as f64 / wall.as_secs_f64()
        ),
        "0 failed",
    ));
    let mut names: Vec<_> = latencies.keys().cloned().collect();
    names.sort();
    for name in names {
        let v = latencies.get_mut(&name).expect("named");
        v.sort();
        let p = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize];
        rows.push(row(
            &format!("soak: {name} p50 / p99 ({} calls)", v.len()),
            format!("{:.1} / {:.1} ms", ms(p(0.5)), ms(p(0.99))),
            "",
        ));
    }
    // Warm-up: the first fifth of the run (sessions open, caches fill).
    let warm = samples
        .iter()
        .find(|(t, _)| *t >= wall / 5)
        .map(|s| s.1)
        .unwrap_or(idle);
    let tail: Vec<u64> = samples
        .iter()
        .filter(|(t, _)| *t >= wall * 9 / 10)
        .map(|s| s.1)
        .collect();
    let end = median(tail).unwrap_or(warm);
    let max_after = samples
        .iter()
        .filter(|(t, _)| *t >= wall / 5)
        .map(|s| s.1)
        .max()
        .unwrap_or(warm);
    let growth = (end as f64 - warm as f64) / warm.max(1) as f64 * 100.0;
    let mib = |k: u64| k as f64 / 1024.0;
    rows.push(row(
        "soak: server RSS idle → after warm-up → end (median of the last tenth) → 2 s after; max after warm-up; peak",
        format!(
            "{:.1} → {:.1} → {:.1} → {:.1} MiB; max {:.1}; peak {:.1} MiB",
            mib(idle),
            mib(warm),
            mib(end),
            mib(settled),
            mib(max_after),
            mib(peak)
        ),
        "",
    ));
    rows.push(row(
        "soak: memory growth after warm-up; open descriptors at the end",
        format!("{growth:+.1} %; {fds} fds"),
        "< 10 %",
    ));
}

struct Report {
    requests: u64,
    failures: u64,
    latencies: HashMap<String, Vec<Duration>>,
    /// (time since start, server VmRSS in KiB), every 5 s.
    samples: Vec<(Duration, u64)>,
    wall: Duration,
    first_failures: Vec<String>,
}

#[derive(Default)]
struct Tally {
    requests: AtomicU64,
    failures: AtomicU64,
    latencies: Mutex<HashMap<String, Vec<Duration>>>,
    first_failures: Mutex<Vec<String>>,
}

impl Tally {
    fn record(&self, op: &str, took: Duration, outcome: Result<(), String>) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        match outcome {
            Ok(()) => self
                .latencies
                .lock()
                .expect("tally")
                .entry(op.to_owned())
                .or_default()
                .push(took),
            Err(e) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                let mut first = self.first_failures.lock().expect("tally");
                if first.len() < 5 {
                    first.push(format!("{op}: {e}"));
                }
            }
        }
    }
}

async fn soak(base: String, sessions: usize, length: Duration, pid: u32) -> Report {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(sessions + 16)
        .timeout(Duration::from_secs(120))
        .build()
        .expect("client");
    let tally = Arc::new(Tally::default());
    let started = Instant::now();
    let until = started + length;
    let mut tasks = Vec::with_capacity(sessions);
    for i in 0..sessions {
        let kind = match i % 10 {
            0 => Kind::Stateless,
            1 => Kind::Sse,
            _ => Kind::Session,
        };
        let (http, base, tally) = (http.clone(), base.clone(), tally.clone());
        tasks.push(tokio::spawn(async move {
            // Sessions open over the first 10 s, not all in one instant.
            tokio::time::sleep(Duration::from_millis((i as u64 * 10_000) / sessions as u64)).await;
            session(http, base, kind, i, until, &tally).await;
        }));
    }
    let mut samples = Vec::new();
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_secs(5)).await;
        samples.push((started.elapsed(), rss_kib(pid)));
    }
    for t in tasks {
        let _ = t.await;
    }
    let wall = started.elapsed();
    let tally = Arc::try_unwrap(tally).unwrap_or_default();
    Report {
        requests: tally.requests.into_inner(),
        failures: tally.failures.into_inner(),
        latencies: tally.latencies.into_inner().expect("tally"),
        samples,
        wall,
        first_failures: tally.first_failures.into_inner().expect("tally"),
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Session,
    Stateless,
    Sse,
}

/// How a session reaches the server.
enum Link {
    Session(String),
    Stateless,
    /// The `/messages` URL and the answers read from the stream, by id.
    Sse {
        post: String,
        waiting: Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>>,
        _reader: tokio::task::JoinHandle<()>,
    },
}

struct Client {
    http: reqwest::Client,
    base: String,
    link: Link,
    next_id: u64,
}

async fn session(
    http: reqwest::Client,
    base: String,
    kind: Kind,
    i: usize,
    until: Instant,
    tally: &Tally,
) {
    let t = Instant::now();
    let client = Client::open(http, base, kind).await;
    let mut client = match client {
        Ok(c) => {
            tally.record("open session", t.elapsed(), Ok(()));
            c
        }
        Err(e) => {
            tally.record("open session", t.elapsed(), Err(e));
            return;
        }
    };
    let mut mine: Vec<String> = Vec::new();
    let mut rng = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        // xorshift: deterministic per session, no shared state.
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    loop {
        let think = Duration::from_millis(500 + next() % 3000);
        if Instant::now() + think >= until {
            break;
        }
        tokio::time::sleep(think).await;
        let roll = next() % 100;
        let t = Instant::now();
        let (op, outcome) = match (roll, mine.last().cloned()) {
            (0..25, _) => ("tools/list", client.tools_list().await),
            (25..45, _) => (
                "list_generated",
                client
                    .tool("list_generated", json!({"limit": 5}))
                    .await
                    .map(drop),
            ),
            (45..65, _) | (_, None) => {
                let prompt = format!("soak prompt {}", next() as usize % PROMPTS);
                let r = client
                    .tool("generate_image", json!({"prompt": prompt}))
                    .await;
                (
                    "generate_image",
                    r.and_then(|v| {
                        let name = v["filename"].as_str().ok_or("no filename")?;
                        mine.push(name.to_owned());
                        Ok(())
                    }),
                )
            }
            (65..78, Some(name)) => (
                "get_file_info",
                client
                    .tool("get_file_info", json!({"filename": name}))
                    .await
                    .map(drop),
            ),
            (78..84, Some(name)) => ("resources/read", client.read(&name).await),
            (84..90, Some(name)) => ("GET /files", client.download(&name).await),
            (_, Some(name)) => {
                let r = client
                    .tool("delete_file", json!({"filename": name, "confirm": true}))
                    .await;
                mine.pop();
                ("delete_file", r.map(drop))
            }
        };
        tally.record(op, t.elapsed(), outcome);
    }
    for name in mine {
        let t = Instant::now();
        let r = client
            .tool("delete_file", json!({"filename": name, "confirm": true}))
            .await;
        tally.record("delete_file", t.elapsed(), r.map(drop));
    }
    client.close().await;
}

impl Client {
    async fn open(http: reqwest::Client, base: String, kind: Kind) -> Result<Self, String> {
        let mut c = Client {
            http,
            base,
            link: Link::Stateless,
            next_id: 1,
        };
        match kind {
            Kind::Stateless => {}
            Kind::Session => {
                let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                    "protocolVersion": "2025-11-25", "capabilities": {},
                    "clientInfo": {"name": "soak", "version": "1"}}});
                let r = c
                    .http
                    .post(format!("{}/mcp", c.base))
                    .header("Accept", "application/json, text/event-stream")
                    .json(&init)
                    .send()
                    .await
                    .map_err(|e| format!("initialize: {e}"))?;
                let id = r
                    .headers()
                    .get("mcp-session-id")
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| format!("initialize: HTTP {} without a session", r.status()))?
                    .to_owned();
                r.bytes().await.map_err(|e| e.to_string())?;
                c.link = Link::Session(id);
                c.notify_initialized().await?;
            }
            Kind::Sse => {
                let r = c
                    .http
                    .get(format!("{}/sse", c.base))
                    .header("Accept", "text/event-stream")
                    .timeout(Duration::from_secs(24 * 3600))
                    .send()
                    .await
                    .map_err(|e| format!("GET /sse: {e}"))?;
                if !r.status().is_success() {
                    return Err(format!("GET /sse: HTTP {}", r.status()));
                }
                let waiting: Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>> = Arc::default();
                let (endpoint_tx, endpoint_rx) = oneshot::channel();
                let reader = tokio::spawn(read_sse(r, waiting.clone(), endpoint_tx));
                let endpoint = tokio::time::timeout(Duration::from_secs(30), endpoint_rx)
                    .await
                    .map_err(|_| "no endpoint event".to_owned())?
                    .map_err(|_| "stream ended before its endpoint event".to_owned())?;
                c.link = Link::Sse {
                    post: format!("{}{endpoint}", c.base),
                    waiting,
                    _reader: reader,
                };
                let init = json!({"protocolVersion": "2024-11-05", "capabilities": {},
                    "clientInfo": {"name": "soak", "version": "1"}});
                c.call("initialize", init).await?;
                c.notify_initialized().await?;
            }
        }
        Ok(c)
    }

    async fn notify_initialized(&mut self) -> Result<(), String> {
        let msg = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        let (url, headers) = self.target();
        let r = self
            .http
            .post(url)
            .headers(headers)
            .json(&msg)
            .send()
            .await
            .map_err(|e| format!("initialized: {e}"))?;
        if r.status().as_u16() != 202 {
            return Err(format!("initialized: HTTP {}", r.status()));
        }
        Ok(())
    }

    /// Where to POST and with which headers.
    fn target(&self) -> (String, reqwest::header::HeaderMap) {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert(
            "Accept",
            "application/json, text/event-stream"
                .parse()
                .expect("value"),
        );
        match &self.link {
            Link::Session(id) => {
                h.insert("Mcp-Session-Id", id.parse().expect("value"));
                h.insert("MCP-Protocol-Version", "2025-11-25".parse().expect("value"));
                (format!("{}/mcp", self.base), h)
            }
            Link::Stateless => {
                h.insert("MCP-Protocol-Version", "2026-07-28".parse().expect("value"));
                (format!("{}/mcp", self.base), h)
            }
            Link::Sse { post, .. } => (post.clone(), h),
        }
    }

    /// One JSON-RPC request; its `result`, or why it failed.
    async fn call(&mut self, method: &str, mut params: Value) -> Result<Value, String> {
        let id = self.next_id;
        self.next_id += 1;
        if matches!(self.link, Link::Stateless) {
            params["_meta"] = json!({
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientInfo": {"name": "soak", "version": "1"},
                "io.modelcontextprotocol/clientCapabilities": {}});
        }
        let msg = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let (url, mut headers) = self.target();
        if matches!(self.link, Link::Stateless) {
            headers.insert("Mcp-Method", method.parse().expect("value"));
            if let Some(name) = params["name"].as_str().or(params["uri"].as_str()) {
                headers.insert("Mcp-Name", name.parse().expect("value"));
            }
        }
        let answer = match &self.link {
            Link::Sse { waiting, .. } => {
                let (tx, rx) = oneshot::channel();
                waiting.lock().expect("waiting").insert(id, tx);
                let r = self
                    .http
                    .post(url)
                    .headers(headers)
                    .json(&msg)
                    .send()
                    .await
                    .map_err(|e| format!("POST /messages: {e}"))?;
                if r.status().as_u16() != 202 {
                    return Err(format!("POST /messages: HTTP {}", r.status()));
                }
                tokio::time::timeout(Duration::from_secs(120), rx)
                    .await
                    .map_err(|_| "no answer on the SSE stream in 120 s".to_owned())?
                    .map_err(|_| "the SSE stream ended".to_owned())?
            }
            _ => {
                let r = self
                    .http
                    .post(url)
                    .headers(headers)
                    .json(&msg)
                    .send()
                    .await
                    .map_err(|e| format!("POST /mcp: {e}"))?;
                let status = r.status();
                let body = r.text().await.map_err(|e| format!("body: {e}"))?;
                find_message(&body, id).ok_or_else(|| format!("HTTP {status}: {}", clip(&body)))?
            }
        };
        if let Some(e) = answer.get("error") {
            return Err(format!("JSON-RPC error {e}"));
        }
        Ok(answer["result"].clone())
    }

    /// A tool call that must succeed; its structured content.
    async fn tool(&mut self, name: &str, args: Value) -> Result<Value, String> {
        let r = self
            .call("tools/call", json!({"name": name, "arguments": args}))
            .await?;
        if r["isError"] == true {
            return Err(format!("tool error: {}", clip(&r.to_string())));
        }
        Ok(r["structuredContent"].clone())
    }

    async fn tools_list(&mut self) -> Result<(), String> {
        let r = self.call("tools/list", json!({})).await?;
        match r["tools"].as_array() {
            Some(t) if !t.is_empty() => Ok(()),
            _ => Err("no tools".into()),
        }
    }

    async fn read(&mut self, name: &str) -> Result<(), String> {
        let r = self
            .call(
                "resources/read",
                json!({"uri": format!("media://files/{name}")}),
            )
            .await?;
        match r["contents"][0]["blob"].as_str() {
            Some(b) if !b.is_empty() => Ok(()),
            _ => Err("no blob".into()),
        }
    }

    async fn download(&self, name: &str) -> Result<(), String> {
        let r = self
            .http
            .get(format!("{}/files/{name}", self.base))
            .send()
            .await
            .map_err(|e| format!("GET /files: {e}"))?;
        let status = r.status();
        let body = r.bytes().await.map_err(|e| e.to_string())?;
        if !status.is_success() || !body.starts_with(b"\x89PNG") {
            return Err(format!("GET /files: HTTP {status}, {} bytes", body.len()));
        }
        Ok(())
    }

    async fn close(self) {
        match &self.link {
            Link::Session(id) => {
                let _ = self
                    .http
                    .delete(format!("{}/mcp", self.base))
                    .header("Mcp-Session-Id", id)
                    .send()
                    .await;
            }
            Link::Sse { _reader, .. } => _reader.abort(),
            Link::Stateless => {}
        }
    }
}

/// Reads an SSE stream: the endpoint event, then answers by id.
async fn read_sse(
    mut r: reqwest::Response,
    waiting: Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>>,
    endpoint: oneshot::Sender<String>,
) {
    let mut endpoint = Some(endpoint);
    let mut buf: Vec<u8> = Vec::new();
    let mut event = String::new();
    while let Ok(Some(chunk)) = r.chunk().await {
        buf.extend_from_slice(&chunk);
        while let Some(eol) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=eol).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches(['\r', '\n']);
            if let Some(e) = line.strip_prefix("event:") {
                event = e.trim().to_owned();
            } else if let Some(data) = line.strip_prefix("data:") {
                let data = data.trim_start();
                if event == "endpoint" {
                    if let Some(tx) = endpoint.take() {
                        let _ = tx.send(data.to_owned());
                    }
                } else if let Ok(v) = serde_json::from_str::<Value>(data)
                    && let Some(id) = v["id"].as_u64()
                    && let Some(tx) = waiting.lock().expect("waiting").remove(&id)
                {
                    let _ = tx.send(v);
                }
            }
        }
    }
}

/// The JSON-RPC message with `id` in a JSON or SSE body.
fn find_message(body: &str, id: u64) -> Option<Value> {
    if let Ok(v) = serde_json::from_str::<Value>(body)
        && v["id"] == id
    {
        return Some(v);
    }
    body.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str::<Value>(d.trim_start()).ok())
        .find(|v| v["id"] == id)
}

fn clip(s: &str) -> String {
    s.chars().take(300).collect()
}

fn median(mut v: Vec<u64>) -> Option<u64> {
    v.sort_unstable();
    v.get(v.len() / 2).copied()
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// A thousand sessions need more descriptors than the usual soft limit.
fn raise_fd_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut lim = getrlimit(Resource::Nofile);
    if lim.current < lim.maximum {
        lim.current = lim.maximum;
        let _ = setrlimit(Resource::Nofile, lim);
    }
}
