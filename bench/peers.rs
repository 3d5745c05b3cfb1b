//! Peers side by side (section `peers`, only when named): media-gen, a
//! minimal rmcp stdio server (the start-up floor, `bench/floor.rs`),
//! nanobanana-mcp-server 0.4.6 (Python), mcp-image 0.14.0 (Node: start-up
//! and memory only) and the reference of the seed's Python stack
//! (`bench/python-ref/server.py`), each spawned over stdio against the same
//! emulator process, interleaved repetition by repetition. Prints medians
//! and ratios to media-gen, and writes `bench/RESULTS.md`.
//!
//! The peers live in `bench/peers/.env` (git-ignored), which
//! `bench/peers/run` fills from PyPI and npm before running this section
//! (`MEDIA_GEN_PEERS_ENV` names another directory). A peer that is not
//! installed is reported as not measured.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use image::DynamicImage;
use serde_json::{Value, json};

use crate::{BIN, Emulator, Server, http_post, median, median_d, ms, row};

type Rows = Vec<(String, String, String)>;

/// One server the section measures.
struct Peer {
    name: &'static str,
    /// The program and its arguments; `None` when it is not installed.
    argv: Option<Vec<String>>,
    /// Why it is not measured, when `argv` is `None`.
    missing: String,
}

impl Peer {
    /// Spawns it with `out` as its output directory (each peer's own
    /// setting) and the emulator at `emu` (an empty string: none).
    fn spawn(&self, out: &Path, emu: &str, extra: &[(&str, &str)]) -> Server {
        let argv = self.argv.as_ref().expect("installed");
        let home = out.with_extension("home");
        std::fs::create_dir_all(&home).expect("home");
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &home)
            .stderr(Stdio::null());
        match self.name {
            "media-gen" => {
                cmd.env("MCP_OUTPUT_DIR", out)
                    .env("MEDIA_GEN_LOG", "error")
                    .env("MCP_CLIPROXY_URL", emu);
            }
            "nanobanana-mcp-server" => {
                // Read by its config/settings.py: the key must be set, the
                // base URL goes to google-genai's http_options.
                cmd.env("GEMINI_API_KEY", "emulator-key")
                    .env("GEMINI_BASE_URL", emu)
                    .env("IMAGE_OUTPUT_DIR", out)
                    .env("LOG_LEVEL", "WARNING");
            }
            "mcp-image" => {
                cmd.env("GEMINI_API_KEY", "emulator-key")
                    .env("IMAGE_OUTPUT_DIR", out);
            }
            "python-ref (seed stack)" => {
                cmd.env("MCP_OUTPUT_DIR", out).env("MCP_CLIPROXY_URL", emu);
            }
            _ => {}
        }
        for (k, v) in extra {
            cmd.env(k, v);
        }
        Server::spawn_cmd(cmd)
    }
}

fn env_dir() -> PathBuf {
    std::env::var_os("MEDIA_GEN_PEERS_ENV").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/peers/.env"),
        PathBuf::from,
    )
}

/// The floor's binary: `cargo build --release --example floor` puts it
/// beside this bench's own directory (`target/release/examples/floor`).
fn floor_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("bench path");
    // target/release/deps/bench-… → target/release/examples/floor
    exe.parent()
        .and_then(Path::parent)
        .map(|d| d.join("examples/floor"))
        .expect("target dir")
}

fn installed(name: &'static str, path: PathBuf, argv: Vec<String>, how: &str) -> Peer {
    if path.exists() {
        Peer {
            name,
            argv: Some(argv),
            missing: String::new(),
        }
    } else {
        Peer {
            name,
            argv: None,
            missing: format!("not measured: {} missing ({how})", path.display()),
        }
    }
}

fn peers() -> Vec<Peer> {
    let env = env_dir();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let s = |p: &Path| p.to_string_lossy().into_owned();
    let floor = floor_bin();
    let nano = env.join("nanobanana/bin/nanobanana-mcp-server");
    let node_image = env.join("mcpimage/node_modules/mcp-image/dist/index.js");
    let pyref = env.join("pyref/bin/python");
    let run = "run bench/peers/run";
    vec![
        installed(
            "floor (minimal rmcp server)",
            floor.clone(),
            vec![s(&floor)],
            "cargo build --release --example floor",
        ),
        Peer {
            name: "media-gen",
            argv: Some(vec![BIN.to_owned(), "serve".to_owned()]),
            missing: String::new(),
        },
        installed("nanobanana-mcp-server", nano.clone(), vec![s(&nano)], run),
        installed(
            "mcp-image",
            node_image.clone(),
            vec!["node".to_owned(), s(&node_image)],
            run,
        ),
        installed(
            "python-ref (seed stack)",
            pyref.clone(),
            vec![s(&pyref), s(&root.join("bench/python-ref/server.py"))],
            run,
        ),
    ]
}

