//! The MCP surface: one rmcp server whose tools are split by family (one file
//! each). Handlers are thin: parameters → [`Service`] → result.
//!
//! Every result carries `structuredContent` (never base64 in it), the same JSON
//! as a text block for clients that ignore structured content, and — for
//! images — a `resource_link` to `media://files/NAME` plus an inline preview.

mod fixture;
mod image;
mod library;

use std::sync::Arc;

use rmcp::handler::server::router::tool::ToolRouter;
#[allow(deprecated, reason = "see set_level")]
use rmcp::model::SetLevelRequestParams;
use rmcp::model::SubscriptionFilter;
use rmcp::model::{
    CallToolResult, CancelTaskParams, ConstString, ContentBlock, GetPromptRequestMethod,
    GetPromptRequestParams, GetPromptResponse, GetTaskParams, GetTaskResult, Implementation,
    ListPromptsRequestMethod, ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult,
    PaginatedRequestParams, PromptsCapability, ReadResourceRequestParams, ReadResourceResponse,
    ReadResourceResult, ServerCapabilities, ServerConfig, SubscribeRequestMethod,
    SubscribeRequestParams, TASKS_EXTENSION_ID, UnsubscribeRequestMethod, UnsubscribeRequestParams,
    UpdateTaskParams,
};
use rmcp::service::{NotificationContext, RequestContext, SubscriptionContext};
use rmcp::{ErrorData, RoleServer, ServerHandler, tool_handler};
use serde::Serialize;
use serde_json::{Map, Value};
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::service::{ErrorCode, Service, ServiceError};

pub use image::{BatchItem, BatchOutput, ImageMetadata, ImageOutput, media_uri};

/// Instructions sent to the client at initialization, for the model to read.
const INSTRUCTIONS: &str = "media-gen generates images with Gemini image models and saves \
them to a local library. Use `generate_image` for one image and `generate_image_batch` for \
several prompts at once (they run in parallel). Results give the absolute `image_path`, the \
`filename` and a `media://files/NAME` resource URI; a small preview is attached inline. \
Use `list_generated`, `get_file_info` and `delete_file` to manage the library, and \
`list_models` to see models and their options. On failure, `error.code` says what went \
wrong and `error.message` what to do next.";

/// The MCP server: shared state is one [`Service`]; cloning is cheap.
#[derive(Clone)]
pub struct MediaServer {
    service: Arc<Service>,
    tool_router: ToolRouter<Self>,
    /// Also serve the conformance suite's fixtures (`serve --conformance-fixture`).
    fixture: bool,
    /// Cancelled when the last clone of this server is dropped, i.e. when
    /// its session ends: background work of the session stops with it.
    session_end: CancellationToken,
    _session: Arc<DropGuard>,
}

impl MediaServer {
    pub fn new(service: Arc<Service>) -> Self {
        let fixture = service.settings().conformance_fixture;
        let mut tool_router = Self::image_router() + Self::library_router();
        if fixture {
            tool_router.merge(fixture::tools());
        }
        let session_end = CancellationToken::new();
        Self {
            service,
            tool_router,
            fixture,
            _session: Arc::new(session_end.clone().drop_guard()),
            session_end,
        }
    }

    pub fn service(&self) -> &Service {
        &self.service
    }

    /// A method only the conformance fixture answers: -32601 otherwise.
    fn fixture_only<M: ConstString, T>(
        &self,
        answer: impl FnOnce() -> Result<T, ErrorData>,
    ) -> Result<T, ErrorData> {
        if self.fixture {
            answer()
        } else {
            Err(ErrorData::method_not_found::<M>())
        }
    }

