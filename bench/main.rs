//! media-gen benchmark driver: spawns the built binary (and its emulator) as
//! real processes, speaks JSON-RPC over stdio, and prints a table of medians.
//!
//! Run: `cargo bench --bench bench` (release build). Figures are medians of
//! repeated runs measured side by side in one run; see bench/README.md.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "a benchmark driver: a failed step should stop it loudly"
)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

mod edit;
mod load;
mod peers;
mod scale;
mod shared;
mod soak;
mod video;

const BIN: &str = env!("CARGO_BIN_EXE_media-gen");

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    // `--against PATH`: the core section also measures another media-gen
    // binary (an older build), interleaved with this one, and prints both.
    let against = args
        .iter()
        .position(|a| a == "--against")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let mut bins = vec![Bin {
        label: "this build",
        path: BIN.to_owned(),
    }];
    if let Some(path) = &against {
        bins.push(Bin {
            label: "against",
            path: path.clone(),
        });
    }
    // `cargo bench --bench bench -- [--quick] [core] [scale] [edit] [video] [load] [memory] [soak] [peers] [shared]`:
    // named sections only; none named runs all but `soak`, `peers` and `shared`.
    let named: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|x| {
            matches!(
                *x,
                "core"
                    | "scale"
                    | "load"
                    | "memory"
                    | "edit"
                    | "video"
                    | "soak"
                    | "peers"
                    | "shared"
            )
        })
        .collect();
    let want = |s: &str| named.is_empty() || named.contains(&s);
    let work = tempfile::tempdir().expect("temp dir");
    let mut rows: Vec<(String, String, String)> = Vec::new();
    if want("core") {
        core(work.path(), quick, &bins, &mut rows);
    }
    if want("scale") {
        scale::run(work.path(), quick, 100_000, &mut rows);
    }
    if want("edit") {
        edit::run(work.path(), quick, &mut rows);
    }
    if want("video") {
        video::run(work.path(), quick, &mut rows);
    }
    if want("load") {
        load::run(work.path(), quick, &mut rows);
    }
    if want("memory") {
        load::memory(work.path(), quick, &mut rows);
    }
    // Needs the peers installed (bench/peers/run): only when named.
    if named.contains(&"peers") {
        peers::run(work.path(), quick, &mut rows);
    }
    // Needs PostgreSQL and moto (started here unless given): only when named.
    if named.contains(&"shared") {
        shared::run(work.path(), quick, &mut rows);
    }
    // Minutes long: only when named.
    if named.contains(&"soak") {
        soak::run(work.path(), quick, &mut rows);
    }
    print_table(&rows);
}

/// A media-gen binary the core section measures.
struct Bin {
    label: &'static str,
    path: String,
}

/// A measure's name, with the binary's label when several are measured.
fn named(bins: &[Bin], i: usize, name: &str) -> String {
    if bins.len() == 1 {
        name.to_owned()
    } else {
        format!("{name} [{}]", bins[i].label)
    }
}

