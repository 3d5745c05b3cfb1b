//! What calls cost: `cost_usd` on every file (results, sidecars, listings),
//! the usage ledger and `get_usage`, budgets that refuse a call before any
//! backend request, and `media-gen usage`.

use serde_json::{Value, json};

use crate::mcp::{Harness, call, start, structured};
use crate::support::emulator_stats;

/// The default image model's 1K price in the table.
const PRO_1K: f64 = 0.134;

async fn generate_requests(h: &Harness) -> Value {
    emulator_stats(&h._emulator).await["generate_requests"].clone()
}

fn sidecar(h: &Harness, name: &str) -> Value {
    let text =
        std::fs::read_to_string(h.out.join("metadata").join(format!("{name}.json"))).unwrap();
    serde_json::from_str(&text).unwrap()
}

async fn listed(h: &Harness, name: &str) -> Value {
    let list = structured(&call(h, "list_generated", json!({"limit": 100})).await);
    list["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["filename"] == name)
        .unwrap_or_else(|| panic!("{name} not listed: {list}"))
        .clone()
}

/// A generated image's result, sidecar, listing and file info carry the
/// same estimate; a local upscale costs 0; a file added by hand has no
/// cost at all (unknown, not 0).
#[tokio::test]
async fn every_file_carries_its_estimated_cost() {
    let h = start(&[]).await;
    let made = structured(&call(&h, "generate_image", json!({"prompt": "a lighthouse"})).await);
    let name = made["filename"].as_str().unwrap().to_owned();
    assert_eq!(made["metadata"]["cost_usd"], json!(PRO_1K), "{made}");
    assert_eq!(sidecar(&h, &name)["cost_usd"], json!(PRO_1K));
    assert_eq!(listed(&h, &name).await["cost_usd"], json!(PRO_1K));
    let info = structured(&call(&h, "get_file_info", json!({"filename": name})).await);
    assert_eq!(info["metadata"]["cost_usd"], json!(PRO_1K));

    // Another model and size: its own price.
    let flash = structured(
        &call(
            &h,
            "generate_image",
            json!({"prompt": "a kite", "model": "gemini-3.1-flash-image-preview", "image_size": "512"}),
        )
        .await,
    );
    assert_eq!(flash["metadata"]["cost_usd"], json!(0.045));

    // A local upscale makes no backend call: it costs 0.
    let up = structured(&call(&h, "upscale", json!({"image_path": name})).await);
    let up_name = up["filename"].as_str().unwrap().to_owned();
    assert_eq!(up["metadata"]["cost_usd"], json!(0.0), "{up}");
    assert_eq!(listed(&h, &up_name).await["cost_usd"], json!(0.0));
    // An edit costs what its model call costs.
    let edited = structured(
        &call(
            &h,
            "edit_image",
            json!({"image_path": name, "prompt": "at night"}),
        )
        .await,
    );
    assert_eq!(edited["metadata"]["cost_usd"], json!(PRO_1K), "{edited}");

    // A file copied in by hand and catalogued by reconcile: cost unknown.
    std::fs::copy(h.out.join(&name), h.out.join("holiday.png")).unwrap();
    let report = h
        .library
        .reconcile(std::time::Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(report.added, 1);
    let hand = listed(&h, "holiday.png").await;
    assert!(hand.get("cost_usd").is_none(), "{hand}");
    let info = structured(&call(&h, "get_file_info", json!({"filename": "holiday.png"})).await);
    assert!(info["metadata"].get("cost_usd").is_none(), "{info}");
    assert!(sidecar(&h, "holiday.png").get("cost_usd").is_none());
}

/// `list_models` shows each model's price, dated.
#[tokio::test]
async fn list_models_shows_prices() {
    let h = start(&[]).await;
    let v = structured(&call(&h, "list_models", json!({})).await);
    let model = |id: &str| {
        v["models"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["id"] == id)
            .unwrap()
            .clone()
    };
    let pro = model("gemini-3-pro-image-preview");
    assert_eq!(
        pro["price"]["per_image_usd"],
        json!({"1K": 0.134, "2K": 0.134, "4K": 0.24})
    );
    assert_eq!(pro["price"]["checked"], media_gen::domain::PRICES_CHECKED);
    assert_eq!(pro["price"]["configured"], false);
    let veo = model("veo-3.1-generate-preview");
    assert_eq!(
        veo["price"]["per_second_usd"],
        json!({"720p": 0.4, "1080p": 0.4, "4k": 0.6})
    );
    assert!(model("grok-imagine-video").get("price").is_none());
}

/// A call whose estimate would pass the daily cap fails with
/// BUDGET_EXCEEDED and reaches no backend; a batch that would cross it is
/// refused whole; a batch within it runs.
#[tokio::test]
async fn budgets_refuse_before_any_backend_request() {
    let h = start(&[("MCP_BUDGET_DAILY_USD", "0.5")]).await;
    let ok = structured(&call(&h, "generate_image", json!({"prompt": "one"})).await);
    assert_eq!(ok["success"], true);
    let before = generate_requests(&h).await;
    // 0.134 spent; a 4K image (0.24) fits, three prompts (0.402) do not.
    let r = call(
        &h,
        "generate_image_batch",
        json!({"prompts": ["a", "b", "c"]}),
    )
    .await;
    let v = structured(&r);
    assert_eq!(r.is_error, Some(true), "{v}");
    assert_eq!(v["error"]["code"], "BUDGET_EXCEEDED", "{v}");
    let message = v["error"]["message"].as_str().unwrap();
    for part in [
        "$0.13 spent today",
        "$0.50",
        "MCP_BUDGET_DAILY_USD",
        "budget_daily_usd",
        "$0.40",
    ] {
        assert!(message.contains(part), "{part}: {message}");
    }
    assert_eq!(v["error"]["details"]["cap_usd"], json!(0.5));
    assert_eq!(v["error"]["details"]["spent_usd"], json!(PRO_1K));
    assert_eq!(generate_requests(&h).await, before, "no backend request");

    let two = structured(&call(&h, "generate_image_batch", json!({"prompts": ["a", "b"]})).await);
    assert_eq!(two["succeeded"], 2, "{two}");
    // 0.402 spent: a single 1K image (0.134) passes the cap now.
    let before = generate_requests(&h).await;
    let v = structured(&call(&h, "generate_image", json!({"prompt": "four"})).await);
    assert_eq!(v["error"]["code"], "BUDGET_EXCEEDED", "{v}");
    let v = structured(
        &call(
            &h,
            "edit_image",
            json!({"image_path": ok["filename"], "prompt": "x"}),
        )
        .await,
    );
    assert_eq!(v["error"]["code"], "BUDGET_EXCEEDED", "{v}");
    assert_eq!(generate_requests(&h).await, before, "no backend request");
    // A local upscale costs nothing and still works.
    let up = structured(&call(&h, "upscale", json!({"image_path": ok["filename"]})).await);
    assert_eq!(up["success"], true, "{up}");
    // The service check the confirmation step uses agrees, reserving nothing.
    assert!(h.service.check_budget(0.09).is_ok());
    assert!(h.service.check_budget(0.1).is_err());
    assert!(h.service.check_budget(0.09).is_ok(), "nothing was reserved");
}

/// One ledger row per backend call: successes count their estimate, a
/// blocked and a refused call count 0; `get_usage` sums them.
#[tokio::test]
async fn the_ledger_records_successes_and_failures() {
    let h = start(&[("MCP_BUDGET_MONTHLY_USD", "100")]).await;
    structured(&call(&h, "generate_image", json!({"prompt": "ok"})).await);
    let blocked = structured(
        &call(
            &h,
            "generate_image",
            json!({"prompt": "x [emulator:blocked]"}),
        )
        .await,
    );
    assert_eq!(blocked["error"]["code"], "CONTENT_BLOCKED");
    let auth =
        structured(&call(&h, "generate_image", json!({"prompt": "x [emulator:auth]"})).await);
    assert_eq!(auth["error"]["code"], "AUTH_FAILED");
    structured(
        &call(
            &h,
            "generate_image",
            json!({"prompt": "big", "image_size": "4K"}),
        )
        .await,
    );
    let u = structured(&call(&h, "get_usage", json!({})).await);
    assert_eq!(u["success"], true);
    assert_eq!(u["calls"], 4, "{u}");
    assert_eq!(u["images"], 2);
    assert_eq!(
        (u["blocked"].clone(), u["failed"].clone()),
        (json!(1), json!(1))
    );
    assert_eq!(u["total_usd"], json!(0.374));
    assert_eq!(
        u["by_model"],
        json!([{"model": "gemini-3-pro-image-preview", "count": 2, "usd": 0.374, "calls": 4}])
    );
    let today = chrono::Utc::now().date_naive().to_string();
    assert_eq!(
        u["by_day"],
        json!([{"date": today, "count": 2, "usd": 0.374}])
    );
    assert_eq!(
        u["budget"],
        json!({"daily_usd": null, "monthly_usd": 100.0, "spent_today": 0.374, "spent_month": 0.374})
    );
    // A period without calls, and bad dates.
    let empty = structured(
        &call(
            &h,
            "get_usage",
            json!({"since": "2020-01-01", "until": "2020-01-31"}),
        )
        .await,
    );
    assert_eq!(
        (empty["calls"].clone(), empty["total_usd"].clone()),
        (json!(0), json!(0.0))
    );
    assert_eq!(empty["since"], "2020-01-01T00:00:00.000Z");
    assert_eq!(
        empty["until"], "2020-02-01T00:00:00.000Z",
        "a date means through that day"
    );
    let bad = structured(&call(&h, "get_usage", json!({"since": "last week"})).await);
    assert_eq!(bad["error"]["code"], "INVALID_PARAMETER");
}

/// `media-gen usage --json` is the `get_usage` result; the table names
/// the model and the total.
#[test]
fn usage_from_the_shell() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        crate::support::bin_in(dir.path())
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    };
    let made = run(&["generate", "a lighthouse", "--emulator"]);
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let out = run(&["usage", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (v["images"].clone(), v["total_usd"].clone()),
        (json!(1), json!(PRO_1K))
    );
    assert_eq!(v["by_model"][0]["model"], "gemini-3-pro-image-preview");
    let table = String::from_utf8(run(&["usage"]).stdout).unwrap();
    assert!(table.contains("gemini-3-pro-image-preview"), "{table}");
    assert!(table.contains("total $0.13"), "{table}");
    assert!(
        !table.contains('█'),
        "no bars when stdout is not a terminal: {table}"
    );
    let bad = run(&["usage", "--since", "yesterday"]);
    // A bad parameter is a usage error (exit status 2), naming it.
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("`since`"));
}

