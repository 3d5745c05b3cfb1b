//! `media-gen` command line: parse flags, set up logging, load settings, run.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, CommandFactory, Parser, Subcommand};
use media_gen::app::cli::Edit;
use media_gen::app::{self, AppError, Command as AppCommand};
use media_gen::config::{Settings, Sources, default_config_file};
use media_gen::emulator::EmulatorOptions;
use media_gen::service::{
    BatchInput, EditInput, ListInput, OutpaintInput, UpscaleInput, VideoInput, VideoOperation,
};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// mimalloc instead of glibc's malloc: after a burst (200 concurrent
/// generations: response bodies, decoded images, previews, on many worker
/// and blocking threads) glibc keeps the freed memory in its per-thread
/// arenas and the process stays hundreds of MiB above idle; mimalloc
/// returns freed pages to the system within moments. Measured with
/// `cargo bench --bench bench -- memory` (bench/README.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay`: its place in `mi_option_e`
/// (`include/mimalloc.h` of the mimalloc v3 that libmimalloc-sys 0.1.49
/// builds; the bindings do not name it). A unit test checks it is the
/// option whose default is v3's 1,000 ms purge delay.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Freed pages go back to the system at once. mimalloc's default purges
/// them 1 s later, and only when the thread that freed them allocates
/// again: after a burst, threads that then sit idle kept about 240 MiB
/// resident until the next request; purging at once, 5 s after the same
/// burst the server is back within 2 × idle + 50 MiB (docs/reliability.md).
/// `MIMALLOC_PURGE_DELAY` in the environment still wins.
#[allow(unsafe_code, reason = "one mimalloc option; audited below")]
fn purge_freed_memory_at_once() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    // SAFETY: `mi_option_set` stores an integer in mimalloc's option table;
    // it takes no pointers and may be called at any time, from any thread.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) }
}

/// What `media-gen --help` ends with: what bare `media-gen` does, which
/// MCP tools exist, how to try it, and the exit statuses.
const AFTER_HELP: &str = "\
Without a command, media-gen is the MCP server over stdio (`media-gen serve`).

MCP tools it offers: generate_image, generate_image_batch, edit_image, inpaint, outpaint,
upscale, list_models, list_generated, get_file_info, delete_file, get_usage; and generate_video,
image_to_video, extend_video, get_video_status, which need a video backend (a Gemini API
key for Veo, or MCP_VIDEO_BACKEND=cliproxy). `media-gen models` shows what is set up.

Try it offline:         media-gen generate \"a lighthouse at dusk\" --emulator
Add it to Claude Code:  claude mcp add media-gen -- media-gen serve

Exit status: 0 success; 1 the operation failed (a backend error, a file not found, a
declined delete); 2 the command line or configuration is wrong (an unknown flag, a bad
setting, an invalid value).";

