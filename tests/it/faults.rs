//! The fault matrix: every way the backend can fail, made by the emulator
//! over real HTTP (or, for a refused connection, by killing it), against
//! every tool family of the real server process. Each failure must give the
//! contract's code, leave the output directory exactly as it was (no file,
//! sidecar or temporary file; the same catalog rows) and leave the server
//! serving: the same tool succeeds right after.
//!
//! The server runs with a distinctive API key per backend and an HTTP
//! token, and logs at `trace`. After its matrix, each family's run is
//! scanned for them: the whole log, every answer the server gave, the
//! sidecars, the catalog and the gallery (page and API). None may appear.
//!
//! One server and one emulator per family (the emulator is told to fail
//! through `/emulator/control`, which applies to all its requests), so the
//! families run side by side. Retries stay short because the request
//! timeout does: `MCP_REQUEST_TIMEOUT=10` bounds every backend call,
//! back-offs included (short enough for the `slow` rows, long enough for
//! a first render on a busy machine).

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::{Value, json};

use crate::support::{EmulatorProcess, ServeProcess, http_request, mcp_tool_call, post_json};

/// The image backend's key (CLIProxyAPI's `Authorization: Bearer`).
const API_KEY: &str = "sk-media-gen-canary-7f3a9c";
/// The video backend's key (the Gemini API's `x-goog-api-key`).
const GEMINI_KEY: &str = "gm-media-gen-canary-41d7e2";
/// The HTTP transport's bearer token.
const TOKEN: &str = "tok-media-gen-canary-93b1f0";

