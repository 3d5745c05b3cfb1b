//! `media-gen` command line: parse flags, set up logging, load settings, run.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use media_gen::app::{self, AppError, GenerateCommand};
use media_gen::config::{ConfigError, Origin, RawConfig, Settings, Sourced};
use media_gen::emulator::{self, EmulatorOptions};
use tokio_util::sync::CancellationToken;

/// MCP server for Gemini image generation (via CLIProxyAPI or the Gemini API),
/// with an offline emulator for trying it without credentials.
#[derive(Debug, Parser)]
#[command(name = "media-gen", version, propagate_version = true)]
struct Cli {
    /// TOML config file (default: $XDG_CONFIG_HOME/media-gen/config.toml if present).
    #[arg(long, global = true, env = "MCP_CONFIG", value_name = "PATH")]
    config: Option<PathBuf>,
    /// Where images, sidecars and the catalog live [env: MCP_OUTPUT_DIR].
    #[arg(long, global = true, value_name = "DIR")]
    output_dir: Option<PathBuf>,
    /// CLIProxyAPI base URL [env: MCP_CLIPROXY_URL] [default: http://127.0.0.1:8317].
    #[arg(long, global = true, value_name = "URL")]
    cliproxy_url: Option<String>,
    /// Image wire format: `cliproxy` (OpenAI chat completions) or `gemini`
    /// (native generateContent at MCP_GEMINI_URL) [env: MCP_IMAGE_BACKEND].
    #[arg(long, global = true, value_name = "KIND")]
    image_backend: Option<String>,
    /// Seconds per backend request, retries included [env: MCP_REQUEST_TIMEOUT] [default: 120].
    #[arg(long, global = true, value_name = "SECS")]
    request_timeout: Option<String>,
    /// Inline image in results: `preview` (default), `full` or `none` [env: MCP_PREVIEW].
    #[arg(long, global = true, value_name = "MODE")]
    preview: Option<String>,
    /// Use the built-in offline emulator instead of CLIProxyAPI (synthetic test
    /// images; for trying media-gen without credentials).
    #[arg(long, global = true)]
    emulator: bool,
    /// Log filter for stderr, e.g. `debug` or `media_gen=trace` [env: MEDIA_GEN_LOG].
    #[arg(long, global = true, value_name = "FILTER")]
    log: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the MCP server (default command).
    Serve(ServeArgs),
    /// Generate images from the shell; several prompts run as a batch.
    Generate(GenerateArgs),
    /// Run the offline backend emulator (a test and demo tool, not Gemini).
    Emulator(EmulatorArgs),
    /// List the models, their options, and whether the backend offers them.
    Models {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// List the files in the media library (newest first).
    List(ListArgs),
    /// Show everything known about one file.
    Info {
        /// File name (as `list` shows it).
        file: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Delete a file, its sidecar and its catalog entry.
    Rm {
        /// File name (as `list` shows it).
        file: String,
        /// Do not ask for confirmation.
        #[arg(long, short)]
        yes: bool,
    },
}

#[derive(Debug, Args)]
struct ListArgs {
    /// `image`, `video` or `all`.
    #[arg(long = "type", default_value = "all", value_parser = ["image", "video", "all"])]
    kind: String,
    /// `date` (newest first), `size` (largest first) or `name` (A–Z).
    #[arg(long, default_value = "date", value_parser = ["date", "size", "name"])]
    sort: String,
    /// `asc` or `desc` (default depends on --sort).
    #[arg(long, value_parser = ["asc", "desc"])]
    order: Option<String>,
    /// How many files (1–1000).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1000))]
    limit: u32,
    /// Skip this many.
    #[arg(long, default_value_t = 0)]
    offset: u64,
    /// Only files whose prompt contains this text.
    #[arg(long, short)]
    query: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args, Default)]
struct ServeArgs {
    /// `stdio` (default), `http`, `sse` or `dual` [env: MCP_TRANSPORT].
    #[arg(long, value_name = "TRANSPORT")]
    transport: Option<String>,
    /// HTTP bind address [env: MCP_SSE_HOST] [default: 127.0.0.1].
    #[arg(long, value_name = "HOST")]
    host: Option<String>,
    /// HTTP port [env: MCP_SSE_PORT] [default: 8318].
    #[arg(long, value_name = "PORT")]
    port: Option<String>,
    /// Also serve the official MCP conformance suite's fixture tools
    /// (`test_*` and its task tools), resources (`test://…`), prompts and the
    /// tasks extension, for running `@modelcontextprotocol/conformance`
    /// against media-gen. A test aid.
    #[arg(long)]
    conformance_fixture: bool,
}

#[derive(Debug, Args)]
struct GenerateArgs {
    /// One or more prompts.
    #[arg(required = true, value_name = "PROMPT")]
    prompts: Vec<String>,
    /// Image model [default: gemini-3-pro-image-preview].
    #[arg(long, short)]
    model: Option<String>,
    /// Aspect ratio, e.g. 16:9 [default: 1:1].
    #[arg(long, short)]
    aspect_ratio: Option<String>,
    /// 512, 1K, 2K or 4K [default: 1K].
    #[arg(long, short)]
    image_size: Option<String>,
    /// Print the JSON result instead of one line per file.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct EmulatorArgs {
    /// Port to listen on (0 = any free port; the chosen URL is printed).
    #[arg(long, default_value_t = 8317)]
    port: u16,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Require this bearer key (default: accept any).
    #[arg(long)]
    api_key: Option<String>,
    /// Added delay per generation request, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
}

fn flag(value: Option<String>, name: &'static str) -> Option<Sourced<String>> {
    value.map(|value| Sourced {
        value,
        origin: Origin::Flag(name),
    })
}

fn load_settings(cli: &Cli, serve: Option<&ServeArgs>) -> Result<Settings, ConfigError> {
    let get = |k: &str| std::env::var(k).ok();
    let file = match &cli.config {
        Some(path) => RawConfig::from_file(path)?,
        None => match media_gen::config::default_config_file(&get) {
            Some(path) => RawConfig::from_file(&path)?,
            None => RawConfig::default(),
        },
    };
    let flags = RawConfig {
        output_dir: cli.output_dir.clone().map(|value| Sourced {
            value,
            origin: Origin::Flag("--output-dir"),
        }),
        cliproxy_url: flag(cli.cliproxy_url.clone(), "--cliproxy-url"),
        image_backend: flag(cli.image_backend.clone(), "--image-backend"),
        request_timeout: flag(cli.request_timeout.clone(), "--request-timeout"),
        preview: flag(cli.preview.clone(), "--preview"),
        transport: flag(serve.and_then(|s| s.transport.clone()), "--transport"),
        http_host: flag(serve.and_then(|s| s.host.clone()), "--host"),
        http_port: flag(serve.and_then(|s| s.port.clone()), "--port"),
        ..RawConfig::default()
    };
    Settings::from_raw(file.merge(RawConfig::from_env(get)).merge(flags), &get)
}

fn init_logging(filter: Option<&str>) {
    let filter = filter
        .map(str::to_owned)
        .or_else(|| std::env::var("MEDIA_GEN_LOG").ok())
        .unwrap_or_else(|| "info".to_owned());
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log.as_deref());
    let default_serve = ServeArgs::default();
    let command = cli.command.as_ref();
    if let Some(Command::Emulator(args)) = command {
        return run_emulator(args).await;
    }
    let serve_args = match command {
        Some(Command::Serve(s)) => Some(s),
        None => Some(&default_serve),
        _ => None,
    };
    let mut settings = match load_settings(&cli, serve_args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("media-gen: {e}");
            return ExitCode::from(2);
        }
    };
    settings.conformance_fixture = serve_args.is_some_and(|s| s.conformance_fixture);
    let _emulator = if cli.emulator {
        match app::attach_emulator(&mut settings).await {
            Ok(h) => Some(h),
            Err(e) => return fail(&e),
        }
    } else {
        None
    };
    let service = match app::build_service(settings) {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    let result = match command {
        Some(Command::Generate(g)) => {
            app::generate(
                service,
                GenerateCommand {
                    prompts: g.prompts.clone(),
                    model: g.model.clone(),
                    aspect_ratio: g.aspect_ratio.clone(),
                    image_size: g.image_size.clone(),
                    json: g.json,
                },
            )
            .await
        }
        Some(Command::Models { json }) => app::models(service, *json).await,
        Some(Command::List(l)) => {
            use media_gen::store::{MediaKind, SortBy};
            let cmd = app::ListCommand {
                kind: MediaKind::parse(&l.kind),
                sort: match l.sort.as_str() {
                    "size" => SortBy::Size,
                    "name" => SortBy::Name,
                    _ => SortBy::Date,
                },
                ascending: l.order.as_deref().map(|o| o == "asc"),
                limit: l.limit,
                offset: l.offset,
                query: l.query.clone(),
                json: l.json,
            };
            app::list(service, cmd).await
        }
        Some(Command::Info { file, json }) => app::info(service, file, *json).await,
        Some(Command::Rm { file, yes }) => app::rm(service, file, *yes).await,
        Some(Command::Serve(_)) | Some(Command::Emulator(_)) | None => {
            let shutdown = CancellationToken::new();
            spawn_signal_handler(shutdown.clone());
            app::serve(service, shutdown).await
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

fn fail(e: &AppError) -> ExitCode {
    eprintln!("media-gen: {e}");
    ExitCode::FAILURE
}

fn spawn_signal_handler(shutdown: CancellationToken) {
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let Ok(mut term) = signal(SignalKind::terminate()) else {
                return;
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        shutdown.cancel();
    });
}

async fn run_emulator(args: &EmulatorArgs) -> ExitCode {
    let listener = match tokio::net::TcpListener::bind((args.host.as_str(), args.port)).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "media-gen: cannot listen on `{}:{}`: {e}; choose another `--port`",
                args.host, args.port
            );
            return ExitCode::from(2);
        }
    };
    let opts = EmulatorOptions {
        api_key: args.api_key.clone(),
        latency: Duration::from_millis(args.latency_ms),
    };
    let handle = match emulator::start(listener, opts).await {
        Ok(h) => h,
        Err(e) => {
            eprintln!("media-gen: cannot start the emulator: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The URL goes to stdout so scripts can read it (useful with --port 0).
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", handle.base_url());
        let _ = out.flush();
    }
    tracing::warn!(
        "media-gen EMULATOR listening on {} — a test and demo tool serving synthetic images",
        handle.base_url()
    );
    let shutdown = CancellationToken::new();
    spawn_signal_handler(shutdown.clone());
    shutdown.cancelled().await;
    handle.shutdown().await;
    ExitCode::SUCCESS
}
