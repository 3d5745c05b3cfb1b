//! Editing an existing image: `edit_image` (with an optional mask),
//! `inpaint` (mask required), `outpaint` (a larger canvas) and `upscale`
//! (local Lanczos, or a re-render by the model).
//!
//! Gemini image models take images and text but no mask. media-gen makes a
//! mask hold by preparing the inputs (the mask travels as a second image
//! with a plain instruction) and by compositing the answer: the model's
//! picture is resampled to the source's exact size and kept only where the
//! mask allows — every other pixel is the source's, exactly (with a small
//! feather inside the edited region). Pixel work runs off the async
//! runtime; results go through the save pipeline like any other image.

use bytes::Bytes;
use image::DynamicImage;
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

use super::generate::Generated;
use super::input::{parse_model, parse_prompt};
use super::refs::{InputPolicy, ReadInput, image_for_model};
use super::save::{ImageProduct, PreviewBudget};
use super::{Service, ServiceError};
use crate::backend::{ImageRequest, InputImage};
use crate::domain::{AspectRatio, ImageModelInfo, ImageSize, InvalidValue, output_dimensions};
use crate::media::canvas::{self, Direction, Extension};
use crate::media::encode::{self, OutputFormat};
use crate::media::input::InputLimits;
use crate::media::mask::Mask;
use crate::media::resize::{self, Filter};
use crate::media::{self, MediaError};

/// `edit_image` and `inpaint` as they arrive.
#[derive(Debug, Clone, Default)]
pub struct EditInput {
    /// The image to edit (library file name, `media://files/…` URI or path).
    pub image: String,
    pub prompt: String,
    /// Where the image may change: white (or opaque) = change.
    pub mask: Option<String>,
    pub reference_images: Vec<String>,
    pub model: Option<String>,
    pub output_format: Option<String>,
    /// Pixels of soft edge inside the masked region.
    pub feather: Option<i64>,
}

/// `outpaint` as it arrives.
#[derive(Debug, Clone, Default)]
pub struct OutpaintInput {
    pub image: String,
    pub prompt: String,
    /// `left`, `right`, `up`, `down` or `all`.
    pub direction: String,
    pub extend_pixels: Option<i64>,
    pub model: Option<String>,
    pub output_format: Option<String>,
    pub feather: Option<i64>,
}

/// `upscale` as it arrives.
#[derive(Debug, Clone, Default)]
pub struct UpscaleInput {
    pub image: String,
    /// 2 or 4.
    pub scale_factor: Option<f64>,
    /// `lanczos` (local) or `model`.
    pub method: Option<String>,
    /// For `model`: what to pay attention to.
    pub prompt: Option<String>,
    pub model: Option<String>,
    pub output_format: Option<String>,
}

/// Which edit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    Edit,
    Inpaint,
    Outpaint,
    Upscale,
}

impl Operation {
    fn as_str(self) -> &'static str {
        match self {
            Self::Edit => "edit",
            Self::Inpaint => "inpaint",
            Self::Outpaint => "outpaint",
            Self::Upscale => "upscale",
        }
    }
}

/// Default extension of `outpaint`, in pixels.
pub const DEFAULT_EXTEND: u32 = 256;

/// `upscale`'s parameters, checked.
pub(super) struct UpscalePlan {
    pub factor: u64,
    /// `None`: resampled here (no backend call).
    pub model: Option<&'static ImageModelInfo>,
    pub format: OutputFormat,
}

/// `inpaint` without a mask is refused.
pub(super) fn needs_mask(input: &EditInput) -> Result<(), ServiceError> {
    if input.mask.as_deref().is_none_or(|m| m.trim().is_empty()) {
        return Err(ServiceError::BadParameter {
            field: "mask_path",
            message: "`inpaint` needs `mask_path`: an image of the same picture, white where it should change and black where it should stay".into(),
        });
    }
    Ok(())
}

/// What every edit shares, checked.
pub(super) struct Common {
    prompt: String,
    pub model: &'static ImageModelInfo,
    format: OutputFormat,
    feather: u32,
}

