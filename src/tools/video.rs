//! `generate_video`, `image_to_video`, `extend_video` and
//! `get_video_status`; and the MCP tasks (SEP-2663) those calls become when
//! the client declares the tasks extension — each task is the durable job
//! itself, so `tasks/get` and `tasks/cancel` work across sessions and
//! restarts.

use super::args::Parameters;
use rmcp::handler::server::tool::schema_for_output;
use rmcp::model::{
    CallToolResponse, CallToolResult, ContentBlock, CreateTaskResult, DetailedTask, Resource, Task,
    TaskPayload, TaskStatus,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, tool, tool_router};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

use super::confirm::{Answers, ConfirmCost, Gate};
use super::image::Progress;
use super::{MediaServer, error_result, structured_result, viewer};
use crate::contract::{VideoJobOutput, VideoStatusOutput};
use crate::domain;
use crate::service::{Paid, ServiceError, VideoInput, VideoOperation, VideoStatus};
use crate::store::{Job, JobState, timestamp};

/// How often a client should ask `tasks/get` about a video task.
const TASK_POLL_MS: u64 = 5_000;

fn video_model_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "enum": domain::video_model_ids(),
        "description": "Video model. `veo-3.1-generate-preview` (default) has the best quality and \
    takes every extra (last_frame, reference_images, 1080p/4k, extension); `veo-3.1-fast-generate-preview` \
    is faster and cheaper with the same extras; Veo 3.0 and 2.0 take no extras. `grok-imagine-video` \
    only with MCP_VIDEO_BACKEND=cliproxy. `list_models` (type `video`) shows durations and resolutions."
    })
}

fn duration_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "enum": ["4s", "5s", "6s", "7s", "8s", "10s", "15s"],
        "default": "5s",
        "description": "Length of the video. Mapped to the nearest length the model makes (Veo 3.x: \
    4, 6 or 8 s, ties round up: 5s → 6 s, 10s/15s → 8 s; Veo 2: 5–8 s); the result says what was used. \
    For longer videos, extend_video adds about 7 s per call."
    })
}

fn video_ratio_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "enum": ["16:9", "9:16", "1:1"],
        "default": "16:9",
        "description": "16:9 landscape or 9:16 portrait. Veo does not make 1:1 (refused); \
    `grok-imagine-video` does."
    })
}

fn resolution_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "enum": ["720p", "1080p", "4k", "480p"],
        "default": "720p",
        "description": "Output resolution. 1080p and 4k need 8 s (the duration becomes 8 s); \
    4k only on Veo 3.1; 480p only on `grok-imagine-video`. Higher is slower and costs more."
    })
}

/// What `generate_video` and `image_to_video` both take.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct VideoOptions {
    #[serde(default)]
    #[schemars(schema_with = "duration_schema", extend("default" = "5s"))]
    pub duration: Option<String>,
    #[serde(default)]
    #[schemars(schema_with = "video_model_schema")]
    pub model: Option<String>,
    #[serde(default)]
    #[schemars(schema_with = "resolution_schema", extend("default" = "720p"))]
    pub resolution: Option<String>,
    /// What the video should not show.
    #[serde(default)]
    pub negative_prompt: Option<String>,
    #[serde(flatten)]
    pub cost: ConfirmCost,
}

/// Parameters of `generate_video`.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct GenerateVideoParams {
    /// What happens in the video: subject, action, camera movement, style, lighting, and sound
    /// or dialogue (Veo 3 makes audio). Specific prompts give better videos.
    pub prompt: String,
    #[serde(default)]
    #[schemars(schema_with = "video_ratio_schema", extend("default" = "16:9"))]
    pub aspect_ratio: Option<String>,
    #[serde(flatten)]
    pub options: VideoOptions,
    /// Up to 3 images of people, characters or objects to keep the look of (Veo 3.1; the video
    /// is then 8 s at 16:9): library file names, `media://files/…` URIs or paths. Not together
    /// with `last_frame`.
    #[serde(default)]
    pub reference_images: Vec<String>,
    /// An image the video should end on (Veo 3.1): library file name, URI or path.
    #[serde(default)]
    pub last_frame: Option<String>,
}

