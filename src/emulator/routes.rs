//! HTTP routes of the emulator, in CLIProxyAPI's and Google's shapes.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State as AxState};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use serde::Deserialize;
use serde_json::{Value, json};

use super::operations::{self, Operations};
use super::{EmulatorOptions, Shared, render_png};
use crate::domain::{self, AspectRatio, ImageSize};

/// The ways the emulator can be told to fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailMode {
    /// 429 with `Retry-After` and CLIProxyAPI's `model_cooldown` body.
    RateLimit,
    /// 429 without `Retry-After`: Google's `RESOURCE_EXHAUSTED` body, passed
    /// through by CLIProxyAPI as the upstream sent it (no `RetryInfo`).
    ResourceExhausted,
    /// 500.
    ServerError,
    /// 503: CLIProxyAPI's `auth_not_found` (no account logged in); on the
    /// Gemini API's native routes, Google's `UNAVAILABLE` (overloaded).
    Unavailable,
    /// Never answers in a useful time (600 s).
    Slow,
    /// A 200 whose JSON body stops half-way (a video submission's too).
    Truncated,
    /// A 200 whose body is not JSON.
    Malformed,
    /// A 200 whose image is only the first half of the PNG (valid base64).
    HalfImage,
    /// A 200 that announces its whole length, sends half of the body and
    /// drops the connection (a proxy or network failing mid-answer).
    Broken,
    /// A safety stop: no image, `image_safety`.
    Blocked,
    /// A blocked prompt: `"choices": []` (Gemini: `promptFeedback.blockReason`).
    EmptyChoices,
    /// Text but no image.
    NoImage,
    /// 401 `Invalid API key`.
    Auth,
    /// 401 whose message repeats the credentials the request carried
    /// (`Authorization: Bearer …` or `x-goog-api-key: …`), as careless
    /// proxies do: what the client must never pass on.
    EchoAuth,
    /// 403 `PERMISSION_DENIED`.
    Forbidden,
    /// 400 `model_not_found`.
    UnknownModel,
    /// Not a failure: the answer holds a "thought" draft image first, then
    /// the final one (as Gemini's thinking models answer).
    Drafts,
    /// Video: the operation ends with `error{code,message}`.
    OperationFailed,
    /// Video: the operation never finishes.
    NeverFinishes,
    /// Video: the operation finishes, but its sample cannot be downloaded (500).
    DownloadError,
    /// Video: the operation finishes with a sample that has already expired.
    Expired,
}

impl FailMode {
    fn parse(s: &str) -> Option<Self> {
        serde_json::from_value(Value::String(s.trim().to_owned())).ok()
    }
}

#[derive(Debug, Default)]
struct Control {
    fail: Option<FailMode>,
    /// Fail only requests for this model (None = any model); requests for
    /// other models are served and do not count against `times`.
    model: Option<String>,
    /// Fail this many more requests (None = all).
    times: Option<u64>,
    latency: Option<Duration>,
    retry_after: Option<u64>,
}

/// Recently rendered images, newest first: (request key, PNG as base64).
type ImageCache = Mutex<VecDeque<(Vec<u8>, std::sync::Arc<String>)>>;

pub struct State {
    opts: EmulatorOptions,
    control: Mutex<Control>,
    pub(super) requests: AtomicU64,
    generate_requests: AtomicU64,
    /// Image generation requests per model (those with a known key).
    generate_by_model: Mutex<BTreeMap<String, u64>>,
    models_requests: AtomicU64,
    /// Generation requests being handled right now (a client that goes
    /// away cancels its request, and this drops).
    in_flight: AtomicU64,
    /// The most generation requests handled at once since the last reset.
    most_in_flight: AtomicU64,
    /// Recently rendered images: (key, png).
    cache: ImageCache,
    /// Input images the last generation request carried.
    last_images: AtomicU64,
    /// Video operations.
    pub(super) videos: Operations,
    /// Polls a new video operation takes to finish.
    pub(super) video_polls: AtomicU64,
    pub(super) video_submits: AtomicU64,
    pub(super) video_polls_served: AtomicU64,
    pub(super) video_downloads: AtomicU64,
}

