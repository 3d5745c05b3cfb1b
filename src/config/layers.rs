//! The configuration layers (TOML file < environment < flags), merged with
//! `figment`, and typed access to the merged values that remembers where
//! each came from.
//!
//! Every layer is one figment provider whose name says where its values
//! came from (`config file `…``, `environment variable `MCP_X``, `flag
//! `--x``), so a bad value is reported with its origin by asking figment
//! which provider set it.

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
    ("batch_concurrency", &["MCP_BATCH_CONCURRENCY"]),
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
    ("public_url", &["MCP_PUBLIC_URL"]),
    ("input_roots", &["MCP_INPUT_ROOTS"]),
    ("input_max_bytes", &["MCP_INPUT_MAX_BYTES"]),
    ("input_max_pixels", &["MCP_INPUT_MAX_PIXELS"]),
    ("mask_feather", &["MCP_MASK_FEATHER"]),
    ("outpaint_max_extend", &["MCP_OUTPAINT_MAX_EXTEND"]),
    ("default_video_model", &["MCP_DEFAULT_VIDEO_MODEL"]),
    ("video_poll_interval", &["MCP_VIDEO_POLL_INTERVAL"]),
    ("video_deadline", &["MCP_VIDEO_DEADLINE"]),
];

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

/// The merged layers, read value by value.
pub(super) struct Layers {
    figment: Figment,
}

/// A set value and where it came from.
pub(super) struct Sourced<T> {
    pub value: T,
    pub origin: String,
    /// The config file it came from, if it did.
    pub file: Option<PathBuf>,
}

impl Layers {
    pub fn load(sources: &Sources<'_>) -> Result<Self, ConfigError> {
        let mut figment = Figment::new();
        if let Some(path) = &sources.file {
            figment = figment.merge(file_layer(path)?);
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
                figment =
                    figment.merge(layer(format!("environment variable `{var}`"), None, values));
            }
        }
        for (key, flag, value) in &sources.flags {
            let mut values = Dict::new();
            values.insert((*key).to_owned(), Value::from(value.clone()));
            figment = figment.merge(layer(format!("flag `{flag}`"), None, values));
        }
        Ok(Self { figment })
    }

    fn sourced<T>(&self, key: &str, value: T) -> Sourced<T> {
        let metadata = self.figment.find_metadata(key);
        Sourced {
            value,
            origin: metadata.map_or_else(|| "default".to_owned(), |m| m.name.to_string()),
            file: metadata.and_then(|m| match &m.source {
                Some(Source::File(p)) => Some(p.clone()),
                _ => None,
            }),
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
    pub fn get<T>(
        &self,
        key: &'static str,
        default: impl FnOnce() -> T,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        Ok(self.optional(key, parse)?.unwrap_or_else(default))
    }

    /// A setting that may stay unset.
    pub fn optional<T>(
        &self,
        key: &'static str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError> {
        let Some(raw) = self.text(key, ',') else {
            return Ok(None);
        };
        match parse(raw.value.trim()) {
            Ok(v) => Ok(Some(v)),
            Err(reason) => Err(ConfigError::Invalid {
                setting: key,
                value: raw.value,
                origin: raw.origin,
                reason,
            }),
        }
    }
}

impl Layers {
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
        let base = sourced.file.as_deref().and_then(Path::parent);
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
