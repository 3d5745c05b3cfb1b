//! Configuration: built-in defaults < TOML file < `MCP_*` environment <
//! flags, merged by [`layers`] and validated once into [`Settings`].
//!
//! `Settings` is grouped by owner — [`BackendSettings`] for the providers,
//! [`LibrarySettings`] for storage, [`GenerationSettings`] and
//! [`ResultSettings`] for the service, [`ServerSettings`] and
//! [`HttpSettings`] for the transports — and the composition root hands
//! each component only its own group. Values are parsed here (URLs,
//! durations, sizes, addresses), so nothing downstream re-validates. A bad
//! value stops start-up with one line naming the setting, the value and
//! where it came from. Nothing here touches the file system but reading the
//! config file: the library directory is created and checked where it is
//! opened. [`Settings::provenance`] keeps where every value came from, for
//! `media-gen config` and `media-gen doctor`.

mod layers;

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use reqwest::Url;

use crate::domain;

pub use layers::{ConfigNote, Origin, Provenance, SettingSource, Sources};
use layers::{Layers, Shown};

/// How a credential is shown.
pub const REDACTED: &str = "<redacted>";

/// A credential: printed as `<redacted>` by `Debug`, read with [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// Which wire format images are requested in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageBackendKind {
    /// CLIProxyAPI's OpenAI-compatible `/v1/chat/completions`.
    CliProxy,
    /// Gemini's native `/v1beta/models/{model}:generateContent`.
    Gemini,
}

impl Shown for ImageBackendKind {
    fn shown(&self) -> String {
        match self {
            Self::CliProxy => "cliproxy",
            Self::Gemini => "gemini",
        }
        .to_owned()
    }
}

/// Who makes videos.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoBackendKind {
    /// Veo through the Gemini API.
    Gemini,
    /// CLIProxyAPI's OpenAI-style `/v1/videos`.
    CliProxy,
}

impl Shown for VideoBackendKind {
    fn shown(&self) -> String {
        match self {
            Self::Gemini => "gemini",
            Self::CliProxy => "cliproxy",
        }
        .to_owned()
    }
}

/// How much of an image goes inline into a tool result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PreviewMode {
    /// The whole file, base64 (can be megabytes: only for clients that want it).
    Full,
    /// A small JPEG/PNG (≤ 512 px long side, about 100 KB). The default.
    #[default]
    Preview,
    /// No inline image; the `resource_link` only.
    None,
}

impl Shown for PreviewMode {
    fn shown(&self) -> String {
        match self {
            Self::Full => "full",
            Self::Preview => "preview",
            Self::None => "none",
        }
        .to_owned()
    }
}

/// The MCP transport `serve` speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Transport {
    #[default]
    Stdio,
    Http,
    Sse,
    Dual,
}

impl Transport {
    /// Whether `serve` listens on HTTP with it.
    pub fn uses_http(self) -> bool {
        !matches!(self, Self::Stdio)
    }
}

impl Shown for Transport {
    fn shown(&self) -> String {
        match self {
            Self::Stdio => "stdio",
            Self::Http => "http",
            Self::Sse => "sse",
            Self::Dual => "dual",
        }
        .to_owned()
    }
}

/// Validated settings, grouped by the component that uses them.
#[derive(Debug, Clone)]
pub struct Settings {
    pub backend: BackendSettings,
    pub library: LibrarySettings,
    pub generation: GenerationSettings,
    pub results: ResultSettings,
    pub edit: EditSettings,
    pub video: VideoSettings,
    pub confirm: ConfirmSettings,
    pub server: ServerSettings,
    pub http: HttpSettings,
    pub spend: SpendSettings,
    /// Where each value came from, and what was corrected on the way.
    pub provenance: Provenance,
}

/// What calls cost and how much may be spent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SpendSettings {
    /// Prices that replace the built-in table's (the config file's
    /// `[prices]`), by model id; validated against the registry.
    pub prices: Vec<PriceOverride>,
    /// Estimated spend allowed per UTC day (`MCP_BUDGET_DAILY_USD`).
    pub budget_daily_usd: Option<f64>,
    /// Estimated spend allowed per UTC calendar month (`MCP_BUDGET_MONTHLY_USD`).
    pub budget_monthly_usd: Option<f64>,
}

