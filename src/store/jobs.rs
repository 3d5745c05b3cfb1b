//! Durable jobs: a long-running generation (video) that outlives the call
//! that started it, the client that asked, and the process that ran it.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::MediaId;

/// A job's id: `job_YYYYMMDD_HHMMSS_mmm_xxxxxx`, or any 1–64 ASCII letters,
/// digits, `_` and `-` (ids come back from clients, so they are checked).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct JobId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a job id; use the `job_id` a video tool returned")]
pub struct InvalidJobId(pub String);

impl JobId {
    /// A fresh, time-sortable id.
    pub fn new(at: DateTime<Utc>) -> Self {
        Self(super::id::unique_stem("job", at))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for JobId {
    type Err = InvalidJobId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok = (1..=64).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidJobId(s.escape_default().to_string()))
        }
    }
}

impl TryFrom<String> for JobId {
    type Error = InvalidJobId;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<JobId> for String {
    fn from(id: JobId) -> Self {
        id.0
    }
}

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Recorded; the provider has not accepted it yet.
    Queued,
    /// The provider is working on it.
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    /// Whether the job has ended (nothing more will happen to it).
    pub fn is_final(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }
}

/// Why a job failed: a contract error code and what to do next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobError {
    pub code: String,
    pub message: String,
}

/// A durable job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub id: JobId,
    /// What was asked: `generate_video`, `image_to_video`, `extend_video` …
    pub operation: String,
    /// Who does the work: `gemini`, `cliproxy`.
    pub provider: String,
    pub model: String,
    pub state: JobState,
    /// The request's parameters, as the provider needs them again.
    pub params: Map<String, Value>,
    /// The provider's handle on the work (an operation name), once accepted.
    pub provider_ref: Option<String>,
    /// 0.0–1.0 when the provider says.
    pub progress: Option<f64>,
    /// Polls (or submissions) made so far.
    pub attempts: u32,
    pub error: Option<JobError>,
    /// The library file the job produced.
    pub result: Option<MediaId>,
    /// Where the provider keeps its copy (needed to extend a video).
    pub sample_uri: Option<String>,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
    /// After this the job fails with a timeout.
    pub deadline: DateTime<Utc>,
}
