//! `generate_image` and `generate_image_batch`.

use super::args::Parameters;
use rmcp::handler::server::tool::schema_for_output;
use rmcp::model::{CallToolResponse, ContentBlock, ProgressNotificationParam, Resource};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, tool, tool_router};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::confirm::{Answers, ConfirmCost, Gate};
use super::{MediaServer, error_result, structured_result, viewer};
use crate::contract::{BatchOutput, ImageOutput};
use crate::domain::{self, AspectRatio, ImageSize};
use crate::service::{BatchInput, GenerateInput, Generated, Paid};

pub(super) fn model_schema(_: &mut SchemaGenerator) -> Schema {
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
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
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
    /// Reference images sent with the prompt (style, characters, objects to draw on): library
    /// file names, `media://files/…` URIs, or paths (over HTTP only inside the output
    /// directory and `MCP_INPUT_ROOTS`). At most 14 (3 on `gemini-2.5-flash-image`;
    /// `list_models` shows each model's `max_reference_images`); larger than 2048 px on the
    /// long side are scaled down before sending.
    #[serde(default)]
    pub reference_images: Vec<String>,
    #[serde(flatten)]
    pub cost: ConfirmCost,
}

/// Parameters of `generate_image_batch`.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
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
    /// Reference images sent with every prompt (see `generate_image`).
    #[serde(default)]
    pub reference_images: Vec<String>,
    /// Covers the whole batch: its estimate is every prompt's together.
    #[serde(flatten)]
    pub cost: ConfirmCost,
}

/// The `resource_link` and inline image for one generated file.
pub(super) fn media_content(g: &Generated) -> Vec<ContentBlock> {
    let out = &g.output;
    let title: String = match out.metadata.prompt.trim() {
        // An upscale has no prompt: the file's name says what it is.
        "" => out.filename.clone(),
        prompt => prompt.chars().take(80).collect(),
    };
    let link = Resource::new(out.uri.clone(), out.filename.clone())
        .with_title(title)
        .with_mime_type(out.metadata.mime_type.clone())
        .with_size(out.metadata.file_size_bytes);
    let mut blocks = vec![ContentBlock::resource_link(link)];
    if let Some((data, mime_type)) = g.inline.base64() {
        blocks.push(ContentBlock::image(data, mime_type));
    }
    if let Some(note) = fallback_note(out) {
        blocks.push(ContentBlock::text(note));
    }
    blocks
}

/// A short note when the fallback model made the image instead of the one
/// asked for (the metadata says it too: `model` and `fallback_from`).
fn fallback_note(out: &ImageOutput) -> Option<String> {
    let from = out.metadata.fallback_from.as_deref()?;
    Some(format!(
        "`{}` was rate limited, so `{}` (the fallback model, `MCP_FALLBACK_MODEL`) made `{}`.",
        from, out.metadata.model, out.filename
    ))
}

