//! The legacy HTTP+SSE transport (protocol 2024-11-05), which rmcp dropped in
//! 0.11: `GET /sse` opens a stream whose first event, `endpoint`, names
//! `/messages?sessionId=…`; the client POSTs JSON-RPC messages there (202) and
//! reads every server message as an `event: message` frame. Each stream is
//! one MCP session bridged to a handler through rmcp's [`Transport`] trait.
//! The session ends when the stream closes.
//!
//! What the server has to say waits in the session's [`Outbox`], serialized,
//! until the stream takes it. A client that does not read its stream cannot
//! make that queue grow without end: past [`MAX_QUEUED_BYTES`] or
//! [`MAX_QUEUED_MESSAGES`] the session is closed and its connection dropped
//! (which also frees what hyper and the kernel hold for it), with one log
//! line saying why; other sessions are not affected. Likewise at most
//! [`MAX_RUNNING`] requests of a session are worked on at once.

use std::collections::{HashMap, HashSet, VecDeque};
use std::convert::Infallible;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::{Stream, StreamExt};
use rmcp::model::{
    ClientJsonRpcMessage, ClientNotification, JsonRpcMessage, RequestId, ServerJsonRpcMessage,
};
use rmcp::transport::Transport;
use rmcp::{RoleServer, ServerHandler, ServiceExt};
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use super::http::{ConnectionHandle, Handlers};
use super::sessions::{CappedSessions, SessionBudget, SseSlot};

/// Messages a session buffers from its client before the POST waits.
const CHANNEL: usize = 64;

/// Most serialized bytes a session may have waiting for its stream. A
/// message is always accepted into an empty queue, so one answer larger
/// than this (a big `resources/read`) still goes out to a reading client.
pub const MAX_QUEUED_BYTES: usize = 64 << 20;

/// Most messages a session may have waiting for its stream.
pub const MAX_QUEUED_MESSAGES: usize = 1024;

/// Most requests of one session the server works on at once. `POST
/// /messages` answers 202 before the work is done, so without this a
/// client could start any number of large reads; further requests wait
/// their turn (in order, with the messages after them).
pub const MAX_RUNNING: usize = 16;

type SessionMap = Arc<RwLock<HashMap<String, Arc<Session>>>>;

/// The live legacy SSE sessions: session id → the way into its server.
pub struct SseState<H> {
    handlers: Handlers<H>,
    sessions: SessionMap,
    budget: Arc<SessionBudget>,
    streamable: Arc<CappedSessions>,
    keep_alive: Duration,
    /// Cancelled when the server starts shutting down: a session with no
    /// request in flight closes its stream at once.
    draining: CancellationToken,
    /// Cancelled when the grace period is over: ends every stream and session.
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
            draining: self.draining.clone(),
            shutdown: self.shutdown.clone(),
        }
    }
}

impl<H> SseState<H> {
    pub fn new(
        handlers: Handlers<H>,
        streamable: Arc<CappedSessions>,
        keep_alive: Duration,
        draining: CancellationToken,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            handlers,
            sessions: Arc::default(),
            budget: streamable.budget.clone(),
            streamable,
            keep_alive,
            draining,
            shutdown,
        }
    }
}

/// One legacy SSE session, as `POST /messages` reaches it.
struct Session {
    to_server: mpsc::Sender<ClientJsonRpcMessage>,
    outbox: Arc<Outbox>,
}

/// What a session has yet to send its client, serialized, and which of the
/// client's requests are still being worked on.
#[derive(Default)]
struct Outbox {
    state: Mutex<OutboxState>,
    /// Wakes the stream (a message, or the end) and whoever waits for the
    /// session to be idle.
    changed: Notify,
}

