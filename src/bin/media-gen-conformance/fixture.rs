//! The conformance suite's fixtures: the tools (`test_*` and the task
//! fixtures), resources (`test://…`), prompts and tasks (SEP-2663) that the
//! official suite (`@modelcontextprotocol/conformance`) calls. They touch
//! nothing of the library.

#![allow(
    deprecated,
    reason = "the suite still probes logging, sampling and resources/subscribe (2025-11-25)"
)]

use std::io::Cursor;
use std::sync::LazyLock;
use std::time::Duration;

use base64::Engine as _;
use rmcp::handler::server::router::tool::{ToolRoute, ToolRouter};
use rmcp::handler::server::tool::{InputResponses, RequestState};
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolResponse, CallToolResult, ClientCapabilities, ContentBlock, CreateMessageRequestParams,
    CreateTaskResult, ElicitRequestParams, GetPromptRequestParams, GetPromptResponse,
    GetPromptResult, InputRequest, InputRequests, InputRequiredResult,
    InputResponses as InputResponseMap, JsonObject, ListPromptsResult, LoggingLevel,
    LoggingMessageNotificationParam, ProgressNotificationParam, Prompt, PromptArgument,
    PromptMessage, RequestStateCodec, Resource, ResourceContents, ResourceTemplate, Role,
    SamplingMessage,
};
use rmcp::service::RequestContext;
use rmcp::task_manager::{TaskContext, TaskExit, TaskFuture, TaskManager, TaskOptions};
use rmcp::{ErrorData, RoleServer, tool, tool_router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::FixtureServer;

/// The URI scheme of every fixture resource.
pub const SCHEME: &str = "test://";

/// A 1×1 red PNG, encoded once.
static PIXEL_PNG: LazyLock<String> = LazyLock::new(|| {
    let mut png = Vec::new();
    let pixel = image::RgbaImage::from_pixel(1, 1, image::Rgba([255, 0, 0, 255]));
    // Encoding one pixel into memory cannot fail.
    let _ = pixel.write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png);
    base64::engine::general_purpose::STANDARD.encode(png)
});

/// A WAV file holding one silent 16-bit mono sample at 8 kHz.
static SILENT_WAV: LazyLock<String> = LazyLock::new(|| {
    let (rate, channels, bits, data) = (8000u32, 1u16, 16u16, [0u8; 2]);
    let block = channels * bits / 8;
    let mut wav = Vec::with_capacity(46);
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes()); // PCM
    wav.extend_from_slice(&channels.to_le_bytes());
    wav.extend_from_slice(&rate.to_le_bytes());
    wav.extend_from_slice(&(rate * u32::from(block)).to_le_bytes());
    wav.extend_from_slice(&block.to_le_bytes());
    wav.extend_from_slice(&bits.to_le_bytes());
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&(data.len() as u32).to_le_bytes());
    wav.extend_from_slice(&data);
    base64::engine::general_purpose::STANDARD.encode(wav)
});

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct SamplingParams {
    /// The prompt to send to the client's LLM.
    prompt: String,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct ElicitationParams {
    /// The message to show the user.
    message: String,
}

fn text(s: impl Into<String>) -> CallToolResult {
    CallToolResult::success(vec![ContentBlock::text(s)])
}

/// A tool result with `isError: true` and one text block.
fn failure(s: impl Into<String>) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(s)])
}

/// Sends one `notifications/message` at info level; the suite counts them.
async fn log(ctx: &RequestContext<RoleServer>, message: &str) {
    let param = LoggingMessageNotificationParam::new(LoggingLevel::Info, json!(message));
    if let Err(e) = ctx.peer.notify_logging_message(param).await {
        tracing::debug!(error = %e, "fixture log notification not sent");
    }
}

/// Asks the client for input with `schema` and reports what it answered.
async fn elicit(ctx: &RequestContext<RoleServer>, message: &str, schema: Value) -> CallToolResult {
    let params: ElicitRequestParams = match serde_json::from_value(
        json!({"mode": "form", "message": message, "requestedSchema": schema}),
    ) {
        Ok(p) => p,
        Err(e) => return failure(e.to_string()),
    };
    match ctx.peer.create_elicitation(params).await {
        Ok(answer) => text(format!(
            "Elicitation completed: action={}, content={}",
            serde_json::to_value(&answer.action).unwrap_or(Value::Null),
            answer.content.unwrap_or_else(|| json!({}))
        )),
        Err(e) => failure(format!("elicitation not supported or failed: {e}")),
    }
}

/// What a multi-round fixture carries between rounds.
#[derive(Debug, Serialize, Deserialize)]
struct RoundState {
    kind: String,
    round: u32,
    #[serde(default)]
    name: Option<String>,
}

/// An input request from its wire JSON (`method` + `params`).
fn input_requests(requests: Value) -> Result<InputRequests, ErrorData> {
    serde_json::from_value(requests).map_err(|e| ErrorData::internal_error(e.to_string(), None))
}