/// Sends `notifications/progress` when the client asked for it, in order,
/// from a sync callback.
pub(super) struct Progress {
    tx: Option<mpsc::UnboundedSender<(f64, Option<f64>, String)>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Progress {
    pub(super) fn start(ctx: &RequestContext<RoleServer>) -> Self {
        let Some(token) = ctx.meta.get_progress_token() else {
            return Self {
                tx: None,
                task: None,
            };
        };
        let (tx, mut rx) = mpsc::unbounded_channel::<(f64, Option<f64>, String)>();
        let peer = ctx.peer.clone();
        let task = tokio::spawn(async move {
            while let Some((done, total, message)) = rx.recv().await {
                let mut param =
                    ProgressNotificationParam::new(token.clone(), done).with_message(message);
                if let Some(total) = total {
                    param = param.with_total(total);
                }
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
    pub(super) async fn finish(mut self) {
        self.tx = None;
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    /// One more of `total` images done.
    pub(super) fn step(&self, done: usize, total: usize) {
        self.report(
            done as f64,
            Some(total as f64),
            format!("{done} of {total} images done"),
        );
    }

    /// Progress as the caller counts it (it must only grow).
    pub(super) fn report(&self, progress: f64, total: Option<f64>, message: String) {
        if let Some(tx) = &self.tx {
            let _ = tx.send((progress, total, message));
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
resource link and a small inline preview; `metadata.cost_usd` is its estimated cost (see \
`list_models` prices). Takes 5–60 s (longer at 4K). For several images, prefer \
`generate_image_batch`. If the model is still rate limited after retries and the server \
has a fallback model (`MCP_FALLBACK_MODEL`), that model makes the image in one more try: \
`metadata.model` names the model that made it, `metadata.fallback_from` the one asked for (and \
`metadata.cost_usd` is that model's price). Calls estimated above the server's \
`MCP_CONFIRM_ABOVE_USD` ask the user first (see `confirm_cost`); with a spending cap set, a call \
that would pass it fails with `BUDGET_EXCEEDED` before anything is requested.",
        annotations(
            title = "Generate image",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = true
        ),
        output_schema = schema_for_output::<ImageOutput>(),
        meta = viewer::tool_meta()
    )]
    async fn generate_image(
        &self,
        Parameters(p): Parameters<GenerateImageParams>,
        answers: Answers,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let input = GenerateInput {
            prompt: p.prompt.clone(),
            model: p.model.clone(),
            aspect_ratio: p.aspect_ratio.clone(),
            image_size: p.image_size.clone(),
            reference_images: p.reference_images.clone(),
        };
        let call = Paid::Generate(&input);
        if let Gate::Stop(r) = self
            .confirm("generate_image", &p, &p.cost, call, answers, &ctx)
            .await
        {
            return Ok(r);
        }
        let progress = Progress::start(&ctx);
        match self
            .service()
            .generate_image(&input, self.policy(), &ctx.ct)
            .await
        {
            Ok(mut g) => {
                self.link(&mut g.output);
                progress.step(1, 1);
                progress.finish().await;
                Ok(structured_result(&g.output, false, media_content(&g)).into())
            }
            Err(e) => Ok(error_result(&e).into()),
        }
    }

    #[tool(
        name = "generate_image_batch",
        title = "Generate images (batch)",
        description = "Generate several images, one per prompt, in parallel, with the same model, \
aspect ratio and size. One failed prompt does not fail the others: each entry of `results` is \
either an image (like `generate_image`) or `{success:false, prompt, error}`; a rate-limited \
prompt falls back on its own as in `generate_image`. Sends progress \
notifications (one step per finished image) when the client asks for them. Calls estimated \
(the whole batch together) above the server's `MCP_CONFIRM_ABOVE_USD` ask the user first (see \
`confirm_cost`). With a spending cap set, the whole batch's estimate is checked first: a batch \
that would pass it is refused (`BUDGET_EXCEEDED`) before any image is requested.",
        annotations(
            title = "Generate images (batch)",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = true
        ),
        output_schema = schema_for_output::<BatchOutput>(),
        meta = viewer::tool_meta()
    )]
    async fn generate_image_batch(
        &self,
        Parameters(p): Parameters<GenerateImageBatchParams>,
        answers: Answers,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let input = BatchInput {
            prompts: p.prompts.clone(),
            model: p.model.clone(),
            aspect_ratio: p.aspect_ratio.clone(),
            image_size: p.image_size.clone(),
            reference_images: p.reference_images.clone(),
        };
        let call = Paid::Batch(&input);
        if let Gate::Stop(r) = self
            .confirm("generate_image_batch", &p, &p.cost, call, answers, &ctx)
            .await
        {
            return Ok(r);
        }
        let progress = Progress::start(&ctx);
        let batch = self
            .service()
            .generate_batch(&input, self.policy(), &ctx.ct, |done, total| {
                progress.step(done, total)
            })
            .await;
        progress.finish().await;
        match batch {
            Ok(batch) => {
                let extra: Vec<_> = batch.generated().flat_map(media_content).collect();
                let mut out = batch.output();
                self.link(&mut out);
                Ok(structured_result(&out, out.succeeded == 0, extra).into())
            }
            Err(e) => Ok(error_result(&e).into()),
        }
    }
}