/// One model's prices from the config file; each figure replaces the
/// built-in one for that size or resolution, the others stay.
#[derive(Debug, Clone, PartialEq)]
pub struct PriceOverride {
    /// A model id of the registry.
    pub model: &'static str,
    /// USD per image, by `image_size` (image models).
    pub per_image_usd: Vec<(domain::ImageSize, f64)>,
    /// USD per second of video, by resolution (video models).
    pub per_second_usd: Vec<(&'static str, f64)>,
}

/// Input images and the edit tools.
#[derive(Debug, Clone)]
pub struct EditSettings {
    /// Largest input file, in bytes.
    pub input_max_bytes: u64,
    /// Most pixels an input (or a result) may have.
    pub input_max_pixels: u64,
    /// Default feather of a mask's edge, in pixels (0 = hard edge).
    pub mask_feather: u32,
    /// Most pixels an outpaint may add on one side.
    pub outpaint_max_extend: u32,
}

/// How to reach the providers.
#[derive(Debug, Clone)]
pub struct BackendSettings {
    pub image_backend: ImageBackendKind,
    /// CLIProxyAPI base URL (OpenAI-compatible image route).
    pub cliproxy_url: Url,
    pub cliproxy_api_key: Option<Secret>,
    /// Gemini API base URL (native `generateContent`, Veo).
    pub gemini_url: Url,
    pub gemini_api_key: Option<Secret>,
    /// Bound on one backend call including its retries.
    pub request_timeout: Duration,
    pub video_backend: VideoBackendKind,
}

/// Where the library lives and how it is kept.
#[derive(Debug, Clone)]
pub struct LibrarySettings {
    /// Media, sidecars and the catalog. Absolute; created when opened.
    pub output_dir: PathBuf,
    /// Where `output_dir` came from, for messages about it.
    pub output_dir_origin: String,
    pub cleanup: CleanupSettings,
    /// Shared servers in place of the local directory and its SQLite
    /// catalog (a deployment of several replicas); unset: local.
    pub shared: SharedSettings,
}

/// Where a shared deployment keeps its library (see `docs/deploy.md`).
#[derive(Debug, Clone, Default)]
pub struct SharedSettings {
    /// Media and sidecars in object storage (`MCP_STORAGE_URL`,
    /// `s3://bucket/prefix`, `gs://…`, `az://…`); unset: `output_dir`.
    pub storage_url: Option<reqwest::Url>,
    /// An S3-compatible server's address (`MCP_STORAGE_ENDPOINT`), in
    /// place of AWS's.
    pub storage_endpoint: Option<reqwest::Url>,
    /// Results link to presigned URLs of the store (`MCP_STORAGE_PRESIGN`)
    /// rather than to this server's `/files` route.
    pub storage_presign: bool,
    /// Catalog, jobs, usage ledger and change feed in PostgreSQL
    /// (`MCP_DATABASE_URL`, `postgres://user:password@host/db`); unset:
    /// SQLite in `output_dir`.
    pub database_url: Option<Secret>,
}

impl SharedSettings {
    /// Whether anything is shared (not the local default).
    pub fn any(&self) -> bool {
        self.storage_url.is_some() || self.database_url.is_some()
    }

    fn load(l: &Layers) -> Result<Self, ConfigError> {
        Ok(Self {
            storage_url: l.optional("storage_url", |v| {
                let url = reqwest::Url::parse(v.trim()).map_err(|e| {
                    format!("{e}; expected `s3://bucket/prefix` (or `gs://bucket/prefix`, `az://container/prefix`)")
                })?;
                match (url.scheme(), url.host_str()) {
                    ("s3" | "s3a" | "gs" | "az" | "azure" | "abfs" | "abfss", Some(h)) if !h.is_empty() => Ok(url),
                    _ => Err("expected `s3://bucket/prefix` (or `gs://bucket/prefix`, `az://container/prefix`)".into()),
                }
            })?,
            storage_endpoint: l.optional("storage_endpoint", |v| {
                let url = reqwest::Url::parse(v.trim()).map_err(|e| format!("{e}; expected an address such as `http://127.0.0.1:9000`"))?;
                match url.scheme() {
                    "http" | "https" => Ok(url),
                    _ => Err("expected an http:// or https:// address, such as `http://127.0.0.1:9000`".into()),
                }
            })?,
            storage_presign: l.get("storage_presign", || false, switch)?,
            // Checked when the database is opened, not here: a refusal here
            // would print the value, and the URL holds the password.
            database_url: l.optional("database_url", |v| Ok(Secret::new(v.trim())))?,
        })
    }
}

/// `1`/`true`/`yes`/`on` or `0`/`false`/`no`/`off`.
fn switch(v: &str) -> Result<bool, String> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" | "" => Ok(false),
        _ => Err("expected `1` or `0` (also true/false, yes/no, on/off)".into()),
    }
}