fn ask_string(message: &str, field: &str) -> Value {
    json!({"method": "elicitation/create", "params": {"message": message, "requestedSchema":
        {"type": "object", "properties": {field: {"type": "string"}}, "required": [field]}}})
}

fn ask_confirm() -> Value {
    json!({"method": "elicitation/create", "params": {"message": "Please confirm",
        "requestedSchema": {"type": "object", "properties": {"ok": {"type": "boolean"}},
        "required": ["ok"]}}})
}

fn ask_llm(prompt: &str, max_tokens: u32) -> Value {
    json!({"method": "sampling/createMessage", "params": {"messages":
        [{"role": "user", "content": {"type": "text", "text": prompt}}], "maxTokens": max_tokens}})
}

fn ask_roots() -> Value {
    json!({"method": "roots/list", "params": {}})
}

fn input_required(requests: Value, state: Option<String>) -> Result<CallToolResponse, ErrorData> {
    Ok(InputRequiredResult::new(Some(input_requests(requests)?), state).into())
}

fn done(s: impl Into<String>) -> Result<CallToolResponse, ErrorData> {
    Ok(text(s).into())
}

/// The text a client answered to an elicitation for `field`.
fn answered(responses: &InputResponseMap, key: &str, field: &str) -> Option<String> {
    let content = responses.get(key)?.get("content")?;
    Some(match content.get(field)? {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

/// The client declared the tasks extension (at `initialize` or in `_meta`).
fn wants_tasks(ctx: &RequestContext<RoleServer>) -> bool {
    ctx.client_capabilities()
        .is_some_and(|c| c.supports_tasks())
}

/// -32021: this tool only runs as a task.
fn tasks_required() -> ErrorData {
    ErrorData::missing_required_client_capability(
        ClientCapabilities::builder().enable_tasks().build(),
    )
}

/// Sleeps `d` unless the task is cancelled first.
async fn work_for(tc: &TaskContext, d: Duration) -> Result<(), TaskExit> {
    tokio::select! {
        () = tc.cancelled() => Err(TaskExit::Cancelled),
        () = tokio::time::sleep(d) => Ok(()),
    }
}

fn input_request(request: Value) -> Result<InputRequest, TaskExit> {
    serde_json::from_value(request)
        .map_err(|e| TaskExit::Error(ErrorData::internal_error(e.to_string(), None)))
}

/// What the fixture keeps for the life of the process, shared by every
/// session and stateless request: its tasks and the key that seals
/// `requestState`.
pub struct FixtureState {
    /// The tasks (SEP-2663) the task-capable tools create: one store, so
    /// `tasks/get` answers whichever session or stateless request asks.
    pub tasks: TaskManager,
    /// Seals `requestState` so a client cannot forge or alter it (SEP-2322):
    /// an HMAC under a key made at start.
    codec: RequestStateCodec,
}

impl Default for FixtureState {
    fn default() -> Self {
        let key: [u8; 32] = rand::random();
        Self {
            tasks: TaskManager::new(),
            codec: RequestStateCodec::new_unchecked(key.to_vec()),
        }
    }
}

impl FixtureState {
    fn seal(&self, kind: &str, round: u32, name: Option<String>) -> Result<String, ErrorData> {
        self.codec
            .seal_json(&RoundState {
                kind: kind.to_owned(),
                round,
                name,
            })
            .map_err(|e| ErrorData::internal_error(e.to_string(), None))
    }

    /// Opens a sealed `requestState`; anything altered is invalid params.
    fn open(&self, state: &str) -> Result<RoundState, ErrorData> {
        self.codec.open_json(state).map_err(|e| {
            ErrorData::invalid_params(format!("requestState integrity check failed: {e}"), None)
        })
    }

    /// Starts `work` as a task and answers with its `CreateTaskResult`.
    fn spawn_task(
        &self,
        work: impl FnOnce(TaskContext) -> TaskFuture,
    ) -> Result<CallToolResponse, ErrorData> {
        let task = self
            .tasks
            .spawn(TaskOptions::new().with_poll_interval_ms(200), work);
        Ok(CreateTaskResult::new(task).into())
    }
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct GreetParams {
    /// Who to greet.
    name: String,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct SlowComputeParams {
    /// How long the computation takes, in seconds (0–60; default 1).
    #[serde(default)]
    seconds: Option<f64>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct ConfirmDeleteParams {
    /// The file the user is asked about (nothing is deleted: a fixture).
    #[serde(default)]
    filename: Option<String>,
}

#[tool_router(router = fixture_tools, vis = "")]
impl FixtureServer {
    #[tool(
        name = "test_simple_text",
        description = "Conformance fixture: one text block."
    )]
    async fn test_simple_text(&self) -> CallToolResult {
        text("This is a simple text response for testing.")
    }

    #[tool(
        name = "test_image_content",
        description = "Conformance fixture: one image block."
    )]
    async fn test_image_content(&self) -> CallToolResult {
        CallToolResult::success(vec![ContentBlock::image(PIXEL_PNG.as_str(), "image/png")])
    }

    #[tool(
        name = "test_audio_content",
        description = "Conformance fixture: one audio block."
    )]
    async fn test_audio_content(&self) -> CallToolResult {
        CallToolResult::success(vec![ContentBlock::audio(SILENT_WAV.as_str(), "audio/wav")])
    }

    #[tool(
        name = "test_embedded_resource",
        description = "Conformance fixture: one embedded text resource."
    )]
    async fn test_embedded_resource(&self) -> CallToolResult {
        CallToolResult::success(vec![ContentBlock::embedded_text(
            "test://embedded-resource",
            "This is an embedded resource content.",
        )])
    }

    #[tool(
        name = "test_multiple_content_types",
        description = "Conformance fixture: text, image and an embedded resource."
    )]
    async fn test_multiple_content_types(&self) -> CallToolResult {
        CallToolResult::success(vec![
            ContentBlock::text("Multiple content types test:"),
            ContentBlock::image(PIXEL_PNG.as_str(), "image/png"),
            ContentBlock::resource(
                ResourceContents::text(
                    json!({"test": "data", "value": 123}).to_string(),
                    "test://mixed-content-resource",
                )
                .with_mime_type("application/json"),
            ),
        ])
    }

    #[tool(
        name = "test_tool_with_logging",
        description = "Conformance fixture: sends three log notifications while it runs."
    )]
    async fn test_tool_with_logging(&self, ctx: RequestContext<RoleServer>) -> CallToolResult {
        log(&ctx, "Tool execution started").await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        log(&ctx, "Tool processing data").await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        log(&ctx, "Tool execution completed").await;
        text("Tool with logging executed successfully")
    }

    #[tool(
        name = "test_tool_with_progress",
        description = "Conformance fixture: reports progress 0, 50 and 100 of 100."
    )]
    async fn test_tool_with_progress(&self, ctx: RequestContext<RoleServer>) -> CallToolResult {
        let token = ctx.meta.get_progress_token();
        if let Some(token) = &token {
            for step in [0u32, 50, 100] {
                let param = ProgressNotificationParam::new(token.clone(), f64::from(step))
                    .with_total(100.0)
                    .with_message(format!("Completed step {step} of 100"));
                if let Err(e) = ctx.peer.notify_progress(param).await {
                    tracing::debug!(error = %e, "fixture progress not sent");
                }
                if step < 100 {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
        text(token.map_or_else(
            || "no progress token".to_owned(),
            |t| serde_json::to_value(&t.0).map_or_else(|_| String::new(), |v| v.to_string()),
        ))
    }

    #[tool(
        name = "test_error_handling",
        description = "Conformance fixture: always fails with isError: true."
    )]
    async fn test_error_handling(&self) -> CallToolResult {
        failure("This tool intentionally returns an error for testing")
    }

    #[tool(
        name = "test_sampling",
        description = "Conformance fixture: asks the client's LLM (sampling/createMessage)."
    )]
    async fn test_sampling(
        &self,
        Parameters(p): Parameters<SamplingParams>,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let request =
            CreateMessageRequestParams::new(vec![SamplingMessage::user_text(p.prompt)], 100);
        match ctx.peer.create_message(request).await {
            Ok(answer) => {
                let reply = answer
                    .message
                    .content
                    .first()
                    .and_then(|c| c.as_text())
                    .map_or("No response", |t| t.text.as_str())
                    .to_owned();
                text(format!("LLM response: {reply}"))
            }
            Err(e) => failure(format!("sampling not supported or failed: {e}")),
        }
    }

    #[tool(
        name = "test_elicitation",
        description = "Conformance fixture: asks the user for one string (elicitation/create)."
    )]
    async fn test_elicitation(
        &self,
        Parameters(p): Parameters<ElicitationParams>,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let schema = json!({
            "type": "object",
            "properties": {"response": {"type": "string", "description": "User's response"}},
            "required": ["response"]
        });
        elicit(&ctx, &p.message, schema).await
    }

    #[tool(
        name = "test_elicitation_sep1034_defaults",
        description = "Conformance fixture: elicitation whose fields carry defaults (SEP-1034)."
    )]
    async fn test_elicitation_sep1034_defaults(
        &self,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let schema = json!({
            "type": "object",
            "properties": {
                "name": {"type": "string", "description": "User name", "default": "John Doe"},
                "age": {"type": "integer", "description": "User age", "default": 30},
                "score": {"type": "number", "description": "User score", "default": 95.5},
                "status": {"type": "string", "description": "User status",
                    "enum": ["active", "inactive", "pending"], "default": "active"},
                "verified": {"type": "boolean", "description": "Verification status",
                    "default": true}
            },
            "required": []
        });
        elicit(
            &ctx,
            "Please review and update the form fields with defaults",
            schema,
        )
        .await
    }

    #[tool(
        name = "test_elicitation_sep1330_enums",
        description = "Conformance fixture: elicitation with the five enum forms (SEP-1330)."
    )]
    async fn test_elicitation_sep1330_enums(
        &self,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let options = |titles: [&str; 3]| {
            titles
                .iter()
                .enumerate()
                .map(|(i, t)| json!({"const": format!("value{}", i + 1), "title": t}))
                .collect::<Vec<_>>()
        };
        let schema = json!({
            "type": "object",
            "properties": {
                "untitledSingle": {"type": "string", "description": "Select one option",
                    "enum": ["option1", "option2", "option3"]},
                "titledSingle": {"type": "string", "description": "Select one option with titles",
                    "oneOf": options(["First Option", "Second Option", "Third Option"])},
                "legacyEnum": {"type": "string", "description": "Select one option (legacy)",
                    "enum": ["opt1", "opt2", "opt3"],
                    "enumNames": ["Option One", "Option Two", "Option Three"]},
                "untitledMulti": {"type": "array", "description": "Select multiple options",
                    "minItems": 1, "maxItems": 3,
                    "items": {"type": "string", "enum": ["option1", "option2", "option3"]}},
                "titledMulti": {"type": "array", "description": "Select multiple options with titles",
                    "minItems": 1, "maxItems": 3,
                    "items": {"anyOf": options(["First Choice", "Second Choice", "Third Choice"])}}
            },
            "required": []
        });
        elicit(&ctx, "Please select options from the enum fields", schema).await
    }

    #[tool(
        name = "test_input_required_result_elicitation",
        description = "Conformance fixture (SEP-2322): asks for a name through an input-required result."
    )]
    async fn test_input_required_result_elicitation(
        &self,
        InputResponses(responses): InputResponses,
    ) -> Result<CallToolResponse, ErrorData> {
        match responses
            .as_ref()
            .and_then(|r| answered(r, "user_name", "name"))
        {
            Some(name) => done(format!("Hello, {name}!")),
            None => input_required(
                json!({"user_name": ask_string("What is your name?", "name")}),
                None,
            ),
        }
    }

    #[tool(
        name = "test_input_required_result_sampling",
        description = "Conformance fixture (SEP-2322): asks the client's LLM through an input-required result."
    )]
    async fn test_input_required_result_sampling(
        &self,
        InputResponses(responses): InputResponses,
    ) -> Result<CallToolResponse, ErrorData> {
        match responses.as_ref().and_then(|r| r.get("sample_request")) {
            Some(sample) => done(format!(
                "Sampling result: {}",
                sample
                    .pointer("/content/text")
                    .and_then(Value::as_str)
                    .unwrap_or("no response")
            )),
            None => input_required(
                json!({"sample_request": ask_llm("What is the capital of France?", 100)}),
                None,
            ),
        }
    }

    #[tool(
        name = "test_input_required_result_list_roots",
        description = "Conformance fixture (SEP-2322): asks for the client's roots through an input-required result."
    )]
    async fn test_input_required_result_list_roots(
        &self,
        InputResponses(responses): InputResponses,
    ) -> Result<CallToolResponse, ErrorData> {
        match responses.as_ref().and_then(|r| r.get("roots_request")) {
            Some(roots) => done(format!(
                "Found {} root(s)",
                roots
                    .get("roots")
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len)
            )),
            None => input_required(json!({"roots_request": ask_roots()}), None),
        }
    }

    #[tool(
        name = "test_input_required_result_request_state",
        description = "Conformance fixture (SEP-2322): input-required result with a sealed requestState."
    )]
    async fn test_input_required_result_request_state(
        &self,
        InputResponses(responses): InputResponses,
        RequestState(state): RequestState,
    ) -> Result<CallToolResponse, ErrorData> {
        if let (Some(state), Some(responses)) = (state, responses) {
            let state = self.state.open(&state)?;
            if state.kind == "request-state"
                && responses
                    .get("confirm")
                    .and_then(|c| c.pointer("/content/ok"))
                    == Some(&json!(true))
            {
                return done("state-ok: requestState validated");
            }
        }
        input_required(
            json!({"confirm": ask_confirm()}),
            Some(self.state.seal("request-state", 1, None)?),
        )
    }

    #[tool(
        name = "test_input_required_result_multiple_inputs",
        description = "Conformance fixture (SEP-2322): three input requests (elicitation, sampling, roots) at once."
    )]
    async fn test_input_required_result_multiple_inputs(
        &self,
        InputResponses(responses): InputResponses,
        RequestState(state): RequestState,
    ) -> Result<CallToolResponse, ErrorData> {
        if let (Some(state), Some(r)) = (state, responses) {
            let state = self.state.open(&state)?;
            if state.kind == "multiple-inputs"
                && ["user_name", "greeting", "client_roots"]
                    .iter()
                    .all(|k| r.contains_key(*k))
            {
                let name = answered(&r, "user_name", "name").unwrap_or_default();
                let greeting = r
                    .get("greeting")
                    .and_then(|g| g.pointer("/content/text"))
                    .and_then(Value::as_str)
                    .unwrap_or("Hello there!")
                    .to_owned();
                let roots = r
                    .get("client_roots")
                    .and_then(|c| c.get("roots"))
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len);
                return done(format!(
                    "Name: {name}; Greeting: {greeting}; Roots: {roots}"
                ));
            }
        }
        input_required(
            json!({
                "user_name": ask_string("What is your name?", "name"),
                "greeting": ask_llm("Generate a greeting", 50),
                "client_roots": ask_roots()
            }),
            Some(self.state.seal("multiple-inputs", 1, None)?),
        )
    }

    #[tool(
        name = "test_input_required_result_multi_round",
        description = "Conformance fixture (SEP-2322): two rounds of input, state carried in requestState."
    )]
    async fn test_input_required_result_multi_round(
        &self,
        InputResponses(responses): InputResponses,
        RequestState(state): RequestState,
    ) -> Result<CallToolResponse, ErrorData> {
        let responses = responses.unwrap_or_default();
        if let Some(state) = state {
            let state = self.state.open(&state)?;
            let step = |key, field| answered(&responses, key, field);
            if state.kind == "multi-round"
                && state.round == 1
                && let Some(name) = step("step1", "name")
            {
                return input_required(
                    json!({"step2": ask_string("Step 2: What is your favorite color?", "color")}),
                    Some(self.state.seal("multi-round", 2, Some(name))?),
                );
            }
            if state.kind == "multi-round"
                && state.round == 2
                && let Some(color) = step("step2", "color")
            {
                let name = state.name.unwrap_or_else(|| "friend".to_owned());
                return done(format!("Multi-round complete for {name} who likes {color}"));
            }
        }
        input_required(
            json!({"step1": ask_string("Step 1: What is your name?", "name")}),
            Some(self.state.seal("multi-round", 1, None)?),
        )
    }

    #[tool(
        name = "test_input_required_result_tampered_state",
        description = "Conformance fixture (SEP-2322): rejects a requestState that was altered."
    )]
    async fn test_input_required_result_tampered_state(
        &self,
        InputResponses(responses): InputResponses,
        RequestState(state): RequestState,
    ) -> Result<CallToolResponse, ErrorData> {
        if let Some(state) = state {
            let state = self.state.open(&state)?;
            if state.kind == "tamper-test" && responses.is_some_and(|r| r.contains_key("confirm")) {
                return done("integrity-ok: state verified");
            }
        }
        input_required(
            json!({"confirm": ask_confirm()}),
            Some(self.state.seal("tamper-test", 1, None)?),
        )
    }

    #[tool(
        name = "test_input_required_result_capabilities",
        description = "Conformance fixture (SEP-2322): asks only for what the client declared it can answer."
    )]
    async fn test_input_required_result_capabilities(
        &self,
        InputResponses(responses): InputResponses,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        if let Some(r) = responses.filter(|r| !r.is_empty()) {
            let keys: Vec<&str> = r.keys().map(String::as_str).collect();
            return done(format!("capabilities-ok: received {}", keys.join(",")));
        }
        let caps = ctx.client_capabilities().unwrap_or_default();
        let mut requests = serde_json::Map::new();
        if caps.elicitation.is_some() {
            requests.insert(
                "elicit_input".into(),
                ask_string("Elicitation input", "value"),
            );
        }
        if caps.sampling.is_some() {
            requests.insert("sample_input".into(), ask_llm("Sample request", 50));
        }
        if requests.is_empty() {
            return done("No supported capabilities declared");
        }
        input_required(
            Value::Object(requests),
            Some(self.state.seal("capabilities-test", 1, None)?),
        )
    }

    #[tool(
        name = "test_streaming_elicitation",
        description = "Conformance fixture (SEP-2575): asks for input in-band (an input-required result), never with a request of its own."
    )]
    async fn test_streaming_elicitation(
        &self,
        InputResponses(responses): InputResponses,
    ) -> Result<CallToolResponse, ErrorData> {
        match responses
            .as_ref()
            .and_then(|r| answered(r, "answer", "value"))
        {
            Some(_) => done("Streaming complete"),
            None => input_required(json!({"answer": ask_string("Any value", "value")}), None),
        }
    }

    #[tool(
        name = "test_logging_tool",
        description = "Conformance fixture (SEP-2575): logs only when the request set a log level."
    )]
    async fn test_logging_tool(&self, ctx: RequestContext<RoleServer>) -> CallToolResult {
        if ctx.meta.log_level().is_some() {
            log(&ctx, "Diagnostic trace logging activated").await;
        }
        text("Logging evaluated")
    }

    #[tool(
        name = "greet",
        description = "Conformance fixture (tasks): answers at once, never as a task."
    )]
    async fn greet(&self, Parameters(p): Parameters<GreetParams>) -> CallToolResult {
        text(format!("Hello, {}!", p.name))
    }

    #[tool(
        name = "slow_compute",
        description = "Conformance fixture (tasks): sleeps `seconds`; a task when the client supports tasks, else answers when done."
    )]
    async fn slow_compute(
        &self,
        Parameters(p): Parameters<SlowComputeParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let seconds = p.seconds.unwrap_or(1.0).clamp(0.0, 60.0);
        let work = Duration::from_secs_f64(seconds);
        let reply = format!("Computed for {seconds} s");
        if !wants_tasks(&ctx) {
            tokio::time::sleep(work).await;
            return done(reply);
        }
        self.state.spawn_task(move |tc| {
            Box::pin(async move {
                work_for(&tc, work).await?;
                Ok(text(reply))
            })
        })
    }

    #[tool(
        name = "failing_job",
        description = "Conformance fixture (tasks): only runs as a task; after a second the tool reports an error."
    )]
    async fn failing_job(
        &self,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        if !wants_tasks(&ctx) {
            return Err(tasks_required());
        }
        self.state.spawn_task(|tc| {
            Box::pin(async move {
                work_for(&tc, Duration::from_secs(1)).await?;
                Ok(failure("The job failed, as this fixture always does"))
            })
        })
    }

    #[tool(
        name = "protocol_error_job",
        description = "Conformance fixture (tasks): fails with a protocol (JSON-RPC) error."
    )]
    async fn protocol_error_job(
        &self,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let error = || ErrorData::internal_error("the fixture's job broke (as designed)", None);
        if !wants_tasks(&ctx) {
            return Err(error());
        }
        self.state
            .spawn_task(move |_| Box::pin(async move { Err(TaskExit::Error(error())) }))
    }

    #[tool(
        name = "confirm_delete",
        description = "Conformance fixture (tasks): asks the user to confirm, then finishes (a task when the client supports tasks, else in-band input). Deletes nothing."
    )]
    async fn confirm_delete(
        &self,
        Parameters(p): Parameters<ConfirmDeleteParams>,
        InputResponses(responses): InputResponses,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let filename = p.filename.unwrap_or_else(|| "the file".to_owned());
        if !wants_tasks(&ctx) {
            return match responses.as_ref().and_then(|r| r.get("confirm")) {
                Some(answer) => done(format!(
                    "confirm_delete {filename}: the user answered {}",
                    answer.get("action").unwrap_or(&Value::Null)
                )),
                None => input_required(json!({"confirm": ask_confirm()}), None),
            };
        }
        self.state.spawn_task(move |tc| {
            Box::pin(async move {
                let ask = input_request(ask_confirm())?;
                let answer = tc.request_input("confirm", ask).await?;
                Ok(text(format!(
                    "confirm_delete {filename}: the user answered {}",
                    answer.get("action").unwrap_or(&Value::Null)
                )))
            })
        })
    }

    #[tool(
        name = "multi_input",
        description = "Conformance fixture (tasks): asks two questions at once (a task when the client supports tasks, else in-band input)."
    )]
    async fn multi_input(
        &self,
        InputResponses(responses): InputResponses,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let name = |v: &Value| v.pointer("/content/name").cloned().unwrap_or(Value::Null);
        if !wants_tasks(&ctx) {
            let r = responses.unwrap_or_default();
            return match (r.get("first"), r.get("second")) {
                (Some(a), Some(b)) => done(format!("Received {} and {}", name(a), name(b))),
                _ => input_required(
                    json!({"first": ask_string("First name?", "name"),
                        "second": ask_string("Second name?", "name")}),
                    None,
                ),
            };
        }
        self.state.spawn_task(move |tc| {
            Box::pin(async move {
                let first = input_request(ask_string("First name?", "name"))?;
                let second = input_request(ask_string("Second name?", "name"))?;
                let (a, b) = tokio::join!(
                    tc.request_input("first", first),
                    tc.request_input("second", second)
                );
                Ok(text(format!("Received {} and {}", name(&a?), name(&b?))))
            })
        })
    }

    #[tool(
        name = "test_tool_with_task",
        description = "Conformance fixture (tasks + SEP-2322): asks for a name in-band, then finishes as a task."
    )]
    async fn test_tool_with_task(
        &self,
        InputResponses(responses): InputResponses,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        if !wants_tasks(&ctx) {
            return Err(tasks_required());
        }
        let Some(name) = responses
            .as_ref()
            .and_then(|r| answered(r, "user_name", "name"))
        else {
            return input_required(
                json!({"user_name": ask_string("What is your name?", "name")}),
                None,
            );
        };
        self.state.spawn_task(move |tc| {
            Box::pin(async move {
                work_for(&tc, Duration::from_millis(200)).await?;
                Ok(text(format!("Hello, {name}, from a task")))
            })
        })
    }

    #[tool(
        name = "test_missing_capability",
        description = "Conformance fixture (SEP-2575): needs the client's sampling capability."
    )]
    async fn test_missing_capability(
        &self,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        if ctx
            .client_capabilities()
            .is_some_and(|c| c.sampling.is_some())
        {
            done("Success")
        } else {
            Err(ErrorData::missing_required_client_capability(
                ClientCapabilities::builder().enable_sampling().build(),
            ))
        }
    }
}

