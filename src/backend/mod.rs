//! Providers behind ports: [`ImageProvider`] (CLIProxyAPI's OpenAI-style
//! chat completions in [`cliproxy`], Gemini's native `generateContent` in
//! [`gemini`]) and [`VideoProvider`] (Veo's long-running operations in
//! [`gemini`], CLIProxyAPI's OpenAI-style videos in [`cliproxy`]). One retry
//! loop and one classification of failures ([`BackendError`]) serve every
//! provider. Knows nothing of MCP, files or the contract's error codes.
//!
//! Bodies are read once as bytes and parsed into structs that borrow the
//! base64 payload, which is decoded straight into the output buffer: a 4K
//! image costs about its body plus its decoded size, not several copies.

pub mod cliproxy;
pub(crate) mod error;
pub mod gemini;
mod http;
mod images;
mod retry;
pub(crate) mod wire;

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::Url;

use crate::domain::{AspectRatio, ImageSize};

pub use error::BackendError;
pub use http::{
    Endpoint, HttpClient, KeyStyle, POOL_IDLE_TIMEOUT, POOL_MAX_IDLE_PER_HOST,
    client as http_client, warm as warm_http_client,
};
pub use images::{HttpImages, ImageWire};
pub use retry::RetryPolicy;

/// Which service a provider talks to: what to tell the user when it fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// CLIProxyAPI (an OAuth proxy speaking the OpenAI API).
    CliProxy,
    /// The Gemini API itself.
    Gemini,
}

impl Backend {
    /// The service's name, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::CliProxy => "CLIProxyAPI",
            Self::Gemini => "the Gemini API",
        }
    }
}

/// How to reach a provider.
#[derive(Clone)]
pub struct BackendConfig {
    pub base_url: Url,
    pub api_key: Option<String>,
    /// Bound on one call, retries included.
    pub timeout: Duration,
    pub retry: RetryPolicy,
}

impl fmt::Debug for BackendConfig {
    /// The key is never printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackendConfig")
            .field("base_url", &self.base_url.as_str())
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .field("retry", &self.retry)
            .finish()
    }
}

/// One image to send along with the prompt (edits, references).
#[derive(Debug, Clone)]
pub struct InputImage {
    pub mime_type: String,
    pub data: bytes::Bytes,
}

/// What to generate.
#[derive(Debug, Clone, Copy)]
pub struct ImageRequest<'a> {
    pub model: &'a str,
    pub prompt: &'a str,
    pub aspect_ratio: AspectRatio,
    pub image_size: ImageSize,
    pub images: &'a [InputImage],
}

/// An image as the provider sent it (decoded from base64, not re-encoded).
#[derive(Debug, Clone)]
pub struct GeneratedImage {
    pub data: Vec<u8>,
    pub mime_type: String,
    /// Text the model returned beside the image.
    pub text: Option<String>,
    /// HTTP attempts it took (1 = no retry).
    pub attempts: u32,
}

/// Makes images from prompts (and input images).
#[async_trait]
pub trait ImageProvider: Send + Sync + 'static {
    /// Who answers: decides what a failure tells the user to do.
    fn backend(&self) -> Backend;
    fn base_url(&self) -> &Url;
    /// One image, retrying transient failures within the configured timeout.
    async fn generate(&self, req: &ImageRequest<'_>) -> Result<GeneratedImage, BackendError>;
    /// The model ids the provider offers now.
    async fn list_models(&self) -> Result<Vec<String>, BackendError>;
}

/// A video to make.
#[derive(Debug, Clone, Copy)]
pub struct VideoRequest<'a> {
    pub model: &'a str,
    pub prompt: &'a str,
    /// `16:9`, `9:16` (and `1:1` where a model makes it).
    pub aspect_ratio: &'a str,
    pub duration_seconds: u32,
    /// `720p`, `1080p`, `4k`; `None`: the model's default.
    pub resolution: Option<&'a str>,
    pub negative_prompt: Option<&'a str>,
    /// The first frame (image-to-video).
    pub image: Option<&'a InputImage>,
    /// The last frame (interpolation).
    pub last_frame: Option<&'a InputImage>,
    /// Asset references (Veo 3.1, at most 3).
    pub reference_images: &'a [InputImage],
    /// The provider's copy of a video it made, to extend.
    pub extend: Option<&'a str>,
}

/// Where a provider keeps a finished video.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VideoSample {
    /// To download (with the key when it is the provider's own host).
    Uri(String),
    /// Already in the answer.
    Inline(bytes::Bytes),
}

/// How a provider's work on a video stands.
#[derive(Debug, Clone, PartialEq)]
pub enum VideoPoll {
    /// Still working; `progress` 0–1 when the provider says.
    Running {
        progress: Option<f64>,
    },
    Done(VideoSample),
    /// The provider gave up; its message.
    Failed {
        message: String,
    },
    /// Filtered by the provider's safety rules; its reasons.
    Filtered {
        reasons: Vec<String>,
    },
}

/// Makes videos: a long-running operation per video, polled until done.
#[async_trait]
pub trait VideoProvider: Send + Sync + 'static {
    fn backend(&self) -> Backend;
    fn base_url(&self) -> &Url;
    /// Starts the work; the provider's handle on it (an operation name).
    async fn submit(&self, req: &VideoRequest<'_>) -> Result<String, BackendError>;
    /// Where the work on `operation` stands.
    async fn poll(&self, operation: &str) -> Result<VideoPoll, BackendError>;
    /// The finished video's bytes.
    async fn fetch(&self, sample: &VideoSample) -> Result<bytes::Bytes, BackendError>;
}