/// The request for the model, prepared from the inputs.
struct Prepared {
    /// The result's exact size.
    target: (u32, u32),
    /// With a mask: what the result is composited over (the source, or the
    /// outpaint canvas), at `target` size, and where the model's picture
    /// may show.
    masked: Option<(DynamicImage, Mask)>,
    ratio: AspectRatio,
    size: ImageSize,
    /// Sent to the model, in order: the image, then the mask.
    images: Vec<InputImage>,
    note: Option<String>,
}

impl Service {
    /// Edits an image as the prompt says; with a mask, only where it is
    /// white (or opaque).
    pub async fn edit_image(
        &self,
        input: &EditInput,
        policy: &InputPolicy,
        cancel: &CancellationToken,
    ) -> Result<Generated, ServiceError> {
        self.masked_edit(Operation::Edit, input, policy, cancel)
            .await
    }

    /// Repaints the masked region as the prompt says; the rest stays.
    pub async fn inpaint(
        &self,
        input: &EditInput,
        policy: &InputPolicy,
        cancel: &CancellationToken,
    ) -> Result<Generated, ServiceError> {
        needs_mask(input)?;
        self.masked_edit(Operation::Inpaint, input, policy, cancel)
            .await
    }

    async fn masked_edit(
        &self,
        op: Operation,
        input: &EditInput,
        policy: &InputPolicy,
        cancel: &CancellationToken,
    ) -> Result<Generated, ServiceError> {
        let c = self.common(
            Some(&input.prompt),
            input.model.as_deref(),
            input.output_format.as_deref(),
            input.feather,
        )?;
        self.check_reference_count(input.reference_images.len(), c.model)?;
        let source = self.read_input("image_path", &input.image, policy).await?;
        let mask = match input.mask.as_deref().filter(|m| !m.trim().is_empty()) {
            Some(m) => Some(self.read_input("mask_path", m, policy).await?),
            None => None,
        };
        let references = self
            .references(&input.reference_images, c.model, policy)
            .await?;
        let limits = self.input_limits();
        let model = c.model;
        let (src, msk) = (source.clone(), mask.clone());
        let prepared = blocking(move || prepare_edit(&src, msk.as_ref(), model, &limits)).await?;
        let mut parameters = Map::new();
        if let Some(m) = &mask {
            parameters.insert("mask".into(), json!(m.label));
            parameters.insert("feather".into(), json!(c.feather));
        }
        let instruction = edit_instruction(op, &c.prompt, mask.is_some(), references.len());
        self.finish_edit(
            op,
            c,
            &source,
            prepared,
            references,
            parameters,
            instruction,
            cancel,
        )
        .await
    }

    /// Extends an image beyond its borders; the original pixels stay.
    pub async fn outpaint(
        &self,
        input: &OutpaintInput,
        policy: &InputPolicy,
        cancel: &CancellationToken,
    ) -> Result<Generated, ServiceError> {
        let c = self.common(
            Some(&input.prompt),
            input.model.as_deref(),
            input.output_format.as_deref(),
            input.feather,
        )?;
        let (direction, pixels) = self.outpaint_extent(input)?;
        let source = self.read_input("image_path", &input.image, policy).await?;
        let limits = self.input_limits();
        let model = c.model;
        let src = source.clone();
        let prepared =
            blocking(move || prepare_outpaint(&src, direction, pixels, model, &limits)).await?;
        let mut parameters = Map::new();
        parameters.insert("direction".into(), json!(direction.as_str()));
        parameters.insert("extend_pixels".into(), json!(pixels));
        parameters.insert("feather".into(), json!(c.feather));
        let instruction = outpaint_instruction(&c.prompt, direction);
        self.finish_edit(
            Operation::Outpaint,
            c,
            &source,
            prepared,
            Vec::new(),
            parameters,
            instruction,
            cancel,
        )
        .await
    }

