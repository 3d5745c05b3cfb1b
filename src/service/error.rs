//! Every way an operation can fail, and the one mapping from those failures
//! to the contract's error codes, messages (with the next step) and details.
//! The mapping knows which capability failed and which provider it talked
//! to: an unreachable CLIProxyAPI and an unreachable Gemini API call for
//! different fixes.

use serde_json::{Map, Value, json};

use super::input::{MAX_BATCH, MAX_PROMPT_CHARS};
use crate::backend::{Backend, BackendError};
use crate::contract::{ErrorBody, ErrorCode, ErrorOutput};
use crate::domain::{self, InvalidValue};
use crate::media::MediaError;
use crate::store::{InvalidMediaId, StoreError};

/// Everything an operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("the prompt is empty; describe the image to generate")]
    EmptyPrompt,
    #[error("the prompt is {chars} characters long; shorten it to at most {MAX_PROMPT_CHARS}")]
    PromptTooLong { chars: usize },
    #[error("`prompts` has {count} entries; give between 1 and {MAX_BATCH} prompts")]
    BatchSize { count: usize },
    #[error("{0}")]
    InvalidParameter(InvalidValue),
    #[error("model `{model}` is not supported; use one of: {}", domain::image_model_ids().join(", "))]
    UnknownModel { model: String },
    #[error("video model `{model}` is not supported; use one of: {}", domain::video_model_ids().join(", "))]
    UnknownVideoModel { model: String },
    #[error("{message}")]
    BadParameter {
        field: &'static str,
        message: String,
    },
    /// A parameter whose name is only known at run time (`reference_images[2]`).
    #[error("{message}")]
    BadInput { field: String, message: String },
    #[error(
        "`{field}`: no image `{reference}` (give a library file name as `list_generated` shows it, a `media://files/…` URI, or a path the server can read)"
    )]
    InputNotFound { field: String, reference: String },
    #[error(
        "`{field}` = `{reference}` is not allowed: {reason}; give a library file name, or put the file there first"
    )]
    InputRefused {
        field: String,
        reference: String,
        reason: String,
    },
    #[error("`{field}` (`{reference}`) cannot be read: {source}")]
    InputUnreadable {
        field: String,
        reference: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{field}` (`{reference}`) is not a usable image: {source}")]
    InvalidImage {
        field: String,
        reference: String,
        #[source]
        source: MediaError,
    },
    #[error("{given} reference images given; model `{model}` takes at most {max}")]
    TooManyReferences {
        given: usize,
        max: u32,
        model: &'static str,
    },
    #[error(
        "the mask is all black (nothing may change); paint white where the image should change"
    )]
    EmptyMask,
    #[error(
        "the result would be {width}×{height} ({:.1} megapixels), over the limit of {:.1} megapixels; use a smaller factor or extension",
        (*width as f64) * (*height as f64) / 1e6,
        *max_pixels as f64 / 1e6
    )]
    OutputTooLarge {
        width: u64,
        height: u64,
        max_pixels: u64,
    },
    /// The image provider failed.
    #[error("{source}")]
    Image {
        backend: Backend,
        #[source]
        source: BackendError,
    },
    /// The video provider failed.
    #[error("{source}")]
    Video {
        backend: Backend,
        #[source]
        source: BackendError,
    },
    /// No video provider can be used; the message says what to set.
    #[error("{0}")]
    VideoUnavailable(String),
    #[error(
        "no video job `{0}`; use the `job_id` that generate_video, image_to_video or extend_video returned (`media-gen jobs` lists recent jobs)"
    )]
    JobNotFound(String),
    #[error("`{filename}` cannot be extended: {reason}")]
    CannotExtend { filename: String, reason: String },
    #[error("the backend returned data that is not a supported image: {0}")]
    NotAnImage(#[source] MediaError),
    #[error("the backend returned a file that is not a playable MP4 video: {0}")]
    NotAVideo(#[source] MediaError),
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
    /// A failure of the image provider `backend`.
    pub fn image(backend: Backend, source: BackendError) -> Self {
        Self::Image { backend, source }
    }

    /// A failure of the video provider `backend`.
    pub fn video(backend: Backend, source: BackendError) -> Self {
        Self::Video { backend, source }
    }

    /// Whether trying the same thing again later may help.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Image { source, .. } | Self::Video { source, .. } => source.is_retryable(),
            _ => false,
        }
    }

    /// The contract code for this error. The only mapping in the program.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::EmptyPrompt | Self::PromptTooLong { .. } => ErrorCode::InvalidPrompt,
            Self::InvalidParameter(_)
            | Self::BadParameter { .. }
            | Self::BadInput { .. }
            | Self::BatchSize { .. }
            | Self::InputRefused { .. }
            | Self::TooManyReferences { .. }
            | Self::EmptyMask
            | Self::OutputTooLarge { .. } => ErrorCode::InvalidParameter,
            Self::InputNotFound { .. } | Self::InputUnreadable { .. } => ErrorCode::FileNotFound,
            Self::InvalidImage { .. } => ErrorCode::InvalidImage,
            Self::UnknownModel { .. } | Self::UnknownVideoModel { .. } => ErrorCode::InvalidModel,
            Self::Image { backend, source } | Self::Video { backend, source } => match source {
                BackendError::Unavailable { .. } => match backend {
                    Backend::CliProxy => ErrorCode::CliproxyUnavailable,
                    // No code names the Gemini API being out of reach: the
                    // generation failed, and the message says why.
                    Backend::Gemini => ErrorCode::GenerationFailed,
                },
                BackendError::AuthFailed { .. } => ErrorCode::AuthFailed,
                BackendError::RateLimited { .. } => ErrorCode::RateLimited,
                BackendError::Timeout { .. } => ErrorCode::GenerationTimeout,
                BackendError::ContentBlocked { .. } => ErrorCode::ContentBlocked,
                BackendError::InvalidModel { .. } => ErrorCode::InvalidModel,
                BackendError::Failed { .. } => ErrorCode::GenerationFailed,
            },
            Self::NotAnImage(_) | Self::NotAVideo(_) | Self::Internal(_) | Self::Cancelled => {
                ErrorCode::GenerationFailed
            }
            Self::VideoUnavailable(_) => ErrorCode::VideoBackendUnavailable,
            Self::JobNotFound(_) => ErrorCode::JobNotFound,
            Self::CannotExtend { .. } => ErrorCode::InvalidParameter,
            Self::Save(_) | Self::Storage(_) => ErrorCode::SaveFailed,
            Self::InvalidFilename(_) => ErrorCode::InvalidParameter,
            Self::FileNotFound(_) => ErrorCode::FileNotFound,
            Self::ConfirmationRequired(_) => ErrorCode::ConfirmationRequired,
        }
    }

    /// Whether the error means "no such file" (a resource read answers
    /// "not found" for these, and "internal error" for the rest).
    pub fn is_missing_file(&self) -> bool {
        matches!(
            self.code(),
            ErrorCode::FileNotFound | ErrorCode::InvalidParameter
        )
    }

    /// The message plus one hint on what to do next, for the model to read.
    pub fn message(&self) -> String {
        let hint = match self {
            Self::Image { backend, source } => match (source, backend) {
                (BackendError::Unavailable { .. }, Backend::CliProxy) => {
                    "; start CLIProxyAPI (default 127.0.0.1:8317) or run with `--emulator` for \
offline test images"
                }
                (BackendError::Unavailable { .. }, Backend::Gemini) => {
                    "; check the network and `MCP_GEMINI_URL`, or run with `--emulator` for \
offline test images"
                }
                (BackendError::AuthFailed { .. }, Backend::CliProxy) => {
                    "; check `MCP_CLIPROXY_API_KEY` (one of the `api-keys` in CLIProxyAPI's \
config) and that you are logged in to CLIProxyAPI"
                }
                (BackendError::AuthFailed { .. }, Backend::Gemini) => {
                    "; check `MCP_GEMINI_API_KEY` (or `GEMINI_API_KEY`)"
                }
                (BackendError::RateLimited { .. }, _) => {
                    " Wait a minute and retry, or use a faster model such as `gemini-2.5-flash-image`."
                }
                (BackendError::Timeout { .. }, _) => {
                    " Retry, use a smaller `image_size`, or raise `MCP_REQUEST_TIMEOUT`."
                }
                (BackendError::ContentBlocked { .. }, _) => {
                    " Rephrase the prompt without the blocked content."
                }
                (BackendError::Failed { .. }, _) => {
                    " Retry; if it keeps failing, try another model."
                }
                (BackendError::InvalidModel { .. }, _) => {
                    " Call `list_models` to see which models the backend offers."
                }
            },
            Self::Video { backend, source } => match (source, backend) {
                (BackendError::Unavailable { .. }, Backend::CliProxy) => {
                    "; start CLIProxyAPI (default 127.0.0.1:8317), or set `MCP_VIDEO_BACKEND=gemini` \
with a Gemini API key, or run with `--emulator` for offline test videos"
                }
                (BackendError::Unavailable { .. }, Backend::Gemini) => {
                    "; check the network and `MCP_GEMINI_URL`, or run with `--emulator` for \
offline test videos"
                }
                (BackendError::AuthFailed { .. }, Backend::CliProxy) => {
                    "; check `MCP_CLIPROXY_API_KEY` and that CLIProxyAPI has an account for the model"
                }
                (BackendError::AuthFailed { .. }, Backend::Gemini) => {
                    "; check `MCP_GEMINI_API_KEY` (or `GEMINI_API_KEY`): it needs access to Veo \
(a paid Gemini API tier)"
                }
                (BackendError::RateLimited { .. }, _) => {
                    " Wait a minute and retry, or use `veo-3.1-fast-generate-preview`."
                }
                (BackendError::Timeout { .. }, _) => " Retry, or raise `MCP_REQUEST_TIMEOUT`.",
                (BackendError::ContentBlocked { .. }, _) => {
                    " Rephrase the prompt without the blocked content."
                }
                (BackendError::Failed { .. }, _) => {
                    " Check the parameters against `list_models`; retry, or try another model."
                }
                (BackendError::InvalidModel { .. }, _) => {
                    " Call `list_models` (type `video`) to see the video models."
                }
            },
            Self::NotAnImage(_) | Self::NotAVideo(_) => {
                " Retry; if it keeps failing, try another model."
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
            Self::BatchSize { count } => {
                d.insert("parameter".into(), json!("prompts"));
                d.insert("count".into(), json!(count));
            }
            Self::BadInput { field, .. } => {
                d.insert("parameter".into(), json!(field));
            }
            Self::InputNotFound { field, reference }
            | Self::InputRefused {
                field, reference, ..
            }
            | Self::InputUnreadable {
                field, reference, ..
            } => {
                d.insert("parameter".into(), json!(field));
                d.insert("value".into(), json!(reference));
            }
            Self::InvalidImage {
                field,
                reference,
                source,
            } => {
                d.insert("parameter".into(), json!(field));
                d.insert("value".into(), json!(reference));
                match source {
                    MediaError::TooLarge { max_pixels, .. } => {
                        d.insert("max_pixels".into(), json!(max_pixels));
                    }
                    MediaError::FileTooLarge { max, .. } => {
                        d.insert("max_bytes".into(), json!(max));
                    }
                    _ => {}
                }
            }
            Self::TooManyReferences { given, max, model } => {
                d.insert("parameter".into(), json!("reference_images"));
                d.insert("count".into(), json!(given));
                d.insert("max".into(), json!(max));
                d.insert("model".into(), json!(model));
            }
            Self::EmptyMask => {
                d.insert("parameter".into(), json!("mask_path"));
            }
            Self::OutputTooLarge { max_pixels, .. } => {
                d.insert("max_pixels".into(), json!(max_pixels));
            }
            Self::InvalidFilename(e) => {
                d.insert("parameter".into(), json!("filename"));
                d.insert("value".into(), json!(e.name));
            }
            Self::FileNotFound(name) | Self::ConfirmationRequired(name) => {
                d.insert("filename".into(), json!(name));
            }
            Self::CannotExtend { filename, .. } => {
                d.insert("parameter".into(), json!("video"));
                d.insert("filename".into(), json!(filename));
            }
            Self::JobNotFound(id) => {
                d.insert("job_id".into(), json!(id));
            }
            Self::UnknownModel { model } => {
                d.insert("model".into(), json!(model));
                d.insert("allowed".into(), json!(domain::image_model_ids()));
            }
            Self::UnknownVideoModel { model } => {
                d.insert("model".into(), json!(model));
                d.insert("allowed".into(), json!(domain::video_model_ids()));
            }
            Self::Image { backend, source } | Self::Video { backend, source } => {
                d.insert(
                    "backend".into(),
                    json!(match backend {
                        Backend::CliProxy => "cliproxy",
                        Backend::Gemini => "gemini",
                    }),
                );
                if let Some(status) = source.http_status() {
                    d.insert("http_status".into(), json!(status));
                }
                if let BackendError::RateLimited {
                    retry_after: Some(r),
                    ..
                } = source
                {
                    d.insert("retry_after_seconds".into(), json!(r.as_secs()));
                }
            }
            _ => {}
        }
        d
    }

    /// The contract's error envelope for this error.
    pub fn output(&self) -> ErrorOutput {
        ErrorOutput {
            success: false,
            error: ErrorBody {
                code: self.code(),
                message: self.message(),
                details: self.details(),
            },
        }
    }
}
