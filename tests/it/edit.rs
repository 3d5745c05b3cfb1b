//! The edit tools (`edit_image`, `inpaint`, `outpaint`, `upscale`) and
//! reference images through a real MCP client, the backend reached over real
//! HTTP against the emulator: sizes, pixel preservation outside masks,
//! lineage, and every bad input with its code and nothing written.

use std::path::{Path, PathBuf};

use image::{DynamicImage, GrayImage, Luma, RgbImage};
use serde_json::{Value, json};

use crate::mcp::{Harness, call, start, start_with_http_policy, structured};
use crate::support::media_files;

/// A varied picture (so a resample or a re-encode would show).
fn photo(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([
            (x * 7 % 256) as u8,
            (y * 3 % 256) as u8,
            ((x ^ y) * 5 % 256) as u8,
        ])
    })
}

fn png_bytes(img: &DynamicImage) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

fn write_png(dir: &Path, name: &str, img: DynamicImage) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, png_bytes(&img)).unwrap();
    p
}

/// White inside `(x0..x1, y0..y1)`, black elsewhere.
fn rect_mask(w: u32, h: u32, x0: u32, y0: u32, x1: u32, y1: u32) -> DynamicImage {
    DynamicImage::ImageLuma8(GrayImage::from_fn(w, h, |x, y| {
        Luma([if (x0..x1).contains(&x) && (y0..y1).contains(&y) {
            255
        } else {
            0
        }])
    }))
}

fn result_pixels(v: &Value) -> RgbImage {
    let path = v["image_path"].as_str().unwrap();
    image::open(path).unwrap().into_rgb8()
}

async fn emulator_stats(h: &Harness) -> Value {
    crate::support::emulator_stats(&h._emulator).await
}