/// Images, edits and videos from Gemini and Veo for AI agents (an MCP
/// server), and from the shell; with an offline emulator to try it without
/// credentials.
#[derive(Debug, Parser)]
#[command(
    name = "media-gen",
    version,
    propagate_version = true,
    after_help = AFTER_HELP
)]
struct Cli {
    /// The flags that once went before any command, still accepted there.
    #[command(flatten)]
    early: EarlyArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

/// Flags accepted before the command (`media-gen --emulator generate …`)
/// and by bare `media-gen`, as before each command took its own: hidden,
/// so each command's help shows only its own options.
#[derive(Debug, Args, Default)]
struct EarlyArgs {
    #[arg(long, hide = true)]
    config: Option<PathBuf>,
    #[arg(long, hide = true)]
    output_dir: Option<String>,
    #[arg(long, hide = true)]
    log: Option<String>,
    #[arg(long, hide = true)]
    cliproxy_url: Option<String>,
    #[arg(long, hide = true)]
    image_backend: Option<String>,
    #[arg(long, hide = true)]
    request_timeout: Option<String>,
    #[arg(long, hide = true)]
    preview: Option<String>,
    #[arg(long, hide = true)]
    emulator: bool,
}

/// Where settings come from: every command that reads settings takes these.
#[derive(Debug, Args, Default)]
#[command(next_help_heading = "Settings")]
struct SettingsArgs {
    /// TOML config file [env: MCP_CONFIG] [default: $XDG_CONFIG_HOME/media-gen/config.toml if present].
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Where images, videos, sidecars and the catalog live [env: MCP_OUTPUT_DIR].
    #[arg(long, value_name = "DIR")]
    output_dir: Option<String>,
    /// Log filter for stderr, e.g. `debug` or `media_gen=trace` [env: MEDIA_GEN_LOG].
    #[arg(long, value_name = "FILTER")]
    log: Option<String>,
}

/// How to reach the backends: the commands that call one take these.
#[derive(Debug, Args, Default)]
#[command(next_help_heading = "Backend")]
struct BackendArgs {
    /// Use the built-in offline emulator instead of the real backends
    /// (synthetic test images and videos; for trying media-gen without credentials).
    #[arg(long)]
    emulator: bool,
    /// CLIProxyAPI base URL [env: MCP_CLIPROXY_URL] [default: http://127.0.0.1:8317].
    #[arg(long, value_name = "URL")]
    cliproxy_url: Option<String>,
    /// Image wire format: `cliproxy` (OpenAI chat completions) or `gemini`
    /// (native generateContent at MCP_GEMINI_URL) [env: MCP_IMAGE_BACKEND].
    #[arg(long, value_name = "KIND")]
    image_backend: Option<String>,
    /// Seconds per backend request, retries included [env: MCP_REQUEST_TIMEOUT] [default: 120].
    #[arg(long, value_name = "SECS")]
    request_timeout: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the MCP server over stdio or HTTP (what bare `media-gen` does).
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
    /// Start a video job (needs a video backend); `--wait` shows progress until the file is saved.
    Video(VideoArgs),
    /// List recent video jobs and their states (and finish the ones that are ready).
    Jobs {
        /// How many jobs (1–1000).
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1000))]
        limit: u32,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        backend: BackendArgs,
        #[command(flatten)]
        settings: SettingsArgs,
    },
    /// Run the offline backend emulator (a test and demo tool, not Gemini).
    Emulator(EmulatorArgs),
    /// List the models set up here, what each takes, and whether the backend offers it.
    Models {
        /// Print JSON instead of tables.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        backend: BackendArgs,
        #[command(flatten)]
        settings: SettingsArgs,
    },
    /// List the files in the media library (newest first).
    List(ListArgs),
    /// Show everything known about one file.
    Info {
        /// The file: its name as `media-gen list` shows it, or the path `generate` printed.
        file: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        settings: SettingsArgs,
    },
    /// What was generated and what it cost (estimated), per model and per day.
    ///
    /// Figures are estimates from media-gen's dated price table, not a bill;
    /// days and months are UTC. The default period is this month so far.
    Usage {
        /// Start: a date (`2026-03-01`, UTC) or an RFC 3339 time.
        #[arg(long, value_name = "DATE")]
        since: Option<String>,
        /// End: a date (through that day, UTC) or an RFC 3339 time.
        #[arg(long, value_name = "DATE")]
        until: Option<String>,
        /// Print JSON (the `get_usage` result) instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        settings: SettingsArgs,
    },
    /// Delete a file, its sidecar and its catalog entry.
    Rm {
        /// The file: its name as `media-gen list` shows it, or the path `generate` printed.
        file: String,
        /// Do not ask for confirmation (needed when stdin is not a terminal).
        #[arg(long, short)]
        yes: bool,
        #[command(flatten)]
        settings: SettingsArgs,
    },
    /// Copy a local library into the shared one (MCP_STORAGE_URL, MCP_DATABASE_URL).
    ///
    /// Copies every file of DIR's library with its sidecar and catalog row,
    /// as a save writes them. Safe to stop and run again: files already
    /// there are skipped, a half-copied one is finished, nothing is copied
    /// twice. DIR is only read.
    Import {
        /// The local library to copy (the directory `media-gen list` shows as `from …`).
        #[arg(long, value_name = "DIR")]
        from: PathBuf,
        #[command(flatten)]
        settings: SettingsArgs,
    },
    /// Apply the PostgreSQL schema migrations (MCP_DATABASE_URL) and exit.
    ///
    /// Servers apply them at start as well (one at a time, under a lock);
    /// this applies them ahead of a rollout. `--dry-run` lists the pending
    /// ones and changes nothing.
    Migrate {
        /// List the migrations that would be applied; apply none.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        settings: SettingsArgs,
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
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    #[command(after_help = "Install it, for example:
  media-gen completions bash > ~/.local/share/bash-completion/completions/media-gen
  media-gen completions zsh > ~/.zfunc/_media-gen      (with ~/.zfunc in $fpath)
  media-gen completions fish > ~/.config/fish/completions/media-gen.fish")]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
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
    #[command(flatten)]
    settings: SettingsArgs,
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
    /// Inline image in results: `preview` (default), `full` or `none` [env: MCP_PREVIEW].
    #[arg(long, value_name = "MODE")]
    preview: Option<String>,
    #[command(flatten)]
    backend: BackendArgs,
    #[command(flatten)]
    settings: SettingsArgs,
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
    #[command(flatten)]
    backend: BackendArgs,
    #[command(flatten)]
    settings: SettingsArgs,
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
    #[command(flatten)]
    backend: BackendArgs,
    #[command(flatten)]
    settings: SettingsArgs,
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
    #[command(flatten)]
    backend: BackendArgs,
    #[command(flatten)]
    settings: SettingsArgs,
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
    /// Log filter for stderr, e.g. `debug` [env: MEDIA_GEN_LOG].
    #[arg(long, value_name = "FILTER")]
    log: Option<String>,
}

