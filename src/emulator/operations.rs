//! The emulator's video routes: Veo's long-running operations as the Gemini
//! API serves them (`:predictLongRunning`, `GET /v1beta/{name}`, the sample
//! download behind a redirect) and CLIProxyAPI's OpenAI-style
//! `/openai/v1/videos`. An operation finishes after a configurable number of
//! polls with a real H.264 MP4 ([`super::video::render_mp4`]) whose frames
//! show the prompt's colours, start on a given image, end on a given last
//! frame, and — for an extension — run on from the video extended.
//!
//! Failure modes (the request's `x-emulator-fail` header, `[emulator:MODE]`
//! in the prompt, or `/emulator/control`): `operation_failed`, `blocked`
//! (filtered), `never_finishes`, `download_error`, `expired`; the
//! submission itself can fail like any request (`rate_limit`, `auth` …),
//! and `truncated` cuts its answer half-way (the operation is made all
//! the same: the client cannot know its name).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State as AxState};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use chrono::Utc;
use serde_json::{Value, json};

use super::Shared;
use super::routes::{
    FailMode, KeyQuery, State, Wire, admit, early_failure, pick_failure, truncated,
};
use super::video::{Clip, decode_frame, render_mp4};
use crate::domain::{self, VideoModelInfo, VideoProvider};

/// Polls an operation takes to finish unless told otherwise.
pub const DEFAULT_POLLS: u32 = 2;

/// Which API an operation was started through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Api {
    Veo,
    OpenAi,
}

/// How an operation ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Video,
    Failed,
    Filtered,
    Never,
    DownloadError,
}

/// One video operation.
struct Operation {
    api: Api,
    model: &'static VideoModelInfo,
    outcome: Outcome,
    /// Polls answered so far.
    polls: u32,
    /// Polls until done.
    done_after: u32,
    clip: Clip,
    /// Rendered when the operation finishes.
    mp4: Option<Arc<Vec<u8>>>,
    /// The sample can no longer be downloaded or extended.
    expired: bool,
    created: i64,
}

/// The operations the emulator knows, by id.
#[derive(Default)]
pub struct Operations {
    /// Shared with the renders, which store their clip even when the poll
    /// that started them was abandoned.
    ops: Arc<std::sync::Mutex<HashMap<String, Operation>>>,
    /// What the last submission asked for (for tests to check the wire).
    last: std::sync::Mutex<Value>,
}

impl Operations {
    /// Marks every finished sample as expired (as two days passing would).
    pub fn expire_all(&self) {
        if let Ok(mut ops) = self.ops.lock() {
            for op in ops.values_mut() {
                op.expired = true;
            }
        }
    }

    /// Operations under way finish after `polls` polls in all.
    pub fn finish_after(&self, polls: u32) {
        if let Ok(mut ops) = self.ops.lock() {
            for op in ops.values_mut() {
                op.done_after = polls;
            }
        }
    }

    pub fn last_request(&self) -> Value {
        self.last.lock().map(|v| v.clone()).unwrap_or_default()
    }