/// What a family must answer to a mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// The mode does not apply to the family (a video-only failure for an
    /// image tool, a chat-completions answer shape for video).
    NotApplicable,
    /// The tool call itself fails with this code.
    Call(&'static str),
    /// The call starts a job, and the job ends `failed` with this code.
    Job(&'static str),
}

use Expect::{Call, Job, NotApplicable as NA};

/// One row of the matrix.
struct Row {
    /// An emulator fail mode, or `refused` (the emulator killed: a closed port).
    mode: &'static str,
    /// Every image family: generate_image, generate_image_batch (each
    /// prompt's result), edit_image, inpaint, outpaint, upscale with
    /// `method: model` — one backend call shape, so one column.
    image: Expect,
    /// generate_video (+ get_video_status for what fails after submission).
    video: Expect,
}

const MATRIX: &[Row] = &[
    Row {
        mode: "refused",
        image: Call("CLIPROXY_UNAVAILABLE"),
        // The Gemini API (the video provider) out of reach.
        video: Call("VIDEO_BACKEND_UNAVAILABLE"),
    },
    Row {
        mode: "auth",
        image: Call("AUTH_FAILED"),
        video: Call("AUTH_FAILED"),
    },
    Row {
        mode: "rate_limit",
        image: Call("RATE_LIMITED"),
        video: Call("RATE_LIMITED"),
    },
    Row {
        mode: "resource_exhausted",
        image: Call("RATE_LIMITED"),
        video: Call("RATE_LIMITED"),
    },
    Row {
        mode: "server_error",
        image: Call("GENERATION_FAILED"),
        video: Call("GENERATION_FAILED"),
    },
    Row {
        mode: "unavailable",
        // CLIProxyAPI's 503 auth_not_found: no account logged in.
        image: Call("AUTH_FAILED"),
        video: Call("GENERATION_FAILED"),
    },
    Row {
        mode: "slow",
        image: Call("GENERATION_TIMEOUT"),
        video: Call("GENERATION_TIMEOUT"),
    },
    Row {
        mode: "truncated",
        image: Call("GENERATION_FAILED"),
        video: Call("GENERATION_FAILED"),
    },
    Row {
        mode: "malformed",
        image: Call("GENERATION_FAILED"),
        video: Call("GENERATION_FAILED"),
    },
    Row {
        mode: "no_image",
        image: Call("GENERATION_FAILED"),
        video: NA,
    },
    Row {
        mode: "half_image",
        image: Call("GENERATION_FAILED"),
        video: NA,
    },
    Row {
        mode: "blocked",
        image: Call("CONTENT_BLOCKED"),
        // Veo's answer to a safety stop: a finished operation whose
        // samples were filtered.
        video: Job("CONTENT_BLOCKED"),
    },
    Row {
        mode: "empty_choices",
        image: Call("CONTENT_BLOCKED"),
        video: NA,
    },
    Row {
        mode: "operation_failed",
        image: NA,
        video: Job("GENERATION_FAILED"),
    },
    Row {
        mode: "download_error",
        image: NA,
        video: Job("GENERATION_FAILED"),
    },
    Row {
        mode: "expired",
        image: NA,
        video: Job("GENERATION_FAILED"),
    },
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Generate,
    Batch,
    Edit,
    Inpaint,
    Outpaint,
    Upscale,
    Video,
}

impl Family {
    fn expect(self, row: &Row) -> Expect {
        match self {
            Self::Video => row.video,
            _ => row.image,
        }
    }

    /// The tool and its arguments for a call with `prompt`.
    fn call(self, prompt: &str, inputs: &Inputs) -> (&'static str, Value) {
        let src = inputs.image.display().to_string();
        match self {
            Self::Generate => (
                "generate_image",
                json!({"prompt": prompt, "aspect_ratio": "1:1"}),
            ),
            Self::Batch => (
                "generate_image_batch",
                json!({"prompts": [format!("{prompt}, first"), format!("{prompt}, second")], "aspect_ratio": "1:1"}),
            ),
            Self::Edit => ("edit_image", json!({"image_path": src, "prompt": prompt})),
            Self::Inpaint => (
                "inpaint",
                json!({"image_path": src, "mask_path": inputs.mask.display().to_string(), "prompt": prompt}),
            ),
            Self::Outpaint => (
                "outpaint",
                json!({"image_path": src, "direction": "right", "extend_pixels": 64, "prompt": prompt}),
            ),
            Self::Upscale => (
                "upscale",
                json!({"image_path": src, "method": "model", "scale_factor": 2, "prompt": prompt}),
            ),
            Self::Video => (
                "generate_video",
                json!({"prompt": prompt, "duration": "4s"}),
            ),
        }
    }
}

/// Input pictures for the edit tools, outside the output directory (the
/// server reads them through `MCP_INPUT_ROOTS`).
struct Inputs {
    image: PathBuf,
    mask: PathBuf,
}

impl Inputs {
    fn write(dir: &Path) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let image = dir.join("source.png");
        image::RgbImage::from_fn(320, 240, |x, y| {
            image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x + y) % 256) as u8])
        })
        .save(&image)
        .unwrap();
        let mask = dir.join("mask.png");
        image::GrayImage::from_fn(320, 240, |x, y| {
            image::Luma([if (80..240).contains(&x) && (60..180).contains(&y) {
                255
            } else {
                0
            }])
        })
        .save(&mask)
        .unwrap();
        Self { image, mask }
    }
}

/// A family's server, its emulator, and everything the server answered.
struct Run {
    family: Family,
    /// Stopped before the directory goes (fields drop in this order).
    server: ServeProcess,
    emulator: Option<EmulatorProcess>,
    emulator_port: u16,
    emulator_key: &'static str,
    out: PathBuf,
    inputs: Inputs,
    /// Every raw answer of the server, for the secrets scan.
    answers: Vec<String>,
    _dir: tempfile::TempDir,
}

