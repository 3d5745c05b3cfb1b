//! The operations media-gen performs, over the ports (an
//! [`ImageProvider`], the [`Library`]). One [`Service`] façade; its `impl`
//! blocks live in a file per capability:
//!
//! - [`input`]: tool and CLI input parsed into specs once, defaults applied;
//! - [`save`]: the one pipeline every producer uses — bytes → checks →
//!   library → preview → the contract's result;
//! - [`generate`]: images from prompts, one or a batch, with reference images;
//! - [`edit`]: edit, inpaint, outpaint and upscale an existing image;
//! - [`fallback`]: one try on `MCP_FALLBACK_MODEL` when the requested image
//!   model is rate limited (every image operation asks through it);
//! - [`video`]: video requests checked and started as durable jobs, and
//!   their status (waited on, with a contact sheet of the finished file);
//! - [`jobs`]: the runner that polls active jobs, saves finished videos
//!   and resumes unfinished jobs after a restart;
//! - [`refs`]: every input image (file name, URI or path), as the session's
//!   [`InputPolicy`] allows;
//! - [`library`]: listing, file info, delete, reads;
//! - [`models`]: the model registry with what the providers offer (no
//!   library needed);
//! - [`files`]: what HTTP clients need beyond tools — ranged reads,
//!   uploads of input images, cached gallery thumbnails;
//! - [`maintenance`]: reconcile and the automatic clean-up;
//! - [`spend`]: the price table, cost estimates and the budget caps;
//! - [`quote`]: what a paid call will cost, worked out before anything
//!   is sent, for the calls the user is asked to confirm;
//! - [`error`]: the one mapping from failures to the contract's codes.
//!
//! Nothing here knows MCP or HTTP: tools and the CLI call these methods and
//! render the [`crate::contract`] shapes they return.

mod edit;
mod error;
mod fallback;
mod files;
mod generate;
mod input;
mod jobs;
mod library;
mod maintenance;
mod models;
mod pixels;
mod quote;
mod refs;
mod save;
mod spend;
mod video;

use std::sync::Arc;

use tokio::sync::{Notify, Semaphore, watch};

use crate::backend::ImageProvider;
use crate::config::{
    CleanupSettings, ConfirmSettings, EditSettings, GenerationSettings, ResultSettings,
    SpendSettings, VideoSettings,
};
use crate::store::{JobStore, Library, UsageLedger};

pub use edit::{EditInput, OutpaintInput, UpscaleInput};
pub use error::{ServiceError, Unconfirmed, usd};
pub use fallback::FallbackMiss;
pub use files::{StoredFile, THUMBNAIL_MAX_SIDE, Thumbnail};
pub use generate::{Batch, Generated};
pub use input::{
    BatchInput, GenerateInput, GenerateSpec, ListInput, MAX_BATCH, MAX_PROMPT_CHARS, parse_filename,
};
pub use models::ModelCatalog;
pub use quote::{Paid, Quote};
pub use refs::{InputOrigin, InputPolicy, REFERENCE_MAX_SIDE};
pub use save::{BATCH_PREVIEW_BUDGET, Inline, PREVIEW_MAX_BYTES, PREVIEW_MAX_SIDE, PreviewBudget};
pub use spend::{
    Budget, BudgetState, HoldId, OverBudget, Period, PriceTable, Priced, Spend, period_starts,
    round_usd,
};
pub use video::{
    Extendable, MAX_WAIT_SECONDS, VideoAccess, VideoInput, VideoOperation, VideoSpec, VideoStarted,
    VideoStatus, parse_video,
};

/// What the service is built from: its ports and its settings groups.
pub struct ServiceParts {
    pub images: Arc<dyn ImageProvider>,
    pub library: Library,
    pub generation: GenerationSettings,
    pub results: ResultSettings,
    pub cleanup: CleanupSettings,
    pub edit: EditSettings,
    pub videos: VideoAccess,
    pub jobs: Arc<dyn JobStore>,
    pub video: VideoSettings,
    /// Price overrides and budget caps.
    pub spend: SpendSettings,
    /// Where every backend call is recorded.
    pub usage: Arc<dyn UsageLedger>,
    pub confirm: ConfirmSettings,
}

/// The operations, with everything they need injected. Shared as `Arc`.
pub struct Service {
    images: Arc<dyn ImageProvider>,
    library: Library,
    generation: GenerationSettings,
    results: ResultSettings,
    cleanup: CleanupSettings,
    edit: EditSettings,
    videos: VideoAccess,
    jobs: Arc<dyn JobStore>,
    video: VideoSettings,
    /// Admits image generations and model edits to the backend, at most
    /// `generation_concurrency` at a time (see [`Service::admit`]).
    admission: Semaphore,
    spend: Spend,
    confirm: ConfirmSettings,
    /// Bumped on every job change: `get_video_status` waits on it.
    job_changes: watch::Sender<u64>,
    /// Wakes the runner when a job starts.
    runner_wake: Notify,
    /// This process among those sharing the store: the holder named on
    /// the job leases it takes.
    owner: String,
}

impl Service {
    pub fn new(parts: ServiceParts) -> Self {
        let ServiceParts {
            images,
            library,
            generation,
            results,
            cleanup,
            edit,
            videos,
            jobs,
            video,
            spend,
            usage,
            confirm,
        } = parts;
        Self {
            images,
            library,
            admission: Semaphore::new(generation.generation_concurrency),
            generation,
            results,
            cleanup,
            edit,
            videos,
            jobs,
            video,
            spend: Spend::new(&spend, usage),
            confirm,
            job_changes: watch::Sender::new(0),
            runner_wake: Notify::new(),
            owner: format!("{}-{:016x}", std::process::id(), rand::random::<u64>()),
        }
    }
}
