//! The shared deployment (docs/deploy.md) beside the local default, in one
//! run: PostgreSQL for the catalog (`MCP_DATABASE_URL`) and S3-compatible
//! object storage for the media (`MCP_STORAGE_URL`, here moto):
//! 1. `generate_image` overhead over stdio (1K, default preview, emulator at
//!    zero latency, warm cache; call − the emulator's own time) for the
//!    local default, PostgreSQL + local files and PostgreSQL + S3,
//!    interleaved call by call; beside it moto's own PUT of the same PNG;
//! 2. `list_generated` over stdio against the real binary on a library of
//!    100,000 rows, SQLite beside PostgreSQL, interleaved call by call;
//! 3. throughput at 1 s backend latency: 48 stateless (2026-07-28) HTTP
//!    clients calling `generate_image` in a loop for a fixed time against the
//!    local default, one replica and three replicas (PostgreSQL + S3).
//!
//! Runs only when named: `cargo bench --bench bench -- shared`. It uses the
//! servers of `MEDIA_GEN_TEST_DATABASE_URL` and `MEDIA_GEN_TEST_S3_ENDPOINT`
//! when both are set, else starts its own with `scripts/services` and stops
//! them at the end (a guard, so also when a step panics).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use media_gen::store::postgres::PgStore;
use serde_json::{Value, json};
use tokio::runtime::Runtime;

use crate::load::{HttpServer, message};
use crate::scale::{build_library, spawn_logging, wait_reconciled};
use crate::{Emulator, Server, decode_body, median_d, ms, row};

type Rows = Vec<(String, String, String)>;

/// Rows in the listed library.
const LIST_ROWS: usize = 100_000;
/// Concurrent clients in the throughput runs: three times a replica's
/// `MCP_GENERATION_CONCURRENCY` (16), so one replica is saturated (its
/// admission queue is never empty) while three can take every client at once.
const CLIENTS: usize = 48;
/// Backend latency in the throughput runs.
const LATENCY_MS: u64 = 1000;
/// Prompts the throughput clients cycle through (the emulator renders each
/// once, before the runs, then answers from its cache).
const PROMPTS: usize = 8;

pub fn run(work: &Path, quick: bool, rows: &mut Rows) {
    let services = Services::start();
    let rt = Runtime::new().expect("tokio runtime");
    overhead(&rt, work, quick, &services, rows);
    listing(&rt, work, quick, &services, rows);
    throughput(&rt, work, quick, &services, rows);
}

