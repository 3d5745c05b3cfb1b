//! The library at scale: a catalog of 100,000 files (real files, sidecars and
//! catalog rows, built with `media_gen::store`), then
//! - `list_generated` (limit 20) for every sort and order, in process and over
//!   stdio through the real binary;
//! - start-up of the real binary against that library: spawn → `initialize`
//!   result, and spawn → the "catalog reconciled" log line;
//! - `LocalStore::open` + `reconcile` in process, steady state and with 1,000
//!   files added by hand.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use media_gen::store::local::{LocalStore, METADATA_DIR};
use media_gen::store::{Catalog, ListQuery, MediaId, MediaKind, MediaRecord, Page, SortBy};
use serde_json::{Map, json};
use tokio::runtime::Runtime;

use crate::{Server, median_d, ms, row};

/// A valid 1×1 PNG: what every benchmark file holds.
const PNG_1X1: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x00, 0x01, 0x00, 0x00,
    0x05, 0x00, 0x01, 0x0d, 0x0a, 0x2d, 0xb4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae,
    0x42, 0x60, 0x82,
];

const WORDS: &[&str] = &[
    "lighthouse",
    "dusk",
    "fox",
    "forest",
    "city",
    "neon",
    "ocean",
    "portrait",
    "mountain",
    "robot",
    "garden",
    "desert",
];

