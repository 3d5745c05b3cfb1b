//! The contract's shapes: error codes and every tool's output, as the MCP
//! tools return them in `structuredContent` and the CLI prints them with
//! `--json`. Written once, here (serde for the wire, schemars for the
//! `outputSchema` the model reads); the service fills them in.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `media://files/NAME`: the resource URI of a library file.
pub fn media_uri(filename: &str) -> String {
    format!("media://files/{filename}")
}

/// Download links of library files for clients that reach the server over
/// HTTP (they cannot open its `image_path`): `{base}/files/NAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileUrls {
    base: std::sync::Arc<str>,
}

impl FileUrls {
    /// `base` is the server's public URL (`MCP_PUBLIC_URL`, or the bound
    /// address); a trailing `/` is dropped.
    pub fn new(base: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').into(),
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// The download URL of `filename` (library names need no escaping).
    pub fn of(&self, filename: &str) -> String {
        format!("{}/files/{filename}", self.base)
    }
}

/// A result that names library files and gains their download `url`s.
pub trait WithUrls {
    fn add_urls(&mut self, urls: &FileUrls);
}

/// The contract's error codes (ARCHITECTURE.md), spelled as on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    InvalidPrompt,
    InvalidModel,
    InvalidParameter,
    InvalidImage,
    CliproxyUnavailable,
    AuthFailed,
    RateLimited,
    ContentBlocked,
    GenerationTimeout,
    GenerationFailed,
    FileNotFound,
    JobNotFound,
    ConfirmationRequired,
    SaveFailed,
    VideoBackendUnavailable,
    BudgetExceeded,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 16] = [
        Self::InvalidPrompt,
        Self::InvalidModel,
        Self::InvalidParameter,
        Self::InvalidImage,
        Self::CliproxyUnavailable,
        Self::AuthFailed,
        Self::RateLimited,
        Self::ContentBlocked,
        Self::GenerationTimeout,
        Self::GenerationFailed,
        Self::FileNotFound,
        Self::JobNotFound,
        Self::ConfirmationRequired,
        Self::SaveFailed,
        Self::VideoBackendUnavailable,
        Self::BudgetExceeded,
    ];

    /// The code spelled `s`, if there is one.
    pub fn parse(s: &str) -> Option<ErrorCode> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidPrompt => "INVALID_PROMPT",
            Self::InvalidModel => "INVALID_MODEL",
            Self::InvalidParameter => "INVALID_PARAMETER",
            Self::InvalidImage => "INVALID_IMAGE",
            Self::CliproxyUnavailable => "CLIPROXY_UNAVAILABLE",
            Self::AuthFailed => "AUTH_FAILED",
            Self::RateLimited => "RATE_LIMITED",
            Self::ContentBlocked => "CONTENT_BLOCKED",
            Self::GenerationTimeout => "GENERATION_TIMEOUT",
            Self::GenerationFailed => "GENERATION_FAILED",
            Self::FileNotFound => "FILE_NOT_FOUND",
            Self::JobNotFound => "JOB_NOT_FOUND",
            Self::ConfirmationRequired => "CONFIRMATION_REQUIRED",
            Self::SaveFailed => "SAVE_FAILED",
            Self::VideoBackendUnavailable => "VIDEO_BACKEND_UNAVAILABLE",
            Self::BudgetExceeded => "BUDGET_EXCEEDED",
        }
    }
}

/// The error envelope of the contract: `{"success":false,"error":{code,message,details}}`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ErrorOutput {
    /// Always `false`.
    pub success: bool,
    pub error: ErrorBody,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code, e.g. `RATE_LIMITED`.
    pub code: ErrorCode,
    /// What went wrong and what to do next.
    pub message: String,
    /// Extra facts: the offending parameter, HTTP status, retry delay …
    pub details: Map<String, Value>,
}

