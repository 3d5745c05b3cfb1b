//! The usage ledger: one row per backend call (or per video job), with
//! what it was estimated to cost and what of it counts as spend.

use chrono::{DateTime, Utc};

/// How a backend call ended, as the ledger records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A video job that has not ended yet: its estimate counts as spend
    /// until it settles (so a restart does not forget it).
    Running,
    Succeeded,
    /// Refused by the provider's safety filters.
    Blocked,
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Blocked => "blocked",
            Self::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Running, Self::Succeeded, Self::Blocked, Self::Failed]
            .into_iter()
            .find(|o| o.as_str() == s)
    }
}

/// One ledger row.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageEntry {
    pub time: DateTime<Utc>,
    pub model: String,
    /// `generate`, `edit`, `inpaint`, `outpaint`, `upscale`,
    /// `generate_video`, `image_to_video`, `extend_video`.
    pub operation: String,
    /// `image` or `video`.
    pub kind: String,
    /// The image size (`1K` …) or the video resolution (`720p` …).
    pub size: Option<String>,
    /// Video: seconds asked for (or made, once it succeeded).
    pub seconds: Option<f64>,
    /// The price-table estimate; `None` for a model without a price.
    pub estimate_usd: Option<f64>,
    /// What counts as spent: the estimate when the provider bills the
    /// call, 0 when it does not.
    pub cost_usd: f64,
    pub outcome: Outcome,
    /// The contract's error code of a failed or blocked call.
    pub error: Option<String>,
    /// The video job, for rows that settle later.
    pub job_id: Option<String>,
}
