//! Entry points for the fuzz targets in `fuzz/` (a separate Cargo
//! workspace) and the property tests: the parsers that read what a backend
//! or a client sends, reachable from outside the crate without making the
//! backend's internals public. Not an API: nothing here is stable.
//!
//! The image, MP4 and file-name readers are public already
//! ([`crate::media::probe`], [`crate::media::video::probe_mp4`],
//! [`crate::store::MediaId`] …); only the wire-format readers that live in
//! private modules are re-exported here.

use reqwest::Url;

use crate::backend::cliproxy::ChatCompletions;
use crate::backend::gemini::GenerateContent;
use crate::backend::{BackendError, GeneratedImage, ImageWire, VideoPoll};

/// A CLIProxyAPI chat-completions body → the image it carries.
pub fn chat_completion(body: &[u8]) -> Result<GeneratedImage, BackendError> {
    ChatCompletions::parse_response(body)
}

/// A Gemini `generateContent` body → the image it carries.
pub fn generate_content(body: &[u8]) -> Result<GeneratedImage, BackendError> {
    GenerateContent::parse_response(body)
}

/// A polled Veo long-running operation.
pub fn veo_operation(body: &[u8]) -> Result<VideoPoll, BackendError> {
    crate::backend::gemini::veo::parse_operation(body)
}

/// A polled OpenAI-style video object (CLIProxyAPI `/v1/videos/{id}`).
pub fn openai_video(body: &[u8]) -> Result<VideoPoll, BackendError> {
    // Where the bytes would be; the parser only echoes it back.
    #[expect(clippy::expect_used, reason = "a constant, valid URL")]
    let content = Url::parse("http://127.0.0.1:8317/v1/videos/v/content").expect("valid URL");
    crate::backend::cliproxy::videos::parse_video(body, content)
}

/// A non-success response (`status`, `Retry-After` seconds, body) as the
/// backend error it is classified to.
pub fn error_response(status: u16, retry_after_seconds: Option<u64>, body: &[u8]) -> BackendError {
    crate::backend::error::classify_status(
        status,
        retry_after_seconds.map(std::time::Duration::from_secs),
        body,
    )
}

/// A model list (`{"data":[{"id"}]}` or `{"models":[{"name"}]}`).
pub fn model_list(body: &[u8]) -> Result<Vec<String>, BackendError> {
    crate::backend::error::parse_model_list(body)
}

/// `data:MIME;base64,PAYLOAD` → (MIME, PAYLOAD).
pub fn split_data_url(url: &str) -> Option<(&str, &str)> {
    crate::backend::wire::split_data_url(url)
}

/// Base64 as the backends send it (padding optional, whitespace and the
/// URL-safe alphabet tolerated).
pub fn decode_base64(s: &str) -> Result<Vec<u8>, BackendError> {
    crate::backend::wire::decode_base64(s)
}

/// `text` with `secret` and credential-shaped words replaced.
pub fn redact(text: &str, secret: Option<&str>) -> String {
    crate::backend::error::redact(text, secret)
}
