//! One retry loop for every provider call: exponential backoff with full
//! jitter, `Retry-After` honoured, the whole call bounded by a deadline.

use std::time::Duration;

use reqwest::Url;
use tokio::time::Instant;

use super::error::{BackendError, classify_status};

/// Retry limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total tries, the first included.
    pub max_attempts: u32,
    /// Backoff before the second try; doubles each time.
    pub base_delay: Duration,
    /// Cap on one backoff.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(8),
        }
    }
}

impl RetryPolicy {
    /// Upper bound of the backoff after `attempt` (1-based) failed tries.
    pub fn backoff_cap(&self, attempt: u32) -> Duration {
        let exp = attempt.saturating_sub(1).min(20);
        self.base_delay
            .saturating_mul(1u32 << exp)
            .min(self.max_delay)
    }

    /// Full jitter: uniform in `[0, cap]`.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let cap = self.backoff_cap(attempt);
        let nanos = u64::try_from(cap.as_nanos()).unwrap_or(u64::MAX);
        if nanos == 0 {
            return Duration::ZERO;
        }
        Duration::from_nanos(rand::random_range(0..=nanos))
    }
}

/// The outcome of one HTTP attempt that did not succeed.
#[derive(Debug)]
pub(super) enum Attempt {
    /// No connection: refused, DNS, TLS handshake … (nothing is listening).
    Connect(String),
    /// A connection that broke after the request went out: reset, closed
    /// before the answer, or the answer cut off half-way. Something answers
    /// there; this answer was lost.
    Broken(String),
    /// A response with a non-success status.
    Status {
        status: u16,
        retry_after: Option<Duration>,
        body: bytes::Bytes,
    },
}

/// Sends a request and reads the whole body.
pub(super) async fn send(rb: reqwest::RequestBuilder) -> Result<bytes::Bytes, Attempt> {
    let resp = rb.send().await.map_err(|e| {
        if e.is_connect() || e.is_builder() {
            Attempt::Connect(describe(&e))
        } else {
            Attempt::Broken(format!("before the answer came: {}", describe(&e)))
        }
    })?;
    let status = resp.status();
    let retry_after = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after);
    let body = resp.bytes().await.map_err(|e| {
        Attempt::Broken(format!(
            "while reading the HTTP {} answer: {}",
            status.as_u16(),
            describe(&e)
        ))
    })?;
    if status.is_success() {
        Ok(body)
    } else {
        Err(Attempt::Status {
            status: status.as_u16(),
            retry_after,
            body,
        })
    }
}

/// `Retry-After` as seconds or as an HTTP date (RFC 9110 §10.2.3); a date
/// already past is no wait.
fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// The innermost cause of a reqwest error (e.g. "Connection refused").
fn describe(e: &reqwest::Error) -> String {
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg = s.to_string();
        src = s.source();
    }
    msg
}

