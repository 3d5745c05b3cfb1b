//! Log lines of a bounded size. Libraries log whole values at `debug` and
//! `trace` — rmcp logs every JSON-RPC message it sends, image previews and
//! resource reads included — which makes lines of megabytes, mostly base64.
//! Every field of every event is cut to [`MAX_FIELD_BYTES`] (with the total
//! size said), and base64 runs are replaced by their length: logs keep what
//! helps to debug (ids, shapes, messages) and never carry image data.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing_subscriber::field::{RecordFields, VisitOutput};
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::format::{DefaultVisitor, Writer};

/// How much of one field a log line shows.
pub const MAX_FIELD_BYTES: usize = 1024;

/// A run of the base64 alphabet at least this long is data (an image, a
/// preview, a video), not words or ids: hashes and keys are shorter.
const MIN_BASE64_RUN: usize = 96;

/// The field formatter for every log line: tracing-subscriber's default
/// layout (`message key=value …`), each value bounded.
#[derive(Debug, Default, Clone, Copy)]
pub struct BoundedFields;

impl<'w> FormatFields<'w> for BoundedFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'w>, fields: R) -> fmt::Result {
        let mut visitor = Bounding(DefaultVisitor::new(writer, true));
        fields.record(&mut visitor);
        visitor.0.finish()
    }
}

/// Hands the default visitor bounded text instead of the values.
struct Bounding<V>(V);

impl<V: Visit> Bounding<V> {
    fn show(&mut self, field: &Field, value: fmt::Arguments<'_>) {
        let text = bounded(value);
        self.0.record_debug(field, &format_args!("{text}"));
    }
}

impl<V: Visit> Visit for Bounding<V> {
    fn record_str(&mut self, field: &Field, value: &str) {
        // As the default does: the message bare, other strings quoted.
        if field.name() == "message" {
            self.show(field, format_args!("{value}"));
        } else {
            self.show(field, format_args!("{value:?}"));
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.show(field, format_args!("{value}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.show(field, format_args!("{value:?}"));
    }
}

/// `value` formatted, at most [`MAX_FIELD_BYTES`] of it kept, base64 runs
/// replaced; `… (N bytes)` when it was longer.
fn bounded(value: fmt::Arguments<'_>) -> String {
    let mut kept = Prefix {
        kept: String::new(),
        total: 0,
    };
    // `Prefix` never fails: formatting runs to the end to count the size.
    let _ = kept.write_fmt(value);
    let mut out = without_base64(&kept.kept);
    if kept.total > kept.kept.len() {
        let _ = write!(out, " … ({} bytes)", kept.total);
    }
    out
}

/// The first [`MAX_FIELD_BYTES`] of what is written, and its whole length.
struct Prefix {
    kept: String,
    total: usize,
}

impl fmt::Write for Prefix {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.total += s.len();
        let room = MAX_FIELD_BYTES.saturating_sub(self.kept.len());
        if room > 0 {
            let mut end = room.min(s.len());
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            self.kept.push_str(&s[..end]);
        }
        Ok(())
    }
}

/// `text` with every run of base64 characters of [`MIN_BASE64_RUN`] or
/// more replaced by `[base64, N chars]`.
fn without_base64(text: &str) -> String {
    // The standard alphabet (what data URLs and `inlineData` use); `-` and
    // `_` are left out so long names and ids are never taken for data.
    let is_b64 = |c: char| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=');
    let mut out = String::with_capacity(text.len());
    let mut run_start = None;
    for (i, c) in text.char_indices() {
        match (is_b64(c), run_start) {
            (true, None) => run_start = Some(i),
            (false, Some(start)) => {
                push_run(&mut out, &text[start..i]);
                run_start = None;
                out.push(c);
            }
            (false, None) => out.push(c),
            (true, Some(_)) => {}
        }
    }
    if let Some(start) = run_start {
        push_run(&mut out, &text[start..]);
    }
    out
}

fn push_run(out: &mut String, run: &str) {
    if run.len() >= MIN_BASE64_RUN {
        let _ = write!(out, "[base64, {} chars]", run.len());
    } else {
        out.push_str(run);
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use base64::Engine;

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn logged(f: impl FnOnce()) -> String {
        let buf = Buffer::default();
        let out = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .fmt_fields(BoundedFields)
            .with_writer(move || out.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::TRACE)
            .finish();
        tracing::subscriber::with_default(subscriber, f);
        String::from_utf8(buf.0.lock().unwrap().clone()).unwrap()
    }

    /// A response with an image preview, as rmcp logs it at `debug`: the
    /// line is short, says how big the value was, and has no image data.
    #[test]
    fn a_megabyte_value_is_cut_and_its_base64_dropped() {
        let image = base64::engine::general_purpose::STANDARD.encode(vec![7u8; 768 * 1024]);
        let result = format!(r#"{{"content":[{{"type":"image","data":"{image}"}}],"id":2}}"#);
        let total = format!("{result:?}").len();
        let log = logged(|| tracing::debug!(id = 2, result = ?result, "response message"));
        assert_eq!(log.lines().count(), 1, "{log}");
        assert!(
            log.len() < 2 * MAX_FIELD_BYTES,
            "{} bytes: {log}",
            log.len()
        );
        assert!(log.contains("response message id=2 result="), "{log}");
        assert!(log.contains(r#"\"type\":\"image\""#), "{log}");
        assert!(log.contains(&format!("… ({total} bytes)")), "{log}");
        assert!(log.contains("[base64, "), "{log}");
        assert!(!log.contains(&image[..MIN_BASE64_RUN]), "{log}");
    }

    /// Short values and messages are as the default formatter writes them.
    #[test]
    fn short_values_are_unchanged() {
        let log = logged(|| {
            tracing::info!(
                path = "/files/a.png",
                n = 3,
                ok = true,
                "served `{}`",
                "a.png"
            );
        });
        assert!(
            log.trim_end()
                .ends_with(r#"served `a.png` path="/files/a.png" n=3 ok=true"#),
            "{log}"
        );
        let error = std::io::Error::other("disk full");
        let log = logged(|| tracing::warn!(error = &error as &dyn std::error::Error, "save"));
        assert!(log.trim_end().ends_with("save error=disk full"), "{log}");
    }

    #[test]
    fn long_text_is_cut_on_a_character_boundary() {
        let text = "é".repeat(MAX_FIELD_BYTES);
        let shown = bounded(format_args!("{text}"));
        assert!(shown.starts_with("éé"));
        assert!(shown.ends_with(&format!(" … ({} bytes)", text.len())));
        assert!(shown.len() <= MAX_FIELD_BYTES + 32);
    }
}
