//! Video: what it costs to let the model see a finished video. In process,
//! the MP4 read from its boxes and the 2×2 contact sheet (OpenH264 decode of
//! the whole track, four frames, resized, encoded within the preview
//! budget) for 8 s clips at 720p and 1080p, beside the preview of a still
//! image of the same size (what an image result pays). Over stdio, the real
//! binary against the emulator process: `get_video_status` of a finished
//! job (read, decode, sheet, result) beside `get_file_info` of the same file.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use image::{DynamicImage, RgbImage};
use media_gen::emulator::video::{Clip, render_mp4};
use media_gen::media::video::{contact_sheet, probe_mp4};
use serde_json::json;

use crate::{Emulator, Server, median_d, ms, row};

fn time<T>(reps: usize, mut f: impl FnMut() -> T) -> Duration {
    let mut runs = Vec::with_capacity(reps);
    for _ in 0..reps {
        let t = Instant::now();
        std::hint::black_box(f());
        runs.push(t.elapsed());
    }
    median_d(&mut runs)
}

pub fn run(work: &Path, quick: bool, rows: &mut Vec<(String, String, String)>) {
    let reps = if quick { 3 } else { 9 };
    for (label, w, h) in [("720p", 1280u32, 720u32), ("1080p", 1920, 1080)] {
        let mp4 = render_mp4(&Clip {
            seed: format!("bench {label}").into_bytes(),
            prompt: format!("bench {label}"),
            width: w,
            height: h,
            seconds: 8,
            first: None,
            last: None,
        })
        .expect("render");
        let still = {
            let mut png = Vec::new();
            DynamicImage::ImageRgb8(RgbImage::from_fn(w, h, |x, y| {
                image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x ^ y) % 256) as u8])
            }))
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .expect("png");
            png
        };
        let probe = time(reps, || probe_mp4(&mp4).expect("probe"));
        let sheet = time(reps, || {
            contact_sheet(&mp4, 512, 100 * 1024).expect("sheet")
        });
        let made = contact_sheet(&mp4, 512, 100 * 1024).expect("sheet");
        let preview = time(reps, || {
            media_gen::media::preview(&still, 512, 100 * 1024).expect("preview")
        });
        rows.push(row(
            &format!(
                "video {label} 8 s ({} KB MP4): read size and duration from the boxes",
                mp4.len() / 1024
            ),
            format!("{:.0} µs", probe.as_secs_f64() * 1e6),
            "",
        ));
        rows.push(row(
            &format!(
                "video {label} 8 s: contact sheet (decode all, 4 frames, {}×{}, {} KB)",
                made.width,
                made.height,
                made.data.len() / 1024
            ),
            format!(
                "{:.0} ms = {:.1}× the preview of a {w}×{h} PNG ({:.0} ms)",
                ms(sheet),
                ms(sheet) / ms(preview).max(0.001),
                ms(preview)
            ),
            "≤ 100 KB; ≤ 1 s",
        ));
    }

    // Over stdio: a finished job's status against file info of its file.
    let emulator = Emulator::spawn(0);
    let dir = work.join("video");
    let mut s = Server::spawn_with(
        &dir,
        &[
            ("MCP_GEMINI_URL", emulator.url.as_str()),
            ("MCP_GEMINI_API_KEY", "bench"),
            ("MCP_VIDEO_POLL_INTERVAL", "0.05"),
        ],
        Stdio::null(),
    );
    s.initialize();
    let started = s.call(
        "generate_video",
        json!({"prompt": "bench waves", "duration": "8s"}),
    );
    let job = started["structuredContent"]["job_id"]
        .as_str()
        .expect("generate_video returns a job id")
        .to_owned();
    let done = s.call(
        "get_video_status",
        json!({"job_id": job, "wait_seconds": 60}),
    );
    assert_eq!(done["structuredContent"]["status"], "succeeded", "{done}");
    let file = done["structuredContent"]["filename"]
        .as_str()
        .expect("filename")
        .to_owned();
    let status = time(reps, || s.call("get_video_status", json!({"job_id": job})));
    let info = time(reps, || s.call("get_file_info", json!({"filename": file})));
    s.close();
    rows.push(row(
        "get_video_status of a finished 720p 8 s job (over stdio, with its contact sheet)",
        format!(
            "{:.0} ms (get_file_info of the same file: {:.1} ms)",
            ms(status),
            ms(info)
        ),
        "≤ 1 s",
    ));
}
