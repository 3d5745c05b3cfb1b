//! `media-gen` command line: parse flags, set up logging, load settings, run.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use media_gen::app::cli::Edit;
use media_gen::app::{self, AppError, Command as AppCommand};
use media_gen::config::{Settings, Sources, default_config_file};
use media_gen::emulator::EmulatorOptions;
use media_gen::service::{
    BatchInput, EditInput, ListInput, OutpaintInput, UpscaleInput, VideoInput, VideoOperation,
};
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
    output_dir: Option<String>,
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
    /// images labelled "media-gen emulator"; for trying media-gen without credentials).
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
    /// Edit an image as a prompt says (optionally only inside a mask).
    Edit(EditArgs),
    /// Repaint the masked area of an image.
    Inpaint(InpaintArgs),
    /// Extend an image beyond its borders.
    Outpaint(OutpaintArgs),
    /// Make an image 2 or 4 times larger.
    Upscale(UpscaleArgs),
    /// Start a video job (Veo); `--wait` shows progress until the file is saved.
    Video(VideoArgs),
    /// List recent video jobs and their states (and finish the ones that are ready).
    Jobs {
        /// How many jobs (1–1000).
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1000))]
        limit: u32,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
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
    /// Check the setup: configuration, output directory, backends and keys,
    /// models, video, HTTP port.
    ///
    /// One line per check: `✓` works, `✗` does not (the fix on the next
    /// line), `!` works but deserves a look, `–` not configured. Exit status
    /// 1 if any check failed. `--transport`, `--host` and `--port` check what
    /// `serve` would do with them; with `--emulator` the backends are the
    /// built-in emulator (works offline).
    Doctor(ServeArgs),
    /// Show the effective settings and where each came from (secrets redacted).
    ///
    /// Every setting's value and origin (default, config file, environment
    /// variable or flag), the config file read, and values accepted with a
    /// correction. Takes `serve`'s `--transport`, `--host` and `--port` to
    /// show what `serve` would use with them.
    Config {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        serve: ServeArgs,
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
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(i64).range(1..=1000))]
    limit: i64,
    /// Skip this many.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(i64).range(0..))]
    offset: i64,
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
    /// A reference image (file name, media:// URI or path); repeat for several.
    #[arg(long = "reference", short = 'r', value_name = "IMAGE")]
    reference_images: Vec<String>,
    /// Print the JSON result instead of one line per file.
    #[arg(long)]
    json: bool,
}

/// What every edit command takes besides its own arguments.
#[derive(Debug, Args)]
struct EditCommon {
    /// Image model [default: gemini-3-pro-image-preview].
    #[arg(long, short)]
    model: Option<String>,
    /// `png` (default), `jpeg` or `webp`.
    #[arg(long, value_name = "FORMAT")]
    output_format: Option<String>,
    /// Print the JSON result instead of one line.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct EditArgs {
    /// The image (library file name, media:// URI or path).
    image: String,
    /// What to change.
    prompt: String,
    /// Mask: white where the image may change, black where it must stay.
    #[arg(long, value_name = "IMAGE")]
    mask: Option<String>,
    /// A reference image; repeat for several.
    #[arg(long = "reference", short = 'r', value_name = "IMAGE")]
    reference_images: Vec<String>,
    /// Pixels of soft edge inside the mask (0 = hard) [default: 4].
    #[arg(long)]
    feather: Option<i64>,
    #[command(flatten)]
    common: EditCommon,
}

#[derive(Debug, Args)]
struct InpaintArgs {
    /// The image (library file name, media:// URI or path).
    image: String,
    /// Mask: white where to repaint, black where to keep.
    mask: String,
    /// What to put in the masked area.
    prompt: String,
    /// Pixels of soft edge inside the mask (0 = hard) [default: 4].
    #[arg(long)]
    feather: Option<i64>,
    #[command(flatten)]
    common: EditCommon,
}

#[derive(Debug, Args)]
struct OutpaintArgs {
    /// The image (library file name, media:// URI or path).
    image: String,
    /// `left`, `right`, `up`, `down` or `all`.
    direction: String,
    /// What the new area should show.
    prompt: String,
    /// Pixels added on each extended side [default: 256].
    #[arg(long)]
    extend_pixels: Option<i64>,
    /// Pixels over which the new area blends into the original's edge [default: 4].
    #[arg(long)]
    feather: Option<i64>,
    #[command(flatten)]
    common: EditCommon,
}

