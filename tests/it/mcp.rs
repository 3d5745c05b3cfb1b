//! The MCP surface through a real rmcp client over an in-memory duplex: the
//! `tools/list` contract (snapshot) and each tool's success and failure.

use std::sync::Arc;

use media_gen::app;
use media_gen::config::{Settings, Sources};
use media_gen::emulator::EmulatorHandle;
use media_gen::service::{Service, ServiceParts};
use media_gen::store::Library;
use media_gen::tools::MediaServer;
use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::RunningService;
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Value, json};

pub struct Harness {
    pub client: RunningService<RoleClient, ()>,
    pub out: std::path::PathBuf,
    pub service: Arc<Service>,
    /// The same library the service uses (to add files without a backend).
    pub library: Library,
    /// The settings the service was built from (emulator URLs included).
    pub settings: Settings,
    pub _emulator: EmulatorHandle,
    /// Stops the video job runner when the harness is dropped.
    pub _jobs: tokio_util::sync::DropGuard,
    /// The harness's own database, with MEDIA_GEN_IT_DATABASE_URL.
    pub _database: Option<TempDatabase>,
    pub _dir: tempfile::TempDir,
}

/// A database made for one harness, dropped with it.
pub struct TempDatabase {
    server: String,
    name: String,
}

impl Drop for TempDatabase {
    fn drop(&mut self) {
        let _ = std::process::Command::new("psql")
            .args([
                self.server.as_str(),
                "-qc",
                &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            ])
            .output();
    }
}

pub async fn start(extra_env: &[(&str, &str)]) -> Harness {
    start_inner(extra_env, None, false).await
}

/// A server whose backend is `url` (no emulator traffic), e.g. a dead port.
pub async fn start_with_backend_url(url: &str) -> Harness {
    start_inner(&[], Some(url), false).await
}

/// A server whose session has the HTTP transport's input policy (paths
/// only inside the output directory and `MCP_INPUT_ROOTS`).
pub async fn start_with_http_policy(extra_env: &[(&str, &str)]) -> Harness {
    start_inner(extra_env, None, true).await
}

async fn start_inner(
    extra_env: &[(&str, &str)],
    backend_url: Option<&str>,
    http_policy: bool,
) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut env: Vec<(String, String)> = vec![
        ("MCP_OUTPUT_DIR".into(), out.display().to_string()),
        ("HOME".into(), dir.path().display().to_string()),
    ];
    env.extend(
        extra_env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    // The same tests over the shared catalog: with
    // MEDIA_GEN_IT_DATABASE_URL set (a PostgreSQL server), each harness
    // gets a fresh database for its catalog, jobs and ledger (files stay
    // in the output directory, so tests can still look at them).
    let database = std::env::var("MEDIA_GEN_IT_DATABASE_URL")
        .ok()
        .map(|server| fresh_database(&server));
    if let Some((url, _)) = &database {
        env.push(("MCP_DATABASE_URL".into(), url.clone()));
    }
    let get = move |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let mut settings = Settings::load(&Sources {
        file: None,
        env: &get,
        flags: Vec::new(),
    })
    .unwrap();
    let emulator = app::attach_emulator(&mut settings.backend).await.unwrap();
    if let Some(url) = backend_url {
        settings.backend.cliproxy_url = reqwest::Url::parse(url).unwrap();
    }
    // The service from its parts, as the composition root builds it, so
    // the test keeps a handle on the library.
    let store = app::open_stores(&settings.library).await.unwrap();
    let library = store.library();
    let service = Arc::new(Service::new(ServiceParts {
        images: app::image_provider(&settings.backend),
        library: library.clone(),
        generation: settings.generation.clone(),
        results: settings.results.clone(),
        cleanup: settings.library.cleanup.clone(),
        edit: settings.edit.clone(),
        videos: app::video_access(&settings.backend),
        jobs: store.jobs.clone(),
        video: settings.video.clone(),
        spend: settings.spend.clone(),
        usage: store.usage.clone(),
        confirm: settings.confirm.clone(),
    }));
    service.load_budget().await;
    let policy = match http_policy {
        true => app::http_policy(&settings),
        false => app::stdio_policy(),
    };
    // The job runner, as `serve` starts it.
    let jobs = tokio_util::sync::CancellationToken::new();
    tokio::spawn(Arc::clone(&service).run_jobs(jobs.clone()));
    let server = MediaServer::new(
        Arc::clone(&service),
        media_gen::tools::Access {
            inputs: policy,
            file_urls: None,
        },
    );
    let service_for_test = Arc::clone(&service);
    let (server_io, client_io) = tokio::io::duplex(1 << 20);
    tokio::spawn(async move {
        if let Ok(running) = server.serve(server_io).await {
            let _ = running.waiting().await;
        }
    });
    let client = ().serve(client_io).await.unwrap();
    Harness {
        client,
        out,
        service: service_for_test,
        library,
        settings,
        _emulator: emulator,
        _jobs: jobs.drop_guard(),
        _database: database.map(|(_, db)| db),
        _dir: dir,
    }
}

