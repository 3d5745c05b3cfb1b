//! `media-gen-conformance`: media-gen's MCP server with the official MCP
//! conformance suite's fixtures beside it (tools, `test://` resources,
//! prompts, completion, subscribe, the tasks extension), served over the
//! real HTTP transport and security layer against the built-in emulator.
//!
//! A test aid, built only with the `conformance` cargo feature: the product
//! binary has none of it. [`FixtureServer`] wraps [`MediaServer`] by
//! delegation — media-gen's own methods answer as they do in the product,
//! the fixture adds what the suite calls.

mod fixture;

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use media_gen::app::{self, AppError, MakeHandler, Server};
use media_gen::config::{Settings, Sources};
use media_gen::tools::MediaServer;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::ToolCallContext;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CancelTaskParams, GetPromptRequestParams,
    GetPromptResponse, GetTaskParams, GetTaskResult, ListPromptsResult,
    ListResourceTemplatesResult, ListResourcesResult, ListToolsResult, PaginatedRequestParams,
    PromptsCapability, ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult,
    ServerConfig, SubscriptionFilter, Tool, UpdateTaskParams,
};
#[allow(deprecated, reason = "2025-11-25 clients still send these")]
use rmcp::model::{SetLevelRequestParams, SubscribeRequestParams, UnsubscribeRequestParams};
use rmcp::service::{NotificationContext, RequestContext, SubscriptionContext};
use rmcp::{ErrorData, RoleServer, ServerHandler};
use tokio_util::sync::CancellationToken;

use fixture::FixtureState;

/// Serves media-gen with the conformance suite's fixtures over HTTP
/// (Streamable HTTP at /mcp, legacy SSE at /sse), on the offline emulator.
#[derive(Debug, Parser)]
#[command(name = "media-gen-conformance", version)]
struct Cli {
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port (0 = any free port; the address is printed on stderr).
    #[arg(long, default_value = "0")]
    port: String,
}

/// media-gen's server with the fixtures beside it. One per session.
#[derive(Clone)]
pub struct FixtureServer {
    media: MediaServer,
    tools: ToolRouter<FixtureServer>,
    state: Arc<FixtureState>,
}

impl FixtureServer {
    fn new(media: MediaServer, state: Arc<FixtureState>) -> Self {
        Self {
            media,
            tools: fixture::tools(),
            state,
        }
    }
}

