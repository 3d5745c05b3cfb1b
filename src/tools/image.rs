//! `generate_image` and `generate_image_batch`.

use base64::Engine;
use rmcp::handler::server::tool::schema_for_output;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock, ProgressNotificationParam, Resource};
use rmcp::service::RequestContext;
use rmcp::{RoleServer, tool, tool_router};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::{ErrorOutput, MediaServer, error_result, structured_result};
use crate::domain::{self, AspectRatio, ImageSize};
use crate::service::{
    GenerateInput, GenerateSpec, Generated, Inline, MAX_BATCH, validate_generate,
};

fn model_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "enum": domain::image_model_ids(),
        "default": domain::DEFAULT_IMAGE_MODEL,
        "description": "Gemini image model. `gemini-3-pro-image-preview` (default) gives the best \
    quality and follows long prompts; `gemini-2.5-flash-image` is fastest (1K only); \
    `gemini-3.1-flash-image-preview` is fast and adds extreme ratios (1:4, 4:1, 1:8, 8:1) and size `512`."
    })
}

fn aspect_ratio_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "enum": AspectRatio::ALL.map(AspectRatio::as_str),
        "default": "1:1",
        "description": "Aspect ratio, width:height. 16:9 for landscape/banners, 9:16 for phone \
    screens, 1:1 for icons. 1:4, 4:1, 1:8, 8:1 need `gemini-3.1-flash-image-preview`."
    })
}

fn image_size_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "enum": ImageSize::ALL.map(ImageSize::as_str),
        "default": "1K",
        "description": "Resolution class: 1K ≈ 1 megapixel (e.g. 1376×768 at 16:9), 2K doubles \
    and 4K quadruples both sides. Larger is slower. `512` only on 3.1 Flash; 2.5 Flash is 1K only."
    })
}

/// Parameters of `generate_image`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct GenerateImageParams {
    /// What to draw: subject, style, composition, lighting, text to render. Plain language;
    /// specific prompts give better images.
    pub prompt: String,
    #[serde(default)]
    #[schemars(schema_with = "model_schema", extend("default" = domain::DEFAULT_IMAGE_MODEL))]
    pub model: Option<String>,
    #[serde(default)]
    #[schemars(schema_with = "aspect_ratio_schema", extend("default" = "1:1"))]
    pub aspect_ratio: Option<String>,
    #[serde(default)]
    #[schemars(schema_with = "image_size_schema", extend("default" = "1K"))]
    pub image_size: Option<String>,
}

/// Parameters of `generate_image_batch`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct GenerateImageBatchParams {
    /// One prompt per image (1–64). They run in parallel; results keep this order.
    pub prompts: Vec<String>,
    /// Applies to every prompt.
    #[serde(default)]
    #[schemars(schema_with = "model_schema", extend("default" = domain::DEFAULT_IMAGE_MODEL))]
    pub model: Option<String>,
    /// Applies to every prompt.
    #[serde(default)]
    #[schemars(schema_with = "aspect_ratio_schema", extend("default" = "1:1"))]
    pub aspect_ratio: Option<String>,
    /// Applies to every prompt.
    #[serde(default)]
    #[schemars(schema_with = "image_size_schema", extend("default" = "1K"))]
    pub image_size: Option<String>,
}

/// Facts about a generated image (also written to its JSON sidecar).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ImageMetadata {
    pub prompt: String,
    pub model: String,
    pub aspect_ratio: String,
    pub image_size: String,
    /// Real pixel width, read from the file.
    pub width: u32,
    /// Real pixel height, read from the file.
    pub height: u32,
    pub mime_type: String,
    pub file_size_bytes: u64,
    /// When the file was saved (RFC 3339, UTC).
    pub timestamp: String,
    /// Text the model sent with the image, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_text: Option<String>,
}

/// A generated image: where it is and what it is.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ImageOutput {
    /// Always `true`.
    pub success: bool,
    /// Absolute path of the saved file.
    pub image_path: String,
    /// File name inside the media library (use it with the library tools).
    pub filename: String,
    /// MCP resource URI, `media://files/FILENAME`.
    pub uri: String,
    pub metadata: ImageMetadata,
}

/// One entry of a batch: an image, or the error for that prompt.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum BatchItem {
    Ok(ImageOutput),
    Err(BatchError),
}