/// The emulator's routes, for embedding or for [`super::start`].
pub fn router(opts: EmulatorOptions) -> axum::Router {
    let state: Shared = std::sync::Arc::new(State {
        opts,
        control: Mutex::new(Control::default()),
        requests: AtomicU64::new(0),
        generate_requests: AtomicU64::new(0),
        generate_by_model: Mutex::new(BTreeMap::new()),
        models_requests: AtomicU64::new(0),
        in_flight: AtomicU64::new(0),
        most_in_flight: AtomicU64::new(0),
        cache: Mutex::new(VecDeque::new()),
        last_images: AtomicU64::new(0),
        videos: Operations::default(),
        video_polls: AtomicU64::new(u64::from(operations::DEFAULT_POLLS)),
        video_submits: AtomicU64::new(0),
        video_polls_served: AtomicU64::new(0),
        video_downloads: AtomicU64::new(0),
    });
    axum::Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/v1/models", get(openai_models))
        .route("/v1beta/models", get(gemini_models))
        .route("/v1/chat/completions", post(chat_completions))
        .route(
            "/v1beta/models/{*rest}",
            post(generate_content).get(model_get),
        )
        // The Gemini API's stable version serves generateContent too, and
        // google-genai clients set to `v1` (as nanobanana-mcp-server is)
        // call it there.
        .route("/v1/models/{*rest}", post(generate_content))
        .route("/v1beta/files/{*file}", get(operations::download))
        .route("/emulator/blobs/{id}", get(operations::blob))
        .route("/openai/v1/videos", post(operations::openai_create))
        .route("/openai/v1/videos/{*rest}", get(operations::openai_get))
        .route("/emulator/control", post(control))
        .route("/emulator/stats", get(stats))
        .route("/emulator/reset", post(reset))
        .layer(axum::extract::DefaultBodyLimit::max(64 << 20))
        .with_state(state)
}

#[derive(Deserialize)]
struct ControlBody {
    #[serde(default)]
    fail: Option<String>,
    /// Fail only requests for this model (e.g. rate limit one model while
    /// another answers).
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    times: Option<u64>,
    #[serde(default)]
    latency_ms: Option<u64>,
    #[serde(default)]
    retry_after: Option<u64>,
    /// Polls video operations take to finish (those under way too).
    #[serde(default)]
    video_polls: Option<u32>,
    /// Expire every finished video sample (as two days passing would).
    #[serde(default)]
    expire_samples: bool,
}

async fn control(AxState(s): AxState<Shared>, Json(body): Json<ControlBody>) -> Response {
    let fail = match body.fail.as_deref() {
        None | Some("") | Some("none") => None,
        Some(m) => match FailMode::parse(m) {
            Some(f) => Some(f),
            None => {
                return (
                    StatusCode::BAD_REQUEST,
                    Json(json!({"error": format!("unknown fail mode `{m}`")})),
                )
                    .into_response();
            }
        },
    };
    if let Ok(mut c) = s.control.lock() {
        c.fail = fail;
        c.model = body
            .model
            .map(|m| m.trim().to_owned())
            .filter(|m| !m.is_empty());
        c.times = body.times;
        c.latency = body.latency_ms.map(Duration::from_millis);
        c.retry_after = body.retry_after;
    }
    if let Some(n) = body.video_polls {
        s.video_polls.store(u64::from(n), Ordering::SeqCst);
        s.videos.finish_after(n);
    }
    if body.expire_samples {
        s.videos.expire_all();
    }
    Json(json!({"ok": true})).into_response()
}

async fn stats(AxState(s): AxState<Shared>) -> Json<Value> {
    Json(json!({
        "requests": s.requests.load(Ordering::SeqCst),
        "generate_requests": s.generate_requests.load(Ordering::SeqCst),
        "generate_requests_by_model": s.generate_by_model.lock().map(|m| json!(*m)).unwrap_or_default(),
        "models_requests": s.models_requests.load(Ordering::SeqCst),
        "in_flight": s.in_flight.load(Ordering::SeqCst),
        "most_in_flight": s.most_in_flight.load(Ordering::SeqCst),
        "last_request_images": s.last_images.load(Ordering::SeqCst),
        "video_submits": s.video_submits.load(Ordering::SeqCst),
        "video_polls": s.video_polls_served.load(Ordering::SeqCst),
        "video_downloads": s.video_downloads.load(Ordering::SeqCst),
        "last_video_request": s.videos.last_request(),
    }))
}

