//! Images from prompts: one, or a batch run in parallel with the order kept.

use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use super::input::{BatchInput, GenerateInput, GenerateSpec};
use super::save::{ImageProduct, PreviewBudget, Saved, generation_facts};
use super::{Service, ServiceError};
use crate::backend::ImageRequest;
use crate::contract::{BatchError, BatchItem, BatchOutput};

/// A generated, saved image: the contract's result and what to show inline.
pub type Generated = Saved;

/// The outcome of a batch: one entry per prompt, in the order given.
#[derive(Debug)]
pub struct Batch {
    pub items: Vec<(String, Result<Generated, ServiceError>)>,
}

impl Batch {
    /// The contract's batch result.
    pub fn output(&self) -> BatchOutput {
        let results: Vec<BatchItem> = self
            .items
            .iter()
            .map(|(prompt, outcome)| match outcome {
                Ok(g) => BatchItem::Ok(g.output.clone()),
                Err(e) => BatchItem::Err(BatchError {
                    prompt: prompt.clone(),
                    error: e.output(),
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
    /// Generates one image and saves it. Cancelling `cancel` aborts the
    /// backend call; a cancelled request saves nothing.
    pub async fn generate_image(
        &self,
        input: &GenerateInput,
        cancel: &CancellationToken,
    ) -> Result<Generated, ServiceError> {
        let spec = self.parse_generate(input)?;
        self.generate_with(&spec, cancel, PreviewBudget::SINGLE)
            .await
    }

    /// Generates one image per prompt with at most `batch_concurrency` in
    /// flight. Bad shared parameters fail the call; a bad or failed prompt
    /// fails only its entry. `on_done(done, total)` runs after each prompt
    /// (prompts refused up front count as done from the start).
    pub async fn generate_batch(
        &self,
        input: &BatchInput,
        cancel: &CancellationToken,
        on_done: impl Fn(usize, usize) + Send + Sync,
    ) -> Result<Batch, ServiceError> {
        let checked = self.parse_batch(input)?;
        let total = checked.len();
        let refused = checked.iter().filter(|c| c.is_err()).count();
        let budget = PreviewBudget::for_batch(total);
        let done = AtomicUsize::new(refused);
        let (on_done, done) = (&on_done, &done);
        let outcomes: Vec<Result<Generated, ServiceError>> = futures::stream::iter(checked)
            .map(|check| async move {
                // A prompt refused up front keeps its own error.
                let spec = check?;
                let r = self.generate_with(&spec, cancel, budget).await;
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
        cancel: &CancellationToken,
        budget: PreviewBudget,
    ) -> Result<Generated, ServiceError> {
        let request = ImageRequest {
            model: spec.model,
            prompt: &spec.prompt,
            aspect_ratio: spec.aspect_ratio,
            image_size: spec.image_size,
            images: &[],
        };
        let image = tokio::select! {
            biased;
            () = cancel.cancelled() => return Err(ServiceError::Cancelled),
            r = self.images.generate(&request) => {
                r.map_err(|e| ServiceError::image(self.images.backend(), e))?
            }
        };
        if cancel.is_cancelled() {
            return Err(ServiceError::Cancelled);
        }
        let product = ImageProduct {
            facts: generation_facts(
                spec.aspect_ratio.as_str(),
                spec.image_size.as_str(),
                image.text.as_deref(),
            ),
            bytes: Bytes::from(image.data),
            prompt: spec.prompt.clone(),
            model: spec.model,
            source: None,
        };
        self.save_image(product, budget).await
    }
}