#[derive(Default)]
struct OutboxState {
    queue: VecDeque<String>,
    bytes: usize,
    /// No more messages: the stream ends once the queue is empty.
    closing: bool,
    /// Over the bound: nothing more is queued or sent.
    overflowed: bool,
    /// Requests received and not yet answered.
    in_flight: HashSet<RequestId>,
    /// Requests handed to the server and not yet answered.
    running: HashSet<RequestId>,
}

/// What [`Outbox::push`] did.
enum Pushed {
    Queued,
    /// Dropped: the session is closing or closed.
    Dropped,
    /// This message took the queue over the bound (bytes, messages queued).
    Overflow(usize, usize),
}

impl Outbox {
    fn lock(&self) -> std::sync::MutexGuard<'_, OutboxState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn push(&self, message: &ServerJsonRpcMessage) -> Pushed {
        let answered = match message {
            JsonRpcMessage::Response(r) => Some(r.id.clone()),
            JsonRpcMessage::Error(e) => e.id.clone(),
            _ => None,
        };
        let data = serde_json::to_string(message).unwrap_or_default();
        let mut s = self.lock();
        if let Some(id) = answered {
            s.in_flight.remove(&id);
            s.running.remove(&id);
        }
        let pushed = if s.overflowed || s.closing {
            Pushed::Dropped
        } else if !s.queue.is_empty()
            && (s.bytes + data.len() > MAX_QUEUED_BYTES || s.queue.len() >= MAX_QUEUED_MESSAGES)
        {
            let counts = (s.bytes + data.len(), s.queue.len() + 1);
            s.overflowed = true;
            s.queue.clear();
            s.bytes = 0;
            Pushed::Overflow(counts.0, counts.1)
        } else {
            s.bytes += data.len();
            s.queue.push_back(data);
            Pushed::Queued
        };
        drop(s);
        self.changed.notify_waiters();
        pushed
    }

    /// The next message for the stream; `None` once the session closes and
    /// everything queued before has been taken.
    async fn next(&self) -> Option<String> {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            {
                let mut s = self.lock();
                if let Some(data) = s.queue.pop_front() {
                    s.bytes -= data.len();
                    return Some(data);
                }
                if s.closing || s.overflowed {
                    return None;
                }
            }
            changed.await;
        }
    }

    /// Ends the stream after what is queued.
    fn close(&self) {
        self.lock().closing = true;
        self.changed.notify_waiters();
    }

    /// Waits until no request of the client is being worked on.
    async fn idle(&self) {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.lock().in_flight.is_empty() {
                return;
            }
            changed.await;
        }
    }

    /// Notes a message from the client: a request is in flight until it is
    /// answered or cancelled.
    fn received(&self, message: &ClientJsonRpcMessage) {
        let mut s = self.lock();
        match message {
            JsonRpcMessage::Request(r) => {
                s.in_flight.insert(r.id.clone());
            }
            JsonRpcMessage::Notification(n) => {
                if let ClientNotification::CancelledNotification(c) = &n.notification
                    && let Some(id) = &c.params.request_id
                {
                    s.in_flight.remove(id);
                    s.running.remove(id);
                }
            }
            _ => {}
        }
        drop(s);
        self.changed.notify_waiters();
    }

    /// Whether the server may start `message` now (anything but a request
    /// may; a request while fewer than [`MAX_RUNNING`] run). Counts it.
    fn start(&self, message: &ClientJsonRpcMessage) -> bool {
        let JsonRpcMessage::Request(r) = message else {
            return true;
        };
        let mut s = self.lock();
        if s.running.len() >= MAX_RUNNING {
            return false;
        }
        s.running.insert(r.id.clone());
        true
    }
}

/// The rmcp side of a session: messages from `POST /messages` in, the
/// server's messages out to the [`Outbox`]. Sending never waits for the
/// client, so nothing piles up inside rmcp.
struct Bridge {
    id: String,
    from_client: mpsc::Receiver<ClientJsonRpcMessage>,
    /// The next message, a request waiting for [`MAX_RUNNING`] to allow it.
    held: Option<ClientJsonRpcMessage>,
    outbox: Arc<Outbox>,
    sessions: SessionMap,
    stop: CancellationToken,
    connection: Option<ConnectionHandle>,
}