    pub fn clear(&self) {
        if let Ok(mut ops) = self.ops.lock() {
            ops.clear();
        }
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    let name = match status {
        StatusCode::NOT_FOUND => "NOT_FOUND",
        StatusCode::BAD_REQUEST => "INVALID_ARGUMENT",
        _ => "INTERNAL",
    };
    (
        status,
        Json(json!({"error": {"code": status.as_u16(), "message": message, "status": name}})),
    )
        .into_response()
}

fn openai_error(status: StatusCode, message: &str, code: &str) -> Response {
    (
        status,
        Json(json!({"error": {"message": message, "type": "invalid_request_error", "code": code}})),
    )
        .into_response()
}

fn new_id() -> String {
    let n: u64 = rand_u64();
    format!("{n:012x}")
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(Utc::now().timestamp_nanos_opt().unwrap_or_default() as u128);
    h.finish() & 0xffff_ffff_ffff
}

/// Width and height of a clip.
fn dimensions(ratio: &str, resolution: &str) -> (u32, u32) {
    let (long, short) = match resolution {
        "480p" => (854, 480),
        "1080p" => (1920, 1080),
        "4k" => (3840, 2160),
        _ => (1280, 720),
    };
    match ratio {
        "9:16" => (short, long),
        "1:1" => (short, short),
        _ => (long, short),
    }
}

fn outcome_of(mode: Option<FailMode>) -> Outcome {
    match mode {
        Some(FailMode::OperationFailed) => Outcome::Failed,
        Some(FailMode::Blocked) => Outcome::Filtered,
        Some(FailMode::NeverFinishes) => Outcome::Never,
        Some(FailMode::DownloadError) => Outcome::DownloadError,
        _ => Outcome::Video,
    }
}

/// `POST /v1beta/models/{model}:predictLongRunning`.
pub async fn predict_long_running(
    s: &State,
    model: &str,
    headers: &HeaderMap,
    body: &Value,
) -> Response {
    let Some(info) = domain::video_model(model).filter(|m| m.provider == VideoProvider::Gemini)
    else {
        return error(
            StatusCode::NOT_FOUND,
            &format!(
                "models/{model} is not found for API version v1beta, or is not supported for predictLongRunning."
            ),
        );
    };
    let instance = &body["instances"][0];
    let params = &body["parameters"];
    let prompt = instance["prompt"].as_str().unwrap_or_default().to_owned();
    let failure = pick_failure(s, headers, &prompt, model);
    if let Some(r) = early_failure(s, headers, failure, model, Wire::Gemini).await {
        return r;
    }
    let ratio = params["aspectRatio"].as_str().unwrap_or("16:9").to_owned();
    if !info.aspect_ratios.contains(&ratio.as_str()) {
        return error(
            StatusCode::BAD_REQUEST,
            &format!("aspectRatio `{ratio}` is not supported; use 16:9 or 9:16."),
        );
    }
    let resolution = params["resolution"].as_str().unwrap_or("720p").to_owned();
    if !info.resolutions.contains(&resolution.as_str()) {
        return error(
            StatusCode::BAD_REQUEST,
            &format!("resolution `{resolution}` is not supported by {model}."),
        );
    }
    // Some clients send the number as a string.
    let seconds = params["durationSeconds"]
        .as_u64()
        .or_else(|| params["durationSeconds"].as_str()?.parse().ok())
        .unwrap_or(8) as u32;
    let extending = instance["video"]["uri"].is_string();
    if !extending && !info.durations_at(&resolution).contains(&seconds) {
        return error(
            StatusCode::BAD_REQUEST,
            &format!("durationSeconds {seconds} is out of bounds for {model} at {resolution}."),
        );
    }
    let image = |v: &Value| {
        v["bytesBase64Encoded"]
            .as_str()
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .and_then(|b| decode_frame(&b))
    };
    let first = instance.get("image").map(image);
    let last = instance.get("lastFrame").map(image);
    let refs = instance["referenceImages"].as_array().map_or(0, Vec::len);
    if matches!(first, Some(None)) || matches!(last, Some(None)) {
        return error(StatusCode::BAD_REQUEST, "image is not a decodable picture.");
    }
    if last.is_some() && !info.extras.last_frame {
        return error(
            StatusCode::BAD_REQUEST,
            &format!("lastFrame isn't supported by {model}."),
        );
    }
    if refs > 0 && (info.extras.reference_images == 0 || refs > 3) {
        return error(
            StatusCode::BAD_REQUEST,
            &format!("referenceImages: at most 3, and only on Veo 3.1 (got {refs})."),
        );
    }
    if refs > 0 && (first.is_some() || last.is_some()) {
        return error(
            StatusCode::BAD_REQUEST,
            "referenceImages cannot be combined with image or lastFrame.",
        );
    }
    let mut clip = Clip {
        seed: format!("{model}\0{prompt}").into_bytes(),
        prompt: prompt.clone(),
        width: 0,
        height: 0,
        seconds,
        first: first.flatten(),
        last: last.flatten(),
    };
    (clip.width, clip.height) = dimensions(&ratio, &resolution);
    let extend = instance["video"]["uri"].as_str().map(str::to_owned);
    if let Some(uri) = &extend {
        if !info.extras.extend {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("video extension isn't supported by {model}."),
            );
        }
        let Some(id) = file_id(uri) else {
            return error(
                StatusCode::BAD_REQUEST,
                "video.uri is not a file of this API.",
            );
        };
        let ops = s.videos.ops.lock().ok();
        let Some(original) = ops.as_ref().and_then(|o| o.get(id)) else {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("video {id} was not found."),
            );
        };
        if original.expired {
            return error(
                StatusCode::BAD_REQUEST,
                &format!(
                    "video {id} has expired and can no longer be extended; generated videos are kept for 2 days."
                ),
            );
        }
        // The output is the input and the extension together, at 720p.
        clip.seconds = original.clip.seconds + info.extension_seconds;
        (clip.width, clip.height) = (original.clip.width, original.clip.height);
        clip.seed = [original.clip.seed.as_slice(), b"\0", prompt.as_bytes()].concat();
    }
    if let Ok(mut last) = s.videos.last.lock() {
        *last = json!({
            "api": "veo", "model": model, "prompt": prompt, "aspect_ratio": ratio,
            "duration_seconds": seconds, "resolution": resolution,
            "negative_prompt": params["negativePrompt"],
            "image": clip.first.is_some(), "last_frame": clip.last.is_some(),
            "reference_images": refs, "extend": extend,
        });
    }
    let id = insert(s, Api::Veo, info, clip, failure);
    let answer = json!({"name": format!("models/{model}/operations/{id}")});
    if failure == Some(FailMode::Truncated) {
        return truncated(answer.to_string());
    }
    Json(answer).into_response()
}

