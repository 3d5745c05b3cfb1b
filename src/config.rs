//! Configuration: built-in defaults < TOML file < `MCP_*` environment < flags,
//! merged as [`RawConfig`] layers and validated once into [`Settings`].
//!
//! Every raw value remembers where it came from ([`Origin`]) so that a bad value
//! stops start-up with a message naming the setting, the value and its source.
//! The rest of the program only ever sees [`Settings`], whose fields are already
//! parsed (URLs, durations, directories that exist and are writable).

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use reqwest::Url;
use serde::Deserialize;

use crate::backend::BackendKind;
use crate::domain;

/// Where a raw value came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    File(PathBuf),
    Env(&'static str),
    Flag(&'static str),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(p) => write!(f, "config file `{}`", p.display()),
            Self::Env(v) => write!(f, "environment variable `{v}`"),
            Self::Flag(flag) => write!(f, "flag `{flag}`"),
        }
    }
}

/// A raw value and its origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sourced<T> {
    pub value: T,
    pub origin: Origin,
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

impl FromStr for PreviewMode {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s.trim().to_ascii_lowercase().as_str() {
            "full" => Ok(Self::Full),
            "preview" => Ok(Self::Preview),
            "none" | "off" => Ok(Self::None),
            _ => Err(()),
        }
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

impl FromStr for Transport {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s.trim().to_ascii_lowercase().as_str() {
            "stdio" => Ok(Self::Stdio),
            "http" | "streamable-http" => Ok(Self::Http),
            "sse" => Ok(Self::Sse),
            "dual" => Ok(Self::Dual),
            _ => Err(()),
        }
    }
}

/// One configuration layer, all fields optional. The TOML file deserializes
/// into [`FileConfig`] and is converted; environment and flags fill it directly.
#[derive(Debug, Clone, Default)]
pub struct RawConfig {
    pub image_backend: Option<Sourced<String>>,
    pub cliproxy_url: Option<Sourced<String>>,
    pub cliproxy_api_key: Option<Sourced<String>>,
    pub gemini_url: Option<Sourced<String>>,
    pub gemini_api_key: Option<Sourced<String>>,
    pub output_dir: Option<Sourced<PathBuf>>,
    pub default_model: Option<Sourced<String>>,
    pub request_timeout: Option<Sourced<String>>,
    pub http_host: Option<Sourced<String>>,
    pub http_port: Option<Sourced<String>>,
    pub http_token: Option<Sourced<String>>,
    pub video_backend: Option<Sourced<String>>,
    pub input_roots: Option<Sourced<Vec<PathBuf>>>,
    pub batch_concurrency: Option<Sourced<String>>,
    pub preview: Option<Sourced<String>>,
    pub transport: Option<Sourced<String>>,
    pub cleanup_max_age_days: Option<Sourced<String>>,
    pub cleanup_max_total_bytes: Option<Sourced<String>>,
    pub http_allowed_hosts: Option<Sourced<String>>,
    pub http_allowed_origins: Option<Sourced<String>>,
    pub http_max_body_bytes: Option<Sourced<String>>,
    pub http_max_sessions: Option<Sourced<String>>,
    pub http_shutdown_grace: Option<Sourced<String>>,
}

macro_rules! merge_fields {
    ($low:ident, $high:ident, $($f:ident),*) => {
        RawConfig { $($f: $high.$f.or($low.$f)),* }
    };
}

impl RawConfig {
    /// Field-wise: a value set in `higher` wins.
    pub fn merge(self, higher: RawConfig) -> RawConfig {
        let low = self;
        merge_fields!(
            low,
            higher,
            image_backend,
            cliproxy_url,
            cliproxy_api_key,
            gemini_url,
            gemini_api_key,
            output_dir,
            default_model,
            request_timeout,
            http_host,
            http_port,
            http_token,
            video_backend,
            input_roots,
            batch_concurrency,
            preview,
            transport,
            cleanup_max_age_days,
            cleanup_max_total_bytes,
            http_allowed_hosts,
            http_allowed_origins,
            http_max_body_bytes,
            http_max_sessions,
            http_shutdown_grace
        )
    }

