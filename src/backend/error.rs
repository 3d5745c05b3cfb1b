//! Backend failures and the reading of providers' error bodies.

use std::time::Duration;

use serde::Deserialize;

/// Why a backend call failed. The message says what happened; the service
/// maps each variant to a contract code and adds the next step, which
/// depends on the provider and the capability.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("cannot reach `{url}` ({reason})")]
    Unavailable { url: String, reason: String },
    #[error("the backend refused the credentials (HTTP {status}{})", said(message))]
    AuthFailed { status: u16, message: String },
    /// CLIProxyAPI runs, but no account logged in through it serves the
    /// model (its 503 `auth_not_found`).
    #[error(
        "the backend has no logged-in account for this model (HTTP {status}{})",
        said(message)
    )]
    NoLogin { status: u16, message: String },
    /// The connection broke after the request went out (reset, closed, or
    /// the answer cut off): the backend was reached, its answer was lost.
    #[error("the connection to the backend broke {reason}")]
    Interrupted { reason: String },
    #[error("the backend is rate limiting requests{}", said(message))]
    RateLimited {
        retry_after: Option<Duration>,
        message: String,
    },
    #[error("the backend did not answer within {}", seconds(*after))]
    Timeout { after: Duration },
    #[error("the request was blocked by the model's safety filter{}", said(reason))]
    ContentBlocked { reason: String },
    #[error("the backend does not know model `{model}`{}", said(message))]
    InvalidModel { model: String, message: String },
    #[error("generation failed{}{}", status.map(|s| format!(" (HTTP {s})")).unwrap_or_default(), said(message))]
    Failed {
        status: Option<u16>,
        message: String,
    },
}

/// `: what the provider said`, or nothing when it said nothing: a message
/// never ends in a dangling colon.
fn said(message: &str) -> String {
    match message.trim() {
        "" => String::new(),
        m => format!(": {m}"),
    }
}

/// `2 s`, `0.5 s`.
fn seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0} s")
    } else {
        format!("{s:.1} s")
    }
}

impl BackendError {
    /// The error with `secret` (the key sent) and anything shaped like a
    /// credential removed from its text: a provider's answer may echo the
    /// request's headers, and error text reaches results and logs.
    #[must_use]
    pub fn redacted(self, secret: Option<&str>) -> Self {
        let r = |m: String| redact(&m, secret);
        match self {
            Self::Unavailable { url, reason } => Self::Unavailable {
                url,
                reason: r(reason),
            },
            Self::AuthFailed { status, message } => Self::AuthFailed {
                status,
                message: r(message),
            },
            Self::NoLogin { status, message } => Self::NoLogin {
                status,
                message: r(message),
            },
            Self::Interrupted { reason } => Self::Interrupted { reason: r(reason) },
            Self::RateLimited {
                retry_after,
                message,
            } => Self::RateLimited {
                retry_after,
                message: r(message),
            },
            Self::ContentBlocked { reason } => Self::ContentBlocked { reason: r(reason) },
            Self::InvalidModel { model, message } => Self::InvalidModel {
                model,
                message: r(message),
            },
            Self::Failed { status, message } => Self::Failed {
                status,
                message: r(message),
            },
            e @ Self::Timeout { .. } => e,
        }
    }

    /// Whether trying again may help (connection problems, 429, 5xx; not a
    /// missing login, which takes a person).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Unavailable { .. } | Self::Interrupted { .. } | Self::RateLimited { .. } => true,
            Self::Failed {
                status: Some(s), ..
            } => *s >= 500,
            _ => false,
        }
    }

    /// The HTTP status behind the error, if one was received.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            Self::AuthFailed { status, .. } | Self::NoLogin { status, .. } => Some(*status),
            Self::RateLimited { .. } => Some(429),
            Self::Failed { status, .. } => *status,
            _ => None,
        }
    }
}