/// Per-image overhead over stdio, three stores side by side.
fn overhead(rt: &Runtime, work: &Path, quick: bool, sv: &Services, rows: &mut Rows) {
    let n = if quick { 7 } else { 25 };
    let emu = Emulator::spawn(0);
    let pg_local = sv.database("over_pg");
    let pg_s3 = sv.database("over_s3");
    let bucket = sv.bucket("over-s3");
    let base = [("MCP_CLIPROXY_URL", emu.url.as_str())];
    let mut configs: Vec<(&str, Vec<(String, String)>)> = vec![
        ("local default (dir + SQLite)", vec![]),
        (
            "PostgreSQL catalog + local files",
            vec![("MCP_DATABASE_URL".into(), pg_local)],
        ),
        ("PostgreSQL + S3 (moto)", sv.shared_env(&pg_s3, &bucket)),
    ];
    let mut servers: Vec<Server> = configs
        .iter_mut()
        .enumerate()
        .map(|(i, (_, env))| {
            let mut all: Vec<(&str, &str)> = base.to_vec();
            all.extend(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            let mut s =
                Server::spawn_with(&work.join(format!("shared-over{i}")), &all, Stdio::null());
            s.initialize();
            s
        })
        .collect();
    let prompt = "shared overhead 1K";
    let args = json!({"prompt": prompt, "image_size": "1K"});
    for s in &mut servers {
        let r = s.call("generate_image", args.clone()); // warms the emulator's cache
        assert_eq!(r["structuredContent"]["success"], true, "{r}");
    }
    let png = decode_body(&emu.raw_body(prompt, "1K"));
    let http = reqwest::Client::new();
    let mut calls: Vec<Vec<Duration>> = servers.iter().map(|_| Vec::new()).collect();
    let mut share = Vec::new();
    let mut puts = Vec::new();
    for i in 0..n {
        for (c, s) in servers.iter_mut().enumerate() {
            let t = Instant::now();
            let r = s.call("generate_image", args.clone());
            calls[c].push(t.elapsed());
            assert_eq!(r["structuredContent"]["success"], true, "{r}");
        }
        let t = Instant::now();
        let _ = emu.raw_body(prompt, "1K");
        share.push(t.elapsed());
        // moto's own PUT of the same bytes, unsigned, straight to it.
        let url = format!("{}/{bucket}/bench-put/{i}.png", sv.s3);
        let body = png.clone();
        let t = Instant::now();
        let status =
            rt.block_on(async { http.put(&url).body(body).send().await.map(|r| r.status()) });
        puts.push(t.elapsed());
        assert!(
            status.as_ref().is_ok_and(|s| s.is_success()),
            "PUT {url}: {status:?}"
        );
    }
    for s in servers {
        s.close();
    }
    drop(emu);
    let share = median_d(&mut share);
    rows.push(row(
        "shared: 1K backend share (emulator response over loopback)",
        format!("{:.1} ms", ms(share)),
        "",
    ));
    let mut local = None;
    for ((label, _), mut times) in configs.iter().zip(calls) {
        let call = median_d(&mut times);
        let over = call.saturating_sub(share);
        let base = *local.get_or_insert(over);
        rows.push(row(
            &format!("shared: 1K generate_image overhead over stdio (call − backend share), default preview, {label}"),
            format!(
                "{:.1} ms ({:.2}× local; call {:.1} ms)",
                ms(over),
                over.as_secs_f64() / base.as_secs_f64().max(1e-9),
                ms(call)
            ),
            "",
        ));
    }
    rows.push(row(
        &format!(
            "shared: moto's own PUT of the same {:.1} MB PNG (reqwest, unsigned; moto is a Python server, far slower than S3/MinIO: its PUT is part of the S3 figure above)",
            png.len() as f64 / 1e6
        ),
        format!("{:.1} ms", ms(median_d(&mut puts))),
        "",
    ));
}

/// `list_generated` at 100,000 rows over stdio, SQLite beside PostgreSQL.
/// One directory holds the files and sidecars (so neither
/// server's start-up reconcile drops a row) and the SQLite catalog; the
/// same rows go into the PostgreSQL catalog, which the second server reads
/// (`MCP_DATABASE_URL`, files in the same directory).
fn listing(rt: &Runtime, work: &Path, quick: bool, sv: &Services, rows: &mut Rows) {
    let dir = work.join("shared-list");
    let db = sv.database("list");
    let pg = rt
        .block_on(PgStore::connect(&db))
        .expect("connect PostgreSQL");
    let t = Instant::now();
    build_library(rt, &dir, LIST_ROWS, Some(&*pg.catalog));
    eprintln!(
        "shared: built {LIST_ROWS} files, sidecars and rows (SQLite and PostgreSQL) in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    drop(pg);
    let labels = ["SQLite", "PostgreSQL"];
    let envs: [Vec<(&str, &str)>; 2] = [vec![], vec![("MCP_DATABASE_URL", db.as_str())]];
    let mut servers: Vec<Server> = envs
        .iter()
        .map(|env| {
            let (mut s, log) = spawn_logging(&dir, env);
            s.initialize();
            wait_reconciled(&log, s.spawned);
            // The log's reader stops when the receiver is gone; stderr then
            // fills no pipe (the thread keeps draining until it fails).
            std::thread::spawn(move || while log.recv().is_ok() {});
            s
        })
        .collect();
    let reps = if quick { 20 } else { 100 };
    let queries = [
        ("default page (newest 20)", json!({})),
        ("name sort", json!({"sort_by": "name", "order": "asc"})),
        ("offset 50,000", json!({"offset": LIST_ROWS / 2})),
        ("prompt search \"fox\"", json!({"query": "fox"})),
    ];
    for (label, args) in queries {
        let mut times: Vec<Vec<Duration>> = servers.iter().map(|_| Vec::new()).collect();
        let mut totals = Vec::new();
        for _ in 0..reps {
            for (i, s) in servers.iter_mut().enumerate() {
                let t = Instant::now();
                let r = s.call("list_generated", args.clone());
                times[i].push(t.elapsed());
                let page = &r["structuredContent"];
                assert!(
                    page["files"].as_array().is_some_and(|f| !f.is_empty()),
                    "{page}"
                );
                totals.push(page["total"].clone());
            }
        }
        // Both catalogs agree on what matches.
        assert!(totals.windows(2).all(|w| w[0] == w[1]), "{totals:?}");
        let sqlite = median_d(&mut times[0]);
        let postgres = median_d(&mut times[1]);
        for (name, d) in [(labels[0], sqlite), (labels[1], postgres)] {
            rows.push(row(
                &format!("shared: 100k rows, list_generated over stdio, {label}, {name}"),
                format!(
                    "{:.2} ms ({:.2}× SQLite)",
                    ms(d),
                    d.as_secs_f64() / sqlite.as_secs_f64()
                ),
                "",
            ));
        }
    }
    for s in servers {
        s.close();
    }
}

/// Images per minute at 1 s backend latency: the local default, one
/// replica and three replicas on PostgreSQL + S3.
fn throughput(rt: &Runtime, work: &Path, quick: bool, sv: &Services, rows: &mut Rows) {
    let window = Duration::from_secs(if quick { 15 } else { 30 });
    let emu = Emulator::spawn(LATENCY_MS);
    let one_db = sv.database("tp_one");
    let one_bucket = sv.bucket("tp-one");
    let three_db = sv.database("tp_three");
    let three_bucket = sv.bucket("tp-three");
    let spawn = |name: &str, env: &[(String, String)]| {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        HttpServer::spawn_with(&work.join(name), &emu.url, &env)
    };
    let local = spawn("shared-tp-local", &[]);
    let one = spawn("shared-tp-one", &sv.shared_env(&one_db, &one_bucket));
    let three: Vec<HttpServer> = (0..3)
        .map(|i| {
            spawn(
                &format!("shared-tp-three{i}"),
                &sv.shared_env(&three_db, &three_bucket),
            )
        })
        .collect();
    let base = |s: &HttpServer| format!("http://{}", s.addr);
    let configs: Vec<(String, Vec<String>)> = vec![
        ("local default, 1 process".into(), vec![base(&local)]),
        ("PostgreSQL + S3, 1 replica".into(), vec![base(&one)]),
        (
            "PostgreSQL + S3, 3 replicas (round-robin)".into(),
            three.iter().map(base).collect(),
        ),
    ];
    // Render every prompt once (the emulator caches it), through each
    // configuration (each replica's first calls warm its pools).
    for (_, bases) in &configs {
        let r = rt.block_on(drive(bases, PROMPTS * bases.len(), Duration::ZERO));
        assert_eq!(r.failures, 0, "warm-up: {:?}", r.first_failure);
    }
    // Rounds in ABC, CBA order, so a drift of the machine's load touches
    // each configuration alike; moto is reset after each S3 run (when this
    // bench started it) so its memory holds one run's objects at most.
    let rounds = if quick { 1 } else { 2 };
    let mut results: Vec<Drive> = configs.iter().map(|_| Drive::default()).collect();
    for round in 0..rounds {
        let order: Vec<usize> = match round % 2 {
            0 => (0..configs.len()).collect(),
            _ => (0..configs.len()).rev().collect(),
        };
        for c in order {
            let r = rt.block_on(drive(&configs[c].1, CLIENTS, window));
            eprintln!(
                "shared: throughput, {}: {} images in {:.0} s, {} failed",
                configs[c].0,
                r.images,
                window.as_secs_f64(),
                r.failures
            );
            results[c].merge(r);
            if c > 0 {
                sv.reset_s3(&[&one_bucket, &three_bucket]);
            }
        }
    }
    drop(three);
    drop(one);
    drop(local);
    drop(emu);
    let measured = window * rounds;
    let per_min = |d: &Drive| d.images as f64 / measured.as_secs_f64() * 60.0;
    let baseline = per_min(&results[0]);
    for ((label, _), mut r) in configs.iter().zip(results) {
        if let Some(f) = &r.first_failure {
            eprintln!("shared: throughput, {label}: first failure: {f}");
        }
        r.latencies.sort();
        let p = |q: f64| {
            r.latencies
                .get(((r.latencies.len() as f64 - 1.0) * q).round() as usize)
                .copied()
                .unwrap_or_default()
        };
        rows.push(row(
            &format!(
                "shared: throughput, {CLIENTS} stateless HTTP clients, 1 s backend latency, {label}: images/min; generate_image p50 / p99"
            ),
            format!(
                "{:.0}/min ({:.2}× local; {} failed); {:.2} / {:.2} s",
                per_min(&r),
                per_min(&r) / baseline.max(1e-9),
                r.failures,
                p(0.5).as_secs_f64(),
                p(0.99).as_secs_f64()
            ),
            "",
        ));
    }
}

/// What a throughput run counted.
#[derive(Default)]
struct Drive {
    /// Images answered within the window.
    images: usize,
    failures: usize,
    first_failure: Option<String>,
    /// Each answered call's round trip.
    latencies: Vec<Duration>,
}

impl Drive {
    fn merge(&mut self, other: Drive) {
        self.images += other.images;
        self.failures += other.failures;
        self.first_failure = self.first_failure.take().or(other.first_failure);
        self.latencies.extend(other.latencies);
    }
}

/// `clients` concurrent stateless (2026-07-28) clients, each calling
/// `generate_image` in a loop until `window` has passed (at least once),
/// each request to the next of `bases` in turn. Calls answered after the
/// window are waited for but not counted.
async fn drive(bases: &[String], clients: usize, window: Duration) -> Drive {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(300))
        .pool_max_idle_per_host(clients)
        .build()
        .expect("http client");
    let next = Arc::new(AtomicUsize::new(0));
    let bases: Arc<[String]> = bases.into();
    let start = Instant::now();
    let end = start + window;
    let tasks: Vec<_> = (0..clients)
        .map(|i| {
            let http = http.clone();
            let next = next.clone();
            let bases = bases.clone();
            tokio::spawn(async move {
                let mut d = Drive::default();
                let mut id = 0u64;
                loop {
                    id += 1;
                    let base = &bases[next.fetch_add(1, Ordering::Relaxed) % bases.len()];
                    let prompt = format!("shared throughput {}", i % PROMPTS);
                    let t = Instant::now();
                    let r = generate(&http, base, id, &prompt).await;
                    let done = Instant::now();
                    match r {
                        Ok(()) if done <= end || window.is_zero() => {
                            d.images += 1;
                            d.latencies.push(done - t);
                        }
                        Ok(()) => {}
                        Err(e) => {
                            d.failures += 1;
                            d.first_failure.get_or_insert(e);
                        }
                    }
                    if done >= end {
                        return d;
                    }
                }
            })
        })
        .collect();
    let mut all = Drive::default();
    for t in tasks {
        all.merge(t.await.expect("client task"));
    }
    all
}

/// One stateless `tools/call generate_image` (1K, default preview) to
/// `base`/mcp, as a 2026-07-28 client sends it.
async fn generate(http: &reqwest::Client, base: &str, id: u64, prompt: &str) -> Result<(), String> {
    let msg = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {
        "name": "generate_image", "arguments": {"prompt": prompt},
        "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientInfo": {"name": "bench-shared", "version": "1"},
            "io.modelcontextprotocol/clientCapabilities": {}}}});
    let r = http
        .post(format!("{base}/mcp"))
        .header("Accept", "application/json, text/event-stream")
        .header("MCP-Protocol-Version", "2026-07-28")
        .header("Mcp-Method", "tools/call")
        .header("Mcp-Name", "generate_image")
        .json(&msg)
        .send()
        .await
        .map_err(|e| format!("POST {base}/mcp: {e}"))?;
    let status = r.status();
    let body = r.text().await.map_err(|e| format!("body: {e}"))?;
    let answer: Value = message(&body, id).ok_or_else(|| {
        format!(
            "HTTP {status}: {}",
            body.chars().take(300).collect::<String>()
        )
    })?;
    if answer["result"]["structuredContent"]["success"] != true {
        return Err(answer.to_string().chars().take(300).collect());
    }
    Ok(())
}