    /// The `MCP_*` variables (and `GEMINI_API_KEY`), read through `get` so tests
    /// need not touch the process environment. Empty values count as unset.
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> RawConfig {
        let var = |name: &'static str| {
            get(name)
                .filter(|v| !v.trim().is_empty())
                .map(|value| Sourced {
                    value,
                    origin: Origin::Env(name),
                })
        };
        RawConfig {
            image_backend: var("MCP_IMAGE_BACKEND"),
            cliproxy_url: var("MCP_CLIPROXY_URL"),
            cliproxy_api_key: var("MCP_CLIPROXY_API_KEY"),
            gemini_url: var("MCP_GEMINI_URL"),
            gemini_api_key: var("MCP_GEMINI_API_KEY").or_else(|| var("GEMINI_API_KEY")),
            output_dir: var("MCP_OUTPUT_DIR").map(|s| Sourced {
                value: PathBuf::from(s.value),
                origin: s.origin,
            }),
            default_model: var("MCP_DEFAULT_MODEL"),
            request_timeout: var("MCP_REQUEST_TIMEOUT"),
            http_host: var("MCP_SSE_HOST"),
            http_port: var("MCP_SSE_PORT"),
            http_token: var("MCP_HTTP_TOKEN"),
            video_backend: var("MCP_VIDEO_BACKEND"),
            input_roots: var("MCP_INPUT_ROOTS").map(|s| Sourced {
                value: std::env::split_paths(&s.value).collect(),
                origin: s.origin,
            }),
            batch_concurrency: var("MCP_BATCH_CONCURRENCY"),
            preview: var("MCP_PREVIEW"),
            transport: var("MCP_TRANSPORT"),
            cleanup_max_age_days: var("MCP_CLEANUP_MAX_AGE_DAYS"),
            cleanup_max_total_bytes: var("MCP_CLEANUP_MAX_TOTAL_BYTES"),
            http_allowed_hosts: var("MCP_HTTP_ALLOWED_HOSTS"),
            http_allowed_origins: var("MCP_HTTP_ALLOWED_ORIGINS"),
            http_max_body_bytes: var("MCP_HTTP_MAX_BODY_BYTES"),
            http_max_sessions: var("MCP_HTTP_MAX_SESSIONS"),
            http_shutdown_grace: var("MCP_HTTP_SHUTDOWN_GRACE"),
        }
    }

    /// Reads a TOML file. Unknown keys are an error (a typo should not be ignored).
    pub fn from_file(path: &Path) -> Result<RawConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
            path: path.to_owned(),
            source,
        })?;
        let file: FileConfig = toml::from_str(&text).map_err(|e| ConfigError::ParseFile {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        Ok(file.into_raw(path))
    }
}

/// The TOML file's shape. Keys are the setting names in the README's table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    image_backend: Option<String>,
    cliproxy_url: Option<String>,
    cliproxy_api_key: Option<String>,
    gemini_url: Option<String>,
    gemini_api_key: Option<String>,
    output_dir: Option<PathBuf>,
    default_model: Option<String>,
    request_timeout: Option<u64>,
    http_host: Option<String>,
    http_port: Option<u16>,
    http_token: Option<String>,
    video_backend: Option<String>,
    input_roots: Option<Vec<PathBuf>>,
    batch_concurrency: Option<u64>,
    preview: Option<String>,
    transport: Option<String>,
    cleanup_max_age_days: Option<u64>,
    /// Bytes, or with a unit: `500M`, `10G`.
    cleanup_max_total_bytes: Option<toml::Value>,
    http_allowed_hosts: Option<Vec<String>>,
    http_allowed_origins: Option<Vec<String>>,
    /// Bytes, or with a unit: `16M`.
    http_max_body_bytes: Option<toml::Value>,
    http_max_sessions: Option<u64>,
    http_shutdown_grace: Option<u64>,
}

