//! The composition root: builds every port from its settings group (the
//! local store from `library`, the image provider from `backend`), the
//! service over them, and runs a command — `serve` over the configured
//! transport, or one of the shell commands in [`cli`].
//!
//! Start-up order matters for latency: nothing slow (reconcile, backend
//! probes, loading the TLS roots for the providers' HTTP client, the tools'
//! JSON schemas) runs before the server can answer `initialize`. The HTTP
//! client is built on a background thread and maintenance starts once
//! serving has begun (the first answer, over stdio); the tool schemas are
//! made by the first `tools/list`.

pub mod cli;
pub mod doctor;
pub mod import;
pub mod logs;
mod progress;

use std::sync::Arc;
use std::time::Duration;

use rmcp::ServerHandler;
use tokio_util::sync::CancellationToken;

use crate::backend::{BackendConfig, ImageProvider, RetryPolicy};
use crate::backend::{
    cliproxy::{CliProxyImages, CliProxyVideos},
    gemini::{GeminiImages, VeoVideos},
};
use crate::config::{
    BackendSettings, ConfigError, HttpSettings, ImageBackendKind, LibrarySettings, REDACTED,
    Secret, Settings, Transport, VideoBackendKind,
};
use crate::contract::{ErrorCode, FileUrls, Surface};
use crate::emulator::{self, EmulatorHandle, EmulatorOptions};
use crate::service::{
    BatchInput, InputPolicy, ListInput, ModelCatalog, Service, ServiceError, ServiceParts,
    VideoAccess, VideoInput, VideoOperation,
};
use crate::store::Stores;
use crate::store::local::LocalStore;
use crate::tools::{Access, MediaServer};
use crate::transport::http::{self, Handlers, HttpServer};
use crate::transport::{self as transport, TransportError};

/// Errors that end a command. [`AppError::line`] is how the shell shows
/// one, [`AppError::exit_code`] the status it exits with.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A setting is wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot start the emulator: {0}")]
    Emulator(#[source] std::io::Error),
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("cannot write to stdout: {0}")]
    Stdout(#[source] std::io::Error),
    /// An operation failed with a contract error; the message is written
    /// for the shell.
    #[error("{code}: {message}", code = code.as_str())]
    Failed { code: ErrorCode, message: String },
    /// Something else went wrong.
    #[error("{0}")]
    Command(String),
    #[error("{failed} of {total} images failed; the others were saved")]
    GenerateFailed { failed: usize, total: usize },
    #[error("doctor: {failed} {} failed", if *failed == 1 { "check" } else { "checks" })]
    ChecksFailed { failed: usize },
}

impl AppError {
    /// A failed operation, its message naming `media-gen` commands.
    pub fn failed(e: &ServiceError) -> Self {
        Self::Failed {
            code: e.code(),
            message: e.message_for(Surface::Cli),
        }
    }

    /// The process exit status: 2 when the command line or the
    /// configuration is wrong as written (a bad setting, a port in use, an
    /// `INVALID_*` value, a delete without `--yes`), 1 when the operation
    /// was tried and failed. (clap's own usage errors exit 2 too.)
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Config(_) | Self::Transport(TransportError::Bind { .. }) => 2,
            Self::Failed { code, .. } if is_usage(*code) => 2,
            _ => 1,
        }
    }

    /// The one line the shell prints: `error[CODE]: message` for contract
    /// errors, `error: message` for the rest.
    pub fn line(&self) -> String {
        match self {
            Self::Failed { code, message } => format!("error[{}]: {message}", code.as_str()),
            other => format!("error: {other}"),
        }
    }
}

/// Whether an error code means the request was wrong as written.
pub fn is_usage(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::InvalidPrompt
            | ErrorCode::InvalidModel
            | ErrorCode::InvalidParameter
            | ErrorCode::InvalidImage
            | ErrorCode::ConfirmationRequired
    )
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
    /// An edit of an existing image.
    Edit {
        edit: cli::Edit,
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
    /// A video job, waited for with `wait`.
    Video {
        operation: VideoOperation,
        input: VideoInput,
        wait: bool,
        json: bool,
    },
    /// Recent video jobs.
    Jobs {
        limit: u32,
        json: bool,
    },
    /// What was spent (estimated).
    Usage {
        since: Option<String>,
        until: Option<String>,
        json: bool,
    },
    /// A local library copied into the shared one.
    Import {
        from: std::path::PathBuf,
    },
    /// The database's schema migrations applied (or listed).
    Migrate {
        dry_run: bool,
    },
}