pub fn run(work: &Path, quick: bool, files: usize, rows: &mut Vec<(String, String, String)>) {
    let dir = work.join("scale");
    // The library's ports are async: the in-process figures include the
    // hop to a blocking thread, as a server pays it.
    let rt = Runtime::new().expect("tokio runtime");
    let t = Instant::now();
    build_library(&rt, &dir, files, None);
    let built = t.elapsed();
    eprintln!(
        "scale: built a library of {files} files in {:.1} s",
        built.as_secs_f64()
    );
    let n_label = format!("{}k", files / 1000);

    // In process: the catalog query itself.
    let store = LocalStore::open(&dir).expect("open store").library();
    let reps = if quick { 50 } else { 200 };
    let mut all = Vec::new();
    for (sort, name) in [
        (SortBy::Date, "date"),
        (SortBy::Size, "size"),
        (SortBy::Name, "name"),
    ] {
        for descending in [true, false] {
            let q = ListQuery {
                sort,
                descending,
                ..ListQuery::default()
            };
            let mut times = Vec::new();
            for _ in 0..reps {
                let t = Instant::now();
                let Page {
                    records: page,
                    total,
                } = rt.block_on(store.list(&q)).expect("list");
                times.push(t.elapsed());
                assert_eq!(page.len(), 20);
                assert_eq!(total, files as u64);
            }
            let m = median_d(&mut times);
            all.push((
                format!("{name} {}", if descending { "desc" } else { "asc" }),
                m,
            ));
        }
    }
    let worst = all.iter().max_by_key(|(_, d)| *d).expect("timings").clone();
    rows.push(row(
        &format!("{n_label} library: catalog list, limit 20, slowest of 6 sorts (in process)"),
        format!("{:.2} ms ({})", ms(worst.1), worst.0),
        "< 5 ms",
    ));
    for (label, q) in [
        (
            "type=image, sort date",
            ListQuery {
                kind: Some(MediaKind::Image),
                ..ListQuery::default()
            },
        ),
        (
            "query \"fox\", sort date",
            ListQuery {
                text: Some("fox".into()),
                ..ListQuery::default()
            },
        ),
        (
            "offset 50000, sort size",
            ListQuery {
                sort: SortBy::Size,
                offset: (files / 2) as u64,
                ..ListQuery::default()
            },
        ),
    ] {
        let mut times = Vec::new();
        for _ in 0..reps {
            let t = Instant::now();
            let page = rt.block_on(store.list(&q)).expect("list");
            times.push(t.elapsed());
            assert!(!page.records.is_empty());
        }
        rows.push(row(
            &format!("{n_label} library: catalog list, limit 20, {label} (in process)"),
            format!("{:.2} ms", ms(median_d(&mut times))),
            "",
        ));
    }

    // In process: open + reconcile, steady state, then with files added by hand.
    let mut open_rec = Vec::new();
    for _ in 0..if quick { 3 } else { 5 } {
        let t = Instant::now();
        let s = LocalStore::open(&dir).expect("open").library();
        let r = rt
            .block_on(s.reconcile(Duration::from_secs(3600)))
            .expect("reconcile");
        open_rec.push(t.elapsed());
        assert_eq!(r.added + r.removed, 0, "{r:?}");
    }
    rows.push(row(
        &format!("{n_label} library: LocalStore::open + reconcile, steady state (in process)"),
        format!("{:.0} ms", ms(median_d(&mut open_rec))),
        "< 1 s",
    ));
    let by_hand = 1000;
    for i in 0..by_hand {
        std::fs::write(dir.join(format!("by_hand_{i:04}.png")), PNG_1X1).expect("hand file");
    }
    let t = Instant::now();
    let s = LocalStore::open(&dir).expect("open").library();
    let r = rt
        .block_on(s.reconcile(Duration::from_secs(3600)))
        .expect("reconcile");
    let first = t.elapsed();
    assert_eq!(r.added, by_hand, "{r:?}");
    rows.push(row(
        &format!(
            "{n_label} library: LocalStore::open + reconcile cataloguing {by_hand} hand-added files"
        ),
        format!("{:.0} ms", ms(first)),
        "< 1 s",
    ));
    drop(s);
    drop(store);

    // The real binary: start-up (beside an empty library, measured
    // alternately in the same run) and list_generated over stdio.
    let empty = work.join("scale-empty");
    let mut init = Vec::new();
    let mut init_empty = Vec::new();
    let mut reconciled = Vec::new();
    for _ in 0..if quick { 5 } else { 15 } {
        let (mut s, log) = spawn_logging(&dir, &[]);
        init.push(s.initialize());
        reconciled.push(wait_reconciled(&log, s.spawned));
        s.close();
        let (mut s, log) = spawn_logging(&empty, &[]);
        init_empty.push(s.initialize());
        wait_reconciled(&log, s.spawned);
        s.close();
    }
    rows.push(row(
        &format!("{n_label} library: start-up, spawn → initialize result"),
        format!(
            "{:.2} ms (empty library: {:.2} ms)",
            ms(median_d(&mut init)),
            ms(median_d(&mut init_empty))
        ),
        "≤ 10 ms",
    ));
    rows.push(row(
        &format!("{n_label} library: start-up, spawn → reconcile finished"),
        format!("{:.0} ms", ms(median_d(&mut reconciled))),
        "< 1 s",
    ));

    let (mut s, log) = spawn_logging(&dir, &[]);
    s.initialize();
    wait_reconciled(&log, s.spawned);
    let mut worst_call: Option<(String, Duration)> = None;
    for sort in ["date", "size", "name"] {
        for order in ["desc", "asc"] {
            let args = json!({"limit": 20, "sort_by": sort, "order": order});
            let mut times = Vec::new();
            for _ in 0..reps / 2 {
                let t = Instant::now();
                let r = s.call("list_generated", args.clone());
                times.push(t.elapsed());
                assert_eq!(
                    r["structuredContent"]["total"],
                    files + by_hand,
                    "{}",
                    r["structuredContent"]
                );
            }
            let m = median_d(&mut times);
            if worst_call.as_ref().is_none_or(|(_, w)| m > *w) {
                worst_call = Some((format!("{sort} {order}"), m));
            }
        }
    }
    let (label, d) = worst_call.expect("timings");
    rows.push(row(
        &format!("{n_label} library: list_generated tools/call over stdio, slowest of 6 sorts"),
        format!("{:.2} ms ({label})", ms(d)),
        "< 5 ms",
    ));
    s.close();
}

