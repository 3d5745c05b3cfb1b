//! Transports. stdio today: JSON-RPC on stdin/stdout, logs on stderr only.

use rmcp::ServiceExt;
use tokio_util::sync::CancellationToken;

use crate::app::AppError;
use crate::tools::MediaServer;

/// Serves MCP over stdio until the client closes stdin or `shutdown` fires.
/// Supports both the `initialize` handshake (2025-11-25 and earlier) and the
/// stateless `server/discover` protocol (2026-07-28); rmcp negotiates.
pub async fn serve_stdio(server: MediaServer, shutdown: CancellationToken) -> Result<(), AppError> {
    let running = server
        .serve_with_ct(rmcp::transport::stdio_pipes(), shutdown)
        .await
        .map_err(|e| AppError::Serve(e.to_string()))?;
    let reason = running
        .waiting()
        .await
        .map_err(|e| AppError::Serve(e.to_string()))?;
    tracing::debug!(?reason, "stdio session ended");
    Ok(())
}