impl FileConfig {
    fn into_raw(self, path: &Path) -> RawConfig {
        let origin = || Origin::File(path.to_owned());
        let s = |v: Option<String>| {
            v.map(|value| Sourced {
                value,
                origin: origin(),
            })
        };
        let n = |v: Option<u64>| {
            v.map(|value| Sourced {
                value: value.to_string(),
                origin: origin(),
            })
        };
        // Relative paths in the file are relative to the file, not the cwd.
        let base = path.parent().unwrap_or(Path::new(""));
        RawConfig {
            image_backend: s(self.image_backend),
            cliproxy_url: s(self.cliproxy_url),
            cliproxy_api_key: s(self.cliproxy_api_key),
            gemini_url: s(self.gemini_url),
            gemini_api_key: s(self.gemini_api_key),
            output_dir: self.output_dir.map(|p| Sourced {
                value: base.join(p),
                origin: origin(),
            }),
            default_model: s(self.default_model),
            request_timeout: n(self.request_timeout),
            http_host: s(self.http_host),
            http_port: n(self.http_port.map(u64::from)),
            http_token: s(self.http_token),
            video_backend: s(self.video_backend),
            input_roots: self.input_roots.map(|v| Sourced {
                value: v.into_iter().map(|p| base.join(p)).collect(),
                origin: origin(),
            }),
            batch_concurrency: n(self.batch_concurrency),
            preview: s(self.preview),
            transport: s(self.transport),
            cleanup_max_age_days: n(self.cleanup_max_age_days),
            cleanup_max_total_bytes: self.cleanup_max_total_bytes.map(|v| Sourced {
                value: match v {
                    toml::Value::String(s) => s,
                    other => other.to_string(),
                },
                origin: origin(),
            }),
            http_allowed_hosts: s(self.http_allowed_hosts.map(|v| v.join(","))),
            http_allowed_origins: s(self.http_allowed_origins.map(|v| v.join(","))),
            http_max_body_bytes: self.http_max_body_bytes.map(|v| Sourced {
                value: match v {
                    toml::Value::String(s) => s,
                    other => other.to_string(),
                },
                origin: origin(),
            }),
            http_max_sessions: n(self.http_max_sessions),
            http_shutdown_grace: n(self.http_shutdown_grace),
        }
    }
}

/// The video provider (used by the video tools).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoBackend {
    Gemini,
    CliProxy,
}

/// Validated settings. Built once at start; nothing downstream re-validates.
#[derive(Clone)]
pub struct Settings {
    /// Which wire format images are requested in.
    pub image_backend: BackendKind,
    /// CLIProxyAPI base URL (OpenAI-compatible image route).
    pub cliproxy_url: Url,
    pub cliproxy_api_key: Option<String>,
    /// Gemini API base URL (native `generateContent`, Veo).
    pub gemini_url: Url,
    pub gemini_api_key: Option<String>,
    /// Where media, sidecars and the catalog live. Exists and is writable.
    pub output_dir: PathBuf,
    pub default_model: &'static str,
    /// Bound on one backend call including its retries.
    pub request_timeout: Duration,
    pub http_host: IpAddr,
    pub http_port: u16,
    pub http_token: Option<String>,
    pub video_backend: VideoBackend,
    /// Extra directories edit tools may read from over HTTP.
    pub input_roots: Vec<PathBuf>,
    /// How many prompts of one batch run at once.
    pub batch_concurrency: usize,
    pub preview: PreviewMode,
    pub transport: Transport,
    /// Automatic clean-up: delete files older than this (off when `None`).
    pub cleanup_max_age: Option<Duration>,
    /// Automatic clean-up: keep the library under this many bytes, oldest first.
    pub cleanup_max_total_bytes: Option<u64>,
    /// `Host` values the HTTP server accepts (names or `name:port`). Empty:
    /// any host (only when bound to an unspecified address).
    pub http_allowed_hosts: Vec<String>,
    /// Browser origins the HTTP server accepts (`scheme://host[:port|:*]`);
    /// requests without `Origin` are not browsers and pass.
    pub http_allowed_origins: Vec<String>,
    /// Largest request body the HTTP server reads.
    pub http_max_body_bytes: usize,
    /// Most concurrent HTTP sessions (Streamable HTTP + legacy SSE).
    pub http_max_sessions: usize,
    /// How long in-flight HTTP work may finish after a shutdown signal.
    pub http_shutdown_grace: Duration,
    /// Serve the MCP conformance suite's fixture tools, resources, prompts and
    /// tasks beside media-gen's own (`serve --conformance-fixture`; a test aid).
    pub conformance_fixture: bool,
}