/// The automatic clean-up (off unless a limit is set).
#[derive(Debug, Clone, Default)]
pub struct CleanupSettings {
    /// Delete files older than this.
    pub max_age: Option<Duration>,
    /// Keep the library under this many bytes, oldest first.
    pub max_total_bytes: Option<u64>,
}

/// What a generation uses when the call does not say.
#[derive(Debug, Clone)]
pub struct GenerationSettings {
    pub default_model: &'static str,
    /// Tried once when the requested image model is still rate limited
    /// after the backend's retries (`MCP_FALLBACK_MODEL`); `None`: off.
    pub fallback_model: Option<&'static str>,
    /// How many prompts of one batch run at once.
    pub batch_concurrency: usize,
    /// How many image generations and model edits, from all clients
    /// together, may be at the backend or saving at once; the rest wait
    /// their turn before asking the backend, so none waits holding an
    /// answer.
    pub generation_concurrency: usize,
}

/// Video jobs.
#[derive(Debug, Clone)]
pub struct VideoSettings {
    /// Used when a video call names no model.
    pub default_model: &'static str,
    /// First wait between polls of a provider's operation (it grows from
    /// here to four times as much).
    pub poll_interval: Duration,
    /// A job not finished this long after it started fails with
    /// `GENERATION_TIMEOUT`.
    pub deadline: Duration,
    /// How long a process's claim on a job lasts without being renewed
    /// (it renews every third of it): after a process dies, another takes
    /// its jobs over this long later at most.
    pub lease: Duration,
}

/// When a paid call asks the user first.
#[derive(Debug, Clone, Default)]
pub struct ConfirmSettings {
    /// Calls estimated above this many US dollars ask for confirmation;
    /// unset: none asks.
    pub above_usd: Option<f64>,
}

/// What results carry.
#[derive(Debug, Clone)]
pub struct ResultSettings {
    pub preview: PreviewMode,
}

/// Which transport `serve` runs.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub transport: Transport,
}

/// The HTTP server.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub host: IpAddr,
    pub port: u16,
    pub token: Option<Secret>,
    /// `Host` values accepted (names or `name:port`). Empty: any host (only
    /// when bound to an unspecified address).
    pub allowed_hosts: Vec<String>,
    /// Browser origins accepted (`scheme://host[:port|:*]`); requests
    /// without `Origin` are not browsers and pass.
    pub allowed_origins: Vec<String>,
    /// Largest request body read.
    pub max_body_bytes: usize,
    /// Most concurrent sessions (Streamable HTTP + legacy SSE).
    pub max_sessions: usize,
    /// How long in-flight work may finish after a shutdown signal.
    pub shutdown_grace: Duration,
    /// Most open client connections; `None`: derived from the open-file
    /// limit when the server starts, leaving descriptors for the backends,
    /// the catalog and media files.
    pub max_connections: Option<usize>,
    /// How long a client may take to send a request's headers (and, on a
    /// new or idle connection, to begin one) before it is disconnected.
    pub header_timeout: Duration,
    /// Extra directories edit tools may read from over HTTP.
    pub input_roots: Vec<PathBuf>,
    /// Base of the download `url`s in HTTP results (behind a proxy); unset:
    /// the bound address.
    pub public_url: Option<Url>,
}

/// A configuration problem; the message is one line naming setting, value and origin.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid `{setting}` = `{value}` (from {origin}): {reason}")]
    Invalid {
        setting: &'static str,
        value: String,
        origin: String,
        reason: String,
    },
    #[error("cannot read config file `{}`: {source}", path.display())]
    ReadFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot parse config file `{}`: {}", path.display(), message.replace('\n', " "))]
    ParseFile { path: PathBuf, message: String },
    #[error(
        "no home directory: set `MCP_OUTPUT_DIR` (or `XDG_DATA_HOME`) to where generated files should go"
    )]
    NoDataDir,
}

