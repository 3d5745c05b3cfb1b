//! Transports: stdio (JSON-RPC on stdin/stdout, logs on stderr only) and the
//! HTTP server ([`http`]: Streamable HTTP, the legacy SSE bridge, security).

pub mod http;
mod sessions;
mod sse;

use rmcp::ServiceExt;
use tokio_util::sync::CancellationToken;

use crate::app::AppError;
use crate::tools::MediaServer;

/// Serves MCP over stdio until the client closes stdin or `shutdown` fires.
/// Supports both the `initialize` handshake (2025-11-25 and earlier) and the
/// stateless `server/discover` protocol (2026-07-28); rmcp negotiates.
/// `on_ready` runs once the handshake (or the first stateless request) has
/// been answered, so background work never delays the first answer.
pub async fn serve_stdio(
    server: MediaServer,
    shutdown: CancellationToken,
    on_ready: impl FnOnce(),
) -> Result<(), AppError> {
    let running = server
        .serve_with_ct(rmcp::transport::stdio_pipes(), shutdown)
        .await
        .map_err(|e| AppError::Serve(e.to_string()))?;
    on_ready();
    let reason = running
        .waiting()
        .await
        .map_err(|e| AppError::Serve(e.to_string()))?;
    tracing::debug!(?reason, "stdio session ended");
    Ok(())
}