impl Transport<RoleServer> for Bridge {
    type Error = Infallible;

    fn send(
        &mut self,
        item: ServerJsonRpcMessage,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        if let Pushed::Overflow(bytes, messages) = self.outbox.push(&item) {
            tracing::warn!(
                session = %self.id,
                "closing legacy SSE session: its client is not reading the stream ({messages} messages, {} MiB waiting; the limits are {MAX_QUEUED_MESSAGES} messages and {} MiB)",
                bytes >> 20,
                MAX_QUEUED_BYTES >> 20,
            );
            if let Ok(mut map) = self.sessions.write() {
                map.remove(&self.id);
            }
            self.stop.cancel();
            // The stream may not be polled again (hyper waits for the client
            // to read what it holds): drop the whole connection.
            if let Some(c) = &self.connection {
                c.close();
            }
        }
        std::future::ready(Ok(()))
    }

    async fn receive(&mut self) -> Option<ClientJsonRpcMessage> {
        let outbox = self.outbox.clone();
        loop {
            let changed = outbox.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            // Kept in `self` across awaits: a dropped receive loses nothing.
            if self.held.is_none() {
                self.held = Some(self.from_client.recv().await?);
            }
            let message = self.held.take()?;
            if outbox.start(&message) {
                return Some(message);
            }
            self.held = Some(message);
            changed.await;
        }
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        self.from_client.close();
        self.outbox.close();
        Ok(())
    }
}

/// Removes the session when its stream is dropped (client gone or shutdown).
struct SessionGuard {
    id: String,
    sessions: SessionMap,
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
pub async fn open<H: ServerHandler>(
    State(state): State<SseState<H>>,
    connection: Option<Extension<ConnectionHandle>>,
) -> Response {
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
    let outbox = Arc::new(Outbox::default());
    if let Ok(mut map) = state.sessions.write() {
        map.insert(
            id.clone(),
            Arc::new(Session {
                to_server,
                outbox: outbox.clone(),
            }),
        );
    }
    let stop = state.shutdown.child_token();
    let server = (state.handlers)();
    let transport = Bridge {
        id: id.clone(),
        from_client,
        held: None,
        outbox: outbox.clone(),
        sessions: state.sessions.clone(),
        stop: stop.clone(),
        connection: connection.map(|Extension(c)| c),
    };
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
    // At shutdown, a session with nothing in flight ends its stream now (so
    // it does not hold the server for the grace period); one that is still
    // working ends it once its answers are out.
    let draining = state.draining.clone();
    let drain_outbox = outbox.clone();
    let drain_stop = stop.clone();
    tokio::spawn(async move {
        tokio::select! {
            () = draining.cancelled() => {}
            () = drain_stop.cancelled() => return,
        }
        tokio::select! {
            () = drain_outbox.idle() => drain_outbox.close(),
            () = drain_stop.cancelled() => {}
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
    let messages = futures::stream::unfold(outbox, |outbox| async move {
        let data = outbox.next().await?;
        Some((
            Ok::<_, Infallible>(Event::default().event("message").data(data)),
            outbox,
        ))
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
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !super::http::is_json(&headers) {
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            [(header::ACCEPT, "application/json")],
            "Unsupported Media Type: send the JSON-RPC message with `Content-Type: application/json`",
        )
            .into_response();
    }
    let Some(id) = q.session_id else {
        return (
            StatusCode::BAD_REQUEST,
            "missing sessionId; use the endpoint sent by GET /sse",
        )
            .into_response();
    };
    let session = state
        .sessions
        .read()
        .ok()
        .and_then(|map| map.get(&id).cloned());
    let Some(session) = session else {
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
    session.outbox.received(&message);
    if session.to_server.send(message).await.is_err() {
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