impl fmt::Debug for Settings {
    /// Keys and tokens are never printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redact = |v: &Option<String>| v.as_ref().map(|_| "<redacted>");
        f.debug_struct("Settings")
            .field("image_backend", &self.image_backend)
            .field("cliproxy_url", &self.cliproxy_url.as_str())
            .field("cliproxy_api_key", &redact(&self.cliproxy_api_key))
            .field("gemini_url", &self.gemini_url.as_str())
            .field("gemini_api_key", &redact(&self.gemini_api_key))
            .field("output_dir", &self.output_dir)
            .field("default_model", &self.default_model)
            .field("request_timeout", &self.request_timeout)
            .field("http_host", &self.http_host)
            .field("http_port", &self.http_port)
            .field("http_token", &redact(&self.http_token))
            .field("video_backend", &self.video_backend)
            .field("input_roots", &self.input_roots)
            .field("batch_concurrency", &self.batch_concurrency)
            .field("preview", &self.preview)
            .field("transport", &self.transport)
            .field("cleanup_max_age", &self.cleanup_max_age)
            .field("cleanup_max_total_bytes", &self.cleanup_max_total_bytes)
            .field("http_allowed_hosts", &self.http_allowed_hosts)
            .field("http_allowed_origins", &self.http_allowed_origins)
            .field("http_max_body_bytes", &self.http_max_body_bytes)
            .field("http_max_sessions", &self.http_max_sessions)
            .field("http_shutdown_grace", &self.http_shutdown_grace)
            .field("conformance_fixture", &self.conformance_fixture)
            .finish()
    }
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

fn invalid<T>(
    setting: &'static str,
    value: &str,
    origin: &Origin,
    reason: impl Into<String>,
) -> Result<T, ConfigError> {
    Err(ConfigError::Invalid {
        setting,
        value: value.to_owned(),
        origin: origin.to_string(),
        reason: reason.into(),
    })
}

fn parse_url(setting: &'static str, raw: &Sourced<String>) -> Result<Url, ConfigError> {
    let v = raw.value.trim();
    match Url::parse(v) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Ok(url),
        Ok(_) => invalid(
            setting,
            v,
            &raw.origin,
            "expected an http:// or https:// URL with a host, e.g. `http://127.0.0.1:8317`",
        ),
        Err(e) => invalid(
            setting,
            v,
            &raw.origin,
            format!("not a URL ({e}); e.g. `http://127.0.0.1:8317`"),
        ),
    }
}

#[expect(
    clippy::expect_used,
    reason = "only called with the URL constants above"
)]
fn constant_url(url: &'static str) -> Url {
    Url::parse(url).expect("constant URL parses")
}

fn parse_num<T: FromStr>(
    setting: &'static str,
    raw: &Sourced<String>,
    ok: impl Fn(&T) -> bool,
    expect: &str,
) -> Result<T, ConfigError> {
    match raw.value.trim().parse::<T>() {
        Ok(n) if ok(&n) => Ok(n),
        _ => invalid(setting, &raw.value, &raw.origin, expect),
    }
}

