//! The HTTP server: Streamable HTTP at `/mcp` (rmcp: sessions for
//! 2025-11-25 clients, stateless for 2026-07-28), the legacy HTTP+SSE
//! transport at `/sse` + `/messages`, and `/healthz`. Every route but
//! `/healthz` passes one guard: `Host` and `Origin` checks (DNS rebinding,
//! cross-site browsers) and, when configured, the bearer token.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rmcp::ServerHandler;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::TransportError;
use super::sessions::{CappedSessions, SessionBudget};
use super::sse::{self, SseState};
use crate::config::HttpSettings;

/// How often idle SSE streams get a keep-alive comment.
const SSE_KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Makes the handler for each new session (and each stateless request).
pub type Handlers<H> = Arc<dyn Fn() -> H + Send + Sync>;

/// Binds the configured address. Binding a non-loopback address without a
/// token logs a loud warning.
pub async fn bind(settings: &HttpSettings) -> Result<TcpListener, TransportError> {
    let addr = SocketAddr::new(settings.host, settings.port);
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| TransportError::Bind { addr, source })?;
    if !settings.host.is_loopback() && settings.token.is_none() {
        tracing::warn!(
            %addr,
            "HTTP transport bound to a non-loopback address WITHOUT MCP_HTTP_TOKEN: anyone who can reach it can generate and delete media; set MCP_HTTP_TOKEN"
        );
    }
    Ok(listener)
}

/// An HTTP server on a bound listener, ready to run.
pub struct HttpServer {
    listener: TcpListener,
    router: Router,
    grace: Duration,
    /// Cancelled when the grace period is over: closes sessions and streams.
    sessions_stop: CancellationToken,
}

impl HttpServer {
    /// Serves handlers made by `handlers` on `listener` (any bound socket:
    /// tests pass `127.0.0.1:0`).
    pub fn new<H: ServerHandler>(
        listener: TcpListener,
        handlers: Handlers<H>,
        settings: &HttpSettings,
    ) -> Self {
        let sessions_stop = CancellationToken::new();
        let router = router(handlers, settings, sessions_stop.clone());
        Self {
            listener,
            router,
            grace: settings.shutdown_grace,
            sessions_stop,
        }
    }

    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// Serves until `shutdown` fires, then stops accepting, lets in-flight
    /// requests finish for up to the grace period, and closes what is left.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), TransportError> {
        let Self {
            listener,
            router,
            grace,
            sessions_stop,
        } = self;
        let graceful = shutdown.clone();
        let serving = axum::serve(listener, router)
            .with_graceful_shutdown(async move { graceful.cancelled().await })
            .into_future();
        tokio::pin!(serving);
        tokio::select! {
            r = &mut serving => return r.map_err(TransportError::Http),
            () = shutdown.cancelled() => {}
        }
        tracing::info!(grace = ?grace, "shutting down: no new connections; waiting for in-flight requests");
        tokio::select! {
            r = &mut serving => {
                sessions_stop.cancel();
                r.map_err(TransportError::Http)
            }
            () = tokio::time::sleep(grace) => {
                tracing::info!("grace period over: closing open sessions and streams");
                sessions_stop.cancel();
                // Streams end once their sessions are cancelled.
                match tokio::time::timeout(Duration::from_secs(2), serving).await {
                    Ok(r) => r.map_err(TransportError::Http),
                    Err(_) => Ok(()),
                }
            }
        }
    }
}

