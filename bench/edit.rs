//! Editing: local `upscale` (Lanczos) against Pillow's LANCZOS resize of the
//! same images in the same run (×2 of a 1024×1024 image, ×4 of a 2048×2048
//! one), the server's peak memory during the ×4, and an `edit_image` round
//! trip's own overhead beside `generate_image`'s.
//!
//! media-gen is measured as a tool call over stdio (decode, resample, encode
//! PNG, save atomically, catalogue, preview) and, in process, the resample
//! alone; Pillow as open + resize + save, and the resize alone. Pillow comes
//! from the Python that runs the end-to-end tests (`.venv`, or `PYTHON`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use image::{DynamicImage, RgbImage};
use media_gen::media::resize::{Filter, resized};
use serde_json::{Value, json};

use crate::{Emulator, Server, http_post, median_d, ms, row};

/// Pillow's side: times (ms) of each step, medians over `reps`.
const PILLOW: &str = r#"
import json, statistics, sys, time
from PIL import Image
src, factor, reps, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
resize, total, total_fast = [], [], []
for _ in range(reps):
    t0 = time.perf_counter()
    im = Image.open(src); im.load()
    t1 = time.perf_counter()
    big = im.resize((im.width * factor, im.height * factor), Image.LANCZOS)
    t2 = time.perf_counter()
    big.save(out)
    t3 = time.perf_counter()
    big.save(out, compress_level=1)
    t4 = time.perf_counter()
    resize.append(t2 - t1)
    total.append(t3 - t0)
    total_fast.append((t2 - t0) + (t4 - t3))
m = lambda v: statistics.median(v) * 1000
print(json.dumps({"resize": m(resize), "total": m(total), "total_fast": m(total_fast)}))
"#;

