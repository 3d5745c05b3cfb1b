//! The legacy HTTP+SSE transport (protocol 2024-11-05), which rmcp dropped in
//! 0.11: `GET /sse` opens a stream whose first event, `endpoint`, names
//! `/messages?sessionId=…`; the client POSTs JSON-RPC messages there (202) and
//! reads every server message as an `event: message` frame. Each stream is
//! one MCP session bridged to a handler through rmcp's
//! `(Sink, Stream)` transport. The session ends when the stream closes.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::{Stream, StreamExt};
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use rmcp::{ServerHandler, ServiceExt};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::{CancellationToken, PollSender};

use super::http::Handlers;
use super::sessions::{CappedSessions, SessionBudget, SseSlot};

/// Messages a session buffers in each direction before senders wait.
const CHANNEL: usize = 64;

/// The live legacy SSE sessions: session id → the way into its server.
pub struct SseState<H> {
    handlers: Handlers<H>,
    sessions: Arc<RwLock<HashMap<String, mpsc::Sender<ClientJsonRpcMessage>>>>,
    budget: Arc<SessionBudget>,
    streamable: Arc<CappedSessions>,
    keep_alive: Duration,
    /// Cancelled at shutdown: ends every stream and session.
    shutdown: CancellationToken,
}

// Not derived: a derive would ask `H: Clone`, which the state never needs.
impl<H> Clone for SseState<H> {
    fn clone(&self) -> Self {
        Self {
            handlers: self.handlers.clone(),
            sessions: self.sessions.clone(),
            budget: self.budget.clone(),
            streamable: self.streamable.clone(),
            keep_alive: self.keep_alive,
            shutdown: self.shutdown.clone(),
        }
    }
}

impl<H> SseState<H> {
    pub fn new(
        handlers: Handlers<H>,
        streamable: Arc<CappedSessions>,
        keep_alive: Duration,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            handlers,
            sessions: Arc::default(),
            budget: streamable.budget.clone(),
            streamable,
            keep_alive,
            shutdown,
        }
    }
}

/// Removes the session when its stream is dropped (client gone or shutdown).
struct SessionGuard {
    id: String,
    sessions: Arc<RwLock<HashMap<String, mpsc::Sender<ClientJsonRpcMessage>>>>,
    stop: CancellationToken,
    _slot: SseSlot,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        if let Ok(mut map) = self.sessions.write() {
            map.remove(&self.id);
        }
        self.stop.cancel();
        tracing::debug!(session = %self.id, "legacy SSE session closed");
    }
}

/// `GET /sse`: opens a session.
pub async fn open<H: ServerHandler>(State(state): State<SseState<H>>) -> Response {
    let streamable = state.streamable.streamable_sessions().await;
    let Some(slot) = state.budget.try_take_sse(streamable) else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "too many sessions; close idle sessions or raise MCP_HTTP_MAX_SESSIONS",
        )
            .into_response();
    };
    let id = uuid_like();
    let (to_server, from_client) = mpsc::channel::<ClientJsonRpcMessage>(CHANNEL);
    let (to_client, from_server) = mpsc::channel::<ServerJsonRpcMessage>(CHANNEL);
    if let Ok(mut map) = state.sessions.write() {
        map.insert(id.clone(), to_server);
    }
    let stop = state.shutdown.child_token();
    let server = (state.handlers)();
    let transport = (PollSender::new(to_client), ReceiverStream::new(from_client));
    let session_stop = stop.clone();
    let session_id = id.clone();
    tokio::spawn(async move {
        match server.serve_with_ct(transport, session_stop).await {
            Ok(running) => {
                let reason = running.waiting().await;
                tracing::debug!(session = %session_id, ?reason, "legacy SSE session ended");
            }
            Err(e) => {
                tracing::debug!(session = %session_id, error = %e, "legacy SSE session did not start")
            }
        }
    });
    tracing::debug!(session = %id, "legacy SSE session opened");
    let guard = SessionGuard {
        id: id.clone(),
        sessions: state.sessions.clone(),
        stop: stop.clone(),
        _slot: slot,
    };
    let endpoint = futures::stream::once(async move {
        Ok::<_, Infallible>(
            Event::default()
                .event("endpoint")
                .data(format!("/messages?sessionId={id}")),
        )
    });
    let messages = ReceiverStream::new(from_server).map(|msg| {
        let data = serde_json::to_string(&msg).unwrap_or_default();
        Ok::<_, Infallible>(Event::default().event("message").data(data))
    });
    let stream = endpoint
        .chain(messages)
        .take_until(stop.cancelled_owned())
        .map(move |e| {
            let _alive = &guard;
            e
        });
    Sse::new(Box::pin(stream) as std::pin::Pin<Box<dyn Stream<Item = _> + Send>>)
        .keep_alive(KeepAlive::new().interval(state.keep_alive))
        .into_response()
}

#[derive(Debug, serde::Deserialize)]
pub struct SessionQuery {
    #[serde(rename = "sessionId")]
    session_id: Option<String>,
}

/// `POST /messages?sessionId=…`: one JSON-RPC message for a session.
pub async fn post<H: ServerHandler>(
    State(state): State<SseState<H>>,
    Query(q): Query<SessionQuery>,
    body: Bytes,
) -> Response {
    let Some(id) = q.session_id else {
        return (
            StatusCode::BAD_REQUEST,
            "missing sessionId; use the endpoint sent by GET /sse",
        )
            .into_response();
    };
    let sender = state
        .sessions
        .read()
        .ok()
        .and_then(|map| map.get(&id).cloned());
    let Some(sender) = sender else {
        return (
            StatusCode::NOT_FOUND,
            "unknown or expired session; open a new one with GET /sse",
        )
            .into_response();
    };
    let message: ClientJsonRpcMessage = match serde_json::from_slice(&body) {
        Ok(m) => m,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("not a JSON-RPC message: {e}"),
            )
                .into_response();
        }
    };
    if sender.send(message).await.is_err() {
        return (
            StatusCode::NOT_FOUND,
            "the session has ended; open a new one with GET /sse",
        )
            .into_response();
    }
    StatusCode::ACCEPTED.into_response()
}

/// A random session id (128 bits, hex).
fn uuid_like() -> String {
    let a: u64 = rand::random();
    let b: u64 = rand::random();
    format!("{a:016x}{b:016x}")
}
