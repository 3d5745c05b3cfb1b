//! `edit_image`, `inpaint`, `outpaint` and `upscale`.

use super::args::Parameters;
use rmcp::handler::server::tool::schema_for_output;
use rmcp::model::CallToolResponse;
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, tool, tool_router};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

use super::confirm::{Answers, ConfirmCost, Gate};
use super::image::{Progress, media_content, model_schema};
use super::{MediaServer, error_result, structured_result, viewer};
use crate::contract::ImageOutput;
use crate::domain;
use crate::media::canvas::Direction;
use crate::media::encode::OutputFormat;
use crate::service::{EditInput, Generated, OutpaintInput, Paid, ServiceError, UpscaleInput};

fn output_format_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "enum": OutputFormat::ALL.map(OutputFormat::as_str),
        "default": "png",
        "description": "File format of the result: `png` (lossless: unedited pixels stay exactly \
    as they were), `jpeg` (smaller, lossy) or `webp` (lossless)."
    })
}

fn direction_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "enum": Direction::ALL.map(Direction::as_str),
        "description": "Which side to extend: `left`, `right`, `up`, `down`, or `all` (every side)."
    })
}

fn scale_factor_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "number",
        "enum": [2, 4],
        "default": 2,
        "description": "How many times larger, on each side."
    })
}

fn method_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "enum": ["lanczos", "model"],
        "default": "lanczos",
        "description": "`lanczos` (default): resampled here, fast, no backend call, faithful but \
    no new detail. `model`: the image model re-renders the picture larger with new fine detail \
    (a backend call; may change small things), then it is brought to the exact size."
    })
}

/// What `edit_image`, `inpaint` and `outpaint` share.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct EditOptions {
    #[serde(default)]
    #[schemars(schema_with = "model_schema", extend("default" = domain::DEFAULT_IMAGE_MODEL))]
    pub model: Option<String>,
    #[serde(default)]
    #[schemars(schema_with = "output_format_schema", extend("default" = "png"))]
    pub output_format: Option<String>,
    /// Pixels of soft edge where new pixels meet kept ones, inside the changed area
    /// (0 = a hard edge; default 4).
    #[serde(default)]
    #[schemars(extend("default" = 4))]
    pub feather: Option<i64>,
    #[serde(flatten)]
    pub cost: ConfirmCost,
}

/// Parameters of `edit_image`.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct EditImageParams {
    /// The image to edit: a library file name (as `list_generated` shows it), a
    /// `media://files/…` URI, or a path (over HTTP only inside the output directory and
    /// `MCP_INPUT_ROOTS`). PNG, JPEG, WebP or GIF.
    pub image_path: String,
    /// What to change, in plain language ("make it night", "add a red scarf").
    pub prompt: String,
    /// Optional mask, like `image_path`: white (or opaque) where the image may change, black
    /// (or transparent) where it must stay exactly as it is. Scaled to the image if its size
    /// differs.
    #[serde(default)]
    pub mask_path: Option<String>,
    /// Reference images to draw on (style, characters, objects), like `image_path`: at most
    /// the model's `max_reference_images` (`list_models`); scaled to 2048 px if larger.
    #[serde(default)]
    pub reference_images: Vec<String>,
    #[serde(flatten)]
    pub options: EditOptions,
}

/// Parameters of `inpaint`.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct InpaintParams {
    /// The image, like `edit_image`'s `image_path`.
    pub image_path: String,
    /// White (or opaque) where to repaint, black (or transparent) where to keep every pixel.
    pub mask_path: String,
    /// What to put in the masked area.
    pub prompt: String,
    #[serde(flatten)]
    pub options: EditOptions,
}