    /// Makes an image 2 or 4 times larger: locally (Lanczos), or re-rendered
    /// by the model and brought to the exact size.
    pub async fn upscale(
        &self,
        input: &UpscaleInput,
        policy: &InputPolicy,
        cancel: &CancellationToken,
    ) -> Result<Generated, ServiceError> {
        let UpscalePlan {
            factor,
            model,
            format,
        } = self.upscale_plan(input)?;
        let by_model = model.is_some();
        let source = self.read_input("image_path", &input.image, policy).await?;
        // Refused from the header, before any pixel is decoded.
        let (w, h) = (
            u64::from(source.info.width) * factor,
            u64::from(source.info.height) * factor,
        );
        if w * h > self.edit.input_max_pixels {
            return Err(ServiceError::OutputTooLarge {
                width: w,
                height: h,
                max_pixels: self.edit.input_max_pixels,
            });
        }
        let mut parameters = Map::new();
        parameters.insert("scale_factor".into(), json!(factor));
        parameters.insert(
            "method".into(),
            json!(if by_model { "model" } else { "lanczos" }),
        );
        let limits = self.input_limits();
        let Some(model) = model else {
            let src = source.clone();
            let (bytes, pixels) = blocking(move || {
                let decoded = src.decode(&limits)?;
                let (tw, th) = (
                    decoded.image.width() * factor as u32,
                    decoded.image.height() * factor as u32,
                );
                let out = resize::resized(&decoded.image, tw, th, Filter::Lanczos3)
                    .map_err(|e| src_error(&src, e))?;
                drop(decoded);
                let bytes = encode::encode(&out, format).map_err(|e| src_error(&src, e))?;
                Ok((bytes, out))
            })
            .await?;
            let mut facts = edit_facts(
                Operation::Upscale,
                &source,
                format,
                &ratio_label(pixels.width(), pixels.height()),
                size_class(pixels.width(), pixels.height()),
                parameters,
                None,
                None,
                None,
            );
            // Resampled here: no backend call, nothing spent.
            facts.insert("cost_usd".into(), json!(0.0));
            let product = ImageProduct {
                bytes: Bytes::from(bytes),
                pixels: Some(pixels),
                prompt: input.prompt.clone().unwrap_or_default().trim().to_owned(),
                model: "lanczos3".to_owned(),
                facts,
                source: source.library_id().cloned(),
            };
            return self.save_image(product, PreviewBudget::SINGLE).await;
        };
        let prompt = match input
            .prompt
            .as_deref()
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            Some(p) => parse_prompt(p)?,
            None => String::new(),
        };
        let c = Common {
            prompt,
            model,
            format,
            feather: 0,
        };
        let src = source.clone();
        let prepared =
            blocking(move || prepare_upscale(&src, factor as u32, model, &limits)).await?;
        let instruction = upscale_instruction(&c.prompt);
        self.finish_edit(
            Operation::Upscale,
            c,
            &source,
            prepared,
            Vec::new(),
            parameters,
            instruction,
            cancel,
        )
        .await
    }

    /// Asks the model, brings its picture to the base's size, composites
    /// it where the mask allows, encodes and saves.
    #[allow(
        clippy::too_many_arguments,
        reason = "the parts of one edit, all needed once"
    )]
    async fn finish_edit(
        &self,
        op: Operation,
        c: Common,
        source: &ReadInput,
        prepared: Prepared,
        references: Vec<(String, InputImage)>,
        mut parameters: Map<String, Value>,
        instruction: String,
        cancel: &CancellationToken,
    ) -> Result<Generated, ServiceError> {
        let Prepared {
            target,
            masked,
            ratio,
            size,
            mut images,
            note,
        } = prepared;
        let _admitted = self.admit(cancel).await?;
        let labels: Vec<&str> = references.iter().map(|(l, _)| l.as_str()).collect();
        if !labels.is_empty() {
            parameters.insert("reference_images".into(), json!(labels));
        }
        let reference_count = references.len();
        images.extend(references.into_iter().map(|(_, i)| i));
        let request = ImageRequest {
            model: c.model.id,
            prompt: &instruction,
            aspect_ratio: ratio,
            image_size: size,
            images: &images,
        };
        let answer = self
            .ask_with_fallback(&request, reference_count, op.as_str(), None, cancel)
            .await?;
        drop(images);
        let (made_by, fallback_from) = (answer.model, answer.fallback_from);
        let answer = answer.image;
        let (format, feather) = (c.format, c.feather);
        let (bytes, pixels) = blocking(move || {
            let out = media::decode(&answer.data).map_err(ServiceError::NotAnImage)?;
            let out = resize::resize_exact(out, target.0, target.1, Filter::Lanczos3)
                .map_err(ServiceError::NotAnImage)?;
            let out = match &masked {
                Some((base, mask)) => canvas::composite(base, &out, &mask.weights(feather))
                    .map_err(ServiceError::NotAnImage)?,
                None => out,
            };
            let bytes = encode::encode(&out, format).map_err(ServiceError::NotAnImage)?;
            Ok((bytes, out))
        })
        .await?;
        let mut facts = edit_facts(
            op,
            source,
            format,
            ratio.as_str(),
            size.as_str(),
            parameters,
            note,
            answer.text.as_deref(),
            fallback_from.as_deref(),
        );
        // The price of the model that made it.
        if let Some(cost) = self.image_cost(&made_by, size) {
            facts.insert("cost_usd".into(), json!(cost));
        }
        let product = ImageProduct {
            bytes: Bytes::from(bytes),
            pixels: Some(pixels),
            prompt: c.prompt,
            // The model that made it: what the file records (and costs).
            model: made_by,
            facts,
            source: source.library_id().cloned(),
        };
        self.save_image(product, PreviewBudget::SINGLE).await
    }

    /// `outpaint`'s side and how many pixels it adds, checked.
    pub(super) fn outpaint_extent(
        &self,
        input: &OutpaintInput,
    ) -> Result<(Direction, u32), ServiceError> {
        let direction: Direction = input
            .direction
            .parse()
            .map_err(ServiceError::InvalidParameter)?;
        let max = self.edit.outpaint_max_extend;
        let pixels = match input.extend_pixels {
            None => DEFAULT_EXTEND.min(max),
            Some(n) if n >= 1 && n <= i64::from(max) => n as u32,
            Some(n) => {
                return Err(ServiceError::BadParameter {
                    field: "extend_pixels",
                    message: format!("`extend_pixels` = `{n}`; use 1 to {max}"),
                });
            }
        };
        Ok((direction, pixels))
    }

    /// `upscale`'s factor, model (none: local Lanczos) and format, checked.
    pub(super) fn upscale_plan(&self, input: &UpscaleInput) -> Result<UpscalePlan, ServiceError> {
        let factor = match input.scale_factor {
            None => 2,
            Some(2.0) => 2,
            Some(4.0) => 4,
            Some(f) => {
                return Err(ServiceError::InvalidParameter(InvalidValue::new(
                    "scale_factor",
                    &f.to_string(),
                    ["2", "4"],
                )));
            }
        };
        let by_model = match input
            .method
            .as_deref()
            .map(|m| m.trim().to_ascii_lowercase())
            .as_deref()
        {
            None | Some("") | Some("lanczos") => false,
            Some("model") => true,
            Some(other) => {
                return Err(ServiceError::InvalidParameter(InvalidValue::new(
                    "method",
                    other,
                    ["lanczos", "model"],
                )));
            }
        };
        let format = parse_format(input.output_format.as_deref())?;
        let model = if by_model {
            Some(parse_model(
                input.model.as_deref(),
                self.generation.default_model,
            )?)
        } else {
            None
        };
        Ok(UpscalePlan {
            factor,
            model,
            format,
        })
    }

    /// The parameters every edit shares, checked.
    pub(super) fn common(
        &self,
        prompt: Option<&str>,
        model: Option<&str>,
        format: Option<&str>,
        feather: Option<i64>,
    ) -> Result<Common, ServiceError> {
        let prompt = parse_prompt(prompt.unwrap_or_default())?;
        let model = parse_model(model, self.generation.default_model)?;
        let format = parse_format(format)?;
        let feather = match feather {
            None => self.edit.mask_feather,
            Some(n) if (0..=64).contains(&n) => n as u32,
            Some(n) => {
                return Err(ServiceError::BadParameter {
                    field: "feather",
                    message: format!("`feather` = `{n}`; use 0 (a hard edge) to 64 pixels"),
                });
            }
        };
        Ok(Common {
            prompt,
            model,
            format,
            feather,
        })
    }
}

