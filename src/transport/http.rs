//! The HTTP server: Streamable HTTP at `/mcp` (rmcp: sessions for
//! 2025-11-25 clients, stateless for 2026-07-28), the legacy HTTP+SSE
//! transport at `/sse` + `/messages`, `/healthz`, and the web routes the
//! caller adds (downloads, uploads, the gallery). Every route but
//! `/healthz` passes one guard: `Host` and `Origin` checks (DNS rebinding,
//! cross-site browsers) and, when configured, the bearer token. Web routes
//! also take the token from a cookie, set once by opening any of them with
//! `?token=` (browsers cannot send an `Authorization` header on a link).
//!
//! Connections are served by our own accept loop on hyper (what
//! `axum::serve` does, plus two limits): at most `max_connections` at once
//! (more wait in the listen queue, so the descriptors backend requests and
//! files need are never taken by clients), and a connection that does not
//! send a request's headers within `header_timeout` is closed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::StreamExt;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use rmcp::ServerHandler;
use rmcp::model::ClientJsonRpcMessage;
use rmcp::transport::streamable_http_server::session::SessionManager;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::TransportError;
use super::sessions::{CappedSessions, SessionBudget};
use super::sse::{self, SseState};
use crate::config::HttpSettings;

/// How often idle SSE streams get a keep-alive comment.
const SSE_KEEP_ALIVE: Duration = Duration::from_secs(15);

/// How long an answered request's messages stay resumable.
const COMPLETED_CACHE_TTL: Duration = Duration::from_secs(10);

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
        // The port actually bound (port 0 asks the system for one).
        let addr = listener.local_addr().unwrap_or(addr);
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
    header_timeout: Duration,
    max_connections: usize,
    /// Cancelled when shutdown begins: idle streams end, connections finish
    /// their requests and close.
    draining: CancellationToken,
    /// Cancelled when the grace period is over: closes sessions and streams.
    sessions_stop: CancellationToken,
}

impl HttpServer {
    /// Serves handlers made by `handlers` on `listener` (any bound socket:
    /// tests pass `127.0.0.1:0`), the `web` routes behind the same guard
    /// (which also accepts the token cookie for them), and the `probes`
    /// (`/readyz`) outside it, as `/healthz` is.
    pub fn new<H: ServerHandler>(
        listener: TcpListener,
        handlers: Handlers<H>,
        settings: &HttpSettings,
        web: Router,
        probes: Router,
    ) -> Self {
        let draining = CancellationToken::new();
        let sessions_stop = CancellationToken::new();
        let router = router(
            handlers,
            settings,
            draining.clone(),
            sessions_stop.clone(),
            web,
        )
        .merge(probes);
        Self {
            listener,
            router,
            grace: settings.shutdown_grace,
            header_timeout: settings.header_timeout,
            max_connections: settings
                .max_connections
                .unwrap_or_else(default_max_connections),
            draining,
            sessions_stop,
        }
    }

    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// Serves until `shutdown` fires, then stops accepting, closes idle
    /// streams, lets in-flight requests finish for up to the grace period,
    /// and closes what is left.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), TransportError> {
        let Self {
            listener,
            router,
            grace,
            header_timeout,
            max_connections,
            draining,
            sessions_stop,
        } = self;
        tracing::debug!(max_connections, ?header_timeout, "serving HTTP");
        let connections = TaskTracker::new();
        // Cancelled last: drops every connection still open.
        let abort = CancellationToken::new();
        let slots = Arc::new(Semaphore::new(max_connections));
        let mut at_cap = false;
        loop {
            let permit = match slots.clone().try_acquire_owned() {
                Ok(permit) => {
                    at_cap = false;
                    permit
                }
                Err(_) => {
                    if !at_cap {
                        at_cap = true;
                        tracing::warn!(
                            max_connections,
                            "at the HTTP connection limit: new connections wait until one closes (MCP_HTTP_MAX_CONNECTIONS)"
                        );
                    }
                    tokio::select! {
                        permit = slots.clone().acquire_owned() => match permit {
                            Ok(permit) => permit,
                            Err(_) => break,
                        },
                        () = shutdown.cancelled() => break,
                    }
                }
            };
            let stream = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) if is_connection_error(&e) => continue,
                    Err(e) => {
                        // Out of descriptors (EMFILE/ENFILE) or memory: try
                        // again later, never in a hot loop.
                        tracing::warn!(error = %e, "cannot accept a connection; retrying in 1 s");
                        tokio::select! {
                            () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                            () = shutdown.cancelled() => break,
                        }
                    }
                },
                () = shutdown.cancelled() => break,
            };
            connections.spawn(serve_connection(
                stream,
                router.clone(),
                permit,
                header_timeout,
                draining.clone(),
                abort.child_token(),
            ));
        }
        drop(listener);
        tracing::info!(grace = ?grace, "shutting down: no new connections; waiting for in-flight requests");
        draining.cancel();
        connections.close();
        tokio::select! {
            () = connections.wait() => {
                sessions_stop.cancel();
                return Ok(());
            }
            () = tokio::time::sleep(grace) => {}
        }
        tracing::info!("grace period over: closing open sessions and streams");
        sessions_stop.cancel();
        // Streams end once their sessions are cancelled.
        if tokio::time::timeout(Duration::from_secs(2), connections.wait())
            .await
            .is_err()
        {
            abort.cancel();
            let _ = tokio::time::timeout(Duration::from_secs(1), connections.wait()).await;
        }
        Ok(())
    }
}