async fn reset(AxState(s): AxState<Shared>) -> Json<Value> {
    if let Ok(mut c) = s.control.lock() {
        *c = Control::default();
    }
    s.requests.store(0, Ordering::SeqCst);
    s.generate_requests.store(0, Ordering::SeqCst);
    if let Ok(mut m) = s.generate_by_model.lock() {
        m.clear();
    }
    s.models_requests.store(0, Ordering::SeqCst);
    s.most_in_flight
        .store(s.in_flight.load(Ordering::SeqCst), Ordering::SeqCst);
    s.video_submits.store(0, Ordering::SeqCst);
    s.video_polls_served.store(0, Ordering::SeqCst);
    s.video_downloads.store(0, Ordering::SeqCst);
    s.videos.clear();
    s.video_polls
        .store(u64::from(operations::DEFAULT_POLLS), Ordering::SeqCst);
    Json(json!({"ok": true}))
}

#[derive(Deserialize, Default)]
pub(super) struct KeyQuery {
    #[serde(default)]
    key: Option<String>,
}

/// Counts a request and checks its key: the rejection, if any.
pub(super) fn admit(s: &State, headers: &HeaderMap, query: &KeyQuery) -> Option<Response> {
    s.requests.fetch_add(1, Ordering::SeqCst);
    check_key(s, headers, query)
}

/// The rejection when the key is missing or wrong (CLIProxyAPI's answers).
pub(super) fn check_key(s: &State, headers: &HeaderMap, query: &KeyQuery) -> Option<Response> {
    let want = s.opts.api_key.as_ref()?;
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let other = ["x-goog-api-key", "x-api-key"]
        .iter()
        .find_map(|h| headers.get(*h).and_then(|v| v.to_str().ok()));
    let error = match bearer.or(other).or(query.key.as_deref()) {
        Some(k) if k == want => return None,
        None => "Missing API key",
        Some(_) => "Invalid API key",
    };
    Some((StatusCode::UNAUTHORIZED, Json(json!({ "error": error }))).into_response())
}

async fn openai_models(
    AxState(s): AxState<Shared>,
    headers: HeaderMap,
    Query(q): Query<KeyQuery>,
) -> Response {
    s.requests.fetch_add(1, Ordering::SeqCst);
    s.models_requests.fetch_add(1, Ordering::SeqCst);
    if let Some(r) = check_key(&s, &headers, &q) {
        return r;
    }
    // CLIProxyAPI lists every model its accounts serve: the image models,
    // and its video model.
    let video = domain::VIDEO_MODELS
        .iter()
        .filter(|m| m.provider == domain::VideoProvider::CliProxy)
        .map(|m| (m.id, "xai"));
    let data: Vec<Value> = domain::IMAGE_MODELS
        .iter()
        .map(|m| (m.id, "google"))
        .chain(video)
        .map(|(id, owner)| json!({"id": id, "object": "model", "created": 1_750_000_000, "owned_by": owner}))
        .collect();
    Json(json!({"object": "list", "data": data})).into_response()
}

async fn gemini_models(
    AxState(s): AxState<Shared>,
    headers: HeaderMap,
    Query(q): Query<KeyQuery>,
) -> Response {
    s.requests.fetch_add(1, Ordering::SeqCst);
    s.models_requests.fetch_add(1, Ordering::SeqCst);
    if let Some(r) = check_key(&s, &headers, &q) {
        return r;
    }
    let models: Vec<Value> = domain::IMAGE_MODELS
        .iter()
        .map(|m| {
            json!({"name": format!("models/{}", m.id), "displayName": m.id,
            "supportedGenerationMethods": ["generateContent"]})
        })
        .collect();
    Json(json!({"models": models})).into_response()
}