/// A fixture tool whose `inputSchema` is given as raw JSON (kept exactly as
/// written) and whose reply echoes its arguments after `reply`.
fn raw_tool(
    name: &'static str,
    description: &'static str,
    schema: Value,
    reply: &'static str,
) -> ToolRoute<FixtureServer> {
    let schema: JsonObject = match schema {
        Value::Object(o) => o,
        _ => JsonObject::new(),
    };
    let tool = rmcp::model::Tool::new(name, description, schema);
    ToolRoute::new_dyn(tool, move |ctx| {
        let args = Value::Object(ctx.arguments.clone().unwrap_or_default());
        Box::pin(async move { Ok(text(format!("{reply} {args}")).into()) })
    })
}

/// The suite checks that a JSON Schema 2020-12 `inputSchema` reaches the
/// client whole (`$schema`, `$defs` with `$anchor`, composition and
/// conditional keywords, `additionalProperties`).
fn json_schema_2020_12_tool() -> ToolRoute<FixtureServer> {
    let schema = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "$defs": {"address": {"$anchor": "addressDef", "type": "object",
            "properties": {"street": {"type": "string"}, "city": {"type": "string"}}}},
        "properties": {
            "name": {"type": "string"},
            "address": {"$ref": "#/$defs/address"},
            "contactMethod": {"type": "string", "enum": ["phone", "email"]},
            "phone": {"type": "string"},
            "email": {"type": "string"}
        },
        "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
        "if": {"properties": {"contactMethod": {"const": "phone"}}, "required": ["contactMethod"]},
        "then": {"required": ["phone"]},
        "else": {"required": ["email"]},
        "additionalProperties": false
    });
    raw_tool(
        "json_schema_2020_12_tool",
        "Conformance fixture: a JSON Schema 2020-12 input schema (SEP-1613, SEP-2106).",
        schema,
        "JSON Schema 2020-12 tool called with:",
    )
}