impl Settings {
    /// Merges `sources` over the defaults and validates every value.
    pub fn load(sources: &Sources<'_>) -> Result<Settings, ConfigError> {
        let l = Layers::load(sources)?;
        let backend = BackendSettings::load(&l)?;
        let library = LibrarySettings::load(&l, sources.env)?;
        let generation = GenerationSettings {
            default_model: l.get(
                "default_model",
                || domain::DEFAULT_IMAGE_MODEL,
                |v| {
                    domain::image_model(v).map(|m| m.id).ok_or_else(|| {
                        format!("use one of: {}", domain::image_model_ids().join(", "))
                    })
                },
            )?,
            fallback_model: l.optional("fallback_model", |v| {
                domain::image_model(v).map(|m| m.id).ok_or_else(|| {
                    format!(
                        "the fallback must be an image model; use one of: {}",
                        domain::image_model_ids().join(", ")
                    )
                })
            })?,
            batch_concurrency: l.get(
                "batch_concurrency",
                || 4,
                number(1..=64, "expected a number between 1 and 64"),
            )?,
            generation_concurrency: l.get(
                "generation_concurrency",
                || 16,
                number(1..=1024, "expected a number between 1 and 1024"),
            )?,
        };
        let results = ResultSettings {
            preview: l.get("preview", PreviewMode::default, |v| {
                one_of(
                    v,
                    &[
                        ("full", PreviewMode::Full),
                        ("preview", PreviewMode::Preview),
                        ("none", PreviewMode::None),
                        ("off", PreviewMode::None),
                    ],
                    "use `full`, `preview` or `none`",
                )
            })?,
        };
        let server = ServerSettings {
            transport: l.get("transport", Transport::default, |v| {
                one_of(
                    v,
                    &[
                        ("stdio", Transport::Stdio),
                        ("http", Transport::Http),
                        ("streamable-http", Transport::Http),
                        ("sse", Transport::Sse),
                        ("dual", Transport::Dual),
                    ],
                    "use `stdio`, `http`, `sse` or `dual`",
                )
            })?,
        };
        let http = HttpSettings::load(&l)?;
        let video = VideoSettings {
            default_model: l.get(
                "default_video_model",
                || domain::VIDEO_MODELS[0].id,
                |v| {
                    domain::video_model(v).map(|m| m.id).ok_or_else(|| {
                        format!("use one of: {}", domain::video_model_ids().join(", "))
                    })
                },
            )?,
            poll_interval: l.get(
                "video_poll_interval",
                || Duration::from_secs(10),
                |v| {
                    number(
                        0.05..=300.0,
                        "expected seconds between 0.05 and 300, such as `10` or `0.5`",
                    )(v)
                    .map(Duration::from_secs_f64)
                },
            )?,
            deadline: l.get(
                "video_deadline",
                || Duration::from_secs(20 * 60),
                |v| {
                    number(1..=86_400, "expected whole seconds between 1 and 86400")(v)
                        .map(Duration::from_secs)
                },
            )?,
            lease: l.get(
                "job_lease",
                || Duration::from_secs(30),
                |v| {
                    number(2..=3_600, "expected whole seconds between 2 and 3600")(v)
                        .map(Duration::from_secs)
                },
            )?,
        };
        let confirm = ConfirmSettings {
            above_usd: l.optional("confirm_above_usd", |v| {
                number(
                    0.0..=1_000_000.0,
                    "expected US dollars, such as `0.50` or `2` (0 asks before every paid call)",
                )(v.trim().trim_start_matches('$'))
            })?,
        };
        let edit = EditSettings {
            input_max_bytes: l.get(
                "input_max_bytes",
                || 50 << 20,
                |v| {
                    parse_bytes(v)
                        .filter(|n| *n >= 1024)
                        .ok_or_else(|| "expected a size of at least 1K, such as `50M`".to_owned())
                },
            )?,
            input_max_pixels: l.get(
                "input_max_pixels",
                || 64 << 20,
                |v| {
                    parse_bytes(v).filter(|n| *n >= 1).ok_or_else(|| {
                        "expected a number of pixels, such as `67108864` or `64M` (64 × 2²⁰)"
                            .to_owned()
                    })
                },
            )?,
            mask_feather: l.get(
                "mask_feather",
                || 4,
                number(0..=64, "expected whole pixels, 0 (a hard edge) to 64"),
            )?,
            outpaint_max_extend: l.get(
                "outpaint_max_extend",
                || 2048,
                number(1..=8192, "expected whole pixels, 1 to 8192"),
            )?,
        };
        let spend = SpendSettings::load(&l)?;
        Ok(Settings {
            backend,
            library,
            generation,
            results,
            edit,
            video,
            confirm,
            server,
            http,
            spend,
            provenance: l.provenance(config_file_path(sources.env)),
        })
    }
}