/// The default output directory: `$XDG_DATA_HOME/media-gen/generated`, else
/// `~/.local/share/media-gen/generated`. Never the working directory: desktop
/// MCP hosts start servers in `/`.
pub fn default_output_dir(get: &impl Fn(&str) -> Option<String>) -> Result<PathBuf, ConfigError> {
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
pub fn default_config_file(get: &impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let base = get("XDG_CONFIG_HOME")
        .filter(|v| Path::new(v).is_absolute())
        .map(PathBuf::from)
        .or_else(|| get("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    let path = base.join("media-gen").join("config.toml");
    path.is_file().then_some(path)
}

/// Checks that `dir` exists (creating it) and that a file can be written there.
fn ensure_writable_dir(dir: &Path, origin: Option<&Origin>) -> Result<(), ConfigError> {
    let fail = |reason: String| {
        let origin = origin.map_or_else(|| "default".to_owned(), ToString::to_string);
        Err(ConfigError::Invalid {
            setting: "output_dir",
            value: dir.display().to_string(),
            origin,
            reason,
        })
    };
    if let Err(e) = std::fs::create_dir_all(dir) {
        return fail(format!(
            "cannot create the directory ({e}); set `MCP_OUTPUT_DIR` to a writable directory"
        ));
    }
    match tempfile::Builder::new()
        .prefix(".tmp-probe-")
        .tempfile_in(dir)
    {
        Ok(_) => Ok(()),
        Err(e) => fail(format!(
            "directory is not writable ({e}); set `MCP_OUTPUT_DIR` to a writable directory"
        )),
    }
}

impl Settings {
    /// Validates merged raw configuration. `get` reads the environment (for the
    /// default directories only).
    pub fn from_raw(
        raw: RawConfig,
        get: &impl Fn(&str) -> Option<String>,
    ) -> Result<Settings, ConfigError> {
        let image_backend = match &raw.image_backend {
            None => BackendKind::CliProxy,
            Some(s) => match s.value.trim().to_ascii_lowercase().as_str() {
                "cliproxy" | "openai" => BackendKind::CliProxy,
                "gemini" => BackendKind::Gemini,
                _ => {
                    return invalid(
                        "image_backend",
                        &s.value,
                        &s.origin,
                        "use `cliproxy` or `gemini`",
                    );
                }
            },
        };
        let cliproxy_url = match &raw.cliproxy_url {
            Some(s) => parse_url("cliproxy_url", s)?,
            None => constant_url("http://127.0.0.1:8317"),
        };
        let gemini_url = match &raw.gemini_url {
            Some(s) => parse_url("gemini_url", s)?,
            None => constant_url("https://generativelanguage.googleapis.com"),
        };
        let default_model = match &raw.default_model {
            None => domain::DEFAULT_IMAGE_MODEL,
            Some(s) => match domain::image_model(s.value.trim()) {
                Some(m) => m.id,
                None => {
                    return invalid(
                        "default_model",
                        &s.value,
                        &s.origin,
                        format!("use one of: {}", domain::image_model_ids().join(", ")),
                    );
                }
            },
        };
        let request_timeout = match &raw.request_timeout {
            None => Duration::from_secs(120),
            Some(s) => Duration::from_secs(parse_num::<u64>(
                "request_timeout",
                s,
                |n| (1..=3600).contains(n),
                "expected whole seconds between 1 and 3600",
            )?),
        };
        let http_host = match &raw.http_host {
            None => IpAddr::from([127, 0, 0, 1]),
            Some(s) if s.value.trim() == "localhost" => IpAddr::from([127, 0, 0, 1]),
            Some(s) => parse_num::<IpAddr>(
                "http_host",
                s,
                |_| true,
                "expected an IP address such as `127.0.0.1` or `0.0.0.0`",
            )?,
        };
        let http_port = match &raw.http_port {
            None => 8318,
            Some(s) => parse_num::<u16>("http_port", s, |_| true, "expected a port 0–65535")?,
        };
        let video_backend = match &raw.video_backend {
            None => VideoBackend::Gemini,
            Some(s) => match s.value.trim().to_ascii_lowercase().as_str() {
                "gemini" => VideoBackend::Gemini,
                "cliproxy" => VideoBackend::CliProxy,
                _ => {
                    return invalid(
                        "video_backend",
                        &s.value,
                        &s.origin,
                        "use `gemini` or `cliproxy`",
                    );
                }
            },
        };
        let batch_concurrency = match &raw.batch_concurrency {
            None => 4,
            Some(s) => parse_num::<usize>(
                "batch_concurrency",
                s,
                |n| (1..=64).contains(n),
                "expected a number between 1 and 64",
            )?,
        };
        let preview = match &raw.preview {
            None => PreviewMode::default(),
            Some(s) => match s.value.parse() {
                Ok(p) => p,
                Err(()) => {
                    return invalid(
                        "preview",
                        &s.value,
                        &s.origin,
                        "use `full`, `preview` or `none`",
                    );
                }
            },
        };
        let transport = match &raw.transport {
            None => Transport::default(),
            Some(s) => match s.value.parse() {
                Ok(t) => t,
                Err(()) => {
                    return invalid(
                        "transport",
                        &s.value,
                        &s.origin,
                        "use `stdio`, `http`, `sse` or `dual`",
                    );
                }
            },
        };
        let cleanup_max_age = match &raw.cleanup_max_age_days {
            None => None,
            Some(s) => Some(Duration::from_secs(
                86_400
                    * parse_num::<u64>(
                        "cleanup_max_age_days",
                        s,
                        |n| (1..=36_500).contains(n),
                        "expected whole days, 1 or more",
                    )?,
            )),
        };
        let cleanup_max_total_bytes = match &raw.cleanup_max_total_bytes {
            None => None,
            Some(s) => match parse_bytes(&s.value) {
                Some(n) if n > 0 => Some(n),
                _ => {
                    return invalid(
                        "cleanup_max_total_bytes",
                        &s.value,
                        &s.origin,
                        "expected a size such as `5000000000`, `500M` or `10G`",
                    );
                }
            },
        };
        let (output_dir, dir_origin) = match &raw.output_dir {
            Some(s) if s.value.as_os_str().is_empty() => {
                return invalid("output_dir", "", &s.origin, "must not be empty");
            }
            Some(s) if s.value.is_relative() => match std::env::current_dir() {
                Ok(cwd) => (cwd.join(&s.value), Some(&s.origin)),
                Err(_) => {
                    return invalid(
                        "output_dir",
                        &s.value.display().to_string(),
                        &s.origin,
                        "relative path and no working directory; use an absolute path",
                    );
                }
            },
            Some(s) => (s.value.clone(), Some(&s.origin)),
            None => (default_output_dir(get)?, None),
        };
        ensure_writable_dir(&output_dir, dir_origin)?;
        let list = |v: &Option<Sourced<String>>| -> Vec<String> {
            v.as_ref()
                .map(|s| {
                    s.value
                        .split(',')
                        .map(|x| x.trim().to_owned())
                        .filter(|x| !x.is_empty())
                        .collect()
                })
                .unwrap_or_default()
        };
        let http_allowed_hosts = match &raw.http_allowed_hosts {
            Some(_) => list(&raw.http_allowed_hosts),
            None => default_allowed_hosts(http_host),
        };
        let http_allowed_origins = match &raw.http_allowed_origins {
            Some(s) => {
                let origins = list(&raw.http_allowed_origins);
                if let Some(bad) = origins.iter().find(|o| *o != "null" && !o.contains("://")) {
                    return invalid(
                        "http_allowed_origins",
                        bad,
                        &s.origin,
                        "origins need a scheme, e.g. `https://app.example.com` or `http://localhost:*`",
                    );
                }
                origins
            }
            None => ["http://localhost:*", "http://127.0.0.1:*", "http://[::1]:*"]
                .map(str::to_owned)
                .to_vec(),
        };
        let http_max_body_bytes = match &raw.http_max_body_bytes {
            None => 16 << 20,
            Some(s) => match parse_bytes(&s.value).and_then(|n| usize::try_from(n).ok()) {
                Some(n) if n >= 1024 => n,
                _ => {
                    return invalid(
                        "http_max_body_bytes",
                        &s.value,
                        &s.origin,
                        "expected a size of at least 1K, such as `16M`",
                    );
                }
            },
        };
        let http_max_sessions = match &raw.http_max_sessions {
            None => 1024,
            Some(s) => parse_num::<usize>(
                "http_max_sessions",
                s,
                |n| (1..=1_000_000).contains(n),
                "expected a number of sessions, 1 or more",
            )?,
        };
        let http_shutdown_grace = match &raw.http_shutdown_grace {
            None => Duration::from_secs(10),
            Some(s) => Duration::from_secs(parse_num::<u64>(
                "http_shutdown_grace",
                s,
                |n| *n <= 3600,
                "expected whole seconds, 0 to 3600",
            )?),
        };
        let secret = |v: Option<Sourced<String>>| v.map(|s| s.value.trim().to_owned());
        Ok(Settings {
            image_backend,
            cliproxy_url,
            cliproxy_api_key: secret(raw.cliproxy_api_key)
                .or_else(|| Some("ccs-internal-managed".to_owned())),
            gemini_url,
            gemini_api_key: secret(raw.gemini_api_key),
            output_dir,
            default_model,
            request_timeout,
            http_host,
            http_port,
            http_token: secret(raw.http_token),
            video_backend,
            input_roots: raw.input_roots.map(|s| s.value).unwrap_or_default(),
            batch_concurrency,
            preview,
            transport,
            cleanup_max_age,
            cleanup_max_total_bytes,
            http_allowed_hosts,
            http_allowed_origins,
            http_max_body_bytes,
            http_max_sessions,
            http_shutdown_grace,
            conformance_fixture: false,
        })
    }
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
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k: &str| map.get(k).cloned()
    }

    fn flag(value: &str, name: &'static str) -> Option<Sourced<String>> {
        Some(Sourced {
            value: value.to_owned(),
            origin: Origin::Flag(name),
        })
    }

    #[test]
    fn precedence_defaults_file_env_flags() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.toml");
        std::fs::write(
            &file,
            "cliproxy_url = \"http://file:1\"\nrequest_timeout = 30\nbatch_concurrency = 2\noutput_dir = \"out\"\n",
        )
        .unwrap();
        let get = env(&[
            ("MCP_CLIPROXY_URL", "http://env:2"),
            ("MCP_REQUEST_TIMEOUT", "45"),
            ("HOME", dir.path().to_str().unwrap()),
        ]);
        let flags = RawConfig {
            cliproxy_url: flag("http://flag:3", "--cliproxy-url"),
            ..RawConfig::default()
        };
        let raw = RawConfig::from_file(&file)
            .unwrap()
            .merge(RawConfig::from_env(&get))
            .merge(flags);
        let s = Settings::from_raw(raw, &get).unwrap();
        assert_eq!(s.cliproxy_url.as_str(), "http://flag:3/"); // flag beats env
        assert_eq!(s.request_timeout, Duration::from_secs(45)); // env beats file
        assert_eq!(s.batch_concurrency, 2); // file beats default
        assert_eq!(s.output_dir, dir.path().join("out")); // relative to the file
        assert_eq!(s.http_port, 8318); // default
        assert_eq!(s.default_model, "gemini-3-pro-image-preview");
        assert_eq!(s.cliproxy_api_key.as_deref(), Some("ccs-internal-managed"));
    }

    #[test]
    fn default_output_dir_is_under_xdg_data_home_never_cwd() {
        let get = env(&[("XDG_DATA_HOME", "/data"), ("HOME", "/home/u")]);
        assert_eq!(
            default_output_dir(&get).unwrap(),
            PathBuf::from("/data/media-gen/generated")
        );
        let get = env(&[("HOME", "/home/u")]);
        assert_eq!(
            default_output_dir(&get).unwrap(),
            PathBuf::from("/home/u/.local/share/media-gen/generated")
        );
        let get = env(&[("XDG_DATA_HOME", "relative"), ("HOME", "/home/u")]);
        assert_eq!(
            default_output_dir(&get).unwrap(),
            PathBuf::from("/home/u/.local/share/media-gen/generated")
        );
        assert!(matches!(
            default_output_dir(&env(&[])),
            Err(ConfigError::NoDataDir)
        ));
    }

    #[test]
    fn bad_values_name_setting_value_and_origin() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().to_str().unwrap().to_owned();
        let cases: &[(&str, &str, &str)] = &[
            ("MCP_CLIPROXY_URL", "not a url", "cliproxy_url"),
            ("MCP_CLIPROXY_URL", "ftp://x", "cliproxy_url"),
            ("MCP_REQUEST_TIMEOUT", "abc", "request_timeout"),
            ("MCP_REQUEST_TIMEOUT", "0", "request_timeout"),
            ("MCP_SSE_PORT", "99999", "http_port"),
            ("MCP_TRANSPORT", "carrier-pigeon", "transport"),
            ("MCP_DEFAULT_MODEL", "dall-e-3", "default_model"),
            ("MCP_PREVIEW", "huge", "preview"),
            ("MCP_VIDEO_BACKEND", "sora", "video_backend"),
        ];
        for (var, value, setting) in cases {
            let get = env(&[(var, value), ("MCP_OUTPUT_DIR", &out)]);
            let err = Settings::from_raw(RawConfig::from_env(&get), &get)
                .err()
                .unwrap_or_else(|| panic!("{var}={value} accepted"));
            let msg = err.to_string();
            assert!(msg.contains(&format!("`{setting}`")), "{msg}");
            assert!(msg.contains(&format!("`{value}`")), "{msg}");
            assert!(msg.contains(var), "{msg}");
            assert!(!msg.contains('\n'), "{msg}");
        }
    }

    #[test]
    fn cleanup_settings() {
        assert_eq!(parse_bytes("10G"), Some(10 << 30));
        assert_eq!(parse_bytes("500MB"), Some(500 << 20));
        assert_eq!(parse_bytes("1234"), Some(1234));
        assert_eq!(parse_bytes("lots"), None);
        let dir = tempfile::tempdir().unwrap();
        let get = env(&[
            ("MCP_OUTPUT_DIR", dir.path().to_str().unwrap()),
            ("MCP_CLEANUP_MAX_AGE_DAYS", "30"),
            ("MCP_CLEANUP_MAX_TOTAL_BYTES", "2G"),
        ]);
        let s = Settings::from_raw(RawConfig::from_env(&get), &get).unwrap();
        assert_eq!(s.cleanup_max_age, Some(Duration::from_secs(30 * 86_400)));
        assert_eq!(s.cleanup_max_total_bytes, Some(2 << 30));
        let get = env(&[("MCP_OUTPUT_DIR", dir.path().to_str().unwrap())]);
        let s = Settings::from_raw(RawConfig::from_env(&get), &get).unwrap();
        assert_eq!(
            (s.cleanup_max_age, s.cleanup_max_total_bytes),
            (None, None),
            "off by default"
        );
    }

    #[test]
    fn http_settings() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().to_str().unwrap();
        let settings = |pairs: &[(&str, &str)]| {
            let mut all = vec![("MCP_OUTPUT_DIR", out)];
            all.extend_from_slice(pairs);
            let get = env(&all);
            Settings::from_raw(RawConfig::from_env(&get), &get)
        };
        let s = settings(&[]).unwrap();
        assert_eq!(s.http_allowed_hosts, ["localhost", "127.0.0.1", "::1"]);
        assert_eq!(s.http_allowed_origins.len(), 3);
        assert_eq!(s.http_max_body_bytes, 16 << 20);
        assert_eq!(s.http_max_sessions, 1024);
        assert_eq!(s.http_shutdown_grace, Duration::from_secs(10));
        // Bound to one address: that address is a valid Host too.
        let s = settings(&[("MCP_SSE_HOST", "10.1.2.3")]).unwrap();
        assert!(s.http_allowed_hosts.contains(&"10.1.2.3".to_owned()));
        // Bound to every interface: names cannot be known; the token protects.
        let s = settings(&[("MCP_SSE_HOST", "0.0.0.0")]).unwrap();
        assert!(s.http_allowed_hosts.is_empty());
        let s = settings(&[
            (
                "MCP_HTTP_ALLOWED_HOSTS",
                "media.example.com, media.example.com:8443",
            ),
            ("MCP_HTTP_ALLOWED_ORIGINS", "https://app.example.com,null"),
            ("MCP_HTTP_MAX_BODY_BYTES", "1M"),
            ("MCP_HTTP_MAX_SESSIONS", "5"),
            ("MCP_HTTP_SHUTDOWN_GRACE", "0"),
        ])
        .unwrap();
        assert_eq!(
            s.http_allowed_hosts,
            ["media.example.com", "media.example.com:8443"]
        );
        assert_eq!(s.http_allowed_origins, ["https://app.example.com", "null"]);
        assert_eq!((s.http_max_body_bytes, s.http_max_sessions), (1 << 20, 5));
        assert_eq!(s.http_shutdown_grace, Duration::ZERO);
        for (key, bad) in [
            ("MCP_HTTP_ALLOWED_ORIGINS", "app.example.com"),
            ("MCP_HTTP_MAX_BODY_BYTES", "10"),
            ("MCP_HTTP_MAX_SESSIONS", "0"),
            ("MCP_HTTP_SHUTDOWN_GRACE", "soon"),
        ] {
            let e = settings(&[(key, bad)]).unwrap_err().to_string();
            assert!(e.contains(bad) && e.contains(key), "{e}");
        }
    }

    #[test]
    fn unwritable_output_dir_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        // A regular file where a directory is expected cannot be created as a dir.
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, b"x").unwrap();
        let target = blocker.join("sub");
        let get = env(&[("MCP_OUTPUT_DIR", target.to_str().unwrap())]);
        let err = Settings::from_raw(RawConfig::from_env(&get), &get).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("`output_dir`"), "{msg}");
        assert!(msg.contains("MCP_OUTPUT_DIR"), "{msg}");
    }

    #[test]
    fn unknown_file_keys_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "cliproxy_ulr = \"http://x\"\n").unwrap();
        let err = RawConfig::from_file(&file).unwrap_err().to_string();
        assert!(err.contains("cliproxy_ulr"), "{err}");
        assert!(!err.contains('\n'), "{err}");
    }

    #[test]
    fn debug_redacts_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let get = env(&[
            ("MCP_OUTPUT_DIR", dir.path().to_str().unwrap()),
            ("MCP_CLIPROXY_API_KEY", "sekrit-key"),
            ("MCP_HTTP_TOKEN", "sekrit-token"),
        ]);
        let s = Settings::from_raw(RawConfig::from_env(&get), &get).unwrap();
        let dbg = format!("{s:?}");
        assert!(!dbg.contains("sekrit"), "{dbg}");
    }
}