impl Command {
    /// The settings flags this command took (if it reads settings) and its
    /// backend flags (if it calls a backend).
    fn flags(&self) -> (Option<&SettingsArgs>, Option<&BackendArgs>) {
        match self {
            Self::Serve(a) | Self::Doctor(a) | Self::Config { serve: a, .. } => {
                (Some(&a.settings), Some(&a.backend))
            }
            Self::Generate(a) => (Some(&a.settings), Some(&a.backend)),
            Self::Edit(EditArgs { common, .. })
            | Self::Inpaint(InpaintArgs { common, .. })
            | Self::Outpaint(OutpaintArgs { common, .. })
            | Self::Upscale(UpscaleArgs { common, .. }) => {
                (Some(&common.settings), Some(&common.backend))
            }
            Self::Video(a) => (Some(&a.settings), Some(&a.backend)),
            Self::Jobs {
                settings, backend, ..
            }
            | Self::Models {
                settings, backend, ..
            } => (Some(settings), Some(backend)),
            Self::List(a) => (Some(&a.settings), None),
            Self::Info { settings, .. }
            | Self::Rm { settings, .. }
            | Self::Import { settings, .. }
            | Self::Migrate { settings, .. }
            | Self::Usage { settings, .. } => (Some(settings), None),
            Self::Emulator(_) | Self::Completions { .. } => (None, None),
        }
    }

    fn settings(&self) -> Option<&SettingsArgs> {
        self.flags().0
    }

    fn backend(&self) -> Option<&BackendArgs> {
        self.flags().1
    }

    /// Whether it is a shell command (not a server of some kind).
    fn is_shell(&self) -> bool {
        !matches!(self, Self::Serve(_) | Self::Emulator(_))
    }
}

impl Cli {
    /// A flag's value: given after the command (in the command's flag
    /// `group`), else before it (`early`).
    fn pick<A, T: Clone>(
        &self,
        group: fn(&Command) -> Option<&A>,
        field: impl Fn(&A) -> &Option<T>,
        early: &Option<T>,
    ) -> Option<T> {
        self.command
            .as_ref()
            .and_then(group)
            .and_then(|a| field(a).clone())
            .or_else(|| early.clone())
    }

    fn config(&self) -> Option<PathBuf> {
        self.pick(Command::settings, |a| &a.config, &self.early.config)
    }

    fn log(&self) -> Option<String> {
        match &self.command {
            Some(Command::Emulator(a)) => a.log.clone().or_else(|| self.early.log.clone()),
            _ => self.pick(Command::settings, |a| &a.log, &self.early.log),
        }
    }

    /// Whether to use the built-in emulator (only commands that call a
    /// backend do, and bare `media-gen`).
    fn emulator(&self) -> bool {
        match &self.command {
            None => self.early.emulator,
            Some(c) => c
                .backend()
                .is_some_and(|b| b.emulator || self.early.emulator),
        }
    }

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
        let e = &self.early;
        [
            (
                "output_dir",
                "--output-dir",
                self.pick(Command::settings, |a| &a.output_dir, &e.output_dir),
            ),
            (
                "cliproxy_url",
                "--cliproxy-url",
                self.pick(Command::backend, |a| &a.cliproxy_url, &e.cliproxy_url),
            ),
            (
                "image_backend",
                "--image-backend",
                self.pick(Command::backend, |a| &a.image_backend, &e.image_backend),
            ),
            (
                "request_timeout",
                "--request-timeout",
                self.pick(Command::backend, |a| &a.request_timeout, &e.request_timeout),
            ),
            (
                "preview",
                "--preview",
                serve
                    .and_then(|s| s.preview.clone())
                    .or_else(|| e.preview.clone()),
            ),
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
            // `emulator`, `completions`, `doctor` and `config` are answered
            // before this.
            None
            | Some(
                Command::Serve(_)
                | Command::Emulator(_)
                | Command::Completions { .. }
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
            Some(Command::Models { json, .. }) => AppCommand::Models { json },
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
            Some(Command::Info { file, json, .. }) => AppCommand::Info { file, json },
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
            Some(Command::Jobs { limit, json, .. }) => AppCommand::Jobs { limit, json },
            Some(Command::Rm { file, yes, .. }) => AppCommand::Rm { file, yes },
            Some(Command::Import { from, .. }) => AppCommand::Import { from },
            Some(Command::Migrate { dry_run, .. }) => AppCommand::Migrate { dry_run },
            Some(Command::Usage {
                since, until, json, ..
            }) => AppCommand::Usage { since, until, json },
        }
    }
}

