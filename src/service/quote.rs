//! What a paid call will cost, worked out from its input before anything is
//! sent: the model, the size (for an edit, from the source image's header,
//! as the edit itself picks it) or the video's resolution and length, and
//! the estimate from the price table ([`Service::estimate_cost`]). Tools ask
//! the user about calls above `MCP_CONFIRM_ABOVE_USD` with it; nothing here
//! asks anyone.
//!
//! Quoting checks the priced parameters as the call would (a bad model is
//! `INVALID_MODEL` here as there), so nobody is asked about a call that
//! cannot start. What only the call itself reads (reference images, the
//! mask's pixels) is checked when the call runs.

use super::edit::{EditInput, OutpaintInput, UpscaleInput, needs_mask, request_shape};
use super::input::{BatchInput, GenerateInput};
use super::refs::InputPolicy;
use super::spend::Priced;
use super::video::{VideoInput, VideoOperation};
use super::{Service, ServiceError};
use crate::domain::ImageSize;
use crate::media::canvas;

/// A call that spends money, with its input as the tool received it.
#[derive(Debug, Clone, Copy)]
pub enum Paid<'a> {
    Generate(&'a GenerateInput),
    Batch(&'a BatchInput),
    Edit(&'a EditInput),
    Inpaint(&'a EditInput),
    Outpaint(&'a OutpaintInput),
    Upscale(&'a UpscaleInput),
    Video(VideoOperation, &'a VideoInput),
}

/// What a call is estimated to cost, in words a user can judge.
#[derive(Debug, Clone, PartialEq)]
pub struct Quote {
    /// Estimated US dollars.
    pub usd: f64,
    pub model: &'static str,
    /// What is bought: `1 image at 4K`, `3 images at 1K`, `8 s of video at 720p`.
    pub what: String,
}

impl Service {
    /// Calls estimated above this many US dollars ask the user first
    /// (`MCP_CONFIRM_ABOVE_USD`); `None`: no call asks.
    pub fn confirm_above_usd(&self) -> Option<f64> {
        self.confirm.above_usd
    }

    /// What `call` would cost; `None` when it sends nothing to a paid
    /// backend (a local upscale) or its model has no price. Input the call
    /// would refuse is refused here the same way.
    pub async fn quote(
        &self,
        call: Paid<'_>,
        policy: &InputPolicy,
    ) -> Result<Option<Quote>, ServiceError> {
        let (model, priced, what) = match call {
            Paid::Generate(input) => {
                let spec = self.parse_generate(input)?;
                images(spec.model, spec.image_size, 1)
            }
            Paid::Batch(input) => {
                let specs = self.parse_batch(input)?;
                // A prompt refused on its own is never sent.
                let sent: Vec<_> = specs.iter().filter_map(|s| s.as_ref().ok()).collect();
                match sent.first() {
                    Some(first) => images(first.model, first.image_size, sent.len() as u32),
                    None => return Ok(None),
                }
            }
            Paid::Edit(input) | Paid::Inpaint(input) => {
                if matches!(call, Paid::Inpaint(_)) {
                    needs_mask(input)?;
                }
                let c = self.common(
                    Some(&input.prompt),
                    input.model.as_deref(),
                    input.output_format.as_deref(),
                    input.feather,
                )?;
                self.check_reference_count(input.reference_images.len(), c.model)?;
                let source = self.read_input("image_path", &input.image, policy).await?;
                let (_, size, _) = request_shape(c.model, source.info.width, source.info.height);
                images(c.model.id, size, 1)
            }
            Paid::Outpaint(input) => {
                let c = self.common(
                    Some(&input.prompt),
                    input.model.as_deref(),
                    input.output_format.as_deref(),
                    input.feather,
                )?;
                let (direction, pixels) = self.outpaint_extent(input)?;
                let source = self.read_input("image_path", &input.image, policy).await?;
                let ext = canvas::extend(source.info.width, source.info.height, direction, pixels);
                let (_, size, _) = request_shape(c.model, ext.width, ext.height);
                images(c.model.id, size, 1)
            }
            Paid::Upscale(input) => {
                let plan = self.upscale_plan(input)?;
                let Some(model) = plan.model else {
                    return Ok(None);
                };
                let source = self.read_input("image_path", &input.image, policy).await?;
                let (w, h) = (
                    u64::from(source.info.width) * plan.factor,
                    u64::from(source.info.height) * plan.factor,
                );
                let side = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
                let (_, size, _) = request_shape(model, side(w), side(h));
                images(model.id, size, 1)
            }
            Paid::Video(operation, input) => {
                let (spec, _) = self.parse_video_request(operation, input, policy).await?;
                let what = format!(
                    "{} s of video at {}",
                    spec.duration_seconds, spec.resolution
                );
                let priced = Priced::Video {
                    model: spec.model.id.to_owned(),
                    resolution: spec.resolution.to_owned(),
                    seconds: f64::from(spec.duration_seconds),
                };
                (spec.model.id, priced, what)
            }
        };
        Ok(self
            .estimate_cost(&priced)
            .map(|usd| Quote { usd, model, what }))
    }
}

/// `count` images of `model` at `size`, and how to say it.
fn images(model: &'static str, size: ImageSize, count: u32) -> (&'static str, Priced, String) {
    let what = match count {
        1 => format!("1 image at {}", size.as_str()),
        n => format!("{n} images at {}", size.as_str()),
    };
    let priced = Priced::Image {
        model: model.to_owned(),
        size,
        count,
    };
    (model, priced, what)
}