/// The default connection cap: the open-file limit less what the rest of
/// the server needs (backend connections, the emulator's side of them, the
/// catalog, media and temp files): an eighth of the limit, at least 128.
pub fn default_max_connections() -> usize {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
    match limit {
        Some(n) => {
            let n = usize::try_from(n).unwrap_or(usize::MAX);
            n.saturating_sub((n / 8).max(128)).max(16)
        }
        // No limit.
        None => 65_536,
    }
}

/// Accept errors that concern one connection only (axum::serve's list).
fn is_connection_error(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

/// A way to drop the connection a request came on, for a handler whose
/// response cannot end any other way (a legacy SSE stream whose client
/// does not read: hyper stops polling it). In every request's extensions.
#[derive(Debug, Clone)]
pub struct ConnectionHandle(CancellationToken);

impl ConnectionHandle {
    /// Drops the connection (and what hyper buffered for it).
    pub fn close(&self) {
        self.0.cancel();
    }
}

/// Serves one connection (HTTP/1.1, or HTTP/2 with prior knowledge) until
/// it closes, `kill` fires, or it sends no request within `header_timeout`.
/// At `draining` it finishes the requests under way and closes.
async fn serve_connection(
    stream: TcpStream,
    router: Router,
    _slot: OwnedSemaphorePermit,
    header_timeout: Duration,
    draining: CancellationToken,
    kill: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    let handle = ConnectionHandle(kill.clone());
    let requested = Arc::new(AtomicBool::new(false));
    let service = {
        let requested = requested.clone();
        hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
            requested.store(true, Ordering::Relaxed);
            let mut req = req.map(Body::new);
            req.extensions_mut().insert(handle.clone());
            let mut router = router.clone();
            async move { tower_service::Service::call(&mut router, req).await }
        })
    };
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // hyper's timer covers each HTTP/1 request's headers, from the first
    // byte the connection waits for (so an idle keep-alive connection too).
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
    tokio::pin!(conn);
    // Before the protocol is known (not one byte yet, or half an HTTP/2
    // preface) no hyper timer runs: a connection must have made its first
    // request within the same time.
    let first = tokio::time::sleep(header_timeout);
    tokio::pin!(first);
    let mut waiting_first = true;
    let mut closing = false;
    loop {
        tokio::select! {
            served = conn.as_mut() => {
                if let Err(e) = served {
                    tracing::trace!(error = %e, "connection ended with an error");
                }
                break;
            }
            () = &mut first, if waiting_first => {
                waiting_first = false;
                if !requested.load(Ordering::Relaxed) {
                    tracing::debug!("closing a connection that sent no request in time");
                    break;
                }
            }
            () = draining.cancelled(), if !closing => {
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
            () = kill.cancelled() => break,
        }
    }
}