impl BackendSettings {
    fn load(l: &Layers) -> Result<Self, ConfigError> {
        Ok(Self {
            image_backend: l.get(
                "image_backend",
                || ImageBackendKind::CliProxy,
                |v| {
                    one_of(
                        v,
                        &[
                            ("cliproxy", ImageBackendKind::CliProxy),
                            ("openai", ImageBackendKind::CliProxy),
                            ("gemini", ImageBackendKind::Gemini),
                        ],
                        "use `cliproxy` or `gemini`",
                    )
                },
            )?,
            cliproxy_url: l.get(
                "cliproxy_url",
                || constant_url("http://127.0.0.1:8317"),
                |v| base_url(l, "cliproxy_url", v),
            )?,
            cliproxy_api_key: Some(l.get(
                "cliproxy_api_key",
                || Secret::new("ccs-internal-managed"),
                secret,
            )?),
            gemini_url: l.get(
                "gemini_url",
                || constant_url("https://generativelanguage.googleapis.com"),
                |v| base_url(l, "gemini_url", v),
            )?,
            gemini_api_key: l.optional("gemini_api_key", secret)?,
            request_timeout: l.get(
                "request_timeout",
                || Duration::from_secs(120),
                |v| {
                    number(1..=3600, "expected whole seconds between 1 and 3600")(v)
                        .map(Duration::from_secs)
                },
            )?,
            video_backend: l.get(
                "video_backend",
                || VideoBackendKind::Gemini,
                |v| {
                    one_of(
                        v,
                        &[
                            ("gemini", VideoBackendKind::Gemini),
                            ("cliproxy", VideoBackendKind::CliProxy),
                        ],
                        "use `gemini` or `cliproxy`",
                    )
                },
            )?,
        })
    }
}

impl LibrarySettings {
    fn load(l: &Layers, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let (output_dir, origin) = match l.paths("output_dir") {
            None => (default_output_dir(env)?, Origin::Default),
            Some(s) => {
                let invalid = |reason: &str| ConfigError::Invalid {
                    setting: "output_dir",
                    value: s
                        .value
                        .first()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default(),
                    origin: s.origin.to_string(),
                    reason: reason.to_owned(),
                };
                let dir = match s.value.as_slice() {
                    [dir] => dir.clone(),
                    [] => return Err(invalid("must not be empty")),
                    _ => return Err(invalid("one directory, not a list")),
                };
                if dir.is_relative() {
                    let cwd = std::env::current_dir().map_err(|_| {
                        invalid("relative path and no working directory; use an absolute path")
                    })?;
                    (cwd.join(dir), s.origin)
                } else {
                    (dir, s.origin)
                }
            }
        };
        l.record(
            "output_dir",
            Some(output_dir.display().to_string()),
            origin.clone(),
        );
        Ok(Self {
            output_dir,
            output_dir_origin: origin.to_string(),
            cleanup: CleanupSettings::load(l)?,
            shared: SharedSettings::load(l)?,
        })
    }
}

impl SpendSettings {
    fn load(l: &Layers) -> Result<Self, ConfigError> {
        let usd = |v: &str| {
            number(
                0.0..=1_000_000.0,
                "expected US dollars, such as `5` or `0.50` (0 allows no spending)",
            )(v)
        };
        Ok(Self {
            budget_daily_usd: l.optional("budget_daily_usd", usd)?,
            budget_monthly_usd: l.optional("budget_monthly_usd", usd)?,
            prices: match l.table("prices") {
                None => {
                    l.record("prices", None, Origin::Default);
                    Vec::new()
                }
                Some(set) => {
                    let prices =
                        parse_prices(&set.value).map_err(|reason| ConfigError::Invalid {
                            setting: "prices",
                            value: table_text(&set.value),
                            origin: set.origin.to_string(),
                            reason,
                        })?;
                    l.record("prices", Some(table_text(&set.value)), set.origin);
                    prices
                }
            },
        })
    }
}

