//! The configuration layers (TOML file < environment < flags), merged with
//! `figment`, and typed access to the merged values that remembers where
//! each came from.
//!
//! Every layer is one figment provider whose name says where its values
//! came from (`config file `…``, `environment variable `MCP_X``, `flag
//! `--x``), so a bad value is reported with its origin by asking figment
//! which provider set it. Every typed read also records the value it
//! settled on (set or default, secrets redacted) and its [`Origin`]: that
//! record is the [`Provenance`] `media-gen config` prints and `media-gen
//! doctor` names origins from, so a new setting shows up there by being
//! read, with no list to keep.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider, Source};

use super::ConfigError;

/// Every setting: its key (TOML key, and the name in messages) and the
/// environment variables that set it, most specific first.
pub(super) const SETTINGS: &[(&str, &[&str])] = &[
    ("image_backend", &["MCP_IMAGE_BACKEND"]),
    ("cliproxy_url", &["MCP_CLIPROXY_URL"]),
    ("cliproxy_api_key", &["MCP_CLIPROXY_API_KEY"]),
    ("gemini_url", &["MCP_GEMINI_URL"]),
    ("gemini_api_key", &["MCP_GEMINI_API_KEY", "GEMINI_API_KEY"]),
    ("request_timeout", &["MCP_REQUEST_TIMEOUT"]),
    ("video_backend", &["MCP_VIDEO_BACKEND"]),
    ("output_dir", &["MCP_OUTPUT_DIR"]),
    ("cleanup_max_age_days", &["MCP_CLEANUP_MAX_AGE_DAYS"]),
    ("cleanup_max_total_bytes", &["MCP_CLEANUP_MAX_TOTAL_BYTES"]),
    ("default_model", &["MCP_DEFAULT_MODEL"]),
    ("fallback_model", &["MCP_FALLBACK_MODEL"]),
    ("batch_concurrency", &["MCP_BATCH_CONCURRENCY"]),
    ("generation_concurrency", &["MCP_GENERATION_CONCURRENCY"]),
    ("preview", &["MCP_PREVIEW"]),
    ("transport", &["MCP_TRANSPORT"]),
    ("http_host", &["MCP_SSE_HOST"]),
    ("http_port", &["MCP_SSE_PORT"]),
    ("http_token", &["MCP_HTTP_TOKEN"]),
    ("http_allowed_hosts", &["MCP_HTTP_ALLOWED_HOSTS"]),
    ("http_allowed_origins", &["MCP_HTTP_ALLOWED_ORIGINS"]),
    ("http_max_body_bytes", &["MCP_HTTP_MAX_BODY_BYTES"]),
    ("http_max_sessions", &["MCP_HTTP_MAX_SESSIONS"]),
    ("http_shutdown_grace", &["MCP_HTTP_SHUTDOWN_GRACE"]),
    ("http_max_connections", &["MCP_HTTP_MAX_CONNECTIONS"]),
    ("http_header_timeout", &["MCP_HTTP_HEADER_TIMEOUT"]),
    ("public_url", &["MCP_PUBLIC_URL"]),
    ("input_roots", &["MCP_INPUT_ROOTS"]),
    ("input_max_bytes", &["MCP_INPUT_MAX_BYTES"]),
    ("input_max_pixels", &["MCP_INPUT_MAX_PIXELS"]),
    ("mask_feather", &["MCP_MASK_FEATHER"]),
    ("outpaint_max_extend", &["MCP_OUTPAINT_MAX_EXTEND"]),
    ("default_video_model", &["MCP_DEFAULT_VIDEO_MODEL"]),
    ("video_poll_interval", &["MCP_VIDEO_POLL_INTERVAL"]),
    ("video_deadline", &["MCP_VIDEO_DEADLINE"]),
    ("job_lease", &["MCP_JOB_LEASE_SECONDS"]),
    ("storage_url", &["MCP_STORAGE_URL"]),
    ("storage_endpoint", &["MCP_STORAGE_ENDPOINT"]),
    ("storage_presign", &["MCP_STORAGE_PRESIGN"]),
    ("database_url", &["MCP_DATABASE_URL"]),
    ("budget_daily_usd", &["MCP_BUDGET_DAILY_USD"]),
    ("budget_monthly_usd", &["MCP_BUDGET_MONTHLY_USD"]),
    // A table (`[prices]`), only in the config file.
    ("prices", &[]),
    ("confirm_above_usd", &["MCP_CONFIRM_ABOVE_USD"]),
];

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Built in.
    Default,
    /// The TOML file at this path.
    File(PathBuf),
    /// This environment variable.
    Env(&'static str),
    /// This command-line flag.
    Flag(&'static str),
}

impl fmt::Display for Origin {
    /// As messages name it: `environment variable `MCP_X``.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Default => f.write_str("default"),
            Self::File(p) => write!(f, "config file `{}`", p.display()),
            Self::Env(var) => write!(f, "environment variable `{var}`"),
            Self::Flag(flag) => write!(f, "flag `{flag}`"),
        }
    }
}