#[derive(Debug, Args)]
struct UpscaleArgs {
    /// The image (library file name, media:// URI or path).
    image: String,
    /// 2 or 4 [default: 2].
    #[arg(long, short)]
    scale_factor: Option<f64>,
    /// `lanczos` (local, default) or `model` (re-rendered by the image model).
    #[arg(long)]
    method: Option<String>,
    /// With `--method model`: what the re-render should pay attention to.
    #[arg(long)]
    prompt: Option<String>,
    #[command(flatten)]
    common: EditCommon,
}

#[derive(Debug, Args)]
struct VideoArgs {
    /// What happens in the video (optional with --image).
    #[arg(value_name = "PROMPT")]
    prompt: Option<String>,
    /// Animate this image (library file name, media:// URI or path): it becomes the first frame.
    #[arg(long, value_name = "IMAGE")]
    image: Option<String>,
    /// End on this image (Veo 3.1).
    #[arg(long, value_name = "IMAGE")]
    last_frame: Option<String>,
    /// Continue this library video (made by Veo 3.1 here, within about 2 days) by ~7 s.
    #[arg(long, value_name = "VIDEO", conflicts_with_all = ["image", "last_frame", "reference_images"])]
    extend: Option<String>,
    /// Length, e.g. 8s; the nearest the model makes is used [default: 5s → 6 s on Veo 3.x].
    #[arg(long, short)]
    duration: Option<String>,
    /// 16:9 or 9:16 [default: 16:9, or the image's orientation].
    #[arg(long, short)]
    aspect_ratio: Option<String>,
    /// Video model [default: veo-3.1-generate-preview].
    #[arg(long, short)]
    model: Option<String>,
    /// 720p, 1080p or 4k [default: 720p].
    #[arg(long)]
    resolution: Option<String>,
    /// What the video should not show.
    #[arg(long)]
    negative_prompt: Option<String>,
    /// A reference image (Veo 3.1, up to 3); repeat for several.
    #[arg(long = "reference", short = 'r', value_name = "IMAGE")]
    reference_images: Vec<String>,
    /// Wait for the video, showing progress, and print where it was saved.
    #[arg(long, short)]
    wait: bool,
    /// Print JSON (the tool's result) instead of lines.
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

impl Cli {
    /// The flags that override settings: key, flag, value.
    fn setting_flags(&self) -> Vec<(&'static str, &'static str, String)> {
        // `doctor` and `config` take `serve`'s flags to check or show what
        // `serve` would use with them.
        let serve = match &self.command {
            Some(Command::Serve(s) | Command::Doctor(s) | Command::Config { serve: s, .. }) => {
                Some(s)
            }
            _ => None,
        };
        [
            ("output_dir", "--output-dir", self.output_dir.clone()),
            ("cliproxy_url", "--cliproxy-url", self.cliproxy_url.clone()),
            (
                "image_backend",
                "--image-backend",
                self.image_backend.clone(),
            ),
            (
                "request_timeout",
                "--request-timeout",
                self.request_timeout.clone(),
            ),
            ("preview", "--preview", self.preview.clone()),
            (
                "transport",
                "--transport",
                serve.and_then(|s| s.transport.clone()),
            ),
            ("http_host", "--host", serve.and_then(|s| s.host.clone())),
            ("http_port", "--port", serve.and_then(|s| s.port.clone())),
        ]
        .into_iter()
        .filter_map(|(key, flag, value)| value.map(|v| (key, flag, v)))
        .collect()
    }