/// `[prices]`: per model id, `per_image_usd` (by image size) or
/// `per_second_usd` (by resolution), each a table of non-negative numbers.
fn parse_prices(value: &figment::value::Value) -> Result<Vec<PriceOverride>, String> {
    use figment::value::Value;
    let example =
        "e.g. `[prices.\"gemini-3-pro-image-preview\"] per_image_usd = { \"1K\" = 0.10 }`";
    let Value::Dict(_, models) = value else {
        return Err(format!("expected a table of model ids, {example}"));
    };
    let figure = |model: &str, key: &str, v: &Value| -> Result<f64, String> {
        match v {
            Value::Num(_, n) => num_f64(n).filter(|f| f.is_finite() && *f >= 0.0),
            _ => None,
        }
        .ok_or_else(|| format!("`{model}` `{key}`: expected US dollars as a number, 0 or more"))
    };
    let mut out = Vec::new();
    for (id, fields) in models {
        let Value::Dict(_, fields) = fields else {
            return Err(format!("`{id}`: expected a table, {example}"));
        };
        let mut o = PriceOverride {
            model: "",
            per_image_usd: Vec::new(),
            per_second_usd: Vec::new(),
        };
        if let Some(m) = domain::image_model(id) {
            o.model = m.id;
            for (field, table) in fields {
                let Value::Dict(_, sizes) = table else {
                    return Err(format!("`{id}`: `{field}` must be a table of sizes"));
                };
                if field != "per_image_usd" {
                    return Err(format!(
                        "`{id}` is an image model: use `per_image_usd`, not `{field}`"
                    ));
                }
                for (size, v) in sizes {
                    let s = m.image_size(size).map_err(|e| e.to_string())?;
                    o.per_image_usd.push((s, figure(id, size, v)?));
                }
            }
        } else if let Some(m) = domain::video_model(id) {
            o.model = m.id;
            for (field, table) in fields {
                let Value::Dict(_, resolutions) = table else {
                    return Err(format!("`{id}`: `{field}` must be a table of resolutions"));
                };
                if field != "per_second_usd" {
                    return Err(format!(
                        "`{id}` is a video model: use `per_second_usd`, not `{field}`"
                    ));
                }
                for (res, v) in resolutions {
                    let r = m
                        .resolutions
                        .iter()
                        .find(|r| r.eq_ignore_ascii_case(res))
                        .ok_or_else(|| {
                            format!(
                                "`{id}` has no resolution `{res}`; use one of: {}",
                                m.resolutions.join(", ")
                            )
                        })?;
                    o.per_second_usd.push((r, figure(id, res, v)?));
                }
            }
        } else {
            let mut ids = domain::image_model_ids();
            ids.extend(domain::video_model_ids());
            return Err(format!(
                "unknown model `{id}` (quote ids with dots: `[prices.\"gemini-2.5-flash-image\"]`); the models are: {}",
                ids.join(", ")
            ));
        }
        out.push(o);
    }
    Ok(out)
}

/// A TOML number (`1` as well as `0.5`) as `f64`.
fn num_f64(n: &figment::value::Num) -> Option<f64> {
    n.to_f64()
        .or_else(|| n.to_i128().map(|i| i as f64))
        .or_else(|| n.to_u128().map(|u| u as f64))
}

