//! Image providers: the CLIProxyAPI (OpenAI chat-completions) and Gemini-native
//! (`generateContent`) wire formats, one retry loop for both, and the
//! classification of every failure into a [`BackendError`]. Knows nothing of MCP
//! or files.
//!
//! Bodies are read once as bytes and parsed into structs that borrow the
//! base64 payload, which is decoded straight into the output buffer: a 4K image
//! costs about its body plus its decoded size, not several copies.

mod cliproxy;
mod error;
mod gemini;
mod retry;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use reqwest::Url;

use crate::domain::{AspectRatio, ImageSize};

pub use error::BackendError;
pub use retry::RetryPolicy;

/// Which wire format image requests use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// CLIProxyAPI's OpenAI-compatible `/v1/chat/completions`.
    CliProxy,
    /// Gemini's native `/v1beta/models/{model}:generateContent`.
    Gemini,
}

/// How to reach a provider.
#[derive(Clone)]
pub struct BackendConfig {
    pub kind: BackendKind,
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
            .field("kind", &self.kind)
            .field("base_url", &self.base_url.as_str())
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .field("retry", &self.retry)
            .finish()
    }
}

/// One image to send along with the prompt (edits).
#[derive(Debug, Clone)]
pub struct InputImage {
    pub mime_type: String,
    pub data: Vec<u8>,
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

/// A provider client. Cheap to clone.
#[derive(Clone)]
pub struct ImageBackend {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: BackendConfig,
    http: reqwest::Client,
}

impl fmt::Debug for ImageBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.cfg.fmt(f)
    }
}

impl ImageBackend {
    pub fn new(cfg: BackendConfig, http: reqwest::Client) -> Self {
        Self {
            inner: Arc::new(Inner { cfg, http }),
        }
    }

    pub fn base_url(&self) -> &Url {
        &self.inner.cfg.base_url
    }

    pub fn kind(&self) -> BackendKind {
        self.inner.cfg.kind
    }

    /// Generates one image, retrying transient failures within the timeout.
    pub async fn generate(&self, req: &ImageRequest<'_>) -> Result<GeneratedImage, BackendError> {
        let cfg = &self.inner.cfg;
        let (url, body) = match cfg.kind {
            BackendKind::CliProxy => (
                self.url("v1/chat/completions")?,
                cliproxy::request_body(req),
            ),
            BackendKind::Gemini => (
                self.url(&format!("v1beta/models/{}:generateContent", req.model))?,
                gemini::request_body(req),
            ),
        };
        let body = bytes::Bytes::from(body);
        let (bytes, attempts) = retry::run(&cfg.retry, cfg.timeout, &cfg.base_url, || {
            self.post(&url, body.clone())
        })
        .await?;
        let parsed = match cfg.kind {
            BackendKind::CliProxy => cliproxy::parse_response(&bytes),
            BackendKind::Gemini => gemini::parse_response(&bytes),
        }?;
        drop(bytes);
        Ok(GeneratedImage { attempts, ..parsed })
    }

    /// Model ids the provider offers (`GET /v1/models` or `/v1beta/models`).
    pub async fn list_models(&self) -> Result<Vec<String>, BackendError> {
        let cfg = &self.inner.cfg;
        let url = match cfg.kind {
            BackendKind::CliProxy => self.url("v1/models")?,
            BackendKind::Gemini => self.url("v1beta/models")?,
        };
        let timeout = cfg.timeout.min(Duration::from_secs(10));
        let (bytes, _) = retry::run(&cfg.retry, timeout, &cfg.base_url, || self.get(&url)).await?;
        error::parse_model_list(&bytes)
    }

    fn url(&self, path: &str) -> Result<Url, BackendError> {
        let base = &self.inner.cfg.base_url;
        // Keep any path prefix of the base URL (e.g. a reverse proxy mount).
        let joined = format!("{}/{path}", base.as_str().trim_end_matches('/'));
        Url::parse(&joined).map_err(|e| BackendError::Failed {
            status: None,
            message: format!("cannot build request URL from `{base}`: {e}"),
        })
    }

    fn authorize(&self, rb: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match (&self.inner.cfg.api_key, self.inner.cfg.kind) {
            (None, _) => rb,
            (Some(k), BackendKind::CliProxy) => rb.bearer_auth(k),
            (Some(k), BackendKind::Gemini) => rb.header("x-goog-api-key", k),
        }
    }

    async fn post(&self, url: &Url, body: bytes::Bytes) -> Result<bytes::Bytes, retry::Attempt> {
        let rb = self
            .inner
            .http
            .post(url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        retry::send(self.authorize(rb)).await
    }

    async fn get(&self, url: &Url) -> Result<bytes::Bytes, retry::Attempt> {
        retry::send(self.authorize(self.inner.http.get(url.clone()))).await
    }
}

/// Appends `data:MIME;base64,…` for `img` to `out` without intermediate copies.
fn push_data_url(out: &mut String, img: &InputImage) {
    out.push_str("data:");
    out.push_str(&img.mime_type);
    out.push_str(";base64,");
    base64::engine::general_purpose::STANDARD.encode_string(&img.data, out);
}

/// Decodes base64 (standard alphabet; tolerates missing padding and
/// whitespace) into a fresh buffer.
fn decode_base64(s: &str) -> Result<Vec<u8>, BackendError> {
    let engine = &base64::engine::general_purpose::STANDARD;
    let trimmed = s.trim();
    match engine.decode(trimmed) {
        Ok(v) => Ok(v),
        Err(_) => {
            // Rare: line breaks or URL-safe alphabet or no padding. Clean and retry once.
            let cleaned: String = trimmed
                .chars()
                .filter(|c| !c.is_ascii_whitespace())
                .map(|c| match c {
                    '-' => '+',
                    '_' => '/',
                    c => c,
                })
                .collect();
            let engine = base64::engine::GeneralPurpose::new(
                &base64::alphabet::STANDARD,
                base64::engine::GeneralPurposeConfig::new()
                    .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
            );
            engine.decode(cleaned).map_err(|e| BackendError::Failed {
                status: None,
                message: format!(
                    "the image data is not valid base64 ({e}); the response was corrupted"
                ),
            })
        }
    }
}

/// Splits a `data:image/png;base64,XXXX` URL into MIME type and payload.
fn split_data_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("data:")?;
    let (head, payload) = rest.split_once(',')?;
    let mime = head.strip_suffix(";base64")?;
    Some((if mime.is_empty() { "image/png" } else { mime }, payload))
}

/// Whether a finish reason means a safety or policy stop.
fn is_block_reason(reason: &str) -> bool {
    let r = reason.to_ascii_lowercase();
    [
        "safety",
        "prohibited",
        "blocklist",
        "spii",
        "recitation",
        "no_image",
        "image_other",
        "content_filter",
        "language",
        "malformed_function_call",
    ]
    .iter()
    .any(|k| r.contains(k))
}

/// Shortens model text for an error message.
fn excerpt(text: &str) -> String {
    const MAX: usize = 200;
    let t = text.trim();
    if t.chars().count() <= MAX {
        t.to_owned()
    } else {
        let cut: String = t.chars().take(MAX).collect();
        format!("{cut}…")
    }
}