fn parse_format(format: Option<&str>) -> Result<OutputFormat, ServiceError> {
    match format.map(str::trim).filter(|f| !f.is_empty()) {
        None => Ok(OutputFormat::default()),
        Some(f) => f.parse().map_err(ServiceError::InvalidParameter),
    }
}

/// Runs pixel work off the async runtime.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ServiceError> + Send + 'static,
) -> Result<T, ServiceError> {
    super::pixels::run("image", f).await?
}

fn src_error(src: &ReadInput, source: MediaError) -> ServiceError {
    ServiceError::InvalidImage {
        field: src.field.clone(),
        reference: src.label.clone(),
        source,
    }
}

/// The ratio and size to ask for so the model's picture covers
/// `width`×`height`, and the longest side worth sending.
pub(super) fn request_shape(
    model: &ImageModelInfo,
    width: u32,
    height: u32,
) -> (AspectRatio, ImageSize, u32) {
    let ratio = model.nearest_ratio(width, height);
    let size = model.covering_size(ratio, width, height);
    let (w, h) = output_dimensions(ratio, size);
    (ratio, size, w.max(h))
}

/// `img` as sent to the model: scaled down to `max_side` if larger.
fn sendable(
    src: &ReadInput,
    img: &DynamicImage,
    max_side: u32,
) -> Result<InputImage, ServiceError> {
    let (w, h) = media::fit(img.width(), img.height(), max_side);
    let made = if (w, h) == (img.width(), img.height()) {
        image_for_model(img)
    } else {
        resize::resized(img, w, h, Filter::Lanczos3).and_then(|small| image_for_model(&small))
    };
    made.map_err(|e| src_error(src, e))
}