/// How a setting's effective value is shown (`media-gen config`): in the
/// form it is written in, secrets as `<redacted>`.
pub(super) trait Shown {
    fn shown(&self) -> String;
}

macro_rules! shown_as_display {
    ($($t:ty),*) => {$(
        impl Shown for $t {
            fn shown(&self) -> String {
                self.to_string()
            }
        }
    )*};
}
shown_as_display!(
    u16,
    u32,
    u64,
    usize,
    f64,
    bool,
    &'static str,
    std::net::IpAddr
);

impl Shown for std::time::Duration {
    /// Whole days as `30d`, otherwise seconds (`120s`, `0.5s`).
    fn shown(&self) -> String {
        let secs = self.as_secs();
        match secs >= 86_400 && secs.is_multiple_of(86_400) && self.subsec_nanos() == 0 {
            true => format!("{}d", secs / 86_400),
            false => format!("{}s", self.as_secs_f64()),
        }
    }
}

impl Shown for reqwest::Url {
    /// Without the `/` a bare host gets.
    fn shown(&self) -> String {
        match (self.path(), self.query()) {
            ("/", None) => self.as_str().trim_end_matches('/').to_owned(),
            _ => self.as_str().to_owned(),
        }
    }
}

impl Shown for super::Secret {
    fn shown(&self) -> String {
        super::REDACTED.to_owned()
    }
}

impl Shown for Vec<String> {
    fn shown(&self) -> String {
        self.join(",")
    }
}

/// One setting as it ended up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingSource {
    /// The TOML key (and the name in messages).
    pub key: &'static str,
    /// The environment variables that set it, most specific first.
    pub env: &'static [&'static str],
    /// The effective value as text (secrets redacted); `None`: unset.
    pub value: Option<String>,
    pub origin: Origin,
}

/// A value that was accepted with a correction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigNote {
    pub setting: &'static str,
    pub origin: Origin,
    /// What was given and what is used instead.
    pub message: String,
    /// The value to write so that no correction is needed.
    pub value: String,
}

impl fmt::Display for ConfigNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (from {}); set it to `{}`",
            self.message, self.origin, self.value
        )
    }
}

/// Where every setting came from: the config file read, each setting's
/// effective value and origin (in the table's order), and the notes.
#[derive(Debug, Clone, Default)]
pub struct Provenance {
    /// The config file that was read.
    pub file: Option<PathBuf>,
    /// Where a config file is read from when none is named (whether or not
    /// one is there).
    pub default_file: Option<PathBuf>,
    pub settings: Vec<SettingSource>,
    pub notes: Vec<ConfigNote>,
}

impl Provenance {
    /// Where `key`'s value came from (`Default` for a key never read).
    pub fn origin(&self, key: &str) -> Origin {
        self.settings
            .iter()
            .find(|s| s.key == key)
            .map_or(Origin::Default, |s| s.origin.clone())
    }

    /// Records that `key` is now `value` from `origin` (a value replaced
    /// after loading, as `--emulator` replaces the backends' addresses).
    pub fn replace(&mut self, key: &str, value: Option<String>, origin: Origin) {
        if let Some(entry) = self.settings.iter_mut().find(|s| s.key == key) {
            entry.value = value;
            entry.origin = origin;
        }
    }

    /// How a user changes `key`, for a fix: the place it is set now, or,
    /// for a default, its environment variables.
    pub fn where_to_set(&self, key: &str) -> String {
        match self.origin(key) {
            Origin::File(p) => format!("`{key}` in `{}`", p.display()),
            Origin::Env(var) => format!("`{var}`"),
            Origin::Flag(flag) => format!("`{flag}`"),
            Origin::Default => match SETTINGS.iter().find(|(k, _)| *k == key) {
                Some((_, [first, others @ ..])) if !others.is_empty() => format!(
                    "`{first}` (or {})",
                    others
                        .iter()
                        .map(|v| format!("`{v}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                Some((_, [var, ..])) => format!("`{var}`"),
                _ => format!("`{key}`"),
            },
        }
    }
}

/// Where the values of a load come from.
pub struct Sources<'a> {
    /// The TOML file to read, if any (`--config`, `MCP_CONFIG`, or the
    /// default file when it exists).
    pub file: Option<PathBuf>,
    /// Reads an environment variable (a closure, so tests need not touch
    /// the process environment).
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// Command-line flags that were given: setting key, flag, value.
    pub flags: Vec<(&'static str, &'static str, String)>,
}

/// One layer: values and the name of where they came from.
struct Layer {
    metadata: Metadata,
    values: Dict,
}

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        self.metadata.clone()
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.values.clone()))
    }
}