impl Command {
    /// Whether the command only looks at the library (and so must not
    /// create one where there is none).
    fn only_looks(&self) -> bool {
        matches!(
            self,
            Self::List { .. }
                | Self::Info { .. }
                | Self::Rm { .. }
                | Self::Jobs { .. }
                | Self::Usage { .. }
        )
    }
}

/// Runs `command` with `settings`; with `emulator`, against the built-in
/// emulator instead of the configured backends. `models` opens no library;
/// `list`, `info`, `rm` and `jobs` open one only if it exists.
pub async fn run(
    mut settings: Settings,
    command: Command,
    emulator: bool,
    shutdown: CancellationToken,
) -> Result<(), AppError> {
    for note in &settings.provenance.notes {
        tracing::warn!("{note}");
    }
    let _emulator = match emulator {
        true => {
            // Emulated operations finish after a few polls, not minutes:
            // poll them at least every second.
            settings.video.poll_interval = settings.video.poll_interval.min(Duration::from_secs(1));
            Some(attach_emulator(&mut settings.backend).await?)
        }
        false => None,
    };
    if let Command::Models { json } = command {
        return cli::models(&model_catalog(&settings), json).await;
    }
    if let Command::Migrate { dry_run } = command {
        return migrate(&settings.library, dry_run).await;
    }
    if let Command::Import { from } = &command {
        if !settings.library.shared.any() {
            return Err(AppError::Command(
                "import copies a local library into a shared one: set `MCP_STORAGE_URL` and/or `MCP_DATABASE_URL` to the shared library first (see docs/deploy.md)".into(),
            ));
        }
        let source = import::source(from).map_err(AppError::Command)?;
        let target = open_stores(&settings.library).await?;
        import::import(&source, &target, &mut std::io::stdout())
            .await
            .map_err(|e| {
                AppError::Command(format!("import stopped: {e}; run it again to go on"))
            })?;
        return Ok(());
    }
    let store = if command.only_looks() {
        match open_existing_stores(&settings.library).await? {
            Some(store) => store,
            None => return cli::without_library(command, &settings),
        }
    } else {
        open_stores(&settings.library).await?
    };
    let service = service_over(&settings, &store);
    service.load_budget().await;
    let done = service.clone();
    let result = match command {
        Command::Serve => {
            // A person ran it in a terminal (a client always pipes stdin):
            // say what it is and how to try it, on stderr, and keep serving.
            let stdio = matches!(
                settings.server.transport,
                Transport::Stdio | Transport::Dual
            );
            if stdio && std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                cli::waiting_for_a_client();
            }
            Server::new(service, &settings).run(shutdown).await
        }
        Command::Generate { input, json } => cli::generate(service, input, json, shutdown).await,
        Command::Edit { edit, json } => cli::edit(service, edit, json, shutdown).await,
        Command::Models { json } => cli::models(&model_catalog(&settings), json).await,
        Command::List { input, json } => {
            cli::list(service, input, json, &library_place(&settings.library)).await
        }
        Command::Info { file, json } => cli::info(service, &file, json).await,
        Command::Rm { file, yes } => cli::rm(service, &file, yes).await,
        Command::Video {
            operation,
            input,
            wait,
            json,
        } => {
            if emulator && !wait {
                tracing::warn!(
                    "with --emulator the video job lives only as long as this process: waiting for it"
                );
            }
            cli::video(service, operation, input, wait || emulator, json, shutdown).await
        }
        Command::Jobs { limit, json } => cli::jobs(service, limit, json).await,
        Command::Usage { since, until, json } => {
            cli::usage(service, since.as_deref(), until.as_deref(), json).await
        }
        Command::Import { .. } | Command::Migrate { .. } => unreachable!("answered above"),
    };
    // Nothing half-written at exit: saves and deletes under way finish.
    if tokio::time::timeout(MAINTENANCE_GRACE, done.settle())
        .await
        .is_err()
    {
        tracing::warn!("library writes still under way at exit; the next start reconciles them");
    }
    result
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
    LocalStore::open(&settings.output_dir).map_err(|e| library_error(settings, &e))
}

/// Opens the library in the configured directory if there is one there;
/// creates nothing.
pub fn open_existing_library(settings: &LibrarySettings) -> Result<Option<LocalStore>, AppError> {
    LocalStore::open_existing(&settings.output_dir).map_err(|e| library_error(settings, &e))
}