/// A table as one line of TOML-ish text, for messages and `media-gen config`.
fn table_text(value: &figment::value::Value) -> String {
    use figment::value::Value;
    match value {
        Value::Dict(_, d) => format!(
            "{{{}}}",
            d.iter()
                .map(|(k, v)| format!("{k:?} = {}", table_text(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::String(_, s) => format!("{s:?}"),
        Value::Num(_, n) => num_f64(n).map_or_else(String::new, |f| f.to_string()),
        other => format!("{other:?}"),
    }
}

impl CleanupSettings {
    fn load(l: &Layers) -> Result<Self, ConfigError> {
        Ok(Self {
            max_age: l.optional("cleanup_max_age_days", |v| {
                number(1..=36_500, "expected whole days, 1 or more")(v)
                    .map(|d| Duration::from_secs(86_400 * d))
            })?,
            max_total_bytes: l.optional("cleanup_max_total_bytes", |v| {
                parse_bytes(v).filter(|n| *n > 0).ok_or_else(|| {
                    "expected a size such as `5000000000`, `500M` or `10G`".to_owned()
                })
            })?,
        })
    }
}

impl HttpSettings {
    fn load(l: &Layers) -> Result<Self, ConfigError> {
        let host = l.get(
            "http_host",
            || IpAddr::from([127, 0, 0, 1]),
            |v| match v {
                "localhost" => Ok(IpAddr::from([127, 0, 0, 1])),
                _ => v.parse().map_err(|_| {
                    "expected an IP address such as `127.0.0.1` or `0.0.0.0`".to_owned()
                }),
            },
        )?;
        let list = |v: &str| -> Vec<String> {
            v.split(',')
                .map(|x| x.trim().to_owned())
                .filter(|x| !x.is_empty())
                .collect()
        };
        Ok(Self {
            host,
            port: l.get("http_port", || 8318, number(0..=65535, "expected a port 0–65535"))?,
            token: l.optional("http_token", secret)?,
            allowed_hosts: l.get("http_allowed_hosts", || default_allowed_hosts(host), |v| Ok(list(v)))?,
            allowed_origins: l.get(
                "http_allowed_origins",
                || ["http://localhost:*", "http://127.0.0.1:*", "http://[::1]:*"].map(str::to_owned).to_vec(),
                |v| {
                    let origins = list(v);
                    match origins.iter().find(|o| *o != "null" && !o.contains("://")) {
                        Some(bad) => Err(format!(
                            "`{bad}`: origins need a scheme, e.g. `https://app.example.com` or `http://localhost:*`"
                        )),
                        None => Ok(origins),
                    }
                },
            )?,
            max_body_bytes: l.get("http_max_body_bytes", || 16 << 20, |v| {
                parse_bytes(v)
                    .and_then(|n| usize::try_from(n).ok())
                    .filter(|n| *n >= 1024)
                    .ok_or_else(|| "expected a size of at least 1K, such as `16M`".to_owned())
            })?,
            max_sessions: l.get("http_max_sessions", || 1024, number(1..=1_000_000, "expected a number of sessions, 1 or more"))?,
            shutdown_grace: l.get("http_shutdown_grace", || Duration::from_secs(10), |v| {
                number(0..=3600, "expected whole seconds, 0 to 3600")(v).map(Duration::from_secs)
            })?,
            max_connections: l.optional("http_max_connections", number(1..=1_000_000, "expected a number of connections, 1 or more"))?,
            header_timeout: l.get("http_header_timeout", || Duration::from_secs(10), |v| {
                number(1..=3600, "expected whole seconds, 1 to 3600")(v).map(Duration::from_secs)
            })?,
            input_roots: {
                let roots = l.paths("input_roots");
                let shown = roots.as_ref().map(|s| std::env::join_paths(&s.value).map_or_else(
                    |_| format!("{:?}", s.value),
                    |p| p.to_string_lossy().into_owned(),
                ));
                let origin = roots.as_ref().map_or(Origin::Default, |s| s.origin.clone());
                l.record("input_roots", shown, origin);
                roots.map(|s| s.value).unwrap_or_default()
            },
            public_url: l.optional("public_url", parse_url)?,
        })
    }
}

/// Parses a number within `range`.
fn number<T>(
    range: std::ops::RangeInclusive<T>,
    expect: &'static str,
) -> impl FnOnce(&str) -> Result<T, String>
where
    T: FromStr + PartialOrd,
{
    move |v| match v.parse::<T>() {
        Ok(n) if range.contains(&n) => Ok(n),
        _ => Err(expect.to_owned()),
    }
}

/// One of a few names, case-insensitively.
fn one_of<T: Copy>(v: &str, names: &[(&str, T)], expect: &str) -> Result<T, String> {
    names
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(v))
        .map(|(_, value)| *value)
        .ok_or_else(|| expect.to_owned())
}

fn secret(v: &str) -> Result<Secret, String> {
    Ok(Secret::new(v))
}

fn parse_url(v: &str) -> Result<Url, String> {
    match Url::parse(v) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Ok(url),
        Ok(_) => Err(
            "expected an http:// or https:// URL with a host, e.g. `http://127.0.0.1:8317`"
                .to_owned(),
        ),
        Err(e) => Err(format!("not a URL ({e}); e.g. `http://127.0.0.1:8317`")),
    }
}

/// API versions media-gen puts into request paths itself.
const API_VERSIONS: [&str; 2] = ["v1", "v1beta"];

/// A provider's base URL. Request paths carry the API version (`v1/…`,
/// `v1beta/…`), so a base that ends in one — as OpenAI clients are set up,
/// `http://127.0.0.1:8317/v1` — would ask for `/v1/v1/…` and get 404s that
/// look like a missing model. Such a base is used without the version, and
/// a note says so (logged at start, shown by `doctor` and `config`).
fn base_url(l: &Layers, key: &'static str, v: &str) -> Result<Url, String> {
    let mut url = parse_url(v)?;
    let path = url.path().trim_end_matches('/').to_owned();
    let Some(version) = API_VERSIONS
        .into_iter()
        .find(|ver| path.ends_with(&format!("/{ver}")))
    else {
        return Ok(url);
    };
    url.set_path(&path[..path.len() - version.len() - 1]);
    let root = url.shown();
    l.note(
        key,
        format!(
            "`{key}` = `{v}` ends in the API version `/{version}`, which media-gen adds itself: using `{root}`"
        ),
        root,
    );
    Ok(url)
}

#[expect(
    clippy::expect_used,
    reason = "only called with the URL constants above"
)]
fn constant_url(url: &'static str) -> Url {
    Url::parse(url).expect("constant URL parses")
}