/// `{"error": "string"}` or `{"error": {"message", "code", "status", "type", …}}`.
#[derive(Deserialize)]
struct ErrorEnvelope {
    error: ErrorField,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ErrorField {
    Text(String),
    Object(ErrorObject),
}

#[derive(Deserialize, Default)]
struct ErrorObject {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    code: Option<serde_json::Value>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    details: Vec<serde_json::Value>,
}

/// What an error body says, normalised.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct ErrorInfo {
    pub message: String,
    /// `code` as text (`model_not_found`, `model_cooldown`, `429` …).
    pub code: Option<String>,
    /// Google status (`RESOURCE_EXHAUSTED`, `NOT_FOUND` …).
    pub status: Option<String>,
    pub model: Option<String>,
    /// Google `RetryInfo.retryDelay`.
    pub retry_delay: Option<Duration>,
    /// Google `ErrorInfo.reason` (`API_KEY_INVALID` …).
    pub reason: Option<String>,
}

/// Reads an error body leniently; a non-JSON body becomes its (shortened) text.
pub(super) fn parse_error_body(body: &[u8]) -> ErrorInfo {
    match serde_json::from_slice::<ErrorEnvelope>(body) {
        Ok(ErrorEnvelope {
            error: ErrorField::Text(message),
        }) => ErrorInfo {
            message,
            ..ErrorInfo::default()
        },
        Ok(ErrorEnvelope {
            error: ErrorField::Object(o),
        }) => {
            let retry_delay = o.details.iter().find_map(|d| {
                d.get("retryDelay")
                    .and_then(|v| v.as_str())
                    .and_then(parse_google_duration)
            });
            let reason = o
                .details
                .iter()
                .find_map(|d| d.get("reason").and_then(|v| v.as_str()).map(str::to_owned));
            ErrorInfo {
                message: o
                    .message
                    .or(o.kind)
                    .unwrap_or_else(|| "no message".to_owned()),
                code: o.code.map(|c| match c {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                }),
                status: o.status,
                model: o.model,
                retry_delay,
                reason,
            }
        }
        Err(_) => ErrorInfo {
            message: super::wire::excerpt(&String::from_utf8_lossy(body)),
            ..ErrorInfo::default()
        },
    }
}

/// What stands in for a removed secret.
const REDACTED: &str = "[redacted]";