/// The PostgreSQL and S3-compatible servers the section runs on: the test
/// services named by the environment, or its own (`scripts/services`),
/// stopped when this is dropped. Databases it made on servers it did not
/// start are dropped then too.
struct Services {
    /// A superuser's URL to the `postgres` database.
    db: String,
    /// The S3-compatible server's address.
    s3: String,
    /// The services' directory when this started them.
    own: Option<PathBuf>,
    /// Database names made here.
    made: std::sync::Mutex<Vec<String>>,
}

impl Services {
    fn start() -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        if let (Some(db), Some(s3)) = (
            var("MEDIA_GEN_TEST_DATABASE_URL"),
            var("MEDIA_GEN_TEST_S3_ENDPOINT"),
        ) {
            return Self {
                db,
                s3,
                own: None,
                made: Default::default(),
            };
        }
        // Under the system's temp directory (not the bench's 0700 one):
        // the script runs PostgreSQL as `nobody` when this runs as root.
        let dir = tempfile::Builder::new()
            .prefix("media-gen-bench-services")
            .tempdir()
            .expect("services dir")
            .keep();
        let out = Command::new(script())
            .args(["start".as_ref(), dir.as_os_str()])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .expect("run scripts/services");
        // From here the guard stops them, whatever fails next.
        let mut started = Self {
            db: String::new(),
            s3: String::new(),
            own: Some(dir),
            made: Default::default(),
        };
        assert!(out.status.success(), "scripts/services start failed");
        let text = String::from_utf8_lossy(&out.stdout);
        let get = |k: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("export {k}=")))
                .map(str::to_owned)
                .ok_or_else(|| format!("scripts/services printed no {k}: {text}"))
                .expect("the services' addresses")
        };
        started.db = get("MEDIA_GEN_TEST_DATABASE_URL");
        started.s3 = get("MEDIA_GEN_TEST_S3_ENDPOINT");
        started
    }

    /// A fresh database (named after `tag` and this process); its URL.
    fn database(&self, tag: &str) -> String {
        let name = format!("bench_{}_{tag}", std::process::id());
        self.psql(&format!("CREATE DATABASE {name}"));
        self.made.lock().expect("made").push(name.clone());
        let (server, _) = self.db.rsplit_once('/').expect("database URL");
        format!("{server}/{name}")
    }

    /// A fresh bucket (moto takes an unsigned `PUT /bucket`); its name.
    fn bucket(&self, tag: &str) -> String {
        let name = format!("bench-{}-{tag}", std::process::id());
        self.put_bucket(&name);
        name
    }

    fn put_bucket(&self, name: &str) {
        s3_call(reqwest::Method::PUT, &format!("{}/{name}", self.s3));
    }

    /// Empties moto (its objects live in its memory) and makes `buckets`
    /// again, when this started it; a server someone else runs is left alone.
    fn reset_s3(&self, buckets: &[&str]) {
        if self.own.is_none() {
            return;
        }
        s3_call(
            reqwest::Method::POST,
            &format!("{}/moto-api/reset", self.s3),
        );
        for b in buckets {
            self.put_bucket(b);
        }
    }

    /// What a replica on `database` and `bucket` gets (dummy credentials).
    fn shared_env(&self, database: &str, bucket: &str) -> Vec<(String, String)> {
        [
            ("MCP_DATABASE_URL", database.to_owned()),
            ("MCP_STORAGE_URL", format!("s3://{bucket}/library")),
            ("MCP_STORAGE_ENDPOINT", self.s3.clone()),
            ("AWS_ACCESS_KEY_ID", "test".into()),
            ("AWS_SECRET_ACCESS_KEY", "test".into()),
            ("AWS_REGION", "us-east-1".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    fn psql(&self, sql: &str) {
        let out = Command::new("psql")
            .args([self.db.as_str(), "-qc", sql])
            .stdin(Stdio::null())
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Services {
    fn drop(&mut self) {
        match &self.own {
            Some(dir) => {
                let _ = Command::new(script())
                    .args(["stop".as_ref(), dir.as_os_str()])
                    .current_dir(env!("CARGO_MANIFEST_DIR"))
                    .stdin(Stdio::null())
                    .status();
            }
            None => {
                for name in self.made.lock().map(|m| m.clone()).unwrap_or_default() {
                    let _ = Command::new("psql")
                        .args([
                            self.db.as_str(),
                            "-qc",
                            &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                        ])
                        .stdin(Stdio::null())
                        .output();
                }
            }
        }
    }
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/services")
}

/// An unsigned request to moto (bucket creation, reset), on a thread of its
/// own with its own runtime (the bench has none); it must succeed.
fn s3_call(method: reqwest::Method, url: &str) {
    let status = std::thread::scope(|s| {
        s.spawn(|| {
            Runtime::new()
                .expect("runtime")
                .block_on(async {
                    reqwest::Client::new()
                        .request(method.clone(), url)
                        .send()
                        .await
                })
                .map(|r| r.status())
        })
        .join()
        .expect("moto request thread")
    });
    assert!(
        status.as_ref().is_ok_and(|s| s.is_success()),
        "{method} {url}: {status:?}"
    );
}