/// A new database on the PostgreSQL server at `server` (a URL to any of
/// its databases, as a superuser): its URL, and the guard that drops it.
fn fresh_database(server: &str) -> (String, TempDatabase) {
    let name = format!("it_{:016x}", rand::random::<u64>());
    let made = std::process::Command::new("psql")
        .args([server, "-qc", &format!("CREATE DATABASE {name}")])
        .output()
        .expect("psql runs (Debian's postgresql-client)");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let (base, query) = match server.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (server, String::new()),
    };
    let root = base.rsplit_once('/').map_or(base, |(r, _)| r);
    let url = format!("{root}/{name}{query}");
    (
        url,
        TempDatabase {
            server: server.to_owned(),
            name,
        },
    )
}

pub async fn call(h: &Harness, name: &'static str, args: Value) -> CallToolResult {
    let Value::Object(map) = args else {
        panic!("args must be an object")
    };
    h.client
        .call_tool(CallToolRequestParams::new(name).with_arguments(map))
        .await
        .unwrap()
}

/// Structured content, checked to be mirrored as the first text block.
pub fn structured(r: &CallToolResult) -> Value {
    let v = r.structured_content.clone().expect("structured content");
    let text = r.content[0].as_text().expect("first block is text");
    assert_eq!(serde_json::from_str::<Value>(&text.text).unwrap(), v);
    v
}

#[tokio::test]
async fn tools_list_is_the_contract() {
    let h = start(&[]).await;
    let tools = h.client.list_all_tools().await.unwrap();
    let mut value = serde_json::to_value(&tools).unwrap();
    // Sort for a stable snapshot.
    value
        .as_array_mut()
        .unwrap()
        .sort_by_key(|t| t["name"].as_str().unwrap().to_owned());
    let names: Vec<&str> = value
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "delete_file",
            "edit_image",
            "extend_video",
            "generate_image",
            "generate_image_batch",
            "generate_video",
            "get_file_info",
            "get_usage",
            "get_video_status",
            "image_to_video",
            "inpaint",
            "list_generated",
            "list_models",
            "outpaint",
            "upscale"
        ]
    );
    for t in value.as_array().unwrap() {
        let name = t["name"].as_str().unwrap();
        let a = &t["annotations"];
        assert!(t["outputSchema"].is_object(), "{name} lacks outputSchema");
        assert_eq!(a["destructiveHint"], name == "delete_file", "{name}");
        let read_only = matches!(
            name,
            "list_models" | "list_generated" | "get_file_info" | "get_video_status" | "get_usage"
        );
        assert_eq!(a["readOnlyHint"], read_only, "{name}");
        let calls_backend = matches!(
            name,
            "generate_image"
                | "generate_image_batch"
                | "list_models"
                | "edit_image"
                | "inpaint"
                | "outpaint"
                | "upscale"
                | "generate_video"
                | "image_to_video"
                | "extend_video"
        );
        assert_eq!(a["openWorldHint"], calls_backend, "{name}");
    }
    insta::assert_json_snapshot!("tools_list", value);
}