/// An external picture of a size Gemini does not make is edited: the model's
/// 16:9 output is brought back to the source's exact size; a library file
/// as the source gives lineage both ways.
#[tokio::test]
async fn edit_keeps_the_source_size_and_records_lineage() {
    let h = start(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let src = write_png(
        dir.path(),
        "photo.png",
        DynamicImage::ImageRgb8(photo(1000, 600)),
    );
    let v = structured(
        &call(
            &h,
            "edit_image",
            json!({"image_path": src, "prompt": "a storm"}),
        )
        .await,
    );
    assert_eq!(v["success"], true, "{v}");
    let m = &v["metadata"];
    assert_eq!(
        (m["width"].as_u64(), m["height"].as_u64()),
        (Some(1000), Some(600))
    );
    assert_eq!(
        (m["operation"].as_str(), m["output_format"].as_str()),
        (Some("edit"), Some("png"))
    );
    assert_eq!(
        m["source"],
        src.canonicalize().unwrap().display().to_string()
    );
    assert_eq!(
        m["aspect_ratio"], "16:9",
        "the model's nearest ratio was asked for"
    );
    assert_eq!(result_pixels(&v).dimensions(), (1000, 600));

    // A library file (given by its path, as results show it) is the parent.
    let first = v["filename"].as_str().unwrap().to_owned();
    let child = structured(
        &call(
            &h,
            "edit_image",
            json!({"image_path": v["image_path"], "prompt": "calmer", "output_format": "jpeg"}),
        )
        .await,
    );
    assert_eq!(child["metadata"]["source"], first);
    assert_eq!(child["metadata"]["mime_type"], "image/jpeg");
    let info = structured(&call(&h, "get_file_info", json!({"filename": first})).await);
    assert_eq!(info["lineage"]["derived"], json!([child["filename"]]));
    let info = structured(&call(&h, "get_file_info", json!({"filename": child["filename"]})).await);
    assert_eq!(info["lineage"]["source"], first);
}

/// A mask of another size is scaled to the image and said so; every pixel
/// outside it is exactly the source's, and the masked area changed.
#[tokio::test]
async fn masked_edit_keeps_every_pixel_outside_the_mask() {
    let h = start(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let source = photo(640, 480);
    let src = write_png(
        dir.path(),
        "src.png",
        DynamicImage::ImageRgb8(source.clone()),
    );
    // Half size: the white rectangle covers (160..480, 120..360) once scaled.
    let mask = write_png(
        dir.path(),
        "mask.png",
        rect_mask(320, 240, 80, 60, 240, 180),
    );
    for (tool, feather) in [("edit_image", 0), ("inpaint", 6)] {
        let v = structured(
            &call(
                &h,
                tool,
                json!({"image_path": src, "mask_path": mask, "prompt": "a red door", "feather": feather}),
            )
            .await,
        );
        assert_eq!(v["success"], true, "{tool}: {v}");
        assert!(
            v["metadata"]["note"].as_str().unwrap().contains("scaled"),
            "{v}"
        );
        let out = result_pixels(&v);
        assert_eq!(out.dimensions(), (640, 480));
        let inside = |x: u32, y: u32| (160..480).contains(&x) && (120..360).contains(&y);
        let mut changed = 0;
        for (x, y, p) in out.enumerate_pixels() {
            if inside(x, y) {
                changed += usize::from(p != source.get_pixel(x, y));
            } else {
                assert_eq!(
                    p,
                    source.get_pixel(x, y),
                    "{tool}: ({x},{y}) outside the mask changed"
                );
            }
        }
        assert!(
            changed > 320 * 240 * 3 / 4,
            "{tool}: only {changed} pixels changed inside"
        );
        assert_eq!(
            v["metadata"]["operation"],
            if tool == "inpaint" { "inpaint" } else { "edit" }
        );
    }
}

/// Exact sizes for the directions, and the original region kept exactly.
#[tokio::test]
async fn outpaint_extends_and_keeps_the_original() {
    let h = start(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let source = photo(1024, 1024);
    let src = write_png(
        dir.path(),
        "square.png",
        DynamicImage::ImageRgb8(source.clone()),
    );
    let v = structured(
        &call(
            &h,
            "outpaint",
            json!({"image_path": src, "direction": "right", "prompt": "more sea", "extend_pixels": 256}),
        )
        .await,
    );
    assert_eq!(v["success"], true, "{v}");
    let out = result_pixels(&v);
    assert_eq!(out.dimensions(), (1280, 1024));
    for y in (0..1024).step_by(7) {
        for x in (0..1024).step_by(5) {
            assert_eq!(out.get_pixel(x, y), source.get_pixel(x, y), "({x},{y})");
        }
    }
    let new_area_changed = (1100..1280)
        .flat_map(|x| (0..1024).step_by(16).map(move |y| (x, y)))
        .filter(|&(x, y)| out.get_pixel(x, y) != source.get_pixel(1023, y))
        .count();
    assert!(new_area_changed > 1000, "{new_area_changed}");
    assert_eq!(v["metadata"]["parameters"]["direction"], "right");
    let small = photo(256, 256);
    let src = write_png(
        dir.path(),
        "small.png",
        DynamicImage::ImageRgb8(small.clone()),
    );
    for (direction, size, origin) in [
        ("all", (384, 384), (64, 64)),
        ("up", (256, 320), (0, 64)),
        ("left", (320, 256), (64, 0)),
        ("down", (256, 320), (0, 0)),
    ] {
        let v = structured(
            &call(
                &h,
                "outpaint",
                json!({"image_path": src, "direction": direction, "prompt": "x", "extend_pixels": 64}),
            )
            .await,
        );
        let out = result_pixels(&v);
        assert_eq!(out.dimensions(), size, "{direction}");
        assert_eq!(
            out.get_pixel(origin.0 + 10, origin.1 + 20),
            small.get_pixel(10, 20),
            "{direction}"
        );
    }
}

/// Lanczos needs no backend; `model` asks it once. Both give exact sizes.
#[tokio::test]
async fn upscale_locally_and_by_the_model() {
    let h = start(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let src = write_png(
        dir.path(),
        "small.png",
        DynamicImage::ImageRgb8(photo(300, 200)),
    );
    let before = emulator_stats(&h).await["generate_requests"].clone();
    let v = structured(&call(&h, "upscale", json!({"image_path": src})).await);
    assert_eq!(result_pixels(&v).dimensions(), (600, 400));
    assert_eq!(
        v["metadata"]["parameters"],
        json!({"scale_factor": 2, "method": "lanczos"})
    );
    assert_eq!(
        emulator_stats(&h).await["generate_requests"],
        before,
        "lanczos is local"
    );
    let v = structured(
        &call(
            &h,
            "upscale",
            json!({"image_path": src, "scale_factor": 4, "method": "model"}),
        )
        .await,
    );
    assert_eq!(v["success"], true, "{v}");
    assert_eq!(result_pixels(&v).dimensions(), (1200, 800));
    assert_eq!(emulator_stats(&h).await["last_request_images"], 1);
    let bad = structured(&call(&h, "upscale", json!({"image_path": src, "scale_factor": 3})).await);
    assert_eq!(bad["error"]["code"], "INVALID_PARAMETER");
}

/// References travel with the prompt (after it) and are recorded; over the
/// model's limit the call is refused before anything is sent.
#[tokio::test]
async fn reference_images_are_sent_and_recorded() {
    let h = start(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let a = write_png(
        dir.path(),
        "style.png",
        DynamicImage::ImageRgb8(photo(64, 64)),
    );
    let library = structured(&call(&h, "generate_image", json!({"prompt": "a character"})).await);
    let name = library["filename"].as_str().unwrap().to_owned();
    let v = structured(
        &call(
            &h,
            "generate_image",
            json!({"prompt": "the character in this style", "reference_images": [a, format!("media://files/{name}")]}),
        )
        .await,
    );
    assert_eq!(v["success"], true, "{v}");
    assert_eq!(emulator_stats(&h).await["last_request_images"], 2);
    assert_eq!(
        v["metadata"]["parameters"]["reference_images"],
        json!([a.canonicalize().unwrap().display().to_string(), name])
    );
    // The batch sends them with every prompt.
    let b = structured(
        &call(
            &h,
            "generate_image_batch",
            json!({"prompts": ["one", "two"], "reference_images": [name]}),
        )
        .await,
    );
    assert_eq!(b["succeeded"], 2, "{b}");
    // 2.5 Flash takes 3.
    let four = vec![name.clone(); 4];
    let r = structured(
        &call(
            &h,
            "generate_image",
            json!({"prompt": "x", "model": "gemini-2.5-flash-image", "reference_images": four}),
        )
        .await,
    );
    assert_eq!(r["error"]["code"], "INVALID_PARAMETER");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("at most 3"),
        "{r}"
    );
    let models = structured(&call(&h, "list_models", json!({"type": "image"})).await);
    assert_eq!(models["models"][0]["max_reference_images"], 14);
}

/// The final image is taken when the model answers with a thought draft
/// first (the emulator's draft is flat grey).
#[tokio::test]
async fn a_thought_draft_is_not_the_answer() {
    let h = start(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let src = write_png(
        dir.path(),
        "p.png",
        DynamicImage::ImageRgb8(photo(200, 200)),
    );
    let v = structured(
        &call(
            &h,
            "edit_image",
            json!({"image_path": src, "prompt": "snow [emulator:drafts]"}),
        )
        .await,
    );
    assert_eq!(v["success"], true, "{v}");
    let out = result_pixels(&v);
    let grey = out.pixels().filter(|p| p.0 == [128, 128, 128]).count();
    assert!(
        grey < 200 * 200 / 10,
        "the draft was taken: {grey} grey pixels"
    );
}

/// Bad inputs get their codes and leave nothing behind.
#[tokio::test]
async fn bad_inputs_get_their_codes_and_write_nothing() {
    let h = start(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.png");
    std::fs::write(&text, "a text file named .png").unwrap();
    let src = write_png(dir.path(), "ok.png", DynamicImage::ImageRgb8(photo(64, 64)));
    let black = write_png(dir.path(), "black.png", rect_mask(64, 64, 0, 0, 0, 0));
    // 4× the 64-megapixel limit, claimed by a tiny file's header.
    let bomb = dir.path().join("bomb.png");
    std::fs::write(&bomb, crafted_png(16_384, 16_384)).unwrap();
    let cases = [
        (
            "edit_image",
            json!({"image_path": text, "prompt": "x"}),
            "INVALID_IMAGE",
        ),
        (
            "edit_image",
            json!({"image_path": dir.path().join("missing.png"), "prompt": "x"}),
            "FILE_NOT_FOUND",
        ),
        (
            "edit_image",
            json!({"image_path": "image_20260101_000000_000_abcdef.png", "prompt": "x"}),
            "FILE_NOT_FOUND",
        ),
        (
            "inpaint",
            json!({"image_path": src, "mask_path": black, "prompt": "x"}),
            "INVALID_PARAMETER",
        ),
        (
            "edit_image",
            json!({"image_path": bomb, "prompt": "x"}),
            "INVALID_IMAGE",
        ),
        ("upscale", json!({"image_path": bomb}), "INVALID_IMAGE"),
        (
            "outpaint",
            json!({"image_path": src, "direction": "sideways", "prompt": "x"}),
            "INVALID_PARAMETER",
        ),
        (
            "outpaint",
            json!({"image_path": src, "direction": "up", "prompt": "x", "extend_pixels": 100_000}),
            "INVALID_PARAMETER",
        ),
        (
            "edit_image",
            json!({"image_path": src, "prompt": "x", "reference_images": vec![src.clone(); 15]}),
            "INVALID_PARAMETER",
        ),
        (
            "edit_image",
            json!({"image_path": src, "prompt": " "}),
            "INVALID_PROMPT",
        ),
        (
            "edit_image",
            json!({"image_path": src, "prompt": "x", "output_format": "gif"}),
            "INVALID_PARAMETER",
        ),
    ];
    for (tool, args, code) in cases {
        let r = call(&h, tool, args.clone()).await;
        assert_eq!(r.is_error, Some(true), "{tool} {args}");
        let v = structured(&r);
        assert_eq!(v["error"]["code"], code, "{tool} {args}: {v}");
    }
    let r = structured(&call(&h, "edit_image", json!({"image_path": bomb, "prompt": "x"})).await);
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("megapixels"),
        "{r}"
    );
    assert_eq!(r["error"]["details"]["max_pixels"], 64u64 << 20);
    assert!(media_files(&h.out).is_empty(), "{:?}", media_files(&h.out));
}

/// The largest upscale is refused from the header, before any decoding:
/// the crafted file's pixels are not even real.
#[tokio::test]
async fn oversized_upscale_is_refused_before_any_work() {
    let h = start(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let claims = dir.path().join("claims.png");
    std::fs::write(&claims, crafted_png(5000, 5000)).unwrap();
    let r = structured(
        &call(
            &h,
            "upscale",
            json!({"image_path": claims, "scale_factor": 4}),
        )
        .await,
    );
    assert_eq!(r["error"]["code"], "INVALID_PARAMETER", "{r}");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("20000×20000"),
        "{r}"
    );
    assert!(media_files(&h.out).is_empty());
}

/// Over HTTP a session reads only inside the output directory (and the
/// input roots): a canary outside is refused, whichever way it is named.
#[tokio::test]
async fn http_sessions_read_only_inside_the_allowed_directories() {
    let outside = tempfile::tempdir().unwrap();
    let canary = write_png(
        outside.path(),
        "canary.png",
        DynamicImage::ImageRgb8(photo(32, 32)),
    );
    let roots = tempfile::tempdir().unwrap();
    let allowed = write_png(
        roots.path(),
        "mine.png",
        DynamicImage::ImageRgb8(photo(32, 32)),
    );
    let h = start_with_http_policy(&[("MCP_INPUT_ROOTS", roots.path().to_str().unwrap())]).await;
    std::os::unix::fs::symlink(&canary, h.out.join("sneaky.png")).unwrap();
    let escape = h
        .out
        .join("..")
        .join("..")
        .join(outside.path().strip_prefix("/").unwrap())
        .join("canary.png");
    for path in [
        canary.clone(),
        escape,
        h.out.join("sneaky.png"),
        PathBuf::from("canary.png"),
    ] {
        let r =
            structured(&call(&h, "edit_image", json!({"image_path": path, "prompt": "x"})).await);
        assert_eq!(r["error"]["code"], "INVALID_PARAMETER", "{path:?}: {r}");
    }
    let ok = structured(&call(&h, "upscale", json!({"image_path": allowed})).await);
    assert_eq!(ok["success"], true, "{ok}");
    let made = structured(&call(&h, "generate_image", json!({"prompt": "inside"})).await);
    let inside = structured(&call(&h, "upscale", json!({"image_path": made["image_path"]})).await);
    assert_eq!(inside["metadata"]["source"], made["filename"]);
    assert_eq!(
        std::fs::read(&canary).unwrap(),
        png_bytes(&DynamicImage::ImageRgb8(photo(32, 32)))
    );
}

/// A PNG whose header claims `w`×`h` (8×8 real pixels).
fn crafted_png(w: u32, h: u32) -> Vec<u8> {
    let mut png = png_bytes(&DynamicImage::ImageRgb8(RgbImage::new(8, 8)));
    png[16..20].copy_from_slice(&w.to_be_bytes());
    png[20..24].copy_from_slice(&h.to_be_bytes());
    let mut crc = !0u32;
    for &b in &png[12..29] {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    let crc = !crc;
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    png
}