/// The routes, with the guard on all but `/healthz`.
fn router<H: ServerHandler>(
    handlers: Handlers<H>,
    settings: &HttpSettings,
    stop: CancellationToken,
) -> Router {
    let budget = SessionBudget::new(settings.max_sessions);
    let sessions = Arc::new(CappedSessions {
        inner: LocalSessionManager::default(),
        budget,
    });
    // Host and Origin are checked by our guard, uniformly for every route;
    // rmcp's own Host check is turned off so the two cannot disagree.
    let config = StreamableHttpServerConfig::default()
        .with_sse_keep_alive(Some(SSE_KEEP_ALIVE))
        .with_cancellation_token(stop.clone())
        .with_max_request_body_bytes(settings.max_body_bytes)
        // Stateless (2026-07-28) answers without notifications come as plain
        // JSON: no SSE framing, so no client-side event size limit applies to
        // a large resources/read.
        .with_json_response(true)
        .disable_allowed_hosts();
    let make = handlers.clone();
    let mcp = StreamableHttpService::new(move || Ok(make()), sessions.clone(), config);
    let sse_state = SseState::new(handlers, sessions.clone(), SSE_KEEP_ALIVE, stop);
    let mcp = Router::new()
        .route_service("/mcp", mcp)
        .layer(axum::middleware::from_fn_with_state(sessions, at_capacity));
    let guard = Arc::new(Guard::new(settings));
    let guarded = Router::new()
        .merge(mcp)
        .route("/sse", get(sse::open::<H>))
        .route("/messages", post(sse::post::<H>))
        .with_state(sse_state)
        .layer(DefaultBodyLimit::max(settings.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(guard, check));
    Router::new().route("/healthz", get(healthz)).merge(guarded)
}

/// rmcp answers a refused session creation with 500; when the refusal was
/// the session cap, say so with 503 (the body already explains).
async fn at_capacity(
    State(sessions): State<Arc<CappedSessions>>,
    req: Request,
    next: Next,
) -> Response {
    let new_session = !req.headers().contains_key("mcp-session-id");
    let mut response = next.run(req).await;
    if new_session && response.status() == StatusCode::INTERNAL_SERVER_ERROR {
        let open = sessions.streamable_sessions().await + sessions.budget.sse_sessions();
        if open >= sessions.budget.max() {
            *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        }
    }
    response
}

/// Liveness: the server answers. Backend reachability is not required.
/// `service` tells a media-gen from other servers on the port (`doctor`).
async fn healthz() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        format!(
            "{{\"status\":\"ok\",\"service\":\"media-gen\",\"version\":\"{}\"}}",
            env!("CARGO_PKG_VERSION")
        ),
    )
}

/// The checks every guarded request passes.
#[derive(Debug)]
pub struct Guard {
    /// SHA-256 of the token: compared in constant time, whatever the length.
    token: Option<[u8; 32]>,
    /// Empty: any host.
    hosts: Vec<String>,
    origins: Vec<OriginRule>,
}

impl Guard {
    pub fn new(settings: &HttpSettings) -> Self {
        Self {
            token: settings
                .token
                .as_ref()
                .map(|t| Sha256::digest(t.expose().as_bytes()).into()),
            hosts: settings
                .allowed_hosts
                .iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
            origins: settings
                .allowed_origins
                .iter()
                .filter_map(|o| OriginRule::parse(o))
                .collect(),
        }
    }

    /// Why a request is refused, if it is.
    fn check(&self, headers: &HeaderMap, authority: Option<&str>) -> Result<(), Refusal> {
        if !self.hosts.is_empty() {
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .or(authority);
            if !host.is_some_and(|h| self.host_allowed(h)) {
                return Err(Refusal::Host);
            }
        }
        if let Some(origin) = headers.get(header::ORIGIN) {
            let ok = origin
                .to_str()
                .ok()
                .is_some_and(|o| self.origins.iter().any(|r| r.matches(o)));
            if !ok {
                return Err(Refusal::Origin);
            }
        }
        if let Some(expected) = &self.token {
            let given = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| {
                    v.strip_prefix("Bearer ")
                        .or_else(|| v.strip_prefix("bearer "))
                })
                .map(|t| Sha256::digest(t.trim().as_bytes()));
            let ok = given.is_some_and(|g| bool::from(g.as_slice().ct_eq(expected)));
            if !ok {
                return Err(Refusal::Token);
            }
        }
        Ok(())
    }

    fn host_allowed(&self, host: &str) -> bool {
        let host = host.trim().to_ascii_lowercase();
        let name = host_name(&host);
        self.hosts.iter().any(|h| *h == host || *h == name)
    }
}

/// Why the guard refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    Host,
    Origin,
    Token,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Self::Host => (
                StatusCode::FORBIDDEN,
                "Forbidden: Host header not allowed (set MCP_HTTP_ALLOWED_HOSTS to serve other names)",
            )
                .into_response(),
            Self::Origin => (
                StatusCode::FORBIDDEN,
                "Forbidden: Origin not allowed (set MCP_HTTP_ALLOWED_ORIGINS to allow a web client)",
            )
                .into_response(),
            Self::Token => (
                StatusCode::UNAUTHORIZED,
                [(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"media-gen\""),
                )],
                "Unauthorized: send `Authorization: Bearer <MCP_HTTP_TOKEN>`",
            )
                .into_response(),
        }
    }
}

