//! Every way an operation can fail, and the one mapping from those failures
//! to the contract's error codes, messages (with the next step) and details.
//! The mapping knows which capability failed and which provider it talked
//! to: an unreachable CLIProxyAPI and an unreachable Gemini API call for
//! different fixes.

use serde_json::{Map, Value, json};

use super::fallback::FallbackMiss;
use super::input::{MAX_BATCH, MAX_PROMPT_CHARS};
use super::quote::Quote;
use crate::backend::{Backend, BackendError};
use crate::contract::{self, ErrorBody, ErrorCode, ErrorOutput, Step, Surface, Text};
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
    #[error("`{field}`: no image `{reference}`")]
    InputNotFound { field: String, reference: String },
    #[error(
        "`{field}` = `{reference}` is not allowed: {reason}; give a library file name (a client on another machine uploads its image with `POST /files` and passes the `filename` it returns), or put the file in one of those directories (the server's `MCP_INPUT_ROOTS`)"
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
    /// The requested image model was rate limited after its retries, and
    /// the fallback model (`MCP_FALLBACK_MODEL`) did not make the image
    /// either. `error` decides the code: the fallback's own failure, or the
    /// rate limit when the fallback could not be tried.
    #[error("{}", fallback_message(requested, fallback, miss, error))]
    Fallback {
        requested: String,
        fallback: &'static str,
        miss: FallbackMiss,
        error: Box<ServiceError>,
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
    #[error("no video job `{0}`")]
    JobNotFound(String),
    /// Why, possibly naming another operation (`image_to_video`).
    #[error("`{filename}` cannot be extended: {reason}")]
    CannotExtend { filename: String, reason: Text },
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
    #[error("no file named `{0}` in the media library")]
    FileNotFound(String),
    /// A path given for a library file that is not in the library.
    #[error("`{0}` is not a file of the media library")]
    NotInLibrary(String),
    #[error("nothing was deleted: deleting `{0}` needs confirmation")]
    ConfirmationRequired(String),
    /// A paid call estimated above `MCP_CONFIRM_ABOVE_USD` that the user
    /// did not agree to; nothing was sent to a backend.
    #[error("{}", unconfirmed_message(quote, *threshold_usd, *why))]
    CostUnconfirmed {
        quote: Quote,
        threshold_usd: f64,
        why: Unconfirmed,
    },
    #[error("the media library failed: {0}")]
    Storage(#[source] StoreError),
    /// The call's estimate would pass a spending cap; nothing was requested.
    #[error("{}", .0.message())]
    BudgetExceeded(super::OverBudget),
    #[error("internal error: {0}")]
    Internal(String),
}

/// What a failed fallback says: both models, and what each did.
fn fallback_message(
    requested: &str,
    fallback: &str,
    miss: &FallbackMiss,
    error: &ServiceError,
) -> String {
    let error = error.to_string();
    let error = error.trim().trim_end_matches('.');
    match miss {
        FallbackMiss::Failed => format!(
            "model `{requested}` is rate limited, and its fallback `{fallback}` (tried once) failed too: {error}"
        ),
        FallbackMiss::CannotMake(reason) => format!(
            "model `{requested}`: {error}; its fallback `{fallback}` was not tried: {reason}"
        ),
    }
}

/// Why a paid call went without the user's yes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unconfirmed {
    /// The client can show the user neither an elicitation nor an
    /// `input_required` round trip.
    CannotAsk,
    /// The client was asked and the request failed (no answer).
    AskFailed,
    /// The user said no.
    Declined,
    /// The user dismissed the question.
    Cancelled,
}

impl Unconfirmed {
    /// As `details.reason` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CannotAsk => "cannot_ask",
            Self::AskFailed => "ask_failed",
            Self::Declined => "declined",
            Self::Cancelled => "cancelled",
        }
    }
}

fn unconfirmed_message(quote: &Quote, threshold: f64, why: Unconfirmed) -> String {
    let cost = format!(
        "the estimated {} ({}, {})",
        usd(quote.usd),
        quote.what,
        quote.model
    );
    match why {
        Unconfirmed::CannotAsk | Unconfirmed::AskFailed => format!(
            "nothing was spent: {cost} is above the {} the server asks confirmation for \
(`MCP_CONFIRM_ABOVE_USD`){}",
            usd(threshold),
            match why {
                Unconfirmed::AskFailed => " and asking the user failed",
                _ => " and this client cannot ask the user",
            }
        ),
        Unconfirmed::Declined => format!("nothing was spent: the user declined {cost}"),
        Unconfirmed::Cancelled => {
            format!("nothing was spent: the user dismissed the question about {cost}")
        }
    }
}