impl ServerHandler for FixtureServer {
    /// media-gen's capabilities, plus what the fixtures need.
    #[allow(
        deprecated,
        reason = "resources/subscribe is still probed by the suite"
    )]
    fn get_info(&self) -> ServerConfig {
        let mut info = self.media.get_info();
        let capabilities = &mut info.capabilities;
        capabilities.prompts = Some(PromptsCapability::default());
        capabilities.completions = Some(serde_json::Map::new());
        if let Some(resources) = &mut capabilities.resources {
            resources.subscribe = Some(true);
        }
        // media-gen declares the tasks extension itself (its video tools).
        debug_assert!(capabilities.supports_tasks());
        info
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        if self.tools.has_route(&request.name) {
            self.tools
                .call(ToolCallContext::new(self, request, ctx))
                .await
        } else {
            self.media.call_tool(request, ctx).await
        }
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let mut list = self.media.list_tools(request, ctx).await?;
        list.tools.extend(self.tools.list_all());
        Ok(list)
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.tools
            .get(name)
            .cloned()
            .or_else(|| self.media.get_tool(name))
    }

    async fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let first_page = request.as_ref().is_none_or(|r| r.cursor.is_none());
        let mut page = self.media.list_resources(request, ctx).await?;
        if first_page {
            page.resources.splice(0..0, fixture::resources());
        }
        Ok(page)
    }

    async fn list_resource_templates(
        &self,
        request: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        let mut templates = self.media.list_resource_templates(request, ctx).await?;
        templates
            .resource_templates
            .push(fixture::resource_template());
        Ok(templates)
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        if request.uri.starts_with(fixture::SCHEME) {
            return fixture::read(&request.uri)
                .map(|contents| ReadResourceResult::new(vec![contents]).into());
        }
        self.media.read_resource(request, ctx).await
    }

    #[allow(deprecated, reason = "2025-11-25 clients still send setLevel")]
    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.media.set_level(request, ctx).await
    }

    /// The fixtures' tasks, else media-gen's own (video jobs).
    async fn get_task(
        &self,
        request: GetTaskParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<GetTaskResult, ErrorData> {
        match self.state.tasks.get_task(&request.task_id) {
            Ok(task) => Ok(GetTaskResult::new(task)),
            Err(_) => self.media.get_task(request, ctx).await,
        }
    }

    async fn update_task(
        &self,
        request: UpdateTaskParams,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.state
            .tasks
            .update_task(&request.task_id, request.input_responses)
    }

    async fn cancel_task(
        &self,
        request: CancelTaskParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        match self.state.tasks.cancel_task(&request.task_id) {
            Ok(()) => Ok(()),
            Err(_) => self.media.cancel_task(request, ctx).await,
        }
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        Ok(fixture::prompts())
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        fixture::get_prompt(&request)
    }

    /// Acknowledged: the watched resource never changes.
    #[allow(
        deprecated,
        reason = "2025-11-25 clients still send resources/subscribe"
    )]
    async fn subscribe(
        &self,
        _request: SubscribeRequestParams,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        Ok(())
    }

    #[allow(deprecated, reason = "see subscribe")]
    async fn unsubscribe(
        &self,
        _request: UnsubscribeRequestParams,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        Ok(())
    }

    async fn on_initialized(&self, ctx: NotificationContext<RoleServer>) {
        self.media.on_initialized(ctx).await;
    }

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        self.media.accepted_subscription_filter(requested)
    }

    async fn listen(&self, subscription: SubscriptionContext) -> Result<(), ErrorData> {
        self.media.listen(subscription).await
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            std::env::var("MEDIA_GEN_LOG").unwrap_or_else(|_| "info".to_owned()),
        ))
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("media-gen-conformance: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

async fn run(cli: Cli) -> Result<(), AppError> {
    let env = |k: &str| std::env::var(k).ok();
    let mut settings = Settings::load(&Sources {
        file: None,
        env: &env,
        flags: vec![
            ("transport", "--transport", "http".to_owned()),
            ("http_host", "--host", cli.host),
            ("http_port", "--port", cli.port),
        ],
    })?;
    let _emulator = app::attach_emulator(&mut settings.backend).await?;
    let service = app::build_service(&settings)?;
    let state = Arc::new(FixtureState::default());
    let media = service.clone();
    let make: MakeHandler<FixtureServer> = Arc::new(move |access| {
        FixtureServer::new(MediaServer::new(media.clone(), access), state.clone())
    });
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        stop.cancel();
    });
    Server::new(service, &settings)
        .run_with(make, shutdown)
        .await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly")]

    use rmcp::ServiceExt;
    use rmcp::model::{
        CallToolRequestParams, GetPromptRequestParams, ReadResourceRequestParams,
        TASKS_EXTENSION_ID,
    };
    use serde_json::json;

    use super::*;

    /// The fixture sits beside media-gen's own tools, which stay as they
    /// are, and adds the prompts, `test://` resources and tasks extension.
    #[tokio::test]
    async fn fixtures_beside_the_media_server() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let env = move |k: &str| match k {
            "MCP_OUTPUT_DIR" => Some(out.display().to_string()),
            _ => None,
        };
        let mut settings = Settings::load(&Sources {
            file: None,
            env: &env,
            flags: Vec::new(),
        })
        .unwrap();
        let _emulator = app::attach_emulator(&mut settings.backend).await.unwrap();
        let service = app::build_service(&settings).unwrap();
        let server = FixtureServer::new(
            MediaServer::new(service, app::stdio_access()),
            Arc::default(),
        );
        let (server_io, client_io) = tokio::io::duplex(1 << 20);
        tokio::spawn(async move {
            if let Ok(running) = server.serve(server_io).await {
                let _ = running.waiting().await;
            }
        });
        let client = ().serve(client_io).await.unwrap();
        let tasks = client.peer_info().is_some_and(|i| {
            i.capabilities
                .extensions
                .as_ref()
                .is_some_and(|e| e.contains_key(TASKS_EXTENSION_ID))
        });
        assert!(tasks, "the fixture advertises the tasks extension");
        let tools: Vec<String> = client
            .list_all_tools()
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.name.into_owned())
            .collect();
        for n in [
            "generate_image",
            "test_simple_text",
            "json_schema_2020_12_tool",
        ] {
            assert!(tools.iter().any(|t| t == n), "{n} missing from {tools:?}");
        }
        let call = |name: &'static str| {
            client.call_tool(CallToolRequestParams::new(name).with_arguments(Default::default()))
        };
        assert_eq!(
            call("test_simple_text").await.unwrap().is_error,
            Some(false)
        );
        assert_eq!(
            call("test_error_handling").await.unwrap().is_error,
            Some(true)
        );
        // media-gen's own tools answer through the wrapper.
        let listed = call("list_generated").await.unwrap();
        assert_eq!(listed.structured_content.unwrap()["total"], 0);
        let prompts = client.list_prompts(None).await.unwrap();
        assert_eq!(prompts.prompts.len(), 5);
        let prompt = client
            .get_prompt(
                GetPromptRequestParams::new("test_prompt_with_arguments").with_arguments(
                    serde_json::from_value(json!({"arg1": "a", "arg2": "b"})).unwrap(),
                ),
            )
            .await
            .unwrap();
        let first = serde_json::to_value(&prompt.messages[0]).unwrap();
        assert_eq!(
            first["content"]["text"],
            "Prompt with arguments: arg1='a', arg2='b'"
        );
        let read = client
            .read_resource(ReadResourceRequestParams::new("test://template/42/data"))
            .await
            .unwrap();
        let body = serde_json::to_value(&read.contents[0]).unwrap();
        assert_eq!(
            body["text"],
            r#"{"data":"Data for ID: 42","id":"42","templateTest":true}"#
        );
    }
}