/// Runs `attempt` until it succeeds, fails for good, or `timeout` passes.
/// Returns the body and the number of attempts made.
pub(super) async fn run<F, Fut>(
    policy: &RetryPolicy,
    timeout: Duration,
    base_url: &Url,
    mut attempt: F,
) -> Result<(bytes::Bytes, u32), BackendError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bytes::Bytes, Attempt>>,
{
    let deadline = Instant::now() + timeout;
    let mut tries = 0u32;
    // Why the tries before this one failed: when the budget runs out
    // during a retry, that is the real cause, not "no answer in time".
    let mut last_error = None;
    loop {
        tries += 1;
        let outcome = match tokio::time::timeout_at(deadline, attempt()).await {
            Ok(r) => r,
            Err(_) => return Err(last_error.unwrap_or(BackendError::Timeout { after: timeout })),
        };
        let (error, server_delay) = match outcome {
            Ok(body) => return Ok((body, tries)),
            Err(Attempt::Connect(reason)) => (
                BackendError::Unavailable {
                    url: base_url.as_str().trim_end_matches('/').to_owned(),
                    reason,
                },
                None,
            ),
            Err(Attempt::Broken(reason)) => (BackendError::Interrupted { reason }, None),
            Err(Attempt::Status {
                status,
                retry_after,
                body,
            }) => {
                let e = classify_status(status, retry_after, &body);
                // The server's word on when to come back: a 429's (its
                // header, or Google's `RetryInfo`), a 503's `Retry-After`
                // (RFC 9110), and any other retryable answer that has one.
                let delay = match &e {
                    BackendError::RateLimited { retry_after, .. } => *retry_after,
                    _ => retry_after,
                };
                (e, delay)
            }
        };
        if !error.is_retryable() || tries >= policy.max_attempts {
            return Err(error);
        }
        let delay = server_delay.unwrap_or_else(|| policy.backoff(tries));
        // A server's `Retry-After` may be any number: one past the end of
        // time is as much "too late" as one past the deadline.
        if Instant::now()
            .checked_add(delay)
            .is_none_or(|at| at >= deadline)
        {
            // Waiting would outlast the request budget: report the real cause now.
            return Err(error);
        }
        tracing::debug!(attempt = tries, ?delay, error = %error, "retrying backend call");
        last_error = Some(error);
        tokio::time::sleep(delay).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        };
        assert_eq!(p.backoff_cap(1), Duration::from_millis(100));
        assert_eq!(p.backoff_cap(2), Duration::from_millis(200));
        assert_eq!(p.backoff_cap(4), Duration::from_millis(800));
        assert_eq!(p.backoff_cap(5), Duration::from_secs(1));
        assert_eq!(p.backoff_cap(60), Duration::from_secs(1));
        for attempt in 1..8 {
            for _ in 0..100 {
                assert!(p.backoff(attempt) <= p.backoff_cap(attempt));
            }
        }
        // Full jitter actually varies.
        let samples: std::collections::HashSet<_> = (0..50).map(|_| p.backoff(3)).collect();
        assert!(samples.len() > 10);
    }

    fn url() -> Url {
        Url::parse("http://127.0.0.1:9").unwrap()
    }

    fn status(code: u16, retry_after: Option<u64>) -> Attempt {
        Attempt::Status {
            status: code,
            retry_after: retry_after.map(Duration::from_secs),
            body: bytes::Bytes::from_static(br#"{"error":"x"}"#),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retries_transient_then_succeeds() {
        let mut n = 0;
        let policy = RetryPolicy::default();
        let (body, tries) = run(&policy, Duration::from_secs(60), &url(), || {
            n += 1;
            let r = if n < 3 {
                Err(status(503, None))
            } else {
                Ok(bytes::Bytes::from_static(b"ok"))
            };
            async move { r }
        })
        .await
        .unwrap();
        assert_eq!((&body[..], tries), (&b"ok"[..], 3));
    }

    #[tokio::test(start_paused = true)]
    async fn does_not_retry_client_errors() {
        let mut n = 0;
        let err = run(
            &RetryPolicy::default(),
            Duration::from_secs(60),
            &url(),
            || {
                n += 1;
                async { Err::<bytes::Bytes, _>(status(401, None)) }
            },
        )
        .await
        .unwrap_err();
        assert!(matches!(err, BackendError::AuthFailed { .. }));
        assert_eq!(n, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn honours_retry_after_and_gives_up_when_it_exceeds_the_deadline() {
        let start = Instant::now();
        let mut n = 0;
        let err = run(
            &RetryPolicy::default(),
            Duration::from_secs(30),
            &url(),
            || {
                n += 1;
                async { Err::<bytes::Bytes, _>(status(429, Some(60))) }
            },
        )
        .await
        .unwrap_err();
        assert!(matches!(err, BackendError::RateLimited { .. }));
        assert_eq!(n, 1, "a 60 s Retry-After does not fit a 30 s budget");
        assert!(start.elapsed() < Duration::from_secs(1));

        let mut n = 0;
        let start = Instant::now();
        let r = run(
            &RetryPolicy::default(),
            Duration::from_secs(30),
            &url(),
            || {
                n += 1;
                let r = if n == 1 {
                    Err(status(429, Some(5)))
                } else {
                    Ok(bytes::Bytes::new())
                };
                async move { r }
            },
        )
        .await;
        assert!(r.is_ok());
        assert!(
            start.elapsed() >= Duration::from_secs(5),
            "waited for Retry-After"
        );
    }

    /// A 503's `Retry-After` is the server's word too (RFC 9110): waited
    /// for when it fits the budget, not replaced by a shorter backoff.
    #[tokio::test(start_paused = true)]
    async fn honours_retry_after_on_503() {
        let start = Instant::now();
        let mut n = 0;
        let r = run(
            &RetryPolicy::default(),
            Duration::from_secs(30),
            &url(),
            || {
                n += 1;
                let r = if n == 1 {
                    Err(status(503, Some(5)))
                } else {
                    Ok(bytes::Bytes::new())
                };
                async move { r }
            },
        )
        .await;
        assert!(r.is_ok());
        assert!(
            start.elapsed() >= Duration::from_secs(5),
            "waited {:?}, not the 5 s Retry-After",
            start.elapsed()
        );

        // One that does not fit the budget: the real cause at once.
        let start = Instant::now();
        let mut n = 0;
        let err = run(
            &RetryPolicy::default(),
            Duration::from_secs(30),
            &url(),
            || {
                n += 1;
                async { Err::<bytes::Bytes, _>(status(503, Some(60))) }
            },
        )
        .await
        .unwrap_err();
        assert!(matches!(
            err,
            BackendError::Failed {
                status: Some(503),
                ..
            }
        ));
        assert_eq!(n, 1);
        assert!(start.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        assert_eq!(parse_retry_after(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO),
            "a date past is no wait"
        );
        let soon = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(30));
        let wait = parse_retry_after(&soon).unwrap();
        assert!(
            wait > Duration::from_secs(25) && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    /// A `Retry-After` of `u64::MAX` seconds (any server may send it)
    /// overflowed `Instant + Duration` and panicked the request.
    #[tokio::test(start_paused = true)]
    async fn a_retry_after_past_the_end_of_time_gives_up_at_once() {
        let mut n = 0;
        let err = run(
            &RetryPolicy::default(),
            Duration::from_secs(30),
            &url(),
            || {
                n += 1;
                async { Err::<bytes::Bytes, _>(status(429, Some(u64::MAX))) }
            },
        )
        .await
        .unwrap_err();
        assert!(matches!(err, BackendError::RateLimited { .. }), "{err}");
        assert_eq!(n, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn deadline_bounds_a_hanging_attempt() {
        let err = run(
            &RetryPolicy::default(),
            Duration::from_secs(2),
            &url(),
            || async {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Ok(bytes::Bytes::new())
            },
        )
        .await
        .unwrap_err();
        assert!(matches!(err, BackendError::Timeout { .. }));
    }

    /// A retry cut off by the deadline reports why the tries before it
    /// failed (here a 500), not a timeout: the backend did answer.
    #[tokio::test(start_paused = true)]
    async fn a_retry_cut_off_by_the_deadline_reports_the_earlier_failure() {
        let mut n = 0;
        let err = run(
            &RetryPolicy {
                max_attempts: 4,
                base_delay: Duration::from_millis(100),
                max_delay: Duration::from_millis(100),
            },
            Duration::from_secs(2),
            &url(),
            || {
                n += 1;
                let first = n == 1;
                async move {
                    if first {
                        Err(status(500, None))
                    } else {
                        // The retry hangs past the budget.
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                        Ok(bytes::Bytes::new())
                    }
                }
            },
        )
        .await
        .unwrap_err();
        assert_eq!(n, 2);
        assert!(
            matches!(
                err,
                BackendError::Failed {
                    status: Some(500),
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn connection_errors_are_retried_then_unavailable() {
        let mut n = 0;
        let err = run(
            &RetryPolicy::default(),
            Duration::from_secs(60),
            &url(),
            || {
                n += 1;
                async { Err::<bytes::Bytes, _>(Attempt::Connect("Connection refused".into())) }
            },
        )
        .await
        .unwrap_err();
        assert_eq!(n, 4);
        assert!(err.to_string().contains("127.0.0.1:9"), "{err}");
    }
}