fn insert(
    s: &State,
    api: Api,
    model: &'static VideoModelInfo,
    clip: Clip,
    failure: Option<FailMode>,
) -> String {
    s.video_submits.fetch_add(1, Ordering::SeqCst);
    let id = new_id();
    let done_after = s.video_polls.load(Ordering::SeqCst) as u32;
    let op = Operation {
        api,
        model,
        outcome: outcome_of(failure),
        polls: 0,
        done_after,
        clip,
        mp4: None,
        expired: failure == Some(FailMode::Expired),
        created: Utc::now().timestamp(),
    };
    if let Ok(mut ops) = s.videos.ops.lock() {
        ops.insert(id.clone(), op);
    }
    id
}

/// Where an operation stands after this poll.
enum Polled {
    Unknown,
    Running(f64),
    Done {
        outcome: Outcome,
        clip: Option<Clip>,
        model: &'static str,
        created: i64,
        seconds: u32,
    },
}

fn poll(s: &State, id: &str, api: Api) -> Polled {
    s.video_polls_served.fetch_add(1, Ordering::SeqCst);
    let Ok(mut ops) = s.videos.ops.lock() else {
        return Polled::Unknown;
    };
    let Some(op) = ops.get_mut(id).filter(|o| o.api == api) else {
        return Polled::Unknown;
    };
    op.polls += 1;
    if op.outcome == Outcome::Never || op.polls <= op.done_after {
        let progress = if op.outcome == Outcome::Never {
            0.5
        } else {
            f64::from(op.polls) / f64::from(op.done_after + 1)
        };
        return Polled::Running(progress);
    }
    Polled::Done {
        outcome: op.outcome,
        clip: op.mp4.is_none().then(|| op.clip.clone()),
        model: op.model.id,
        created: op.created,
        seconds: op.clip.seconds,
    }
}

/// Renders a finished operation's clip once. The clip is stored by the
/// rendering thread itself: a client that gives up on a slow poll (its
/// timeout shorter than the encode on a busy machine) still finds it on the
/// next poll, instead of every poll starting the encode again.
async fn render(s: &State, id: &str, clip: Option<Clip>) -> Result<(), String> {
    let Some(clip) = clip else { return Ok(()) };
    let (ops, id) = (s.videos.ops.clone(), id.to_owned());
    tokio::task::spawn_blocking(move || {
        let mp4 = render_mp4(&clip)?;
        if let Ok(mut ops) = ops.lock()
            && let Some(op) = ops.get_mut(&id)
            && op.mp4.is_none()
        {
            op.mp4 = Some(Arc::new(mp4));
        }
        Ok(())
    })
    .await
    .map_err(|e| e.to_string())?
}

