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
pub(super) fn decode_base64(s: &str) -> Result<Vec<u8>, BackendError> {
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
pub(super) fn split_data_url(url: &str) -> Option<(&str, &str)> {
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