    /// Every tool this server offers, as `tools/list` shows them.
    pub fn tools(&self) -> Vec<rmcp::model::Tool> {
        self.tool_router.list_all()
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for MediaServer {
    #[allow(deprecated, reason = "the logging capability: see set_level")]
    fn get_info(&self) -> ServerConfig {
        let mut capabilities = ServerCapabilities::builder()
            .enable_tools()
            .enable_resources()
            .enable_resources_list_changed()
            .enable_logging()
            .build();
        if self.fixture {
            capabilities.prompts = Some(PromptsCapability::default());
            capabilities.completions = Some(serde_json::Map::new());
            if let Some(resources) = &mut capabilities.resources {
                resources.subscribe = Some(true);
            }
            capabilities
                .extensions
                .get_or_insert_default()
                .insert(TASKS_EXTENSION_ID.to_owned(), serde_json::Map::new());
        }
        ServerConfig::new(capabilities)
            .with_server_info(
                Implementation::new("media-gen", env!("CARGO_PKG_VERSION"))
                    .with_title("media-gen: Gemini image generation"),
            )
            .with_instructions(INSTRUCTIONS)
    }

    async fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let first_page = request.as_ref().is_none_or(|r| r.cursor.is_none());
        let mut page = self.list_resources_page(request).await?;
        if self.fixture && first_page {
            page.resources.splice(0..0, fixture::resources());
        }
        Ok(page)
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        let mut templates = Self::resource_templates();
        if self.fixture {
            templates
                .resource_templates
                .push(fixture::resource_template());
        }
        Ok(templates)
    }

    /// Accepts `logging/setLevel` from 2025-11-25 clients. media-gen logs to
    /// stderr and sends no `notifications/message`, so any level is honoured
    /// as it stands.
    #[allow(
        deprecated,
        reason = "logging is deprecated by SEP-2577, but 2025-11-25 clients still send setLevel"
    )]
    async fn set_level(
        &self,
        _request: SetLevelRequestParams,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        Ok(())
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        if self.fixture && request.uri.starts_with(fixture::SCHEME) {
            return fixture::read(&request.uri)
                .map(|contents| ReadResourceResult::new(vec![contents]).into());
        }
        self.read_media_resource(&request.uri).await.map(Into::into)
    }

    /// SEP-2663 tasks exist only for the conformance fixture's task tools;
    /// rmcp answers -32601 for these methods unless the extension is
    /// advertised, which only `--conformance-fixture` does.
    async fn get_task(
        &self,
        request: GetTaskParams,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<GetTaskResult, ErrorData> {
        fixture::get_task(&request.task_id)
    }

    async fn update_task(
        &self,
        request: UpdateTaskParams,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        fixture::update_task(&request.task_id, request.input_responses)
    }

    async fn cancel_task(
        &self,
        request: CancelTaskParams,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        fixture::cancel_task(&request.task_id)
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        self.fixture_only::<ListPromptsRequestMethod, _>(|| Ok(fixture::prompts()))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        self.fixture_only::<GetPromptRequestMethod, _>(|| fixture::get_prompt(&request))
    }

    /// `resources/subscribe` is acknowledged only for the conformance
    /// fixture; media-gen's files do not change once written, so it announces
    /// list changes instead.
    #[allow(
        deprecated,
        reason = "2025-11-25 clients still send resources/subscribe"
    )]
    async fn subscribe(
        &self,
        _request: SubscribeRequestParams,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.fixture_only::<SubscribeRequestMethod, _>(|| Ok(()))
    }

    #[allow(deprecated, reason = "see subscribe")]
    async fn unsubscribe(
        &self,
        _request: UnsubscribeRequestParams,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.fixture_only::<UnsubscribeRequestMethod, _>(|| Ok(()))
    }

    /// Sessions that began with `initialize` (2025-11-25 and earlier) get
    /// `notifications/resources/list_changed` whenever the library changes —
    /// from any session, the clean-up or reconcile. Bursts coalesce.
    async fn on_initialized(&self, ctx: NotificationContext<RoleServer>) {
        let mut changes = self.service.store().watch_changes();
        changes.mark_unchanged();
        let peer = ctx.peer;
        let session_end = self.session_end.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = session_end.cancelled() => break,
                    changed = changes.changed() => if changed.is_err() { break },
                }
                if peer.is_transport_closed() {
                    break;
                }
                if let Err(e) = peer.notify_resource_list_changed().await {
                    tracing::debug!(error = %e, "resources/list_changed not delivered");
                    break;
                }
            }
        });
    }

    /// 2026-07-28 clients learn of library changes through
    /// `subscriptions/listen`; resources list changes are what we offer.
    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        let mut accepted = SubscriptionFilter::new();
        accepted.resources_list_changed = requested.resources_list_changed;
        Some(accepted)
    }

    async fn listen(&self, subscription: SubscriptionContext) -> Result<(), ErrorData> {
        let mut changes = self.service.store().watch_changes();
        changes.mark_unchanged();
        let wanted = subscription.accepted().resources_list_changed == Some(true);
        loop {
            tokio::select! {
                () = subscription.cancelled() => return Ok(()),
                changed = changes.changed(), if wanted => {
                    if changed.is_err() {
                        return Ok(());
                    }
                    if let Err(e) = subscription.sink().notify_resource_list_changed().await {
                        tracing::debug!(error = %e, "subscription closed");
                        return Ok(());
                    }
                }
            }
        }
    }
}

/// The error envelope of the contract: `{"success":false,"error":{code,message,details}}`.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ErrorOutput {
    /// Always `false`.
    pub success: bool,
    pub error: ErrorBody,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code, e.g. `RATE_LIMITED`.
    pub code: ErrorCode,
    /// What went wrong and what to do next.
    pub message: String,
    /// Extra facts: the offending parameter, HTTP status, retry delay …
    pub details: Map<String, Value>,
}

impl From<&ServiceError> for ErrorOutput {
    fn from(e: &ServiceError) -> Self {
        Self {
            success: false,
            error: ErrorBody {
                code: e.code(),
                message: e.message(),
                details: e.details(),
            },
        }
    }
}

/// A result whose structured content is `value`, mirrored as a text block and
/// followed by `extra` content (links, previews).
fn structured_result<T: Serialize>(
    value: &T,
    is_error: bool,
    extra: Vec<ContentBlock>,
) -> CallToolResult {
    let json = serde_json::to_value(value).unwrap_or_else(|e| {
        serde_json::json!({"success": false, "error": {"code": "GENERATION_FAILED",
            "message": format!("could not serialize the result: {e}"), "details": {}}})
    });
    let mut content = Vec::with_capacity(1 + extra.len());
    content.push(ContentBlock::text(json.to_string()));
    content.extend(extra);
    let mut result = if is_error {
        CallToolResult::error(content)
    } else {
        CallToolResult::success(content)
    };
    result.structured_content = Some(json);
    result
}

/// The tool result for a failed call.
pub fn error_result(e: &ServiceError) -> CallToolResult {
    structured_result(&ErrorOutput::from(e), true, Vec::new())
}