/// Whether the request's body is declared JSON (`application/json`, any
/// parameters).
pub(super) fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .eq_ignore_ascii_case("application/json")
        })
}

/// The routes, with the guard on all but `/healthz`, and one log line per
/// request.
fn router<H: ServerHandler>(
    handlers: Handlers<H>,
    settings: &HttpSettings,
    draining: CancellationToken,
    stop: CancellationToken,
    web: Router,
) -> Router {
    let budget = SessionBudget::new(settings.max_sessions);
    let mut inner = LocalSessionManager::default();
    // rmcp keeps each answered request's messages for late resumes, 60 s by
    // default: a session reading 6 MB images would hold hundreds of MB it has
    // already delivered. A client resumes after a dropped connection within
    // its retry interval (3 s), so a short window keeps that working.
    inner.session_config.completed_cache_ttl = COMPLETED_CACHE_TTL;
    let sessions = Arc::new(CappedSessions { inner, budget });
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
    let sse_state = SseState::new(
        handlers,
        sessions.clone(),
        SSE_KEEP_ALIVE,
        draining.clone(),
        stop,
    );
    let protocol = McpProtocol {
        sessions: sessions.clone(),
        max_body: settings.max_body_bytes,
        draining,
    };
    let mcp = Router::new()
        .route_service("/mcp", mcp)
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(protocol),
            mcp_protocol,
        ))
        .layer(axum::middleware::from_fn_with_state(sessions, at_capacity));
    let guard = Arc::new(Guard::new(settings));
    let guarded = Router::new()
        .merge(mcp)
        .route("/sse", get(sse::open::<H>))
        .route("/messages", post(sse::post::<H>))
        .with_state(sse_state)
        .layer(DefaultBodyLimit::max(settings.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(guard.clone(), check));
    let web = web.layer(axum::middleware::from_fn_with_state(guard, check_web));
    Router::new()
        .route("/healthz", get(healthz))
        .merge(guarded)
        .merge(web)
        .layer(axum::middleware::from_fn(log_request))
}