impl Run {
    fn start(family: Family) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let inputs = Inputs::write(&dir.path().join("inputs"));
        // The emulator wants the key of the backend this family talks to:
        // the key really goes over the wire, and is really accepted.
        let emulator_key = match family {
            Family::Video => GEMINI_KEY,
            _ => API_KEY,
        };
        let emulator = EmulatorProcess::start(&["--api-key", emulator_key]);
        let url = emulator.url.clone();
        let roots = dir.path().join("inputs").display().to_string();
        let server = ServeProcess::start(
            dir.path(),
            &[
                ("MCP_CLIPROXY_URL", &url),
                ("MCP_GEMINI_URL", &url),
                ("MCP_CLIPROXY_API_KEY", API_KEY),
                ("MCP_GEMINI_API_KEY", GEMINI_KEY),
                ("MCP_HTTP_TOKEN", TOKEN),
                ("MCP_REQUEST_TIMEOUT", "10"),
                ("MCP_VIDEO_POLL_INTERVAL", "0.05"),
                ("MCP_INPUT_ROOTS", &roots),
                ("MEDIA_GEN_LOG", "trace"),
            ],
        );
        Self {
            family,
            emulator_port: emulator.port(),
            emulator: Some(emulator),
            emulator_key,
            _dir: dir,
            out,
            inputs,
            server,
            answers: Vec::new(),
        }
    }

    fn control(&self, body: Value) {
        let emu = self.emulator.as_ref().unwrap();
        let r = post_json(&emu.url, "/emulator/control", &body);
        assert_eq!(r.status, 200, "{}", r.text());
    }

    /// Puts the backend in `mode` (killing the emulator for `refused`).
    fn fail(&mut self, mode: &str) {
        if mode == "refused" {
            drop(self.emulator.take());
        } else {
            self.control(json!({"fail": mode}));
        }
    }

    /// The backend well again (the emulator back on its port for `refused`).
    fn heal(&mut self) {
        match &self.emulator {
            Some(_) => self.control(json!({"fail": "none"})),
            None => {
                self.emulator = Some(EmulatorProcess::start_at(
                    self.emulator_port,
                    &["--api-key", self.emulator_key],
                ));
                self.control(json!({"video_polls": 0}));
            }
        }
    }

    /// A tool call's result (its `structuredContent` and `isError`).
    fn call(&mut self, tool: &str, args: &Value) -> (Value, bool) {
        let (result, raw) = mcp_tool_call(&self.server.addr, Some(TOKEN), tool, args)
            .unwrap_or_else(|e| panic!("{:?}: {tool} got no answer: {e}", self.family));
        self.answers.push(raw);
        let structured = result["structuredContent"].clone();
        assert!(structured.is_object(), "{tool}: {result}");
        (structured, result["isError"] == true)
    }

    /// Waits for a job to end; its status result.
    fn job_end(&mut self, job_id: &str) -> (Value, bool) {
        self.call(
            "get_video_status",
            &json!({"job_id": job_id, "wait_seconds": 60}),
        )
    }

    /// Everything in the output directory but the catalog database.
    fn files(&self) -> Vec<String> {
        let mut all = Vec::new();
        walk(&self.out, &self.out, &mut all);
        all.retain(|p| !p.starts_with("catalog.sqlite3"));
        all.sort();
        all
    }

    fn catalog_ids(&self) -> Vec<String> {
        let conn = rusqlite::Connection::open(self.out.join("catalog.sqlite3")).unwrap();
        let mut stmt = conn
            .prepare("SELECT filename FROM media ORDER BY filename")
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    /// The failing call for `row`, checked; the directory and catalog
    /// checked unchanged.
    fn failing(&mut self, row: &Row, expect: Expect) {
        let family = self.family;
        let files = self.files();
        let ids = self.catalog_ids();
        let prompt = format!("{} fails", row.mode);
        let (tool, args) = family.call(&prompt, &self.inputs);
        self.fail(row.mode);
        let (v, is_error) = self.call(tool, &args);
        let at = format!("{family:?} × {}", row.mode);
        match (family, expect) {
            (_, NA) => unreachable!(),
            (Family::Batch, Call(code)) => {
                assert!(is_error, "{at}: nothing was made, so the call fails: {v}");
                assert_eq!(v["succeeded"], 0, "{at}: {v}");
                for r in v["results"].as_array().unwrap() {
                    assert_eq!(r["error"]["code"], code, "{at}: {v}");
                    assert_message(&at, &r["error"]);
                }
            }
            (_, Call(code)) => {
                assert!(is_error, "{at}: {v}");
                assert_eq!(v["error"]["code"], code, "{at}: {v}");
                assert_message(&at, &v["error"]);
            }
            (_, Job(code)) => {
                assert!(!is_error, "{at}: the job starts: {v}");
                let id = v["job_id"].as_str().unwrap().to_owned();
                let (end, is_error) = self.job_end(&id);
                assert!(is_error, "{at}: {end}");
                assert_eq!(end["status"], "failed", "{at}: {end}");
                assert_eq!(end["error"]["code"], code, "{at}: {end}");
                assert_message(&at, &end["error"]);
            }
        }
        assert_eq!(self.files(), files, "{at}: the output directory changed");
        assert_eq!(self.catalog_ids(), ids, "{at}: the catalog changed");
        self.heal();
    }

    /// The same tool, the backend well: it works, and what it made is
    /// on disk with its prompt.
    fn succeeding(&mut self, after: &str) {
        let family = self.family;
        // One prompt for every success: the emulator renders it once.
        let prompt = "a lighthouse after a failure";
        let (tool, args) = family.call(prompt, &self.inputs);
        let (v, is_error) = self.call(tool, &args);
        let at = format!("{family:?} after {after}");
        assert!(!is_error, "{at}: {v}");
        let made: Vec<Value> = match family {
            Family::Batch => {
                assert_eq!(v["succeeded"], 2, "{at}: {v}");
                v["results"].as_array().unwrap().clone()
            }
            Family::Video => {
                let id = v["job_id"].as_str().unwrap().to_owned();
                let (end, is_error) = self.job_end(&id);
                assert!(!is_error, "{at}: {end}");
                assert_eq!(end["status"], "succeeded", "{at}: {end}");
                vec![end]
            }
            _ => vec![v],
        };
        for m in made {
            let name = m["filename"].as_str().unwrap();
            assert!(self.out.join(name).is_file(), "{at}: {name}");
            let sidecar: Value = serde_json::from_slice(
                &std::fs::read(self.out.join("metadata").join(format!("{name}.json"))).unwrap(),
            )
            .unwrap();
            assert!(
                sidecar["prompt"].as_str().unwrap().contains(prompt),
                "{at}: {sidecar}"
            );
        }
    }

    /// Every row that applies, each followed by a success.
    fn matrix(&mut self) {
        let started = Instant::now();
        let mut times = Vec::new();
        for row in MATRIX {
            let expect = self.family.expect(row);
            if expect == NA {
                continue;
            }
            let at = Instant::now();
            self.failing(row, expect);
            let failed = at.elapsed().as_secs_f64();
            self.succeeding(row.mode);
            times.push(format!(
                "{} {failed:.1}+{:.1}",
                row.mode,
                at.elapsed().as_secs_f64() - failed
            ));
        }
        eprintln!(
            "fault matrix {:?}: {} modes in {:.1} s (failing+next call, s: {})",
            self.family,
            times.len(),
            started.elapsed().as_secs_f64(),
            times.join(", ")
        );
    }

    /// No key or token anywhere the server wrote or said something.
    fn scan_for_secrets(&mut self) {
        // The gallery as a browser opens it (the token once in the query,
        // then a cookie) and as a script reads it (the bearer header).
        let bearer = format!("Bearer {TOKEN}");
        let auth = [("Authorization", bearer.as_str())];
        let mut pages = Vec::new();
        for path in ["/gallery", "/gallery/api/files"] {
            let r = http_request(&self.server.addr, "GET", path, &auth, b"").unwrap();
            assert_eq!(r.status, 200, "{path}");
            pages.push((path.to_owned(), r.text()));
        }
        let r = http_request(
            &self.server.addr,
            "GET",
            &format!("/gallery?token={TOKEN}"),
            &[],
            b"",
        )
        .unwrap();
        let location = r.header("location").unwrap_or_default().to_owned();
        pages.push(("/gallery?token= (redirect)".into(), location));
        let files: Value =
            serde_json::from_str(&pages[1].1).unwrap_or_else(|e| panic!("{e}: {}", pages[1].1));
        let listed = files.to_string();
        assert!(
            listed.contains("after"),
            "the gallery lists the files: {listed:.300}"
        );

        let mut places: Vec<(String, String)> = pages;
        places.push(("server log".into(), self.server.log().join("\n")));
        places.extend(
            self.answers
                .iter()
                .enumerate()
                .map(|(i, a)| (format!("answer {i}"), a.clone())),
        );
        for path in self.files() {
            if path.starts_with("metadata/") && path.ends_with(".json") {
                let text = std::fs::read_to_string(self.out.join(&path)).unwrap();
                places.push((path, text));
            }
        }
        for db in ["catalog.sqlite3", "catalog.sqlite3-wal"] {
            if let Ok(bytes) = std::fs::read(self.out.join(db)) {
                places.push((db.into(), String::from_utf8_lossy(&bytes).into_owned()));
            }
        }
        let log_lines = self.server.log().len();
        assert!(
            log_lines > 100,
            "the log is at trace level ({log_lines} lines)"
        );
        for (place, text) in &places {
            for secret in [API_KEY, GEMINI_KEY, TOKEN] {
                // The distinctive tail: a key cut short leaks too.
                let tail = &secret[secret.len() - 13..];
                if let Some(at) = text.find(tail) {
                    let from = text[..at]
                        .char_indices()
                        .rev()
                        .nth(120)
                        .map_or(0, |(i, _)| i);
                    let to = (at + 60).min(text.len());
                    let to = (to..=text.len())
                        .find(|i| text.is_char_boundary(*i))
                        .unwrap_or(text.len());
                    panic!(
                        "{:?}: `{tail}` leaked into {place}: …{}…",
                        self.family,
                        &text[from..to]
                    );
                }
            }
        }
    }
}