fn python() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let candidates = [
        std::env::var_os("PYTHON").map(PathBuf::from),
        Some(root.join(".venv/bin/python")),
        Some(PathBuf::from("python3")),
    ];
    candidates.into_iter().flatten().find(|p| {
        Command::new(p)
            .args(["-c", "import PIL"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// A varied picture, so neither side gets an easy image.
pub(crate) fn photo(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        let n = (x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503)) >> 7;
        image::Rgb([
            (x * 7 + n % 13) as u8,
            (y * 3 + n % 7) as u8,
            ((x ^ y) * 5) as u8,
        ])
    })
}

pub fn run(work: &Path, quick: bool, rows: &mut Vec<(String, String, String)>) {
    let dir = work.join("edit");
    std::fs::create_dir_all(&dir).expect("edit dir");
    let reps = if quick { 3 } else { 7 };
    let py = python();
    for (side, factor) in [(1024u32, 2u32), (2048, 4)] {
        let src = dir.join(format!("src{side}.png"));
        DynamicImage::ImageRgb8(photo(side, side))
            .save(&src)
            .expect("source png");
        let label = format!("upscale ×{factor} of {side}×{side}");
        // media-gen: the tool call over stdio (cold library, same file each time).
        let mut s = Server::spawn_with(
            &dir.join(format!("out{side}")),
            &[("MCP_PREVIEW", "preview")],
            Stdio::null(),
        );
        s.initialize();
        let mut calls = Vec::new();
        for _ in 0..reps {
            let t = Instant::now();
            let r = s.call(
                "upscale",
                json!({"image_path": src, "scale_factor": factor}),
            );
            calls.push(t.elapsed());
            assert_eq!(r["structuredContent"]["success"], true, "{r}");
        }
        s.close();
        // media-gen: the resample alone, in process.
        let decoded = image::open(&src).expect("decode");
        let mut resample = Vec::new();
        for _ in 0..reps {
            let t = Instant::now();
            let out =
                resized(&decoded, side * factor, side * factor, Filter::Lanczos3).expect("resize");
            resample.push(t.elapsed());
            drop(out);
        }
        let call = median_d(&mut calls);
        let alone = median_d(&mut resample);
        rows.push(row(
            &format!("{label}: media-gen tool call (decode, resample, PNG, save)"),
            format!("{:.0} ms", ms(call)),
            "",
        ));
        rows.push(row(
            &format!("{label}: media-gen resample alone (in process)"),
            format!("{:.0} ms", ms(alone)),
            "",
        ));
        match &py {
            None => rows.push(row(
                &format!("{label}: Pillow"),
                "not measured: no Python with Pillow (pip install pillow)".into(),
                "",
            )),
            Some(py) => {
                let out = Command::new(py)
                    .args(["-c", PILLOW])
                    .arg(&src)
                    .arg(factor.to_string())
                    .arg(reps.to_string())
                    .arg(dir.join("pillow.png"))
                    .stderr(Stdio::inherit())
                    .output()
                    .expect("run Pillow");
                let v: Value = serde_json::from_slice(&out.stdout)
                    .expect("Pillow's timings (its stderr shows why not)");
                let (p_resize, p_total, p_fast) = (
                    v["resize"].as_f64().unwrap_or(f64::NAN),
                    v["total"].as_f64().unwrap_or(f64::NAN),
                    v["total_fast"].as_f64().unwrap_or(f64::NAN),
                );
                rows.push(row(
                    &format!("{label}: Pillow open + LANCZOS + save (level 6 / level 1)"),
                    format!("{p_total:.0} ms / {p_fast:.0} ms"),
                    "",
                ));
                rows.push(row(
                    &format!("{label}: Pillow LANCZOS resize alone"),
                    format!("{p_resize:.0} ms"),
                    "",
                ));
                rows.push(row(
                    &format!(
                        "{label}: speed-up, whole job (Pillow level 6 / level 1 ÷ media-gen call)"
                    ),
                    format!("{:.2}× / {:.2}×", p_total / ms(call), p_fast / ms(call)),
                    "≥ 2×",
                ));
                rows.push(row(
                    &format!("{label}: speed-up, resample alone (Pillow ÷ media-gen)"),
                    format!("{:.2}×", p_resize / ms(alone)),
                    "",
                ));
            }
        }
        if factor == 4 {
            peak_memory(&dir, &src, side * factor, rows);
        }
    }
    edit_overhead(&dir, quick, rows);
}

/// The server's peak memory growth during one ×4 upscale, against the
/// result's raw size (RGB, 3 bytes a pixel).
fn peak_memory(dir: &Path, src: &Path, out_side: u32, rows: &mut Vec<(String, String, String)>) {
    let mut s = Server::spawn_with(&dir.join("peak"), &[], Stdio::null());
    s.initialize();
    std::thread::sleep(Duration::from_millis(200));
    let before = s.status_kib("VmRSS");
    let r = s.call("upscale", json!({"image_path": src, "scale_factor": 4}));
    assert_eq!(r["structuredContent"]["success"], true, "{r}");
    let peak = s.status_kib("VmHWM");
    s.close();
    let grew = peak.saturating_sub(before) as f64 * 1024.0;
    let raw = f64::from(out_side) * f64::from(out_side) * 3.0;
    rows.push(row(
        &format!("upscale ×4 → {out_side}×{out_side}: server peak memory growth"),
        format!(
            "{:.0} MB ({:.2}× the result's raw {:.0} MB)",
            grew / 1e6,
            grew / raw,
            raw / 1e6
        ),
        "< 2.5× raw",
    ));
}

/// `edit_image` of a 1K image and `generate_image` at 1K, at zero backend
/// latency with the emulator's cache warm, each minus its backend share
/// (the emulator answering the same kind of request over loopback).
fn edit_overhead(dir: &Path, quick: bool, rows: &mut Vec<(String, String, String)>) {
    let n = if quick { 5 } else { 15 };
    let emu = Emulator::spawn(0);
    let src = dir.join("edit-src.png");
    DynamicImage::ImageRgb8(photo(1024, 1024))
        .save(&src)
        .expect("source");
    let mut s = Server::spawn_with(
        &dir.join("edits"),
        &[("MCP_CLIPROXY_URL", emu.url.as_str())],
        Stdio::null(),
    );
    s.initialize();
    let mut measure = |tool: &str, args: Value| {
        s.call(tool, args.clone()); // warm the emulator's cache
        let mut times = Vec::new();
        for _ in 0..n {
            let t = Instant::now();
            let r = s.call(tool, args.clone());
            times.push(t.elapsed());
            assert_eq!(r["structuredContent"]["success"], true, "{r}");
        }
        median_d(&mut times)
    };
    let generate = measure("generate_image", json!({"prompt": "overhead"}));
    let edit = measure(
        "edit_image",
        json!({"image_path": src, "prompt": "overhead"}),
    );
    s.close();
    // Backend shares: the emulator's answer to a plain 1K request, and to
    // one that uploads a 1K image as well (what an edit sends).
    let png = std::fs::read(&src).expect("source bytes");
    let data_url = format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(&png)
    );
    let body = |with_image: bool| {
        let mut content = vec![json!({"type": "text", "text": "share"})];
        if with_image {
            content.push(json!({"type": "image_url", "image_url": {"url": data_url}}));
        }
        serde_json::to_vec(&json!({"model": "gemini-3-pro-image-preview",
            "messages": [{"role": "user", "content": content}], "modalities": ["image", "text"],
            "image_config": {"aspect_ratio": "1:1", "image_size": "1K"}}))
        .expect("json")
    };
    let share = |with_image: bool| {
        let b = body(with_image);
        http_post(&emu.url, "/v1/chat/completions", &b);
        let mut times = Vec::new();
        for _ in 0..n {
            let t = Instant::now();
            http_post(&emu.url, "/v1/chat/completions", &b);
            times.push(t.elapsed());
        }
        median_d(&mut times)
    };
    let (g_share, e_share) = (share(false), share(true));
    for (tool, call, backend) in [
        ("generate_image", generate, g_share),
        ("edit_image", edit, e_share),
    ] {
        rows.push(row(
            &format!("1K {tool}: call / backend share / own overhead"),
            format!(
                "{:.1} / {:.1} / {:.1} ms",
                ms(call),
                ms(backend),
                ms(call.saturating_sub(backend))
            ),
            "",
        ));
    }
}