/// Start-up, idle memory, batch, per-image overhead and peak memory, for
/// each binary, interleaved repetition by repetition.
fn core(work: &Path, quick: bool, bins: &[Bin], rows: &mut Vec<(String, String, String)>) {
    let runs = if quick { 5 } else { 30 };
    let per_bin = || -> Vec<Vec<Duration>> { bins.iter().map(|_| Vec::new()).collect() };

    // 1. Start-up to the initialize result, and idle memory.
    let mut startup = per_bin();
    let mut idle_rss: Vec<Vec<f64>> = bins.iter().map(|_| Vec::new()).collect();
    for i in 0..runs {
        for (b, bin) in bins.iter().enumerate() {
            let out = work.join(format!("startup{b}"));
            let mut s = Server::spawn_bin(&bin.path, &out, &[], Stdio::null());
            startup[b].push(s.initialize());
            if i < 5 {
                std::thread::sleep(Duration::from_millis(300));
                idle_rss[b].push(s.status_kib("VmRSS") as f64 / 1024.0);
            }
            s.close();
        }
    }
    for b in 0..bins.len() {
        rows.push(row(
            &named(bins, b, "start-up: spawn → initialize result"),
            format!("{:.2} ms", ms(median_d(&mut startup[b]))),
            "≤ 10 ms",
        ));
        rows.push(row(
            &named(bins, b, "idle memory (RSS after initialize)"),
            format!("{:.1} MiB", median(&mut idle_rss[b])),
            "≤ 15 MiB",
        ));
    }

    // 2. Batch of 16 prompts, emulator latency 1 s, default concurrency.
    let emu = Emulator::spawn(1000);
    let mut batch = per_bin();
    for i in 0..if quick { 1 } else { 3 } {
        for (b, bin) in bins.iter().enumerate() {
            let out = work.join(format!("batch{i}-{b}"));
            let env = [
                ("MCP_CLIPROXY_URL", emu.url.as_str()),
                ("MCP_PREVIEW", "none"),
            ];
            let mut s = Server::spawn_bin(&bin.path, &out, &env, Stdio::null());
            s.initialize();
            let prompts: Vec<String> = (0..16).map(|n| format!("batch prompt {n}")).collect();
            let t = Instant::now();
            let r = s.call("generate_image_batch", json!({"prompts": prompts}));
            batch[b].push(t.elapsed());
            assert_eq!(r["structuredContent"]["succeeded"], 16, "{r}");
            s.close();
        }
    }
    drop(emu);
    for (b, times) in batch.iter_mut().enumerate() {
        rows.push(row(
            &named(bins, b, "generate_image_batch ×16, 1 s backend latency"),
            format!("{:.2} s", median_d(times).as_secs_f64()),
            "≤ 4.5 s",
        ));
    }

    // 3. Per-image overhead at zero backend latency vs the floor, 1K and 4K.
    let emu = Emulator::spawn(0);
    for (size, n) in [
        ("1K", if quick { 5 } else { 15 }),
        ("4K", if quick { 3 } else { 7 }),
    ] {
        let prompt = format!("overhead {size}");
        let body = emu.raw_body(&prompt, size);
        let png = decode_body(&body);
        let floor_dir = work.join(format!("floor{size}"));
        std::fs::create_dir_all(&floor_dir).expect("floor dir");
        let mut floor = Vec::new();
        let mut fetch = Vec::new();
        let mut calls = per_bin();
        let mut calls_preview = per_bin();
        // Both modes' servers run side by side and are called in turn, so
        // the preview's cost is measured against the same moment's load.
        for (b, bin) in bins.iter().enumerate() {
            let mut servers: Vec<Server> = ["none", "preview"]
                .iter()
                .map(|preview| {
                    let out = work.join(format!("over{size}{preview}{b}"));
                    let env = [
                        ("MCP_CLIPROXY_URL", emu.url.as_str()),
                        ("MCP_PREVIEW", *preview),
                    ];
                    let mut s = Server::spawn_bin(&bin.path, &out, &env, Stdio::null());
                    s.initialize();
                    s
                })
                .collect();
            let args = json!({"prompt": prompt, "image_size": size});
            for s in &mut servers {
                s.call("generate_image", args.clone()); // warm the emulator's cache
            }
            for i in 0..n {
                for (m, s) in servers.iter_mut().enumerate() {
                    let t = Instant::now();
                    let r = s.call("generate_image", args.clone());
                    let d = t.elapsed();
                    assert_eq!(r["structuredContent"]["success"], true, "{r}");
                    if m == 1 {
                        calls_preview[b].push(d);
                        continue;
                    }
                    calls[b].push(d);
                    if b == 0 {
                        floor.push(floor_once(&body, &floor_dir.join(format!("f{i}"))));
                        // The backend's own share (emulator at zero latency, loopback).
                        let t = Instant::now();
                        let _ = emu.raw_body(&prompt, size);
                        fetch.push(t.elapsed());
                    }
                }
            }
            for s in servers {
                s.close();
            }
        }
        let f = median_d(&mut floor);
        let share = median_d(&mut fetch);
        rows.push(row(
            &format!(
                "{size} image: floor (b64 decode + write + fsync, {:.1} MB body)",
                body.len() as f64 / 1e6
            ),
            format!("{:.1} ms", ms(f)),
            "",
        ));
        rows.push(row(
            &format!("{size} image: backend share (emulator response over loopback)"),
            format!("{:.1} ms", ms(share)),
            "",
        ));
        for b in 0..bins.len() {
            let c = median_d(&mut calls[b]);
            let cp = median_d(&mut calls_preview[b]);
            rows.push(row(
                &named(
                    bins,
                    b,
                    &format!("{size} image: generate_image call, no preview"),
                ),
                format!("{:.1} ms", ms(c)),
                "",
            ));
            for (label, call, target) in [("no preview", c, "≤ 2× floor"), ("with preview", cp, "")]
            {
                let over = call.saturating_sub(share);
                rows.push(row(
                    &named(
                        bins,
                        b,
                        &format!("{size} image: overhead (call − backend share), {label}"),
                    ),
                    format!(
                        "{:.1} ms ({:.2}× floor)",
                        ms(over),
                        over.as_secs_f64() / f.as_secs_f64()
                    ),
                    target,
                ));
            }
        }
        if size == "4K" {
            for preview in ["none", "preview"] {
                for (b, bin) in bins.iter().enumerate() {
                    let out = work.join(format!("peak{preview}{b}"));
                    let env = [
                        ("MCP_CLIPROXY_URL", emu.url.as_str()),
                        ("MCP_PREVIEW", preview),
                    ];
                    let mut s = Server::spawn_bin(&bin.path, &out, &env, Stdio::null());
                    s.initialize();
                    std::thread::sleep(Duration::from_millis(200));
                    let before = s.status_kib("VmRSS");
                    s.call(
                        "generate_image",
                        json!({"prompt": prompt, "image_size": size}),
                    );
                    let peak = s.status_kib("VmHWM");
                    let grew = peak.saturating_sub(before) as f64 * 1024.0;
                    rows.push(row(
                        &named(
                            bins,
                            b,
                            &format!(
                                "4K peak memory growth, preview={preview} (PNG {:.1} MB)",
                                png.len() as f64 / 1e6
                            ),
                        ),
                        format!(
                            "{:.1} MB ({:.2}× body)",
                            grew / 1e6,
                            grew / body.len() as f64
                        ),
                        if preview == "none" {
                            "≤ 4× body"
                        } else {
                            ""
                        },
                    ));
                    s.close();
                }
            }
        }
    }
    drop(emu);
}

