//! Transports for any MCP handler: stdio (JSON-RPC on stdin/stdout, logs on
//! stderr only) and the HTTP server ([`http`]: Streamable HTTP, the legacy
//! SSE bridge, and the security every route shares). They know the
//! handler only through rmcp's `ServerHandler`, so the product server and
//! test servers are served alike.

pub mod http;
mod sessions;
mod sse;

use rmcp::{ServerHandler, ServiceExt};
use tokio_util::sync::CancellationToken;

/// Why serving stopped.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("cannot listen on {addr}: {source}; choose another port with --port or MCP_SSE_PORT")]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("HTTP server error: {0}")]
    Http(#[source] std::io::Error),
    #[error("MCP session error: {0}")]
    Session(String),
}

/// Serves `handler` over stdio until the client closes stdin or `shutdown`
/// fires. Supports both the `initialize` handshake (2025-11-25 and earlier)
/// and the stateless `server/discover` protocol (2026-07-28); rmcp
/// negotiates. `on_ready` runs once the handshake (or the first stateless
/// request) has been answered, so background work never delays the first
/// answer.
pub async fn serve_stdio<H: ServerHandler>(
    handler: H,
    shutdown: CancellationToken,
    on_ready: impl FnOnce(),
) -> Result<(), TransportError> {
    let running = match handler
        .serve_with_ct(rmcp::transport::stdio_pipes(), shutdown)
        .await
    {
        Ok(running) => running,
        // Stdin closed, or a signal came, before any client spoke: the
        // session ended before it began (a person trying it in a
        // terminal pressed Ctrl-D or Ctrl-C); nothing failed.
        Err(
            rmcp::service::ServerInitializeError::ConnectionClosed(_)
            | rmcp::service::ServerInitializeError::Cancelled,
        ) => {
            tracing::debug!("stdio closed before a client initialized");
            return Ok(());
        }
        Err(e) => return Err(TransportError::Session(e.to_string())),
    };
    on_ready();
    let reason = running
        .waiting()
        .await
        .map_err(|e| TransportError::Session(e.to_string()))?;
    tracing::debug!(?reason, "stdio session ended");
    Ok(())
}
