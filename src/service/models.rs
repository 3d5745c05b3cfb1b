//! The model registry marked with what the configured providers offer.
//! It needs the providers and the defaults, not the library: `media-gen
//! models` answers without opening (or creating) one.

use std::sync::Arc;

use super::input::parse_kind;
use super::{PriceTable, Service, ServiceError, VideoAccess};
use crate::backend::ImageProvider;
use crate::contract::{ListModelsOutput, ModelOutput};
use crate::domain;
use crate::store::MediaKind;

/// How long `list_models` waits for the backend's model list.
const MODEL_PROBE: std::time::Duration = std::time::Duration::from_secs(5);

/// What listing the models needs.
#[derive(Clone)]
pub struct ModelCatalog {
    pub images: Arc<dyn ImageProvider>,
    pub videos: VideoAccess,
    /// The image model calls get when they name none.
    pub default_image: &'static str,
    /// The configured default video model (it may belong to another
    /// video backend; see [`VideoAccess::default_model`]).
    pub default_video: &'static str,
    /// The price table `price` comes from.
    pub prices: PriceTable,
}

impl ModelCatalog {
    /// The registry, marked with what the image backend offers now. Never
    /// fails over the backend: an unreachable one gives `available: null`
    /// and a note. `kind` is `image`, `video` or `all`.
    pub async fn list(&self, kind: Option<&str>) -> Result<ListModelsOutput, ServiceError> {
        let kind = parse_kind("type", kind)?;
        let probe = tokio::time::timeout(MODEL_PROBE, self.images.list_models()).await;
        let (offered, note) = match probe {
            Ok(Ok(list)) => (Some(list), None),
            Ok(Err(e)) => (None, Some(format!("availability unknown: {e}"))),
            Err(_) => (
                None,
                Some(format!(
                    "availability unknown: `{}` did not list its models within {} s",
                    self.images.base_url(),
                    MODEL_PROBE.as_secs()
                )),
            ),
        };
        let offers = |id: &str| offered.as_ref().map(|l| l.iter().any(|m| m == id));
        let strings = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let mut models = Vec::new();
        if kind != Some(MediaKind::Video) {
            for m in &domain::IMAGE_MODELS {
                models.push(ModelOutput {
                    id: m.id.to_owned(),
                    kind: MediaKind::Image.as_str().to_owned(),
                    aspect_ratios: m
                        .aspect_ratios
                        .iter()
                        .map(|r| r.as_str().to_owned())
                        .collect(),
                    image_sizes: m
                        .image_sizes
                        .iter()
                        .map(|s| s.as_str().to_owned())
                        .collect(),
                    durations: Vec::new(),
                    resolutions: Vec::new(),
                    max_reference_images: Some(m.max_reference_images),
                    default: m.id == self.default_image,
                    available: offers(m.id),
                    price: self.prices.model_price(m.id),
                });
            }
        }
        let mut note = note;
        if kind != Some(MediaKind::Image) {
            let unavailable = self.videos.unavailable();
            let family = self.videos.family();
            let default_video = self.videos.default_model(self.default_video).id;
            if let Some(why) = unavailable {
                let text = format!("video models are unavailable: {why}");
                note = Some(match note {
                    Some(n) => format!("{n}; {text}"),
                    None => text,
                });
            }
            for m in &domain::VIDEO_MODELS {
                // Veo is served by the Gemini API, which is not probed here;
                // CLIProxyAPI's video model shows in its model list. Models
                // of the other video backend cannot be used here.
                let available = match (unavailable, m.provider) {
                    (Some(_), _) => Some(false),
                    (None, p) if p != family => Some(false),
                    (None, domain::VideoProvider::CliProxy) => offers(m.id),
                    (None, domain::VideoProvider::Gemini) => None,
                };
                models.push(ModelOutput {
                    id: m.id.to_owned(),
                    kind: MediaKind::Video.as_str().to_owned(),
                    aspect_ratios: strings(m.aspect_ratios),
                    image_sizes: Vec::new(),
                    durations: m.durations.to_vec(),
                    resolutions: strings(m.resolutions),
                    max_reference_images: (m.extras.reference_images > 0)
                        .then_some(m.extras.reference_images),
                    default: m.id == default_video,
                    available,
                    price: self.prices.model_price(m.id),
                });
            }
        }
        Ok(ListModelsOutput {
            success: true,
            models,
            note,
        })
    }
}

impl Service {
    /// The models and what the providers offer (see [`ModelCatalog::list`]).
    pub async fn list_models(&self, kind: Option<&str>) -> Result<ListModelsOutput, ServiceError> {
        ModelCatalog {
            images: self.images.clone(),
            videos: self.videos.clone(),
            default_image: self.generation.default_model,
            default_video: self.video.default_model,
            prices: self.spend.prices.clone(),
        }
        .list(kind)
        .await
    }
}
