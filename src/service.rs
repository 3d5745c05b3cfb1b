//! The operations media-gen performs, over backend + media + store, and the one
//! place where internal errors become the contract's error codes.
//!
//! Nothing here knows MCP: the tool layer turns [`Generated`] and
//! [`ServiceError`] into tool results, and the CLI prints them.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures::StreamExt;
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

use crate::backend::{BackendError, ImageBackend, ImageRequest};
use crate::config::{PreviewMode, Settings};
use crate::domain::{self, AspectRatio, ImageSize, InvalidValue};
use crate::media::{self, MediaError, Preview};
use crate::store::{
    InvalidMediaId, ListQuery, MediaId, MediaKind, MediaRecord, NewMedia, Store, StoreError,
};

/// Long side of the inline preview, in pixels.
pub const PREVIEW_MAX_SIDE: u32 = 512;
/// Approximate byte budget of the inline preview (before base64).
pub const PREVIEW_MAX_BYTES: usize = 100 * 1024;
/// Longest prompt accepted (Gemini's own limit is far above what is useful).
pub const MAX_PROMPT_CHARS: usize = 32_000;
/// Most prompts in one batch.
pub const MAX_BATCH: usize = 64;
/// Byte budget for all inline previews of one batch result together, so a
/// 16-image batch still fits a client's 1 MB tool-result limit.
pub const BATCH_PREVIEW_BUDGET: usize = 600 * 1024;

/// Size limits of the inline preview.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PreviewBudget {
    pub max_side: u32,
    pub max_bytes: usize,
}

impl PreviewBudget {
    pub const SINGLE: PreviewBudget = PreviewBudget {
        max_side: PREVIEW_MAX_SIDE,
        max_bytes: PREVIEW_MAX_BYTES,
    };

    /// Smaller previews for larger batches: the whole batch shares
    /// [`BATCH_PREVIEW_BUDGET`].
    pub fn for_batch(n: usize) -> PreviewBudget {
        let n = n.max(1);
        PreviewBudget {
            max_side: if n <= 4 { PREVIEW_MAX_SIDE } else { 256 },
            max_bytes: (BATCH_PREVIEW_BUDGET / n).clamp(8 * 1024, PREVIEW_MAX_BYTES),
        }
    }
}

/// The contract's error codes (ARCHITECTURE.md), spelled as on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
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
}

impl ErrorCode {
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
        }
    }
}