/// Facts about a generated image (also written to its JSON sidecar).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ImageMetadata {
    pub prompt: String,
    pub model: String,
    pub aspect_ratio: String,
    pub image_size: String,
    /// Real pixel width, read from the file.
    pub width: u32,
    /// Real pixel height, read from the file.
    pub height: u32,
    pub mime_type: String,
    pub file_size_bytes: u64,
    /// When the file was saved (RFC 3339, UTC).
    pub timestamp: String,
    /// Text the model sent with the image, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_text: Option<String>,
    /// Edits: `edit`, `inpaint`, `outpaint` or `upscale`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// Edits: the image edited (a library file name, or a path).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Edits: `png`, `jpeg` or `webp`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_format: Option<String>,
    /// The parameters the operation used (mask, feather, direction, factor,
    /// method, reference images …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Map<String, Value>>,
    /// Something the caller should know (a mask scaled to the image …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Estimated cost in US dollars (the price of the model at this size;
    /// 0 for a local upscale); absent for a model without a price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    /// The model asked for, when it was rate limited and the fallback
    /// model (`MCP_FALLBACK_MODEL`) made the image; `model` is the one
    /// that made it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_from: Option<String>,
}

/// A generated image: where it is and what it is.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ImageOutput {
    /// Always `true`.
    pub success: bool,
    /// Absolute path of the saved file. Absent when the library is in
    /// object storage (no file on this machine): use `url` or `uri`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image_path: String,
    /// File name inside the media library (use it with the library tools).
    pub filename: String,
    /// MCP resource URI, `media://files/FILENAME`.
    pub uri: String,
    /// Download URL (over HTTP only): `GET` it with the same token as `/mcp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    pub metadata: ImageMetadata,
}

impl WithUrls for ImageOutput {
    fn add_urls(&mut self, urls: &FileUrls) {
        self.url = Some(urls.of(&self.filename));
    }
}

/// One entry of a batch: an image, or the error for that prompt.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum BatchItem {
    Ok(Box<ImageOutput>),
    Err(BatchError),
}

/// A failed prompt of a batch.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct BatchError {
    /// The prompt that failed.
    pub prompt: String,
    #[serde(flatten)]
    pub error: ErrorOutput,
}

/// Result of `generate_image_batch`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct BatchOutput {
    /// `true` when every prompt produced an image.
    pub success: bool,
    /// One entry per prompt, in the order given.
    pub results: Vec<BatchItem>,
    pub succeeded: usize,
    pub failed: usize,
}

impl WithUrls for BatchOutput {
    fn add_urls(&mut self, urls: &FileUrls) {
        for item in &mut self.results {
            if let BatchItem::Ok(image) = item {
                image.add_urls(urls);
            }
        }
    }
}

/// One model and what it accepts.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ModelOutput {
    pub id: String,
    /// `image` or `video`.
    #[serde(rename = "type")]
    pub kind: String,
    pub aspect_ratios: Vec<String>,
    /// Image models: the `image_size` values.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub image_sizes: Vec<String>,
    /// Video models: whole seconds.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub durations: Vec<u32>,
    /// Video models: output resolutions.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resolutions: Vec<String>,
    /// Image models: most `reference_images` one call may give.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_reference_images: Option<u32>,
    /// Used when a call names no model.
    pub default: bool,
    /// Whether the backend offers it now; `null` when that could not be checked.
    pub available: Option<bool>,
    /// What a call costs (an estimate); absent for a model with no price.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price: Option<ModelPrice>,
}

/// A model's estimated price: `{"per_image_usd":{"1K":0.134,…},"checked":"2026-…"}`
/// for image models, `{"per_second_usd":{"720p":0.4,…},…}` for video models.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct ModelPrice {
    /// Image models: US dollars per image, by `image_size`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_image_usd: Option<std::collections::BTreeMap<String, f64>>,
    /// Video models: US dollars per second of video, by `resolution`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_second_usd: Option<std::collections::BTreeMap<String, f64>>,
    /// The day the built-in figures were checked (UTC date).
    pub checked: String,
    /// Whether some figure comes from the config file's `[prices]`.
    pub configured: bool,
}

/// Result of `list_models`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ListModelsOutput {
    pub success: bool,
    pub models: Vec<ModelOutput>,
    /// Why `available` is `null` (or `false` for every video model), when it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// One file of a listing.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct FileEntry {
    pub filename: String,
    /// Absolute path; absent when the library is in object storage.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path: String,
    /// `image` or `video`.
    #[serde(rename = "type")]
    pub kind: String,
    pub size_bytes: u64,
    /// RFC 3339, UTC.
    pub created: String,
    pub prompt: Option<String>,
    pub model: Option<String>,
    pub mime_type: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// `media://files/FILENAME`.
    pub uri: String,
    /// Download URL (over HTTP only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Estimated cost in US dollars, where known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    /// How it was made from another file (`edit`, `upscale` …, `upload`), if so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
}