/// Parameters of `image_to_video`.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct ImageToVideoParams {
    /// The image to animate (it becomes the first frame): a library file name, a
    /// `media://files/…` URI, or a path (over HTTP only inside the output directory and
    /// `MCP_INPUT_ROOTS`).
    pub image_path: String,
    /// How it should move: motion, camera, what happens next. Optional.
    #[serde(default)]
    pub prompt: Option<String>,
    /// An image to end on (Veo 3.1): the video interpolates from `image_path` to it.
    #[serde(default)]
    pub last_frame: Option<String>,
    /// Defaults to the image's orientation (portrait images give 9:16).
    #[serde(default)]
    #[schemars(schema_with = "video_ratio_schema")]
    pub aspect_ratio: Option<String>,
    #[serde(flatten)]
    pub options: VideoOptions,
}

/// Parameters of `extend_video`.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct ExtendVideoParams {
    /// The library file name of a video made by a Veo 3.1 model here (`list_generated` with
    /// type `video`), within about 2 days of making it (the provider's copy then expires).
    pub video: String,
    /// What happens next. The new file is the whole video plus about 7 s, at 720p.
    pub prompt: String,
    #[serde(flatten)]
    pub cost: ConfirmCost,
}

/// Parameters of `get_video_status`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct GetVideoStatusParams {
    /// The `job_id` a video tool returned.
    pub job_id: String,
    /// Wait up to this many seconds (0–120) for the job to end before answering; progress
    /// notifications are sent while waiting. 0 (default) answers at once.
    #[serde(default)]
    #[schemars(range(min = 0, max = 120), extend("default" = 0))]
    pub wait_seconds: Option<f64>,
}

impl From<&VideoOptions> for VideoInput {
    fn from(o: &VideoOptions) -> Self {
        VideoInput {
            duration: o.duration.clone(),
            model: o.model.clone(),
            resolution: o.resolution.clone(),
            negative_prompt: o.negative_prompt.clone(),
            ..VideoInput::default()
        }
    }
}

/// The `resource_link` and contact sheet of a finished video.
fn video_content(s: &VideoStatus) -> Vec<ContentBlock> {
    let out = &s.output;
    let mut blocks = Vec::new();
    if let (Some(uri), Some(name), Some(meta)) = (&out.uri, &out.filename, &out.metadata) {
        let title: String = meta.prompt.chars().take(80).collect();
        let link = Resource::new(uri.clone(), name.clone())
            .with_title(if title.is_empty() {
                name.clone()
            } else {
                title
            })
            .with_mime_type(meta.mime_type.clone())
            .with_size(meta.file_size_bytes);
        blocks.push(ContentBlock::resource_link(link));
    }
    if let Some((data, mime_type)) = s.inline.base64() {
        blocks.push(ContentBlock::image(data, mime_type));
    }
    blocks
}

/// The tool result of a status: a failed job is an error result.
fn status_result(s: &VideoStatus) -> CallToolResult {
    let failed = matches!(s.output.status.as_str(), "failed" | "cancelled");
    structured_result(&s.output, failed, video_content(s))
}

/// The client declared the tasks extension (at `initialize` or in `_meta`).
fn wants_tasks(ctx: &RequestContext<RoleServer>) -> bool {
    ctx.client_capabilities()
        .is_some_and(|c| c.supports_tasks())
}

fn task_status(state: JobState) -> TaskStatus {
    match state {
        JobState::Queued | JobState::Running => TaskStatus::Working,
        JobState::Succeeded | JobState::Failed => TaskStatus::Completed,
        JobState::Cancelled => TaskStatus::Cancelled,
    }
}

/// A job as an MCP task.
fn task_of(job: &Job) -> Task {
    let message = match (job.state, job.progress) {
        (JobState::Queued | JobState::Running, Some(p)) => {
            format!("video {}: {:.0}%", job.state.as_str(), p * 100.0)
        }
        (state, _) => format!("video {}", state.as_str()),
    };
    Task::new(
        job.id.as_str(),
        task_status(job.state),
        timestamp(job.created),
        timestamp(job.updated),
    )
    .with_status_message(message)
    .with_poll_interval_ms(TASK_POLL_MS)
}