/// Everything an operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("the prompt is empty; describe the image to generate")]
    EmptyPrompt,
    #[error("the prompt is {chars} characters long; shorten it to at most {MAX_PROMPT_CHARS}")]
    PromptTooLong { chars: usize },
    #[error("{0}")]
    InvalidParameter(InvalidValue),
    #[error("model `{model}` is not supported; use one of: {}", domain::image_model_ids().join(", "))]
    UnknownModel { model: String },
    #[error("{message}")]
    BadParameter {
        field: &'static str,
        message: String,
    },
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error("the backend returned data that is not a supported image: {0}")]
    NotAnImage(#[source] MediaError),
    #[error(
        "could not save the image: {0}; check that the output directory has space and is writable"
    )]
    Save(#[source] StoreError),
    #[error("the request was cancelled; nothing was saved")]
    Cancelled,
    #[error("{0}")]
    InvalidFilename(#[source] InvalidMediaId),
    #[error("no file named `{0}` in the media library; call `list_generated` to see what exists")]
    FileNotFound(String),
    #[error("deleting `{0}` needs `confirm: true`; nothing was deleted")]
    ConfirmationRequired(String),
    #[error("the media library failed: {0}")]
    Storage(#[source] StoreError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ServiceError {
    /// The contract code for this error. The only mapping in the program.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::EmptyPrompt | Self::PromptTooLong { .. } => ErrorCode::InvalidPrompt,
            Self::InvalidParameter(_) | Self::BadParameter { .. } => ErrorCode::InvalidParameter,
            Self::UnknownModel { .. } => ErrorCode::InvalidModel,
            Self::Backend(e) => match e {
                BackendError::Unavailable { .. } => ErrorCode::CliproxyUnavailable,
                BackendError::AuthFailed { .. } => ErrorCode::AuthFailed,
                BackendError::RateLimited { .. } => ErrorCode::RateLimited,
                BackendError::Timeout { .. } => ErrorCode::GenerationTimeout,
                BackendError::ContentBlocked { .. } => ErrorCode::ContentBlocked,
                BackendError::InvalidModel { .. } => ErrorCode::InvalidModel,
                BackendError::Failed { .. } => ErrorCode::GenerationFailed,
            },
            Self::NotAnImage(_) | Self::Internal(_) | Self::Cancelled => {
                ErrorCode::GenerationFailed
            }
            Self::Save(_) | Self::Storage(_) => ErrorCode::SaveFailed,
            Self::InvalidFilename(_) => ErrorCode::InvalidParameter,
            Self::FileNotFound(_) => ErrorCode::FileNotFound,
            Self::ConfirmationRequired(_) => ErrorCode::ConfirmationRequired,
        }
    }

    /// The message plus one hint on what to do next, for the model to read.
    pub fn message(&self) -> String {
        let hint = match self {
            Self::Backend(BackendError::RateLimited { .. }) => {
                " Wait a minute and retry, or use a faster model such as `gemini-2.5-flash-image`."
            }
            Self::Backend(BackendError::Timeout { .. }) => {
                " Retry, use a smaller `image_size`, or raise `MCP_REQUEST_TIMEOUT`."
            }
            Self::Backend(BackendError::ContentBlocked { .. }) => {
                " Rephrase the prompt without the blocked content."
            }
            Self::Backend(BackendError::Failed { .. }) | Self::NotAnImage(_) => {
                " Retry; if it keeps failing, try another model."
            }
            Self::Backend(BackendError::InvalidModel { .. }) => {
                " Call `list_models` to see which models the backend offers."
            }
            _ => "",
        };
        format!("{self}{hint}")
    }

    /// Machine-readable details for the error envelope.
    pub fn details(&self) -> Map<String, Value> {
        let mut d = Map::new();
        match self {
            Self::InvalidParameter(v) => {
                d.insert("parameter".into(), json!(v.field));
                d.insert("value".into(), json!(v.value));
                d.insert("allowed".into(), json!(v.allowed));
            }
            Self::BadParameter { field, .. } => {
                d.insert("parameter".into(), json!(field));
            }
            Self::InvalidFilename(e) => {
                d.insert("parameter".into(), json!("filename"));
                d.insert("value".into(), json!(e.name));
            }
            Self::FileNotFound(name) | Self::ConfirmationRequired(name) => {
                d.insert("filename".into(), json!(name));
            }
            Self::UnknownModel { model } => {
                d.insert("model".into(), json!(model));
                d.insert("allowed".into(), json!(domain::image_model_ids()));
            }
            Self::Backend(e) => {
                if let Some(status) = e.http_status() {
                    d.insert("http_status".into(), json!(status));
                }
                if let BackendError::RateLimited {
                    retry_after: Some(r),
                    ..
                } = e
                {
                    d.insert("retry_after_seconds".into(), json!(r.as_secs()));
                }
            }
            _ => {}
        }
        d
    }
}

/// A validated image-generation request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerateSpec {
    pub prompt: String,
    pub model: &'static str,
    pub aspect_ratio: AspectRatio,
    pub image_size: ImageSize,
}

/// Unvalidated generation parameters as they arrive from a tool call or the CLI.
#[derive(Debug, Clone, Default)]
pub struct GenerateInput {
    pub prompt: String,
    pub model: Option<String>,
    pub aspect_ratio: Option<String>,
    pub image_size: Option<String>,
}