/// `text` without `secret` and without what is shaped like a credential: a
/// bearer token (`Bearer …`) or a Google API key (`AIza…`).
pub fn redact(text: &str, secret: Option<&str>) -> String {
    let mut out = match secret.map(str::trim).filter(|s| s.len() >= 4) {
        Some(s) => text.replace(s, REDACTED),
        None => text.to_owned(),
    };
    let token_char = |c: char| c.is_ascii_alphanumeric() || "-._~+/=".contains(c);
    // `Bearer <token>`, any case.
    let mut at = 0;
    while let Some(found) = out[at..].to_ascii_lowercase().find("bearer ") {
        let start = at + found + "bearer ".len();
        let len = out[start..]
            .find(|c: char| !token_char(c))
            .unwrap_or(out.len() - start);
        at = if len > 0 && &out[start..start + len] != REDACTED {
            out.replace_range(start..start + len, REDACTED);
            start + REDACTED.len()
        } else {
            start + len
        };
    }
    // Google API keys: `AIza` and 35 more key characters.
    let mut at = 0;
    while let Some(found) = out[at..].find("AIza") {
        let start = at + found;
        let len = out[start..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
            .unwrap_or(out.len() - start);
        if len >= 39 {
            out.replace_range(start..start + len, REDACTED);
            at = start + REDACTED.len();
        } else {
            at = start + 4;
        }
    }
    out
}

/// `"41s"` / `"1.5s"` → duration; `None` for what is not one, including
/// numbers too large for a `Duration` (a server may send anything).
fn parse_google_duration(s: &str) -> Option<Duration> {
    let secs: f64 = s.trim().strip_suffix('s')?.parse().ok()?;
    Duration::try_from_secs_f64(secs).ok()
}

/// Classifies a non-success HTTP response.
pub(crate) fn classify_status(
    status: u16,
    retry_after: Option<Duration>,
    body: &[u8],
) -> BackendError {
    let info = parse_error_body(body);
    let model_unknown = info.code.as_deref() == Some("model_not_found")
        || info.message.contains("unknown provider for model")
        || (status == 404 && info.status.as_deref() == Some("NOT_FOUND"))
        || (status == 404 && info.message.to_ascii_lowercase().contains("model"));
    // The Gemini API refuses a wrong key with 400 `INVALID_ARGUMENT`,
    // reason `API_KEY_INVALID`: a credentials problem, not a bad request.
    let key_invalid = status == 400 && info.reason.as_deref() == Some("API_KEY_INVALID");
    // CLIProxyAPI's `auth_not_found: no auth available …` (a 503, as text or
    // wrapped in an error object): nobody is logged in for the model.
    let no_login =
        info.code.as_deref() == Some("auth_not_found") || info.message.contains("auth_not_found");
    if no_login {
        return BackendError::NoLogin {
            status,
            message: info.message,
        };
    }
    match status {
        401 | 403 => BackendError::AuthFailed {
            status,
            message: info.message,
        },
        400 if key_invalid => BackendError::AuthFailed {
            status,
            message: info.message,
        },
        429 => BackendError::RateLimited {
            retry_after: retry_after.or(info.retry_delay),
            message: info.message,
        },
        400 | 404 if model_unknown => BackendError::InvalidModel {
            model: info
                .model
                .or_else(|| model_from_message(&info.message))
                .unwrap_or_default(),
            message: info.message,
        },
        _ => BackendError::Failed {
            status: Some(status),
            message: info.message,
        },
    }
}

/// `unknown provider for model X` → `X`.
fn model_from_message(msg: &str) -> Option<String> {
    msg.split("for model ")
        .nth(1)
        .or_else(|| msg.strip_prefix("models/"))
        .map(|s| {
            s.split(|c: char| c.is_whitespace() || c == ',')
                .next()
                .unwrap_or_default()
                .to_owned()
        })
        .filter(|s| !s.is_empty())
}

#[derive(Deserialize)]
struct OpenAiModels {
    #[serde(default)]
    data: Vec<ModelEntry>,
    #[serde(default)]
    models: Vec<ModelEntry>,
}

#[derive(Deserialize)]
struct ModelEntry {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

/// `{"data":[{"id"}]}` (OpenAI) or `{"models":[{"name":"models/X"}]}` (Gemini).
pub(crate) fn parse_model_list(body: &[u8]) -> Result<Vec<String>, BackendError> {
    let list: OpenAiModels = serde_json::from_slice(body).map_err(|e| BackendError::Failed {
        status: None,
        message: format!("the model list is not valid JSON: {e}"),
    })?;
    Ok(list
        .data
        .into_iter()
        .chain(list.models)
        .filter_map(|m| m.id.or(m.name))
        .map(|id| id.strip_prefix("models/").map(str::to_owned).unwrap_or(id))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echoed_credentials_are_redacted() {
        let key = "sk-live-0123456789abcdef";
        let google = "AIzaSyA1234567890abcdefghijklmnopqrstuv";
        let body = format!(
            r#"{{"error":{{"message":"bad header Authorization: Bearer {key} (also bearer other.token-value) and key={google}; é Bearer  ok"}}}}"#
        );
        let e = classify_status(400, None, body.as_bytes()).redacted(Some(key));
        let text = e.to_string();
        assert!(!text.contains(key), "{text}");
        assert!(!text.contains("other.token-value"), "{text}");
        assert!(!text.contains(google), "{text}");
        assert!(text.contains("Bearer [redacted]"), "{text}");
        assert!(text.contains("é Bearer  ok"), "{text}");
        // The configured key alone, wherever it appears.
        let e = BackendError::AuthFailed {
            status: 401,
            message: format!("key {key} is not valid"),
        }
        .redacted(Some(key));
        assert_eq!(
            e.to_string(),
            "the backend refused the credentials (HTTP 401: key [redacted] is not valid)"
        );
        assert_eq!(
            redact("nothing secret here", Some(key)),
            "nothing secret here"
        );
    }

    #[test]
    fn string_error_bodies() {
        let e = classify_status(401, None, br#"{"error":"Invalid API key"}"#);
        assert!(
            matches!(e, BackendError::AuthFailed { status: 401, ref message } if message == "Invalid API key")
        );
        assert!(!e.is_retryable());
    }

    #[test]
    fn gemini_wrong_key_is_auth_failed() {
        // The Gemini API's answer to a key that is not valid.
        let body = br#"{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com","metadata":{"service":"generativelanguage.googleapis.com"}},{"@type":"type.googleapis.com/google.rpc.LocalizedMessage","locale":"en-US","message":"API key not valid. Please pass a valid API key."}]}}"#;
        let e = classify_status(400, None, body);
        assert!(
            matches!(e, BackendError::AuthFailed { status: 400, ref message } if message.starts_with("API key not valid")),
            "{e:?}"
        );
        assert!(!e.is_retryable());
    }

    #[test]
    fn unknown_model_variants() {
        let new = br#"{"error":{"message":"unknown provider for model gemini-9","type":"invalid_request_error","code":"model_not_found","param":"model"}}"#;
        let old = br#"{"error":{"message":"unknown provider for model gemini-9","type":"invalid_request_error"}}"#;
        for body in [&new[..], &old[..]] {
            match classify_status(400, None, body) {
                BackendError::InvalidModel { model, .. } => assert_eq!(model, "gemini-9"),
                other => panic!("{other:?}"),
            }
        }
        let google = br#"{"error":{"code":404,"message":"models/gemini-9 is not found for API version v1beta","status":"NOT_FOUND"}}"#;
        assert!(matches!(
            classify_status(404, None, google),
            BackendError::InvalidModel { .. }
        ));
        // A plain 400 is a failed request, not an unknown model.
        let bad = br#"{"error":{"code":400,"message":"Invalid JSON payload","status":"INVALID_ARGUMENT"}}"#;
        assert!(matches!(
            classify_status(400, None, bad),
            BackendError::Failed {
                status: Some(400),
                ..
            }
        ));
    }

    #[test]
    fn rate_limit_bodies_and_delays() {
        let cooldown = br#"{"error":{"code":"model_cooldown","message":"All credentials for model X are cooling down via provider gemini","model":"X","provider":"gemini","reset_seconds":60,"reset_time":"1m0s"}}"#;
        match classify_status(429, Some(Duration::from_secs(60)), cooldown) {
            BackendError::RateLimited {
                retry_after,
                message,
            } => {
                assert_eq!(retry_after, Some(Duration::from_secs(60)));
                assert!(message.contains("cooling down"));
            }
            other => panic!("{other:?}"),
        }
        let google = br#"{"error":{"code":429,"message":"Resource exhausted","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"41s"}]}}"#;
        match classify_status(429, None, google) {
            BackendError::RateLimited { retry_after, .. } => {
                assert_eq!(retry_after, Some(Duration::from_secs(41)));
            }
            other => panic!("{other:?}"),
        }
    }

    /// CLIProxyAPI without a login answers 503 `auth_not_found`, as text or
    /// wrapped: a missing login, not a server error to retry.
    #[test]
    fn auth_not_found_is_a_missing_login() {
        let wrapped = br#"{"error":{"message":"auth_not_found: no auth available","type":"server_error","code":"internal_server_error"}}"#;
        for body in [
            &b"auth_not_found: no auth available for model x"[..],
            wrapped,
        ] {
            let e = classify_status(503, None, body);
            assert!(
                matches!(e, BackendError::NoLogin { status: 503, ref message } if message.contains("no auth available")),
                "{e:?}"
            );
            assert!(!e.is_retryable());
            assert_eq!(e.http_status(), Some(503));
        }
    }

    /// Found by `proptests::any_retry_delay_is_read_or_ignored`: a
    /// `retryDelay` too large for a `Duration` panicked the request.
    #[test]
    fn retry_delays_that_are_no_duration_are_ignored() {
        for delay in ["1e30s", "4e20s", "-1s", "NaNs", "infs", "s", "41"] {
            let body = format!(
                r#"{{"error":{{"code":429,"message":"slow","details":[{{"retryDelay":"{delay}"}}]}}}}"#
            );
            match classify_status(429, None, body.as_bytes()) {
                BackendError::RateLimited { retry_after, .. } => {
                    assert_eq!(retry_after, None, "{delay}");
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn server_errors_and_non_json() {
        let e = classify_status(503, None, b"upstream connect error");
        assert!(
            matches!(e, BackendError::Failed { status: Some(503), ref message } if message.contains("upstream connect error"))
        );
        assert!(e.is_retryable());
        let wrapped = br#"{"error":{"message":"upstream failed","type":"server_error","code":"internal_server_error"}}"#;
        assert!(classify_status(500, None, wrapped).is_retryable());
        assert!(matches!(
            classify_status(
                403,
                None,
                br#"{"error":{"code":403,"message":"denied","status":"PERMISSION_DENIED"}}"#
            ),
            BackendError::AuthFailed { status: 403, .. }
        ));
    }

    #[test]
    fn model_lists() {
        let openai = br#"{"object":"list","data":[{"id":"gemini-3-pro-image-preview","object":"model","created":0,"owned_by":"google"}]}"#;
        assert_eq!(
            parse_model_list(openai).unwrap(),
            ["gemini-3-pro-image-preview"]
        );
        let google = br#"{"models":[{"name":"models/gemini-2.5-flash-image","displayName":"x"}]}"#;
        assert_eq!(
            parse_model_list(google).unwrap(),
            ["gemini-2.5-flash-image"]
        );
    }
}

/// Error bodies, model lists and redaction on hostile input.
#[cfg(test)]
mod proptests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::prop_support::{config, json as any_json};

    proptest! {
        #![proptest_config(config(256))]

        #[test]
        fn arbitrary_bodies_never_panic(
            body in prop::collection::vec(any::<u8>(), 0..512),
            v in any_json(),
            status in 400u16..600,
            retry_after in proptest::option::of(any::<u64>()),
        ) {
            let retry_after = retry_after.map(Duration::from_secs);
            let _ = classify_status(status, retry_after, &body);
            let _ = classify_status(status, retry_after, v.to_string().as_bytes());
            let google = json!({"error": {"code": status, "message": v.clone(), "status": "RESOURCE_EXHAUSTED", "details": [v.clone()]}});
            let _ = classify_status(status, retry_after, google.to_string().as_bytes());
            let _ = parse_model_list(&body);
            let _ = parse_model_list(v.to_string().as_bytes());
        }

        /// Google's `RetryInfo.retryDelay` is any text a server chooses.
        #[test]
        fn any_retry_delay_is_read_or_ignored(delay in prop_oneof![
            any::<String>(),
            any::<f64>().prop_map(|f| format!("{f}s")),
            "[0-9]{1,400}(\\.[0-9]{0,9})?s",
        ]) {
            let body = json!({"error": {"code": 429, "message": "slow down", "status": "RESOURCE_EXHAUSTED",
                                        "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay}]}});
            match classify_status(429, None, body.to_string().as_bytes()) {
                BackendError::RateLimited { .. } => {}
                other => prop_assert!(false, "{other:?}"),
            }
        }

        #[test]
        fn redaction_never_panics_and_removes_the_key(
            text in any::<String>(),
            key in "[A-Za-z0-9_-]{16,40}",
            cut in any::<prop::sample::Index>(),
        ) {
            let _ = redact(&text, Some(&text));
            let at = text.char_indices().map(|(i, _)| i).nth(cut.index(text.chars().count().max(1))).unwrap_or(text.len());
            let with_key = format!("{}{key}{}", &text[..at], &text[at..]);
            let out = redact(&with_key, Some(&key));
            prop_assert!(!out.contains(&key), "{out}");
        }
    }
}