fn unknown_task(id: &str) -> ErrorData {
    ErrorData::invalid_params(format!("unknown task: {id}"), None)
}

fn internal(e: impl std::fmt::Display) -> ErrorData {
    ErrorData::internal_error(e.to_string(), None)
}

impl MediaServer {
    /// Starts a video job; a task when the client wants tasks, else the
    /// job's id.
    #[allow(
        clippy::too_many_arguments,
        reason = "the call (tool, arguments, input) and its context, all needed once"
    )]
    async fn start<P: Serialize>(
        &self,
        tool: &str,
        params: &P,
        consent: &ConfirmCost,
        operation: VideoOperation,
        input: VideoInput,
        answers: Answers,
        ctx: &RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let call = Paid::Video(operation, &input);
        if let Gate::Stop(r) = self
            .confirm(tool, params, consent, call, answers, ctx)
            .await
        {
            return Ok(r);
        }
        let started = self
            .service()
            .start_video(operation, &input, self.policy())
            .await;
        let out: VideoJobOutput = match started {
            Ok(started) => started.output,
            Err(e) => return Ok(error_result(&e).into()),
        };
        if wants_tasks(ctx) {
            let job = self
                .service()
                .job(&out.job_id)
                .await
                .map_err(|e| internal(e.message()))?;
            return Ok(CreateTaskResult::new(task_of(&job)).into());
        }
        Ok(structured_result(&out, false, Vec::new()).into())
    }

    /// `tasks/get`: the job behind the task; when it has ended, the
    /// finished video's result (a failed job's is an error result).
    pub(super) async fn video_task(&self, id: &str) -> Result<DetailedTask, ErrorData> {
        let job = match self.service().job(id).await {
            Ok(job) => job,
            Err(ServiceError::JobNotFound(_)) => return Err(unknown_task(id)),
            Err(e) => return Err(internal(e.message())),
        };
        let payload = match job.state {
            JobState::Queued | JobState::Running => TaskPayload::Working,
            JobState::Cancelled => TaskPayload::Cancelled,
            JobState::Succeeded | JobState::Failed => {
                let mut status = self
                    .service()
                    .video_status(id, None, |_, _| {})
                    .await
                    .map_err(|e| internal(e.message()))?;
                self.link(&mut status.output);
                let result = serde_json::to_value(status_result(&status)).map_err(internal)?;
                let serde_json::Value::Object(result) = result else {
                    return Err(internal("a tool result is not an object"));
                };
                TaskPayload::Completed { result }
            }
        };
        Ok(DetailedTask::new(task_of(&job), payload))
    }

    /// `tasks/cancel`: the job stops being polled and nothing is saved.
    pub(super) async fn cancel_video_task(&self, id: &str) -> Result<(), ErrorData> {
        match self.service().cancel_job(id).await {
            Ok(_) => Ok(()),
            Err(ServiceError::JobNotFound(_)) => Err(unknown_task(id)),
            Err(e) => Err(internal(e.message())),
        }
    }
}

