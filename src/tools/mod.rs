//! The MCP surface: one server ([`MediaServer`]) whose tools are split by
//! family, a file each. Handlers are thin: parameters → [`Service`] → the
//! contract's shape as a result.
//!
//! Every result carries `structuredContent` (never base64 in it), the same
//! JSON as a text block for clients that ignore structured content, and —
//! for images — a `resource_link` to `media://files/NAME` plus an inline
//! preview. Hosts that render MCP Apps show the image and video results in
//! the [`viewer`] page instead; the results themselves are the same for all.

mod args;
mod confirm;
mod edit;
mod image;
mod library;
mod video;
pub mod viewer;

use std::sync::{Arc, OnceLock};

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::ToolCallContext;
#[allow(deprecated, reason = "see set_level")]
use rmcp::model::SetLevelRequestParams;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, CancelTaskParams, ContentBlock,
    CustomRequest, CustomResult, ErrorCode, GetTaskParams, GetTaskResult, Implementation,
    ListResourceTemplatesResult, ListResourcesResult, PaginatedRequestParams,
    ReadResourceRequestParams, ReadResourceResponse, ServerCapabilities, ServerConfig,
    SubscriptionFilter, TASKS_EXTENSION_ID,
};
use rmcp::service::{NotificationContext, RequestContext, SubscriptionContext};
use rmcp::{ErrorData, RoleServer, ServerHandler, tool_handler};
use serde::Serialize;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::contract::{FileUrls, WithUrls};
use crate::service::{InputPolicy, Service, ServiceError};

/// What one transport's sessions may reach: which paths input images may
/// name, and — over HTTP — how clients download results (`url`).
#[derive(Clone)]
pub struct Access {
    pub inputs: Arc<InputPolicy>,
    pub file_urls: Option<FileUrls>,
}

/// Instructions sent to the client at initialization, for the model to read.
const INSTRUCTIONS: &str = "media-gen generates and edits images with Gemini image models, \
makes videos with Veo, and saves everything to a local library. Use `generate_image` for one \
image and `generate_image_batch` for several prompts at once (they run in parallel); both take \
`reference_images`. To change an existing image use `edit_image` (optionally with a mask), \
`inpaint` (repaint a masked area), `outpaint` (extend beyond the borders) or `upscale`; they \
take a library file name, a `media://files/NAME` URI or a path (a client on another machine \
uploads its image with `POST /files` first and passes the `filename` it returns). Results give \
the absolute `image_path`, the `filename`, a `media://files/NAME` resource URI and, over HTTP, \
a download `url`; a small preview is \
attached inline. Videos take minutes: `generate_video`, `image_to_video` and `extend_video` \
return a `job_id` at once; call `get_video_status` (with `wait_seconds` up to 120) until it \
says `succeeded`, which gives the MP4's path and a contact sheet of its frames. Use \
`list_generated`, `get_file_info` and `delete_file` to manage the library, and `list_models` \
to see models and their options. Calls that spend money take `confirm_cost`: when the server \
sets a threshold, a call estimated above it asks the user first (or fails with \
`CONFIRMATION_REQUIRED` and the estimate when this client cannot ask); set `confirm_cost: true` \
only after the user agreed. On failure, `error.code` says what went wrong and `error.message` \
what to do next.";

/// The MCP server: shared state is one [`Service`]; cloning is cheap. One
/// instance (and its clones) serves one session.
#[derive(Clone)]
pub struct MediaServer {
    service: Arc<Service>,
    /// What paths this session's input images may name (the transport
    /// decides: any path over stdio, the allowed directories over HTTP),
    /// and the download links its results carry.
    access: Access,
    /// Cancelled when the last clone of this server is dropped, i.e. when
    /// its session ends: background work of the session stops with it.
    session_end: CancellationToken,
    _session: Arc<DropGuard>,
}

impl MediaServer {
    pub fn new(service: Arc<Service>, access: Access) -> Self {
        let session_end = CancellationToken::new();
        Self {
            service,
            access,
            _session: Arc::new(session_end.clone().drop_guard()),
            session_end,
        }
    }

    pub fn service(&self) -> &Service {
        &self.service
    }

    fn policy(&self) -> &InputPolicy {
        &self.access.inputs
    }

    /// Adds the download `url`s of `out`'s files, when the session's
    /// clients download over HTTP.
    fn link<T: WithUrls>(&self, out: &mut T) {
        if let Some(urls) = &self.access.file_urls {
            out.add_urls(urls);
        }
    }

    /// The tool result of an operation whose output names files.
    fn linked_outcome<T: Serialize + WithUrls>(
        &self,
        r: Result<T, ServiceError>,
    ) -> CallToolResult {
        outcome(r.map(|mut out| {
            self.link(&mut out);
            out
        }))
    }

    /// Every tool this server offers, as `tools/list` shows them.
    pub fn tools(&self) -> Vec<rmcp::model::Tool> {
        Self::tools_router().list_all()
    }

    /// The tools and their JSON schemas: made once per process, by the
    /// first `tools/list` or `tools/call` (not before `initialize` is
    /// answered: building 15 tools' schemas was a quarter of what `serve`
    /// did before its first answer), and shared by every session.
    fn tools_router() -> &'static ToolRouter<Self> {
        static ROUTER: OnceLock<ToolRouter<MediaServer>> = OnceLock::new();
        ROUTER.get_or_init(|| {
            Self::image_router()
                + Self::edit_router()
                + Self::video_router()
                + Self::library_router()
        })
    }
}