/// A failed prompt of a batch.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct BatchError {
    /// The prompt that failed.
    pub prompt: String,
    #[serde(flatten)]
    pub error: ErrorOutput,
}

/// Result of `generate_image_batch`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct BatchOutput {
    /// `true` when every prompt produced an image.
    pub success: bool,
    /// One entry per prompt, in the order given.
    pub results: Vec<BatchItem>,
    pub succeeded: usize,
    pub failed: usize,
}

impl BatchOutput {
    /// Pairs each prompt with its outcome, keeping the order.
    pub fn from_outcomes(
        prompts: &[String],
        outcomes: &[Result<Generated, crate::service::ServiceError>],
    ) -> Self {
        let results: Vec<BatchItem> = prompts
            .iter()
            .zip(outcomes)
            .map(|(prompt, o)| match o {
                Ok(g) => BatchItem::Ok(ImageOutput::from(g)),
                Err(e) => BatchItem::Err(BatchError {
                    prompt: prompt.clone(),
                    error: ErrorOutput::from(e),
                }),
            })
            .collect();
        let succeeded = results
            .iter()
            .filter(|r| matches!(r, BatchItem::Ok(_)))
            .count();
        let failed = results.len() - succeeded;
        BatchOutput {
            success: failed == 0,
            results,
            succeeded,
            failed,
        }
    }
}

pub fn media_uri(filename: &str) -> String {
    format!("media://files/{filename}")
}

impl From<&Generated> for ImageOutput {
    fn from(g: &Generated) -> Self {
        let r = &g.record;
        ImageOutput {
            success: true,
            image_path: g.path.display().to_string(),
            filename: r.id.as_str().to_owned(),
            uri: media_uri(r.id.as_str()),
            metadata: ImageMetadata {
                prompt: g.spec.prompt.clone(),
                model: g.spec.model.to_owned(),
                aspect_ratio: g.spec.aspect_ratio.to_string(),
                image_size: g.spec.image_size.to_string(),
                width: r.width.unwrap_or(0),
                height: r.height.unwrap_or(0),
                mime_type: r.mime_type.clone(),
                file_size_bytes: r.size_bytes,
                timestamp: r
                    .created
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                model_text: g.text.clone().filter(|t| !t.trim().is_empty()),
            },
        }
    }
}

/// The `resource_link` and inline image for one generated file.
fn media_content(g: &Generated) -> Vec<ContentBlock> {
    let r = &g.record;
    let title: String = g.spec.prompt.chars().take(80).collect();
    let link = Resource::new(media_uri(r.id.as_str()), r.id.as_str())
        .with_title(title)
        .with_mime_type(r.mime_type.clone())
        .with_size(r.size_bytes);
    let mut out = vec![ContentBlock::resource_link(link)];
    let b64 = base64::engine::general_purpose::STANDARD;
    match &g.inline {
        Inline::None => {}
        Inline::Preview(p) => out.push(ContentBlock::image(b64.encode(&p.data), p.mime_type)),
        Inline::Full { data, mime_type } => {
            out.push(ContentBlock::image(b64.encode(data), mime_type.clone()));
        }
    }
    out
}

fn generated_result(g: &Generated) -> CallToolResult {
    structured_result(&ImageOutput::from(g), false, media_content(g))
}

