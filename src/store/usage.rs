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

/// A spending limit: the cost recorded from `since` on, plus every live
/// hold, may not pass `limit_usd`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cap {
    pub since: DateTime<Utc>,
    pub limit_usd: f64,
}

/// Why a hold was refused: the first cap it would have passed, and what
/// was already committed against it (spent + held).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CapHit {
    /// Index into the caps given to [`super::UsageLedger::hold`].
    pub cap: usize,
    pub committed_usd: f64,
}

/// The name of a live hold in the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HoldKey(pub String);

impl HoldKey {
    /// A fresh, unguessable key.
    pub fn new() -> Self {
        Self(format!("hold_{:032x}", rand::random::<u128>()))
    }
}

impl Default for HoldKey {
    fn default() -> Self {
        Self::new()
    }
}

/// Slack for sums of dollar figures: a hold that lands exactly on a cap
/// passes even when the floating-point sum is a hair above it.
pub const CAP_EPSILON: f64 = 1e-9;

/// Which cap (if any) `usd` more would pass, given each cap's spend and
/// the live holds: the one rule every ledger applies inside its
/// transaction.
pub fn first_cap_hit(caps: &[Cap], spent: &[f64], held: f64, usd: f64) -> Option<CapHit> {
    caps.iter()
        .zip(spent)
        .enumerate()
        .find(|(_, (cap, spent))| *spent + held + usd > cap.limit_usd + CAP_EPSILON)
        .map(|(i, (_, spent))| CapHit {
            cap: i,
            committed_usd: spent + held,
        })
}