fn layer(name: String, source: Option<Source>, values: Dict) -> Layer {
    let mut metadata = Metadata::named(name);
    metadata.source = source;
    Layer { metadata, values }
}

fn file_layer(path: &Path) -> Result<Layer, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
        path: path.to_owned(),
        source,
    })?;
    let values: Dict = toml::from_str(&text).map_err(|e| ConfigError::ParseFile {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    // A typo must not be ignored silently.
    if let Some(unknown) = values
        .keys()
        .find(|k| !SETTINGS.iter().any(|(key, _)| key == k))
    {
        return Err(ConfigError::ParseFile {
            path: path.to_owned(),
            message: format!(
                "unknown key `{unknown}`; the keys are: {}",
                SETTINGS
                    .iter()
                    .map(|(k, _)| *k)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
    }
    Ok(layer(
        format!("config file `{}`", path.display()),
        Some(Source::File(path.to_owned())),
        values,
    ))
}

/// The merged layers, read value by value; every read is recorded.
pub(super) struct Layers {
    figment: Figment,
    /// Each layer's origin, by the provider name figment reports.
    origins: HashMap<String, Origin>,
    file: Option<PathBuf>,
    read: RefCell<Vec<SettingSource>>,
    notes: RefCell<Vec<ConfigNote>>,
}

/// A set value and where it came from.
pub(super) struct Sourced<T> {
    pub value: T,
    pub origin: Origin,
}

impl Layers {
    pub fn load(sources: &Sources<'_>) -> Result<Self, ConfigError> {
        let mut figment = Figment::new();
        let mut origins = HashMap::new();
        let mut add = |figment: Figment, origin: Origin, layer: Layer| {
            origins.insert(layer.metadata.name.to_string(), origin);
            figment.merge(layer)
        };
        if let Some(path) = &sources.file {
            figment = add(figment, Origin::File(path.clone()), file_layer(path)?);
        }
        for (key, vars) in SETTINGS {
            // The first variable that is set (and not empty) wins.
            let set = vars.iter().find_map(|var| {
                (sources.env)(var)
                    .filter(|v| !v.trim().is_empty())
                    .map(|v| (var, v))
            });
            if let Some((var, value)) = set {
                let mut values = Dict::new();
                values.insert((*key).to_owned(), Value::from(value));
                let origin = Origin::Env(var);
                figment = add(
                    figment,
                    origin.clone(),
                    layer(origin.to_string(), None, values),
                );
            }
        }
        for (key, flag, value) in &sources.flags {
            let mut values = Dict::new();
            values.insert((*key).to_owned(), Value::from(value.clone()));
            let origin = Origin::Flag(flag);
            figment = add(
                figment,
                origin.clone(),
                layer(origin.to_string(), None, values),
            );
        }
        Ok(Self {
            figment,
            origins,
            file: sources.file.clone(),
            read: RefCell::new(Vec::new()),
            notes: RefCell::new(Vec::new()),
        })
    }

    /// Where the value of `key` came from.
    fn origin(&self, key: &str) -> Origin {
        self.figment
            .find_metadata(key)
            .and_then(|m| self.origins.get(m.name.as_ref()))
            .cloned()
            .unwrap_or(Origin::Default)
    }

    fn sourced<T>(&self, key: &str, value: T) -> Sourced<T> {
        Sourced {
            value,
            origin: self.origin(key),
        }
    }

    /// Records what `key` settled on (a second read replaces the first).
    pub fn record(&self, key: &'static str, value: Option<String>, origin: Origin) {
        let env = SETTINGS
            .iter()
            .find(|(k, _)| *k == key)
            .map_or(&[][..], |(_, vars)| *vars);
        let entry = SettingSource {
            key,
            env,
            value,
            origin,
        };
        let mut read = self.read.borrow_mut();
        match read.iter_mut().find(|s| s.key == key) {
            Some(slot) => *slot = entry,
            None => read.push(entry),
        }
    }

    /// Notes that `key`'s value was accepted as `value`, for `message`.
    pub fn note(&self, key: &'static str, message: String, value: String) {
        self.notes.borrow_mut().push(ConfigNote {
            setting: key,
            origin: self.origin(key),
            message,
            value,
        });
    }

    /// Everything read, in the table's order, with the notes.
    pub fn provenance(self, default_file: Option<PathBuf>) -> Provenance {
        let mut settings = self.read.into_inner();
        let rank = |key: &str| SETTINGS.iter().position(|(k, _)| *k == key);
        settings.sort_by_key(|s| rank(s.key));
        Provenance {
            file: self.file,
            default_file,
            settings,
            notes: self.notes.into_inner(),
        }
    }

    /// The value of `key` as text (numbers and booleans as written; a list
    /// joined with `sep`), if any layer set it.
    pub fn text(&self, key: &str, sep: char) -> Option<Sourced<String>> {
        let value = self.figment.find_value(key).ok()?;
        let text = match value {
            Value::Array(_, items) => items
                .iter()
                .map(scalar_text)
                .collect::<Vec<_>>()
                .join(&sep.to_string()),
            other => scalar_text(&other),
        };
        Some(self.sourced(key, text))
    }

    /// A typed setting: `default()` when unset, else `parse(text)`; a
    /// refusal becomes the one-line error naming setting, value and origin.
    pub fn get<T: Shown>(
        &self,
        key: &'static str,
        default: impl FnOnce() -> T,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        let (value, origin) = match self.parsed(key, parse)? {
            Some(set) => (set.value, set.origin),
            None => (default(), Origin::Default),
        };
        self.record(key, Some(value.shown()), origin);
        Ok(value)
    }

    /// A setting that may stay unset.
    pub fn optional<T: Shown>(
        &self,
        key: &'static str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError> {
        Ok(match self.parsed(key, parse)? {
            Some(set) => {
                self.record(key, Some(set.value.shown()), set.origin);
                Some(set.value)
            }
            None => {
                self.record(key, None, Origin::Default);
                None
            }
        })
    }

    /// `parse(text)` of a set value.
    fn parsed<T>(
        &self,
        key: &'static str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<Sourced<T>>, ConfigError> {
        let Some(raw) = self.text(key, ',') else {
            return Ok(None);
        };
        match parse(raw.value.trim()) {
            Ok(value) => Ok(Some(Sourced {
                value,
                origin: raw.origin,
            })),
            Err(reason) => Err(ConfigError::Invalid {
                setting: key,
                value: raw.value,
                origin: raw.origin.to_string(),
                reason,
            }),
        }
    }
}

impl Layers {
    /// A table set for `key` (only a config file can set one), as figment
    /// holds it.
    pub fn table(&self, key: &str) -> Option<Sourced<Value>> {
        let value = self.figment.find_value(key).ok()?;
        Some(self.sourced(key, value))
    }

    /// Paths set for `key`: a TOML array, or `:`-separated text (as
    /// `PATH`). Relative paths from a config file are relative to the file.
    pub fn paths(&self, key: &str) -> Option<Sourced<Vec<PathBuf>>> {
        let value = self.figment.find_value(key).ok()?;
        let raw: Vec<PathBuf> = match value {
            Value::Array(_, items) => items
                .iter()
                .map(|v| PathBuf::from(scalar_text(v)))
                .collect(),
            other => std::env::split_paths(&scalar_text(&other)).collect(),
        };
        let sourced = self.sourced(key, Vec::new());
        let base = match &sourced.origin {
            Origin::File(file) => file.parent(),
            _ => None,
        };
        let value = raw
            .into_iter()
            .filter(|p| !p.as_os_str().is_empty())
            .map(|p| match base {
                Some(dir) if p.is_relative() => dir.join(p),
                _ => p,
            })
            .collect();
        Some(Sourced { value, ..sourced })
    }
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(_, s) => s.clone(),
        Value::Char(_, c) => c.to_string(),
        Value::Bool(_, b) => b.to_string(),
        Value::Num(_, n) => n
            .to_u128()
            .map(|u| u.to_string())
            .or_else(|| n.to_i128().map(|i| i.to_string()))
            .or_else(|| n.to_f64().map(|f| f.to_string()))
            .unwrap_or_default(),
        Value::Empty(..) => String::new(),
        Value::Dict(..) | Value::Array(..) => String::new(),
    }
}
