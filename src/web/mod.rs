//! The HTTP routes beside MCP, over the [`Service`]: downloads and uploads
//! of library files (`/files`) and the web gallery (`/gallery`). The
//! transport puts them behind its guard (Host, Origin, token — here also
//! from the gallery's cookie); this module only answers.
//!
//! Errors are the contract's envelope (`{"success":false,"error":{code,
//! message,details}}`) with the HTTP status that fits the code.

mod files;
mod gallery;

use std::sync::Arc;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use tokio_util::sync::CancellationToken;

use crate::contract::{ErrorCode, FileUrls};
use crate::service::{Service, ServiceError};
use crate::tools::Access;

/// What the handlers share.
#[derive(Clone)]
struct Web {
    service: Arc<Service>,
    /// How results name their download links.
    urls: Option<FileUrls>,
    /// Ends the gallery's event streams when the server shuts down.
    stop: CancellationToken,
}

impl Web {
    /// Adds the download `url`s of `out`'s files.
    fn link<T: crate::contract::WithUrls>(&self, out: &mut T) {
        if let Some(urls) = &self.urls {
            out.add_urls(urls);
        }
    }
}

/// The web routes, for the transport to serve behind its guard; `stop`
/// ends their long-lived responses (event streams).
pub fn routes(service: Arc<Service>, access: Access, stop: CancellationToken) -> Router {
    let web = Web {
        service,
        urls: access.file_urls,
        stop,
    };
    files::routes(web.clone()).merge(gallery::routes(web))
}

/// The routes a load balancer probes, outside the guard: `/readyz` answers
/// 200 when the library's storage and database can be reached, else 503
/// with why (no credentials in it). `/healthz` (liveness) is the
/// transport's own.
pub fn probes(service: Arc<Service>) -> Router {
    Router::new().route(
        "/readyz",
        axum::routing::get(move || {
            let service = service.clone();
            async move {
                let json = [(header::CONTENT_TYPE, "application/json")];
                match service.ready().await {
                    Ok(()) => (StatusCode::OK, json, "{\"status\":\"ready\"}".to_owned()),
                    Err(e) => (
                        StatusCode::SERVICE_UNAVAILABLE,
                        json,
                        serde_json::json!({"status": "unavailable", "error": e.to_string()})
                            .to_string(),
                    ),
                }
            }
        }),
    )
}

/// A service error as an HTTP answer: the contract's envelope.
struct Failure(ServiceError);

impl From<ServiceError> for Failure {
    fn from(e: ServiceError) -> Self {
        Self(e)
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let out = self.0.output();
        let status = match out.error.code {
            ErrorCode::FileNotFound | ErrorCode::JobNotFound => StatusCode::NOT_FOUND,
            ErrorCode::InvalidPrompt
            | ErrorCode::InvalidModel
            | ErrorCode::InvalidParameter
            | ErrorCode::InvalidImage
            | ErrorCode::ConfirmationRequired => StatusCode::BAD_REQUEST,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        json(status, &out)
    }
}

/// `value` as a JSON answer with `status`.
fn json<T: serde::Serialize>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => (
            status,
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            body,
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// A request the routes refuse before the service sees it (wrong type,
/// too large): the same envelope, with its own status.
fn refusal(status: StatusCode, code: ErrorCode, message: String) -> Response {
    json(
        status,
        &crate::contract::ErrorOutput {
            success: false,
            error: crate::contract::ErrorBody {
                code,
                message,
                details: serde_json::Map::new(),
            },
        },
    )
}
