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

/// Names: every valid name is accepted as itself, every name carrying a
/// path trick is refused, and nothing panics.
#[cfg(test)]
mod proptests {
    use std::path::{Component, Path};

    use proptest::prelude::*;

    use super::*;
    use crate::prop_support::config;

    /// What a tool could be handed to escape the library.
    pub(crate) fn hostile_fragment() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "/",
            "\\",
            "..",
            "../",
            "..\\",
            "\0",
            "/etc/passwd",
            "C:\\",
            "C:",
            "\\\\server\\share",
            "//server/share",
            "%2e%2e%2f",
            "..%2f",
            "%2f",
            "~",
            " ",
            "\u{2024}",
            "\u{FF0E}",
            "\u{FE52}",
            "\u{3002}",
            "\n",
            "\r",
            "\t",
            "\u{7f}",
            "\u{202e}",
            "\u{0}",
            "*",
            "?",
            ":",
            "|",
            "<",
            ">",
            "\"",
            "'",
            "$",
            "é",
        ])
    }

    proptest! {
        #![proptest_config(config(1024))]

        #[test]
        fn a_valid_name_is_accepted_as_itself(
            name in "[A-Za-z0-9_-][A-Za-z0-9_-]{0,40}(\\.[A-Za-z0-9_-]{1,10}){0,3}"
        ) {
            let id: MediaId = name.parse().unwrap();
            prop_assert_eq!(id.as_str(), name.as_str());
            prop_assert_eq!(id.to_string(), name.clone());
            let json = serde_json::to_string(&id).unwrap();
            prop_assert_eq!(serde_json::from_str::<MediaId>(&json).unwrap(), id);
            let mut parts = Path::new(&name).components();
            prop_assert!(matches!(parts.next(), Some(Component::Normal(_))));
            prop_assert!(parts.next().is_none());
        }

        #[test]
        fn a_name_with_a_path_trick_is_refused(
            before in "[A-Za-z0-9_.-]{0,20}",
            trick in hostile_fragment(),
            after in "[A-Za-z0-9_.-]{0,20}",
        ) {
            let name = format!("{before}{trick}{after}");
            prop_assert!(name.parse::<MediaId>().is_err(), "{:?} accepted", name);
            prop_assert!(serde_json::from_value::<MediaId>(serde_json::Value::String(name)).is_err());
        }

        #[test]
        fn whatever_is_accepted_is_one_plain_component(s in any::<String>()) {
            if let Ok(id) = s.parse::<MediaId>() {
                let mut parts = Path::new(id.as_str()).components();
                prop_assert!(matches!(parts.next(), Some(Component::Normal(_))));
                prop_assert!(parts.next().is_none());
                prop_assert!(!id.as_str().contains(".."));
                prop_assert!(id.as_str().len() <= 255);
            }
        }

        #[test]
        fn the_length_limit_is_255_bytes(n in 250usize..260) {
            prop_assert_eq!("a".repeat(n).parse::<MediaId>().is_ok(), n <= 255);
        }

        #[test]
        fn new_names_are_valid(prefix in any::<String>(), ext in any::<String>()) {
            let id = new_name(&prefix, Utc::now(), &ext);
            prop_assert_eq!(id.as_str().parse::<MediaId>().unwrap(), id);
        }
    }
}