/// A mask as the model is shown it, at `width`×`height`.
fn mask_shown(
    src: &ReadInput,
    mask: &Mask,
    width: u32,
    height: u32,
) -> Result<InputImage, ServiceError> {
    let shown = DynamicImage::ImageLuma8(mask.clone().scaled(width, height).to_image());
    mask_for_model(&shown).map_err(|e| src_error(src, e))
}

/// The source decoded, the mask read and fitted to it, and what to send.
fn prepare_edit(
    source: &ReadInput,
    mask: Option<&ReadInput>,
    model: &ImageModelInfo,
    limits: &InputLimits,
) -> Result<Prepared, ServiceError> {
    let decoded = source.decode(limits)?;
    let (w, h) = (decoded.image.width(), decoded.image.height());
    let (ratio, size, max_side) = request_shape(model, w, h);
    // The file itself goes when it fits: no re-encoding.
    let mut images = vec![source.for_model(&decoded, max_side)?];
    let Some(m) = mask else {
        return Ok(Prepared {
            target: (w, h),
            masked: None,
            ratio,
            size,
            images,
            note: None,
        });
    };
    let read = Mask::from_image(&m.decode(limits)?.image);
    let (mw, mh) = read.dimensions();
    let note = ((mw, mh) != (w, h)).then(|| {
        format!("the mask was {mw}×{mh} and was scaled to the image's {w}×{h} (nearest neighbour)")
    });
    let fitted = read.scaled(w, h);
    if fitted.is_empty() {
        return Err(ServiceError::EmptyMask);
    }
    let (sw, sh) = media::fit(w, h, max_side);
    images.push(mask_shown(m, &fitted, sw, sh)?);
    Ok(Prepared {
        target: (w, h),
        masked: Some((decoded.image, fitted)),
        ratio,
        size,
        images,
        note,
    })
}