/// Parses and checks parameters before anything is sent to a backend.
pub fn validate_generate(
    input: &GenerateInput,
    default_model: &'static str,
) -> Result<GenerateSpec, ServiceError> {
    let prompt = input.prompt.trim();
    if prompt.is_empty() {
        return Err(ServiceError::EmptyPrompt);
    }
    let chars = prompt.chars().count();
    if chars > MAX_PROMPT_CHARS {
        return Err(ServiceError::PromptTooLong { chars });
    }
    let model = match input.model.as_deref().map(str::trim) {
        None | Some("") => domain::image_model(default_model),
        Some(m) => domain::image_model(m),
    }
    .ok_or_else(|| ServiceError::UnknownModel {
        model: input.model.clone().unwrap_or_default(),
    })?;
    let aspect_ratio = match input.aspect_ratio.as_deref() {
        None => AspectRatio::Square,
        Some(s) => s.parse().map_err(ServiceError::InvalidParameter)?,
    };
    let image_size = match input.image_size.as_deref() {
        None => ImageSize::S1K,
        Some(s) => s.parse().map_err(ServiceError::InvalidParameter)?,
    };
    if !model.aspect_ratios.contains(&aspect_ratio) {
        return Err(ServiceError::InvalidParameter(InvalidValue::new(
            "aspect_ratio",
            aspect_ratio.as_str(),
            model.aspect_ratios.iter().map(|r| r.as_str()),
        )));
    }
    if !model.image_sizes.contains(&image_size) {
        return Err(ServiceError::BadParameter {
            field: "image_size",
            message: format!(
                "model `{}` does not support `image_size` = `{image_size}`; it supports: {}",
                model.id,
                model
                    .image_sizes
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
    }
    Ok(GenerateSpec {
        prompt: prompt.to_owned(),
        model: model.id,
        aspect_ratio,
        image_size,
    })
}

/// What the inline image of a result is.
#[derive(Debug, Clone)]
pub enum Inline {
    None,
    Preview(Preview),
    /// The whole file, when `preview = full`.
    Full {
        data: Vec<u8>,
        mime_type: String,
    },
}

/// A saved image and what to show of it.
#[derive(Debug, Clone)]
pub struct Generated {
    pub record: MediaRecord,
    pub path: PathBuf,
    pub spec: GenerateSpec,
    pub inline: Inline,
    /// Text the model sent alongside the image, if any.
    pub text: Option<String>,
}

/// The operations, with everything they need injected.
pub struct Service {
    settings: Arc<Settings>,
    backend: ImageBackend,
    store: Store,
}

impl Service {
    pub fn new(settings: Arc<Settings>, backend: ImageBackend, store: Store) -> Self {
        Self {
            settings,
            backend,
            store,
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn backend(&self) -> &ImageBackend {
        &self.backend
    }

    /// Generates one image and saves it. Cancelling `cancel` aborts the backend
    /// call; a cancelled request saves nothing.
    pub async fn generate_image(
        &self,
        spec: &GenerateSpec,
        cancel: &CancellationToken,
    ) -> Result<Generated, ServiceError> {
        self.generate_with(spec, cancel, PreviewBudget::SINGLE)
            .await
    }

    async fn generate_with(
        &self,
        spec: &GenerateSpec,
        cancel: &CancellationToken,
        budget: PreviewBudget,
    ) -> Result<Generated, ServiceError> {
        let request = ImageRequest {
            model: spec.model,
            prompt: &spec.prompt,
            aspect_ratio: spec.aspect_ratio,
            image_size: spec.image_size,
            images: &[],
        };
        let image = tokio::select! {
            biased;
            () = cancel.cancelled() => return Err(ServiceError::Cancelled),
            r = self.backend.generate(&request) => r?,
        };
        if cancel.is_cancelled() {
            return Err(ServiceError::Cancelled);
        }
        let store = self.store.clone();
        let preview_mode = self.settings.preview;
        let spec_owned = spec.clone();
        let text = image.text.clone();
        let data = image.data;
        let (record, inline) = tokio::task::spawn_blocking(move || {
            save_image(
                &store,
                data,
                &spec_owned,
                text.as_deref(),
                preview_mode,
                budget,
            )
        })
        .await
        .map_err(|e| ServiceError::Internal(format!("save task failed: {e}")))??;
        Ok(Generated {
            path: self.store.path_of(&record.id),
            record,
            spec: spec.clone(),
            inline,
            text: image.text,
        })
    }

    /// Runs a batch with at most `batch_concurrency` prompts in flight, keeping
    /// the input order. `on_done(done, total)` runs after each finished prompt.
    pub async fn generate_batch(
        &self,
        specs: &[GenerateSpec],
        cancel: &CancellationToken,
        on_done: impl Fn(usize, usize) + Send + Sync,
    ) -> Vec<Result<Generated, ServiceError>> {
        let total = specs.len();
        let budget = PreviewBudget::for_batch(total);
        let done = AtomicUsize::new(0);
        let on_done = &on_done;
        let done = &done;
        // Index-based so the closure takes no borrowed argument (keeps the
        // future `Send` without higher-ranked lifetime trouble).
        futures::stream::iter(0..specs.len())
            .map(|i| async move {
                let r = self.generate_with(&specs[i], cancel, budget).await;
                let n = done.fetch_add(1, Ordering::SeqCst) + 1;
                on_done(n, total);
                r
            })
            .buffered(self.settings.batch_concurrency)
            .collect()
            .await
    }
}

/// How a model shows in `list_models`.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelEntry {
    pub id: &'static str,
    pub kind: MediaKind,
    pub aspect_ratios: Vec<&'static str>,
    pub image_sizes: Vec<&'static str>,
    pub durations: Vec<u32>,
    pub resolutions: Vec<&'static str>,
    pub default: bool,
    /// Whether the backend offers it; `None` when that could not be checked.
    pub available: Option<bool>,
}

/// The model registry, with what the backend says it offers.
#[derive(Debug, Clone)]
pub struct ModelsReport {
    pub models: Vec<ModelEntry>,
    /// Why availability is unknown, if it is.
    pub note: Option<String>,
}

/// A file and what is known about it, for `get_file_info`.
#[derive(Debug, Clone)]
pub struct FileInfo {
    pub record: MediaRecord,
    pub path: PathBuf,
    /// Size on disk now.
    pub size_on_disk: u64,
    /// Read from the file's header now (images).
    pub header: Option<media::ImageInfo>,
    /// Files made from this one.
    pub derived: Vec<MediaId>,
}

/// Parses a `filename` argument: a bare name, or a `media://files/NAME` URI.
pub fn parse_filename(raw: &str) -> Result<MediaId, ServiceError> {
    let name = raw.trim();
    let name = name.strip_prefix("media://files/").unwrap_or(name);
    name.parse().map_err(ServiceError::InvalidFilename)
}

impl Service {
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, ServiceError> + Send + 'static,
    ) -> Result<T, ServiceError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| ServiceError::Internal(format!("library task failed: {e}")))?
    }

    /// The registry, marked with what the image backend's model list offers.
    /// Never fails: an unreachable backend gives `available: None` and a note.
    pub async fn list_models(&self, kind: Option<MediaKind>) -> ModelsReport {
        let probe = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            self.backend.list_models(),
        )
        .await;
        let (offered, note) = match probe {
            Ok(Ok(list)) => (Some(list), None),
            Ok(Err(e)) => (None, Some(format!("availability unknown: {e}"))),
            Err(_) => (
                None,
                Some(format!(
                    "availability unknown: `{}` did not list its models within 5 s",
                    self.backend.base_url()
                )),
            ),
        };
        let offers = |id: &str| offered.as_ref().map(|l| l.iter().any(|m| m == id));
        let mut models = Vec::new();
        if kind != Some(MediaKind::Video) {
            for m in &domain::IMAGE_MODELS {
                models.push(ModelEntry {
                    id: m.id,
                    kind: MediaKind::Image,
                    aspect_ratios: m.aspect_ratios.iter().map(|r| r.as_str()).collect(),
                    image_sizes: m.image_sizes.iter().map(|s| s.as_str()).collect(),
                    durations: Vec::new(),
                    resolutions: Vec::new(),
                    default: m.id == self.settings.default_model,
                    available: offers(m.id),
                });
            }
        }
        if kind != Some(MediaKind::Image) {
            for (i, m) in domain::VIDEO_MODELS.iter().enumerate() {
                // Veo is served by the Gemini API, which is not probed here;
                // CLIProxyAPI's video model shows in its model list.
                let available = match m.provider {
                    domain::VideoProvider::CliProxy => offers(m.id),
                    domain::VideoProvider::Gemini => None,
                };
                models.push(ModelEntry {
                    id: m.id,
                    kind: MediaKind::Video,
                    aspect_ratios: m.aspect_ratios.to_vec(),
                    image_sizes: Vec::new(),
                    durations: m.durations.to_vec(),
                    resolutions: m.resolutions.to_vec(),
                    default: i == 0,
                    available,
                });
            }
        }
        ModelsReport { models, note }
    }

    /// One page of the library, from the catalog.
    pub async fn list_files(&self, q: ListQuery) -> Result<(Vec<MediaRecord>, u64), ServiceError> {
        self.blocking(move |s| s.list(&q).map_err(ServiceError::Storage))
            .await
    }

    /// A catalogued file, or `FILE_NOT_FOUND`.
    pub async fn file_info(&self, filename: &str) -> Result<FileInfo, ServiceError> {
        let id = parse_filename(filename)?;
        self.blocking(move |s| {
            let record = s
                .get(&id)
                .map_err(ServiceError::Storage)?
                .ok_or_else(|| ServiceError::FileNotFound(id.to_string()))?;
            let head = s
                .read_head(&id, 256 * 1024)
                .map_err(|_| ServiceError::FileNotFound(id.to_string()))?;
            let size_on_disk = std::fs::symlink_metadata(s.path_of(&id))
                .map(|m| m.len())
                .unwrap_or(record.size_bytes);
            Ok(FileInfo {
                header: media::probe(&head).ok(),
                derived: s.derived_from(&id).map_err(ServiceError::Storage)?,
                path: s.path_of(&id),
                size_on_disk,
                record,
            })
        })
        .await
    }

    /// Deletes a file, its sidecar and its row. Needs `confirm`.
    pub async fn delete_file(
        &self,
        filename: &str,
        confirm: bool,
    ) -> Result<MediaId, ServiceError> {
        let id = parse_filename(filename)?;
        if !confirm {
            // Say whether the file exists first: a wrong name is the bigger mistake.
            let known = self
                .blocking({
                    let id = id.clone();
                    move |s| s.get(&id).map_err(ServiceError::Storage)
                })
                .await?;
            if known.is_none() {
                return Err(ServiceError::FileNotFound(id.to_string()));
            }
            return Err(ServiceError::ConfirmationRequired(id.to_string()));
        }
        self.blocking(
            move |s| match s.delete(&id).map_err(ServiceError::Storage)? {
                true => Ok(id),
                false => Err(ServiceError::FileNotFound(id.to_string())),
            },
        )
        .await
    }

    /// A file's bytes and MIME type (for `resources/read`).
    pub async fn read_file(&self, filename: &str) -> Result<(MediaRecord, Vec<u8>), ServiceError> {
        let id = parse_filename(filename)?;
        self.blocking(move |s| {
            let record = s
                .get(&id)
                .map_err(ServiceError::Storage)?
                .ok_or_else(|| ServiceError::FileNotFound(id.to_string()))?;
            let bytes = s
                .read(&id)
                .map_err(|_| ServiceError::FileNotFound(id.to_string()))?;
            Ok((record, bytes))
        })
        .await
    }
}