/// What a generation request asked for, in either wire format.
struct Ask {
    model: String,
    prompt: String,
    ratio: AspectRatio,
    size: ImageSize,
    sized_explicitly: bool,
    images: Vec<Vec<u8>>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Wire {
    OpenAi,
    Gemini,
}

fn parse_openai(body: &Value) -> Ask {
    let mut prompt = Vec::new();
    let mut images = Vec::new();
    for msg in body["messages"].as_array().into_iter().flatten() {
        match &msg["content"] {
            Value::String(t) => prompt.push(t.clone()),
            Value::Array(parts) => {
                for p in parts {
                    if let Some(t) = p["text"].as_str() {
                        prompt.push(t.to_owned());
                    }
                    if let Some(url) = p["image_url"]["url"].as_str()
                        && let Some(bytes) = decode_data_url(url)
                    {
                        images.push(bytes);
                    }
                }
            }
            _ => {}
        }
    }
    let cfg = &body["image_config"];
    let ratio = cfg["aspect_ratio"].as_str().and_then(|r| r.parse().ok());
    let size = cfg["image_size"].as_str().and_then(|r| r.parse().ok());
    Ask {
        model: body["model"].as_str().unwrap_or_default().to_owned(),
        prompt: prompt.join("\n"),
        sized_explicitly: ratio.is_some() || size.is_some(),
        ratio: ratio.unwrap_or(AspectRatio::Square),
        size: size.unwrap_or(ImageSize::S1K),
        images,
    }
}

fn parse_gemini(model: &str, body: &Value) -> Ask {
    let mut prompt = Vec::new();
    let mut images = Vec::new();
    for content in body["contents"].as_array().into_iter().flatten() {
        for p in content["parts"].as_array().into_iter().flatten() {
            if let Some(t) = p["text"].as_str() {
                prompt.push(t.to_owned());
            }
            let inline = if p["inlineData"].is_object() {
                &p["inlineData"]
            } else {
                &p["inline_data"]
            };
            if let Some(data) = inline["data"].as_str()
                && let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(data)
            {
                images.push(bytes);
            }
        }
    }
    let cfg = &body["generationConfig"]["imageConfig"];
    let ratio = cfg["aspectRatio"].as_str().and_then(|r| r.parse().ok());
    let size = cfg["imageSize"].as_str().and_then(|r| r.parse().ok());
    Ask {
        model: model.to_owned(),
        prompt: prompt.join("\n"),
        sized_explicitly: ratio.is_some() || size.is_some(),
        ratio: ratio.unwrap_or(AspectRatio::Square),
        size: size.unwrap_or(ImageSize::S1K),
        images,
    }
}

fn decode_data_url(url: &str) -> Option<Vec<u8>> {
    let (_, payload) = url.strip_prefix("data:")?.split_once(";base64,")?;
    base64::engine::general_purpose::STANDARD
        .decode(payload)
        .ok()
}

async fn chat_completions(
    AxState(s): AxState<Shared>,
    headers: HeaderMap,
    Query(q): Query<KeyQuery>,
    body: Bytes,
) -> Response {
    s.requests.fetch_add(1, Ordering::SeqCst);
    s.generate_requests.fetch_add(1, Ordering::SeqCst);
    if let Some(r) = check_key(&s, &headers, &q) {
        return r;
    }
    let Ok(json) = serde_json::from_slice::<Value>(&body) else {
        return bad_request("invalid JSON body");
    };
    generate(&s, &headers, Wire::OpenAi, parse_openai(&json)).await
}

async fn generate_content(
    AxState(s): AxState<Shared>,
    Path(rest): Path<String>,
    headers: HeaderMap,
    Query(q): Query<KeyQuery>,
    body: Bytes,
) -> Response {
    s.requests.fetch_add(1, Ordering::SeqCst);
    if let Some((model, "predictLongRunning")) = rest.split_once(':') {
        if let Some(r) = check_key(&s, &headers, &q) {
            return r;
        }
        let Ok(json) = serde_json::from_slice::<Value>(&body) else {
            return bad_request("invalid JSON body");
        };
        return operations::predict_long_running(&s, model, &headers, &json).await;
    }
    let Some((model, "generateContent")) = rest.split_once(':') else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": {"code": 404, "message": format!("method `{rest}` is not served by the emulator"), "status": "NOT_FOUND"}})),
        )
            .into_response();
    };
    s.generate_requests.fetch_add(1, Ordering::SeqCst);
    if let Some(r) = check_key(&s, &headers, &q) {
        return r;
    }
    let Ok(json) = serde_json::from_slice::<Value>(&body) else {
        return bad_request("invalid JSON body");
    };
    let model = model.to_owned();
    generate(&s, &headers, Wire::Gemini, parse_gemini(&model, &json)).await
}