fn row(name: &str, value: String, target: &str) -> (String, String, String) {
    (name.to_owned(), value, target.to_owned())
}

fn print_table(rows: &[(String, String, String)]) {
    let w0 = rows.iter().map(|r| r.0.chars().count()).max().unwrap_or(0);
    let w1 = rows.iter().map(|r| r.1.chars().count()).max().unwrap_or(0);
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "\n| {:w0$} | {:w1$} | target |", "measure", "median");
    let _ = writeln!(
        out,
        "|{}|{}|--------|",
        "-".repeat(w0 + 2),
        "-".repeat(w1 + 2)
    );
    for (a, b, c) in rows {
        let _ = writeln!(out, "| {a:w0$} | {b:w1$} | {c} |");
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn median_d(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// The floor: what saving the image costs at the least — decode the base64
/// from the response body, write the bytes, fsync.
fn floor_once(body: &[u8], path: &Path) -> Duration {
    let t = Instant::now();
    let png = decode_body(body);
    let mut f = std::fs::File::create(path).expect("floor file");
    f.write_all(&png).expect("floor write");
    f.sync_all().expect("floor fsync");
    t.elapsed()
}

/// The base64 image inside a chat-completions body, decoded.
fn decode_body(body: &[u8]) -> Vec<u8> {
    let text = std::str::from_utf8(body).expect("utf8 body");
    let start = text.find("base64,").expect("data url") + "base64,".len();
    let end = start + text[start..].find('"').expect("end quote");
    base64::engine::general_purpose::STANDARD
        .decode(&text[start..end])
        .expect("base64")
}

struct Emulator {
    child: Child,
    url: String,
}

impl Emulator {
    fn spawn(latency_ms: u64) -> Self {
        let mut child = Command::new(BIN)
            .args([
                "emulator",
                "--port",
                "0",
                "--latency-ms",
                &latency_ms.to_string(),
            ])
            .env("MEDIA_GEN_LOG", "error")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn emulator");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("emulator url");
        Self {
            child,
            url: line.trim().to_owned(),
        }
    }

    /// One raw chat-completions response body, as the server receives it.
    fn raw_body(&self, prompt: &str, size: &str) -> Vec<u8> {
        let req = json!({"model": "gemini-3-pro-image-preview",
            "messages": [{"role": "user", "content": [{"type": "text", "text": prompt}]}],
            "modalities": ["image", "text"], "image_config": {"aspect_ratio": "1:1", "image_size": size}});
        let body = serde_json::to_vec(&req).expect("json");
        http_post(&self.url, "/v1/chat/completions", &body)
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP/1.1 POST over std (the bench avoids an async runtime).
fn http_post(base: &str, path: &str, body: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let hostport = base.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(hostport).expect("connect emulator");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {hostport}\r\nAuthorization: Bearer ccs-internal-managed\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).expect("write");
    s.write_all(body).expect("write");
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).expect("read");
    let split = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("headers")
        + 4;
    let headers = String::from_utf8_lossy(&resp[..split]).to_ascii_lowercase();
    let payload = resp[split..].to_vec();
    if headers.contains("transfer-encoding: chunked") {
        dechunk(&payload)
    } else {
        payload
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = data.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(std::str::from_utf8(&data[..eol]).unwrap_or("0").trim(), 16)
                .unwrap_or(0);
        if size == 0 {
            break;
        }
        out.extend_from_slice(&data[eol + 2..eol + 2 + size]);
        data = &data[eol + 2 + size + 2..];
    }
    out
}

struct Server {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    next_id: u64,
    spawned: Instant,
}

impl Server {
    /// `env` is applied after the defaults, so it can override them.
    fn spawn_with(out: &Path, env: &[(&str, &str)], stderr: Stdio) -> Self {
        Self::spawn_bin(BIN, out, env, stderr)
    }

    /// `media-gen serve` from the binary at `bin`.
    fn spawn_bin(bin: &str, out: &Path, env: &[(&str, &str)], stderr: Stdio) -> Self {
        let home: PathBuf = out.with_extension("home");
        let mut cmd = Command::new(bin);
        cmd.arg("serve")
            .env_clear()
            .env("MCP_OUTPUT_DIR", out)
            .env("HOME", &home)
            .env("MEDIA_GEN_LOG", "error")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr);
        for (k, v) in env {
            cmd.env(k, v);
        }
        Self::spawn_cmd(cmd)
    }

    /// Any MCP server over stdio, as `cmd` starts it (its stdin and stdout
    /// are taken here).
    fn spawn_cmd(mut cmd: Command) -> Self {
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
        let spawned = Instant::now();
        let mut child = cmd.spawn().expect("spawn server");
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        Self {
            child,
            stdin,
            stdout,
            next_id: 1,
            spawned,
        }
    }

    /// Sends `initialize` and returns the time from spawn to its result.
    fn initialize(&mut self) -> Duration {
        self.request(
            "initialize",
            json!({"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}),
        );
        let t = self.spawned.elapsed();
        self.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        t
    }

    fn call(&mut self, tool: &str, args: Value) -> Value {
        self.request("tools/call", json!({"name": tool, "arguments": args}))
    }

    fn send(&mut self, msg: Value) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{msg}").expect("write request");
        stdin.flush().expect("flush");
    }

    fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        loop {
            let mut line = String::new();
            let n = self.stdout.read_line(&mut line).expect("read response");
            assert!(n > 0, "server closed stdout");
            let v: Value = serde_json::from_str(&line).expect("json-rpc line");
            if v["id"] == id {
                return v["result"].clone();
            }
        }
    }

    fn status_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with(field))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    fn close(mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
