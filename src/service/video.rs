//! Videos: requests checked against the model registry (durations, ratios,
//! resolutions, extras), the provider's work started as a durable job, and
//! the job's status — waited on, with the finished file and a contact sheet
//! of its frames. The polling itself is [`super::jobs`]'s.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use serde_json::{Map, Value, json};

use super::input::{MAX_PROMPT_CHARS, parse_filename, parse_prompt};
use super::refs::REFERENCE_MAX_SIDE;
use super::save::Inline;
use super::spend::{Call, billing_of};
use super::{InputPolicy, PreviewBudget, Priced, Service, ServiceError};
use crate::backend::{Backend, InputImage, VideoProvider, VideoRequest};
use crate::config::PreviewMode;
use crate::contract::{
    self, ErrorBody, ErrorCode, JobEntry, JobsOutput, Step, Text, VideoJobOutput, VideoMetadata,
    VideoStatusOutput,
};
use crate::domain::{self, InvalidValue, VideoModelInfo};
use crate::store::{Job, JobError, JobId, JobState, MediaId, MediaKind, MediaRecord, timestamp};

/// First and last frames larger than this (long side) are scaled down
/// before they are sent.
pub const FRAME_MAX_SIDE: u32 = 1920;
/// How long the provider keeps a video it made (Google: about 2 days);
/// after this it can no longer be extended.
pub const SAMPLE_LIFETIME: Duration = Duration::from_secs(2 * 24 * 3600);
/// The longest video an extension may produce (Veo: about 148 s).
pub const MAX_EXTENDED_SECONDS: f64 = 148.0;
/// Longest `wait_seconds` of `get_video_status`.
pub const MAX_WAIT_SECONDS: f64 = 120.0;
/// The duration asked when a call gives none (the seed's default).
const DEFAULT_DURATION: &str = "5s";

/// Who makes videos, or why nobody can.
#[derive(Clone)]
pub enum VideoAccess {
    Ready(Arc<dyn VideoProvider>),
    /// What to set to make videos possible.
    Unavailable(String),
}

impl VideoAccess {
    /// Why videos cannot be made, if they cannot.
    pub fn unavailable(&self) -> Option<&str> {
        match self {
            Self::Ready(_) => None,
            Self::Unavailable(why) => Some(why),
        }
    }

    /// Which provider family serves videos.
    pub fn family(&self) -> domain::VideoProvider {
        match self {
            Self::Ready(p) if p.backend() == Backend::CliProxy => domain::VideoProvider::CliProxy,
            _ => domain::VideoProvider::Gemini,
        }
    }

    /// `configured` (the default video model), or the first model of this
    /// provider when `configured` is served by another one.
    pub fn default_model(&self, configured: &str) -> &'static VideoModelInfo {
        let family = self.family();
        domain::video_model(configured)
            .filter(|m| m.provider == family)
            .or_else(|| domain::VIDEO_MODELS.iter().find(|m| m.provider == family))
            .unwrap_or(&domain::VIDEO_MODELS[0])
    }
}

/// What a video call does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoOperation {
    /// From a prompt (`generate_video`).
    Generate,
    /// From an image (`image_to_video`).
    Animate,
    /// A video made earlier, continued (`extend_video`).
    Extend,
}

impl VideoOperation {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Generate => "generate_video",
            Self::Animate => "image_to_video",
            Self::Extend => "extend_video",
        }
    }
}

/// A started video job: the tools' result (its `note` written for a
/// model), and what differs from what was asked, for other surfaces to
/// render.
#[derive(Debug, Clone)]
pub struct VideoStarted {
    pub output: VideoJobOutput,
    pub notes: Vec<Text>,
}

/// A video call's parameters as they arrive.
#[derive(Debug, Clone, Default)]
pub struct VideoInput {
    pub prompt: Option<String>,
    /// `5s`, `8`, `10s` …: mapped to the nearest length the model makes.
    pub duration: Option<String>,
    pub aspect_ratio: Option<String>,
    pub model: Option<String>,
    pub resolution: Option<String>,
    pub negative_prompt: Option<String>,
    /// Asset references (Veo 3.1, at most 3).
    pub reference_images: Vec<String>,
    /// The image to animate (`image_to_video`).
    pub image: Option<String>,
    /// The frame to end on.
    pub last_frame: Option<String>,
    /// The library video to extend (`extend_video`).
    pub video: Option<String>,
}

/// A library video that can still be extended.
#[derive(Debug, Clone)]
pub struct Extendable {
    pub id: MediaId,
    pub model: &'static VideoModelInfo,
    /// The provider's copy.
    pub sample_uri: String,
    pub aspect_ratio: &'static str,
    pub duration_seconds: f64,
}

/// A checked video request.
#[derive(Debug, Clone)]
pub struct VideoSpec {
    pub operation: VideoOperation,
    pub model: &'static VideoModelInfo,
    /// Empty only for `image_to_video` without one.
    pub prompt: String,
    pub duration_seconds: u32,
    pub aspect_ratio: &'static str,
    pub resolution: &'static str,
    pub negative_prompt: Option<String>,
    /// What differs from what was asked.
    pub notes: Vec<Text>,
}

fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn pick(
    field: &'static str,
    value: &str,
    allowed: &[&'static str],
) -> Result<&'static str, ServiceError> {
    allowed
        .iter()
        .copied()
        .find(|a| a.eq_ignore_ascii_case(value))
        .ok_or_else(|| {
            ServiceError::InvalidParameter(InvalidValue::new(field, value, allowed.iter().copied()))
        })
}

fn bad(field: &'static str, message: String) -> ServiceError {
    ServiceError::BadParameter { field, message }
}

fn seconds_list(d: &[u32]) -> String {
    let parts: Vec<String> = d.iter().map(|s| format!("{s}s")).collect();
    parts.join(", ")
}

/// Checks a video request against the registry: the model (which must be
/// served by `provider`), ratio, resolution, duration (nearest length,
/// ties up) and extras. `extending` is the video an extension continues.
pub fn parse_video(
    operation: VideoOperation,
    input: &VideoInput,
    default_model: &'static VideoModelInfo,
    provider: domain::VideoProvider,
    extending: Option<&Extendable>,
) -> Result<VideoSpec, ServiceError> {
    let mut notes = Vec::new();
    let prompt = match (operation, given(&input.prompt)) {
        (VideoOperation::Animate, None) => String::new(),
        (_, p) => parse_prompt(p.unwrap_or_default()).map_err(|e| match e {
            ServiceError::EmptyPrompt => bad(
                "prompt",
                match operation {
                    VideoOperation::Extend => {
                        "the prompt is empty; describe what happens next in the video".into()
                    }
                    _ => "the prompt is empty; describe the video to make: subject, action, camera, style, sound".into(),
                },
            ),
            other => other,
        })?,
    };
    if prompt.chars().count() > MAX_PROMPT_CHARS {
        return Err(ServiceError::PromptTooLong {
            chars: prompt.chars().count(),
        });
    }
    let model = match (given(&input.model), extending) {
        (None, Some(x)) => x.model,
        (None, None) => default_model,
        (Some(m), _) => domain::video_model(m).ok_or_else(|| ServiceError::UnknownVideoModel {
            model: m.to_owned(),
        })?,
    };
    if model.provider != provider {
        let (setting, serves) = match model.provider {
            domain::VideoProvider::Gemini => ("gemini", "Veo through the Gemini API"),
            domain::VideoProvider::CliProxy => ("cliproxy", "CLIProxyAPI"),
        };
        let here: Vec<&str> = domain::VIDEO_MODELS
            .iter()
            .filter(|m| m.provider == provider)
            .map(|m| m.id)
            .collect();
        return Err(bad(
            "model",
            format!(
                "`{}` is made by {serves}, but this server's video backend is another one; set `MCP_VIDEO_BACKEND={setting}`, or use one of: {}",
                model.id,
                here.join(", ")
            ),
        ));
    }
    let refs = input.reference_images.len();
    if refs > model.extras.reference_images as usize {
        return Err(bad(
            "reference_images",
            match model.extras.reference_images {
                0 => format!(
                    "`{}` takes no reference images; use `veo-3.1-generate-preview` or `veo-3.1-fast-generate-preview` (up to 3)",
                    model.id
                ),
                n => format!(
                    "{refs} reference images given; `{}` takes at most {n}",
                    model.id
                ),
            },
        ));
    }
    let has_image = given(&input.image).is_some();
    let has_last = given(&input.last_frame).is_some();
    if refs > 0 && (has_image || has_last) {
        return Err(bad(
            "reference_images",
            "reference images cannot be combined with a first or last frame; give either reference_images or image_path/last_frame".into(),
        ));
    }
    if has_last && !model.extras.last_frame {
        return Err(bad(
            "last_frame",
            format!(
                "`{}` cannot end on a given frame; use `veo-3.1-generate-preview` or `veo-3.1-fast-generate-preview`",
                model.id
            ),
        ));
    }
    if given(&input.negative_prompt).is_some() && !model.extras.negative_prompt {
        return Err(bad(
            "negative_prompt",
            format!("`{}` takes no negative prompt; leave it out", model.id),
        ));
    }
    if operation == VideoOperation::Animate && !model.extras.image {
        return Err(bad(
            "model",
            format!("`{}` cannot animate an image", model.id),
        ));
    }
    let (aspect_ratio, resolution, duration_seconds) = match (operation, extending) {
        (VideoOperation::Extend, Some(x)) => {
            if !model.extras.extend {
                return Err(bad(
                    "model",
                    format!(
                        "`{}` cannot extend videos; only the Veo 3.1 models can",
                        model.id
                    ),
                ));
            }
            if let Some(r) = given(&input.resolution).filter(|r| !r.eq_ignore_ascii_case("720p")) {
                return Err(ServiceError::InvalidParameter(InvalidValue::new(
                    "resolution",
                    r,
                    ["720p"],
                )));
            }
            if given(&input.duration).is_some() {
                notes.push(
                    Text::from("`duration` is not used by ")
                        .name(Step::ExtendVideo)
                        .plain(format!(
                            ": each extension adds {} s",
                            model.extension_seconds
                        )),
                );
            }
            let total = x.duration_seconds + f64::from(model.extension_seconds);
            if total > MAX_EXTENDED_SECONDS + 0.5 {
                return Err(ServiceError::CannotExtend {
                    filename: x.id.to_string(),
                    reason: format!(
                        "it is {:.0} s long; Veo extends videos up to about {MAX_EXTENDED_SECONDS:.0} s",
                        x.duration_seconds
                    )
                    .into(),
                });
            }
            (x.aspect_ratio, "720p", model.extension_seconds)
        }
        _ => {
            let mut ratios: Vec<&'static str> = model.aspect_ratios.to_vec();
            if refs > 0 {
                // Veo 3.1 makes reference-guided videos at 16:9 only.
                ratios.retain(|r| *r == "16:9");
            }
            let aspect_ratio = match given(&input.aspect_ratio) {
                None => ratios.first().copied().unwrap_or("16:9"),
                Some(r) => pick("aspect_ratio", r, &ratios)?,
            };
            let resolution = match given(&input.resolution) {
                None => model.default_resolution(),
                Some(r) => pick("resolution", r, model.resolutions)?,
            };
            let mut allowed = model.durations_at(resolution);
            if refs > 0 && allowed.contains(&8) {
                allowed = vec![8];
            }
            let asked_text = given(&input.duration).unwrap_or(DEFAULT_DURATION);
            let asked = domain::parse_seconds(asked_text).ok_or_else(|| {
                ServiceError::InvalidParameter(InvalidValue::new(
                    "duration",
                    asked_text,
                    allowed.iter().map(|d| format!("{d}s")),
                ))
            })?;
            let made = VideoModelInfo::nearest_duration(&allowed, asked);
            if (f64::from(made) - asked).abs() > 0.01 {
                let why = if refs > 0 {
                    " with reference images".to_owned()
                } else if allowed.len() < model.durations.len() {
                    format!(" at {resolution}")
                } else {
                    String::new()
                };
                let made_text = Text::from(format!(
                    "made {made} s, the nearest to {asked_text} that `{}` makes{why} ({}); ",
                    model.id,
                    seconds_list(&allowed)
                ));
                notes.push(if model.extras.extend {
                    made_text
                        .plain("for a longer video extend the result with ")
                        .name(Step::ExtendVideo)
                        .plain(format!(" (+{} s each)", model.extension_seconds))
                } else {
                    made_text
                        .plain("for a longer video use a Veo 3.1 model and extend it with ")
                        .name(Step::ExtendVideo)
                });
            }
            (aspect_ratio, resolution, made)
        }
    };
    Ok(VideoSpec {
        operation,
        model,
        prompt,
        duration_seconds,
        aspect_ratio,
        resolution,
        negative_prompt: given(&input.negative_prompt).map(str::to_owned),
        notes,
    })
}