/// The resident memory of `pid` and every process under it, in MiB (a
/// launcher may run the server as a child).
fn tree_rss_mib(pid: u32) -> f64 {
    let mut pids = vec![pid];
    let mut i = 0;
    let all: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let p: u32 = e.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
            // pid (comm) state ppid …: comm may hold spaces, so after ')'.
            let ppid = stat
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            Some((p, ppid))
        })
        .collect();
    while i < pids.len() {
        let parent = pids[i];
        pids.extend(all.iter().filter(|(_, pp)| *pp == parent).map(|(p, _)| *p));
        i += 1;
    }
    let kib: u64 = pids
        .iter()
        .filter_map(|p| std::fs::read_to_string(format!("/proc/{p}/status")).ok())
        .filter_map(|st| {
            st.lines()
                .find(|l| l.starts_with("VmRSS"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .sum();
    kib as f64 / 1024.0
}

/// A tool result's JSON: its `structuredContent`, else its first text
/// content parsed (the seed stack returns only text).
fn payload(r: &Value) -> Value {
    if r["structuredContent"].is_object() {
        return r["structuredContent"].clone();
    }
    r["content"][0]["text"]
        .as_str()
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or(Value::Null)
}

/// Whether a tool call succeeded.
fn ok(r: &Value) -> bool {
    r.is_object()
        && r["isError"] != true
        && r["structuredContent"]["success"] != false
        && !r["content"].to_string().contains("\\\"success\\\": false")
}

fn ratio(value: f64, base: f64) -> String {
    format!("{:.2}× media-gen", value / base)
}

pub fn run(work: &Path, quick: bool, rows: &mut Rows) {
    let peers = peers();
    let dir = work.join("peers");
    std::fs::create_dir_all(&dir).expect("peers dir");
    let mut table: Rows = Vec::new();
    for p in peers.iter().filter(|p| p.argv.is_none()) {
        table.push(row(p.name, p.missing.clone(), ""));
    }
    let live: Vec<&Peer> = peers.iter().filter(|p| p.argv.is_some()).collect();
    let by = |name: &str| live.iter().copied().find(|p| p.name.starts_with(name));

    startup(&dir, quick, &live, &mut table);
    let emu = Emulator::spawn(0);
    round_trips(
        &dir,
        quick,
        &emu,
        by("media-gen"),
        by("nanobanana"),
        by("python-ref"),
        &mut table,
    );
    upscale(&dir, quick, by("media-gen"), by("python-ref"), &mut table);
    drop(emu);
    batch(&dir, quick, by("media-gen"), by("python-ref"), &mut table);

    write_results(&table, quick);
    rows.extend(table);
}

/// Spawn → `initialize` result, and the resident memory 500 ms later.
fn startup(dir: &Path, quick: bool, live: &[&Peer], table: &mut Rows) {
    // Native servers start in milliseconds; the Python and Node ones in
    // seconds, so fewer runs of those.
    let runs = |p: &Peer| match (p.name, quick) {
        ("media-gen" | "floor (minimal rmcp server)", false) => 31,
        ("media-gen" | "floor (minimal rmcp server)", true) => 11,
        (_, false) => 7,
        (_, true) => 3,
    };
    let most = live.iter().map(|p| runs(p)).max().unwrap_or(0);
    let mut times: Vec<Vec<Duration>> = live.iter().map(|_| Vec::new()).collect();
    let mut rss: Vec<Vec<f64>> = live.iter().map(|_| Vec::new()).collect();
    for i in 0..most {
        for (k, p) in live.iter().enumerate() {
            if i >= runs(p) {
                continue;
            }
            let out = dir.join(format!("startup-{k}"));
            let mut s = p.spawn(&out, "http://127.0.0.1:9", &[]);
            times[k].push(s.initialize());
            if i < 5 {
                std::thread::sleep(Duration::from_millis(500));
                rss[k].push(tree_rss_mib(s.child.id()));
            }
            s.close();
        }
    }
    let mg = live
        .iter()
        .position(|p| p.name == "media-gen")
        .expect("media-gen");
    let floor = live.iter().position(|p| p.name.starts_with("floor"));
    let t: Vec<Duration> = times.iter_mut().map(|v| median_d(v)).collect();
    let m: Vec<f64> = rss.iter_mut().map(|v| median(v)).collect();
    for (k, p) in live.iter().enumerate() {
        let vs = if k == mg {
            floor.map_or(String::new(), |f| {
                format!(" ({:.2}× the floor)", ms(t[mg]) / ms(t[f]))
            })
        } else {
            format!(" ({})", ratio(ms(t[k]), ms(t[mg])))
        };
        table.push(row(
            &format!("start-up: spawn → initialize result, {}", p.name),
            format!("{:.1} ms{vs}", ms(t[k])),
            if k == mg { "≤ 2× the floor" } else { "" },
        ));
    }
    for (k, p) in live.iter().enumerate() {
        let vs = if k == mg {
            String::new()
        } else {
            format!(" ({})", ratio(m[k], m[mg]))
        };
        table.push(row(
            &format!("idle memory (RSS 500 ms after initialize), {}", p.name),
            format!("{:.1} MiB{vs}", m[k]),
            "",
        ));
    }
}

/// The emulator's own time for one generate request on `route` (its body
/// read whole over loopback): the backend share of a round trip.
fn share(emu: &Emulator, gemini: bool, prompt: &str, size: &str) -> Duration {
    let t = Instant::now();
    if gemini {
        let req = json!({"contents": [{"role": "user", "parts": [{"text": prompt}]}],
            "generationConfig": {"responseModalities": ["TEXT", "IMAGE"],
                "imageConfig": {"aspectRatio": "1:1", "imageSize": size}}});
        let body = serde_json::to_vec(&req).expect("json");
        http_post(
            &emu.url,
            "/v1beta/models/gemini-3-pro-image-preview:generateContent",
            &body,
        );
    } else {
        emu.raw_body(prompt, size);
    }
    t.elapsed()
}

/// `generate_image` at 1K and 4K against the emulator at zero latency:
/// each server spawned once per size, the calls interleaved server by
/// server. Overhead = round trip − the backend's share on its route.
fn round_trips(
    dir: &Path,
    quick: bool,
    emu: &Emulator,
    media_gen: Option<&Peer>,
    nano: Option<&Peer>,
    pyref: Option<&Peer>,
    table: &mut Rows,
) {
    let Some(media_gen) = media_gen else { return };
    for (size, n) in [
        ("1K", if quick { 5 } else { 21 }),
        ("4K", if quick { 3 } else { 11 }),
    ] {
        let prompt = format!("peers round trip {size}");
        // (label, server, arguments, gemini route?, preview?)
        let mut subjects: Vec<(String, Server, Value, bool)> = Vec::new();
        let args = json!({"prompt": prompt, "image_size": size});
        for (label, preview) in [
            ("media-gen, no preview", "none"),
            ("media-gen, default preview", "preview"),
        ] {
            let out = dir.join(format!("rt-{size}-{preview}"));
            let s = media_gen.spawn(&out, &emu.url, &[("MCP_PREVIEW", preview)]);
            subjects.push((label.to_owned(), s, args.clone(), false));
        }
        if let Some(p) = nano {
            let out = dir.join(format!("rt-{size}-nano"));
            let s = p.spawn(&out, &emu.url, &[]);
            let a = json!({"prompt": prompt, "model_tier": "pro",
                "resolution": size.to_lowercase(), "aspect_ratio": "1:1"});
            subjects.push((
                "nanobanana-mcp-server (thumbnail preview)".to_owned(),
                s,
                a,
                true,
            ));
        }
        if let Some(p) = pyref {
            let out = dir.join(format!("rt-{size}-pyref"));
            let s = p.spawn(&out, &emu.url, &[]);
            subjects.push((
                "python-ref (seed stack, no preview)".to_owned(),
                s,
                args.clone(),
                false,
            ));
        }
        let mut calls: Vec<Vec<Duration>> = subjects.iter().map(|_| Vec::new()).collect();
        let mut shares = [Vec::new(), Vec::new()];
        for (label, s, a, _) in &mut subjects {
            s.initialize();
            // Warm: the emulator's cache, the server's client and imports.
            let r = s.call("generate_image", a.clone());
            assert!(ok(&r), "{label}: {r}");
        }
        for _ in 0..n {
            for (k, (label, s, a, _)) in subjects.iter_mut().enumerate() {
                let t = Instant::now();
                let r = s.call("generate_image", a.clone());
                calls[k].push(t.elapsed());
                assert!(ok(&r), "{label}: {r}");
            }
            shares[0].push(share(emu, false, &prompt, size));
            shares[1].push(share(emu, true, &prompt, size));
        }
        let share_openai = median_d(&mut shares[0]);
        let share_gemini = median_d(&mut shares[1]);
        table.push(row(
            &format!("{size}: backend share (emulator: chat completions / generateContent)"),
            format!("{:.1} ms / {:.1} ms", ms(share_openai), ms(share_gemini)),
            "",
        ));
        let over: Vec<f64> = subjects
            .iter()
            .zip(calls.iter_mut())
            .map(|((_, _, _, gemini), c)| {
                let sh = if *gemini { share_gemini } else { share_openai };
                ms(median_d(c).saturating_sub(sh))
            })
            .collect();
        for (k, (label, _, _, _)) in subjects.iter().enumerate() {
            // Each peer against media-gen doing the same: a preview (or
            // thumbnail) against the default preview, none against none.
            let base = if label.contains("no preview") {
                over[0]
            } else {
                over[1]
            };
            let vs = if label.starts_with("media-gen") {
                String::new()
            } else {
                format!(" ({})", ratio(over[k], base))
            };
            table.push(row(
                &format!("{size}: generate_image overhead (round trip − backend share), {label}"),
                format!("{:.1} ms{vs}", over[k]),
                "",
            ));
        }
        for (_, s, _, _) in subjects {
            s.close();
        }
    }
}

/// `upscale` ×2 of a 1024² and ×4 of a 2048² PNG as a tool call: media-gen
/// (Lanczos3, default preview) and the seed stack (Pillow LANCZOS).
fn upscale(
    dir: &Path,
    quick: bool,
    media_gen: Option<&Peer>,
    pyref: Option<&Peer>,
    table: &mut Rows,
) {
    let (Some(media_gen), Some(pyref)) = (media_gen, pyref) else {
        return;
    };
    let reps = if quick { 3 } else { 7 };
    for (side, factor) in [(1024u32, 2u32), (2048, 4)] {
        let src = dir.join(format!("up-src{side}.png"));
        DynamicImage::ImageRgb8(crate::edit::photo(side, side))
            .save(&src)
            .expect("source png");
        let mut servers = [
            media_gen.spawn(&dir.join(format!("up-mg{side}")), "", &[]),
            pyref.spawn(&dir.join(format!("up-py{side}")), "", &[]),
        ];
        let mut times = [Vec::new(), Vec::new()];
        for s in &mut servers {
            s.initialize();
        }
        for _ in 0..reps {
            for (k, s) in servers.iter_mut().enumerate() {
                let t = Instant::now();
                let r = s.call(
                    "upscale",
                    json!({"image_path": src, "scale_factor": factor}),
                );
                times[k].push(t.elapsed());
                assert!(ok(&r), "{r}");
            }
        }
        let mg = ms(median_d(&mut times[0]));
        let py = ms(median_d(&mut times[1]));
        let label = format!("upscale ×{factor} of {side}×{side} (tool call)");
        table.push(row(
            &format!("{label}, media-gen"),
            format!("{mg:.0} ms"),
            "",
        ));
        table.push(row(
            &format!("{label}, python-ref (Pillow LANCZOS)"),
            format!("{py:.0} ms ({})", ratio(py, mg)),
            "",
        ));
        for s in servers {
            s.close();
        }
    }
}

/// `generate_image_batch` of 16 prompts at 1 s backend latency: media-gen
/// (default concurrency 4) against the seed stack's loop.
fn batch(
    dir: &Path,
    quick: bool,
    media_gen: Option<&Peer>,
    pyref: Option<&Peer>,
    table: &mut Rows,
) {
    let emu = Emulator::spawn(1000);
    let prompts: Vec<String> = (0..16).map(|n| format!("peers batch prompt {n}")).collect();
    let subjects: Vec<&Peer> = [media_gen, pyref].into_iter().flatten().collect();
    let mut times: Vec<Vec<Duration>> = subjects.iter().map(|_| Vec::new()).collect();
    for i in 0..if quick { 1 } else { 3 } {
        for (k, p) in subjects.iter().enumerate() {
            let out = dir.join(format!("batch-{i}-{k}"));
            let extra: &[(&str, &str)] = if p.name == "media-gen" {
                &[("MCP_PREVIEW", "none")]
            } else {
                &[]
            };
            let mut s = p.spawn(&out, &emu.url, extra);
            s.initialize();
            let t = Instant::now();
            let r = s.call("generate_image_batch", json!({"prompts": prompts}));
            times[k].push(t.elapsed());
            assert_eq!(payload(&r)["succeeded"], 16, "{}: {r}", p.name);
            s.close();
        }
    }
    let secs: Vec<f64> = times
        .iter_mut()
        .map(|v| median_d(v).as_secs_f64())
        .collect();
    for (k, p) in subjects.iter().enumerate() {
        let vs = if k == 0 {
            String::new()
        } else {
            format!(" ({})", ratio(secs[k], secs[0]))
        };
        table.push(row(
            &format!("generate_image_batch ×16, 1 s backend latency, {}", p.name),
            format!("{:.2} s{vs}", secs[k]),
            if k == 0 { "≤ 4.5 s" } else { "" },
        ));
    }
}

fn command_line(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// `bench/RESULTS.md`: the machine, the date, the versions and the table.
fn write_results(table: &Rows, quick: bool) {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown CPU", |(_, v)| v.trim());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("MemTotal"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    let root = env!("CARGO_MANIFEST_DIR");
    let commit = command_line("git", &["-C", root, "rev-parse", "--short", "HEAD"]);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load = load
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ");
    let mut md = String::new();
    let _ = writeln!(md, "# Peers, side by side\n");
    let _ = writeln!(
        md,
        "Written by `bench/peers/run` (`cargo bench --bench bench -- peers`); do not edit by hand.\n"
    );
    let _ = writeln!(
        md,
        "- date: {}",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC")
    );
    let _ = writeln!(
        md,
        "- machine: {cpu}, {cores} cores, {mem:.1} GiB RAM, Linux {}; load average at the end {load}",
        command_line("uname", &["-r"])
    );
    let _ = writeln!(
        md,
        "- media-gen {commit} (release build), floor = `bench/floor.rs` (rmcp, one tool), \
nanobanana-mcp-server 0.4.6 and python-ref on {}, mcp-image 0.14.0 on Node {}",
        command_line(
            &env_dir().join("pyref/bin/python").to_string_lossy(),
            &["--version"]
        ),
        command_line("node", &["--version"])
    );
    let _ = writeln!(
        md,
        "- every server over stdio against the same emulator process (`media-gen emulator`), \
interleaved repetition by repetition; medians{}. Overhead = the `generate_image` round trip \
− the emulator's own time for the same request on the peer's route (chat completions for \
media-gen and python-ref, Gemini `generateContent` for nanobanana). Ratios are the peer's \
figure over media-gen's doing the same (a preview against media-gen's default preview, none \
against `MCP_PREVIEW=none`). The machine may be shared: compare ratios, not absolute figures \
across runs.\n",
        if quick {
            " (`--quick`: few repetitions)"
        } else {
            ""
        }
    );
    let w0 = table.iter().map(|r| r.0.chars().count()).max().unwrap_or(0);
    let w1 = table.iter().map(|r| r.1.chars().count()).max().unwrap_or(0);
    let _ = writeln!(md, "| {:w0$} | {:w1$} | target |", "measure", "median");
    let _ = writeln!(
        md,
        "|{}|{}|--------|",
        "-".repeat(w0 + 2),
        "-".repeat(w1 + 2)
    );
    for (a, b, c) in table {
        let _ = writeln!(md, "| {a:w0$} | {b:w1$} | {c} |");
    }
    let path = Path::new(root).join("bench/RESULTS.md");
    std::fs::write(&path, md).expect("write bench/RESULTS.md");
    eprintln!("wrote {}", path.display());
}