/// A video job: its estimate is in the start result and held against the
/// budget at submission; the finished video's metadata carries its cost;
/// a blocked job and a download that fails settle as the ledger says; a
/// job that would pass the cap is refused before any submission.
#[tokio::test]
async fn video_jobs_are_priced_reserved_and_settled() {
    let h = start(&[
        ("MCP_VIDEO_POLL_INTERVAL", "0.05"),
        ("MCP_REQUEST_TIMEOUT", "2"),
        ("MCP_BUDGET_DAILY_USD", "5"),
    ])
    .await;
    let h = &h;
    let wait = |id: Value| async move {
        let r = call(
            h,
            "get_video_status",
            json!({"job_id": id, "wait_seconds": 60}),
        )
        .await;
        structured(&r)
    };
    // Veo 3.1 at 720p: $0.40/s; "5s" is made as 6 s.
    let started = structured(
        &call(
            h,
            "generate_video",
            json!({"prompt": "a paper boat", "duration": "5s"}),
        )
        .await,
    );
    assert_eq!(started["estimated_cost_usd"], json!(2.4), "{started}");
    let done = wait(started["job_id"].clone()).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["metadata"]["cost_usd"], json!(2.4), "{done}");
    let name = done["filename"].as_str().unwrap().to_owned();
    assert_eq!(sidecar(h, &name)["cost_usd"], json!(2.4));
    assert_eq!(listed(h, &name).await["cost_usd"], json!(2.4));

    // Blocked by safety: recorded, not counted.
    let blocked = structured(
        &call(
            h,
            "generate_video",
            json!({"prompt": "x [emulator:blocked]", "duration": "4s"}),
        )
        .await,
    );
    let ended = wait(blocked["job_id"].clone()).await;
    assert_eq!(ended["error"]["code"], "CONTENT_BLOCKED", "{ended}");

    // 2.4 spent: 8 s (3.20) would pass the $5 cap; nothing is submitted.
    let submits = emulator_stats(&h._emulator).await["video_submits"].clone();
    let v = structured(
        &call(
            h,
            "generate_video",
            json!({"prompt": "a storm", "duration": "8s"}),
        )
        .await,
    );
    assert_eq!(v["error"]["code"], "BUDGET_EXCEEDED", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("$2.40 spent today"),
        "{v}"
    );
    assert_eq!(emulator_stats(&h._emulator).await["video_submits"], submits);

    let u = structured(&call(h, "get_usage", json!({})).await);
    assert_eq!(
        (
            u["videos"].clone(),
            u["blocked"].clone(),
            u["running"].clone(),
            u["total_usd"].clone()
        ),
        (json!(1), json!(1), json!(0), json!(2.4)),
        "{u}"
    );
    // A running job holds its estimate: 4 s (1.60) fits, and then nothing more.
    let slow = structured(
        &call(
            h,
            "generate_video",
            json!({"prompt": "x [emulator:never_finishes]", "duration": "4s"}),
        )
        .await,
    );
    assert_eq!(slow["estimated_cost_usd"], json!(1.6), "{slow}");
    let u = structured(&call(h, "get_usage", json!({})).await);
    assert_eq!(
        (u["running"].clone(), u["total_usd"].clone()),
        (json!(1), json!(4.0)),
        "{u}"
    );
    let v = structured(
        &call(
            h,
            "generate_video",
            json!({"prompt": "more", "duration": "4s"}),
        )
        .await,
    );
    assert_eq!(v["error"]["code"], "BUDGET_EXCEEDED", "{v}");
}