/// One line per request at `info`: method, path (without the query: it
/// may hold a token), status and time to the response head.
async fn log_request(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let started = std::time::Instant::now();
    let response = next.run(req).await;
    tracing::info!(
        target: "media_gen::http",
        "{method} {path} {} {:.1} ms",
        response.status().as_u16(),
        started.elapsed().as_secs_f64() * 1000.0
    );
    response
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

/// What [`mcp_protocol`] needs.
struct McpProtocol {
    sessions: Arc<CappedSessions>,
    max_body: usize,
    draining: CancellationToken,
}

/// HTTP details of `/mcp` that rmcp answers otherwise:
/// - a body that is not JSON gets 400 with a JSON-RPC parse error (-32700),
///   and JSON that is no JSON-RPC message 400 with -32600 (rmcp: 415, text);
/// - `DELETE` of a session that does not exist (any more) gets 404, and a
///   successful one 204 (rmcp: 202 for both; clients take 202 for failure);
/// - a `GET` stream (server-to-client messages only) ends when shutdown
///   begins, rather than holding the server for the grace period.
async fn mcp_protocol(State(p): State<Arc<McpProtocol>>, req: Request, next: Next) -> Response {
    match *req.method() {
        Method::POST if is_json(req.headers()) => {
            let (parts, body) = req.into_parts();
            let bytes = match axum::body::to_bytes(body, p.max_body).await {
                Ok(bytes) => bytes,
                Err(e) => {
                    let too_large = std::error::Error::source(&e)
                        .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
                    return if too_large {
                        (
                            StatusCode::PAYLOAD_TOO_LARGE,
                            format!(
                                "Payload Too Large: request body exceeds {} bytes (MCP_HTTP_MAX_BODY_BYTES)",
                                p.max_body
                            ),
                        )
                            .into_response()
                    } else {
                        (
                            StatusCode::BAD_REQUEST,
                            format!("cannot read the request body: {e}"),
                        )
                            .into_response()
                    };
                }
            };
            let value = match serde_json::from_slice::<serde_json::Value>(&bytes) {
                Ok(v) => v,
                Err(e) => {
                    return jsonrpc_error(
                        serde_json::Value::Null,
                        -32700,
                        format!(
                            "Parse error: the body is not JSON ({e}); send one JSON-RPC message"
                        ),
                    );
                }
            };
            if let Err(e) = serde_json::from_value::<ClientJsonRpcMessage>(value.clone()) {
                let id = match value.get("id") {
                    Some(id @ (serde_json::Value::Number(_) | serde_json::Value::String(_))) => {
                        id.clone()
                    }
                    _ => serde_json::Value::Null,
                };
                return jsonrpc_error(
                    id,
                    -32600,
                    format!(
                        "Invalid Request: not a JSON-RPC 2.0 message ({e}); send one object with `jsonrpc`, `method` and, for a request, `id` (batches are not supported)"
                    ),
                );
            }
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Method::DELETE => {
            let id = req
                .headers()
                .get("mcp-session-id")
                .and_then(|v| v.to_str().ok())
                .map(|v| Arc::<str>::from(v.to_owned()));
            if let Some(id) = id
                && !p.sessions.has_session(&id).await.unwrap_or(true)
            {
                return (
                    StatusCode::NOT_FOUND,
                    "Not Found: no such session (it ended or was deleted); start a new one with `initialize`",
                )
                    .into_response();
            }
            let response = next.run(req).await;
            if response.status() == StatusCode::ACCEPTED {
                return StatusCode::NO_CONTENT.into_response();
            }
            response
        }
        Method::GET => {
            let response = next.run(req).await;
            if response.status() != StatusCode::OK {
                return response;
            }
            let (parts, body) = response.into_parts();
            let stream = body
                .into_data_stream()
                .take_until(p.draining.clone().cancelled_owned());
            Response::from_parts(parts, Body::from_stream(stream))
        }
        _ => next.run(req).await,
    }
}

/// A JSON-RPC error answer with HTTP 400.
fn jsonrpc_error(id: serde_json::Value, code: i32, message: String) -> Response {
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": {"code": code, "message": message},
    });
    (
        StatusCode::BAD_REQUEST,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
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

    /// Why a request is refused, if it is. `cookie`: the token may also
    /// come from the [`TOKEN_COOKIE`] (web routes).
    fn check(
        &self,
        headers: &HeaderMap,
        authority: Option<&str>,
        cookie: bool,
    ) -> Result<(), Refusal> {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .or(authority);
        if !self.hosts.is_empty() && !host.is_some_and(|h| self.host_allowed(h)) {
            return Err(Refusal::Host);
        }
        if let Some(origin) = headers.get(header::ORIGIN) {
            // The server's own pages (the gallery) are same-origin: their
            // Origin names the Host they were loaded from.
            let ok = origin.to_str().ok().is_some_and(|o| {
                self.origins.iter().any(|r| r.matches(o)) || host.is_some_and(|h| same_origin(o, h))
            });
            if !ok {
                return Err(Refusal::Origin);
            }
        }
        if self.token.is_some() {
            let bearer = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(bearer_token);
            let from_cookie = || cookie.then(|| token_cookie(headers)).flatten();
            let ok = bearer
                .or_else(from_cookie)
                .is_some_and(|given| self.token_matches(given));
            if !ok {
                return Err(Refusal::Token);
            }
        }
        Ok(())
    }

    /// Whether `given` is the configured token (constant time); `true` when
    /// there is none.
    fn token_matches(&self, given: &str) -> bool {
        self.token.as_ref().is_none_or(|expected| {
            let given = Sha256::digest(given.trim().as_bytes());
            bool::from(given.as_slice().ct_eq(expected))
        })
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
    match guard.check(req.headers(), authority.as_deref(), false) {
        Ok(()) => next.run(req).await,
        Err(refusal) => {
            tracing::debug!(?refusal, path = %req.uri().path(), "HTTP request refused");
            refusal.into_response()
        }
    }
}

/// The token of an `Authorization: Bearer <token>` value. The scheme is
/// case-insensitive (RFC 9110 §11.1).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim_start().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The cookie that carries the token for web routes.
pub const TOKEN_COOKIE: &str = "media_gen_token";

/// The guard of web routes: the token may come from the cookie, and a
/// `GET` with a right `?token=` sets that cookie (HttpOnly,
/// SameSite=Strict) and redirects to the same address without the token,
/// so it stays out of the history and of later links.
async fn check_web(State(guard): State<Arc<Guard>>, req: Request, next: Next) -> Response {
    let authority = req.uri().authority().map(|a| a.as_str().to_owned());
    if req.method() == axum::http::Method::GET
        && let Some((token, rest)) = take_token(req.uri().query())
        && guard.token.is_some()
    {
        if let Err(refusal) = guard.check(req.headers(), authority.as_deref(), false)
            && refusal != Refusal::Token
        {
            return refusal.into_response();
        }
        if !guard.token_matches(&token) {
            return Refusal::Token.into_response();
        }
        let location = match rest {
            Some(q) => format!("{}?{q}", req.uri().path()),
            None => req.uri().path().to_owned(),
        };
        let cookie = format!("{TOKEN_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/");
        let mut response = StatusCode::SEE_OTHER.into_response();
        let headers = response.headers_mut();
        if let (Ok(loc), Ok(cookie)) = (
            HeaderValue::from_str(&location),
            HeaderValue::from_str(&cookie),
        ) {
            headers.insert(header::LOCATION, loc);
            headers.insert(header::SET_COOKIE, cookie);
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
        return response;
    }
    match guard.check(req.headers(), authority.as_deref(), true) {
        Ok(()) => next.run(req).await,
        Err(refusal) => {
            tracing::debug!(?refusal, path = %req.uri().path(), "HTTP request refused");
            refusal.into_response()
        }
    }
}

/// The `token` parameter of a query, and the rest of the query.
fn take_token(query: Option<&str>) -> Option<(String, Option<String>)> {
    let mut token = None;
    let mut rest = form_urlencoded::Serializer::new(String::new());
    let mut any = false;
    for (name, value) in form_urlencoded::parse(query?.as_bytes()) {
        if name == "token" && token.is_none() {
            token = Some(value.into_owned());
        } else {
            rest.append_pair(&name, &value);
            any = true;
        }
    }
    token.map(|t| (t, any.then(|| rest.finish())))
}

/// The value of the token cookie, if the request has one.
fn token_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == TOKEN_COOKIE).then_some(value)
        })
}

