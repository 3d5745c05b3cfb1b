//! The save pipeline every producer uses: the bytes are checked (they must
//! be what they claim), stored through the [`Library`](crate::store::Library)
//! (atomic, catalogued, announced), given an inline rendition for the
//! result, and described in the contract's shape — from the stored record,
//! so what a result says is what the sidecar says.
//!
//! Storing and making the preview run at the same time: the preview's
//! decode and resize overlap the write and its fsync.

use base64::Engine;
use bytes::Bytes;
use image::DynamicImage;
use serde_json::{Map, Value, json};

use super::{Service, ServiceError};
use crate::config::PreviewMode;
use crate::contract::{self, ImageMetadata, ImageOutput};
use crate::media::{self, Preview};
use crate::store::{MediaId, MediaKind, MediaRecord, NewMedia, timestamp};

/// Long side of the inline preview, in pixels.
pub const PREVIEW_MAX_SIDE: u32 = 512;
/// Approximate byte budget of the inline preview (before base64).
pub const PREVIEW_MAX_BYTES: usize = 100 * 1024;
/// Byte budget for all inline previews of one batch result together, so a
/// 16-image batch still fits a client's 1 MB tool-result limit.
pub const BATCH_PREVIEW_BUDGET: usize = 600 * 1024;

/// Size limits of the inline preview.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PreviewBudget {
    pub max_side: u32,
    pub max_bytes: usize,
}

impl PreviewBudget {
    pub const SINGLE: PreviewBudget = PreviewBudget {
        max_side: PREVIEW_MAX_SIDE,
        max_bytes: PREVIEW_MAX_BYTES,
    };

    /// Smaller previews for larger batches: the whole batch shares
    /// [`BATCH_PREVIEW_BUDGET`].
    pub fn for_batch(n: usize) -> PreviewBudget {
        let n = n.max(1);
        PreviewBudget {
            max_side: if n <= 4 { PREVIEW_MAX_SIDE } else { 256 },
            max_bytes: (BATCH_PREVIEW_BUDGET / n).clamp(8 * 1024, PREVIEW_MAX_BYTES),
        }
    }
}

/// What the inline image of a result is.
#[derive(Debug, Clone)]
pub enum Inline {
    None,
    Preview(Preview),
    /// The whole file, when `preview = full`.
    Full {
        data: Bytes,
        mime_type: String,
    },
}

impl Inline {
    /// The image as base64 and its MIME type, if there is one.
    pub fn base64(&self) -> Option<(String, String)> {
        let b64 = &base64::engine::general_purpose::STANDARD;
        match self {
            Self::None => None,
            Self::Preview(p) => Some((b64.encode(&p.data), p.mime_type.to_owned())),
            Self::Full { data, mime_type } => Some((b64.encode(data), mime_type.clone())),
        }
    }
}

/// An image a producer made, ready to be saved.
pub(super) struct ImageProduct {
    pub bytes: Bytes,
    /// The pixels, when the producer already has them: the preview is made
    /// from them instead of decoding the file again.
    pub pixels: Option<DynamicImage>,
    pub prompt: String,
    pub model: String,
    /// What the producer knows beyond the core fields (aspect ratio, size,
    /// the model's text, the operation …); written into the sidecar.
    pub facts: Map<String, Value>,
    /// The file it was made from, if any.
    pub source: Option<MediaId>,
}

/// A saved image: the contract's result and what to show inline.
#[derive(Debug, Clone)]
pub struct Saved {
    pub output: ImageOutput,
    pub inline: Inline,
}