/// The extended canvas and its mask, and what to send.
fn prepare_outpaint(
    source: &ReadInput,
    direction: Direction,
    pixels: u32,
    model: &ImageModelInfo,
    limits: &InputLimits,
) -> Result<Prepared, ServiceError> {
    let decoded = source.decode(limits)?;
    let (w, h) = (decoded.image.width(), decoded.image.height());
    let ext: Extension = canvas::extend(w, h, direction, pixels);
    let area = u64::from(ext.width) * u64::from(ext.height);
    if area > limits.max_pixels {
        return Err(ServiceError::OutputTooLarge {
            width: u64::from(ext.width),
            height: u64::from(ext.height),
            max_pixels: limits.max_pixels,
        });
    }
    let (base, mask) = canvas::outpaint_canvas(&decoded.image, ext);
    drop(decoded);
    let (ratio, size, max_side) = request_shape(model, ext.width, ext.height);
    let (sw, sh) = media::fit(ext.width, ext.height, max_side);
    let images = vec![
        sendable(source, &base, max_side)?,
        mask_shown(source, &mask, sw, sh)?,
    ];
    Ok(Prepared {
        target: (ext.width, ext.height),
        masked: Some((base, mask)),
        ratio,
        size,
        images,
        note: None,
    })
}

/// The source, and the size the model should re-render it at.
fn prepare_upscale(
    source: &ReadInput,
    factor: u32,
    model: &ImageModelInfo,
    limits: &InputLimits,
) -> Result<Prepared, ServiceError> {
    let decoded = source.decode(limits)?;
    let target = (
        decoded.image.width() * factor,
        decoded.image.height() * factor,
    );
    let (ratio, size, max_side) = request_shape(model, target.0, target.1);
    let images = vec![sendable(source, &decoded.image, max_side)?];
    Ok(Prepared {
        target,
        masked: None,
        ratio,
        size,
        images,
        note: None,
    })
}

/// A mask as the model sees it: lossless, black and white.
fn mask_for_model(mask: &DynamicImage) -> Result<InputImage, MediaError> {
    Ok(InputImage {
        mime_type: "image/png".to_owned(),
        data: Bytes::from(encode::encode(
            &DynamicImage::ImageRgb8(mask.to_rgb8()),
            OutputFormat::Png,
        )?),
    })
}

/// The words around the caller's prompt that tell the model what each
/// image is.
fn edit_instruction(op: Operation, prompt: &str, masked: bool, references: usize) -> String {
    let mut text = String::from("The first image is the picture to edit.");
    if masked {
        text.push_str(
            " The second image is a mask of the same picture: change only the area that is white \
in the mask and keep everything in the black area exactly as it is.",
        );
    }
    if references > 0 {
        let first = if masked { 3 } else { 2 };
        text.push_str(&format!(
            " The last {references} image(s) (from image {first} on) are references: draw on their \
style, characters or objects as the edit asks."
        ));
    }
    let ask = match op {
        Operation::Inpaint => "Fill the white area of the mask",
        _ => "Edit",
    };
    text.push_str(&format!(" Return the whole picture. {ask}: {prompt}"));
    text
}

fn outpaint_instruction(prompt: &str, direction: Direction) -> String {
    let side = match direction {
        Direction::All => "on every side".to_owned(),
        d => format!(
            "on the {} side",
            match d {
                Direction::Up => "top",
                Direction::Down => "bottom",
                other => other.as_str(),
            }
        ),
    };
    format!(
        "The first image is a picture on a larger canvas: new space was added {side} and roughly \
filled by stretching the picture's edges. The second image is a mask: white marks the new space. \
Paint the new space so the picture continues naturally beyond its original borders, and keep the \
original area unchanged. Return the whole canvas. {prompt}"
    )
}

fn upscale_instruction(prompt: &str) -> String {
    let mut text = String::from(
        "Re-render this picture at a higher resolution with finer detail. Keep the composition, \
subjects, colours and any text exactly the same; add or remove nothing.",
    );
    if !prompt.is_empty() {
        text.push(' ');
        text.push_str(prompt);
    }
    text
}