/// A job's status and what to show inline with it.
#[derive(Debug, Clone)]
pub struct VideoStatus {
    pub output: VideoStatusOutput,
    /// The contact sheet of a finished video.
    pub inline: Inline,
}

/// The contract's error body of a failed job.
pub(super) fn job_error_body(e: &JobError) -> ErrorBody {
    ErrorBody {
        code: ErrorCode::parse(&e.code).unwrap_or(ErrorCode::GenerationFailed),
        message: e.message.clone(),
        details: Map::new(),
    }
}

impl Service {
    /// The video provider, or `VIDEO_BACKEND_UNAVAILABLE` saying what to set.
    pub(super) fn video_provider(&self) -> Result<Arc<dyn VideoProvider>, ServiceError> {
        match &self.videos {
            VideoAccess::Ready(p) => Ok(p.clone()),
            VideoAccess::Unavailable(why) => Err(ServiceError::VideoUnavailable(why.clone())),
        }
    }

    /// Why videos cannot be made, if they cannot.
    pub fn video_unavailable(&self) -> Option<&str> {
        self.videos.unavailable()
    }

    /// Which provider family serves videos here.
    pub(super) fn video_family(&self) -> domain::VideoProvider {
        self.videos.family()
    }

    /// The configured default video model, or the first of the provider's
    /// when the default is served by another one.
    pub(super) fn default_video_model(&self) -> &'static VideoModelInfo {
        self.videos.default_model(self.video.default_model)
    }

    /// Checks a video request without starting anything.
    pub async fn parse_video_request(
        &self,
        operation: VideoOperation,
        input: &VideoInput,
        policy: &InputPolicy,
    ) -> Result<(VideoSpec, Option<Extendable>), ServiceError> {
        let extending = match operation {
            VideoOperation::Extend => Some(
                self.extendable(given(&input.video).unwrap_or_default(), policy)
                    .await?,
            ),
            _ => None,
        };
        let spec = parse_video(
            operation,
            input,
            self.default_video_model(),
            self.video_family(),
            extending.as_ref(),
        )?;
        Ok((spec, extending))
    }

    /// Starts a video: checks the request, reads its images, records a job
    /// and has the provider accept the work. The job id comes back at once;
    /// the runner polls and saves the file.
    pub async fn start_video(
        &self,
        operation: VideoOperation,
        input: &VideoInput,
        policy: &InputPolicy,
    ) -> Result<VideoStarted, ServiceError> {
        let provider = self.video_provider()?;
        let (mut spec, extending) = self.parse_video_request(operation, input, policy).await?;
        let image = match (operation, given(&input.image)) {
            (VideoOperation::Animate, None) => {
                return Err(bad(
                    "image_path",
                    "`image_path` is empty; give the image to animate (a library file name, a `media://files/…` URI or a path)".into(),
                ));
            }
            (_, Some(r)) => Some(self.frame("image_path", r, FRAME_MAX_SIDE, policy).await?),
            (_, None) => None,
        };
        if let (Some(f), None) = (&image, given(&input.aspect_ratio)) {
            // An animated image keeps its orientation unless told otherwise.
            spec.aspect_ratio = nearest_ratio(spec.model.aspect_ratios, f.width, f.height);
        }
        let last_frame = match given(&input.last_frame) {
            Some(r) => Some(self.frame("last_frame", r, FRAME_MAX_SIDE, policy).await?),
            None => None,
        };
        let mut references = Vec::with_capacity(input.reference_images.len());
        for (i, r) in input.reference_images.iter().enumerate() {
            references.push(
                self.frame(
                    &format!("reference_images[{i}]"),
                    r,
                    REFERENCE_MAX_SIDE,
                    policy,
                )
                .await?,
            );
        }

        let mut params = Map::new();
        params.insert("prompt".into(), json!(spec.prompt));
        params.insert("duration_seconds".into(), json!(spec.duration_seconds));
        params.insert("aspect_ratio".into(), json!(spec.aspect_ratio));
        params.insert("resolution".into(), json!(spec.resolution));
        if let Some(d) = given(&input.duration) {
            params.insert("duration_asked".into(), json!(d));
        }
        if let Some(n) = &spec.negative_prompt {
            params.insert("negative_prompt".into(), json!(n));
        }
        if let Some(f) = &image {
            params.insert("image".into(), json!(f.label));
        }
        if let Some(f) = &last_frame {
            params.insert("last_frame".into(), json!(f.label));
        }
        if !references.is_empty() {
            let labels: Vec<&str> = references.iter().map(|f| f.label.as_str()).collect();
            params.insert("reference_images".into(), json!(labels));
        }
        let source = match (&extending, &image) {
            (Some(x), _) => Some(x.id.clone()),
            (None, Some(f)) => f.library.clone(),
            _ => None,
        };
        if let Some(x) = &extending {
            params.insert("video".into(), json!(x.id.as_str()));
        }
        if let Some(s) = &source {
            params.insert("source".into(), json!(s.as_str()));
        } else if let Some(f) = &image {
            params.insert("source".into(), json!(f.label));
        }
        if !spec.notes.is_empty() {
            let notes: Vec<String> = spec.notes.iter().map(Text::to_string).collect();
            params.insert("note".into(), json!(notes.join("; ")));
        }

        // Priced and held against the budget before anything is sent.
        let call = Call {
            operation: operation.as_str(),
            kind: "video",
            model: spec.model.id.to_owned(),
            size: spec.resolution.to_owned(),
            seconds: Some(f64::from(spec.duration_seconds)),
            estimate: self.estimate_cost(&Priced::Video {
                model: spec.model.id.to_owned(),
                resolution: spec.resolution.to_owned(),
                seconds: f64::from(spec.duration_seconds),
            }),
        };
        if let Some(usd) = call.estimate {
            params.insert("estimated_cost_usd".into(), json!(usd));
        }
        let hold = self.reserve(call.estimate.unwrap_or(0.0)).await?;

        let now = Utc::now();
        let deadline = now
            + chrono::Duration::from_std(self.video.deadline)
                .unwrap_or_else(|_| chrono::Duration::minutes(20));
        let mut job = Job {
            id: JobId::new(now),
            operation: operation.as_str().to_owned(),
            provider: backend_name(provider.backend()).to_owned(),
            model: spec.model.id.to_owned(),
            state: JobState::Queued,
            params,
            provider_ref: None,
            progress: None,
            attempts: 0,
            error: None,
            result: None,
            sample_uri: None,
            created: now,
            updated: now,
            deadline,
        };
        self.jobs
            .create(&job)
            .await
            .map_err(ServiceError::Storage)?;

        let submission = Submission {
            model: spec.model.id,
            prompt: spec.prompt.clone(),
            aspect_ratio: spec.aspect_ratio,
            duration_seconds: spec.duration_seconds,
            resolution: spec.resolution,
            negative_prompt: spec.negative_prompt.clone(),
            image: image.map(|f| f.image),
            last_frame: last_frame.map(|f| f.image),
            references: references.into_iter().map(|f| f.image).collect(),
            extend: extending.as_ref().map(|x| x.sample_uri.clone()),
        };
        // Spawned: the provider's answer is recorded even if the caller goes
        // away meanwhile, since the work may already be paid for.
        let submitted = {
            let provider = provider.clone();
            tokio::spawn(async move { provider.submit(&submission.request()).await })
                .await
                .map_err(|e| ServiceError::Internal(format!("submit task failed: {e}")))?
        };
        job.attempts = 1;
        job.updated = Utc::now();
        let submitted = submitted.map_err(|e| ServiceError::video(provider.backend(), e));
        match &submitted {
            Ok(_) => self.record_video_start(&call, hold, job.id.as_str()).await,
            Err(err) => {
                let (outcome, billed) = billing_of(err);
                let entry = call.entry(outcome, billed, Some(err.code().as_str().to_owned()));
                self.settle_call(&hold, call.estimate.unwrap_or(0.0), entry)
                    .await;
            }
        }
        match submitted {
            Ok(name) => {
                job.state = JobState::Running;
                job.provider_ref = Some(name);
                self.jobs
                    .update(&job)
                    .await
                    .map_err(ServiceError::Storage)?;
                self.jobs_changed();
            }
            Err(err) => {
                job.state = JobState::Failed;
                job.error = Some(JobError {
                    code: err.code().as_str().to_owned(),
                    message: err.message(),
                });
                if let Err(e) = self.jobs.update(&job).await {
                    tracing::warn!(error = %e, job = %job.id, "could not record the failed job");
                }
                return Err(err);
            }
        }
        let mut note = format!(
            "Started. This {} s video takes about 1–6 minutes. Call get_video_status with this job_id \
(wait_seconds up to 120 waits for it); the job keeps running if you do something else meanwhile.",
            spec.duration_seconds
        );
        for n in &spec.notes {
            note.push_str(" Note: ");
            note.push_str(&n.to_string());
            note.push('.');
        }
        Ok(VideoStarted {
            output: VideoJobOutput {
                success: true,
                job_id: job.id.to_string(),
                status: job.state.as_str().to_owned(),
                model: spec.model.id.to_owned(),
                duration_seconds: spec.duration_seconds,
                aspect_ratio: spec.aspect_ratio.to_owned(),
                resolution: spec.resolution.to_owned(),
                note,
                estimated_cost_usd: call.estimate,
            },
            notes: spec.notes,
        })
    }

    /// An image for a video request, scaled to at most `max_side`.
    async fn frame(
        &self,
        field: &str,
        reference: &str,
        max_side: u32,
        policy: &InputPolicy,
    ) -> Result<Frame, ServiceError> {
        let read = self.read_input(field, reference, policy).await?;
        let limits = self.input_limits();
        let label = read.label.clone();
        let library = read.library_id().cloned();
        let (width, height) = (read.info.width, read.info.height);
        let image = super::pixels::run("frame", move || {
            let decoded = read.decode(&limits)?;
            read.for_model(&decoded, max_side)
        })
        .await??;
        Ok(Frame {
            label,
            library,
            image,
            width,
            height,
        })
    }

    /// The library video `reference` names, if the provider can still
    /// extend it.
    async fn extendable(
        &self,
        reference: &str,
        policy: &InputPolicy,
    ) -> Result<Extendable, ServiceError> {
        let _ = policy;
        if reference.is_empty() {
            return Err(bad(
                "video",
                "`video` is empty; give the library file name of a video made here".into(),
            ));
        }
        let id = match parse_filename(reference) {
            Ok(id) => id,
            Err(_) => self
                .library
                .local_id(std::path::Path::new(reference))
                .ok_or_else(|| ServiceError::FileNotFound(reference.to_owned()))?,
        };
        let record = self.known(&id).await?;
        let cannot = |reason: Text| ServiceError::CannotExtend {
            filename: id.to_string(),
            reason,
        };
        if record.kind != MediaKind::Video {
            return Err(cannot(
                Text::from("it is an image; animate it with ")
                    .name(Step::ImageToVideo)
                    .plain(" instead"),
            ));
        }
        let job = match record.fact("job_id").and_then(|j| j.parse::<JobId>().ok()) {
            Some(j) => self.jobs.get(&j).await.map_err(ServiceError::Storage)?,
            None => None,
        };
        let Some(job) = job else {
            return Err(cannot(
                "it was not made by a video job here, so the provider has no copy to continue; only videos Veo made here can be extended".into(),
            ));
        };
        let model = domain::video_model(&job.model)
            .filter(|m| m.extras.extend)
            .ok_or_else(|| {
                cannot(
                    format!(
                        "it was made by `{}`, and only videos made by the Veo 3.1 models can be extended",
                        job.model
                    )
                    .into(),
                )
            })?;
        let Some(sample_uri) = job.sample_uri.clone() else {
            return Err(cannot(
                "the provider returned it inline without a copy to continue from; generate a new video to extend".into(),
            ));
        };
        let age = Utc::now().signed_duration_since(job.updated);
        if age.to_std().unwrap_or_default() > SAMPLE_LIFETIME {
            return Err(cannot(
                Text::from(format!(
                    "the provider keeps a video's copy for about 2 days and this one was made {} days ago; make a new video (",
                    age.num_days()
                ))
                .name(Step::ImageToVideo)
                .plain(" can start from one of its frames)"),
            ));
        }
        let duration_seconds = record
            .metadata
            .get("duration_seconds")
            .and_then(Value::as_f64)
            .unwrap_or(8.0);
        let aspect_ratio = record
            .fact("aspect_ratio")
            .and_then(|r| model.aspect_ratios.iter().copied().find(|a| *a == r))
            .unwrap_or("16:9");
        Ok(Extendable {
            id,
            model,
            sample_uri,
            aspect_ratio,
            duration_seconds,
        })
    }

    /// A job's status; with `wait` > 0, waits for the job to end or the
    /// time to pass, calling `on_wait` with the job about every 2 s.
    pub async fn video_status(
        &self,
        job_id: &str,
        wait_seconds: Option<f64>,
        mut on_wait: impl FnMut(&Job, Duration) + Send,
    ) -> Result<VideoStatus, ServiceError> {
        let wait = match wait_seconds {
            None => 0.0,
            Some(w) if (0.0..=MAX_WAIT_SECONDS).contains(&w) => w,
            Some(w) => {
                return Err(ServiceError::InvalidParameter(InvalidValue::new(
                    "wait_seconds",
                    &w.to_string(),
                    ["0 to 120"],
                )));
            }
        };
        let id: JobId = job_id
            .trim()
            .parse()
            .map_err(|_| ServiceError::JobNotFound(job_id.trim().to_owned()))?;
        let started = tokio::time::Instant::now();
        let until = started + Duration::from_secs_f64(wait);
        let mut changes = self.job_changes.subscribe();
        loop {
            let job = self
                .jobs
                .get(&id)
                .await
                .map_err(ServiceError::Storage)?
                .ok_or_else(|| ServiceError::JobNotFound(id.to_string()))?;
            let now = tokio::time::Instant::now();
            if job.state.is_final() || now >= until {
                return self.status_of(&job).await;
            }
            on_wait(&job, now - started);
            // Woken by this process's runner at once; another process's
            // (or a stuck runner) is seen at the next look.
            let _ =
                tokio::time::timeout((until - now).min(Duration::from_secs(2)), changes.changed())
                    .await;
        }
    }

    /// The status of `job` as the contract describes it.
    async fn status_of(&self, job: &Job) -> Result<VideoStatus, ServiceError> {
        let elapsed = Utc::now()
            .signed_duration_since(job.created)
            .num_seconds()
            .max(0) as u64;
        let mut out = VideoStatusOutput {
            success: true,
            job_id: job.id.to_string(),
            status: job.state.as_str().to_owned(),
            progress: job.progress,
            elapsed_seconds: elapsed,
            video_path: None,
            filename: None,
            uri: None,
            url: None,
            metadata: None,
            error: job.error.as_ref().map(job_error_body),
            note: None,
        };
        let mut inline = Inline::None;
        match job.state {
            JobState::Queued | JobState::Running => {
                out.note = Some(format!(
                    "Still {} after {elapsed} s (most videos take 1–6 minutes). Call get_video_status again, with wait_seconds up to 120 to wait for it.",
                    job.state.as_str()
                ));
            }
            JobState::Succeeded => {
                let record = match &job.result {
                    Some(id) => self.library.get(id).await.map_err(ServiceError::Storage)?,
                    None => None,
                };
                match record {
                    Some(r) => {
                        out.video_path = Some(self.path_text(&r.id)).filter(|p| !p.is_empty());
                        out.filename = Some(r.id.to_string());
                        out.uri = Some(contract::media_uri(r.id.as_str()));
                        out.metadata = Some(video_metadata(&r, job));
                        let (shown, note) = self.contact_sheet(&r.id).await;
                        inline = shown;
                        out.note = Some(note);
                    }
                    None => {
                        out.note = Some(match &job.result {
                            Some(id) => format!(
                                "The video `{id}` was made but has since been deleted from the library."
                            ),
                            None => "The job finished without a file.".into(),
                        });
                    }
                }
            }
            JobState::Failed | JobState::Cancelled => {}
        }
        Ok(VideoStatus {
            output: out,
            inline,
        })
    }

    /// A contact sheet of a library video's frames within the preview
    /// budget, and a note saying what it shows (or why there is none).
    async fn contact_sheet(&self, id: &MediaId) -> (Inline, String) {
        if self.results.preview == PreviewMode::None {
            return (
                Inline::None,
                "The video is saved; previews are off (MCP_PREVIEW=none).".into(),
            );
        }
        let bytes = match self.library.read(id).await {
            Ok(b) => b,
            Err(e) => {
                return (
                    Inline::None,
                    format!("The video is saved; no preview: {e}."),
                );
            }
        };
        let budget = PreviewBudget::SINGLE;
        let sheet = super::pixels::run("contact sheet", move || {
            crate::media::video::contact_sheet(&bytes, budget.max_side, budget.max_bytes)
        })
        .await;
        match sheet {
            Ok(Ok(p)) => (
                Inline::Preview(p),
                "The attached image is a contact sheet of 4 frames (first, two from the middle, last), left to right and top to bottom.".into(),
            ),
            Ok(Err(e)) => (
                Inline::None,
                format!("The video is saved, but no preview could be made: {e}."),
            ),
            Err(e) => (
                Inline::None,
                format!("The video is saved, but no preview could be made: {e}."),
            ),
        }
    }

    /// The newest jobs, newest first.
    pub async fn list_jobs(&self, limit: u32) -> Result<JobsOutput, ServiceError> {
        let jobs = self
            .jobs
            .recent(limit.clamp(1, 1000))
            .await
            .map_err(ServiceError::Storage)?;
        Ok(JobsOutput {
            success: true,
            jobs: jobs
                .iter()
                .map(|j| JobEntry {
                    job_id: j.id.to_string(),
                    operation: j.operation.clone(),
                    model: j.model.clone(),
                    status: j.state.as_str().to_owned(),
                    progress: j.progress,
                    created: timestamp(j.created),
                    updated: timestamp(j.updated),
                    filename: j.result.as_ref().map(ToString::to_string),
                    error: j.error.as_ref().map(job_error_body),
                })
                .collect(),
        })
    }

    /// Tells waiters and the runner that a job changed.
    pub(super) fn jobs_changed(&self) {
        self.job_changes.send_modify(|n| *n = n.wrapping_add(1));
        self.runner_wake.notify_one();
    }
}

