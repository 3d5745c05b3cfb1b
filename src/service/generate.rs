//! Images from prompts: one, or a batch run in parallel with the order kept.

use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::SemaphorePermit;
use tokio_util::sync::CancellationToken;

use serde_json::json;

use super::input::{BatchInput, GenerateInput, GenerateSpec};
use super::refs::{InputPolicy, REFERENCE_MAX_SIDE};
use super::save::{ImageProduct, PreviewBudget, Saved, generation_facts};
use super::spend::{Call, Hold};
use super::{Priced, Service, ServiceError};
use crate::backend::{GeneratedImage, ImageRequest, InputImage};
use crate::contract::{BatchError, BatchItem, BatchOutput, Surface};
use crate::domain::{self, ImageModelInfo};

/// A generated, saved image: the contract's result and what to show inline.
pub type Generated = Saved;

/// The outcome of a batch: one entry per prompt, in the order given.
#[derive(Debug)]
pub struct Batch {
    pub items: Vec<(String, Result<Generated, ServiceError>)>,
}

impl Batch {
    /// The contract's batch result, as tools return it.
    pub fn output(&self) -> BatchOutput {
        self.output_for(Surface::Tool)
    }

    /// The batch result with its error messages written for `surface`.
    pub fn output_for(&self, surface: Surface) -> BatchOutput {
        let results: Vec<BatchItem> = self
            .items
            .iter()
            .map(|(prompt, outcome)| match outcome {
                Ok(g) => BatchItem::Ok(Box::new(g.output.clone())),
                Err(e) => BatchItem::Err(BatchError {
                    prompt: prompt.clone(),
                    error: e.output_for(surface),
                }),
            })
            .collect();
        let succeeded = self.generated().count();
        let failed = results.len() - succeeded;
        BatchOutput {
            success: failed == 0,
            results,
            succeeded,
            failed,
        }
    }

    /// The images that were made, in order.
    pub fn generated(&self) -> impl Iterator<Item = &Generated> {
        self.items.iter().filter_map(|(_, o)| o.as_ref().ok())
    }
}

impl Service {
    /// Generates one image and saves it; `reference_images` are read as
    /// `policy` allows and sent with the prompt. Cancelling `cancel` aborts
    /// the backend call; a cancelled request saves nothing.
    pub async fn generate_image(
        &self,
        input: &GenerateInput,
        policy: &InputPolicy,
        cancel: &CancellationToken,
    ) -> Result<Generated, ServiceError> {
        let spec = self.parse_generate(input)?;
        let model = model_info(&spec)?;
        let references = self
            .references(&input.reference_images, model, policy)
            .await?;
        self.generate_with(&spec, &references, None, cancel, PreviewBudget::SINGLE)
            .await
    }

    /// Generates one image per prompt with at most `batch_concurrency` in
    /// flight. Bad shared parameters fail the call; a bad or failed prompt
    /// fails only its entry. `on_done(done, total)` runs after each prompt
    /// (prompts refused up front count as done from the start).
    pub async fn generate_batch(
        &self,
        input: &BatchInput,
        policy: &InputPolicy,
        cancel: &CancellationToken,
        on_done: impl Fn(usize, usize) + Send + Sync,
    ) -> Result<Batch, ServiceError> {
        let checked = self.parse_batch(input)?;
        // The references are read once and sent with every prompt.
        let model = match checked.iter().flatten().next() {
            Some(spec) => Some(model_info(spec)?),
            None => None,
        };
        let references = match model {
            Some(model) => {
                self.references(&input.reference_images, model, policy)
                    .await?
            }
            None => Vec::new(),
        };
        let references = &references;
        // The whole batch is held against the budget before any request:
        // a batch that would pass a cap is refused whole.
        let estimate: f64 = checked
            .iter()
            .flatten()
            .filter_map(|spec| self.image_cost(spec.model, spec.image_size))
            .sum();
        let hold = self.reserve(super::round_usd(estimate)).await?;
        let hold = &hold;
        let total = checked.len();
        let refused = checked.iter().filter(|c| c.is_err()).count();
        let budget = PreviewBudget::for_batch(total);
        let done = AtomicUsize::new(refused);
        let (on_done, done) = (&on_done, &done);
        let outcomes: Vec<Result<Generated, ServiceError>> = futures::stream::iter(checked)
            .map(|check| async move {
                // A prompt refused up front keeps its own error.
                let spec = check?;
                let r = self
                    .generate_with(&spec, references, Some(hold), cancel, budget)
                    .await;
                on_done(done.fetch_add(1, Ordering::SeqCst) + 1, total);
                r
            })
            .buffered(self.generation.batch_concurrency)
            .collect()
            .await;
        let items = input.prompts.iter().cloned().zip(outcomes).collect();
        Ok(Batch { items })
    }