#[tool_router(router = video_router, vis = "pub(super)")]
impl MediaServer {
    #[tool(
        name = "generate_video",
        title = "Generate video",
        description = "Start making a video from a text prompt with Veo (Gemini API). Video takes \
1–6 minutes, so this returns at once with a `job_id`: call `get_video_status` with it (its \
`wait_seconds`, up to 120, waits for the end) to get the saved MP4's path, its facts and a contact \
sheet of frames. The job survives client time-outs and server restarts. Durations map to what the \
model makes (Veo 3.x: 4, 6 or 8 s); the result's `note` says when it differs. \
`estimated_cost_usd` is what the video is estimated to cost (per second × length); with a \
spending cap set, a video that would pass it fails with `BUDGET_EXCEEDED` before it is submitted. \
Calls estimated above the server's `MCP_CONFIRM_ABOVE_USD` ask the user first (see `confirm_cost`).",
        annotations(
            title = "Generate video",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = true
        ),
        output_schema = schema_for_output::<VideoJobOutput>(),
        meta = viewer::tool_meta()
    )]
    async fn generate_video(
        &self,
        Parameters(p): Parameters<GenerateVideoParams>,
        answers: Answers,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let input = VideoInput {
            prompt: Some(p.prompt.clone()),
            aspect_ratio: p.aspect_ratio.clone(),
            reference_images: p.reference_images.clone(),
            last_frame: p.last_frame.clone(),
            ..(&p.options).into()
        };
        let (op, consent) = (VideoOperation::Generate, &p.options.cost);
        self.start("generate_video", &p, consent, op, input, answers, &ctx)
            .await
    }

    #[tool(
        name = "image_to_video",
        title = "Animate image",
        description = "Start animating a still image into a video (the image is the first frame; with \
`last_frame` the video moves from one to the other, Veo 3.1). Like `generate_video` it returns a \
`job_id` at once: call `get_video_status` with it for the result. Calls estimated above the server's `MCP_CONFIRM_ABOVE_USD` ask the user first (see `confirm_cost`).",
        annotations(
            title = "Animate image",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = true
        ),
        output_schema = schema_for_output::<VideoJobOutput>(),
        meta = viewer::tool_meta()
    )]
    async fn image_to_video(
        &self,
        Parameters(p): Parameters<ImageToVideoParams>,
        answers: Answers,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let input = VideoInput {
            prompt: p.prompt.clone(),
            aspect_ratio: p.aspect_ratio.clone(),
            image: Some(p.image_path.clone()),
            last_frame: p.last_frame.clone(),
            ..(&p.options).into()
        };
        let (op, consent) = (VideoOperation::Animate, &p.options.cost);
        self.start("image_to_video", &p, consent, op, input, answers, &ctx)
            .await
    }

    #[tool(
        name = "extend_video",
        title = "Extend video",
        description = "Start continuing a video made here by a Veo 3.1 model: the new file is the \
whole video plus about 7 s following `prompt` (720p); the original stays. Works within about 2 days \
of making the video (the provider's copy expires; refused clearly after that). Returns a `job_id`: \
call `get_video_status` with it. Calls estimated above the server's `MCP_CONFIRM_ABOVE_USD` ask the user first (see `confirm_cost`).",
        annotations(
            title = "Extend video",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = true
        ),
        output_schema = schema_for_output::<VideoJobOutput>(),
        meta = viewer::tool_meta()
    )]
    async fn extend_video(
        &self,
        Parameters(p): Parameters<ExtendVideoParams>,
        answers: Answers,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let input = VideoInput {
            prompt: Some(p.prompt.clone()),
            video: Some(p.video.clone()),
            ..VideoInput::default()
        };
        let (op, consent) = (VideoOperation::Extend, &p.cost);
        self.start("extend_video", &p, consent, op, input, answers, &ctx)
            .await
    }

    #[tool(
        name = "get_video_status",
        title = "Video status",
        description = "The status of a video job: `queued`, `running` (with `progress` when known), \
`succeeded` (with `video_path`, `filename`, a `media://files/…` link, `metadata` — duration, size, \
read from the MP4 — and an attached contact sheet of 4 frames so you can see the video) or \
`failed` (with `error.code` and what to do). `wait_seconds` (0–120) waits for the job to end first, \
sending progress notifications; call again while it is still running.",
        annotations(
            title = "Video status",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        ),
        output_schema = schema_for_output::<VideoStatusOutput>(),
        meta = viewer::tool_meta()
    )]
    async fn get_video_status(
        &self,
        Parameters(p): Parameters<GetVideoStatusParams>,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let progress = Progress::start(&ctx);
        let wait = p.wait_seconds;
        let status = tokio::select! {
            () = ctx.ct.cancelled() => Err(ServiceError::Cancelled),
            s = self.service().video_status(&p.job_id, wait, |job, waited| {
                let pct = job
                    .progress
                    .map(|p| format!(", {:.0}% done", p * 100.0))
                    .unwrap_or_default();
                progress.report(
                    waited.as_secs_f64(),
                    wait,
                    format!("video {}{pct}; waited {} s", job.state.as_str(), waited.as_secs()),
                );
            }) => s,
        };
        progress.finish().await;
        match status {
            Ok(mut s) => {
                self.link(&mut s.output);
                status_result(&s)
            }
            Err(e) => error_result(&e),
        }
    }
}