/// `GET /v1beta/models/{model}/operations/{id}`: a video operation.
async fn model_get(
    AxState(s): AxState<Shared>,
    Path(rest): Path<String>,
    headers: HeaderMap,
    Query(q): Query<KeyQuery>,
) -> Response {
    if let Some(r) = admit(&s, &headers, &q) {
        return r;
    }
    match rest.split_once("/operations/") {
        Some((model, id)) => {
            operations::get_operation(&s, model, id, &operations::base_of(&headers)).await
        }
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": {"code": 404, "message": format!("models/{rest} is not served by the emulator"), "status": "NOT_FOUND"}})),
        )
            .into_response(),
    }
}

fn bad_request(msg: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": {"message": msg, "type": "invalid_request_error"}})),
    )
        .into_response()
}

/// Picks the failure for this request for `model`: header, then prompt,
/// then control (which may name the one model it fails).
pub(super) fn pick_failure(
    s: &State,
    headers: &HeaderMap,
    prompt: &str,
    model: &str,
) -> Option<FailMode> {
    if let Some(m) = headers
        .get("x-emulator-fail")
        .and_then(|v| v.to_str().ok())
        .and_then(FailMode::parse)
    {
        return Some(m);
    }
    if let Some(m) = prompt
        .split("[emulator:")
        .nth(1)
        .and_then(|rest| rest.split(']').next())
        .and_then(FailMode::parse)
    {
        return Some(m);
    }
    let mut c = s.control.lock().ok()?;
    let mode = c.fail?;
    if c.model.as_deref().is_some_and(|m| m != model) {
        return None;
    }
    match c.times {
        Some(0) => {
            c.fail = None;
            None
        }
        Some(n) => {
            c.times = Some(n - 1);
            Some(mode)
        }
        None => Some(mode),
    }
}

/// Counts a request as in flight until dropped (also when cancelled).
struct InFlight<'a>(&'a AtomicU64);

