//! A process killed in the middle of a generation leaves no partial file and
//! no catalog row, and the next start is clean.

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;
use std::time::Duration;

use crate::support::{bin_in, catalog_rows, media_files};

#[test]
fn killed_during_slow_generation_leaves_nothing_and_next_start_is_clean() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut child = bin_in(dir.path())
        .args(["serve", "--emulator"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"crash-test","version":"1"}}}"#;
    writeln!(stdin, "{init}").unwrap();
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert!(line.contains("\"id\":1"), "{line}");
    writeln!(
        stdin,
        r#"{{"jsonrpc":"2.0","method":"notifications/initialized"}}"#
    )
    .unwrap();
    let call = r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"generate_image","arguments":{"prompt":"a slow one [emulator:slow]"}}}"#;
    writeln!(stdin, "{call}").unwrap();
    stdin.flush().unwrap();
    // Let the request reach the (slow) backend, then kill -9.
    std::thread::sleep(Duration::from_millis(700));
    child.kill().unwrap();
    child.wait().unwrap();

    assert!(media_files(&out).is_empty(), "{:?}", media_files(&out));
    assert_eq!(catalog_rows(&out), 0);
    assert_eq!(std::fs::read_dir(out.join("metadata")).unwrap().count(), 0);

    // The next start works and leaves exactly one image, its sidecar and row.
    let status = bin_in(dir.path())
        .args(["generate", "after the crash", "--emulator"])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let files = media_files(&out);
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(
        out.join("metadata")
            .join(format!("{}.json", files[0]))
            .is_file()
    );
    assert_eq!(catalog_rows(&out), 1);
}

/// A kill between a video's sidecar and its catalog row: the next start's
/// reconcile catalogues the video from its sidecar (which names its job),
/// and the resumed job must find it there instead of downloading and saving
/// the video a second time. Many files added by hand make the reconcile
/// long, so a job runner that does not wait for it would look too early.
#[test]
fn a_resumed_job_finds_the_video_reconcile_catalogues() {
    use crate::support::{EmulatorProcess, ServeProcess, mcp_tool_call};
    use serde_json::json;

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let emulator = EmulatorProcess::start(&[]);
    let env = [
        ("MCP_CLIPROXY_URL", emulator.url.as_str()),
        ("MCP_GEMINI_URL", emulator.url.as_str()),
        ("MCP_GEMINI_API_KEY", "test-key"),
        ("MCP_VIDEO_POLL_INTERVAL", "0.05"),
        ("MEDIA_GEN_LOG", "info,media_gen=debug"),
    ];
    let server = ServeProcess::start(dir.path(), &env);
    let (started, _) = mcp_tool_call(
        &server.addr,
        None,
        "generate_video",
        &json!({"prompt": "a kite over dunes", "duration": "4s"}),
    )
    .unwrap();
    let job = started["structuredContent"]["job_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (done, _) = mcp_tool_call(
        &server.addr,
        None,
        "get_video_status",
        &json!({"job_id": job, "wait_seconds": 60}),
    )
    .unwrap();
    let video = done["structuredContent"]["filename"]
        .as_str()
        .unwrap_or_else(|| panic!("{}", done["structuredContent"]))
        .to_owned();
    server.kill();
    // As a kill after the sidecar and before the row leaves it: the video
    // and its sidecar on disk, no row, the job still running.
    let conn = rusqlite::Connection::open(out.join("catalog.sqlite3")).unwrap();
    conn.execute("DELETE FROM media WHERE filename = ?1", [&video])
        .unwrap();
    conn.execute(
        "UPDATE jobs SET state = 'running', body = json_set(body, '$.state', 'running', '$.result', json('null')) WHERE id = ?1",
        [&job],
    )
    .unwrap();
    drop(conn);
    let png = {
        let mut bytes = Vec::new();
        image::RgbImage::from_pixel(8, 8, image::Rgb([9, 9, 9]))
            .write_to(
                &mut std::io::Cursor::new(&mut bytes),
                image::ImageFormat::Png,
            )
            .unwrap();
        bytes
    };
    for i in 0..1500 {
        std::fs::write(out.join(format!("by-hand-{i:04}.png")), &png).unwrap();
    }

    let server = ServeProcess::start(dir.path(), &env);
    let (end, _) = mcp_tool_call(
        &server.addr,
        None,
        "get_video_status",
        &json!({"job_id": job, "wait_seconds": 60}),
    )
    .unwrap();
    assert_eq!(end["structuredContent"]["status"], "succeeded", "{end}");
    assert_eq!(
        end["structuredContent"]["filename"],
        video.as_str(),
        "{end}"
    );
    let videos: Vec<String> = media_files(&out)
        .into_iter()
        .filter(|f| f.ends_with(".mp4"))
        .collect();
    assert_eq!(videos, [video], "the job saved its video once");
}