    async fn generate_with(
        &self,
        spec: &GenerateSpec,
        references: &[(String, InputImage)],
        prepaid: Option<&Hold<'_>>,
        cancel: &CancellationToken,
        budget: PreviewBudget,
    ) -> Result<Generated, ServiceError> {
        let _admitted = self.admit(cancel).await?;
        let images: Vec<InputImage> = references.iter().map(|(_, i)| i.clone()).collect();
        let request = ImageRequest {
            model: spec.model,
            prompt: &spec.prompt,
            aspect_ratio: spec.aspect_ratio,
            image_size: spec.image_size,
            images: &images,
        };
        let answer = self
            .ask_with_fallback(&request, references.len(), "generate", prepaid, cancel)
            .await?;
        let mut facts = generation_facts(
            spec.aspect_ratio.as_str(),
            spec.image_size.as_str(),
            answer.image.text.as_deref(),
            answer.fallback_from.as_deref(),
        );
        // The price of the model that made it (the fallback's, if it did).
        if let Some(cost) = self.image_cost(&answer.model, spec.image_size) {
            facts.insert("cost_usd".into(), json!(cost));
        }
        if !references.is_empty() {
            let labels: Vec<&str> = references.iter().map(|(l, _)| l.as_str()).collect();
            facts.insert("parameters".into(), json!({"reference_images": labels}));
        }
        let product = ImageProduct {
            facts,
            bytes: Bytes::from(answer.image.data),
            pixels: None,
            prompt: spec.prompt.clone(),
            // The model that made it: what the file records (and costs).
            model: answer.model,
            source: None,
        };
        self.save_image(product, budget).await
    }

    /// What one image of `model` at `size` is estimated to cost.
    pub(super) fn image_cost(&self, model: &str, size: domain::ImageSize) -> Option<f64> {
        self.estimate_cost(&Priced::Image {
            model: model.to_owned(),
            size,
            count: 1,
        })
    }

    /// Waits for a turn at the backend; hold the permit until the answer is
    /// saved. Under overload, calls then queue here with nothing but their
    /// parameters instead of each waiting for a pixel slot with a
    /// multi-megabyte answer in hand. Cancelling `cancel` stops the wait.
    pub(super) async fn admit(
        &self,
        cancel: &CancellationToken,
    ) -> Result<SemaphorePermit<'_>, ServiceError> {
        tokio::select! {
            biased;
            () = cancel.cancelled() => Err(ServiceError::Cancelled),
            permit = self.admission.acquire() => {
                permit.map_err(|e| ServiceError::Internal(e.to_string()))
            }
        }
    }

    /// One call to the image provider, metered (its estimate reserved
    /// against the budget unless `prepaid` holds it, and the call recorded
    /// in the usage ledger as `operation`), abandoned (nothing saved) when
    /// `cancel` fires; a failure is mapped with the provider it came from.
    pub(super) async fn ask_images(
        &self,
        request: &ImageRequest<'_>,
        operation: &'static str,
        prepaid: Option<&Hold<'_>>,
        cancel: &CancellationToken,
    ) -> Result<GeneratedImage, ServiceError> {
        let call = Call {
            operation,
            kind: "image",
            model: request.model.to_owned(),
            size: request.image_size.as_str().to_owned(),
            seconds: None,
            estimate: self.image_cost(request.model, request.image_size),
        };
        self.metered(&call, prepaid, self.ask_images_unmetered(request, cancel))
            .await
    }

    async fn ask_images_unmetered(
        &self,
        request: &ImageRequest<'_>,
        cancel: &CancellationToken,
    ) -> Result<GeneratedImage, ServiceError> {
        let image = tokio::select! {
            biased;
            () = cancel.cancelled() => return Err(ServiceError::Cancelled),
            r = self.images.generate(request) => {
                r.map_err(|e| ServiceError::image(self.images.backend(), e))?
            }
        };
        if cancel.is_cancelled() {
            return Err(ServiceError::Cancelled);
        }
        Ok(image)
    }

    /// Checks how many references a model takes.
    pub(super) fn check_reference_count(
        &self,
        given: usize,
        model: &'static ImageModelInfo,
    ) -> Result<(), ServiceError> {
        if given > model.max_reference_images as usize {
            return Err(ServiceError::TooManyReferences {
                given,
                max: model.max_reference_images,
                model: model.id,
            });
        }
        Ok(())
    }

    /// Reads reference images and prepares them for `model` (scaled to at
    /// most [`REFERENCE_MAX_SIDE`]): each with the label results show.
    pub(super) async fn references(
        &self,
        references: &[String],
        model: &'static ImageModelInfo,
        policy: &InputPolicy,
    ) -> Result<Vec<(String, InputImage)>, ServiceError> {
        self.check_reference_count(references.len(), model)?;
        let mut out = Vec::with_capacity(references.len());
        for (i, r) in references.iter().enumerate() {
            let read = self
                .read_input(&format!("reference_images[{i}]"), r, policy)
                .await?;
            let limits = self.input_limits();
            let label = read.label.clone();
            let image = super::pixels::run("reference", move || {
                let decoded = read.decode(&limits)?;
                read.for_model(&decoded, REFERENCE_MAX_SIDE)
            })
            .await??;
            out.push((label, image));
        }
        Ok(out)
    }
}

/// The registry entry of a parsed spec's model.
fn model_info(spec: &GenerateSpec) -> Result<&'static ImageModelInfo, ServiceError> {
    domain::image_model(spec.model).ok_or_else(|| ServiceError::UnknownModel {
        model: spec.model.to_owned(),
    })
}