/// The message says something (and so the next step).
fn assert_message(at: &str, error: &Value) {
    let message = error["message"].as_str().unwrap_or_default();
    assert!(message.len() > 20, "{at}: {error}");
}

/// Paths of the files under `dir`, relative to `root`, `/`-separated.
fn walk(root: &Path, dir: &Path, into: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.map(Result::unwrap) {
        let path = e.path();
        if e.file_type().unwrap().is_dir() {
            walk(root, &path, into);
        } else {
            into.push(
                path.strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/"),
            );
        }
    }
}

fn family(f: Family) {
    let mut run = Run::start(f);
    // Videos finish at their first poll.
    run.control(json!({"video_polls": 0}));
    // Something in the library before the first failure: "unchanged"
    // then means more than "still empty".
    run.succeeding("start");
    run.matrix();
    run.scan_for_secrets();
}

/// Every family at once (each with its own server and emulator): the
/// rows mostly wait (timeouts, back-offs, polls), so side by side they
/// take as long as the slowest family. Every family's failures are listed.
#[test]
fn fault_matrix_every_family_every_mode() {
    let families = [
        Family::Generate,
        Family::Batch,
        Family::Edit,
        Family::Inpaint,
        Family::Outpaint,
        Family::Upscale,
        Family::Video,
    ];
    let started = Instant::now();
    let runs: Vec<_> = families
        .into_iter()
        .map(|f| (f, std::thread::spawn(move || family(f))))
        .collect();
    let mut failures = Vec::new();
    for (f, run) in runs {
        if let Err(panic) = run.join() {
            let text = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            failures.push(format!("{f:?}: {text}"));
        }
    }
    eprintln!(
        "fault matrix: {} families in {:.1} s",
        families.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
