//! An [`ImageProvider`] over HTTP for any image route: the route's
//! [`ImageWire`] says where to send, what to send and how to read the
//! answer; the endpoint does the rest (key, retries, timeout).

use std::marker::PhantomData;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::Url;

use super::http::{Endpoint, HttpClient, KeyStyle};
use super::{Backend, BackendConfig, BackendError, GeneratedImage, ImageProvider, ImageRequest};

/// An image route's wire format.
pub trait ImageWire: Send + Sync + 'static {
    /// Who serves it.
    const BACKEND: Backend;
    /// How the key is sent.
    const KEY_STYLE: KeyStyle;
    /// Where the model list is, under the base URL.
    const MODELS_PATH: &'static str;
    /// Where a generation for `model` is posted, under the base URL.
    fn path(model: &str) -> String;
    fn request_body(req: &ImageRequest<'_>) -> Vec<u8>;
    fn parse_response(body: &[u8]) -> Result<GeneratedImage, BackendError>;
}

/// Images over HTTP in wire format `W`.
#[derive(Debug, Clone)]
pub struct HttpImages<W> {
    endpoint: Endpoint,
    wire: PhantomData<W>,
}

impl<W: ImageWire> HttpImages<W> {
    pub fn new(cfg: BackendConfig, http: impl Into<HttpClient>) -> Self {
        Self {
            endpoint: Endpoint::new(cfg, W::KEY_STYLE, http.into()),
            wire: PhantomData,
        }
    }
}

#[async_trait]
impl<W: ImageWire> ImageProvider for HttpImages<W> {
    fn backend(&self) -> Backend {
        W::BACKEND
    }

    fn base_url(&self) -> &Url {
        self.endpoint.base_url()
    }

    async fn generate(&self, req: &ImageRequest<'_>) -> Result<GeneratedImage, BackendError> {
        let url = self.endpoint.url(&W::path(req.model))?;
        let (body, attempts) = self
            .endpoint
            .post_json(&url, W::request_body(req).into())
            .await?;
        let parsed = W::parse_response(&body)?;
        Ok(GeneratedImage { attempts, ..parsed })
    }

    async fn list_models(&self) -> Result<Vec<String>, BackendError> {
        let url = self.endpoint.url(W::MODELS_PATH)?;
        let body = self.endpoint.get(&url, Duration::from_secs(10)).await?;
        super::error::parse_model_list(&body)
    }
}