impl<'a> InFlight<'a> {
    /// Counts a request in `n` and raises the high-water mark `most`.
    fn enter(n: &'a AtomicU64, most: &AtomicU64) -> Self {
        let now = n.fetch_add(1, Ordering::SeqCst) + 1;
        most.fetch_max(now, Ordering::SeqCst);
        Self(n)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The failures that answer a request before any work: latency first,
/// then 429, 5xx, auth, a slow or malformed answer. `None`: go on.
pub(super) async fn early_failure(
    s: &State,
    headers: &HeaderMap,
    failure: Option<FailMode>,
    model: &str,
    wire: Wire,
) -> Option<Response> {
    let (latency, retry_after) = s
        .control
        .lock()
        .map(|c| {
            (
                c.latency.unwrap_or(s.opts.latency),
                c.retry_after.unwrap_or(1),
            )
        })
        .unwrap_or((s.opts.latency, 1));
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    Some(match failure? {
        FailMode::RateLimit => {
            let body = json!({"error": {"code": "model_cooldown",
                "message": format!("All credentials for model {model} are cooling down via provider gemini"),
                "model": model, "provider": "gemini", "reset_seconds": retry_after,
                "reset_time": format!("{retry_after}s")}});
            let mut r = (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response();
            if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            r
        }
        FailMode::ResourceExhausted => (
            StatusCode::TOO_MANY_REQUESTS,
            Json(json!({"error": {"code": 429,
                "message": "Resource has been exhausted (e.g. check quota).",
                "status": "RESOURCE_EXHAUSTED"}})),
        )
            .into_response(),
        FailMode::ServerError => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": {"code": 500, "message": "Internal error encountered.", "status": "INTERNAL"}})),
        )
            .into_response(),
        // Google's own 503 on its native routes; CLIProxyAPI's when no
        // account is logged in on the OpenAI-shaped ones.
        FailMode::Unavailable if wire == Wire::Gemini => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"error": {"code": 503,
                "message": "The model is overloaded. Please try again later.",
                "status": "UNAVAILABLE"}})),
        )
            .into_response(),
        FailMode::Unavailable => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("auth_not_found: no auth available for model {model}"),
        )
            .into_response(),
        FailMode::Auth => (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "Invalid API key"})),
        )
            .into_response(),
        FailMode::EchoAuth => {
            let sent = [header::AUTHORIZATION.as_str(), "x-goog-api-key"]
                .iter()
                .find_map(|h| {
                    let v = headers.get(*h)?.to_str().ok()?;
                    Some(format!("{h}: {v}"))
                })
                .unwrap_or_else(|| "no credentials".to_owned());
            (
                StatusCode::UNAUTHORIZED,
                Json(json!({"error": {"message": format!("Invalid API key; the request carried `{sent}`"),
                    "type": "authentication_error", "code": "invalid_api_key"}})),
            )
                .into_response()
        }
        FailMode::Forbidden => (
            StatusCode::FORBIDDEN,
            Json(json!({"error": {"code": 403, "message": "The caller does not have permission", "status": "PERMISSION_DENIED"}})),
        )
            .into_response(),
        FailMode::Slow => {
            // Long enough that any sane client timeout fires first; dropped
            // (and so cancelled) when the client disconnects.
            tokio::time::sleep(Duration::from_secs(600)).await;
            return None;
        }
        FailMode::Malformed => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/html")],
            "<html><body>502 Bad Gateway</body></html>",
        )
            .into_response(),
        _ => return None,
    })
}

async fn generate(s: &State, headers: &HeaderMap, wire: Wire, ask: Ask) -> Response {
    let _in_flight = InFlight::enter(&s.in_flight, &s.most_in_flight);
    s.last_images
        .store(ask.images.len() as u64, Ordering::SeqCst);
    if let Ok(mut m) = s.generate_by_model.lock() {
        *m.entry(ask.model.clone()).or_default() += 1;
    }
    let failure = pick_failure(s, headers, &ask.prompt, &ask.model);
    if failure != Some(FailMode::UnknownModel)
        && domain::image_model(&ask.model).is_some()
        && let Some(r) = early_failure(s, headers, failure, &ask.model, wire).await
    {
        return r;
    }
    if failure == Some(FailMode::UnknownModel) || domain::image_model(&ask.model).is_none() {
        return unknown_model(wire, &ask.model);
    }
    match failure {
        Some(FailMode::Blocked) => return json_ok(blocked_body(wire)),
        Some(FailMode::EmptyChoices) => {
            return json_ok(match wire {
                Wire::OpenAi => {
                    r#"{"id":"emu","object":"chat.completion","created":0,"choices":[]}"#.to_owned()
                }
                Wire::Gemini => r#"{"promptFeedback":{"blockReason":"SAFETY"}}"#.to_owned(),
            });
        }
        Some(FailMode::NoImage) => {
            return json_ok(match wire {
                Wire::OpenAi => r#"{"id":"emu","object":"chat.completion","created":0,"choices":[{"index":0,"message":{"role":"assistant","content":"I can describe it, but here is no picture.","images":[]},"finish_reason":"stop","native_finish_reason":"stop"}]}"#.to_owned(),
                Wire::Gemini => r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"I can describe it, but here is no picture."}]},"finishReason":"STOP","index":0}]}"#.to_owned(),
            });
        }
        _ => {}
    }
    let mut png = image_for(s, &ask, false).await;
    if failure == Some(FailMode::HalfImage) {
        png = std::sync::Arc::new(first_half(&png));
    }
    let draft = match failure {
        Some(FailMode::Drafts) => Some(image_for(s, &ask, true).await),
        _ => None,
    };
    let body = success_body(wire, &ask, &png, draft.as_deref().map(String::as_str));
    if failure == Some(FailMode::Truncated) {
        return truncated(body);
    }
    if failure == Some(FailMode::Broken) {
        return broken(body.into_bytes());
    }
    json_ok(body)
}