/// `GET /v1beta/models/{model}/operations/{id}`.
pub async fn get_operation(s: &State, model: &str, id: &str, base: &str) -> Response {
    let name = format!("models/{model}/operations/{id}");
    match poll(s, id, Api::Veo) {
        Polled::Unknown => error(StatusCode::NOT_FOUND, &format!("operation {name} not found")),
        Polled::Running(p) => Json(json!({
            "name": name,
            "metadata": {"@type": "type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningMetadata", "progressPercent": (p * 100.0).round()}
        }))
        .into_response(),
        Polled::Done { outcome, clip, .. } => match outcome {
            Outcome::Failed => Json(json!({"name": name, "done": true,
                "error": {"code": 13, "message": "Video generation failed due to an internal error. Please try again."}}))
            .into_response(),
            Outcome::Filtered => Json(json!({"name": name, "done": true, "response": {
                "@type": "type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningResponse",
                "generateVideoResponse": {"raiMediaFilteredCount": 1,
                    "raiMediaFilteredReasons": ["Unable to generate videos because of a policy violation (emulator)."]}}}))
            .into_response(),
            _ => {
                if let Err(e) = render(s, id, clip).await {
                    return error(StatusCode::INTERNAL_SERVER_ERROR, &e);
                }
                Json(json!({"name": name, "done": true, "response": {
                    "@type": "type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningResponse",
                    "generateVideoResponse": {"generatedSamples": [
                        {"video": {"uri": format!("{base}/v1beta/files/{id}:download?alt=media")}}]}}}))
                .into_response()
            }
        },
    }
}

/// The file id in a sample uri (`…/v1beta/files/ID:download?alt=media`).
fn file_id(uri: &str) -> Option<&str> {
    let rest = uri.split("/v1beta/files/").nth(1)?;
    let id = rest.split([':', '?']).next()?;
    (!id.is_empty()).then_some(id)
}

/// `GET /v1beta/files/{id}:download`: a redirect to the bytes, as Google
/// answers with a signed storage link.
pub async fn download(
    AxState(s): AxState<Shared>,
    Path(file): Path<String>,
    headers: HeaderMap,
    Query(q): Query<KeyQuery>,
) -> Response {
    if let Some(r) = admit(&s, &headers, &q) {
        return r;
    }
    let Some((id, "download")) = file.split_once(':') else {
        return error(StatusCode::NOT_FOUND, &format!("file {file} not found"));
    };
    Redirect::to(&format!("/emulator/blobs/{id}")).into_response()
}

/// The bytes of a finished sample, or why they cannot be had.
fn sample(s: &State, id: &str) -> Response {
    s.video_downloads.fetch_add(1, Ordering::SeqCst);
    let Ok(ops) = s.videos.ops.lock() else {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "lock");
    };
    let Some(op) = ops.get(id) else {
        return error(StatusCode::NOT_FOUND, &format!("file {id} not found"));
    };
    if op.expired {
        return error(
            StatusCode::NOT_FOUND,
            &format!("file {id} has expired (generated videos are kept for 2 days)"),
        );
    }
    if op.outcome == Outcome::DownloadError {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the storage backend failed to serve the file (emulator)",
        );
    }
    match &op.mp4 {
        Some(bytes) => (
            [(header::CONTENT_TYPE, "video/mp4")],
            Bytes::from(bytes.as_ref().clone()),
        )
            .into_response(),
        None => error(StatusCode::NOT_FOUND, &format!("file {id} is not ready")),
    }
}

/// `GET /emulator/blobs/{id}`: where a download redirects (a signed link:
/// no key needed).
pub async fn blob(AxState(s): AxState<Shared>, Path(id): Path<String>) -> Response {
    sample(&s, &id)
}