#[tokio::test]
async fn generate_image_success_shape() {
    let h = start(&[]).await;
    let r = call(
        &h,
        "generate_image",
        json!({"prompt": "a lighthouse at dusk", "aspect_ratio": "16:9", "image_size": "2K"}),
    )
    .await;
    assert_eq!(r.is_error, Some(false));
    let v = structured(&r);
    assert_eq!(v["success"], true);
    let name = v["filename"].as_str().unwrap();
    assert_eq!(v["uri"], format!("media://files/{name}"));
    assert_eq!(v["image_path"], h.out.join(name).display().to_string());
    let m = &v["metadata"];
    assert_eq!(
        (m["width"].as_u64(), m["height"].as_u64()),
        (Some(2752), Some(1536))
    );
    assert_eq!(m["model"], "gemini-3-pro-image-preview");
    assert_eq!(m["aspect_ratio"], "16:9");
    assert_eq!(m["image_size"], "2K");
    assert_eq!(m["mime_type"], "image/png");
    let bytes = std::fs::read(h.out.join(name)).unwrap();
    assert_eq!(m["file_size_bytes"].as_u64(), Some(bytes.len() as u64));
    // resource_link, then a preview within budget that decodes to ≤ 512 px.
    let link = r.content[1].as_resource_link().expect("resource link");
    assert_eq!(link.uri, format!("media://files/{name}"));
    assert_eq!(link.size, Some(bytes.len() as u64));
    let img = r.content[2].as_image().expect("preview");
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(&img.data)
        .unwrap();
    assert!(raw.len() <= 100 * 1024, "{} bytes", raw.len());
    let (w, h2) = image::load_from_memory(&raw)
        .map(|i| (i.width(), i.height()))
        .unwrap();
    assert_eq!(w.max(h2), 512);
    assert!(
        !v.to_string().contains(&img.data[..64]),
        "base64 leaked into structured content"
    );
}

#[tokio::test]
async fn preview_none_and_full() {
    let h = start(&[("MCP_PREVIEW", "none")]).await;
    let r = call(&h, "generate_image", json!({"prompt": "plain"})).await;
    assert_eq!(r.content.len(), 2, "text + link only");
    let h = start(&[("MCP_PREVIEW", "full")]).await;
    let r = call(&h, "generate_image", json!({"prompt": "plain"})).await;
    let v = structured(&r);
    let img = r.content[2].as_image().unwrap();
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(&img.data)
        .unwrap();
    assert_eq!(
        raw,
        std::fs::read(v["image_path"].as_str().unwrap()).unwrap()
    );
}

