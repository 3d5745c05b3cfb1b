//! The offline backend emulator — a TEST AND DEMO TOOL, not Gemini.
//!
//! It serves CLIProxyAPI's and the Gemini API's image routes on loopback in
//! their real wire shapes (see `shared/WIRE-FORMATS.md`), draws deterministic
//! test patterns at the real Gemini output sizes, each labelled "media-gen
//! emulator" with its prompt (`label.rs`), and can be told to fail in
//! every way the real services do, so that every error path of media-gen is
//! exercised over real HTTP. Production code never branches on it: media-gen
//! talks to it exactly as to CLIProxyAPI.
//!
//! Failures are triggered by `POST /emulator/control`
//! (`{"fail": MODE, "model": ID, "times": N, "latency_ms": N, "retry_after":
//! S}`; with `model`, only requests for that model fail — one model rate
//! limited while another answers), by a request header `x-emulator-fail:
//! MODE`, or by `[emulator:MODE]` in the prompt (both for any model).
//! Modes: see [`FailMode`]. `GET /emulator/stats` counts requests, image
//! generations also per model (`generate_requests_by_model`).

mod label;
mod operations;
mod render;
mod routes;
pub mod video;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use render::render_png;
pub use routes::{FailMode, router};

/// How the emulator behaves when not told otherwise.
#[derive(Debug, Clone, Default)]
pub struct EmulatorOptions {
    /// Required bearer key; `None` accepts any request.
    pub api_key: Option<String>,
    /// Delay added to every generation response.
    pub latency: Duration,
}

/// A running emulator. Dropping the handle stops it.
pub struct EmulatorHandle {
    pub addr: SocketAddr,
    shutdown: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl EmulatorHandle {
    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops the server and waits for it.
    pub async fn shutdown(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for EmulatorHandle {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Serves the emulator on `listener` until the handle is dropped or shut down.
pub async fn start(
    listener: tokio::net::TcpListener,
    opts: EmulatorOptions,
) -> std::io::Result<EmulatorHandle> {
    let addr = listener.local_addr()?;
    let shutdown = CancellationToken::new();
    let app = router(opts);
    let stop = shutdown.clone();
    let task = tokio::spawn(async move {
        let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
            stop.cancelled().await;
        });
        if let Err(e) = serve.await {
            tracing::error!(error = %e, "emulator stopped");
        }
    });
    Ok(EmulatorHandle {
        addr,
        shutdown,
        task: Some(task),
    })
}

/// Shared emulator state.
type Shared = Arc<routes::State>;