/// Calls made at the same time hold their estimates: together they never
/// pass the cap, and the refused ones reach no backend.
#[tokio::test]
async fn concurrent_calls_cannot_overshoot_the_cap_together() {
    let h = start(&[("MCP_BUDGET_DAILY_USD", "0.5")]).await;
    let before = generate_requests(&h).await.as_u64().unwrap();
    let calls = (0..8).map(|i| {
        let h = &h;
        async move {
            structured(&call(h, "generate_image", json!({"prompt": format!("kite {i}")})).await)
        }
    });
    let results = futures::future::join_all(calls).await;
    let made = results.iter().filter(|v| v["success"] == true).count();
    let refused = results
        .iter()
        .filter(|v| v["error"]["code"] == "BUDGET_EXCEEDED")
        .count();
    // 3 × 0.134 = 0.402 fits under 0.50; a fourth would not.
    assert_eq!((made, refused), (3, 5), "{results:?}");
    assert_eq!(generate_requests(&h).await.as_u64().unwrap() - before, 3);
    let u = structured(&call(&h, "get_usage", json!({})).await);
    assert_eq!(u["budget"]["spent_today"], json!(0.402));
}

/// Two processes on one library (two services over one directory, as
/// replicas share one database): each holds its estimates in the shared
/// ledger, so calls spread over both still never pass the cap together.
#[tokio::test]
async fn calls_spread_over_two_processes_cannot_overshoot_the_cap_together() {
    use media_gen::service::{GenerateInput, InputPolicy};
    let h = start(&[("MCP_BUDGET_DAILY_USD", "0.5")]).await;
    let other = media_gen::app::build_service_anywhere(&h.settings)
        .await
        .unwrap();
    let before = generate_requests(&h).await.as_u64().unwrap();
    let policy = InputPolicy::any_path(None);
    let never = tokio_util::sync::CancellationToken::new();
    let calls = (0..8).map(|i| {
        let service = if i % 2 == 0 { &h.service } else { &other };
        let input = GenerateInput {
            prompt: format!("kite {i}"),
            ..GenerateInput::default()
        };
        let (policy, never) = (&policy, &never);
        async move { service.generate_image(&input, policy, never).await }
    });
    let results = futures::future::join_all(calls).await;
    let made = results.iter().filter(|r| r.is_ok()).count();
    let refused = results
        .iter()
        .filter(|r| matches!(r, Err(e) if e.code().as_str() == "BUDGET_EXCEEDED"))
        .count();
    // 3 × 0.134 = 0.402 fits under 0.50; a fourth would not, whichever
    // process it reaches.
    assert_eq!((made, refused), (3, 5));
    assert_eq!(generate_requests(&h).await.as_u64().unwrap() - before, 3);
}