/// The crash loop: a server killed (SIGKILL) again and again at random
/// moments while it generates, edits, deletes and downloads videos, and
/// started again each time. After every restart's reconcile the library
/// must hold:
///
/// - every catalog row has its file and its sidecar, and is `ready`
///   (a delete the kill interrupted is finished);
/// - every media file has a row, no sidecar lacks its file, and no
///   temporary file is left;
/// - every file whose tool call answered success before the kill is there
///   with its prompt, in the catalog and in its sidecar; every answered
///   delete stayed done;
/// - at the end, every video job (answered or not) has finished, each with
///   exactly one file.
///
/// A file adopted by reconcile without a prompt (`added_by_hand`) is a
/// violation whether its call was answered or not: the sidecar is written
/// before the file, so a kill can never leave a file without its metadata.
///
/// `MEDIA_GEN_CRASH_LOOPS` sets the number of kills (default 8): the long
/// run is `MEDIA_GEN_CRASH_LOOPS=50 cargo test --features conformance
/// --test it crash_loop -- --nocapture` (see bench/README.md).
#[test]
fn crash_loop_keeps_the_library_consistent() {
    let kills = std::env::var("MEDIA_GEN_CRASH_LOOPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    let report = crash_loop::run(kills);
    eprintln!("{report}");
    assert!(
        report.violations.is_empty(),
        "{} violation(s):\n{}",
        report.violations.len(),
        report.violations.join("\n")
    );
    // Work was really done, and interrupted.
    assert!(report.acked.values().sum::<usize>() >= kills, "{report}");
}

mod crash_loop {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::Path;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use serde_json::{Value, json};

    use crate::support::{EmulatorProcess, ServeProcess, mcp_tool_call, post_json};

    /// What the driver knows from answers it got.
    #[derive(Default)]
    struct Ledger {
        /// Files whose call answered success: name → prompt.
        files: BTreeMap<String, String>,
        /// Deletes answered success.
        deleted: BTreeSet<String>,
        /// Deletes sent and not answered: they may or may not have happened.
        unsure: BTreeSet<String>,
        /// Video jobs whose start answered.
        jobs: BTreeSet<String>,
        /// Answers per operation.
        acked: BTreeMap<&'static str, usize>,
        /// Tool errors per code (e.g. an edit of a file deleted meanwhile).
        errors: BTreeMap<String, usize>,
    }

    /// What a run found.
    #[derive(Default)]
    pub struct Report {
        pub kills: usize,
        pub acked: BTreeMap<&'static str, usize>,
        pub tool_errors: BTreeMap<String, usize>,
        /// Files reconcile adopted without a prompt whose call never
        /// answered (a kill between the file and its sidecar).
        pub adopted_without_prompt: BTreeSet<String>,
        pub videos: usize,
        pub violations: Vec<String>,
        pub seconds: f64,
        /// Where the library and the logs were kept, after a violation.
        pub kept: Option<std::path::PathBuf>,
    }

    impl std::fmt::Display for Report {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(
                f,
                "crash loop: {} kills in {:.1} s; acknowledged {:?}; tool errors {:?}; {} video file(s); {} unacknowledged file(s) adopted without prompt {:?}; {} violation(s){}",
                self.kills,
                self.seconds,
                self.acked,
                self.tool_errors,
                self.videos,
                self.adopted_without_prompt.len(),
                self.adopted_without_prompt,
                self.violations.len(),
                self.kept
                    .as_ref()
                    .map(|p| format!(" (library and logs kept in {})", p.display()))
                    .unwrap_or_default()
            )
        }
    }

    const LOG: &str = "info,media_gen=debug";

    fn serve(dir: &Path, emulator: &str) -> ServeProcess {
        let server = ServeProcess::start(
            dir,
            &[
                ("MCP_CLIPROXY_URL", emulator),
                ("MCP_GEMINI_URL", emulator),
                ("MCP_GEMINI_API_KEY", "test-key"),
                ("MCP_VIDEO_POLL_INTERVAL", "0.05"),
                ("MEDIA_GEN_LOG", LOG),
            ],
        );
        // The start-up reconcile says when it is done, at debug or info.
        assert!(
            server.wait_for_log("reconciled", Duration::from_secs(30)),
            "no reconcile:\n{}",
            server.log().join("\n")
        );
        server
    }

    fn control(emulator: &str, body: Value) {
        let r = post_json(emulator, "/emulator/control", &body);
        assert_eq!(r.status, 200, "{}", r.text());
    }

    fn pick<T: Clone>(items: &[T]) -> Option<T> {
        (!items.is_empty()).then(|| items[rand::random_range(0..items.len())].clone())
    }

    /// One tool call: `Ok(Some(result))` answered success, `Ok(None)` a tool
    /// error (counted), `Err` no answer (the server is gone).
    fn call(
        addr: &str,
        ledger: &Mutex<Ledger>,
        tool: &str,
        args: Value,
    ) -> Result<Option<Value>, ()> {
        let (result, _) = mcp_tool_call(addr, None, tool, &args).map_err(|_| ())?;
        let v = result["structuredContent"].clone();
        if result["isError"] == true {
            let code = v["error"]["code"].as_str().unwrap_or("?").to_owned();
            *ledger
                .lock()
                .unwrap()
                .errors
                .entry(format!("{tool}:{code}"))
                .or_default() += 1;
            return Ok(None);
        }
        Ok(Some(v))
    }

    /// Images the driver may edit or delete: answered, not deleted, not
    /// being deleted.
    fn live_images(l: &Ledger) -> Vec<String> {
        l.files
            .keys()
            .filter(|n| n.ends_with(".png") && !l.deleted.contains(*n) && !l.unsure.contains(*n))
            .cloned()
            .collect()
    }

    /// The work of one life of the server, on threads, until it dies.
    fn work(
        addr: &str,
        round: usize,
        ledger: &Arc<Mutex<Ledger>>,
        stop: &Arc<AtomicBool>,
    ) -> Vec<std::thread::JoinHandle<()>> {
        let mut threads = Vec::new();
        // Generations, one after the other.
        {
            let (addr, ledger, stop) = (addr.to_owned(), ledger.clone(), stop.clone());
            threads.push(std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::SeqCst) {
                    n += 1;
                    let prompt = format!("crash round {round} image {n}");
                    match call(
                        &addr,
                        &ledger,
                        "generate_image",
                        json!({"prompt": prompt, "aspect_ratio": "1:1"}),
                    ) {
                        Err(()) => return,
                        Ok(Some(v)) => {
                            let mut l = ledger.lock().unwrap();
                            l.files
                                .insert(v["filename"].as_str().unwrap().to_owned(), prompt);
                            *l.acked.entry("generate_image").or_default() += 1;
                        }
                        Ok(None) => {}
                    }
                }
            }));
        }
        // Edits of answered images.
        {
            let (addr, ledger, stop) = (addr.to_owned(), ledger.clone(), stop.clone());
            threads.push(std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::SeqCst) {
                    let Some(source) = pick(&live_images(&ledger.lock().unwrap())) else {
                        std::thread::sleep(Duration::from_millis(50));
                        continue;
                    };
                    n += 1;
                    let prompt = format!("crash round {round} edit {n}");
                    match call(
                        &addr,
                        &ledger,
                        "edit_image",
                        json!({"image_path": source, "prompt": prompt}),
                    ) {
                        Err(()) => return,
                        Ok(Some(v)) => {
                            let mut l = ledger.lock().unwrap();
                            l.files
                                .insert(v["filename"].as_str().unwrap().to_owned(), prompt);
                            *l.acked.entry("edit_image").or_default() += 1;
                        }
                        Ok(None) => {}
                    }
                }
            }));
        }
        // Deletes, while a few images remain.
        {
            let (addr, ledger, stop) = (addr.to_owned(), ledger.clone(), stop.clone());
            threads.push(std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(rand::random_range(20..200)));
                    let victim = {
                        let mut l = ledger.lock().unwrap();
                        let live = live_images(&l);
                        let victim = if live.len() > 4 { pick(&live) } else { None };
                        if let Some(v) = &victim {
                            l.unsure.insert(v.clone());
                        }
                        victim
                    };
                    let Some(victim) = victim else { continue };
                    let answer = call(
                        &addr,
                        &ledger,
                        "delete_file",
                        json!({"filename": victim, "confirm": true}),
                    );
                    let mut l = ledger.lock().unwrap();
                    match answer {
                        Err(()) => return, // stays unsure
                        Ok(Some(_)) => {
                            l.unsure.remove(&victim);
                            l.deleted.insert(victim);
                            *l.acked.entry("delete_file").or_default() += 1;
                        }
                        Ok(None) => {
                            l.unsure.remove(&victim);
                        }
                    }
                }
            }));
        }
        // A video each life: it finishes, and is downloaded, soon after.
        {
            let (addr, ledger) = (addr.to_owned(), ledger.clone());
            threads.push(std::thread::spawn(move || {
                let prompt = format!("crash round {round} video");
                if let Ok(Some(v)) = call(
                    &addr,
                    &ledger,
                    "generate_video",
                    json!({"prompt": prompt, "duration": "4s"}),
                ) {
                    let mut l = ledger.lock().unwrap();
                    l.jobs.insert(v["job_id"].as_str().unwrap().to_owned());
                    *l.acked.entry("generate_video").or_default() += 1;
                }
            }));
        }
        threads
    }

    fn sidecar(out: &Path, name: &str) -> Option<Value> {
        let bytes = std::fs::read(out.join("metadata").join(format!("{name}.json"))).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// The invariants, on a library the server has just reconciled and
    /// that nothing writes to (no call under way, video jobs held).
    fn check(out: &Path, ledger: &Ledger, report: &mut Report, when: &str) {
        let mut v = |m: String| report.violations.push(format!("{when}: {m}"));
        let conn = rusqlite::Connection::open(out.join("catalog.sqlite3")).unwrap();
        let mut stmt = conn
            .prepare("SELECT filename, prompt, state FROM media")
            .unwrap();
        let rows: BTreeMap<String, (Option<String>, String)> = stmt
            .query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let names = |dir: &Path| -> Vec<String> {
            std::fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap())
                .filter(|e| e.file_type().unwrap().is_file())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        };
        let top = names(out);
        let meta = names(&out.join("metadata"));
        for t in top.iter().chain(&meta).filter(|n| n.starts_with(".tmp-")) {
            v(format!("temporary file `{t}` left"));
        }
        let files: BTreeSet<&String> = top
            .iter()
            .filter(|n| !n.starts_with(".tmp-") && !n.starts_with("catalog.sqlite3"))
            .collect();
        let sidecars: BTreeSet<&str> = meta
            .iter()
            .filter(|n| !n.starts_with(".tmp-"))
            .filter_map(|n| n.strip_suffix(".json"))
            .collect();
        for (name, (_, state)) in &rows {
            if state != "ready" {
                v(format!("row `{name}` is `{state}`"));
            }
            if !files.contains(name) {
                v(format!("row `{name}` has no file"));
            }
            if !sidecars.contains(name.as_str()) {
                v(format!("row `{name}` has no sidecar"));
            }
        }
        for f in &files {
            if !rows.contains_key(*f) {
                v(format!("file `{f}` has no row"));
            }
        }
        for s in &sidecars {
            if !files.iter().any(|f| f.as_str() == *s) {
                v(format!("sidecar of `{s}` without its file"));
            }
        }
        for (name, prompt) in &ledger.files {
            let present = files.contains(name) || rows.contains_key(name);
            if ledger.deleted.contains(name) {
                if present {
                    v(format!("`{name}` was deleted (answered) and is back"));
                }
                continue;
            }
            if ledger.unsure.contains(name) && !present {
                continue; // its delete went through before the kill
            }
            match rows.get(name) {
                None => v(format!("answered file `{name}` has no row")),
                Some((p, _)) if p.as_deref() != Some(prompt) => v(format!(
                    "answered file `{name}` has prompt {p:?} in the catalog, not {prompt:?}"
                )),
                Some(_) => {}
            }
            let side = sidecar(out, name);
            if side.as_ref().and_then(|s| s["prompt"].as_str()) != Some(prompt.as_str()) {
                v(format!(
                    "answered file `{name}`: sidecar {side:?} lacks prompt {prompt:?}"
                ));
            }
        }
        // Answered or not: with the sidecar written before the file, a file
        // never exists without its metadata, so reconcile adopts none.
        for (name, (prompt, _)) in &rows {
            if prompt.is_none()
                && sidecar(out, name).is_some_and(|s| s["added_by_hand"] == true)
                && !ledger.files.contains_key(name)
            {
                report.adopted_without_prompt.insert(name.clone());
                v(format!(
                    "`{name}` (its call unanswered) was adopted by reconcile without a prompt"
                ));
            }
        }
    }

    fn stats(emulator: &str) -> Value {
        let addr = emulator.trim_start_matches("http://");
        crate::support::http_request(addr, "GET", "/emulator/stats", &[], b"")
            .ok()
            .and_then(|r| serde_json::from_slice(&r.body).ok())
            .unwrap_or_default()
    }

    /// Waits (at most 10 s) until the emulator's stats pass `busy` and
    /// then `done`: e.g. a request handled, then answered.
    fn after(emulator: &str, done: impl Fn(&Value) -> bool, busy: impl Fn(&Value) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut seen = false;
        while Instant::now() < deadline {
            let s = stats(emulator);
            if seen && done(&s) {
                return;
            }
            seen |= busy(&s);
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Keeps what a life of the server logged (in `dir/logs/`, beside the library).
    fn keep_log(dir: &Path, life: usize, server: &ServeProcess) {
        let logs = dir.join("logs");
        std::fs::create_dir_all(&logs).unwrap();
        std::fs::write(
            logs.join(format!("life-{life:03}.log")),
            server.log().join("\n"),
        )
        .unwrap();
    }

    /// Every job in the store: its id and state.
    fn jobs(out: &Path) -> Vec<(String, String)> {
        let conn = rusqlite::Connection::open(out.join("catalog.sqlite3")).unwrap();
        let mut stmt = conn.prepare("SELECT id, state FROM jobs").unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    pub fn run(kills: usize) -> Report {
        let started = Instant::now();
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let emulator = EmulatorProcess::start(&[]);
        let url = emulator.url.clone();
        let ledger = Arc::new(Mutex::new(Ledger::default()));
        let mut report = Report::default();
        for round in 0..kills {
            // Jobs stay running while the restart reconciles and the
            // library is checked: nothing writes meanwhile.
            control(&url, json!({"video_polls": 1000}));
            let server = serve(dir.path(), &url);
            check(
                &out,
                &ledger.lock().unwrap(),
                &mut report,
                &format!("after kill {round}"),
            );
            // Some latency, so kills land while calls wait and while they save.
            control(
                &url,
                json!({"latency_ms": rand::random_range(0..400), "video_polls": 1}),
            );
            let stop = Arc::new(AtomicBool::new(false));
            let acked = |l: &Ledger| l.files.len();
            let before = acked(&ledger.lock().unwrap());
            let threads = work(&server.addr, round, &ledger, &stop);
            // Each life gets some work answered (a busy machine is slow),
            // then dies at a random moment of what follows.
            let deadline = Instant::now() + Duration::from_secs(30);
            while acked(&ledger.lock().unwrap()) == before && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            // Then the kill: at a random moment, or aimed at a save — just
            // after the emulator answered an image request, or served a
            // video's bytes (the server is checking and storing them).
            match round % 3 {
                0 => std::thread::sleep(Duration::from_millis(rand::random_range(0..1500))),
                1 => {
                    after(
                        &url,
                        |s| s["in_flight"].as_u64().unwrap_or(0) == 0,
                        |s| s["in_flight"].as_u64().unwrap_or(0) > 0,
                    );
                    std::thread::sleep(Duration::from_millis(rand::random_range(0..300)));
                }
                _ => {
                    let served = stats(&url)["video_downloads"].as_u64().unwrap_or(0);
                    after(
                        &url,
                        |_| true,
                        |s| s["video_downloads"].as_u64().unwrap_or(0) > served,
                    );
                    std::thread::sleep(Duration::from_millis(rand::random_range(0..300)));
                }
            }
            keep_log(dir.path(), round, &server);
            server.kill();
            stop.store(true, Ordering::SeqCst);
            for t in threads {
                t.join().unwrap();
            }
            report.kills += 1;
        }
        // The last life: reconciled, checked, then every job finished.
        control(&url, json!({"video_polls": 1000}));
        let server = serve(dir.path(), &url);
        check(
            &out,
            &ledger.lock().unwrap(),
            &mut report,
            "after the last kill",
        );
        control(&url, json!({"latency_ms": 0, "video_polls": 1}));
        let never = Mutex::new(Ledger::default());
        let l = ledger.lock().unwrap();
        for (id, _) in jobs(&out) {
            let _ = call(
                &server.addr,
                &never,
                "get_video_status",
                json!({"job_id": id, "wait_seconds": 60}),
            );
        }
        // Answered jobs succeed; a job the kill caught before its start was
        // answered may also have failed (never reached the provider), but
        // none is left unfinished.
        let all_jobs = jobs(&out);
        for (id, state) in &all_jobs {
            let answered = l.jobs.contains(id);
            if (answered && state != "succeeded")
                || (!answered && (state == "queued" || state == "running"))
            {
                report
                    .violations
                    .push(format!("job `{id}` (answered: {answered}) ended `{state}`"));
            }
        }
        for id in &l.jobs {
            if !all_jobs.iter().any(|(j, _)| j == id) {
                report
                    .violations
                    .push(format!("answered job `{id}` is not in the store"));
            }
        }
        // Exactly one file per job.
        let mut per_job: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for e in std::fs::read_dir(&out).unwrap().map(Result::unwrap) {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".mp4") {
                report.videos += 1;
                let job = sidecar(&out, &name)
                    .and_then(|s| s["job_id"].as_str().map(str::to_owned))
                    .unwrap_or_default();
                per_job.entry(job).or_default().push(name);
            }
        }
        for (job, files) in &per_job {
            if !job.is_empty() && files.len() != 1 {
                report
                    .violations
                    .push(format!("job `{job}` made {} files: {files:?}", files.len()));
            }
        }
        // A video without a job in its sidecar was adopted by reconcile
        // (bytes stored, killed before the sidecar): its job then saved the
        // video again.
        if let Some(orphans) = per_job.get("") {
            report.violations.push(format!(
                "videos adopted without their job (saved twice): {orphans:?}"
            ));
        }
        for (id, state) in &all_jobs {
            if state == "succeeded" && !per_job.contains_key(id) {
                report
                    .violations
                    .push(format!("job `{id}` succeeded without a file"));
            }
        }
        // Still consistent once every job has saved its file.
        check(&out, &l, &mut report, "at the end");
        report.acked = l.acked.clone();
        report.tool_errors = l.errors.clone();
        keep_log(dir.path(), kills, &server);
        drop(server);
        report.seconds = started.elapsed().as_secs_f64();
        if !report.violations.is_empty() {
            // The library and every life's log, to see what happened.
            report.kept = Some(dir.keep());
        }
        report
    }
}
