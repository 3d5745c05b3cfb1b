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
    #[error("cannot listen on {addr}: {source}; choose another port with --port or MCP_SSE_PORT")]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("HTTP server error: {0}")]
    Http(#[source] std::io::Error),
    #[error("MCP server error: {0}")]
    Serve(String),
    #[error("cannot write to stdout: {0}")]
    Stdout(#[source] std::io::Error),
    #[error("{0}")]
    Library(String),
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

/// Reconciles the catalog with the directory, off the request path, then
/// runs the automatic clean-up (if configured) now and every hour.
pub fn spawn_maintenance(service: &Arc<Service>, shutdown: CancellationToken) {
    let store = service.store().clone();
    let max_age = service.settings().cleanup_max_age;
    let max_bytes = service.settings().cleanup_max_total_bytes;
    tokio::spawn(async move {
        let s = store.clone();
        match tokio::task::spawn_blocking(move || s.reconcile(STALE_TEMP_AGE)).await {
            Ok(Ok(report)) => tracing::info!(?report, "catalog reconciled"),
            Ok(Err(e)) => tracing::error!(error = %e, "catalog reconcile failed"),
            Err(e) => tracing::error!(error = %e, "catalog reconcile task failed"),
        }
        if max_age.is_none() && max_bytes.is_none() {
            return;
        }
        let mut hourly = tokio::time::interval(CLEANUP_EVERY);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = hourly.tick() => {}
            }
            let s = store.clone();
            let run = tokio::task::spawn_blocking(move || {
                s.cleanup(max_age, max_bytes, chrono::Utc::now())
            });
            match run.await {
                Ok(Ok(gone)) if gone.is_empty() => tracing::debug!("clean-up: nothing to delete"),
                Ok(Ok(gone)) => {
                    tracing::info!(count = gone.len(), files = ?gone, "clean-up deleted old files")
                }
                Ok(Err(e)) => tracing::error!(error = %e, "clean-up failed"),
                Err(e) => tracing::error!(error = %e, "clean-up task failed"),
            }
        }
    });
}

/// How often the automatic clean-up runs (it also runs at start).
const CLEANUP_EVERY: Duration = Duration::from_secs(3600);

/// Runs the MCP server until the client disconnects or `shutdown` fires.
/// `http`/`sse` serve HTTP only; `dual` serves stdio and HTTP from one
/// process sharing one service (catalog, backend, settings): stdio EOF ends
/// the process, giving in-flight HTTP requests the grace period.
pub async fn serve(service: Arc<Service>, shutdown: CancellationToken) -> Result<(), AppError> {
    match service.settings().transport {
        Transport::Stdio => serve_stdio(service, shutdown).await,
        Transport::Http | Transport::Sse => {
            let http = crate::transport::http::HttpServer::bind(service.clone()).await?;
            announce(&http);
            spawn_maintenance(&service, shutdown.clone());
            http.run(shutdown).await
        }
        Transport::Dual => {
            let http = crate::transport::http::HttpServer::bind(service.clone()).await?;
            announce(&http);
            let http_stop = shutdown.child_token();
            let http_task = tokio::spawn(http.run(http_stop.clone()));
            let stdio = serve_stdio(service, shutdown).await;
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

async fn serve_stdio(service: Arc<Service>, shutdown: CancellationToken) -> Result<(), AppError> {
    let server = MediaServer::new(service.clone());
    // Reconcile and clean-up start after the first answer: on a large
    // library they would otherwise compete with the handshake for the CPU.
    let maintenance = shutdown.clone();
    crate::transport::serve_stdio(server, shutdown, || {
        spawn_maintenance(&service, maintenance);
    })
    .await
}

/// Says where the HTTP server listens (stderr; stdout may be JSON-RPC).
fn announce(http: &crate::transport::http::HttpServer) {
    if let Some(addr) = http.local_addr() {
        tracing::info!(%addr, "HTTP server listening");
        #[allow(clippy::print_stderr, reason = "the one line a user needs to connect")]
        {
            eprintln!(
                "media-gen: listening on http://{addr} (Streamable HTTP at /mcp, legacy SSE at /sse)"
            );
        }
    }
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

/// Renders rows as an aligned text table for people.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let line = |cells: &mut dyn Iterator<Item = &str>, out: &mut String| {
        let parts: Vec<String> = cells
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(parts.join("  ").trim_end());
        out.push('\n');
    };
    line(&mut header.iter().copied(), &mut out);
    for row in rows {
        line(&mut row.iter().map(String::as_str), &mut out);
    }
    out
}

fn print(text: &str) -> Result<(), AppError> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes()).map_err(AppError::Stdout)
}

fn print_json(value: &serde_json::Value) -> Result<(), AppError> {
    print(&format!("{value:#}\n"))
}

/// A library command failed with a contract error.
fn library_error(e: &ServiceError) -> AppError {
    AppError::Library(format!("{}: {}", e.code().as_str(), e.message()))
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        format!("{}…", s.chars().take(max - 1).collect::<String>())
    }
}