/// Whether `origin` (`scheme://host[:port]`) names `host` (a `Host`
/// header value): the request comes from a page of this server.
fn same_origin(origin: &str, host: &str) -> bool {
    let Some((scheme, rest)) = origin.trim().split_once("://") else {
        return false;
    };
    let default = match scheme.to_ascii_lowercase().as_str() {
        "http" => "80",
        "https" => "443",
        _ => return false,
    };
    let with_port = |h: &str| -> String {
        let h = h.trim().to_ascii_lowercase();
        let has_port = match h.strip_prefix('[') {
            Some(v6) => v6.contains("]:"),
            None => h.contains(':'),
        };
        if has_port {
            h
        } else {
            format!("{h}:{default}")
        }
    };
    with_port(rest) == with_port(host)
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
    fn the_bearer_scheme_is_case_insensitive() {
        for value in ["Bearer t0k", "bearer t0k", "BEARER t0k", "bEaReR   t0k "] {
            assert_eq!(bearer_token(value), Some("t0k"), "{value}");
        }
        for value in ["Basic t0k", "Bearert0k", "Bearer ", "t0k"] {
            assert_eq!(bearer_token(value), None, "{value}");
        }
    }

    #[test]
    fn host_names() {
        assert_eq!(host_name("127.0.0.1:8318"), "127.0.0.1");
        assert_eq!(host_name("[::1]:8318"), "::1");
        assert_eq!(host_name("localhost"), "localhost");
        assert_eq!(host_name("::1"), "::1");
    }
}