/// SEP-2243: a parameter mirrored in an `Mcp-Param-Region` header, which the
/// HTTP layer checks against the body (Base64 forms included).
fn x_mcp_header_tool() -> ToolRoute<FixtureServer> {
    let schema = json!({
        "type": "object",
        "properties": {"region": {"type": "string", "x-mcp-header": "Region",
            "description": "Also sent as the Mcp-Param-Region header"}},
        "required": ["region"]
    });
    raw_tool(
        "test_x_mcp_header",
        "Conformance fixture (SEP-2243): a parameter carried in an Mcp-Param header too.",
        schema,
        "x-mcp-header tool called with:",
    )
}

/// Every fixture tool.
pub fn tools() -> ToolRouter<FixtureServer> {
    let mut router = FixtureServer::fixture_tools();
    router.add_route(json_schema_2020_12_tool());
    router.add_route(x_mcp_header_tool());
    router
}

/// The fixture's static resources, listed before the library's files.
pub fn resources() -> Vec<Resource> {
    let resource = |uri: &str, name: &str, title: &str, mime: &str| {
        Resource::new(uri, name)
            .with_title(title)
            .with_mime_type(mime)
    };
    vec![
        resource(
            "test://static-text",
            "static-text",
            "Static Text Resource",
            "text/plain",
        ),
        resource(
            "test://static-binary",
            "static-binary",
            "Static Binary Resource",
            "image/png",
        ),
        resource(
            "test://watched-resource",
            "watched-resource",
            "Watched Resource",
            "text/plain",
        ),
    ]
}