/// The default output directory: `$XDG_DATA_HOME/media-gen/generated`, else
/// `~/.local/share/media-gen/generated`. Never the working directory: desktop
/// MCP hosts start servers in `/`.
pub fn default_output_dir(get: &dyn Fn(&str) -> Option<String>) -> Result<PathBuf, ConfigError> {
    let data_home = get("XDG_DATA_HOME")
        .filter(|v| Path::new(v).is_absolute())
        .map(PathBuf::from)
        .or_else(|| {
            get("HOME")
                .filter(|h| !h.is_empty())
                .map(|h| PathBuf::from(h).join(".local/share"))
        })
        .ok_or(ConfigError::NoDataDir)?;
    Ok(data_home.join("media-gen").join("generated"))
}

/// The config file to read when none is named: `$XDG_CONFIG_HOME/media-gen/config.toml`
/// (or `~/.config/…`) if it exists.
pub fn default_config_file(get: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    config_file_path(get).filter(|path| path.is_file())
}

/// Where the config file is looked for when none is named.
fn config_file_path(get: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let base = get("XDG_CONFIG_HOME")
        .filter(|v| Path::new(v).is_absolute())
        .map(PathBuf::from)
        .or_else(|| get("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("media-gen").join("config.toml"))
}

/// `Host` values accepted when none are configured: loopback names, plus the
/// bound address itself; any host when bound to every interface (then the
/// bearer token, not the Host header, is what protects the server).
fn default_allowed_hosts(bind: IpAddr) -> Vec<String> {
    if bind.is_unspecified() {
        return Vec::new();
    }
    let mut hosts: Vec<String> = ["localhost", "127.0.0.1", "::1"]
        .map(str::to_owned)
        .to_vec();
    let own = bind.to_string();
    if !hosts.contains(&own) {
        hosts.push(own);
    }
    hosts
}

/// `1234`, `500K`, `500M`, `10G`, `1T` (powers of 1024; a trailing `B`/`iB` is fine).
fn parse_bytes(s: &str) -> Option<u64> {
    let t = s.trim().to_ascii_uppercase();
    let t = t.trim_end_matches("IB").trim_end_matches('B');
    let (num, mult) = match t.chars().last()? {
        'K' => (&t[..t.len() - 1], 1u64 << 10),
        'M' => (&t[..t.len() - 1], 1 << 20),
        'G' => (&t[..t.len() - 1], 1 << 30),
        'T' => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    num.trim().parse::<u64>().ok()?.checked_mul(mult)
}

#[cfg(test)]
mod tests;
