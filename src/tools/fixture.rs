//! `serve --conformance-fixture`: the tools (`test_*`), resources (`test://…`)
//! and prompts that the official conformance suite
//! (`@modelcontextprotocol/conformance`) calls, served beside media-gen's own
//! so the suite's scenarios run against the real server, transports and
//! security layer. They touch nothing of the library. Off by default: a
//! client of a normal `serve` never sees them.

#![allow(
    deprecated,
    reason = "the suite still probes logging, sampling and resources/subscribe (2025-11-25)"
)]

use std::io::Cursor;
use std::sync::LazyLock;

use base64::Engine as _;
use rmcp::handler::server::router::tool::{ToolRoute, ToolRouter};
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolResult, ContentBlock, CreateMessageRequestParams, ElicitRequestParams,
    GetPromptRequestParams, GetPromptResult, JsonObject, ListPromptsResult, LoggingLevel,
    LoggingMessageNotificationParam, ProgressNotificationParam, Prompt, PromptArgument,
    PromptMessage, Resource, ResourceContents, ResourceTemplate, Role, SamplingMessage,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, tool, tool_router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::MediaServer;

/// The URI scheme of every fixture resource.
pub(super) const SCHEME: &str = "test://";

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
        Err(e) => return CallToolResult::error(vec![ContentBlock::text(e.to_string())]),
    };
    match ctx.peer.create_elicitation(params).await {
        Ok(answer) => text(format!(
            "Elicitation completed: action={}, content={}",
            serde_json::to_value(&answer.action).unwrap_or(Value::Null),
            answer.content.unwrap_or_else(|| json!({}))
        )),
        Err(e) => CallToolResult::error(vec![ContentBlock::text(format!(
            "elicitation not supported or failed: {e}"
        ))]),
    }
}

#[tool_router(router = fixture_tools, vis = "")]
impl MediaServer {
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
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        log(&ctx, "Tool processing data").await;
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
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
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
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
        CallToolResult::error(vec![ContentBlock::text(
            "This tool intentionally returns an error for testing",
        )])
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
            Err(e) => CallToolResult::error(vec![ContentBlock::text(format!(
                "sampling not supported or failed: {e}"
            ))]),
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
}

/// The suite checks that a JSON Schema 2020-12 `inputSchema` reaches the
/// client whole (`$schema`, `$defs` with `$anchor`, composition and
/// conditional keywords, `additionalProperties`).
fn json_schema_2020_12_tool() -> ToolRoute<MediaServer> {
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
    let schema: JsonObject = match schema {
        Value::Object(o) => o,
        _ => JsonObject::new(),
    };
    let tool = rmcp::model::Tool::new(
        "json_schema_2020_12_tool",
        "Conformance fixture: a JSON Schema 2020-12 input schema (SEP-1613, SEP-2106).",
        schema,
    );
    ToolRoute::new_dyn(tool, |ctx| {
        let args = Value::Object(ctx.arguments.clone().unwrap_or_default());
        Box::pin(
            async move { Ok(text(format!("JSON Schema 2020-12 tool called with: {args}")).into()) },
        )
    })
}

/// Every fixture tool.
pub(super) fn tools() -> ToolRouter<MediaServer> {
    let mut router = MediaServer::fixture_tools();
    router.add_route(json_schema_2020_12_tool());
    router
}

/// The fixture's static resources, listed before the library's files.
pub(super) fn resources() -> Vec<Resource> {
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

pub(super) fn resource_template() -> ResourceTemplate {
    ResourceTemplate::new("test://template/{id}/data", "template")
        .with_title("Resource Template")
        .with_description("A resource template with parameter substitution")
        .with_mime_type("application/json")
}

/// Reads a `test://` resource; unknown ones are the spec's not-found error.
pub(super) fn read(uri: &str) -> Result<ResourceContents, ErrorData> {
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

pub(super) fn prompts() -> ListPromptsResult {
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
    ])
}

pub(super) fn get_prompt(request: &GetPromptRequestParams) -> Result<GetPromptResult, ErrorData> {
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
        other => {
            return Err(ErrorData::invalid_params(
                format!("unknown prompt `{other}`"),
                None,
            ));
        }
    };
    Ok(GetPromptResult::new(messages))
}
