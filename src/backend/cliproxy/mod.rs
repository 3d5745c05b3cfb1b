//! CLIProxyAPI: an OAuth proxy that speaks the OpenAI API. Images come
//! from its chat-completions route ([`chat`]), videos from its OpenAI-style
//! video routes ([`videos`]).

mod chat;
pub(crate) mod videos;

pub use videos::CliProxyVideos;

use super::http::KeyStyle;
use super::images::{HttpImages, ImageWire};
use super::{Backend, BackendError, GeneratedImage, ImageRequest};

/// Images through CLIProxyAPI's `POST /v1/chat/completions`.
pub type CliProxyImages = HttpImages<ChatCompletions>;

/// The OpenAI chat-completions image route (`GET /v1/models` lists models).
#[derive(Debug, Clone, Copy)]
pub struct ChatCompletions;

impl ImageWire for ChatCompletions {
    const BACKEND: Backend = Backend::CliProxy;
    const KEY_STYLE: KeyStyle = KeyStyle::Bearer;
    const MODELS_PATH: &'static str = "v1/models";

    fn path(_model: &str) -> String {
        "v1/chat/completions".to_owned()
    }

    fn request_body(req: &ImageRequest<'_>) -> Vec<u8> {
        chat::request_body(req)
    }

    fn parse_response(body: &[u8]) -> Result<GeneratedImage, BackendError> {
        chat::parse_response(body)
    }
}