/// A 200 JSON answer cut off half-way, as a dropped connection leaves it.
pub(super) fn truncated(body: String) -> Response {
    let mut cut = body.into_bytes();
    cut.truncate(cut.len() / 2);
    ([(header::CONTENT_TYPE, "application/json")], cut).into_response()
}

/// A response that announces all of `body`, sends its first half, then
/// fails: the server drops the connection mid-answer.
fn broken(body: Vec<u8>) -> Response {
    let total = body.len();
    let half = Bytes::from(body).slice(..total / 2);
    let chunks: [Result<Bytes, std::io::Error>; 2] = [
        Ok(half),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "emulator: connection dropped mid-answer",
        )),
    ];
    let mut r = axum::body::Body::from_stream(futures::stream::iter(chunks)).into_response();
    let headers = r.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(total));
    r
}

/// The first half of a base64-encoded file, encoded again.
fn first_half(b64: &str) -> String {
    let engine = &base64::engine::general_purpose::STANDARD;
    let mut bytes = engine.decode(b64).unwrap_or_default();
    bytes.truncate(bytes.len() / 2);
    engine.encode(bytes)
}

fn json_ok(body: String) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn unknown_model(wire: Wire, model: &str) -> Response {
    match wire {
        Wire::OpenAi => (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": {"message": format!("unknown provider for model {model}"),
                "type": "invalid_request_error", "code": "model_not_found", "param": "model"}})),
        )
            .into_response(),
        Wire::Gemini => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": {"code": 404,
                "message": format!("models/{model} is not found for API version v1beta, or is not supported for generateContent."),
                "status": "NOT_FOUND"}})),
        )
            .into_response(),
    }
}

fn blocked_body(wire: Wire) -> String {
    match wire {
        Wire::OpenAi => r#"{"id":"emu","object":"chat.completion","created":0,"model":"emu","choices":[{"index":0,"message":{"role":"assistant","content":null},"finish_reason":"stop","native_finish_reason":"image_safety"}]}"#.to_owned(),
        Wire::Gemini => r#"{"candidates":[{"content":{"role":"model","parts":[]},"finishReason":"IMAGE_SAFETY","index":0}]}"#.to_owned(),
    }
}