/// Opens the library where the settings put it: the local directory, or
/// the shared object store and database (creating what is missing there,
/// applying the database's migrations).
pub async fn open_stores(settings: &LibrarySettings) -> Result<Stores, AppError> {
    match settings.shared.any() {
        false => open_library(settings).map(Stores::from),
        true => open_shared(settings).await,
    }
}

/// Like [`open_stores`], but a local library is opened only if there is
/// one (commands that only look create nothing); a shared one always is.
pub async fn open_existing_stores(settings: &LibrarySettings) -> Result<Option<Stores>, AppError> {
    match settings.shared.any() {
        false => Ok(open_existing_library(settings)?.map(Stores::from)),
        true => open_shared(settings).await.map(Some),
    }
}

/// The shared deployment's ports: media in object storage (or the output
/// directory), the rest in PostgreSQL (or SQLite in the output directory).
/// Both are checked before the server starts: a bucket that cannot be
/// written or a database that does not answer is a start-up error.
async fn open_shared(settings: &LibrarySettings) -> Result<Stores, AppError> {
    let shared = &settings.shared;
    let local = match shared.storage_url.is_none() || shared.database_url.is_none() {
        true => Some(open_library(settings)?),
        false => None,
    };
    let media: Arc<dyn crate::store::MediaStore> = match (&shared.storage_url, &local) {
        (Some(url), _) => {
            let endpoint = shared.storage_endpoint.as_ref().map(reqwest::Url::as_str);
            let media = crate::store::object::ObjectMedia::from_url(url.as_str(), endpoint)
                .map_err(|e| shared_error("storage_url", url.as_str(), &e))?
                .with_presigned(shared.storage_presign);
            crate::store::MediaStore::ready(&media)
                .await
                .map_err(|e| shared_error("storage_url", url.as_str(), &e))?;
            Arc::new(media)
        }
        (None, Some(l)) => l.media.clone(),
        (None, None) => unreachable!("a local library is opened when there is no object store"),
    };
    match (&shared.database_url, local) {
        (None, Some(l)) => Ok(Stores {
            media,
            catalog: l.catalog,
            jobs: l.jobs,
            usage: l.usage,
            feed: l.feed,
            shared: true,
        }),
        (Some(_), _) | (None, None) => open_database(settings, media).await,
    }
}

/// Where the library's files are, for messages: the object store's URL or
/// the output directory.
pub fn library_place(settings: &LibrarySettings) -> String {
    match &settings.shared.storage_url {
        Some(url) => url.to_string(),
        None => settings.output_dir.display().to_string(),
    }
}

/// `media-gen migrate [--dry-run]`.
async fn migrate(settings: &LibrarySettings, dry_run: bool) -> Result<(), AppError> {
    use crate::store::postgres;
    let Some(url) = &settings.shared.database_url else {
        return Err(AppError::Command(
            "migrate applies the PostgreSQL schema: set `MCP_DATABASE_URL` (postgres://user:password@host:5432/db) first; the local SQLite catalog upgrades itself"
                .into(),
        ));
    };
    let fail = |e: crate::store::StoreError| database_error(&e);
    let names = match dry_run {
        true => postgres::pending_migrations(url.expose())
            .await
            .map_err(fail)?,
        false => postgres::migrate(url.expose()).await.map_err(fail)?,
    };
    let verb = if dry_run { "would apply" } else { "applied" };
    let text = match names.as_slice() {
        [] => "the database schema is up to date: no migration to apply\n".to_owned(),
        names => format!(
            "{verb} {} migration{}:\n{}",
            names.len(),
            if names.len() == 1 { "" } else { "s" },
            names.iter().map(|n| format!("  {n}\n")).collect::<String>()
        ),
    };
    cli::print(&text)
}

/// The PostgreSQL ports over `media`: connects, applies the schema's
/// migrations (one replica at a time) and starts listening for changes.
async fn open_database(
    settings: &LibrarySettings,
    media: Arc<dyn crate::store::MediaStore>,
) -> Result<Stores, AppError> {
    let Some(url) = &settings.shared.database_url else {
        unreachable!("open_database is called with a database URL")
    };
    let pg = crate::store::postgres::PgStore::connect(url.expose())
        .await
        .map_err(|e| database_error(&e))?;
    Ok(Stores {
        media,
        catalog: pg.catalog.clone(),
        jobs: pg.jobs.clone(),
        usage: pg.usage.clone(),
        feed: pg.feed.clone(),
        shared: true,
    })
}

