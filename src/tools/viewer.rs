//! The MCP App viewer: a page hosts that render MCP Apps show in place of a
//! tool's plain result — the image, or the video with its contact sheet,
//! its prompt and facts, and a strip of recent items.
//!
//! Built to the MCP Apps extension (`io.modelcontextprotocol/ui`, SEP-1865),
//! specification version 2026-01-26 ("Stable"). rmcp has no API of its own
//! for it, so it is plain protocol data:
//! - the server declares the extension in `capabilities.extensions`
//!   ([`extension_settings`]);
//! - the tools whose results the page can show carry
//!   `_meta.ui.resourceUri` (and the deprecated flat `_meta["ui/resourceUri"]`
//!   the specification still lists, for hosts that read only that)
//!   ([`tool_meta`]);
//! - `resources/read` of [`VIEWER_URI`] answers the page, one HTML file
//!   compiled in, as `text/html;profile=mcp-app`.
//!
//! The page is not in `resources/list`: the specification lets servers omit
//! UI-only resources (hosts find it through the tools' `_meta`), and the
//! listing stays what it has always been, the library's files.
//!
//! The page needs nothing beyond the restrictive default CSP hosts apply
//! when a resource declares none (`img-src 'self' data:`, `media-src 'self'
//! data:`, `connect-src 'none'`): it fetches every byte through the host
//! (`resources/read` of `media://files/NAME`, `tools/call` of
//! `list_generated` and `get_video_status`) and shows it as a `data:` URL.
//! Hosts without Apps ignore `_meta`: their results are unchanged.

use rmcp::ErrorData;
use rmcp::model::{JsonObject, MetaObject, ReadResourceResult, ResourceContents};
use serde_json::json;

/// The extension's identifier, as the specification reserves it.
pub const UI_EXTENSION_ID: &str = "io.modelcontextprotocol/ui";

/// The viewer page's resource URI.
pub const VIEWER_URI: &str = "ui://media-gen/viewer";

/// The MIME type of an MCP App's HTML.
pub const APP_MIME_TYPE: &str = "text/html;profile=mcp-app";

/// The page: self-contained (inline script and style, no external fetch).
const VIEWER_HTML: &str = include_str!("viewer.html");

/// The settings under `capabilities.extensions["io.modelcontextprotocol/ui"]`:
/// the kinds of UI resource this server offers (the same key hosts use to say
/// what they render).
pub(super) fn extension_settings() -> JsonObject {
    let mut settings = JsonObject::new();
    settings.insert("mimeTypes".to_owned(), json!([APP_MIME_TYPE]));
    settings
}

/// `_meta` of a tool whose result the viewer shows. Visibility is left at
/// its default (`["model", "app"]`): the model calls these tools, and the
/// page may too.
pub(super) fn tool_meta() -> MetaObject {
    let mut meta = MetaObject::new();
    meta.0
        .insert("ui".to_owned(), json!({ "resourceUri": VIEWER_URI }));
    meta.0
        .insert("ui/resourceUri".to_owned(), json!(VIEWER_URI));
    meta
}

/// `resources/read` of a `ui://` URI: the viewer, or "not found" naming it.
pub(super) fn read(uri: &str) -> Result<ReadResourceResult, ErrorData> {
    if uri != VIEWER_URI {
        return Err(ErrorData::resource_not_found(
            format!("unknown resource `{uri}`; media-gen's app page is `{VIEWER_URI}`"),
            Some(json!({ "uri": uri })),
        ));
    }
    let html = VIEWER_HTML.replace("{{VERSION}}", env!("CARGO_PKG_VERSION"));
    let mut meta = MetaObject::new();
    // A framed page reads best: the media sits on the host's background.
    meta.0
        .insert("ui".to_owned(), json!({ "prefersBorder": true }));
    Ok(ReadResourceResult::new(vec![
        ResourceContents::text(html, VIEWER_URI)
            .with_mime_type(APP_MIME_TYPE)
            .with_meta(meta),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The page must work under the default CSP: nothing it loads may come
    /// from elsewhere, and it may not make object URLs (`blob:` is not in
    /// `img-src`/`media-src`). Prompts are shown as text, never parsed as
    /// markup.
    #[test]
    fn the_page_is_self_contained() {
        let html = VIEWER_HTML.to_ascii_lowercase();
        assert!(html.starts_with("<!doctype html>"));
        for needle in [
            "<script src",
            "<link",
            "@import",
            "url(",
            "createobjecturl",
            "fetch(",
            "xmlhttprequest",
            "websocket",
            "eval(",
            "innerhtml",
        ] {
            assert!(!html.contains(needle), "the page contains `{needle}`");
        }
        assert!(!html.contains("http://") && !html.contains("https://"));
    }
}