/// The sidecar facts of an edit.
#[allow(clippy::too_many_arguments, reason = "one fact each")]
fn edit_facts(
    op: Operation,
    source: &ReadInput,
    format: OutputFormat,
    aspect_ratio: &str,
    image_size: &str,
    parameters: Map<String, Value>,
    note: Option<String>,
    model_text: Option<&str>,
    fallback_from: Option<&str>,
) -> Map<String, Value> {
    let mut facts =
        super::save::generation_facts(aspect_ratio, image_size, model_text, fallback_from);
    facts.insert("operation".into(), json!(op.as_str()));
    facts.insert("source".into(), json!(source.label));
    facts.insert("output_format".into(), json!(format.as_str()));
    facts.insert("parameters".into(), Value::Object(parameters));
    if let Some(n) = note {
        facts.insert("note".into(), json!(n));
    }
    facts
}

/// `W:H` as a known ratio when it is one (within 1 %), else reduced.
fn ratio_label(width: u32, height: u32) -> String {
    let r = f64::from(width) / f64::from(height.max(1));
    for known in AspectRatio::ALL {
        let (kw, kh) = output_dimensions(known, ImageSize::S1K);
        if ((f64::from(kw) / f64::from(kh)) / r - 1.0).abs() < 0.01 {
            return known.as_str().to_owned();
        }
    }
    let g = gcd(width, height).max(1);
    format!("{}:{}", width / g, height / g)
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// The resolution class of a result made without the model, by its long side.
fn size_class(width: u32, height: u32) -> &'static str {
    match width.max(height) {
        0..=768 => "512",
        769..=1536 => "1K",
        1537..=3072 => "2K",
        3073..=6144 => "4K",
        _ => "8K",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_classes() {
        assert_eq!(ratio_label(1024, 1024), "1:1");
        assert_eq!(ratio_label(1280, 1024), "5:4");
        assert_eq!(ratio_label(2752, 1536), "16:9");
        assert_eq!(ratio_label(1000, 300), "10:3");
        assert_eq!(size_class(2048, 2048), "2K");
        assert_eq!(size_class(8192, 8192), "8K");
    }

    #[test]
    fn instructions_name_each_image() {
        let t = edit_instruction(Operation::Inpaint, "a red door", true, 2);
        assert!(
            t.contains("second image is a mask") && t.contains("from image 3"),
            "{t}"
        );
        assert!(
            t.ends_with("Fill the white area of the mask: a red door"),
            "{t}"
        );
        let t = edit_instruction(Operation::Edit, "make it night", false, 0);
        assert!(!t.contains("mask"), "{t}");
        assert!(outpaint_instruction("sea", Direction::Up).contains("top side"));
    }
}

/// The outpaint canvas limit holds exactly at its boundary, for every
/// direction and size.
#[cfg(test)]
mod proptests {
    use proptest::prelude::*;

    use super::*;
    use crate::domain::{DEFAULT_IMAGE_MODEL, image_model};
    use crate::media::tests_support::png;
    use crate::prop_support::config;
    use crate::service::refs::InputOrigin;

    fn source(w: u32, h: u32) -> ReadInput {
        let bytes = png(w, h);
        ReadInput {
            field: "image_path".into(),
            label: "src.png".into(),
            origin: InputOrigin::Path("/src.png".into()),
            info: media::probe(&bytes).unwrap(),
            bytes: bytes.into(),
        }
    }

    proptest! {
        #![proptest_config(config(48))]

        #[test]
        fn the_canvas_limit_holds_at_its_boundary(
            w in 1u32..24, h in 1u32..24, px in 1u32..16,
            dir in prop::sample::select(Direction::ALL.to_vec()),
        ) {
            let model = image_model(DEFAULT_IMAGE_MODEL).unwrap();
            let src = source(w, h);
            let e = canvas::extend(w, h, dir, px);
            let area = u64::from(e.width) * u64::from(e.height);
            let at = InputLimits { max_bytes: 1 << 20, max_pixels: area };
            let p = prepare_outpaint(&src, dir, px, model, &at).unwrap();
            prop_assert_eq!(p.target, (e.width, e.height));
            let below = InputLimits { max_pixels: area - 1, ..at };
            // (The source itself is within `below`: only the canvas is over.)
            prop_assume!(u64::from(w) * u64::from(h) < area);
            let refused = prepare_outpaint(&src, dir, px, model, &below);
            prop_assert!(matches!(refused, Err(ServiceError::OutputTooLarge { .. })), "not refused");
        }
    }
}