/// Parameters of `outpaint`.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct OutpaintParams {
    /// The image to extend, like `edit_image`'s `image_path`.
    pub image_path: String,
    #[schemars(schema_with = "direction_schema")]
    pub direction: String,
    /// What the new area should show (it continues the picture).
    pub prompt: String,
    /// Pixels added on each extended side (default 256). A 1024×1024 image extended
    /// `right` by 256 becomes 1280×1024; `all` adds them on every side.
    #[serde(default)]
    #[schemars(extend("default" = 256))]
    pub extend_pixels: Option<i64>,
    #[serde(flatten)]
    pub options: EditOptions,
}

/// Parameters of `upscale`.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct UpscaleParams {
    /// The image to enlarge, like `edit_image`'s `image_path`.
    pub image_path: String,
    #[serde(default)]
    #[schemars(schema_with = "scale_factor_schema", extend("default" = 2))]
    pub scale_factor: Option<f64>,
    #[serde(default)]
    #[schemars(schema_with = "method_schema", extend("default" = "lanczos"))]
    pub method: Option<String>,
    /// With `method: model`: anything the re-render should pay attention to.
    #[serde(default)]
    pub prompt: Option<String>,
    /// With `method: model`: the image model.
    #[serde(default)]
    #[schemars(schema_with = "model_schema", extend("default" = domain::DEFAULT_IMAGE_MODEL))]
    pub model: Option<String>,
    #[serde(default)]
    #[schemars(schema_with = "output_format_schema", extend("default" = "png"))]
    pub output_format: Option<String>,
    /// With `method: model` (a local upscale costs nothing and never asks).
    #[serde(flatten)]
    pub cost: ConfirmCost,
}

impl MediaServer {
    /// An edit's tool result, with one progress step on success.
    async fn edited(
        &self,
        ctx: &RequestContext<RoleServer>,
        run: impl Future<Output = Result<Generated, ServiceError>>,
    ) -> Result<CallToolResponse, ErrorData> {
        let progress = Progress::start(ctx);
        Ok(match run.await {
            Ok(mut g) => {
                self.link(&mut g.output);
                progress.step(1, 1);
                progress.finish().await;
                structured_result(&g.output, false, media_content(&g))
            }
            Err(e) => error_result(&e),
        }
        .into())
    }
}