async fn check(State(guard): State<Arc<Guard>>, req: Request, next: Next) -> Response {
    let authority = req.uri().authority().map(|a| a.as_str().to_owned());
    match guard.check(req.headers(), authority.as_deref()) {
        Ok(()) => next.run(req).await,
        Err(refusal) => {
            tracing::debug!(?refusal, path = %req.uri().path(), "HTTP request refused");
            refusal.into_response()
        }
    }
}

/// The name part of a `Host` value: `[::1]:8318` → `::1`, `a.b:80` → `a.b`.
fn host_name(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            name
        }
        _ => host,
    }
}

/// An allowed origin: `scheme://host`, `scheme://host:port`,
/// `scheme://host:*` (any port) or `null`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginRule {
    scheme: String,
    host: String,
    /// `None`: any port.
    port: Option<u16>,
    null: bool,
}

impl OriginRule {
    pub fn parse(rule: &str) -> Option<Self> {
        let rule = rule.trim().to_ascii_lowercase();
        if rule == "null" {
            return Some(Self {
                scheme: String::new(),
                host: String::new(),
                port: None,
                null: true,
            });
        }
        if let Some(base) = rule.strip_suffix(":*") {
            let (scheme, host) = base.split_once("://")?;
            return Some(Self {
                scheme: scheme.to_owned(),
                host: host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_owned(),
                port: None,
                null: false,
            });
        }
        let (scheme, host, port) = split_origin(&rule)?;
        Some(Self {
            scheme,
            host,
            port: Some(port),
            null: false,
        })
    }

    pub fn matches(&self, origin: &str) -> bool {
        let origin = origin.trim().to_ascii_lowercase();
        if self.null || origin == "null" {
            return self.null && origin == "null";
        }
        match split_origin(&origin) {
            Some((scheme, host, port)) => {
                scheme == self.scheme && host == self.host && self.port.is_none_or(|p| p == port)
            }
            None => false,
        }
    }
}

/// `scheme://host[:port]` → (scheme, host, port with the scheme's default).
fn split_origin(origin: &str) -> Option<(String, String, u16)> {
    let (scheme, rest) = origin.split_once("://")?;
    let rest = rest.trim_end_matches('/');
    if rest.is_empty() || rest.contains('/') {
        return None;
    }
    let default = match scheme {
        "https" => 443,
        "http" => 80,
        _ => return None,
    };
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (h, after) = v6.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if after.is_empty() => default,
            None => return None,
        };
        (h.to_owned(), port)
    } else {
        match rest.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), p.parse().ok()?),
            None => (rest.to_owned(), default),
        }
    };
    Some((scheme.to_owned(), host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_rules() {
        let any_port = OriginRule::parse("http://localhost:*").unwrap();
        assert!(any_port.matches("http://localhost:5173"));
        assert!(any_port.matches("http://LOCALHOST"));
        assert!(!any_port.matches("https://localhost:5173"));
        assert!(!any_port.matches("http://localhost.evil.com:5173"));
        assert!(!any_port.matches("null"));
        let exact = OriginRule::parse("https://app.example.com").unwrap();
        assert!(exact.matches("https://app.example.com"));
        assert!(exact.matches("https://app.example.com:443"));
        assert!(!exact.matches("https://app.example.com:8443"));
        let v6 = OriginRule::parse("http://[::1]:*").unwrap();
        assert!(v6.matches("http://[::1]:3000"));
        assert!(OriginRule::parse("null").unwrap().matches("null"));
        assert!(!exact.matches("https://app.example.com/path"));
    }

    #[test]
    fn host_names() {
        assert_eq!(host_name("127.0.0.1:8318"), "127.0.0.1");
        assert_eq!(host_name("[::1]:8318"), "::1");
        assert_eq!(host_name("localhost"), "localhost");
        assert_eq!(host_name("::1"), "::1");
    }
}