/// Result of `list_generated`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ListGeneratedOutput {
    pub success: bool,
    pub files: Vec<FileEntry>,
    /// How many files match in all (not just this page).
    pub total: u64,
    /// Pass as `offset` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_offset: Option<u64>,
}

impl WithUrls for ListGeneratedOutput {
    fn add_urls(&mut self, urls: &FileUrls) {
        for file in &mut self.files {
            file.url = Some(urls.of(&file.filename));
        }
    }
}

/// Where a file came from and what was made from it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Lineage {
    /// The file this one was made from (edits), if any.
    pub source: Option<String>,
    /// Files made from this one.
    pub derived: Vec<String>,
}

/// Result of `get_file_info`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct FileInfoOutput {
    pub success: bool,
    pub filename: String,
    /// Absolute path; absent when the library is in object storage.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub size_bytes: u64,
    pub mime_type: String,
    /// Read from the file itself.
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub created: String,
    pub uri: String,
    /// Download URL (over HTTP only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The JSON sidecar: prompt, model, parameters.
    pub metadata: Map<String, Value>,
    pub lineage: Lineage,
}

impl WithUrls for FileInfoOutput {
    fn add_urls(&mut self, urls: &FileUrls) {
        self.url = Some(urls.of(&self.filename));
    }
}

/// Result of `get_usage`: what the backend calls from `since` to `until`
/// were estimated to cost.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct UsageOutput {
    pub success: bool,
    /// Start of the period (RFC 3339, UTC, inclusive).
    pub since: String,
    /// End of the period (RFC 3339, UTC, exclusive).
    pub until: String,
    /// Estimated spend: calls the provider bills (made files, and calls
    /// that may have been generated); refused, rate-limited, timed-out and
    /// blocked calls count 0. Running video jobs count their estimate.
    pub total_usd: f64,
    /// Images made.
    pub images: u64,
    /// Videos made.
    pub videos: u64,
    /// Every backend call recorded, whatever its outcome.
    pub calls: u64,
    pub failed: u64,
    pub blocked: u64,
    /// Video jobs not ended yet.
    pub running: u64,
    /// Per model: files made (`count`) and estimated spend, costliest first.
    pub by_model: Vec<UsageByModel>,
    /// Per UTC day with any call, oldest first.
    pub by_day: Vec<UsageByDay>,
    pub budget: UsageBudget,
    /// Where the figures come from.
    pub note: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct UsageByModel {
    pub model: String,
    /// Files made.
    pub count: u64,
    pub usd: f64,
    /// Calls, whatever their outcome.
    pub calls: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct UsageByDay {
    /// `YYYY-MM-DD` (UTC).
    pub date: String,
    /// Files made.
    pub count: u64,
    pub usd: f64,
}

/// The caps and what counts against them now (UTC day and month).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct UsageBudget {
    /// `MCP_BUDGET_DAILY_USD`; `null` when unset.
    pub daily_usd: Option<f64>,
    /// `MCP_BUDGET_MONTHLY_USD`; `null` when unset.
    pub monthly_usd: Option<f64>,
    pub spent_today: f64,
    pub spent_month: f64,
}

/// Result of `delete_file`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct DeleteOutput {
    pub success: bool,
    /// The file name that was deleted.
    pub deleted: String,
}

/// Result of `generate_video`, `image_to_video` and `extend_video`: a
/// started job.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct VideoJobOutput {
    /// Always `true`.
    pub success: bool,
    /// Pass to `get_video_status`.
    pub job_id: String,
    /// `queued` or `running`.
    pub status: String,
    pub model: String,
    /// The length that will be made (the nearest the model makes to what
    /// was asked).
    pub duration_seconds: u32,
    pub aspect_ratio: String,
    pub resolution: String,
    /// What to do next, and anything that differs from what was asked.
    pub note: String,
    /// What the video is estimated to cost (per second at this resolution
    /// × its length), held against the budget until the job ends; absent
    /// for a model without a price.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimated_cost_usd: Option<f64>,
}

