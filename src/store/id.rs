//! `MediaId`: the one way a file name enters the store.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};

/// A checked file name: a single path component of ASCII letters, digits, `.`,
/// `_` and `-`, not starting with `.`, 1–255 bytes. Separators, `..`, absolute
/// paths, percent-encoding, NUL and control characters cannot be expressed.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct MediaId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{name}` is not a valid file name: {reason}; use a bare name such as `image_20260101_120000_000_abcdef.png` as returned by the tools"
)]
pub struct InvalidMediaId {
    pub name: String,
    pub reason: &'static str,
}

impl MediaId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MediaId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for MediaId {
    type Err = InvalidMediaId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |reason| {
            Err(InvalidMediaId {
                name: s.escape_default().to_string(),
                reason,
            })
        };
        if s.is_empty() {
            return bad("it is empty");
        }
        if s.len() > 255 {
            return bad("it is longer than 255 bytes");
        }
        if s.contains(['/', '\\']) {
            return bad("it contains a path separator");
        }
        if s.starts_with('.') {
            return bad("it starts with a dot");
        }
        if s.contains("..") {
            return bad("it contains `..`");
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        {
            return bad("only letters, digits, `.`, `_` and `-` are allowed");
        }
        Ok(Self(s.to_owned()))
    }
}

impl TryFrom<String> for MediaId {
    type Error = InvalidMediaId;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<MediaId> for String {
    fn from(id: MediaId) -> Self {
        id.0
    }
}

const BASE32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// A fresh unique, time-sortable name: `PREFIX_YYYYMMDD_HHMMSS_mmm_xxxxxx.EXT`.
pub fn new_name(prefix: &str, at: DateTime<Utc>, extension: &str) -> MediaId {
    let ext: String = extension
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(8)
        .collect::<String>()
        .to_ascii_lowercase();
    let ext = if ext.is_empty() {
        "bin".to_owned()
    } else {
        ext
    };
    MediaId(format!("{}.{ext}", unique_stem(prefix, at)))
}

/// `PREFIX_YYYYMMDD_HHMMSS_mmm_xxxxxx`: sortable by time, with 30 random
/// bits so names made in the same millisecond differ.
pub(super) fn unique_stem(prefix: &str, at: DateTime<Utc>) -> String {
    let suffix: String = (0..6)
        .map(|_| char::from(BASE32[rand::random_range(0..32usize)]))
        .collect();
    let prefix: String = prefix.chars().filter(char::is_ascii_alphanumeric).collect();
    format!("{prefix}_{}_{suffix}", at.format("%Y%m%d_%H%M%S_%3f"))
}
