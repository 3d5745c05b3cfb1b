//! One cap on concurrent HTTP sessions, shared by Streamable HTTP (rmcp's
//! local session manager, wrapped here) and the legacy SSE bridge.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures::Stream;
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use rmcp::transport::WorkerTransport;
use rmcp::transport::common::server_side_http::{ServerSseMessage, SessionId};
use rmcp::transport::streamable_http_server::session::SessionManager;
use rmcp::transport::streamable_http_server::session::local::{
    LocalSessionManager, LocalSessionManagerError, LocalSessionWorker,
};

/// Counts live sessions of both HTTP transports against one limit.
#[derive(Debug)]
pub struct SessionBudget {
    max: usize,
    sse: AtomicUsize,
}

impl SessionBudget {
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            max,
            sse: AtomicUsize::new(0),
        })
    }

    pub fn max(&self) -> usize {
        self.max
    }

    /// Takes a legacy SSE slot if the total (with `streamable` live
    /// Streamable HTTP sessions) stays within the cap.
    pub fn try_take_sse(self: &Arc<Self>, streamable: usize) -> Option<SseSlot> {
        let mut current = self.sse.load(Ordering::Acquire);
        loop {
            if current + streamable >= self.max {
                return None;
            }
            match self.sse.compare_exchange(
                current,
                current + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Some(SseSlot(self.clone())),
                Err(now) => current = now,
            }
        }
    }

    pub fn sse_sessions(&self) -> usize {
        self.sse.load(Ordering::Acquire)
    }
}

/// A held legacy SSE session slot; released on drop.
#[derive(Debug)]
pub struct SseSlot(Arc<SessionBudget>);

impl Drop for SseSlot {
    fn drop(&mut self) {
        self.0.sse.fetch_sub(1, Ordering::AcqRel);
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CappedError {
    #[error(
        "too many sessions ({0} open, the limit is MCP_HTTP_MAX_SESSIONS); close idle sessions or raise the limit"
    )]
    TooMany(usize),
    #[error(transparent)]
    Local(#[from] LocalSessionManagerError),
}

/// rmcp's [`LocalSessionManager`] with the shared session cap applied when a
/// session is created.
#[derive(Debug)]
pub struct CappedSessions {
    pub inner: LocalSessionManager,
    pub budget: Arc<SessionBudget>,
}

impl CappedSessions {
    pub async fn streamable_sessions(&self) -> usize {
        self.inner.sessions.read().await.len()
    }
}

impl SessionManager for CappedSessions {
    type Error = CappedError;
    type Transport = WorkerTransport<LocalSessionWorker>;

    async fn create_session(&self) -> Result<(SessionId, Self::Transport), Self::Error> {
        let open = self.streamable_sessions().await + self.budget.sse_sessions();
        if open >= self.budget.max() {
            tracing::warn!(open, "refusing a new Streamable HTTP session: at the limit");
            return Err(CappedError::TooMany(open));
        }
        Ok(self.inner.create_session().await?)
    }

    async fn initialize_session(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<ServerJsonRpcMessage, Self::Error> {
        Ok(self.inner.initialize_session(id, message).await?)
    }

    async fn has_session(&self, id: &SessionId) -> Result<bool, Self::Error> {
        Ok(self.inner.has_session(id).await?)
    }

    async fn close_session(&self, id: &SessionId) -> Result<(), Self::Error> {
        Ok(self.inner.close_session(id).await?)
    }

    async fn create_stream(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        Ok(self.inner.create_stream(id, message).await?)
    }

    async fn accept_message(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<(), Self::Error> {
        Ok(self.inner.accept_message(id, message).await?)
    }

    async fn create_standalone_stream(
        &self,
        id: &SessionId,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        Ok(self.inner.create_standalone_stream(id).await?)
    }

    async fn resume(
        &self,
        id: &SessionId,
        last_event_id: String,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        Ok(self.inner.resume(id, last_event_id).await?)
    }
}