/// Facts about a finished video (also written to its JSON sidecar).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct VideoMetadata {
    pub prompt: String,
    pub model: String,
    /// Read from the MP4 itself.
    pub duration_seconds: f64,
    /// Read from the MP4 itself.
    pub width: u32,
    /// Read from the MP4 itself.
    pub height: u32,
    pub aspect_ratio: String,
    pub resolution: String,
    pub mime_type: String,
    pub file_size_bytes: u64,
    /// When the file was saved (RFC 3339, UTC).
    pub timestamp: String,
    /// `generate_video`, `image_to_video` or `extend_video`.
    pub operation: String,
    /// The job that made it.
    pub job_id: String,
    /// The first frame or the video extended (a library file name or a path).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The parameters the job used (last frame, reference images …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Map<String, Value>>,
    /// Something the caller should know (a duration that differs from the
    /// one asked …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Estimated cost in US dollars (per second at its resolution × the
    /// seconds asked for); absent for a model without a price.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
}

/// Result of `get_video_status`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct VideoStatusOutput {
    /// `true`: the status was read (a failed job says so in `status` and `error`).
    pub success: bool,
    pub job_id: String,
    /// `queued`, `running`, `succeeded`, `failed` or `cancelled`.
    pub status: String,
    /// 0–1, when the provider says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<f64>,
    /// Seconds since the job started.
    pub elapsed_seconds: u64,
    /// Absolute path of the video, once it is saved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub video_path: Option<String>,
    /// File name inside the media library.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    /// MCP resource URI, `media://files/FILENAME`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// Download URL of the video (over HTTP only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<VideoMetadata>,
    /// Why the job failed, and what to do next.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
    /// What to do next (wait and ask again, or what the preview shows).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl WithUrls for VideoStatusOutput {
    fn add_urls(&mut self, urls: &FileUrls) {
        self.url = self.filename.as_deref().map(|f| urls.of(f));
    }
}

/// Result of `POST /files`: an uploaded input image, now in the library.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct UploadOutput {
    pub success: bool,
    /// Pass it as `image_path`, `mask_path` or a reference image.
    pub filename: String,
    pub uri: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    pub mime_type: String,
    pub width: u32,
    pub height: u32,
    pub size_bytes: u64,
}

impl WithUrls for UploadOutput {
    fn add_urls(&mut self, urls: &FileUrls) {
        self.url = Some(urls.of(&self.filename));
    }
}

/// One job of `media-gen jobs`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct JobEntry {
    pub job_id: String,
    pub operation: String,
    pub model: String,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<f64>,
    /// RFC 3339, UTC.
    pub created: String,
    /// RFC 3339, UTC.
    pub updated: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
}

/// Result of `media-gen jobs --json`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct JobsOutput {
    pub success: bool,
    pub jobs: Vec<JobEntry>,
}

/// Who reads a message: the model behind an MCP client, which calls tools,
/// or a person at the shell, who runs `media-gen` commands. Messages that
/// point to another operation name it as their reader can use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    Tool,
    Cli,
}

/// An operation a message points to as the next step. [`Step::name`] is
/// the one table of how each surface spells it; messages hold the step,
/// never its spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The library's files.
    ListFiles,
    /// The library's videos.
    ListVideos,
    /// The models and their options.
    ListModels,
    /// Starting a video job.
    StartVideo,
    /// A video job's state.
    VideoStatus,
    /// Animating an image.
    ImageToVideo,
    /// Continuing a video.
    ExtendVideo,
    /// Saying yes to a delete.
    Confirm,
}

impl Step {
    pub const ALL: [Step; 8] = [
        Self::ListFiles,
        Self::ListVideos,
        Self::ListModels,
        Self::StartVideo,
        Self::VideoStatus,
        Self::ImageToVideo,
        Self::ExtendVideo,
        Self::Confirm,
    ];

