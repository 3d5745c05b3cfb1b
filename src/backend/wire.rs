//! Pieces of the wire formats both image routes share: data URLs, base64,
//! finish reasons, excerpts for messages.

use base64::Engine;

use super::{BackendError, InputImage};

/// Appends `data:MIME;base64,…` for `img` to `out` without intermediate copies.
pub(super) fn push_data_url(out: &mut String, img: &InputImage) {
    out.push_str("data:");
    out.push_str(&img.mime_type);
    out.push_str(";base64,");
    base64::engine::general_purpose::STANDARD.encode_string(&img.data, out);
}

/// Decodes base64 (standard alphabet; tolerates missing padding and
/// whitespace) into a fresh buffer.
pub(crate) fn decode_base64(s: &str) -> Result<Vec<u8>, BackendError> {
    let engine = &base64::engine::general_purpose::STANDARD;
    let trimmed = s.trim();
    match engine.decode(trimmed) {
        Ok(v) => Ok(v),
        Err(_) => {
            // Rare: line breaks or URL-safe alphabet or no padding. Clean and retry once.
            let cleaned: String = trimmed
                .chars()
                .filter(|c| !c.is_ascii_whitespace())
                .map(|c| match c {
                    '-' => '+',
                    '_' => '/',
                    c => c,
                })
                .collect();
            let engine = base64::engine::GeneralPurpose::new(
                &base64::alphabet::STANDARD,
                base64::engine::GeneralPurposeConfig::new()
                    .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
            );
            engine.decode(cleaned).map_err(|e| BackendError::Failed {
                status: None,
                message: format!(
                    "the image data is not valid base64 ({e}); the response was corrupted"
                ),
            })
        }
    }
}

/// Splits a `data:image/png;base64,XXXX` URL into MIME type and payload.
pub(crate) fn split_data_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("data:")?;
    let (head, payload) = rest.split_once(',')?;
    let mime = head.strip_suffix(";base64")?;
    Some((if mime.is_empty() { "image/png" } else { mime }, payload))
}

/// Whether a finish reason means a safety or policy stop.
pub(super) fn is_block_reason(reason: &str) -> bool {
    let r = reason.to_ascii_lowercase();
    [
        "safety",
        "prohibited",
        "blocklist",
        "spii",
        "recitation",
        "no_image",
        "image_other",
        "content_filter",
        "language",
        "malformed_function_call",
    ]
    .iter()
    .any(|k| r.contains(k))
}

/// Shortens model text for an error message.
pub(super) fn excerpt(text: &str) -> String {
    const MAX: usize = 200;
    let t = text.trim();
    if t.chars().count() <= MAX {
        t.to_owned()
    } else {
        let cut: String = t.chars().take(MAX).collect();
        format!("{cut}…")
    }
}

/// A provider's answer that does not have the expected shape.
pub(crate) fn malformed(what: &str, e: impl std::fmt::Display) -> BackendError {
    BackendError::Failed {
        status: None,
        message: format!("the backend sent a malformed {what} ({e})"),
    }
}

/// Data URLs and base64 as backends send them: round trips, tolerated
/// variants, and no panic on anything.
#[cfg(test)]
mod proptests {
    use base64::Engine;
    use proptest::prelude::*;

    use super::*;
    use crate::prop_support::config;

    proptest! {
        #![proptest_config(config(512))]

        #[test]
        fn arbitrary_text_never_panics(s in any::<String>()) {
            if let Some((mime, payload)) = split_data_url(&s) {
                prop_assert!(!mime.is_empty());
                prop_assert!(s.ends_with(payload));
            }
            let _ = decode_base64(&s);
            let _ = excerpt(&s);
            let _ = is_block_reason(&s);
        }

        #[test]
        fn a_data_url_round_trips(
            data in prop::collection::vec(any::<u8>(), 0..512),
            mime in "image/[a-z0-9.+-]{1,12}",
        ) {
            let mut url = String::new();
            push_data_url(&mut url, &InputImage { mime_type: mime.clone(), data: data.clone().into() });
            let (m, payload) = split_data_url(&url).unwrap();
            prop_assert_eq!(m, mime.as_str());
            prop_assert_eq!(decode_base64(payload).unwrap(), data);
        }

        /// Line breaks, the URL-safe alphabet and missing padding decode to
        /// the same bytes.
        #[test]
        fn tolerated_base64_variants_decode_to_the_same_bytes(
            data in prop::collection::vec(any::<u8>(), 1..256),
            every in 1usize..80,
        ) {
            let url_safe = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&data);
            prop_assert_eq!(decode_base64(&url_safe).unwrap(), data.clone());
            let std = base64::engine::general_purpose::STANDARD.encode(&data);
            let wrapped: String = std
                .chars()
                .enumerate()
                .flat_map(|(i, c)| (i > 0 && i % every == 0).then_some('\n').into_iter().chain([c]))
                .collect();
            prop_assert_eq!(decode_base64(&format!(" {wrapped}\r\n")).unwrap(), data);
        }
    }
}
