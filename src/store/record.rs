//! What the library knows of a file: its record, and the JSON sidecar the
//! record is written as. The sidecar's keys are spelled here and nowhere else.

use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

use super::MediaId;

/// Image or video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaKind {
    Image,
    Video,
}

impl MediaKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::Video => "video",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "image" => Some(Self::Image),
            "video" => Some(Self::Video),
            _ => None,
        }
    }

    /// Guess from a MIME type (for files added by hand).
    pub fn from_mime(mime: &str) -> Self {
        if mime.starts_with("video/") {
            Self::Video
        } else {
            Self::Image
        }
    }
}

/// A file to add to the library.
#[derive(Debug, Clone)]
pub struct NewMedia {
    pub bytes: Bytes,
    pub kind: MediaKind,
    /// Without the dot: `png`, `mp4`.
    pub extension: String,
    pub mime_type: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub prompt: Option<String>,
    pub model: Option<String>,
    /// What the producer adds to the sidecar (aspect ratio, size, operation …).
    pub metadata: Map<String, Value>,
    /// The file this one was made from (edits).
    pub source: Option<MediaId>,
}

/// A catalogued file.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaRecord {
    pub id: MediaId,
    pub kind: MediaKind,
    pub mime_type: String,
    pub size_bytes: u64,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub created: DateTime<Utc>,
    pub prompt: Option<String>,
    pub model: Option<String>,
    pub source: Option<MediaId>,
    /// The whole sidecar object: the fields above under their sidecar
    /// names, and what the producer added.
    pub metadata: Map<String, Value>,
}

/// RFC 3339 with milliseconds, UTC: how times are written everywhere.
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl MediaRecord {
    /// This record with its sidecar assembled: the fields above under their
    /// sidecar names, then `extra` (which cannot override them). Whatever
    /// `metadata` held before is replaced.
    pub(super) fn with_sidecar(mut self, extra: Map<String, Value>) -> Self {
        let mut m = Map::new();
        m.insert("filename".into(), json!(self.id.as_str()));
        m.insert("type".into(), json!(self.kind.as_str()));
        m.insert("mime_type".into(), json!(self.mime_type));
        m.insert("file_size_bytes".into(), json!(self.size_bytes));
        m.insert("width".into(), json!(self.width));
        m.insert("height".into(), json!(self.height));
        m.insert("created".into(), json!(timestamp(self.created)));
        m.insert("prompt".into(), json!(self.prompt));
        m.insert("model".into(), json!(self.model));
        if let Some(src) = &self.source {
            m.insert("source".into(), json!(src.as_str()));
        }
        for (k, v) in extra {
            m.entry(k).or_insert(v);
        }
        self.metadata = m;
        self
    }

    /// The sidecar file's bytes.
    pub fn sidecar_json(&self) -> Bytes {
        Bytes::from(
            serde_json::to_vec_pretty(&Value::Object(self.metadata.clone())).unwrap_or_default(),
        )
    }

    /// A record from a sidecar; `None` if it lacks the essentials.
    pub(super) fn from_sidecar(
        id: &MediaId,
        size_bytes: u64,
        v: Map<String, Value>,
    ) -> Option<Self> {
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        let n = |k: &str| {
            v.get(k)
                .and_then(Value::as_u64)
                .and_then(|x| u32::try_from(x).ok())
        };
        let mime_type = s("mime_type")?;
        let created = s("created")
            .and_then(|c| DateTime::parse_from_rfc3339(&c).ok())?
            .with_timezone(&Utc);
        Some(Self {
            id: id.clone(),
            kind: s("type")
                .as_deref()
                .and_then(MediaKind::parse)
                .unwrap_or_else(|| MediaKind::from_mime(&mime_type)),
            width: n("width"),
            height: n("height"),
            prompt: s("prompt"),
            model: s("model"),
            source: s("source").and_then(|x| x.parse().ok()),
            mime_type,
            size_bytes,
            created,
            metadata: v,
        })
    }

    /// A producer's fact from the sidecar, as text (`aspect_ratio` …).
    pub fn fact(&self, key: &str) -> Option<&str> {
        self.metadata.get(key).and_then(Value::as_str)
    }

    /// The operation's parameters as the producer recorded them, if any.
    pub fn parameters(&self) -> Option<serde_json::Map<String, Value>> {
        self.metadata
            .get("parameters")
            .and_then(Value::as_object)
            .cloned()
    }
}

/// Sort keys for listings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortBy {
    #[default]
    Date,
    Size,
    Name,
}

/// A listing request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    pub kind: Option<MediaKind>,
    pub sort: SortBy,
    pub descending: bool,
    pub limit: u32,
    pub offset: u64,
    /// Case-insensitive substring of the prompt.
    pub text: Option<String>,
}

impl Default for ListQuery {
    fn default() -> Self {
        Self {
            kind: None,
            sort: SortBy::Date,
            descending: true,
            limit: 20,
            offset: 0,
            text: None,
        }
    }
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Page {
    pub records: Vec<MediaRecord>,
    /// How many records match in all.
    pub total: u64,
}