/// `media-gen models`.
pub async fn models(service: Arc<Service>, json: bool) -> Result<(), AppError> {
    let report = service.list_models(None).await;
    if json {
        let models: Vec<serde_json::Value> = report
            .models
            .iter()
            .map(|m| {
                serde_json::json!({"id": m.id, "type": m.kind.as_str(), "aspect_ratios": m.aspect_ratios,
                    "image_sizes": m.image_sizes, "durations": m.durations, "resolutions": m.resolutions,
                    "default": m.default, "available": m.available})
            })
            .collect();
        return print_json(
            &serde_json::json!({"success": true, "models": models, "note": report.note}),
        );
    }
    let rows: Vec<Vec<String>> = report
        .models
        .iter()
        .map(|m| {
            let options = if m.kind == crate::store::MediaKind::Image {
                m.image_sizes.join(",")
            } else {
                let d: Vec<String> = m.durations.iter().map(|d| format!("{d}s")).collect();
                format!("{} {}", d.join(","), m.resolutions.join(","))
            };
            vec![
                format!("{}{}", m.id, if m.default { " *" } else { "" }),
                m.kind.as_str().to_owned(),
                match m.available {
                    Some(true) => "yes".into(),
                    Some(false) => "no".into(),
                    None => "?".into(),
                },
                options,
                m.aspect_ratios.join(" "),
            ]
        })
        .collect();
    let mut text = table(
        &[
            "MODEL (* default)",
            "TYPE",
            "AVAILABLE",
            "SIZES / DURATIONS",
            "ASPECT RATIOS",
        ],
        &rows,
    );
    if let Some(note) = report.note {
        text.push_str(&format!("\n{note}\n"));
    }
    print(&text)
}

/// Options of `media-gen list`.
#[derive(Debug, Clone, Default)]
pub struct ListCommand {
    pub kind: Option<crate::store::MediaKind>,
    pub sort: crate::store::SortBy,
    pub ascending: Option<bool>,
    pub limit: u32,
    pub offset: u64,
    pub query: Option<String>,
    pub json: bool,
}

/// `media-gen list`.
pub async fn list(service: Arc<Service>, cmd: ListCommand) -> Result<(), AppError> {
    let q = crate::store::ListQuery {
        kind: cmd.kind,
        sort: cmd.sort,
        descending: cmd
            .ascending
            .map_or(cmd.sort != crate::store::SortBy::Name, |a| !a),
        limit: cmd.limit,
        offset: cmd.offset,
        text: cmd.query,
    };
    let (records, total) = service.list_files(q).await.map_err(|e| library_error(&e))?;
    if cmd.json {
        let files: Vec<serde_json::Value> = records
            .iter()
            .map(|r| {
                serde_json::json!({"filename": r.id.as_str(), "path": service.store().path_of(&r.id),
                    "type": r.kind.as_str(), "size_bytes": r.size_bytes,
                    "created": r.created.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                    "prompt": r.prompt, "model": r.model, "mime_type": r.mime_type,
                    "width": r.width, "height": r.height})
            })
            .collect();
        return print_json(&serde_json::json!({"success": true, "files": files, "total": total}));
    }
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|r| {
            vec![
                r.id.to_string(),
                r.created.format("%Y-%m-%d %H:%M").to_string(),
                format!("{:.1} MB", r.size_bytes as f64 / 1e6),
                match (r.width, r.height) {
                    (Some(w), Some(h)) => format!("{w}x{h}"),
                    _ => "-".into(),
                },
                shorten(r.prompt.as_deref().unwrap_or("-"), 48),
            ]
        })
        .collect();
    let mut text = table(&["FILE", "CREATED", "SIZE", "PIXELS", "PROMPT"], &rows);
    text.push_str(&format!("{} of {total} shown\n", records.len()));
    print(&text)
}

/// `media-gen info FILE`.
pub async fn info(service: Arc<Service>, file: &str, json: bool) -> Result<(), AppError> {
    let info = service
        .file_info(file)
        .await
        .map_err(|e| library_error(&e))?;
    let r = &info.record;
    let value = serde_json::json!({
        "success": true, "filename": r.id.as_str(), "path": info.path, "type": r.kind.as_str(),
        "size_bytes": info.size_on_disk,
        "mime_type": info.header.map_or(r.mime_type.as_str(), |h| h.mime_type),
        "width": info.header.map(|h| h.width).or(r.width),
        "height": info.header.map(|h| h.height).or(r.height),
        "created": r.created.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "uri": crate::tools::media_uri(r.id.as_str()),
        "metadata": r.metadata,
        "lineage": {"source": r.source.as_ref().map(|s| s.as_str()),
            "derived": info.derived.iter().map(|d| d.as_str()).collect::<Vec<_>>()},
    });
    if json {
        return print_json(&value);
    }
    let mut text = String::new();
    for key in [
        "filename",
        "path",
        "type",
        "mime_type",
        "width",
        "height",
        "size_bytes",
        "created",
        "uri",
    ] {
        let v = &value[key];
        let shown = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
        text.push_str(&format!("{key:<13} {shown}\n"));
    }
    for key in ["prompt", "model", "aspect_ratio", "image_size"] {
        if let Some(v) = r.metadata.get(key).filter(|v| !v.is_null()) {
            let shown = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
            text.push_str(&format!("{key:<13} {shown}\n"));
        }
    }
    print(&text)
}

/// `media-gen rm FILE`: asks on a terminal unless `--yes`.
pub async fn rm(service: Arc<Service>, file: &str, yes: bool) -> Result<(), AppError> {
    use std::io::IsTerminal;
    let mut confirm = yes;
    if !confirm {
        if !std::io::stdin().is_terminal() {
            return Err(AppError::Library(format!(
                "CONFIRMATION_REQUIRED: not deleting `{file}` without `--yes` (stdin is not a terminal)"
            )));
        }
        // Show what would go, then ask.
        service
            .file_info(file)
            .await
            .map_err(|e| library_error(&e))?;
        eprint!("delete `{file}`, its sidecar and its catalog entry? [y/N] ");
        let mut answer = String::new();
        std::io::stdin()
            .read_line(&mut answer)
            .map_err(AppError::Stdout)?;
        confirm = matches!(answer.trim(), "y" | "Y" | "yes");
        if !confirm {
            return Err(AppError::Library("nothing deleted".into()));
        }
    }
    let id = service
        .delete_file(file, confirm)
        .await
        .map_err(|e| library_error(&e))?;
    print(&format!("deleted {id}\n"))
}