/// Sends `notifications/progress` when the client asked for it, in order,
/// from a sync callback.
struct Progress {
    tx: Option<mpsc::UnboundedSender<(usize, usize)>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Progress {
    fn start(ctx: &RequestContext<RoleServer>) -> Self {
        let Some(token) = ctx.meta.get_progress_token() else {
            return Self {
                tx: None,
                task: None,
            };
        };
        let (tx, mut rx) = mpsc::unbounded_channel::<(usize, usize)>();
        let peer = ctx.peer.clone();
        let task = tokio::spawn(async move {
            while let Some((done, total)) = rx.recv().await {
                let param = ProgressNotificationParam::new(token.clone(), done as f64)
                    .with_total(total as f64)
                    .with_message(format!("{done} of {total} images done"));
                if let Err(e) = peer.notify_progress(param).await {
                    tracing::debug!(error = %e, "progress notification not sent");
                    break;
                }
            }
        });
        Self {
            tx: Some(tx),
            task: Some(task),
        }
    }

    /// Waits until every step was sent: progress must reach the client
    /// before the result does.
    async fn finish(mut self) {
        self.tx = None;
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    fn step(&self, done: usize, total: usize) {
        if let Some(tx) = &self.tx {
            let _ = tx.send((done, total));
        }
    }
}

#[tool_router(router = image_router, vis = "pub(super)")]
impl MediaServer {
    #[tool(
        name = "generate_image",
        title = "Generate image",
        description = "Generate one image from a text prompt with a Gemini image model and save it \
to the media library. Returns the file's absolute `image_path`, `filename`, a `media://files/…` \
resource link and a small inline preview. Takes 5–60 s (longer at 4K). For several images, \
prefer `generate_image_batch`.",
        annotations(
            title = "Generate image",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = true
        ),
        output_schema = schema_for_output::<ImageOutput>()
    )]
    async fn generate_image(
        &self,
        Parameters(p): Parameters<GenerateImageParams>,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let input = GenerateInput {
            prompt: p.prompt,
            model: p.model,
            aspect_ratio: p.aspect_ratio,
            image_size: p.image_size,
        };
        let spec = match validate_generate(&input, self.service().settings().default_model) {
            Ok(s) => s,
            Err(e) => return error_result(&e),
        };
        let progress = Progress::start(&ctx);
        match self.service().generate_image(&spec, &ctx.ct).await {
            Ok(g) => {
                progress.step(1, 1);
                progress.finish().await;
                generated_result(&g)
            }
            Err(e) => error_result(&e),
        }
    }

    #[tool(
        name = "generate_image_batch",
        title = "Generate images (batch)",
        description = "Generate several images, one per prompt, in parallel, with the same model, \
aspect ratio and size. One failed prompt does not fail the others: each entry of `results` is \
either an image (like `generate_image`) or `{success:false, prompt, error}`. Sends progress \
notifications (one step per finished image) when the client asks for them.",
        annotations(
            title = "Generate images (batch)",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = true
        ),
        output_schema = schema_for_output::<BatchOutput>()
    )]
    async fn generate_image_batch(
        &self,
        Parameters(p): Parameters<GenerateImageBatchParams>,
        ctx: RequestContext<RoleServer>,
    ) -> CallToolResult {
        use crate::service::ServiceError;
        if p.prompts.is_empty() || p.prompts.len() > MAX_BATCH {
            return error_result(&ServiceError::BadParameter {
                field: "prompts",
                message: format!(
                    "`prompts` has {} entries; give between 1 and {MAX_BATCH} prompts",
                    p.prompts.len()
                ),
            });
        }
        let default_model = self.service().settings().default_model;
        // Shared parameters are checked once, up front: a bad ratio fails the call.
        let shared = GenerateInput {
            prompt: "-".into(),
            model: p.model.clone(),
            aspect_ratio: p.aspect_ratio.clone(),
            image_size: p.image_size.clone(),
        };
        if let Err(e) = validate_generate(&shared, default_model) {
            return error_result(&e);
        }
        // Per-prompt problems (an empty prompt) fail only that entry.
        let checked: Vec<Result<GenerateSpec, _>> = p
            .prompts
            .iter()
            .map(|prompt| {
                validate_generate(
                    &GenerateInput {
                        prompt: prompt.clone(),
                        ..shared.clone()
                    },
                    default_model,
                )
            })
            .collect();
        let specs: Vec<GenerateSpec> = checked
            .iter()
            .filter_map(|c| c.as_ref().ok())
            .cloned()
            .collect();
        let progress = Progress::start(&ctx);
        let invalid = checked.len() - specs.len();
        let mut generated = self
            .service()
            .generate_batch(&specs, &ctx.ct, |done, total| {
                progress.step(done + invalid, total + invalid);
            })
            .await
            .into_iter();
        let outcomes: Vec<Result<Generated, ServiceError>> = checked
            .into_iter()
            .map(|check| match check {
                Err(e) => Err(e),
                Ok(_) => generated
                    .next()
                    .unwrap_or_else(|| Err(ServiceError::Internal("batch result missing".into()))),
            })
            .collect();
        progress.finish().await;
        let extra: Vec<_> = outcomes.iter().flatten().flat_map(media_content).collect();
        let out = BatchOutput::from_outcomes(&p.prompts, &outcomes);
        structured_result(&out, out.succeeded == 0, extra)
    }
}