/// A backend answer whose image is cut off half-way (its header reads
/// fine) is a failure: no file, no sidecar, no catalog row.
#[tokio::test]
async fn a_truncated_image_from_the_backend_is_not_saved() {
    let h = start(&[]).await;
    let r = call(
        &h,
        "generate_image",
        json!({"prompt": "half a picture [emulator:half_image]"}),
    )
    .await;
    assert_eq!(r.is_error, Some(true));
    let v = structured(&r);
    assert_eq!(v["error"]["code"], "GENERATION_FAILED", "{v}");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(message.contains("cut short"), "{message}");
    assert!(crate::support::media_files(&h.out).is_empty());
    assert_eq!(crate::support::catalog_rows(&h.out), 0);
    let sidecars = std::fs::read_dir(h.out.join("metadata"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(sidecars, 0);
}

#[tokio::test]
async fn generate_image_failures_are_tool_errors_with_codes() {
    let h = start(&[]).await;
    for (args, code) in [
        (json!({"prompt": ""}), "INVALID_PROMPT"),
        (json!({"prompt": " \n "}), "INVALID_PROMPT"),
        (
            json!({"prompt": "x", "aspect_ratio": "5:7"}),
            "INVALID_PARAMETER",
        ),
        (
            json!({"prompt": "x", "image_size": "8K"}),
            "INVALID_PARAMETER",
        ),
        (
            json!({"prompt": "x", "model": "gemini-2.5-flash-image", "image_size": "4K"}),
            "INVALID_PARAMETER",
        ),
        (json!({"prompt": "x", "model": "imagen-2"}), "INVALID_MODEL"),
        (json!({"prompt": "x [emulator:blocked]"}), "CONTENT_BLOCKED"),
        (
            json!({"prompt": "x [emulator:malformed]"}),
            "GENERATION_FAILED",
        ),
    ] {
        let r = call(&h, "generate_image", args.clone()).await;
        assert_eq!(r.is_error, Some(true), "{args}");
        let v = structured(&r);
        assert_eq!(v["success"], false);
        assert_eq!(v["error"]["code"], code, "{args}: {v}");
        assert!(!v["error"]["message"].as_str().unwrap().is_empty());
    }
    let r = call(
        &h,
        "generate_image",
        json!({"prompt": "x", "aspect_ratio": "5:7"}),
    )
    .await;
    let v = structured(&r);
    assert_eq!(v["error"]["details"]["parameter"], "aspect_ratio");
    assert!(
        v["error"]["details"]["allowed"]
            .as_array()
            .unwrap()
            .contains(&json!("21:9"))
    );
    assert!(crate::support::media_files(&h.out).is_empty());
}

/// A refused aspect ratio lists only what the chosen model makes, in the
/// message and in `details.allowed`: `7:5` on the default model never
/// suggests `1:8`, which that model would refuse too.
#[tokio::test]
async fn refused_ratio_lists_only_the_models_ratios() {
    let h = start(&[]).await;
    let pro: Vec<Value> = media_gen::domain::image_model("gemini-3-pro-image-preview")
        .unwrap()
        .aspect_ratios
        .iter()
        .map(|r| json!(r.as_str()))
        .collect();
    for asked in ["7:5", "1:8"] {
        let r = call(
            &h,
            "generate_image",
            json!({"prompt": "x", "aspect_ratio": asked}),
        )
        .await;
        let v = structured(&r);
        assert_eq!(v["error"]["code"], "INVALID_PARAMETER", "{asked}");
        assert_eq!(v["error"]["details"]["allowed"], json!(pro), "{asked}");
        assert_eq!(
            v["error"]["details"]["model"], "gemini-3-pro-image-preview",
            "{asked}"
        );
        let message = v["error"]["message"].as_str().unwrap();
        assert!(
            !message.contains("1:8,") && message.contains("21:9"),
            "{message}"
        );
    }
    // The model that makes 1:8 lists it.
    let r = call(
        &h,
        "generate_image",
        json!({"prompt": "x", "aspect_ratio": "7:5", "model": "gemini-3.1-flash-image-preview"}),
    )
    .await;
    let allowed = structured(&r)["error"]["details"]["allowed"].clone();
    assert!(
        allowed.as_array().unwrap().contains(&json!("1:8")),
        "{allowed}"
    );
    // A batch's shared ratio is checked the same way.
    let r = call(
        &h,
        "generate_image_batch",
        json!({"prompts": ["a"], "aspect_ratio": "8:1"}),
    )
    .await;
    assert_eq!(structured(&r)["error"]["details"]["allowed"], json!(pro));
}

#[tokio::test]
async fn batch_success_and_partial_failure() {
    let h = start(&[]).await;
    let r = call(
        &h,
        "generate_image_batch",
        json!({"prompts": ["a", "b", "c"], "aspect_ratio": "9:16"}),
    )
    .await;
    let v = structured(&r);
    assert_eq!(
        (
            v["success"].as_bool(),
            v["succeeded"].as_u64(),
            v["failed"].as_u64()
        ),
        (Some(true), Some(3), Some(0))
    );
    let prompts: Vec<&str> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["metadata"]["prompt"].as_str().unwrap())
        .collect();
    assert_eq!(prompts, ["a", "b", "c"]);
    // text + (link + preview) per image
    assert_eq!(r.content.len(), 1 + 3 * 2);

    let r = call(
        &h,
        "generate_image_batch",
        json!({"prompts": ["ok", "no [emulator:blocked]"]}),
    )
    .await;
    assert_eq!(r.is_error, Some(false));
    let v = structured(&r);
    assert_eq!(
        (
            v["succeeded"].as_u64(),
            v["failed"].as_u64(),
            v["success"].as_bool()
        ),
        (Some(1), Some(1), Some(false))
    );
    assert_eq!(v["results"][1]["error"]["code"], "CONTENT_BLOCKED");

    for (args, code) in [
        (json!({"prompts": []}), "INVALID_PARAMETER"),
        (
            json!({"prompts": ["a"], "aspect_ratio": "2:1"}),
            "INVALID_PARAMETER",
        ),
    ] {
        let r = call(&h, "generate_image_batch", args).await;
        assert_eq!(r.is_error, Some(true));
        assert_eq!(structured(&r)["error"]["code"], code);
    }
    let r = call(&h, "generate_image_batch", json!({"prompts": ["", " "]})).await;
    assert_eq!(r.is_error, Some(true), "nothing was made");
    assert_eq!(
        structured(&r)["results"][0]["error"]["code"],
        "INVALID_PROMPT"
    );
}

#[tokio::test]
async fn cancelled_call_aborts_the_backend_request_and_writes_nothing() {
    use rmcp::model::{ClientRequest, Request};
    use rmcp::service::PeerRequestOptions;
    let h = start(&[]).await;
    let stats_url = format!("{}/emulator/stats", h._emulator.base_url());
    let in_flight = || async {
        reqwest::get(&stats_url)
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()["in_flight"]
            .as_u64()
            .unwrap()
    };
    let Value::Object(args) = json!({"prompt": "never finishes [emulator:slow]"}) else {
        unreachable!()
    };
    let handle = h
        .client
        .send_cancellable_request(
            ClientRequest::CallToolRequest(Request::new(
                CallToolRequestParams::new("generate_image").with_arguments(args),
            )),
            PeerRequestOptions::no_options(),
        )
        .await
        .unwrap();
    // Wait until the backend call is really under way.
    let mut waited = 0;
    while in_flight().await == 0 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        waited += 1;
        assert!(waited < 250, "the backend never saw the request");
    }
    handle
        .cancel(Some("user pressed stop".into()))
        .await
        .unwrap();
    let mut waited = 0;
    while in_flight().await != 0 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        waited += 1;
        assert!(waited < 250, "the backend request was not aborted");
    }
    // The server still answers, and nothing was written.
    let r = call(&h, "generate_image", json!({"prompt": ""})).await;
    assert_eq!(structured(&r)["error"]["code"], "INVALID_PROMPT");
    assert!(crate::support::media_files(&h.out).is_empty());
}

