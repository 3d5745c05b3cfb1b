//! Criterion micro-benchmarks of the hot paths, in process: a backend's
//! response parsed (JSON + base64 decode), the integrity check of the bytes
//! it carried, the inline preview (and its parts: decode, reduction,
//! encode), and the catalog's insert and query.
//!
//! Run: `cargo bench --bench micro` (all), or name a group, e.g.
//! `cargo bench --bench micro -- preview`. See bench/README.md.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "a benchmark: a failed step should stop it loudly"
)]

use std::hint::black_box;
use std::time::Duration;

use base64::Engine;
use chrono::{DateTime, Utc};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use media_gen::media;
use media_gen::store::local::LocalStore;
use media_gen::store::{Catalog, ListQuery, MediaId, MediaKind, MediaRecord, SortBy};
use serde_json::{Map, json};

/// The emulator's test pattern at a Gemini output size, as the backend
/// sends it (a PNG).
fn pattern(width: u32, height: u32) -> Vec<u8> {
    media_gen::emulator::render_png(
        format!("{width}x{height}").as_bytes(),
        "a lighthouse at dusk, micro benchmark",
        width,
        height,
        None,
        None,
    )
}

/// The sizes measured: 1K and 4K square, as the core section's overhead.
const SIZES: [(&str, u32); 2] = [("1K", 1024), ("4K", 4096)];

/// A CLIProxyAPI chat-completions body carrying `png`, shaped as the
/// emulator (and CLIProxyAPI) answers.
fn chat_body(png: &[u8]) -> Vec<u8> {
    let b64 = base64::engine::general_purpose::STANDARD.encode(png);
    json!({
        "id": "micro", "object": "chat.completion", "created": 0, "model": "gemini-3-pro-image-preview",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Here is your image.",
            "images": [{"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{b64}")}, "index": 0}]},
            "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 1290, "total_tokens": 1300}
    })
    .to_string()
    .into_bytes()
}

fn parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse");
    for (name, side) in SIZES {
        let body = chat_body(&pattern(side, side));
        g.bench_function(format!("chat_completion {name}"), |b| {
            b.iter(|| media_gen::fuzzing::chat_completion(black_box(&body)).unwrap());
        });
    }
    g.finish();
}

fn integrity(c: &mut Criterion) {
    let mut g = c.benchmark_group("integrity");
    for (name, side) in SIZES {
        let png = pattern(side, side);
        g.bench_function(format!("probe + check_complete {name}"), |b| {
            b.iter(|| {
                let info = media::probe(black_box(&png)).unwrap();
                media::check_complete(&png, &info).unwrap();
            });
        });
    }
    g.finish();
}

/// The inline preview of a backend's PNG (as `generate_image` makes it),
/// and beside it what it is built from or replaced: the whole-image decode
/// (image's png, and zune-png), the preview of whole decoded pixels (the
/// path before the streamed reduction), and the JPEG encoders.
fn preview(c: &mut Criterion) {
    let mut g = c.benchmark_group("preview");
    g.sample_size(20).measurement_time(Duration::from_secs(6));
    for (name, side) in SIZES {
        let png = pattern(side, side);
        g.bench_function(format!("preview (streamed) {name}"), |b| {
            b.iter(|| media::preview(black_box(&png), 512, 100 * 1024).unwrap());
        });
        g.bench_function(format!("decode whole + preview_of {name}"), |b| {
            b.iter(|| {
                let img = media::decode(black_box(&png)).unwrap();
                media::preview_of(&img, 512, 100 * 1024).unwrap()
            });
        });
        g.bench_function(format!("decode whole (image/png) {name}"), |b| {
            b.iter(|| media::decode(black_box(&png)).unwrap());
        });
        g.bench_function(format!("decode whole (zune-png) {name}"), |b| {
            b.iter(|| {
                zune_png::PngDecoder::new(zune_png::zune_core::bytestream::ZCursor::new(black_box(
                    &png[..],
                )))
                .decode_raw()
                .unwrap()
            });
        });
    }
    // The encoders on a 512² preview of the pattern.
    let small = media::resize::resized(
        &media::decode(&pattern(1024, 1024)).unwrap(),
        512,
        512,
        media::resize::Filter::Bilinear,
    )
    .unwrap()
    .into_rgb8();
    g.bench_function("jpeg q82 512² (jpeg-encoder, used)", |b| {
        b.iter(|| {
            let mut out = Vec::new();
            jpeg_encoder::Encoder::new(&mut out, 82)
                .encode(
                    black_box(small.as_raw()),
                    512,
                    512,
                    jpeg_encoder::ColorType::Rgb,
                )
                .unwrap();
            out
        });
    });
    g.bench_function("jpeg q82 512² (image's JpegEncoder)", |b| {
        b.iter(|| {
            use image::ImageEncoder;
            let mut out = Vec::new();
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 82)
                .write_image(
                    black_box(small.as_raw()),
                    512,
                    512,
                    image::ExtendedColorType::Rgb8,
                )
                .unwrap();
            out
        });
    });
    g.finish();
}

fn record(i: usize, created: DateTime<Utc>) -> MediaRecord {
    let name = format!(
        "image_{}_{:06x}.png",
        created.format("%Y%m%d_%H%M%S_%3f"),
        i % 0xff_ffff
    );
    let id: MediaId = name.parse().expect("valid name");
    let mut metadata = Map::new();
    metadata.insert("aspect_ratio".into(), json!("1:1"));
    metadata.insert("image_size".into(), json!("1K"));
    MediaRecord {
        id,
        kind: MediaKind::Image,
        mime_type: "image/png".into(),
        size_bytes: 1_000_000 + i as u64,
        width: Some(1024),
        height: Some(1024),
        created,
        prompt: Some(format!("a lighthouse at dusk, number {i}")),
        model: Some("gemini-3-pro-image-preview".into()),
        source: None,
        metadata,
    }
}

fn catalog(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let store = LocalStore::open(dir.path()).expect("store");
    let start = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .expect("date")
        .with_timezone(&Utc);
    // A library of 10,000 rows to query.
    let rows: Vec<MediaRecord> = (0..10_000)
        .map(|i| record(i, start + chrono::Duration::seconds(i as i64 * 7)))
        .collect();
    rt.block_on(store.catalog.insert_many(rows))
        .expect("insert");
    let mut g = c.benchmark_group("catalog");
    let mut n = 10_000usize;
    g.bench_function("insert one row (10k rows)", |b| {
        b.iter_batched(
            || {
                n += 1;
                record(n, start + chrono::Duration::seconds(n as i64 * 7))
            },
            |r| rt.block_on(store.catalog.insert(&r)).unwrap(),
            BatchSize::SmallInput,
        );
    });
    for (label, q) in [
        ("list newest 20", ListQuery::default()),
        (
            "list by size 20",
            ListQuery {
                sort: SortBy::Size,
                ..ListQuery::default()
            },
        ),
        (
            "search prompt 20",
            ListQuery {
                text: Some("number 4242".into()),
                ..ListQuery::default()
            },
        ),
    ] {
        g.bench_function(label, |b| {
            b.iter(|| rt.block_on(store.catalog.list(black_box(&q))).unwrap());
        });
    }
    g.finish();
}

criterion_group!(benches, parse, integrity, preview, catalog);
criterion_main!(benches);
