//! The operations media-gen performs, over the ports (an
//! [`ImageProvider`], the [`Library`]). One [`Service`] façade; its `impl`
//! blocks live in a file per capability:
//!
//! - [`input`]: tool and CLI input parsed into specs once, defaults applied;
//! - [`save`]: the one pipeline every producer uses — bytes → checks →
//!   library → preview → the contract's result;
//! - [`generate`]: images from prompts, one or a batch;
//! - [`library`]: listing, file info, delete, reads, the model registry;
//! - [`maintenance`]: reconcile and the automatic clean-up;
//! - [`error`]: the one mapping from failures to the contract's codes.
//!
//! Nothing here knows MCP or HTTP: tools and the CLI call these methods and
//! render the [`crate::contract`] shapes they return.

mod error;
mod generate;
mod input;
mod library;
mod maintenance;
mod save;

use std::sync::Arc;

use crate::backend::ImageProvider;
use crate::config::{CleanupSettings, GenerationSettings, ResultSettings};
use crate::store::Library;

pub use error::ServiceError;
pub use generate::{Batch, Generated};
pub use input::{
    BatchInput, GenerateInput, GenerateSpec, ListInput, MAX_BATCH, MAX_PROMPT_CHARS, parse_filename,
};
pub use save::{BATCH_PREVIEW_BUDGET, Inline, PREVIEW_MAX_BYTES, PREVIEW_MAX_SIDE, PreviewBudget};

/// What the service is built from: its ports and its settings groups.
pub struct ServiceParts {
    pub images: Arc<dyn ImageProvider>,
    pub library: Library,
    pub generation: GenerationSettings,
    pub results: ResultSettings,
    pub cleanup: CleanupSettings,
}

/// The operations, with everything they need injected. Shared as `Arc`.
pub struct Service {
    images: Arc<dyn ImageProvider>,
    library: Library,
    generation: GenerationSettings,
    results: ResultSettings,
    cleanup: CleanupSettings,
}

impl Service {
    pub fn new(parts: ServiceParts) -> Self {
        let ServiceParts {
            images,
            library,
            generation,
            results,
            cleanup,
        } = parts;
        Self {
            images,
            library,
            generation,
            results,
            cleanup,
        }
    }
}