fn success_body(wire: Wire, ask: &Ask, b64: &str, draft: Option<&str>) -> String {
    let text = "Here is your image (media-gen emulator test pattern).";
    // A thought draft comes first (CLIProxyAPI lists it before the answer;
    // Gemini marks its part as a thought).
    let openai_draft = draft
        .map(|d| format!(r#"{{"type":"image_url","image_url":{{"url":"data:image/png;base64,{d}"}},"index":0}},"#))
        .unwrap_or_default();
    let gemini_draft = draft
        .map(|d| {
            format!(r#"{{"inlineData":{{"mimeType":"image/png","data":"{d}"}},"thought":true}},"#)
        })
        .unwrap_or_default();
    match wire {
        Wire::OpenAi => format!(
            r#"{{"id":"emu-{n}","object":"chat.completion","created":0,"model":{model},"choices":[{{"index":0,"message":{{"role":"assistant","content":"{text}","reasoning_content":null,"tool_calls":null,"images":[{openai_draft}{{"type":"image_url","image_url":{{"url":"data:image/png;base64,{b64}"}},"index":0}}]}},"finish_reason":"stop","native_finish_reason":"stop"}}],"usage":{{"prompt_tokens":{pt},"completion_tokens":1290,"total_tokens":{tt}}}}}"#,
            n = b64.len(),
            model = Value::from(ask.model.as_str()),
            pt = ask.prompt.len() / 4 + 1,
            tt = ask.prompt.len() / 4 + 1291,
        ),
        Wire::Gemini => format!(
            r#"{{"candidates":[{{"content":{{"role":"model","parts":[{gemini_draft}{{"text":"{text}"}},{{"inlineData":{{"mimeType":"image/png","data":"{b64}"}}}}]}},"finishReason":"STOP","index":0}}],"usageMetadata":{{"promptTokenCount":{pt},"candidatesTokenCount":1290,"totalTokenCount":{tt}}},"modelVersion":{model},"responseId":"emu-{n}"}}"#,
            n = b64.len(),
            model = Value::from(ask.model.as_str()),
            pt = ask.prompt.len() / 4 + 1,
            tt = ask.prompt.len() / 4 + 1291,
        ),
    }
}

/// The image for a request as base64 (how every response carries it), from
/// the cache or rendered on a blocking thread. The first input image is the
/// picture being edited; a later black-and-white one is its mask. A `draft`
/// is a different rendering of the same request.
async fn image_for(s: &State, ask: &Ask, draft: bool) -> std::sync::Arc<String> {
    let mut key = Vec::with_capacity(ask.prompt.len() + 64);
    if draft {
        key.extend_from_slice(b"draft\0");
    }
    key.extend_from_slice(ask.model.as_bytes());
    key.push(0);
    key.extend_from_slice(ask.prompt.as_bytes());
    key.push(0);
    key.extend_from_slice(ask.ratio.as_str().as_bytes());
    key.push(0);
    key.extend_from_slice(ask.size.as_str().as_bytes());
    for img in &ask.images {
        key.push(0);
        key.extend_from_slice(&sha2::Sha256::digest_bytes(img));
    }
    if let Ok(cache) = s.cache.lock()
        && let Some((_, png)) = cache.iter().find(|(k, _)| *k == key)
    {
        return png.clone();
    }
    let source = ask
        .images
        .first()
        .and_then(|b| image::load_from_memory(b).ok())
        .map(|i| i.into_rgb8());
    let mask = ask
        .images
        .iter()
        .skip(1)
        .filter_map(|b| image::load_from_memory(b).ok())
        .find_map(|i| as_mask(&i));
    // An edit without an explicit size keeps the source's size.
    let (w, h) = match (&source, ask.sized_explicitly) {
        (Some(src), false) => (src.width(), src.height()),
        _ => domain::output_dimensions(ask.ratio, ask.size),
    };
    let seed = key.clone();
    let prompt = ask.prompt.clone();
    let png = tokio::task::spawn_blocking(move || {
        // A draft is flat mid-grey: unmistakable if it were taken for the answer.
        let png = if draft {
            crate::emulator::render::flat_png(w, h, [128, 128, 128], &prompt)
        } else {
            render_png(&seed, &prompt, w, h, source.as_ref(), mask.as_ref())
        };
        base64::engine::general_purpose::STANDARD.encode(png)
    })
    .await
    .unwrap_or_default();
    let png = std::sync::Arc::new(png);
    if let Ok(mut cache) = s.cache.lock() {
        cache.push_front((key, png.clone()));
        cache.truncate(8);
    }
    png
}

/// The image as a mask, if it is one: grey pixels that are all (nearly)
/// black or white, with some white.
fn as_mask(img: &image::DynamicImage) -> Option<image::GrayImage> {
    let rgb = img.to_rgb8();
    let mut white = false;
    for p in rgb.pixels() {
        let [r, g, b] = p.0;
        if r != g || g != b || (16..240).contains(&r) {
            return None;
        }
        white |= r >= 240;
    }
    white.then(|| img.to_luma8())
}

trait DigestBytes {
    fn digest_bytes(data: &[u8]) -> Vec<u8>;
}

impl DigestBytes for sha2::Sha256 {
    fn digest_bytes(data: &[u8]) -> Vec<u8> {
        use sha2::Digest;
        sha2::Sha256::digest(data).to_vec()
    }
}