impl Service {
    /// Checks, stores and describes an image.
    pub(super) async fn save_image(
        &self,
        product: ImageProduct,
        budget: PreviewBudget,
    ) -> Result<Saved, ServiceError> {
        let info = media::probe(&product.bytes).map_err(ServiceError::NotAnImage)?;
        // A file cut off in transfer reads its header fine: nothing of it is kept.
        media::check_complete(&product.bytes, &info).map_err(ServiceError::NotAnImage)?;
        let new = NewMedia {
            bytes: product.bytes.clone(),
            kind: MediaKind::Image,
            extension: info.extension.to_owned(),
            mime_type: info.mime_type.to_owned(),
            width: Some(info.width),
            height: Some(info.height),
            prompt: Some(product.prompt).filter(|p| !p.is_empty()),
            model: Some(product.model),
            metadata: product.facts,
            source: product.source,
        };
        let (stored, inline) = tokio::join!(
            self.library.save(new),
            self.inline(product.bytes, product.pixels, info.mime_type, budget)
        );
        let record = stored.map_err(ServiceError::Save)?;
        Ok(Saved {
            output: self.image_output(&record),
            inline,
        })
    }

    /// The inline part of a result, as the settings ask. A preview that
    /// cannot be made is logged, not fatal: the file is what matters.
    async fn inline(
        &self,
        bytes: Bytes,
        pixels: Option<DynamicImage>,
        mime_type: &str,
        budget: PreviewBudget,
    ) -> Inline {
        match self.results.preview {
            PreviewMode::None => Inline::None,
            PreviewMode::Full => Inline::Full {
                data: bytes,
                mime_type: mime_type.to_owned(),
            },
            PreviewMode::Preview => {
                let made = super::pixels::run("preview", move || match pixels {
                    Some(p) => media::preview_of(&p, budget.max_side, budget.max_bytes),
                    None => media::preview(&bytes, budget.max_side, budget.max_bytes),
                })
                .await;
                match made {
                    Ok(Ok(p)) => Inline::Preview(p),
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "could not make a preview");
                        Inline::None
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "the preview task failed");
                        Inline::None
                    }
                }
            }
        }
    }

    /// The contract's description of a stored image, from its record.
    pub(super) fn image_output(&self, r: &MediaRecord) -> ImageOutput {
        let fact = |key: &str| r.fact(key).unwrap_or_default().to_owned();
        ImageOutput {
            success: true,
            image_path: self.path_text(&r.id),
            filename: r.id.to_string(),
            uri: contract::media_uri(r.id.as_str()),
            url: None,
            metadata: ImageMetadata {
                prompt: r.prompt.clone().unwrap_or_default(),
                model: r.model.clone().unwrap_or_default(),
                aspect_ratio: fact("aspect_ratio"),
                image_size: fact("image_size"),
                width: r.width.unwrap_or(0),
                height: r.height.unwrap_or(0),
                mime_type: r.mime_type.clone(),
                file_size_bytes: r.size_bytes,
                timestamp: timestamp(r.created),
                model_text: r.fact("model_text").map(str::to_owned),
                operation: r.fact("operation").map(str::to_owned),
                source: r.fact("source").map(str::to_owned),
                output_format: r.fact("output_format").map(str::to_owned),
                parameters: r.parameters(),
                note: r.fact("note").map(str::to_owned),
                cost_usd: r.metadata.get("cost_usd").and_then(Value::as_f64),
                fallback_from: r.fact("fallback_from").map(str::to_owned),
            },
        }
    }

    /// Where a file is on disk, as text (empty for a store without a disk).
    pub(super) fn path_text(&self, id: &MediaId) -> String {
        self.library
            .local_path(id)
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    }
}

/// The facts a generation writes beside the core fields.
/// `fallback_from`: the model asked for, when the fallback model made the
/// image (the record's `model` is the one that made it).
pub(super) fn generation_facts(
    aspect_ratio: &str,
    image_size: &str,
    model_text: Option<&str>,
    fallback_from: Option<&str>,
) -> Map<String, Value> {
    let mut facts = Map::new();
    facts.insert("aspect_ratio".into(), json!(aspect_ratio));
    facts.insert("image_size".into(), json!(image_size));
    if let Some(t) = model_text.filter(|t| !t.trim().is_empty()) {
        facts.insert("model_text".into(), json!(t));
    }
    if let Some(m) = fallback_from {
        facts.insert("fallback_from".into(), json!(m));
    }
    facts
}