/// Blocking part of a generation: check the bytes are an image, save them as
/// they are, and make the inline part of the result.
fn save_image(
    store: &Store,
    data: Vec<u8>,
    spec: &GenerateSpec,
    text: Option<&str>,
    preview: PreviewMode,
    budget: PreviewBudget,
) -> Result<(MediaRecord, Inline), ServiceError> {
    let info = media::probe(&data).map_err(ServiceError::NotAnImage)?;
    let mut metadata = Map::new();
    metadata.insert("aspect_ratio".into(), json!(spec.aspect_ratio));
    metadata.insert("image_size".into(), json!(spec.image_size));
    if let Some(t) = text.filter(|t| !t.trim().is_empty()) {
        metadata.insert("model_text".into(), json!(t));
    }
    let record = store
        .save(NewMedia {
            bytes: &data,
            kind: MediaKind::Image,
            extension: info.extension,
            mime_type: info.mime_type,
            width: Some(info.width),
            height: Some(info.height),
            prompt: Some(&spec.prompt),
            model: Some(spec.model),
            metadata,
            source: None,
        })
        .map_err(ServiceError::Save)?;
    let inline = match preview {
        PreviewMode::None => Inline::None,
        PreviewMode::Full => Inline::Full {
            mime_type: info.mime_type.to_owned(),
            data,
        },
        PreviewMode::Preview => match media::preview(&data, budget.max_side, budget.max_bytes) {
            Ok(p) => Inline::Preview(p),
            Err(e) => {
                // The file is saved; a missing preview is not worth failing over.
                tracing::warn!(file = record.id.as_str(), error = %e, "could not make a preview");
                Inline::None
            }
        },
    };
    Ok((record, inline))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(prompt: &str) -> GenerateInput {
        GenerateInput {
            prompt: prompt.into(),
            ..Default::default()
        }
    }

    #[test]
    fn validation_defaults_and_errors() {
        let spec = validate_generate(&input("  a cat  "), domain::DEFAULT_IMAGE_MODEL).unwrap();
        assert_eq!(spec.prompt, "a cat");
        assert_eq!(spec.aspect_ratio, AspectRatio::Square);
        assert_eq!(spec.image_size, ImageSize::S1K);
        assert_eq!(spec.model, "gemini-3-pro-image-preview");

        for p in ["", "   ", "\n\t"] {
            let e = validate_generate(&input(p), domain::DEFAULT_IMAGE_MODEL).unwrap_err();
            assert_eq!(e.code(), ErrorCode::InvalidPrompt);
        }
        let mut i = input("x");
        i.aspect_ratio = Some("7:3".into());
        let e = validate_generate(&i, domain::DEFAULT_IMAGE_MODEL).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidParameter);
        assert!(e.message().contains("16:9"), "{}", e.message());

        let mut i = input("x");
        i.model = Some("dall-e-3".into());
        let e = validate_generate(&i, domain::DEFAULT_IMAGE_MODEL).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidModel);
        assert!(e.message().contains("gemini-2.5-flash-image"));

        // 2.5 Flash is 1K only: 4K is refused, naming what it supports.
        let mut i = input("x");
        i.model = Some("gemini-2.5-flash-image".into());
        i.image_size = Some("4K".into());
        let e = validate_generate(&i, domain::DEFAULT_IMAGE_MODEL).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidParameter);
        assert!(e.message().contains("supports: 1K"), "{}", e.message());

        // Extreme ratios are 3.1 Flash only.
        let mut i = input("x");
        i.aspect_ratio = Some("8:1".into());
        assert!(validate_generate(&i, domain::DEFAULT_IMAGE_MODEL).is_err());
        i.model = Some("gemini-3.1-flash-image-preview".into());
        assert!(validate_generate(&i, domain::DEFAULT_IMAGE_MODEL).is_ok());
    }
}