/// A database that cannot be opened (its URL never shown: it holds the
/// password), with the form the setting takes.
fn database_error(e: &crate::store::StoreError) -> AppError {
    AppError::Config(ConfigError::Invalid {
        setting: "database_url",
        value: REDACTED.to_owned(),
        origin: "the environment or the config file".into(),
        reason: format!(
            "{e}; `MCP_DATABASE_URL` takes `postgres://user:password@host:5432/database` (see docs/deploy.md)"
        ),
    })
}

/// A shared store that cannot be opened, as a configuration error naming
/// its setting (`value` never carries a credential).
fn shared_error(setting: &'static str, value: &str, e: &crate::store::StoreError) -> AppError {
    AppError::Config(ConfigError::Invalid {
        setting,
        value: value.to_owned(),
        origin: "the environment or the config file".into(),
        reason: e.to_string(),
    })
}

fn library_error(settings: &LibrarySettings, e: &crate::store::StoreError) -> AppError {
    AppError::Config(ConfigError::Invalid {
        setting: "output_dir",
        value: settings.output_dir.display().to_string(),
        origin: settings.output_dir_origin.clone(),
        reason: format!("{e}; set `MCP_OUTPUT_DIR` to a writable directory"),
    })
}

/// How to reach the provider at `url` with `key`, for the calls of a
/// running server: the configured timeout, the default retries.
fn backend_config(
    settings: &BackendSettings,
    url: &reqwest::Url,
    key: &Option<Secret>,
) -> BackendConfig {
    endpoint_config(url, key, settings.request_timeout, RetryPolicy::default())
}

/// How to reach the provider at `url` with `key` within `timeout`.
fn endpoint_config(
    url: &reqwest::Url,
    key: &Option<Secret>,
    timeout: Duration,
    retry: RetryPolicy,
) -> BackendConfig {
    BackendConfig {
        base_url: url.clone(),
        api_key: key.as_ref().map(|k| k.expose().to_owned()),
        timeout,
        retry,
    }
}