/// Dollars as people read them: `$0.13`, `$3.20`, `$0.039`.
pub fn usd(amount: f64) -> String {
    if amount != 0.0 && amount.abs() < 0.1 {
        format!("${amount:.3}")
    } else {
        format!("${amount:.2}")
    }
}

/// What to do when CLIProxyAPI has no logged-in account (`auth_not_found`).
const LOGIN_HINT: &str = "log CLIProxyAPI in to a Google account: run it once with `--login` \
(in Docker: `docker exec -it cli-proxy-api /CLIProxyAPI/CLIProxyAPI --no-browser --login`), \
then retry";

/// What to do when the answer was lost on the way.
const INTERRUPTED_HINT: &str =
    "retry; if it keeps happening, check the proxy or network between media-gen and the backend";

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
            Self::Fallback { error, .. } => error.is_retryable(),
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
                BackendError::Unavailable { .. } => match (backend, self) {
                    (Backend::CliProxy, _) => ErrorCode::CliproxyUnavailable,
                    // The video provider out of reach, as CLIPROXY_UNAVAILABLE
                    // names the image one.
                    (Backend::Gemini, Self::Video { .. }) => ErrorCode::VideoBackendUnavailable,
                    // No code names the Gemini API out of reach for images:
                    // the generation failed, and the message says why.
                    (Backend::Gemini, _) => ErrorCode::GenerationFailed,
                },
                // No login behind CLIProxyAPI is a credentials problem:
                // the proxy is there, the account is not.
                BackendError::AuthFailed { .. } | BackendError::NoLogin { .. } => {
                    ErrorCode::AuthFailed
                }
                // The backend was reached and its answer lost: the
                // generation failed (retryable), nothing is down.
                BackendError::Interrupted { .. } => ErrorCode::GenerationFailed,
                BackendError::RateLimited { .. } => ErrorCode::RateLimited,
                BackendError::Timeout { .. } => ErrorCode::GenerationTimeout,
                BackendError::ContentBlocked { .. } => ErrorCode::ContentBlocked,
                BackendError::InvalidModel { .. } => ErrorCode::InvalidModel,
                BackendError::Failed { .. } => ErrorCode::GenerationFailed,
            },
            Self::NotAnImage(_) | Self::NotAVideo(_) | Self::Internal(_) | Self::Cancelled => {
                ErrorCode::GenerationFailed
            }
            Self::Fallback { error, .. } => error.code(),
            Self::VideoUnavailable(_) => ErrorCode::VideoBackendUnavailable,
            Self::JobNotFound(_) => ErrorCode::JobNotFound,
            Self::CannotExtend { .. } => ErrorCode::InvalidParameter,
            Self::Save(_) | Self::Storage(_) => ErrorCode::SaveFailed,
            Self::InvalidFilename(_) => ErrorCode::InvalidParameter,
            Self::FileNotFound(_) | Self::NotInLibrary(_) => ErrorCode::FileNotFound,
            Self::ConfirmationRequired(_) | Self::CostUnconfirmed { .. } => {
                ErrorCode::ConfirmationRequired
            }
            Self::BudgetExceeded(_) => ErrorCode::BudgetExceeded,
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
        self.message_for(Surface::Tool)
    }

    /// The message plus one hint on what to do next, naming the next step
    /// as `surface` takes it (a tool, or a `media-gen` command).
    pub fn message_for(&self, surface: Surface) -> String {
        let what = match self {
            Self::CannotExtend { filename, reason } => format!(
                "`{filename}` cannot be extended: {}",
                reason.render(surface)
            ),
            _ => self.to_string(),
        };
        contract::with_hint(&what, &self.hint().render(surface))
    }

    /// What to do next, if the failure itself does not say it.
    fn hint(&self) -> Text {
        let text = Text::from;
        match self {
            Self::InputNotFound { .. } => text("give a library file name as ")
                .name(Step::ListFiles)
                .plain(" shows it, a `media://files/…` URI, or a readable path"),
            Self::FileNotFound(_) => Text::default()
                .call(Step::ListFiles)
                .plain(" to see what exists"),
            Self::NotInLibrary(_) => text("give a file name as ")
                .name(Step::ListFiles)
                .plain(" shows it, or the path of a file in the output directory"),
            Self::ConfirmationRequired(_) => {
                text("pass ").name(Step::Confirm).plain(" to delete it")
            }
            Self::CostUnconfirmed { why, .. } => match why {
                Unconfirmed::CannotAsk | Unconfirmed::AskFailed => text(
                    "ask the user whether to spend it; if they agree, call again with the same \
arguments and `confirm_cost: true`",
                ),
                Unconfirmed::Declined | Unconfirmed::Cancelled => text(
                    "do not call again with `confirm_cost: true` unless the user asks for it; a \
faster model, a smaller size or a shorter video costs less",
                ),
            },
            Self::JobNotFound(_) => text("use the `job_id` that ")
                .name(Step::StartVideo)
                .plain(" gave"),
            Self::Image { backend, source } => match (source, backend) {
                (BackendError::Unavailable { .. }, Backend::CliProxy) => text(
                    "start CLIProxyAPI (default 127.0.0.1:8317) or run with `--emulator` for \
offline test images",
                ),
                (BackendError::Unavailable { .. }, Backend::Gemini) => text(
                    "check the network and `MCP_GEMINI_URL`, or run with `--emulator` for \
offline test images",
                ),
                (BackendError::AuthFailed { .. }, Backend::CliProxy) => text(
                    "check `MCP_CLIPROXY_API_KEY` (one of the `api-keys` in CLIProxyAPI's \
config) and that you are logged in to CLIProxyAPI",
                ),
                (BackendError::AuthFailed { .. }, Backend::Gemini) => {
                    text("check `MCP_GEMINI_API_KEY` (or `GEMINI_API_KEY`)")
                }
                (BackendError::NoLogin { .. }, _) => text(LOGIN_HINT),
                (BackendError::Interrupted { .. }, _) => text(INTERRUPTED_HINT),
                (BackendError::RateLimited { .. }, _) => text(
                    "wait a minute and retry, or use a faster model such as \
`gemini-2.5-flash-image`",
                ),
                (BackendError::Timeout { .. }, _) => {
                    text("retry, use a smaller `image_size`, or raise `MCP_REQUEST_TIMEOUT`")
                }
                (BackendError::ContentBlocked { .. }, _) => {
                    text("rephrase the prompt without the blocked content")
                }
                (BackendError::Failed { .. }, _) => {
                    text("retry; if it keeps failing, try another model")
                }
                (BackendError::InvalidModel { .. }, _) => Text::default()
                    .call(Step::ListModels)
                    .plain(" to see which models the backend offers"),
            },
            Self::Video { backend, source } => match (source, backend) {
                (BackendError::Unavailable { .. }, Backend::CliProxy) => text(
                    "start CLIProxyAPI (default 127.0.0.1:8317), or set `MCP_VIDEO_BACKEND=gemini` \
with a Gemini API key, or run with `--emulator` for offline test videos",
                ),
                (BackendError::Unavailable { .. }, Backend::Gemini) => text(
                    "check the network and `MCP_GEMINI_URL`, or run with `--emulator` for \
offline test videos",
                ),
                (BackendError::AuthFailed { .. }, Backend::CliProxy) => text(
                    "check `MCP_CLIPROXY_API_KEY` and that CLIProxyAPI has an account for the model",
                ),
                (BackendError::AuthFailed { .. }, Backend::Gemini) => text(
                    "check `MCP_GEMINI_API_KEY` (or `GEMINI_API_KEY`): it needs access to Veo \
(a paid Gemini API tier)",
                ),
                (BackendError::NoLogin { .. }, _) => text(
                    "log CLIProxyAPI in to an account that serves the video model (see its \
`--login` options), or set `MCP_VIDEO_BACKEND=gemini` with a Gemini API key",
                ),
                (BackendError::Interrupted { .. }, _) => text(INTERRUPTED_HINT),
                (BackendError::RateLimited { .. }, _) => {
                    text("wait a minute and retry, or use `veo-3.1-fast-generate-preview`")
                }
                (BackendError::Timeout { .. }, _) => text("retry, or raise `MCP_REQUEST_TIMEOUT`"),
                (BackendError::ContentBlocked { .. }, _) => {
                    text("rephrase the prompt without the blocked content")
                }
                // The provider refused the request itself (a 4xx): the
                // parameters are the likely cause. A 5xx, a cut-off or
                // unreadable answer is the provider's trouble: retry.
                (
                    BackendError::Failed {
                        status: Some(400..=499),
                        ..
                    },
                    _,
                ) => text("check the parameters against ")
                    .name(Step::ListModels)
                    .plain("; retry, or try another model"),
                (BackendError::Failed { .. }, _) => {
                    text("retry; if it keeps failing, try another model")
                }
                (BackendError::InvalidModel { .. }, _) => Text::default()
                    .call(Step::ListModels)
                    .plain(" to see the video models"),
            },
            Self::NotAnImage(_) | Self::NotAVideo(_) => {
                text("retry; if it keeps failing, try another model")
            }
            Self::Fallback { miss, error, .. } => match (miss, error.as_ref()) {
                (FallbackMiss::CannotMake(_), _) => text(
                    "wait a minute and retry, ask for what the fallback model makes, or set \
`MCP_FALLBACK_MODEL` to a model that makes it",
                ),
                (
                    FallbackMiss::Failed,
                    Self::Image {
                        source: BackendError::RateLimited { .. },
                        ..
                    },
                ) => text("both models are rate limited: wait a minute and retry"),
                (FallbackMiss::Failed, other) => other.hint(),
            },
            _ => Text::default(),
        }
    }

    /// Machine-readable details for the error envelope.
    pub fn details(&self) -> Map<String, Value> {
        let mut d = Map::new();
        match self {
            Self::InvalidParameter(v) => {
                d.insert("parameter".into(), json!(v.field));
                d.insert("value".into(), json!(v.value));
                d.insert("allowed".into(), json!(v.allowed));
                if let Some(model) = v.model {
                    d.insert("model".into(), json!(model));
                }
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
            Self::NotInLibrary(path) => {
                d.insert("path".into(), json!(path));
            }
            Self::CostUnconfirmed {
                quote,
                threshold_usd,
                why,
            } => {
                d.insert("parameter".into(), json!("confirm_cost"));
                d.insert("reason".into(), json!(why.as_str()));
                d.insert("estimated_cost_usd".into(), json!(quote.usd));
                d.insert("confirm_above_usd".into(), json!(threshold_usd));
                d.insert("model".into(), json!(quote.model));
                d.insert("what".into(), json!(quote.what));
            }
            Self::CannotExtend { filename, .. } => {
                d.insert("parameter".into(), json!("video"));
                d.insert("filename".into(), json!(filename));
            }
            Self::JobNotFound(id) => {
                d.insert("job_id".into(), json!(id));
            }
            Self::BudgetExceeded(o) => {
                let (var, key) = o.period.setting();
                d.insert("period".into(), json!(o.period.noun()));
                d.insert("cap_usd".into(), json!(o.cap));
                d.insert("spent_usd".into(), json!(o.spent));
                d.insert("held_usd".into(), json!(o.held));
                d.insert("estimated_cost_usd".into(), json!(o.estimate));
                d.insert("env".into(), json!(var));
                d.insert("config_key".into(), json!(key));
            }
            Self::UnknownModel { model } => {
                d.insert("model".into(), json!(model));
                d.insert("allowed".into(), json!(domain::image_model_ids()));
            }
            Self::UnknownVideoModel { model } => {
                d.insert("model".into(), json!(model));
                d.insert("allowed".into(), json!(domain::video_model_ids()));
            }
            Self::Fallback {
                requested,
                fallback,
                miss,
                error,
            } => {
                d = error.details();
                d.insert("model".into(), json!(requested));
                d.insert("fallback_model".into(), json!(fallback));
                d.insert(
                    "fallback_tried".into(),
                    json!(matches!(miss, FallbackMiss::Failed)),
                );
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

    /// The contract's error envelope for this error, as tools return it.
    pub fn output(&self) -> ErrorOutput {
        self.output_for(Surface::Tool)
    }

    /// The error envelope with the message written for `surface`.
    pub fn output_for(&self, surface: Surface) -> ErrorOutput {
        ErrorOutput {
            success: false,
            error: ErrorBody {
                code: self.code(),
                message: self.message_for(surface),
                details: self.details(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn image(source: BackendError) -> ServiceError {
        ServiceError::image(Backend::CliProxy, source)
    }

    /// A video request the provider refused (4xx) points at the
    /// parameters; a cut-off or unreadable answer, or a 5xx, says retry.
    #[test]
    fn a_failed_video_request_is_blamed_on_the_parameters_only_for_a_4xx() {
        let video = |status| ServiceError::Video {
            backend: Backend::Gemini,
            source: BackendError::Failed {
                status,
                message: String::new(),
            },
        };
        assert!(
            video(Some(400)).message().contains("check the parameters"),
            "{}",
            video(Some(400)).message()
        );
        for status in [None, Some(500), Some(503)] {
            let m = video(status).message();
            assert!(!m.contains("parameters"), "{m}");
            assert!(m.contains("retry"), "{m}");
        }
    }

    /// What failed and what to do next are joined once, with one `; `: no
    /// "…2s Retry", no "(HTTP 404):  Retry".
    #[test]
    fn hints_are_joined_with_punctuation() {
        let timeout = image(BackendError::Timeout {
            after: Duration::from_secs(2),
        });
        assert_eq!(
            timeout.message(),
            "the backend did not answer within 2 s; retry, use a smaller `image_size`, or raise `MCP_REQUEST_TIMEOUT`"
        );
        let empty = image(BackendError::Failed {
            status: Some(404),
            message: String::new(),
        });
        assert_eq!(
            empty.message(),
            "generation failed (HTTP 404); retry; if it keeps failing, try another model"
        );
        let sentence = image(BackendError::RateLimited {
            retry_after: None,
            message: "Resource has been exhausted.".into(),
        });
        assert!(
            sentence.message().starts_with(
                "the backend is rate limiting requests: Resource has been exhausted; wait"
            ),
            "{}",
            sentence.message()
        );
        for e in [timeout, empty, sentence] {
            for surface in [Surface::Tool, Surface::Cli] {
                let m = e.message_for(surface);
                assert!(
                    !m.contains(":  ") && !m.contains(". ") && !m.contains(";;"),
                    "{m}"
                );
                assert!(!m.ends_with('.') && !m.ends_with(' '), "{m}");
            }
        }
    }

    /// A failed fallback names both models, keeps the fallback's code, and
    /// says what to do when both are rate limited.
    #[test]
    fn a_failed_fallback_names_both_models() {
        let limited = || {
            image(BackendError::RateLimited {
                retry_after: None,
                message: "Resource has been exhausted (e.g. check quota).".into(),
            })
        };
        let both = ServiceError::Fallback {
            requested: "gemini-3-pro-image-preview".into(),
            fallback: "gemini-3.1-flash-image-preview",
            miss: FallbackMiss::Failed,
            error: Box::new(limited()),
        };
        assert_eq!(both.code(), ErrorCode::RateLimited);
        assert!(both.is_retryable());
        assert_eq!(
            both.message(),
            "model `gemini-3-pro-image-preview` is rate limited, and its fallback \
`gemini-3.1-flash-image-preview` (tried once) failed too: the backend is rate limiting \
requests: Resource has been exhausted (e.g. check quota); both models are rate limited: \
wait a minute and retry"
        );
        let blocked = ServiceError::Fallback {
            requested: "gemini-3-pro-image-preview".into(),
            fallback: "gemini-3.1-flash-image-preview",
            miss: FallbackMiss::Failed,
            error: Box::new(image(BackendError::ContentBlocked {
                reason: "IMAGE_SAFETY".into(),
            })),
        };
        assert_eq!(blocked.code(), ErrorCode::ContentBlocked);
        assert!(
            blocked
                .message()
                .ends_with("rephrase the prompt without the blocked content")
        );
        let skipped = ServiceError::Fallback {
            requested: "gemini-3-pro-image-preview".into(),
            fallback: "gemini-2.5-flash-image",
            miss: FallbackMiss::CannotMake("it does not make `4K` images".into()),
            error: Box::new(limited()),
        };
        assert_eq!(skipped.code(), ErrorCode::RateLimited);
        let d = skipped.details();
        assert_eq!(d["fallback_tried"], false);
        assert_eq!(d["http_status"], 429);
    }

    /// The next step is named as the reader takes it.
    #[test]
    fn next_steps_per_surface() {
        let missing = ServiceError::FileNotFound("a.png".into());
        assert_eq!(
            missing.message(),
            "no file named `a.png` in the media library; call `list_generated` to see what exists"
        );
        assert_eq!(
            missing.message_for(Surface::Cli),
            "no file named `a.png` in the media library; run `media-gen list` to see what exists"
        );
        let confirm = ServiceError::ConfirmationRequired("a.png".into());
        assert!(
            confirm
                .message()
                .ends_with("pass `confirm: true` to delete it")
        );
        assert!(
            confirm
                .message_for(Surface::Cli)
                .ends_with("pass `--yes` to delete it")
        );
        let model = image(BackendError::InvalidModel {
            model: "x".into(),
            message: String::new(),
        });
        assert!(
            model.message().contains("call `list_models`"),
            "{}",
            model.message()
        );
        assert!(
            model
                .message_for(Surface::Cli)
                .contains("run `media-gen models`"),
            "{}",
            model.message_for(Surface::Cli)
        );
        let extend = ServiceError::CannotExtend {
            filename: "i.png".into(),
            reason: Text::from("it is an image; animate it with ")
                .name(Step::ImageToVideo)
                .plain(" instead"),
        };
        assert!(extend.message().contains("`image_to_video`"));
        assert!(
            extend
                .message_for(Surface::Cli)
                .contains("`media-gen video --image IMAGE`")
        );
        assert_eq!(
            extend.output_for(Surface::Cli).error.message,
            extend.message_for(Surface::Cli)
        );
    }
}