pub fn resource_template() -> ResourceTemplate {
    ResourceTemplate::new("test://template/{id}/data", "template")
        .with_title("Resource Template")
        .with_description("A resource template with parameter substitution")
        .with_mime_type("application/json")
}

/// Reads a `test://` resource; unknown ones are the spec's not-found error.
pub fn read(uri: &str) -> Result<ResourceContents, ErrorData> {
    let rest = uri.strip_prefix(SCHEME).unwrap_or_default();
    let contents = match rest {
        "static-text" => {
            ResourceContents::text("This is the content of the static text resource.", uri)
        }
        "static-binary" => {
            ResourceContents::blob(PIXEL_PNG.as_str(), uri).with_mime_type("image/png")
        }
        "watched-resource" => ResourceContents::text("Watched resource content.", uri),
        _ => match rest
            .strip_prefix("template/")
            .and_then(|r| r.strip_suffix("/data"))
            .filter(|id| !id.is_empty() && !id.contains('/'))
        {
            Some(id) => ResourceContents::text(
                json!({"id": id, "templateTest": true, "data": format!("Data for ID: {id}")})
                    .to_string(),
                uri,
            )
            .with_mime_type("application/json"),
            None => {
                return Err(ErrorData::resource_not_found(
                    format!("unknown resource `{uri}`"),
                    Some(json!({"uri": uri})),
                ));
            }
        },
    };
    Ok(contents)
}