/// Logs on stderr, without colour. Servers log records at `info`; shell
/// commands only warnings, as `warning: …` lines like their own `error:`
/// and `note:` lines.
fn init_logging(filter: Option<&str>, shell: bool) {
    let filter = filter
        .map(str::to_owned)
        .or_else(|| std::env::var("MEDIA_GEN_LOG").ok())
        // An empty value is no value: the default for the command.
        .filter(|f| !f.trim().is_empty())
        .unwrap_or_else(|| if shell { "warn" } else { "info" }.to_owned());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        // Every value cut to 1 KiB, never base64: see `app::logs`.
        .fmt_fields(app::logs::BoundedFields)
        .with_writer(std::io::stderr)
        .with_ansi(false);
    if shell {
        logs.event_format(ShellLines).init();
    } else {
        logs.init();
    }
}

/// A log event as a shell line: `warning: message key=value`.
struct ShellLines;

impl<S, N> FormatEvent<S, N> for ShellLines
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let level = match *event.metadata().level() {
            tracing::Level::ERROR => "error",
            tracing::Level::WARN => "warning",
            tracing::Level::INFO => "note",
            _ => "debug",
        };
        write!(writer, "{level}: ")?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// Threads for blocking work (file writes and fsyncs, SQLite, image
/// decodes): tokio's default of 512 lets a burst of 200 requests start 200
/// threads, each with its own allocator cache that outlives the burst.
/// Blocking work beyond this waits its turn; pixel work has its own, smaller
/// bound (`service::pixels`).
const BLOCKING_THREADS: usize = 32;
/// How long an idle blocking thread is kept (tokio's default is 10 s): the
/// threads a burst started, and the memory they cache, go soon after it.
const BLOCKING_KEEP_ALIVE: Duration = Duration::from_secs(2);

fn main() -> ExitCode {
    purge_freed_memory_at_once();
    let cli = Cli::parse();
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    // The emulator stands in for a backend under load tests: its renders
    // are not media-gen's work to bound.
    if !matches!(cli.command, Some(Command::Emulator(_))) {
        runtime
            .max_blocking_threads(BLOCKING_THREADS)
            .thread_keep_alive(BLOCKING_KEEP_ALIVE);
    }
    match runtime.build() {
        Ok(runtime) => runtime.block_on(run(cli)),
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> ExitCode {
    if let Some(Command::Completions { shell }) = &cli.command {
        let mut out = std::io::stdout();
        clap_complete::generate(*shell, &mut Cli::command(), "media-gen", &mut out);
        return ExitCode::SUCCESS;
    }
    init_logging(
        cli.log().as_deref(),
        cli.command.as_ref().is_some_and(Command::is_shell),
    );
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
        file: cli
            .config()
            .or_else(|| env("MCP_CONFIG").map(PathBuf::from))
            .or_else(|| default_config_file(&env)),
        env: &env,
        flags: cli.setting_flags(),
    };
    let result = match Settings::load(&sources) {
        Ok(settings) => match cli.command {
            Some(Command::Doctor(_)) => app::doctor::run(settings, cli.emulator()).await,
            Some(Command::Config { json, .. }) => app::cli::config(&settings, json),
            _ => {
                let emulator = cli.emulator();
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

/// Prints the error's one line and gives its exit status.
fn fail(e: &AppError) -> ExitCode {
    eprintln!("{}", e.line());
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
                "error: cannot listen on `{}:{}`: {e}; choose another `--port`",
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The constant names the purge delay: before it is set, that option
    /// holds mimalloc v3's default for it (1,000 ms); after, 0.
    #[test]
    #[allow(unsafe_code, reason = "reads mimalloc options")]
    fn the_purge_delay_option_is_the_one_set() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return;
        }
        // SAFETY: reads an integer from mimalloc's option table.
        let get = || unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        assert_eq!(
            get(),
            1000,
            "option {MI_OPTION_PURGE_DELAY} is not the purge delay"
        );
        purge_freed_memory_at_once();
        assert_eq!(get(), 0);
    }
}
