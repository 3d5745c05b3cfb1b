//! The Gemini API (also served by CLIProxyAPI under `/v1beta`). Images come
//! from `generateContent` ([`image`]); Veo's long-running video operations
//! join them here.

mod image;
pub(crate) mod veo;

pub use veo::VeoVideos;

use super::http::KeyStyle;
use super::images::{HttpImages, ImageWire};
use super::{Backend, BackendError, GeneratedImage, ImageRequest};

/// Images through `POST /v1beta/models/{model}:generateContent`.
pub type GeminiImages = HttpImages<GenerateContent>;

/// Gemini's native image route (`GET /v1beta/models` lists models).
#[derive(Debug, Clone, Copy)]
pub struct GenerateContent;

impl ImageWire for GenerateContent {
    const BACKEND: Backend = Backend::Gemini;
    const KEY_STYLE: KeyStyle = KeyStyle::GoogApiKey;
    const MODELS_PATH: &'static str = "v1beta/models";

    fn path(model: &str) -> String {
        format!("v1beta/models/{model}:generateContent")
    }

    fn request_body(req: &ImageRequest<'_>) -> Vec<u8> {
        image::request_body(req)
    }

    fn parse_response(body: &[u8]) -> Result<GeneratedImage, BackendError> {
        image::parse_response(body)
    }
}