#[tool_handler(router = Self::tools_router())]
impl ServerHandler for MediaServer {
    #[allow(deprecated, reason = "the logging capability: see set_level")]
    fn get_info(&self) -> ServerConfig {
        let mut capabilities = ServerCapabilities::builder()
            .enable_tools()
            .enable_resources()
            .enable_resources_list_changed()
            .enable_logging()
            .build();
        // Video calls become tasks (SEP-2663) for clients that want them.
        capabilities
            .extensions
            .get_or_insert_default()
            .insert(TASKS_EXTENSION_ID.to_owned(), serde_json::Map::new());
        // Hosts that render MCP Apps show results in the viewer page.
        capabilities.extensions.get_or_insert_default().insert(
            viewer::UI_EXTENSION_ID.to_owned(),
            viewer::extension_settings(),
        );
        ServerConfig::new(capabilities)
            .with_server_info(
                Implementation::new("media-gen", env!("CARGO_PKG_VERSION"))
                    .with_title("media-gen: Gemini images and Veo videos"),
            )
            .with_instructions(INSTRUCTIONS)
    }

    /// Routes the call to its tool. Arguments that do not fit a tool's
    /// parameters are the contract's `INVALID_PARAMETER` result (see
    /// [`args`]), like every other bad input.
    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let call = ToolCallContext::new(self, request, context);
        match Self::tools_router().call(call).await {
            Err(e) => match args::argument_error(&e) {
                Some(output) => Ok(structured_result(output, true, Vec::new()).into()),
                None => Err(e),
            },
            ok => ok,
        }
    }

    /// A request rmcp could not read as any request it knows. A standard
    /// method lands here only when its params do not fit (`tools/call`
    /// without params, or with `arguments` that are not an object): that
    /// is -32602 (invalid params), not -32601 (method not found).
    async fn on_custom_request(
        &self,
        request: CustomRequest,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<CustomResult, ErrorData> {
        let method = request.method.as_str();
        let message = match method {
            "tools/call" => {
                "invalid params for `tools/call`: `params` must be an object with `name` (a tool \
name from `tools/list`) and `arguments` (an object)"
                    .to_owned()
            }
            "resources/read" | "resources/subscribe" | "resources/unsubscribe" => format!(
                "invalid params for `{method}`: `params` must be an object with `uri` (a string)"
            ),
            m if STANDARD_METHODS.contains(&m) => {
                format!("invalid params for `{m}`; see the MCP specification for its params")
            }
            _ => {
                return Err(ErrorData::new(
                    ErrorCode::METHOD_NOT_FOUND,
                    method.to_owned(),
                    None,
                ));
            }
        };
        Err(ErrorData::invalid_params(message, None))
    }

    async fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        self.list_resources_page(request).await
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        Ok(Self::resource_templates())
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
        if request.uri.starts_with("ui://") {
            return viewer::read(&request.uri).map(Into::into);
        }
        self.read_media_resource(&request.uri).await.map(Into::into)
    }

    /// A video task is its durable job: any session (or a later process)
    /// can ask about it.
    async fn get_task(
        &self,
        request: GetTaskParams,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<GetTaskResult, ErrorData> {
        self.video_task(&request.task_id)
            .await
            .map(GetTaskResult::new)
    }

    async fn cancel_task(
        &self,
        request: CancelTaskParams,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.cancel_video_task(&request.task_id).await
    }

    /// Sessions that began with `initialize` (2025-11-25 and earlier) get
    /// `notifications/resources/list_changed` whenever the library changes —
    /// from any session, the clean-up or reconcile. Bursts coalesce.
    async fn on_initialized(&self, ctx: NotificationContext<RoleServer>) {
        let mut changes = self.service.subscribe();
        let peer = ctx.peer;
        let session_end = self.session_end.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = session_end.cancelled() => break,
                    change = changes.next() => if change.is_none() { break },
                }
                changes.drain();
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
        let mut changes = self.service.subscribe();
        let wanted = subscription.accepted().resources_list_changed == Some(true);
        loop {
            tokio::select! {
                () = subscription.cancelled() => return Ok(()),
                change = changes.next(), if wanted => {
                    if change.is_none() {
                        return Ok(());
                    }
                    changes.drain();
                    if let Err(e) = subscription.sink().notify_resource_list_changed().await {
                        tracing::debug!(error = %e, "subscription closed");
                        return Ok(());
                    }
                }
            }
        }
    }
}

/// Client request methods of the MCP specification that rmcp reads into
/// typed requests. A request for one of them that rmcp could not read had
/// params that do not fit.
const STANDARD_METHODS: &[&str] = &[
    "initialize",
    "ping",
    "server/discover",
    "completion/complete",
    "logging/setLevel",
    "prompts/get",
    "prompts/list",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "resources/subscribe",
    "resources/unsubscribe",
    "subscriptions/listen",
    "tools/call",
    "tools/list",
    "tasks/get",
    "tasks/update",
    "tasks/cancel",
];

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
fn error_result(e: &ServiceError) -> CallToolResult {
    structured_result(&e.output(), true, Vec::new())
}

/// A tool result from an operation's outcome: its shape, or the error envelope.
fn outcome<T: Serialize>(r: Result<T, ServiceError>) -> CallToolResult {
    match r {
        Ok(out) => structured_result(&out, false, Vec::new()),
        Err(e) => error_result(&e),
    }
}