/// The image provider the backend settings name.
pub fn image_provider(settings: &BackendSettings) -> Arc<dyn ImageProvider> {
    let config = |url, key| backend_config(settings, url, key);
    let http = crate::backend::http_client();
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

/// The video provider the settings choose, or why there is none: Veo needs
/// a Gemini API key.
pub fn video_access(settings: &BackendSettings) -> VideoAccess {
    let config = |url, key| backend_config(settings, url, key);
    let http = crate::backend::http_client();
    match settings.video_backend {
        VideoBackendKind::Gemini => match &settings.gemini_api_key {
            Some(_) => VideoAccess::Ready(Arc::new(VeoVideos::new(
                config(&settings.gemini_url, &settings.gemini_api_key),
                http,
            ))),
            None => VideoAccess::Unavailable(
                "video needs a Gemini API key for Veo: set `MCP_GEMINI_API_KEY` (or `GEMINI_API_KEY`) \
in the server's environment (a key from Google AI Studio with Veo access), or set \
`MCP_VIDEO_BACKEND=cliproxy` to use CLIProxyAPI's video models; `--emulator` makes offline \
test videos"
                    .into(),
            ),
        },
        VideoBackendKind::CliProxy => VideoAccess::Ready(Arc::new(CliProxyVideos::new(
            config(&settings.cliproxy_url, &settings.cliproxy_api_key),
            http,
        ))),
    }
}

/// Builds the service over the local library from its settings groups.
/// Fast: opens (does not scan) the library, creating it if needed.
pub fn build_service(settings: &Settings) -> Result<Arc<Service>, AppError> {
    Ok(service_over(
        settings,
        &open_library(&settings.library)?.into(),
    ))
}

/// Builds the service over the library where the settings put it (local
/// or shared).
pub async fn build_service_anywhere(settings: &Settings) -> Result<Arc<Service>, AppError> {
    Ok(service_over(
        settings,
        &open_stores(&settings.library).await?,
    ))
}

/// The service over an opened library.
fn service_over(settings: &Settings, store: &Stores) -> Arc<Service> {
    Arc::new(Service::new(ServiceParts {
        images: image_provider(&settings.backend),
        library: store.library(),
        generation: settings.generation.clone(),
        results: settings.results.clone(),
        cleanup: settings.library.cleanup.clone(),
        edit: settings.edit.clone(),
        videos: video_access(&settings.backend),
        jobs: store.jobs.clone(),
        video: settings.video.clone(),
        spend: settings.spend.clone(),
        usage: store.usage.clone(),
        confirm: settings.confirm.clone(),
    }))
}

/// The model registry over the configured providers (no library).
pub fn model_catalog(settings: &Settings) -> ModelCatalog {
    ModelCatalog {
        images: image_provider(&settings.backend),
        videos: video_access(&settings.backend),
        default_image: settings.generation.default_model,
        default_video: settings.video.default_model,
        prices: crate::service::PriceTable::new(&settings.spend.prices),
    }
}

/// The input policy of stdio sessions: the client runs on this machine as
/// this user, so any readable path (relative ones from the working directory).
pub fn stdio_policy() -> Arc<InputPolicy> {
    Arc::new(InputPolicy::any_path(std::env::current_dir().ok()))
}

/// What stdio sessions reach: any path, and no download links (the client
/// opens `image_path` itself).
pub fn stdio_access() -> Access {
    Access {
        inputs: stdio_policy(),
        file_urls: None,
    }
}

/// The input policy of HTTP sessions: only inside the output directory and
/// `MCP_INPUT_ROOTS`.
pub fn http_policy(settings: &Settings) -> Arc<InputPolicy> {
    let mut roots = vec![settings.library.output_dir.clone()];
    roots.extend(settings.http.input_roots.iter().cloned());
    Arc::new(InputPolicy::within(&roots))
}

/// Makes a session's MCP handler, given what its transport's sessions may reach.
pub type MakeHandler<H> = Arc<dyn Fn(Access) -> H + Send + Sync>;

/// The base of HTTP results' download links: `MCP_PUBLIC_URL`, else the
/// address the server is bound to (a wildcard address is named by this
/// machine's loopback, which at least works from here).
pub fn file_urls(http: &HttpSettings, bound: std::net::SocketAddr) -> FileUrls {
    match &http.public_url {
        Some(url) => FileUrls::new(url.as_str()),
        None => {
            let mut addr = bound;
            if addr.ip().is_unspecified() {
                addr.set_ip(match addr {
                    std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                    std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
                });
            }
            FileUrls::new(&format!("http://{addr}"))
        }
    }
}

/// What `serve` needs: the service, the transport, the HTTP settings and
/// each transport's input policy.
pub struct Server {
    pub service: Arc<Service>,
    pub transport: Transport,
    pub http: HttpSettings,
    stdio_policy: Arc<InputPolicy>,
    http_policy: Arc<InputPolicy>,
    /// Download links for stdio results: only when the files are not on
    /// this machine (object storage) and `MCP_PUBLIC_URL` names the
    /// deployment that serves them.
    stdio_urls: Option<FileUrls>,
}

impl Server {
    pub fn new(service: Arc<Service>, settings: &Settings) -> Self {
        let stdio_urls = match (
            &settings.library.shared.storage_url,
            &settings.http.public_url,
        ) {
            (Some(_), Some(public)) => Some(FileUrls::new(public.as_str())),
            _ => None,
        };
        Self {
            service,
            transport: settings.server.transport,
            http: settings.http.clone(),
            stdio_policy: stdio_policy(),
            http_policy: http_policy(settings),
            stdio_urls,
        }
    }

    /// Serves media-gen's own MCP server.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), AppError> {
        let service = self.service.clone();
        let make: MakeHandler<MediaServer> =
            Arc::new(move |access| MediaServer::new(service.clone(), access));
        self.run_with(make, shutdown).await
    }

    /// Serves handlers made by `make` until the client disconnects (stdio)
    /// or `shutdown` fires; each transport hands its sessions its own input
    /// policy. `http`/`sse` serve HTTP only; `dual` serves stdio and HTTP
    /// from one process sharing one service: stdio EOF ends the process,
    /// giving in-flight HTTP requests the grace period.
    pub async fn run_with<H: ServerHandler>(
        self,
        make: MakeHandler<H>,
        shutdown: CancellationToken,
    ) -> Result<(), AppError> {
        let stdio_handler = || {
            make(Access {
                inputs: self.stdio_policy.clone(),
                file_urls: self.stdio_urls.clone(),
            })
        };
        match self.transport {
            Transport::Stdio => self.stdio(stdio_handler(), shutdown).await,
            Transport::Http | Transport::Sse => {
                let server = self.http_server(make.clone(), &shutdown).await?;
                let maintenance = Maintenance::start(&self.service, &shutdown);
                let served = server.run(shutdown).await;
                maintenance.finish().await;
                Ok(served?)
            }
            Transport::Dual => {
                let server = self.http_server(make.clone(), &shutdown).await?;
                let http_stop = shutdown.child_token();
                let http_task = tokio::spawn(server.run(http_stop.clone()));
                let stdio = self.stdio(stdio_handler(), shutdown).await;
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
        make: MakeHandler<H>,
        shutdown: &CancellationToken,
    ) -> Result<HttpServer, AppError> {
        let listener = http::bind(&self.http).await?;
        let server = self.http_server_on(listener, make, shutdown)?;
        if let Some(addr) = server.local_addr() {
            #[allow(clippy::print_stderr, reason = "the one line a user needs to connect")]
            {
                eprintln!(
                    "media-gen: listening on http://{addr} (Streamable HTTP at /mcp, legacy SSE at /sse, gallery at http://{addr}/gallery)"
                );
            }
        }
        Ok(server)
    }

    /// The HTTP server on a bound `listener`: MCP sessions made by `make`,
    /// and the web routes (`/files`, `/gallery`) over the same service, all
    /// behind the HTTP guard. `shutdown` also ends the gallery's event
    /// streams.
    pub fn http_server_on<H: ServerHandler>(
        &self,
        listener: tokio::net::TcpListener,
        make: MakeHandler<H>,
        shutdown: &CancellationToken,
    ) -> Result<HttpServer, AppError> {
        let bound = listener
            .local_addr()
            .map_err(|e| AppError::Transport(TransportError::Http(e)))?;
        let access = Access {
            inputs: self.http_policy.clone(),
            file_urls: Some(file_urls(&self.http, bound)),
        };
        let web = crate::web::routes(self.service.clone(), access.clone(), shutdown.clone());
        let handlers: Handlers<H> = Arc::new(move || make(access.clone()));
        let probes = crate::web::probes(self.service.clone());
        Ok(HttpServer::new(listener, handlers, &self.http, web, probes))
    }

    async fn stdio<H: ServerHandler>(
        &self,
        handler: H,
        shutdown: CancellationToken,
    ) -> Result<(), AppError> {
        // Reconcile and clean-up start after the first answer: on a large
        // library they would otherwise compete with the handshake for the CPU.
        let started = std::sync::Mutex::new(None);
        let served = transport::serve_stdio(handler, shutdown.clone(), || {
            if let Ok(mut slot) = started.lock() {
                *slot = Some(Maintenance::start(&self.service, &shutdown));
            }
        })
        .await;
        let maintenance = started.lock().ok().and_then(|mut s| s.take());
        if let Some(m) = maintenance {
            m.finish().await;
        }
        Ok(served?)
    }
}

/// The background work of a server — the library's maintenance (reconcile,
/// clean-up) and the video job runner — stopped and waited for when serving
/// ends, so no step is cut off half-way. The runner starts once the
/// start-up reconcile is done: a video the last process saved without its
/// catalog row (killed in between) is catalogued from its sidecar first,
/// so its job finds it instead of downloading and saving it again.
struct Maintenance {
    stop: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Maintenance {
    fn start(service: &Arc<Service>, shutdown: &CancellationToken) -> Self {
        // The providers' client, ready before the first generation.
        crate::backend::warm_http_client();
        let stop = shutdown.child_token();
        let (reconciled, resume) = tokio::sync::oneshot::channel();
        let library = {
            let service = service.clone();
            let until = stop.clone();
            tokio::spawn(async move { service.maintain(until, reconciled).await })
        };
        let jobs = {
            let service = service.clone();
            let until = stop.clone();
            tokio::spawn(async move {
                // Also when maintenance ended early (the sender dropped).
                let _ = resume.await;
                service.run_jobs(until).await;
            })
        };
        Self {
            stop,
            tasks: vec![library, jobs],
        }
    }

    /// Stops it at its next step and waits (a bounded time) for that step.
    async fn finish(self) {
        self.stop.cancel();
        let all = futures::future::join_all(self.tasks);
        if tokio::time::timeout(MAINTENANCE_GRACE, all).await.is_err() {
            tracing::warn!("maintenance still busy at exit; the next start finishes its work");
        }
    }
}

/// How long exit waits for a maintenance step in progress.
const MAINTENANCE_GRACE: Duration = Duration::from_secs(10);