/// A provider request that owns its parts (to outlive the call).
struct Submission {
    model: &'static str,
    prompt: String,
    aspect_ratio: &'static str,
    duration_seconds: u32,
    resolution: &'static str,
    negative_prompt: Option<String>,
    image: Option<InputImage>,
    last_frame: Option<InputImage>,
    references: Vec<InputImage>,
    extend: Option<String>,
}

impl Submission {
    fn request(&self) -> VideoRequest<'_> {
        VideoRequest {
            model: self.model,
            prompt: &self.prompt,
            aspect_ratio: self.aspect_ratio,
            duration_seconds: self.duration_seconds,
            resolution: Some(self.resolution),
            negative_prompt: self.negative_prompt.as_deref(),
            image: self.image.as_ref(),
            last_frame: self.last_frame.as_ref(),
            reference_images: &self.references,
            extend: self.extend.as_deref(),
        }
    }
}

/// An input image of a video request.
struct Frame {
    label: String,
    library: Option<MediaId>,
    image: InputImage,
    width: u32,
    height: u32,
}

/// The ratio of `ratios` (`W:H`) closest to `width`×`height`.
fn nearest_ratio(ratios: &[&'static str], width: u32, height: u32) -> &'static str {
    let want = (f64::from(width.max(1)) / f64::from(height.max(1))).ln();
    let value = |r: &str| {
        let (w, h) = r.split_once(':').unwrap_or(("16", "9"));
        let w: f64 = w.parse().unwrap_or(16.0);
        let h: f64 = h.parse().unwrap_or(9.0);
        (w / h).ln()
    };
    ratios
        .iter()
        .copied()
        .min_by(|a, b| (value(a) - want).abs().total_cmp(&(value(b) - want).abs()))
        .unwrap_or("16:9")
}

pub(super) fn backend_name(b: Backend) -> &'static str {
    match b {
        Backend::CliProxy => "cliproxy",
        Backend::Gemini => "gemini",
    }
}

/// The contract's facts about a saved video, from its record and job.
pub(super) fn video_metadata(r: &MediaRecord, job: &Job) -> VideoMetadata {
    let fact = |key: &str| r.fact(key).unwrap_or_default().to_owned();
    VideoMetadata {
        prompt: r.prompt.clone().unwrap_or_default(),
        model: r.model.clone().unwrap_or_default(),
        duration_seconds: r
            .metadata
            .get("duration_seconds")
            .and_then(Value::as_f64)
            .unwrap_or_default(),
        width: r.width.unwrap_or(0),
        height: r.height.unwrap_or(0),
        aspect_ratio: fact("aspect_ratio"),
        resolution: fact("resolution"),
        mime_type: r.mime_type.clone(),
        file_size_bytes: r.size_bytes,
        timestamp: timestamp(r.created),
        operation: r.fact("operation").unwrap_or(&job.operation).to_owned(),
        job_id: job.id.to_string(),
        source: r.fact("source").map(str::to_owned),
        parameters: r.parameters(),
        note: r.fact("note").map(str::to_owned),
        cost_usd: r.metadata.get("cost_usd").and_then(Value::as_f64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::Surface;

    fn veo31() -> &'static VideoModelInfo {
        domain::video_model("veo-3.1-generate-preview").unwrap()
    }

    fn parse(op: VideoOperation, input: VideoInput) -> Result<VideoSpec, ServiceError> {
        parse_video(op, &input, veo31(), domain::VideoProvider::Gemini, None)
    }

    fn prompt(p: &str) -> VideoInput {
        VideoInput {
            prompt: Some(p.into()),
            ..Default::default()
        }
    }

    #[test]
    fn defaults_follow_the_seed_and_the_rule() {
        let s = parse(VideoOperation::Generate, prompt("waves")).unwrap();
        assert_eq!(
            (s.model.id, s.duration_seconds, s.aspect_ratio, s.resolution),
            ("veo-3.1-generate-preview", 6, "16:9", "720p")
        );
        let note = |surface| s.notes[0].render(surface);
        assert!(
            note(Surface::Tool).contains("made 6 s")
                && note(Surface::Tool).contains("`extend_video`"),
            "{:?}",
            s.notes
        );
        // At the shell, the same note names the command that extends.
        assert!(
            note(Surface::Cli).contains("`media-gen video --extend VIDEO`"),
            "{:?}",
            s.notes
        );
        let s = parse(
            VideoOperation::Generate,
            VideoInput {
                duration: Some("8s".into()),
                ..prompt("waves")
            },
        )
        .unwrap();
        assert!(s.notes.is_empty(), "{:?}", s.notes);
        for (asked, made) in [("10s", 8), ("15s", 8), ("4", 4), ("7s", 8)] {
            let s = parse(
                VideoOperation::Generate,
                VideoInput {
                    duration: Some(asked.into()),
                    ..prompt("waves")
                },
            )
            .unwrap();
            assert_eq!(s.duration_seconds, made, "{asked}");
        }
    }

    #[test]
    fn refusals_name_what_is_allowed() {
        let code = |r: Result<VideoSpec, ServiceError>| r.unwrap_err();
        let e = code(parse(
            VideoOperation::Generate,
            VideoInput {
                aspect_ratio: Some("1:1".into()),
                ..prompt("x")
            },
        ));
        assert_eq!(e.code(), ErrorCode::InvalidParameter);
        assert!(e.to_string().contains("16:9, 9:16"), "{e}");
        let e = code(parse(
            VideoOperation::Generate,
            VideoInput {
                duration: Some("long".into()),
                ..prompt("x")
            },
        ));
        assert!(e.to_string().contains("4s, 6s, 8s"), "{e}");
        let e = code(parse(
            VideoOperation::Generate,
            VideoInput {
                model: Some("veo-3.0-generate-001".into()),
                last_frame: Some("a.png".into()),
                ..prompt("x")
            },
        ));
        assert!(e.to_string().contains("veo-3.1"), "{e}");
        let e = code(parse(
            VideoOperation::Generate,
            VideoInput {
                model: Some("veo-3.0-generate-001".into()),
                resolution: Some("4k".into()),
                ..prompt("x")
            },
        ));
        assert!(e.to_string().contains("720p, 1080p"), "{e}");
        let e = code(parse(
            VideoOperation::Generate,
            VideoInput {
                reference_images: vec!["a".into(); 4],
                ..prompt("x")
            },
        ));
        assert!(e.to_string().contains("at most 3"), "{e}");
        let e = code(parse(
            VideoOperation::Generate,
            VideoInput {
                model: Some("grok-imagine-video".into()),
                ..prompt("x")
            },
        ));
        assert!(e.to_string().contains("MCP_VIDEO_BACKEND=cliproxy"), "{e}");
        let e = code(parse(
            VideoOperation::Generate,
            VideoInput {
                model: Some("sora".into()),
                ..prompt("x")
            },
        ));
        assert_eq!(e.code(), ErrorCode::InvalidModel);
        assert_eq!(
            code(parse(VideoOperation::Generate, prompt("  "))).code(),
            ErrorCode::InvalidParameter
        );
    }

    #[test]
    fn high_resolutions_and_references_need_eight_seconds() {
        let s = parse(
            VideoOperation::Generate,
            VideoInput {
                resolution: Some("1080P".into()),
                duration: Some("4s".into()),
                ..prompt("x")
            },
        )
        .unwrap();
        assert_eq!((s.duration_seconds, s.resolution), (8, "1080p"));
        assert!(s.notes[0].to_string().contains("at 1080p"), "{:?}", s.notes);
        let refs = VideoInput {
            reference_images: vec!["a".into()],
            ..prompt("x")
        };
        let s = parse(VideoOperation::Generate, refs.clone()).unwrap();
        assert_eq!((s.duration_seconds, s.aspect_ratio), (8, "16:9"));
        let e = parse(
            VideoOperation::Generate,
            VideoInput {
                aspect_ratio: Some("9:16".into()),
                ..refs.clone()
            },
        )
        .unwrap_err();
        assert!(e.to_string().contains("16:9"), "{e}");
        let e = parse(
            VideoOperation::Animate,
            VideoInput {
                image: Some("a.png".into()),
                ..refs
            },
        )
        .unwrap_err();
        assert!(e.to_string().contains("cannot be combined"), "{e}");
    }

    #[test]
    fn extensions_continue_the_original() {
        let x = Extendable {
            id: "video_20260101_120000_000_abcdef.mp4".parse().unwrap(),
            model: domain::video_model("veo-3.1-fast-generate-preview").unwrap(),
            sample_uri: "https://x/v1beta/files/a:download?alt=media".into(),
            aspect_ratio: "9:16",
            duration_seconds: 8.0,
        };
        let ext = |input: VideoInput| {
            parse_video(
                VideoOperation::Extend,
                &input,
                veo31(),
                domain::VideoProvider::Gemini,
                Some(&x),
            )
        };
        let s = ext(prompt("then it rains")).unwrap();
        assert_eq!(
            (s.model.id, s.duration_seconds, s.aspect_ratio, s.resolution),
            ("veo-3.1-fast-generate-preview", 7, "9:16", "720p")
        );
        let e = ext(VideoInput {
            resolution: Some("1080p".into()),
            ..prompt("x")
        })
        .unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidParameter);
        let e = ext(VideoInput {
            model: Some("veo-3.0-generate-001".into()),
            ..prompt("x")
        })
        .unwrap_err();
        assert!(e.to_string().contains("only the Veo 3.1"), "{e}");
        let long = Extendable {
            duration_seconds: 145.0,
            ..x.clone()
        };
        let e = parse_video(
            VideoOperation::Extend,
            &prompt("x"),
            veo31(),
            domain::VideoProvider::Gemini,
            Some(&long),
        )
        .unwrap_err();
        assert!(e.to_string().contains("148"), "{e}");
    }

    #[test]
    fn animated_images_keep_their_orientation() {
        let wide = ["16:9", "9:16"];
        assert_eq!(nearest_ratio(&wide, 800, 1200), "9:16");
        assert_eq!(nearest_ratio(&wide, 1200, 800), "16:9");
        assert_eq!(nearest_ratio(&["16:9", "9:16", "1:1"], 1000, 1010), "1:1");
    }

    #[test]
    fn image_to_video_may_go_without_a_prompt() {
        let s = parse(
            VideoOperation::Animate,
            VideoInput {
                image: Some("a.png".into()),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(s.prompt, "");
    }
}
