//! The composition root: builds every port from its settings group (the
//! local store from `library`, the image provider from `backend`), the
//! service over them, and runs a command — `serve` over the configured
//! transport, or one of the shell commands in [`cli`].
//!
//! Start-up order matters for latency: nothing slow (reconcile, backend
//! probes) runs before the server can answer `initialize`; maintenance
//! starts once serving has begun.

pub mod cli;

use std::sync::Arc;
use std::time::Duration;

use rmcp::ServerHandler;
use tokio_util::sync::CancellationToken;

use crate::backend::{BackendConfig, ImageProvider, RetryPolicy};
use crate::backend::{cliproxy::CliProxyImages, gemini::GeminiImages};
use crate::config::{
    BackendSettings, ConfigError, HttpSettings, ImageBackendKind, LibrarySettings, Secret,
    Settings, Transport,
};
use crate::emulator::{self, EmulatorHandle, EmulatorOptions};
use crate::service::{BatchInput, ListInput, Service, ServiceParts};
use crate::store::local::LocalStore;
use crate::tools::MediaServer;
use crate::transport::http::{self, Handlers, HttpServer};
use crate::transport::{self as transport, TransportError};

/// Errors that end a command.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A setting is wrong (exit status 2).
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot start the emulator: {0}")]
    Emulator(#[source] std::io::Error),
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("cannot write to stdout: {0}")]
    Stdout(#[source] std::io::Error),
    /// A command failed with a contract error (`CODE: message`).
    #[error("{0}")]
    Command(String),
    #[error("{failed} of {total} images failed")]
    GenerateFailed { failed: usize, total: usize },
}

impl AppError {
    /// The process exit status for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Config(_) => 2,
            _ => 1,
        }
    }
}

/// A command to run, as the command line asked.
#[derive(Debug, Clone)]
pub enum Command {
    /// The MCP server over the configured transport.
    Serve,
    /// Images from the shell; several prompts run as a batch.
    Generate {
        input: BatchInput,
        json: bool,
    },
    Models {
        json: bool,
    },
    List {
        input: ListInput,
        json: bool,
    },
    Info {
        file: String,
        json: bool,
    },
    Rm {
        file: String,
        yes: bool,
    },
}

/// Runs `command` with `settings`; with `emulator`, against the built-in
/// emulator instead of the configured backends.
pub async fn run(
    mut settings: Settings,
    command: Command,
    emulator: bool,
    shutdown: CancellationToken,
) -> Result<(), AppError> {
    let _emulator = match emulator {
        true => Some(attach_emulator(&mut settings.backend).await?),
        false => None,
    };
    let service = build_service(&settings)?;
    match command {
        Command::Serve => Server::new(service, &settings).run(shutdown).await,
        Command::Generate { input, json } => cli::generate(service, input, json, shutdown).await,
        Command::Models { json } => cli::models(service, json).await,
        Command::List { input, json } => cli::list(service, input, json).await,
        Command::Info { file, json } => cli::info(service, &file, json).await,
        Command::Rm { file, yes } => cli::rm(service, &file, yes).await,
    }
}

/// `media-gen emulator`: serves the offline backend emulator on `listener`
/// until `shutdown`, printing its URL on stdout (for scripts; useful with
/// port 0).
pub async fn run_emulator(
    listener: tokio::net::TcpListener,
    opts: EmulatorOptions,
    shutdown: CancellationToken,
) -> Result<(), AppError> {
    let handle = emulator::start(listener, opts)
        .await
        .map_err(AppError::Emulator)?;
    cli::print_line(&handle.base_url())?;
    tracing::warn!(
        "media-gen EMULATOR listening on {} — a test and demo tool serving synthetic images",
        handle.base_url()
    );
    shutdown.cancelled().await;
    handle.shutdown().await;
    Ok(())
}

/// Starts the emulator on a free loopback port and points the backend
/// settings at it. The handle must be kept alive while it is needed.
pub async fn attach_emulator(backend: &mut BackendSettings) -> Result<EmulatorHandle, AppError> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .map_err(AppError::Emulator)?;
    let handle = emulator::start(
        listener,
        EmulatorOptions {
            api_key: backend
                .cliproxy_api_key
                .as_ref()
                .map(|k| k.expose().to_owned()),
            latency: Duration::ZERO,
        },
    )
    .await
    .map_err(AppError::Emulator)?;
    let url = reqwest::Url::parse(&handle.base_url())
        .map_err(|e| AppError::Emulator(std::io::Error::other(e.to_string())))?;
    backend.cliproxy_url = url.clone();
    backend.gemini_url = url;
    if backend.gemini_api_key.is_none() {
        backend.gemini_api_key = backend.cliproxy_api_key.clone();
    }
    tracing::warn!(url = %handle.base_url(), "using the built-in EMULATOR: images are synthetic test patterns, not Gemini output");
    Ok(handle)
}