#[tool_router(router = edit_router, vis = "pub(super)")]
impl MediaServer {
    #[tool(
        name = "edit_image",
        title = "Edit image",
        description = "Edit an existing image as a prompt says, with a Gemini image model; the \
result is saved as a new library file (the original stays) with the same pixel size as the \
original. With `mask_path`, only the white part of the mask changes: every other pixel stays \
exactly as it was. `reference_images` add style, character or object references. Returns \
like `generate_image` (a rate-limited model falls back the same way), plus \
`metadata.operation` and `metadata.source`. Calls estimated above the server's \
`MCP_CONFIRM_ABOVE_USD` ask the user first (see `confirm_cost`).",
        annotations(
            title = "Edit image",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = true
        ),
        output_schema = schema_for_output::<ImageOutput>(),
        meta = viewer::tool_meta()
    )]
    async fn edit_image(
        &self,
        Parameters(p): Parameters<EditImageParams>,
        answers: Answers,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let input = EditInput {
            image: p.image_path.clone(),
            prompt: p.prompt.clone(),
            mask: p.mask_path.clone(),
            reference_images: p.reference_images.clone(),
            model: p.options.model.clone(),
            output_format: p.options.output_format.clone(),
            feather: p.options.feather,
        };
        let call = Paid::Edit(&input);
        if let Gate::Stop(r) = self
            .confirm("edit_image", &p, &p.options.cost, call, answers, &ctx)
            .await
        {
            return Ok(r);
        }
        self.edited(
            &ctx,
            self.service().edit_image(&input, self.policy(), &ctx.ct),
        )
        .await
    }

    #[tool(
        name = "inpaint",
        title = "Inpaint",
        description = "Repaint the masked area of an image as a prompt says (remove an object, \
replace a sky, add something in a chosen place). The mask is white where to repaint and black \
where to keep; every pixel outside it stays exactly as it was. Saved as a new library file the \
size of the original. Calls estimated above the server's `MCP_CONFIRM_ABOVE_USD` ask the user first (see `confirm_cost`).",
        annotations(
            title = "Inpaint",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = true
        ),
        output_schema = schema_for_output::<ImageOutput>(),
        meta = viewer::tool_meta()
    )]
    async fn inpaint(
        &self,
        Parameters(p): Parameters<InpaintParams>,
        answers: Answers,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let input = EditInput {
            image: p.image_path.clone(),
            prompt: p.prompt.clone(),
            mask: Some(p.mask_path.clone()),
            reference_images: Vec::new(),
            model: p.options.model.clone(),
            output_format: p.options.output_format.clone(),
            feather: p.options.feather,
        };
        let call = Paid::Inpaint(&input);
        if let Gate::Stop(r) = self
            .confirm("inpaint", &p, &p.options.cost, call, answers, &ctx)
            .await
        {
            return Ok(r);
        }
        self.edited(&ctx, self.service().inpaint(&input, self.policy(), &ctx.ct))
            .await
    }

    #[tool(
        name = "outpaint",
        title = "Outpaint",
        description = "Extend an image beyond its borders (`left`, `right`, `up`, `down` or `all`) \
by `extend_pixels`, the model painting the new area so the picture continues; the original \
pixels stay exactly as they were. A 1024×1024 image extended right by 256 becomes 1280×1024. Calls estimated above the server's `MCP_CONFIRM_ABOVE_USD` ask the user first (see `confirm_cost`).",
        annotations(
            title = "Outpaint",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = true
        ),
        output_schema = schema_for_output::<ImageOutput>(),
        meta = viewer::tool_meta()
    )]
    async fn outpaint(
        &self,
        Parameters(p): Parameters<OutpaintParams>,
        answers: Answers,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let input = OutpaintInput {
            image: p.image_path.clone(),
            prompt: p.prompt.clone(),
            direction: p.direction.clone(),
            extend_pixels: p.extend_pixels,
            model: p.options.model.clone(),
            output_format: p.options.output_format.clone(),
            feather: p.options.feather,
        };
        let call = Paid::Outpaint(&input);
        if let Gate::Stop(r) = self
            .confirm("outpaint", &p, &p.options.cost, call, answers, &ctx)
            .await
        {
            return Ok(r);
        }
        self.edited(
            &ctx,
            self.service().outpaint(&input, self.policy(), &ctx.ct),
        )
        .await
    }

    #[tool(
        name = "upscale",
        title = "Upscale",
        description = "Make an image 2 or 4 times larger on each side. `method: lanczos` (default) \
resamples here in well under a second, with no backend call; `method: model` has the image \
model re-render it with new fine detail. Results over the pixel limit (64 megapixels, \
8192×8192, unless configured otherwise) are refused before any work. With `method: model`, calls \
estimated above the server's `MCP_CONFIRM_ABOVE_USD` ask the user first (see `confirm_cost`).",
        annotations(
            title = "Upscale",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = true
        ),
        output_schema = schema_for_output::<ImageOutput>(),
        meta = viewer::tool_meta()
    )]
    async fn upscale(
        &self,
        Parameters(p): Parameters<UpscaleParams>,
        answers: Answers,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let input = UpscaleInput {
            image: p.image_path.clone(),
            scale_factor: p.scale_factor,
            method: p.method.clone(),
            prompt: p.prompt.clone(),
            model: p.model.clone(),
            output_format: p.output_format.clone(),
        };
        let call = Paid::Upscale(&input);
        if let Gate::Stop(r) = self
            .confirm("upscale", &p, &p.cost, call, answers, &ctx)
            .await
        {
            return Ok(r);
        }
        self.edited(&ctx, self.service().upscale(&input, self.policy(), &ctx.ct))
            .await
    }
}