    /// How `surface` names this step, in backticks: a tool call, or the
    /// command line that does it (placeholders in capitals).
    pub fn name(self, surface: Surface) -> &'static str {
        match surface {
            Surface::Tool => match self {
                Self::ListFiles => "`list_generated`",
                Self::ListVideos => "`list_generated` with type `video`",
                Self::ListModels => "`list_models`",
                Self::StartVideo => "`generate_video`, `image_to_video` or `extend_video`",
                Self::VideoStatus => "`get_video_status`",
                Self::ImageToVideo => "`image_to_video`",
                Self::ExtendVideo => "`extend_video`",
                Self::Confirm => "`confirm: true`",
            },
            Surface::Cli => match self {
                Self::ListFiles => "`media-gen list`",
                Self::ListVideos => "`media-gen list --type video`",
                Self::ListModels => "`media-gen models`",
                Self::StartVideo => "`media-gen video`",
                Self::VideoStatus => "`media-gen jobs`",
                Self::ImageToVideo => "`media-gen video --image IMAGE`",
                Self::ExtendVideo => "`media-gen video --extend VIDEO`",
                Self::Confirm => "`--yes`",
            },
        }
    }

    /// The step as an instruction: "call `list_models`" for a model, "run
    /// `media-gen models`" at the shell.
    pub fn call(self, surface: Surface) -> String {
        let verb = match surface {
            Surface::Tool => "call",
            Surface::Cli => "run",
        };
        format!("{verb} {}", self.name(surface))
    }
}

/// A message that may name steps ([`Step`]): plain text and steps, rendered
/// for one [`Surface`] at the edge. Its `Display` renders it for tools.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Text(Vec<TextPart>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum TextPart {
    Plain(String),
    /// The step's name.
    Name(Step),
    /// The step as an instruction ("call …" / "run …").
    Call(Step),
}

impl Text {
    /// Adds plain text.
    pub fn plain(mut self, text: impl Into<String>) -> Self {
        self.0.push(TextPart::Plain(text.into()));
        self
    }

    /// Adds a step's name.
    pub fn name(mut self, step: Step) -> Self {
        self.0.push(TextPart::Name(step));
        self
    }

    /// Adds a step as an instruction.
    pub fn call(mut self, step: Step) -> Self {
        self.0.push(TextPart::Call(step));
        self
    }

    /// The text as `surface` reads it.
    pub fn render(&self, surface: Surface) -> String {
        self.0
            .iter()
            .map(|p| match p {
                TextPart::Plain(s) => s.clone(),
                TextPart::Name(step) => step.name(surface).to_owned(),
                TextPart::Call(step) => step.call(surface),
            })
            .collect()
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Self {
        Self::default().plain(s)
    }
}

impl From<String> for Text {
    fn from(s: String) -> Self {
        Self::default().plain(s)
    }
}

impl std::fmt::Display for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.render(Surface::Tool))
    }
}

/// Joins what happened and what to do next into one message: `what; hint`.
/// Either may be empty; trailing punctuation of `what` (a provider's
/// sentence, a dangling `:`) is dropped first, so a message never reads
/// "…2s Retry" or "(HTTP 404):  retry".
pub fn with_hint(what: &str, hint: &str) -> String {
    let what = what
        .trim()
        .trim_end_matches(['.', ':', ';', ','])
        .trim_end();
    let hint = hint.trim().trim_start_matches([';', ',']).trim_start();
    match (what.is_empty(), hint.is_empty()) {
        (_, true) => what.to_owned(),
        (true, false) => hint.to_owned(),
        (false, false) => format!("{what}; {hint}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_join_with_one_separator() {
        assert_eq!(
            with_hint("the backend did not answer within 2 s", "retry"),
            "the backend did not answer within 2 s; retry"
        );
        assert_eq!(
            with_hint("generation failed (HTTP 404): ", " retry"),
            "generation failed (HTTP 404); retry"
        );
        assert_eq!(
            with_hint("Resource exhausted.", "; wait"),
            "Resource exhausted; wait"
        );
        assert_eq!(with_hint("done", ""), "done");
        assert_eq!(with_hint("", "retry"), "retry");
    }

    #[test]
    fn steps_render_per_surface() {
        let t = Text::from("no file; ")
            .call(Step::ListFiles)
            .plain(" to see what exists");
        assert_eq!(
            t.render(Surface::Tool),
            "no file; call `list_generated` to see what exists"
        );
        assert_eq!(
            t.render(Surface::Cli),
            "no file; run `media-gen list` to see what exists"
        );
        for step in Step::ALL {
            assert!(!step.name(Surface::Tool).contains("media-gen"), "{step:?}");
            assert!(
                step == Step::Confirm || step.name(Surface::Cli).starts_with("`media-gen "),
                "{step:?}"
            );
        }
    }
}