/// Opens the local library in the configured directory (creating it). A
/// directory that cannot be created or written is a configuration error
/// naming `output_dir` and where it was set.
pub fn open_library(settings: &LibrarySettings) -> Result<LocalStore, AppError> {
    LocalStore::open(&settings.output_dir).map_err(|e| {
        AppError::Config(ConfigError::Invalid {
            setting: "output_dir",
            value: settings.output_dir.display().to_string(),
            origin: settings.output_dir_origin.clone(),
            reason: format!("{e}; set `MCP_OUTPUT_DIR` to a writable directory"),
        })
    })
}

/// The image provider the backend settings name.
pub fn image_provider(settings: &BackendSettings) -> Arc<dyn ImageProvider> {
    let config = |url: &reqwest::Url, key: &Option<Secret>| BackendConfig {
        base_url: url.clone(),
        api_key: key.as_ref().map(|k| k.expose().to_owned()),
        timeout: settings.request_timeout,
        retry: RetryPolicy::default(),
    };
    let http = reqwest::Client::new();
    match settings.image_backend {
        ImageBackendKind::CliProxy => Arc::new(CliProxyImages::new(
            config(&settings.cliproxy_url, &settings.cliproxy_api_key),
            http,
        )),
        ImageBackendKind::Gemini => Arc::new(GeminiImages::new(
            config(&settings.gemini_url, &settings.gemini_api_key),
            http,
        )),
    }
}

/// Builds the service from its settings groups. Fast: opens (does not
/// scan) the library.
pub fn build_service(settings: &Settings) -> Result<Arc<Service>, AppError> {
    let store = open_library(&settings.library)?;
    Ok(Arc::new(Service::new(ServiceParts {
        images: image_provider(&settings.backend),
        library: store.library(),
        generation: settings.generation.clone(),
        results: settings.results.clone(),
        cleanup: settings.library.cleanup.clone(),
    })))
}

/// What `serve` needs: the service, the transport and the HTTP settings.
pub struct Server {
    pub service: Arc<Service>,
    pub transport: Transport,
    pub http: HttpSettings,
}

impl Server {
    pub fn new(service: Arc<Service>, settings: &Settings) -> Self {
        Self {
            service,
            transport: settings.server.transport,
            http: settings.http.clone(),
        }
    }

    /// Serves media-gen's own MCP server.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), AppError> {
        let service = self.service.clone();
        let handlers: Handlers<MediaServer> = Arc::new(move || MediaServer::new(service.clone()));
        self.run_with(handlers, shutdown).await
    }

    /// Serves handlers made by `handlers` until the client disconnects
    /// (stdio) or `shutdown` fires. `http`/`sse` serve HTTP only; `dual`
    /// serves stdio and HTTP from one process sharing one service: stdio
    /// EOF ends the process, giving in-flight HTTP requests the grace period.
    pub async fn run_with<H: ServerHandler>(
        self,
        handlers: Handlers<H>,
        shutdown: CancellationToken,
    ) -> Result<(), AppError> {
        match self.transport {
            Transport::Stdio => self.stdio(handlers(), shutdown).await,
            Transport::Http | Transport::Sse => {
                let server = self.http_server(handlers).await?;
                spawn_maintenance(&self.service, shutdown.clone());
                Ok(server.run(shutdown).await?)
            }
            Transport::Dual => {
                let server = self.http_server(handlers.clone()).await?;
                let http_stop = shutdown.child_token();
                let http_task = tokio::spawn(server.run(http_stop.clone()));
                let stdio = self.stdio(handlers(), shutdown).await;
                tracing::info!("stdio closed; stopping the HTTP server");
                http_stop.cancel();
                match http_task.await {
                    Ok(r) => r?,
                    Err(e) => tracing::error!(error = %e, "HTTP server task failed"),
                }
                stdio
            }
        }
    }

    async fn http_server<H: ServerHandler>(
        &self,
        handlers: Handlers<H>,
    ) -> Result<HttpServer, AppError> {
        let listener = http::bind(&self.http).await?;
        let server = HttpServer::new(listener, handlers, &self.http);
        if let Some(addr) = server.local_addr() {
            tracing::info!(%addr, "HTTP server listening");
            #[allow(clippy::print_stderr, reason = "the one line a user needs to connect")]
            {
                eprintln!(
                    "media-gen: listening on http://{addr} (Streamable HTTP at /mcp, legacy SSE at /sse)"
                );
            }
        }
        Ok(server)
    }

    async fn stdio<H: ServerHandler>(
        &self,
        handler: H,
        shutdown: CancellationToken,
    ) -> Result<(), AppError> {
        // Reconcile and clean-up start after the first answer: on a large
        // library they would otherwise compete with the handshake for the CPU.
        let service = self.service.clone();
        let maintenance = shutdown.clone();
        transport::serve_stdio(handler, shutdown, move || {
            spawn_maintenance(&service, maintenance);
        })
        .await?;
        Ok(())
    }
}

/// Starts the library's background maintenance (reconcile, clean-up).
pub fn spawn_maintenance(service: &Arc<Service>, shutdown: CancellationToken) {
    let service = service.clone();
    tokio::spawn(async move { service.maintain(shutdown).await });
}
