//! Fallback when rate limited (`MCP_FALLBACK_MODEL`), through a real MCP
//! client, the backend reached over real HTTP against the emulator. The
//! emulator rate limits one model (`/emulator/control` with `model`) and
//! counts generation requests per model, so each test checks exactly how
//! many requests each model got: the requested model's retries, then one
//! call on the fallback — or none where there must be no fallback.

use std::path::Path;

use image::{DynamicImage, RgbImage};
use rmcp::model::CallToolResult;
use serde_json::{Value, json};

use crate::mcp::{Harness, call, start, structured};
use crate::support::media_files;

const PRO: &str = "gemini-3-pro-image-preview";
const FLASH: &str = "gemini-3.1-flash-image-preview";
/// The backend's tries of one call (`RetryPolicy::default().max_attempts`).
const TRIES: u64 = 4;

fn with_fallback(model: &str) -> [(&'static str, String); 1] {
    [("MCP_FALLBACK_MODEL", model.to_owned())]
}

async fn start_with(env: &[(&'static str, String)]) -> Harness {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    start(&env).await
}

/// Tells the emulator to fail requests (for `model` only, if given).
async fn fail(h: &Harness, mode: &str, model: Option<&str>) {
    let r = reqwest::Client::new()
        .post(format!("{}/emulator/control", h._emulator.base_url()))
        .json(&json!({"fail": mode, "model": model}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
}

/// Generation requests per model the emulator received.
async fn requests_by_model(h: &Harness) -> Value {
    crate::support::emulator_stats(&h._emulator).await["generate_requests_by_model"].clone()
}

/// The text blocks after the mirrored JSON.
fn notes(r: &CallToolResult) -> Vec<String> {
    r.content
        .iter()
        .skip(1)
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect()
}

/// The result says the fallback made it: `model`, `fallback_from`, a note;
/// and the sidecar (read back through `get_file_info`) says so too.
async fn assert_made_by_fallback(h: &Harness, r: &CallToolResult, v: &Value) {
    assert_eq!(v["success"], true, "{v}");
    let m = &v["metadata"];
    assert_eq!(m["model"], FLASH, "{v}");
    assert_eq!(m["fallback_from"], PRO, "{v}");
    let notes = notes(r);
    assert!(
        notes
            .iter()
            .any(|n| n.contains(PRO) && n.contains(FLASH) && n.contains("rate limited")),
        "{notes:?}"
    );
    let info = structured(&call(h, "get_file_info", json!({"filename": v["filename"]})).await);
    assert_eq!(info["metadata"]["model"], FLASH, "{info}");
    assert_eq!(info["metadata"]["fallback_from"], PRO, "{info}");
    // It costs what the model that made it costs at that size.
    let flash_price = json!({"512": 0.045, "1K": 0.067, "2K": 0.101, "4K": 0.151});
    let size = m["image_size"].as_str().unwrap();
    assert_eq!(m["cost_usd"], flash_price[size], "{v}");
    assert_eq!(info["metadata"]["cost_usd"], flash_price[size], "{info}");
}

#[tokio::test]
async fn generate_falls_back_once_after_the_retries() {
    let h = start_with(&with_fallback(FLASH)).await;
    fail(&h, "resource_exhausted", Some(PRO)).await;
    let r = call(&h, "generate_image", json!({"prompt": "a harbour at dawn"})).await;
    let v = structured(&r);
    assert_made_by_fallback(&h, &r, &v).await;
    assert_eq!(
        requests_by_model(&h).await,
        json!({PRO: TRIES, FLASH: 1}),
        "the requested model's retries, then one call on the fallback"
    );
    // The ledger: the rate-limited call (not billed) and the fallback's.
    let u = structured(&call(&h, "get_usage", json!({})).await);
    assert_eq!(
        (
            u["calls"].clone(),
            u["failed"].clone(),
            u["total_usd"].clone()
        ),
        (json!(2), json!(1), json!(0.067)),
        "{u}"
    );
}

#[tokio::test]
async fn an_edit_falls_back_and_records_the_model_that_made_it() {
    let h = start_with(&with_fallback(FLASH)).await;
    let dir = tempfile::tempdir().unwrap();
    let src = write_png(dir.path(), 640, 400);
    fail(&h, "resource_exhausted", Some(PRO)).await;
    let r = call(
        &h,
        "edit_image",
        json!({"image_path": src, "prompt": "make it night", "model": PRO}),
    )
    .await;
    let v = structured(&r);
    assert_made_by_fallback(&h, &r, &v).await;
    assert_eq!(v["metadata"]["operation"], "edit");
    assert_eq!(
        (
            v["metadata"]["width"].as_u64(),
            v["metadata"]["height"].as_u64()
        ),
        (Some(640), Some(400)),
        "the fallback's picture is brought to the source's size like any edit"
    );
    assert_eq!(requests_by_model(&h).await, json!({PRO: TRIES, FLASH: 1}));
}

/// In a batch each item falls back on its own: a rate-limited item is made
/// by the fallback, an item failing with a 5xx is not retried elsewhere.
#[tokio::test]
async fn a_batch_item_falls_back_and_a_server_error_does_not() {
    let h = start_with(&with_fallback(FLASH)).await;
    fail(&h, "resource_exhausted", Some(PRO)).await;
    let r = call(
        &h,
        "generate_image_batch",
        json!({"prompts": ["a red kite", "a blue kite [emulator:server_error]"]}),
    )
    .await;
    let v = structured(&r);
    assert_eq!(
        (v["succeeded"].as_u64(), v["failed"].as_u64()),
        (Some(1), Some(1)),
        "{v}"
    );
    let made = &v["results"][0];
    assert_eq!(made["metadata"]["model"], FLASH, "{v}");
    assert_eq!(made["metadata"]["fallback_from"], PRO, "{v}");
    assert!(
        notes(&r).iter().any(|n| n.contains(FLASH)),
        "{:?}",
        notes(&r)
    );
    let failed = &v["results"][1];
    assert_eq!(failed["error"]["code"], "GENERATION_FAILED", "{v}");
    assert!(
        failed["error"]["details"].get("fallback_model").is_none(),
        "{v}"
    );
    assert_eq!(
        requests_by_model(&h).await,
        json!({PRO: 2 * TRIES, FLASH: 1}),
        "each item's retries on the requested model; only the rate-limited one fell back"
    );
}

#[tokio::test]
async fn no_fallback_when_unset() {
    let h = start(&[]).await;
    fail(&h, "resource_exhausted", Some(PRO)).await;
    let v = structured(&call(&h, "generate_image", json!({"prompt": "a fox"})).await);
    assert_eq!(v["error"]["code"], "RATE_LIMITED", "{v}");
    assert_eq!(requests_by_model(&h).await, json!({PRO: TRIES}));
    assert!(media_files(&h.out).is_empty());
}

#[tokio::test]
async fn no_fallback_on_a_server_error() {
    let h = start_with(&with_fallback(FLASH)).await;
    fail(&h, "server_error", Some(PRO)).await;
    let v = structured(&call(&h, "generate_image", json!({"prompt": "a fox"})).await);
    assert_eq!(v["error"]["code"], "GENERATION_FAILED", "{v}");
    assert_eq!(requests_by_model(&h).await, json!({PRO: TRIES}));
    assert!(media_files(&h.out).is_empty());
}

#[tokio::test]
async fn a_fallback_equal_to_the_requested_model_is_not_tried_again() {
    let h = start_with(&with_fallback(PRO)).await;
    fail(&h, "resource_exhausted", Some(PRO)).await;
    let v = structured(&call(&h, "generate_image", json!({"prompt": "a fox"})).await);
    assert_eq!(v["error"]["code"], "RATE_LIMITED", "{v}");
    assert!(v["error"]["details"].get("fallback_model").is_none(), "{v}");
    assert_eq!(requests_by_model(&h).await, json!({PRO: TRIES}));
}

/// Both models rate limited: `RATE_LIMITED`, naming both; the fallback's
/// one call had the backend's retries like any call; nothing saved.
#[tokio::test]
async fn both_rate_limited_is_rate_limited_naming_both_models() {
    let h = start_with(&with_fallback(FLASH)).await;
    fail(&h, "resource_exhausted", None).await;
    let v = structured(&call(&h, "generate_image", json!({"prompt": "a fox"})).await);
    let e = &v["error"];
    assert_eq!(e["code"], "RATE_LIMITED", "{v}");
    let message = e["message"].as_str().unwrap();
    assert!(
        message.contains(PRO) && message.contains(FLASH),
        "{message}"
    );
    assert!(message.contains("wait a minute"), "{message}");
    assert_eq!(
        (&e["details"]["model"], &e["details"]["fallback_model"]),
        (&json!(PRO), &json!(FLASH)),
        "{v}"
    );
    assert_eq!(e["details"]["fallback_tried"], true, "{v}");
    assert_eq!(
        requests_by_model(&h).await,
        json!({PRO: TRIES, FLASH: TRIES})
    );
    assert!(media_files(&h.out).is_empty());
}

/// A fallback that cannot make the request (2.5 Flash makes only 1K) is
/// not tried; the error says so.
#[tokio::test]
async fn a_fallback_that_cannot_make_the_request_is_not_tried() {
    let flash25 = "gemini-2.5-flash-image";
    let h = start_with(&with_fallback(flash25)).await;
    fail(&h, "resource_exhausted", Some(PRO)).await;
    let v = structured(
        &call(
            &h,
            "generate_image",
            json!({"prompt": "a fox", "image_size": "2K"}),
        )
        .await,
    );
    let e = &v["error"];
    assert_eq!(e["code"], "RATE_LIMITED", "{v}");
    let message = e["message"].as_str().unwrap();
    assert!(
        message.contains(flash25) && message.contains("was not tried") && message.contains("2K"),
        "{message}"
    );
    assert_eq!(e["details"]["fallback_tried"], false, "{v}");
    assert_eq!(requests_by_model(&h).await, json!({PRO: TRIES}));
}

fn write_png(dir: &Path, w: u32, h: u32) -> std::path::PathBuf {
    let img = RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 90])
    });
    let p = dir.join("photo.png");
    DynamicImage::ImageRgb8(img).save(&p).unwrap();
    p
}