/// Writes `n` files, their sidecars and catalog rows (in the directory's
/// SQLite catalog and, if given, in `also` too: the same rows in another
/// catalog). Files are not fsynced: the benchmark measures reading a
/// library, not making one.
pub(crate) fn build_library(rt: &Runtime, dir: &Path, n: usize, also: Option<&dyn Catalog>) {
    let store = LocalStore::open(dir).expect("open store");
    let meta = dir.join(METADATA_DIR);
    std::fs::create_dir_all(&meta).expect("metadata dir");
    let start = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .expect("date")
        .with_timezone(&Utc);
    let mut batch = Vec::with_capacity(5000);
    for i in 0..n {
        let created = start + chrono::Duration::seconds(i as i64 * 7);
        let name = format!(
            "image_{}_{:06x}.png",
            created.format("%Y%m%d_%H%M%S_%3f"),
            i % 0xff_ffff
        );
        let id: MediaId = name.parse().expect("valid name");
        let prompt = format!(
            "{} {} {} number {i}",
            WORDS[i % WORDS.len()],
            WORDS[(i / 7) % WORDS.len()],
            WORDS[(i / 49) % WORDS.len()]
        );
        // Sizes vary so the size sort has work to do.
        let size = 1_000 + (i * 7919) % 5_000_000;
        let mut sidecar = Map::new();
        sidecar.insert("filename".into(), json!(name));
        sidecar.insert("type".into(), json!("image"));
        sidecar.insert("mime_type".into(), json!("image/png"));
        sidecar.insert("file_size_bytes".into(), json!(PNG_1X1.len()));
        sidecar.insert("width".into(), json!(1024));
        sidecar.insert("height".into(), json!(1024));
        sidecar.insert(
            "created".into(),
            json!(created.to_rfc3339_opts(SecondsFormat::Millis, true)),
        );
        sidecar.insert("prompt".into(), json!(prompt));
        sidecar.insert("model".into(), json!("gemini-3-pro-image-preview"));
        std::fs::write(dir.join(&name), PNG_1X1).expect("file");
        std::fs::write(
            meta.join(format!("{name}.json")),
            serde_json::to_vec_pretty(&sidecar).expect("json"),
        )
        .expect("sidecar");
        batch.push(MediaRecord {
            id,
            kind: MediaKind::Image,
            mime_type: "image/png".into(),
            size_bytes: size as u64,
            width: Some(1024),
            height: Some(1024),
            created,
            prompt: Some(prompt),
            model: Some("gemini-3-pro-image-preview".into()),
            source: None,
            metadata: sidecar,
        });
        if batch.len() == 5000 {
            insert(rt, &*store.catalog, also, std::mem::take(&mut batch));
        }
    }
    insert(rt, &*store.catalog, also, batch);
}

fn insert(rt: &Runtime, catalog: &dyn Catalog, also: Option<&dyn Catalog>, rows: Vec<MediaRecord>) {
    if let Some(other) = also {
        rt.block_on(other.insert_many(rows.clone()))
            .expect("insert (other catalog)");
    }
    rt.block_on(catalog.insert_many(rows)).expect("insert");
}

/// Spawns `media-gen serve` on `dir` (with `env` besides) logging on stderr
/// at `info`, and the start-up reconcile's outcome (a `debug` record when it
/// changed nothing), and a channel that receives the time each stderr line
/// was read.
pub(crate) fn spawn_logging(
    dir: &Path,
    env: &[(&str, &str)],
) -> (Server, mpsc::Receiver<(Instant, String)>) {
    let mut all = vec![("MEDIA_GEN_LOG", RECONCILE_LOG)];
    all.extend_from_slice(env);
    let mut s = Server::spawn_with(dir, &all, Stdio::piped());
    let stderr = s.child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { return };
            if tx.send((Instant::now(), line)).is_err() {
                return;
            }
        }
    });
    (s, rx)
}

/// The log filter that shows the start-up reconcile's outcome either way.
const RECONCILE_LOG: &str = "info,media_gen::service::maintenance=debug";

/// Waits for the start-up reconcile's outcome on `log`; the time from spawn.
pub(crate) fn wait_reconciled(
    log: &mpsc::Receiver<(Instant, String)>,
    spawned: Instant,
) -> Duration {
    loop {
        let (at, line) = log
            .recv_timeout(Duration::from_secs(60))
            .expect("no reconcile log line within 60 s");
        if line.contains("catalog reconciled") || line.contains("library reconciled") {
            return at - spawned;
        }
    }
}
