//! The start-up floor: the least an rmcp stdio server does before it
//! answers `initialize` — a tokio runtime, one tool, the stdio transport.
//! No logging, no configuration, no storage. The bench's `peers` section
//! spawns it beside media-gen (spawn → `initialize` result, idle memory) so
//! media-gen's start-up is read as a multiple of this floor.
//!
//! Built by `cargo build --release --example floor` (bench/peers/run does).

#![allow(
    clippy::expect_used,
    reason = "a benchmark helper: a failed start should stop it loudly"
)]

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::model::{ServerCapabilities, ServerConfig};
use rmcp::{ServerHandler, ServiceExt, tool, tool_handler, tool_router};

#[derive(Clone)]
struct Floor {
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl Floor {
    fn new() -> Self {
        Self {
            tool_router: Self::tool_router(),
        }
    }

    #[tool(description = "Answers pong.")]
    fn ping(&self) -> String {
        "pong".to_owned()
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Floor {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }
}

#[tokio::main]
async fn main() {
    let service = Floor::new()
        .serve(rmcp::transport::stdio())
        .await
        .expect("serve");
    let _ = service.waiting().await;
}
