//! Wiring: builds the backend, store and service from [`Settings`], optionally
//! starts the in-process emulator, and runs a command (serve, generate).
//!
//! Start-up order matters for latency: nothing slow (catalog reconcile,
//! backend probes) runs before the server can answer `initialize`; reconcile
//! runs in the background once serving has begun.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::backend::{BackendConfig, BackendKind, ImageBackend, RetryPolicy};
use crate::config::{Settings, Transport};
use crate::emulator::{self, EmulatorHandle, EmulatorOptions};
use crate::service::{GenerateInput, Service, ServiceError, validate_generate};
use crate::store::Store;
use crate::tools::{BatchOutput, ErrorOutput, ImageOutput, MediaServer};

/// Temporary files older than this are removed at start even if their
/// writer still seems alive (its PID may have been reused).
const STALE_TEMP_AGE: Duration = Duration::from_secs(3600);

/// Errors that end a command.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("cannot open the media library in `{dir}`: {source}")]
    Store {
        dir: String,
        #[source]
        source: crate::store::StoreError,
    },
    #[error("cannot start the emulator: {0}")]
    Emulator(#[source] std::io::Error),
    #[error("transport `{0}` is not available yet in this version; use `--transport stdio`")]
    TransportUnavailable(&'static str),
    #[error("MCP server error: {0}")]
    Serve(String),
    #[error("cannot write to stdout: {0}")]
    Stdout(#[source] std::io::Error),
    #[error("{failed} of {total} images failed")]
    GenerateFailed { failed: usize, total: usize },
}

/// Starts the emulator on a free loopback port and points `settings` at it.
/// The handle must be kept alive for as long as the emulator is needed.
pub async fn attach_emulator(settings: &mut Settings) -> Result<EmulatorHandle, AppError> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .map_err(AppError::Emulator)?;
    let handle = emulator::start(
        listener,
        EmulatorOptions {
            api_key: settings.cliproxy_api_key.clone(),
            latency: Duration::ZERO,
        },
    )
    .await
    .map_err(AppError::Emulator)?;
    let url = reqwest::Url::parse(&handle.base_url())
        .map_err(|e| AppError::Emulator(std::io::Error::other(e.to_string())))?;
    settings.cliproxy_url = url.clone();
    settings.gemini_url = url;
    if settings.gemini_api_key.is_none() {
        settings.gemini_api_key = settings.cliproxy_api_key.clone();
    }
    tracing::warn!(url = %handle.base_url(), "using the built-in EMULATOR: images are synthetic test patterns, not Gemini output");
    Ok(handle)
}

/// Builds the service. Fast: opens (does not scan) the catalog.
pub fn build_service(settings: Settings) -> Result<Arc<Service>, AppError> {
    let store = Store::open(&settings.output_dir).map_err(|source| AppError::Store {
        dir: settings.output_dir.display().to_string(),
        source,
    })?;
    let (base_url, api_key) = match settings.image_backend {
        BackendKind::CliProxy => (
            settings.cliproxy_url.clone(),
            settings.cliproxy_api_key.clone(),
        ),
        BackendKind::Gemini => (settings.gemini_url.clone(), settings.gemini_api_key.clone()),
    };
    let backend = ImageBackend::new(
        BackendConfig {
            kind: settings.image_backend,
            base_url,
            api_key,
            timeout: settings.request_timeout,
            retry: RetryPolicy::default(),
        },
        reqwest::Client::new(),
    );
    Ok(Arc::new(Service::new(Arc::new(settings), backend, store)))
}

/// Reconciles the catalog with the directory, off the request path.
pub fn spawn_reconcile(service: &Arc<Service>) {
    let store = service.store().clone();
    tokio::task::spawn_blocking(move || match store.reconcile(STALE_TEMP_AGE) {
        Ok(report) => tracing::info!(?report, "catalog reconciled"),
        Err(e) => tracing::error!(error = %e, "catalog reconcile failed"),
    });
}

/// Runs the MCP server until the client disconnects or `shutdown` fires.
pub async fn serve(service: Arc<Service>, shutdown: CancellationToken) -> Result<(), AppError> {
    match service.settings().transport {
        Transport::Stdio => {}
        Transport::Http => return Err(AppError::TransportUnavailable("http")),
        Transport::Sse => return Err(AppError::TransportUnavailable("sse")),
        Transport::Dual => return Err(AppError::TransportUnavailable("dual")),
    }
    let server = MediaServer::new(service.clone());
    let serving = crate::transport::serve_stdio(server, shutdown);
    spawn_reconcile(&service);
    serving.await
}

/// Options of the `generate` command.
#[derive(Debug, Clone, Default)]
pub struct GenerateCommand {
    pub prompts: Vec<String>,
    pub model: Option<String>,
    pub aspect_ratio: Option<String>,
    pub image_size: Option<String>,
    pub json: bool,
}

/// `media-gen generate`: one or more prompts, printed as paths or JSON.
pub async fn generate(service: Arc<Service>, cmd: GenerateCommand) -> Result<(), AppError> {
    let default_model = service.settings().default_model;
    let cancel = CancellationToken::new();
    let ctrl_c = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            ctrl_c.cancel();
        }
    });
    let checked: Vec<Result<_, ServiceError>> = cmd
        .prompts
        .iter()
        .map(|p| {
            validate_generate(
                &GenerateInput {
                    prompt: p.clone(),
                    model: cmd.model.clone(),
                    aspect_ratio: cmd.aspect_ratio.clone(),
                    image_size: cmd.image_size.clone(),
                },
                default_model,
            )
        })
        .collect();
    let specs: Vec<_> = checked
        .iter()
        .filter_map(|c| c.as_ref().ok())
        .cloned()
        .collect();
    let mut generated = service
        .generate_batch(&specs, &cancel, |done, total| {
            if total > 1 {
                tracing::info!("{done}/{total} done");
            }
        })
        .await
        .into_iter();
    let outcomes: Vec<Result<_, ServiceError>> = checked
        .into_iter()
        .map(|c| match c {
            Err(e) => Err(e),
            Ok(_) => generated
                .next()
                .unwrap_or_else(|| Err(ServiceError::Internal("result missing".into()))),
        })
        .collect();

    let total = outcomes.len();
    let failed = outcomes.iter().filter(|o| o.is_err()).count();
    let mut out = std::io::stdout().lock();
    if cmd.json {
        let value = if total == 1 {
            match &outcomes[0] {
                Ok(g) => serde_json::to_value(ImageOutput::from(g)),
                Err(e) => serde_json::to_value(ErrorOutput::from(e)),
            }
        } else {
            serde_json::to_value(BatchOutput::from_outcomes(&cmd.prompts, &outcomes))
        }
        .map_err(|e| AppError::Serve(e.to_string()))?;
        writeln!(out, "{value:#}").map_err(AppError::Stdout)?;
    } else {
        for (prompt, o) in cmd.prompts.iter().zip(&outcomes) {
            match o {
                Ok(g) => {
                    writeln!(
                        out,
                        "{}\t{}x{}\t{}",
                        g.path.display(),
                        g.record.width.unwrap_or(0),
                        g.record.height.unwrap_or(0),
                        g.record.mime_type
                    )
                    .map_err(AppError::Stdout)?;
                }
                Err(e) => {
                    tracing::error!("{}: {prompt:?}: {}", e.code().as_str(), e.message());
                }
            }
        }
    }
    if failed > 0 {
        return Err(AppError::GenerateFailed { failed, total });
    }
    Ok(())
}