async fn tool_names(h: &Harness) -> Vec<String> {
    let tools = h.client.list_all_tools().await.unwrap();
    tools.into_iter().map(|t| t.name.into_owned()).collect()
}

/// The product server carries none of the conformance fixture (which is a
/// separate binary): no prompts, no `test_*` tools, no `test://` resources,
/// no tasks extension — and the product binary holds none of its code.
#[tokio::test]
async fn the_product_has_no_conformance_fixture() {
    use rmcp::model::ReadResourceRequestParams;

    let plain = start(&[]).await;
    let err = plain.client.list_prompts(None).await.unwrap_err();
    assert!(
        err.to_string().contains("-32601")
            || err.to_string().to_lowercase().contains("method not found"),
        "{err}"
    );
    let err = plain
        .client
        .read_resource(ReadResourceRequestParams::new("test://static-text"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("media://files/"), "{err}");
    let tasks = plain.client.peer_info().is_some_and(|i| {
        i.capabilities
            .extensions
            .as_ref()
            .is_some_and(|e| e.contains_key(rmcp::model::TASKS_EXTENSION_ID))
    });
    // The product's own tasks are its video jobs; the fixture's are not there.
    assert!(tasks, "the product offers its video calls as tasks");
    let names = tool_names(&plain).await;
    assert!(names.iter().all(|n| !n.starts_with("test_")), "{names:?}");
    // grep: a debug binary is a few hundred MB, too slow to scan in a debug test.
    for needle in [
        "test_simple_text",
        "json_schema_2020_12_tool",
        "test://static-text",
    ] {
        let found = std::process::Command::new("grep")
            .args(["-qaF", needle, env!("CARGO_BIN_EXE_media-gen")])
            .status()
            .unwrap();
        assert_eq!(
            found.code(),
            Some(1),
            "the product binary contains `{needle}`"
        );
    }
}

/// A session's background work (the list_changed watcher started at
/// `initialized`) ends with the session, even when the library never changes
/// again: a long-running HTTP server must not collect one task per session.
#[tokio::test]
async fn closed_sessions_leave_no_tasks_behind() {
    let h = start(&[]).await;
    let metrics = tokio::runtime::Handle::current().metrics();
    let mut before = 0;
    // Round 0 warms up what lives once per process, then is the baseline.
    for round in 0..6 {
        if round == 1 {
            before = metrics.num_alive_tasks();
        }
        let server = MediaServer::new(Arc::clone(&h.service), app::stdio_access());
        let (server_io, client_io) = tokio::io::duplex(1 << 16);
        let serving = tokio::spawn(async move {
            if let Ok(running) = server.serve(server_io).await {
                let _ = running.waiting().await;
            }
        });
        let client = ().serve(client_io).await.unwrap();
        client.list_all_tools().await.unwrap();
        client.cancel().await.unwrap();
        serving.await.unwrap();
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while metrics.num_alive_tasks() > before && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        metrics.num_alive_tasks(),
        before,
        "tasks outlived their sessions"
    );
}

/// However many calls arrive together, no more generations reach the
/// backend at once than `MCP_GENERATION_CONCURRENCY`; the rest wait their
/// turn and still succeed.
#[tokio::test]
async fn generations_reach_the_backend_only_as_fast_as_they_are_admitted() {
    let h = start(&[
        ("MCP_GENERATION_CONCURRENCY", "2"),
        ("MCP_BATCH_CONCURRENCY", "6"),
    ])
    .await;
    let r = reqwest::Client::new()
        .post(format!("{}/emulator/control", h._emulator.base_url()))
        .json(&json!({"latency_ms": 300}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let prompts: Vec<String> = (0..6).map(|i| format!("a lantern, number {i}")).collect();
    let (batch, single) = tokio::join!(
        call(
            &h,
            "generate_image_batch",
            json!({"prompts": prompts, "image_size": "1K"})
        ),
        call(&h, "generate_image", json!({"prompt": "one more lantern"})),
    );
    assert_eq!(structured(&batch)["succeeded"], 6, "{batch:?}");
    assert_eq!(single.is_error, Some(false), "{single:?}");
    let stats = crate::support::emulator_stats(&h._emulator).await;
    assert_eq!(stats["generate_requests"], 7);
    assert_eq!(stats["most_in_flight"], 2, "{stats}");
}

/// A client that declared no elicitation, with `MCP_CONFIRM_ABOVE_USD` set:
/// calls above it fail with `CONFIRMATION_REQUIRED` and the estimate before
/// any backend request; `confirm_cost: true` goes through; a free local
/// upscale and a call under the threshold never ask.
#[tokio::test]
async fn calls_above_the_threshold_need_confirm_cost_when_the_client_cannot_ask() {
    let h = start(&[("MCP_CONFIRM_ABOVE_USD", "0.05")]).await;
    let stats = || crate::support::emulator_stats(&h._emulator);
    let r = call(
        &h,
        "generate_image",
        json!({"prompt": "a lighthouse", "image_size": "4K"}),
    )
    .await;
    assert_eq!(r.is_error, Some(true));
    let err = &structured(&r)["error"];
    assert_eq!(err["code"], "CONFIRMATION_REQUIRED");
    assert_eq!(err["details"]["reason"], "cannot_ask");
    assert_eq!(err["details"]["model"], "gemini-3-pro-image-preview");
    assert_eq!(err["details"]["what"], "1 image at 4K");
    assert_eq!(err["details"]["confirm_above_usd"], 0.05);
    assert!(err["details"]["estimated_cost_usd"].as_f64().unwrap() > 0.05);
    let message = err["message"].as_str().unwrap();
    assert!(message.contains("`confirm_cost: true`"), "{message}");
    // A video is refused before any job exists.
    let v = call(&h, "generate_video", json!({"prompt": "waves"})).await;
    assert_eq!(structured(&v)["error"]["code"], "CONFIRMATION_REQUIRED");
    assert_eq!(
        structured(&v)["error"]["details"]["what"],
        "6 s of video at 720p"
    );
    // A bad model is refused as the call would refuse it, not asked about.
    let bad = call(
        &h,
        "generate_image",
        json!({"prompt": "x", "model": "dall-e-3"}),
    )
    .await;
    assert_eq!(structured(&bad)["error"]["code"], "INVALID_MODEL");
    let s = stats().await;
    assert_eq!(
        (s["generate_requests"].as_u64(), s["video_submits"].as_u64()),
        (Some(0), Some(0))
    );

    let ok = call(
        &h,
        "generate_image",
        json!({"prompt": "a lighthouse", "confirm_cost": true}),
    )
    .await;
    assert_eq!(ok.is_error, Some(false), "{:?}", structured(&ok));
    let name = structured(&ok)["filename"].as_str().unwrap().to_owned();
    // 2.5 Flash at 1K is under $0.05: no question.
    let flash = call(
        &h,
        "generate_image",
        json!({"prompt": "x", "model": "gemini-2.5-flash-image"}),
    )
    .await;
    assert_eq!(flash.is_error, Some(false), "{:?}", structured(&flash));
    let local = call(&h, "upscale", json!({"image_path": name})).await;
    assert_eq!(local.is_error, Some(false), "{:?}", structured(&local));
    let by_model = call(
        &h,
        "upscale",
        json!({"image_path": name, "method": "model"}),
    )
    .await;
    assert_eq!(
        structured(&by_model)["error"]["code"],
        "CONFIRMATION_REQUIRED"
    );
    assert_eq!(stats().await["generate_requests"], 2);
}