pub fn prompts() -> ListPromptsResult {
    let arg = |name: &str, description: &str| {
        PromptArgument::new(name)
            .with_description(description)
            .with_required(true)
    };
    ListPromptsResult::with_all_items(vec![
        Prompt::new(
            "test_simple_prompt",
            Some("A simple prompt without arguments"),
            None,
        )
        .with_title("Simple Test Prompt"),
        Prompt::new(
            "test_prompt_with_arguments",
            Some("A prompt with required arguments"),
            Some(vec![
                arg("arg1", "First test argument"),
                arg("arg2", "Second test argument"),
            ]),
        )
        .with_title("Prompt With Arguments"),
        Prompt::new(
            "test_prompt_with_embedded_resource",
            Some("A prompt that includes an embedded resource"),
            Some(vec![arg("resourceUri", "URI of the resource to embed")]),
        )
        .with_title("Prompt With Embedded Resource"),
        Prompt::new(
            "test_prompt_with_image",
            Some("A prompt that includes image content"),
            None,
        )
        .with_title("Prompt With Image"),
        Prompt::new(
            "test_input_required_result_prompt",
            Some("A prompt that first asks the user for context (SEP-2322)"),
            None,
        )
        .with_title("Prompt With Input Required"),
    ])
}

pub fn get_prompt(request: &GetPromptRequestParams) -> Result<GetPromptResponse, ErrorData> {
    let arg = |name: &str| -> Result<String, ErrorData> {
        request
            .arguments
            .as_ref()
            .and_then(|a| a.get(name))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| ErrorData::invalid_params(format!("missing argument `{name}`"), None))
    };
    let messages = match request.name.as_str() {
        "test_simple_prompt" => vec![PromptMessage::new_text(
            Role::User,
            "This is a simple prompt for testing.",
        )],
        "test_prompt_with_arguments" => vec![PromptMessage::new_text(
            Role::User,
            format!(
                "Prompt with arguments: arg1='{}', arg2='{}'",
                arg("arg1")?,
                arg("arg2")?
            ),
        )],
        "test_prompt_with_embedded_resource" => vec![
            PromptMessage::new(
                Role::User,
                ContentBlock::embedded_text(
                    arg("resourceUri")?,
                    "Embedded resource content for testing.",
                ),
            ),
            PromptMessage::new_text(Role::User, "Please process the embedded resource above."),
        ],
        "test_prompt_with_image" => vec![
            PromptMessage::new(
                Role::User,
                ContentBlock::image(PIXEL_PNG.as_str(), "image/png"),
            ),
            PromptMessage::new_text(Role::User, "Please analyze the image above."),
        ],
        "test_input_required_result_prompt" => {
            let context = request
                .input_responses
                .as_ref()
                .and_then(|r| answered(r, "user_context", "context"));
            let Some(context) = context else {
                let ask = ask_string("What context should the prompt use?", "context");
                let requests = input_requests(json!({"user_context": ask}))?;
                return Ok(InputRequiredResult::from_input_requests(requests).into());
            };
            vec![PromptMessage::new_text(
                Role::User,
                format!("Prompt with context: {context}"),
            )]
        }
        other => {
            return Err(ErrorData::invalid_params(
                format!("unknown prompt `{other}`"),
                None,
            ));
        }
    };
    Ok(GetPromptResult::new(messages).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_state_round_trips_and_refuses_tampering() {
        let fixture = FixtureState::default();
        let sealed = fixture
            .seal("multi-round", 2, Some("Alice".to_owned()))
            .unwrap();
        let state = fixture.open(&sealed).unwrap();
        assert_eq!(
            (state.kind.as_str(), state.round, state.name.as_deref()),
            ("multi-round", 2, Some("Alice"))
        );
        let err = fixture.open(&format!("{sealed}-TAMPERED")).unwrap_err();
        assert!(err.message.contains("integrity"), "{err:?}");
        let mut flipped = sealed.into_bytes();
        let last = flipped.len() - 1;
        flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
        assert!(fixture.open(&String::from_utf8(flipped).unwrap()).is_err());
    }

    #[test]
    fn template_resource_substitutes_and_unknown_is_not_found() {
        let contents = serde_json::to_value(read("test://template/7/data").unwrap()).unwrap();
        assert_eq!(contents["uri"], "test://template/7/data");
        assert!(
            contents["text"]
                .as_str()
                .unwrap()
                .contains("Data for ID: 7")
        );
        for uri in [
            "test://nope",
            "test://template//data",
            "test://template/a/b/data",
        ] {
            let err = read(uri).unwrap_err();
            assert_eq!(err.data, Some(json!({"uri": uri})), "{uri}");
        }
    }

    #[test]
    fn fixture_media_is_well_formed() {
        let b64 = base64::engine::general_purpose::STANDARD;
        let png = b64.decode(PIXEL_PNG.as_str()).unwrap();
        let pixel = image::load_from_memory(&png).unwrap();
        assert_eq!((pixel.width(), pixel.height()), (1, 1));
        let wav = b64.decode(SILENT_WAV.as_str()).unwrap();
        assert_eq!(&wav[..4], b"RIFF");
        assert_eq!(&wav[8..16], b"WAVEfmt ");
        let riff_len = u32::from_le_bytes([wav[4], wav[5], wav[6], wav[7]]) as usize;
        assert_eq!(riff_len + 8, wav.len());
    }
}