/// `POST /openai/v1/videos`.
pub async fn openai_create(
    AxState(s): AxState<Shared>,
    headers: HeaderMap,
    Query(q): Query<KeyQuery>,
    body: Bytes,
) -> Response {
    if let Some(r) = admit(&s, &headers, &q) {
        return r;
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return openai_error(StatusCode::BAD_REQUEST, "invalid JSON body", "invalid_json");
    };
    let model = body["model"].as_str().unwrap_or_default();
    let Some(info) = domain::video_model(model).filter(|m| m.provider == VideoProvider::CliProxy)
    else {
        return openai_error(
            StatusCode::BAD_REQUEST,
            &format!("unknown provider for model {model}"),
            "model_not_found",
        );
    };
    let prompt = body["prompt"].as_str().unwrap_or_default().to_owned();
    let failure = pick_failure(&s, &headers, &prompt, model);
    if let Some(r) = early_failure(&s, &headers, failure, model, Wire::OpenAi).await {
        return r;
    }
    let seconds: u32 = body["seconds"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .or_else(|| body["seconds"].as_u64().map(|v| v as u32))
        .unwrap_or(6);
    let ratio = body["aspect_ratio"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| match body["size"].as_str() {
            Some("720x1280") => "9:16".to_owned(),
            _ => "16:9".to_owned(),
        });
    let resolution = body["resolution"].as_str().unwrap_or("720p").to_owned();
    let first = body["image"]
        .as_str()
        .and_then(|u| u.split_once(";base64,"))
        .and_then(|(_, b)| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| decode_frame(&b));
    let (width, height) = dimensions(&ratio, &resolution);
    if let Ok(mut last) = s.videos.last.lock() {
        *last = json!({"api": "openai", "model": model, "prompt": prompt, "aspect_ratio": ratio,
            "duration_seconds": seconds, "resolution": resolution, "image": first.is_some()});
    }
    let clip = Clip {
        seed: format!("{model}\0{prompt}").into_bytes(),
        prompt,
        width,
        height,
        seconds,
        first,
        last: None,
    };
    let id = format!("video_{}", insert(&s, Api::OpenAi, info, clip, failure));
    let answer = json!({"id": id, "object": "video", "model": model, "status": "queued", "progress": 0,
        "created_at": Utc::now().timestamp(), "seconds": seconds.to_string(),
        "size": format!("{width}x{height}")});
    if failure == Some(FailMode::Truncated) {
        return truncated(answer.to_string());
    }
    Json(answer).into_response()
}

/// `GET /openai/v1/videos/{id}` and `…/{id}/content`.
pub async fn openai_get(
    AxState(s): AxState<Shared>,
    Path(rest): Path<String>,
    headers: HeaderMap,
    Query(q): Query<KeyQuery>,
) -> Response {
    if let Some(r) = admit(&s, &headers, &q) {
        return r;
    }
    let (video_id, content) = match rest.strip_suffix("/content") {
        Some(id) => (id, true),
        None => (rest.as_str(), false),
    };
    let Some(id) = video_id.strip_prefix("video_") else {
        return openai_error(StatusCode::NOT_FOUND, "video not found", "not_found");
    };
    if content {
        return sample(&s, id);
    }
    let video = |status: &str, progress: u32, extra: Value| {
        let mut v =
            json!({"id": video_id, "object": "video", "status": status, "progress": progress});
        if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
            o.extend(e.clone());
        }
        Json(v).into_response()
    };
    match poll(&s, id, Api::OpenAi) {
        Polled::Unknown => openai_error(StatusCode::NOT_FOUND, "video not found", "not_found"),
        Polled::Running(p) => video("in_progress", (p * 100.0) as u32, json!({})),
        Polled::Done {
            outcome,
            clip,
            model,
            created,
            seconds,
        } => match outcome {
            Outcome::Failed => video(
                "failed",
                100,
                json!({"error": {"code": "generation_failed", "message": "The video could not be generated (emulator)."}}),
            ),
            Outcome::Filtered => video(
                "failed",
                100,
                json!({"error": {"code": "moderation_blocked", "message": "The request was blocked by moderation (emulator)."}}),
            ),
            _ => {
                if let Err(e) = render(&s, id, clip).await {
                    return openai_error(StatusCode::INTERNAL_SERVER_ERROR, &e, "render");
                }
                video(
                    "completed",
                    100,
                    json!({"model": model, "created_at": created, "completed_at": Utc::now().timestamp(),
                        "seconds": seconds.to_string()}),
                )
            }
        },
    }
}

/// The base URL clients reached the emulator at (from `Host`).
pub fn base_of(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}")
}