    /// What to run, once settings are loaded.
    fn app_command(self) -> AppCommand {
        match self.command {
            // `emulator`, `doctor` and `config` are answered before this.
            None
            | Some(
                Command::Serve(_)
                | Command::Emulator(_)
                | Command::Doctor(_)
                | Command::Config { .. },
            ) => AppCommand::Serve,
            Some(Command::Generate(g)) => AppCommand::Generate {
                input: BatchInput {
                    prompts: g.prompts,
                    model: g.model,
                    aspect_ratio: g.aspect_ratio,
                    image_size: g.image_size,
                    reference_images: g.reference_images,
                },
                json: g.json,
            },
            Some(Command::Edit(e)) => AppCommand::Edit {
                json: e.common.json,
                edit: Edit::Edit(EditInput {
                    image: e.image,
                    prompt: e.prompt,
                    mask: e.mask,
                    reference_images: e.reference_images,
                    model: e.common.model,
                    output_format: e.common.output_format,
                    feather: e.feather,
                }),
            },
            Some(Command::Inpaint(e)) => AppCommand::Edit {
                json: e.common.json,
                edit: Edit::Inpaint(EditInput {
                    image: e.image,
                    prompt: e.prompt,
                    mask: Some(e.mask),
                    reference_images: Vec::new(),
                    model: e.common.model,
                    output_format: e.common.output_format,
                    feather: e.feather,
                }),
            },
            Some(Command::Outpaint(e)) => AppCommand::Edit {
                json: e.common.json,
                edit: Edit::Outpaint(OutpaintInput {
                    image: e.image,
                    prompt: e.prompt,
                    direction: e.direction,
                    extend_pixels: e.extend_pixels,
                    model: e.common.model,
                    output_format: e.common.output_format,
                    feather: e.feather,
                }),
            },
            Some(Command::Upscale(e)) => AppCommand::Edit {
                json: e.common.json,
                edit: Edit::Upscale(UpscaleInput {
                    image: e.image,
                    scale_factor: e.scale_factor,
                    method: e.method,
                    prompt: e.prompt,
                    model: e.common.model,
                    output_format: e.common.output_format,
                }),
            },
            Some(Command::Models { json }) => AppCommand::Models { json },
            Some(Command::List(l)) => AppCommand::List {
                input: ListInput {
                    kind: Some(l.kind),
                    limit: Some(l.limit),
                    offset: Some(l.offset),
                    sort_by: Some(l.sort),
                    order: l.order,
                    query: l.query,
                },
                json: l.json,
            },
            Some(Command::Info { file, json }) => AppCommand::Info { file, json },
            Some(Command::Video(v)) => AppCommand::Video {
                operation: match (&v.extend, &v.image) {
                    (Some(_), _) => VideoOperation::Extend,
                    (None, Some(_)) => VideoOperation::Animate,
                    (None, None) => VideoOperation::Generate,
                },
                input: VideoInput {
                    prompt: v.prompt,
                    duration: v.duration,
                    aspect_ratio: v.aspect_ratio,
                    model: v.model,
                    resolution: v.resolution,
                    negative_prompt: v.negative_prompt,
                    reference_images: v.reference_images,
                    image: v.image,
                    last_frame: v.last_frame,
                    video: v.extend,
                },
                wait: v.wait,
                json: v.json,
            },
            Some(Command::Jobs { limit, json }) => AppCommand::Jobs { limit, json },
            Some(Command::Rm { file, yes }) => AppCommand::Rm { file, yes },
        }
    }
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
    let shutdown = CancellationToken::new();
    // Long-running commands stop cleanly on SIGINT/SIGTERM; the short ones
    // (and `rm`'s question) keep the default: the signal ends the process.
    if matches!(
        cli.command,
        None | Some(
            Command::Serve(_)
                | Command::Emulator(_)
                | Command::Generate(_)
                | Command::Edit(_)
                | Command::Inpaint(_)
                | Command::Outpaint(_)
                | Command::Upscale(_)
                | Command::Video(_)
        )
    ) {
        spawn_signal_handler(shutdown.clone());
    }
    if let Some(Command::Emulator(args)) = &cli.command {
        return run_emulator(args, shutdown).await;
    }
    let env = |k: &str| std::env::var(k).ok();
    let sources = Sources {
        file: cli.config.clone().or_else(|| default_config_file(&env)),
        env: &env,
        flags: cli.setting_flags(),
    };
    let result = match Settings::load(&sources) {
        Ok(settings) => match cli.command {
            Some(Command::Doctor(_)) => app::doctor::run(settings, cli.emulator).await,
            Some(Command::Config { json, .. }) => app::cli::config(&settings, json),
            _ => {
                let emulator = cli.emulator;
                app::run(settings, cli.app_command(), emulator, shutdown).await
            }
        },
        Err(e) => Err(e.into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

fn fail(e: &AppError) -> ExitCode {
    eprintln!("media-gen: {e}");
    ExitCode::from(e.exit_code())
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

async fn run_emulator(args: &EmulatorArgs, shutdown: CancellationToken) -> ExitCode {
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
    match app::run_emulator(listener, opts, shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}
