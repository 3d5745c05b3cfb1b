//! Fallback when rate limited (`MCP_FALLBACK_MODEL`, opt in): an image
//! request whose model is still rate limited after the backend's own
//! retries gets one try on the fallback model, if that is another model
//! and can make what was asked (the same aspect ratio, size and number of
//! reference images). Every image operation asks through here — generate,
//! each batch item, the edits and a model upscale — so all of them fall
//! back the same way. Any other failure (5xx, a safety block, a timeout, a
//! missing login) is returned as it is: another model would not fix it.
//!
//! The answer names the model that made the image: the save pipeline
//! records that model (and so what it costs), and `fallback_from` keeps
//! the one asked for.

use tokio_util::sync::CancellationToken;

use super::spend::Hold;
use super::{Service, ServiceError};
use crate::backend::{BackendError, GeneratedImage, ImageRequest};
use crate::domain::{self, ImageModelInfo};

/// An image and the model that made it.
#[derive(Debug)]
pub(super) struct Answer {
    pub image: GeneratedImage,
    /// The model that made the image.
    pub model: String,
    /// The model asked for, when the fallback made the image instead.
    pub fallback_from: Option<String>,
}

/// Why the fallback model did not make the image.
#[derive(Debug)]
pub enum FallbackMiss {
    /// It was tried once and failed too (the error is its own).
    Failed,
    /// It was not tried: it cannot make what was asked (the reason).
    CannotMake(String),
}

impl Service {
    /// One image from `request`, falling back once to the configured
    /// fallback model when `request.model` is rate limited. `references`:
    /// how many reference images the request carries (a limit per model).
    ///
    /// Each try is metered as `operation` (see [`Service::ask_images`]): the
    /// first against `prepaid` (a batch's hold) if given, the fallback try
    /// as a call of its own, reserved at the fallback model's price.
    pub(super) async fn ask_with_fallback(
        &self,
        request: &ImageRequest<'_>,
        references: usize,
        operation: &'static str,
        prepaid: Option<&Hold<'_>>,
        cancel: &CancellationToken,
    ) -> Result<Answer, ServiceError> {
        let first = match self.ask_images(request, operation, prepaid, cancel).await {
            Ok(image) => {
                return Ok(Answer {
                    image,
                    model: request.model.to_owned(),
                    fallback_from: None,
                });
            }
            Err(e) => e,
        };
        let Some(fallback) = self.fallback_for(&first, request.model) else {
            return Err(first);
        };
        if let Some(reason) = cannot_make(fallback, request, references) {
            return Err(ServiceError::Fallback {
                requested: request.model.to_owned(),
                fallback: fallback.id,
                miss: FallbackMiss::CannotMake(reason),
                error: Box::new(first),
            });
        }
        tracing::warn!(
            requested = request.model,
            fallback = fallback.id,
            "rate limited after retries; one try on the fallback model"
        );
        let retry = ImageRequest {
            model: fallback.id,
            ..*request
        };
        match self.ask_images(&retry, operation, None, cancel).await {
            Ok(image) => Ok(Answer {
                image,
                model: fallback.id.to_owned(),
                fallback_from: Some(request.model.to_owned()),
            }),
            Err(ServiceError::Cancelled) => Err(ServiceError::Cancelled),
            Err(e) => Err(ServiceError::Fallback {
                requested: request.model.to_owned(),
                fallback: fallback.id,
                miss: FallbackMiss::Failed,
                error: Box::new(e),
            }),
        }
    }

    /// The fallback model to try after `error` on `model`: only for a rate
    /// limit, only when one is set and it is another model.
    fn fallback_for(&self, error: &ServiceError, model: &str) -> Option<&'static ImageModelInfo> {
        let rate_limited = matches!(
            error,
            ServiceError::Image {
                source: BackendError::RateLimited { .. },
                ..
            }
        );
        let id = self.generation.fallback_model.filter(|f| *f != model)?;
        rate_limited.then(|| domain::image_model(id)).flatten()
    }
}

/// Why `model` cannot make `request` (with `references` reference images),
/// if it cannot.
fn cannot_make(
    model: &ImageModelInfo,
    request: &ImageRequest<'_>,
    references: usize,
) -> Option<String> {
    if !model.aspect_ratios.contains(&request.aspect_ratio) {
        return Some(format!(
            "it does not make the aspect ratio `{}`",
            request.aspect_ratio.as_str()
        ));
    }
    if !model.image_sizes.contains(&request.image_size) {
        return Some(format!(
            "it does not make `{}` images",
            request.image_size.as_str()
        ));
    }
    if references > model.max_reference_images as usize {
        return Some(format!(
            "it takes at most {} reference images, and {references} were given",
            model.max_reference_images
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{AspectRatio, ImageSize, image_model};

    fn request(ratio: AspectRatio, size: ImageSize) -> ImageRequest<'static> {
        ImageRequest {
            model: "gemini-3-pro-image-preview",
            prompt: "a fox",
            aspect_ratio: ratio,
            image_size: size,
            images: &[],
        }
    }

    /// The fallback is tried only for what it can make: 2.5 Flash makes
    /// 1K at the standard ratios with up to 3 references.
    #[test]
    fn what_a_fallback_can_make() {
        let flash = image_model("gemini-2.5-flash-image").unwrap();
        let ok = request(AspectRatio::R16x9, ImageSize::S1K);
        assert_eq!(cannot_make(flash, &ok, 3), None);
        let big = request(AspectRatio::R16x9, ImageSize::S4K);
        assert_eq!(
            cannot_make(flash, &big, 0).as_deref(),
            Some("it does not make `4K` images")
        );
        let refs = cannot_make(flash, &ok, 4).unwrap();
        assert!(refs.contains("at most 3"), "{refs}");
        // 3.1 Flash makes everything 3 Pro does.
        let wide = image_model("gemini-3.1-flash-image-preview").unwrap();
        for ratio in AspectRatio::STANDARD {
            for size in [ImageSize::S1K, ImageSize::S2K, ImageSize::S4K] {
                assert_eq!(cannot_make(wide, &request(ratio, size), 14), None);
            }
        }
    }
}
