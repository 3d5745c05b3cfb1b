//! The job runner: one per process, started by the composition root with
//! the shutdown token. It drives every active job — polls the provider
//! with a growing interval (and what `Retry-After` asks), downloads the
//! finished video at once (sample links expire), saves it through the
//! library (atomic, catalogued) and marks the job done — and fails jobs
//! that pass their deadline with `GENERATION_TIMEOUT`.
//!
//! Jobs live in the [`JobStore`](crate::store::JobStore), so a restart
//! loses nothing: at start the runner resumes every unfinished job. Several
//! processes may share one store (replicas, or a CLI beside a server): a
//! process drives only the jobs it holds a lease on, renews the lease while
//! it works, and when it dies its lease runs out and another process takes
//! the job over ([`JobStore::claim`](crate::store::JobStore::claim)).
//!
//! A file appears exactly once: a job's video is saved under a name made
//! from the job's id, with an idempotent save ([`Library::save_once`]), so
//! a takeover that downloads the video again — or two processes racing
//! after a lease ran out under one of them — end with the same single
//! file. The video's sidecar names its job, and a job whose file was saved
//! just before its process died is found and marked done instead of being
//! downloaded again.
//!
//! [`Library::save_once`]: crate::store::Library::save_once

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::video::backend_name;
use super::{Service, ServiceError};
use crate::backend::{BackendError, VideoPoll, VideoSample};
use crate::contract::{self, ErrorCode};
use crate::store::{
    Job, JobError, JobId, JobState, ListQuery, MediaId, MediaKind, MediaRecord, NewMedia, Outcome,
};

/// The longest wait between two polls of one job.
const MAX_POLL_FACTOR: f64 = 4.0;
/// How often, at most, the runner looks for jobs it was not told about
/// (started by another process on the same library, or left by one that
/// died): every lease length when that is shorter, since a dead process's
/// jobs come free when their leases run out.
const RESCAN: Duration = Duration::from_secs(30);
/// The name a job's video is saved under, made from the job's id, so that
/// every run of the job saves to the same name (`job_X` → `video_X.mp4`).
pub(super) fn video_name(job: &JobId, extension: &str) -> MediaId {
    let stem = job.as_str().strip_prefix("job_").unwrap_or(job.as_str());
    format!("video_{stem}.{extension}")
        .parse()
        .unwrap_or_else(|_| crate::store::new_name("video", Utc::now(), extension))
}

/// How long a queued job the provider has not accepted yet is taken to be
/// still under submission by the process that started it (beyond any
/// submission's request timeout and retries); after that its process is
/// taken to have died, and the job fails.
const SUBMIT_GRACE: chrono::Duration = chrono::Duration::minutes(10);

/// Jobs claimed at one look.
const CLAIM_BATCH: u32 = 64;
/// Downloads of a finished video tried before the job fails.
const DOWNLOAD_TRIES: u32 = 4;
/// Longest back-off after a failed poll.
const MAX_ERROR_WAIT: Duration = Duration::from_secs(60);

/// What one step of a job came to.
enum Step {
    /// Poll again after this long.
    Again(Duration),
    /// The job has ended.
    Ended,
}

impl Service {
    /// Drives every active job no other process drives, until
    /// `shutdown`; returns once the drivers have stopped (a save under way
    /// finishes first) and given their leases back.
    pub async fn run_jobs(self: Arc<Self>, shutdown: CancellationToken) {
        let drivers = TaskTracker::new();
        let driving: Arc<Mutex<HashSet<JobId>>> = Arc::default();
        loop {
            let until = Utc::now() + self.lease();
            match self.jobs.claim(&self.owner, until, CLAIM_BATCH).await {
                Ok(jobs) => {
                    for job in jobs {
                        let fresh = driving
                            .lock()
                            .map(|mut d| d.insert(job.id.clone()))
                            .unwrap_or(false);
                        if !fresh {
                            continue;
                        }
                        let this = self.clone();
                        let stop = shutdown.clone();
                        let driving = driving.clone();
                        drivers.spawn(async move {
                            let id = job.id.clone();
                            this.drive_leased(job, &stop).await;
                            if let Ok(mut d) = driving.lock() {
                                d.remove(&id);
                            }
                        });
                    }
                }
                Err(e) => tracing::warn!(error = %e, "could not read the active jobs"),
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = self.runner_wake.notified() => {}
                () = tokio::time::sleep(RESCAN.min(self.video.lease)) => {}
            }
        }
        drivers.close();
        drivers.wait().await;
    }

    /// Advances every active job no other process drives by one poll (and
    /// saves what finished), without waiting: for a process that does not
    /// run the runner (`media-gen jobs`).
    pub async fn advance_jobs(&self) -> Result<(), ServiceError> {
        let never = CancellationToken::new();
        let until = Utc::now() + self.lease();
        for mut job in self
            .jobs
            .claim(&self.owner, until, u32::MAX)
            .await
            .map_err(ServiceError::Storage)?
        {
            if self.prepare(&mut job).await {
                let _ = self.step(&mut job, Duration::ZERO, &never).await;
            }
            self.release_lease(&job.id).await;
        }
        Ok(())
    }

    /// The lease length as the store takes it.
    fn lease(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.video.lease).unwrap_or(chrono::Duration::seconds(30))
    }

    /// Drives a job this process holds the lease on: renews the lease every
    /// third of its length while the job runs, stops driving (leaving the
    /// job to whoever took it) if the lease was lost, and gives it back at
    /// the end.
    async fn drive_leased(&self, job: Job, shutdown: &CancellationToken) {
        let lost = shutdown.child_token();
        let keeper = {
            let lost = lost.clone();
            let id = job.id.clone();
            async move {
                loop {
                    tokio::time::sleep(self.video.lease / 3).await;
                    match self
                        .jobs
                        .renew(&id, &self.owner, Utc::now() + self.lease())
                        .await
                    {
                        Ok(true) => {}
                        Ok(false) => {
                            tracing::warn!(job = %id, "another process took this job over (its lease ran out here); no longer driving it");
                            lost.cancel();
                            return;
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, job = %id, "could not renew the job's lease; trying again")
                        }
                    }
                }
            }
        };
        let id = job.id.clone();
        tokio::select! {
            () = self.drive(job, &lost) => {}
            () = keeper => {}
        }
        // A no-op when another process holds it now.
        self.release_lease(&id).await;
    }

    async fn release_lease(&self, id: &JobId) {
        if let Err(e) = self.jobs.release(id, &self.owner).await {
            tracing::warn!(error = %e, job = %id, "could not give the job's lease back; it runs out by itself");
        }
    }

    /// Polls one job until it ends or `stop` fires.
    async fn drive(&self, mut job: Job, stop: &CancellationToken) {
        if !self.prepare(&mut job).await {
            return;
        }
        let first = self.video.poll_interval;
        let mut wait = first;
        loop {
            let left = (job.deadline - Utc::now()).to_std().unwrap_or_default();
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(wait.min(left)) => {}
            }
            match self.step(&mut job, wait, stop).await {
                Step::Again(next) => wait = next,
                Step::Ended => return,
            }
        }
    }

    /// Gets a job ready to be polled: `false` if it has ended meanwhile (a
    /// job the provider never accepted fails; one whose file is already in
    /// the library is marked done), or is still being submitted.
    async fn prepare(&self, job: &mut Job) -> bool {
        if job.provider_ref.is_none() {
            // Still queued and young: the process that started it is waiting
            // for the provider's answer (and will record it); failing it here
            // would race that answer and could overwrite it.
            let age = Utc::now().signed_duration_since(job.created);
            if job.state == JobState::Queued && age < SUBMIT_GRACE {
                return false;
            }
            self.fail(
                job,
                ErrorCode::GenerationFailed,
                "media-gen stopped before the provider accepted this job, so nothing was made; start the video again".into(),
            )
            .await;
            return false;
        }
        match self.saved_for(&job.id, job.created).await {
            Ok(Some(id)) => {
                self.succeed(job, id).await;
                false
            }
            Ok(None) => true,
            Err(e) => {
                tracing::warn!(error = %e, job = %job.id, "could not look for the job's file");
                true
            }
        }
    }

    /// One poll of `job` (and, when the video is ready, its download and
    /// save). `wait` is the interval that led here.
    async fn step(&self, job: &mut Job, wait: Duration, stop: &CancellationToken) -> Step {
        if self.ended_elsewhere(job).await {
            return Step::Ended;
        }
        if Utc::now() >= job.deadline {
            let minutes = (job.deadline - job.created).num_seconds() as f64 / 60.0;
            self.fail(
                job,
                ErrorCode::GenerationTimeout,
                format!(
                    "the video was not ready within {minutes:.0} minutes, so the job was given up (the provider may still finish it, but it will not be saved); start it again, perhaps with a shorter duration or a fast model, or raise `MCP_VIDEO_DEADLINE`"
                ),
            )
            .await;
            return Step::Ended;
        }
        let Ok(provider) = self.video_provider() else {
            // Not fatal: the job waits for a configuration that can poll it.
            return Step::Again(MAX_ERROR_WAIT);
        };
        let name = job.provider_ref.clone().unwrap_or_default();
        let polled = tokio::select! {
            () = stop.cancelled() => return Step::Ended,
            r = provider.poll(&name) => r,
        };
        job.attempts = job.attempts.saturating_add(1);
        let next = self.grow(wait);
        match polled {
            Ok(VideoPoll::Running { progress }) => {
                if progress.is_some() {
                    job.progress = progress;
                }
                if job.state == JobState::Queued {
                    job.state = JobState::Running;
                }
                self.record(job).await;
                Step::Again(next)
            }
            Ok(VideoPoll::Done(sample)) => {
                if let VideoSample::Uri(uri) = &sample {
                    job.sample_uri = Some(uri.clone());
                }
                self.record(job).await;
                self.finish(job, &sample, stop).await
            }
            Ok(VideoPoll::Failed { message }) => {
                self.fail(
                    job,
                    ErrorCode::GenerationFailed,
                    contract::with_hint(
                        &format!("the provider could not make the video: {message}"),
                        "retry; if it keeps failing, change the prompt or try another model",
                    ),
                )
                .await;
                Step::Ended
            }
            Ok(VideoPoll::Filtered { reasons }) => {
                let why = if reasons.is_empty() {
                    "no reason given".to_owned()
                } else {
                    reasons.join("; ")
                };
                self.fail(
                    job,
                    ErrorCode::ContentBlocked,
                    contract::with_hint(
                        &format!("the provider's safety filter withheld the video ({why})"),
                        "rephrase the prompt (or use other images) without the blocked content",
                    ),
                )
                .await;
                Step::Ended
            }
            Err(e) if worth_another_try(&e) => {
                tracing::info!(error = %e, job = %job.id, "poll failed; trying again");
                self.record(job).await;
                Step::Again(self.after_error(&e, wait))
            }
            Err(e) => {
                let err = ServiceError::video(provider.backend(), e);
                self.fail(job, err.code(), err.message()).await;
                Step::Ended
            }
        }
    }

    /// Downloads, checks and saves a finished video; marks the job done.
    async fn finish(&self, job: &mut Job, sample: &VideoSample, stop: &CancellationToken) -> Step {
        let Ok(provider) = self.video_provider() else {
            return Step::Again(MAX_ERROR_WAIT);
        };
        let mut tries = 0;
        let bytes = loop {
            tries += 1;
            let fetched = tokio::select! {
                () = stop.cancelled() => return Step::Ended,
                r = provider.fetch(sample) => r,
            };
            match fetched {
                Ok(b) => break b,
                Err(e) if worth_another_try(&e) && tries < DOWNLOAD_TRIES => {
                    tracing::info!(error = %e, job = %job.id, "download failed; trying again");
                    tokio::select! {
                        () = stop.cancelled() => return Step::Ended,
                        () = tokio::time::sleep(self.after_error(&e, self.video.poll_interval)) => {}
                    }
                }
                Err(e) => {
                    let gone = matches!(
                        &e,
                        BackendError::Failed {
                            status: Some(404 | 410),
                            ..
                        }
                    );
                    let message = if gone {
                        contract::with_hint(
                            &format!(
                                "the provider no longer has the finished video ({e}); its links expire, so it could not be saved"
                            ),
                            "start the video again",
                        )
                    } else {
                        contract::with_hint(
                            &format!("the finished video could not be downloaded ({e})"),
                            "start the video again; if it keeps failing, check the network",
                        )
                    };
                    self.fail(job, ErrorCode::GenerationFailed, message).await;
                    return Step::Ended;
                }
            }
        };
        if self.ended_elsewhere(job).await {
            return Step::Ended;
        }
        match self.save_video(job, bytes).await {
            Ok(record) => {
                self.succeed(job, record.id).await;
                Step::Ended
            }
            Err(e) => {
                self.fail(job, e.code(), e.message()).await;
                // The provider made it (and bills it) even though it could
                // not be kept.
                self.settle_job_usage(job, Outcome::Failed, true).await;
                Step::Ended
            }
        }
    }

    /// The estimate the job was started with.
    fn job_estimate(job: &Job) -> Option<f64> {
        job.params.get("estimated_cost_usd").and_then(Value::as_f64)
    }

    /// Settles the job's ledger row: `billed` keeps its estimate as spend.
    async fn settle_job_usage(&self, job: &Job, outcome: Outcome, billed: bool) {
        let cost = match billed {
            true => Self::job_estimate(job).unwrap_or(0.0),
            false => 0.0,
        };
        let error = job.error.as_ref().map(|e| e.code.clone());
        self.record_video_end(job.id.as_str(), outcome, cost, None, error)
            .await;
    }

    /// Checks a finished video and saves it; its sidecar names the job.
    async fn save_video(&self, job: &Job, bytes: Bytes) -> Result<MediaRecord, ServiceError> {
        let probe = bytes.clone();
        let info = tokio::task::spawn_blocking(move || crate::media::video::probe_mp4(&probe))
            .await
            .map_err(|e| ServiceError::Internal(format!("probe task failed: {e}")))?
            .map_err(ServiceError::NotAVideo)?;
        let param = |k: &str| job.params.get(k).cloned().unwrap_or(Value::Null);
        let mut facts = Map::new();
        facts.insert("operation".into(), json!(job.operation));
        facts.insert("job_id".into(), json!(job.id.as_str()));
        facts.insert(
            "duration_seconds".into(),
            json!((info.duration_seconds * 1000.0).round() / 1000.0),
        );
        facts.insert("aspect_ratio".into(), param("aspect_ratio"));
        facts.insert("resolution".into(), param("resolution"));
        facts.insert("provider".into(), json!(job.provider));
        facts.insert("frames".into(), json!(info.frames));
        if let Some(cost) = Self::job_estimate(job) {
            facts.insert("cost_usd".into(), json!(cost));
        }
        if let Some(s) = job.params.get("source").and_then(Value::as_str) {
            facts.insert("source".into(), json!(s));
        }
        if let Some(n) = job.params.get("note").and_then(Value::as_str) {
            facts.insert("note".into(), json!(n));
        }
        let parameters: Map<String, Value> = job
            .params
            .iter()
            .filter(|(k, _)| {
                !matches!(
                    k.as_str(),
                    "prompt" | "source" | "note" | "estimated_cost_usd"
                )
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        facts.insert("parameters".into(), Value::Object(parameters));
        let source = job
            .params
            .get("source")
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<MediaId>().ok());
        let prompt = job
            .params
            .get("prompt")
            .and_then(Value::as_str)
            .filter(|p| !p.is_empty())
            .map(str::to_owned);
        self.library
            .save_once(
                video_name(&job.id, info.extension),
                NewMedia {
                    bytes,
                    kind: MediaKind::Video,
                    extension: info.extension.to_owned(),
                    mime_type: info.mime_type.to_owned(),
                    width: Some(info.width),
                    height: Some(info.height),
                    prompt,
                    model: Some(job.model.clone()),
                    metadata: facts,
                    source,
                },
            )
            .await
            .map_err(ServiceError::Save)
    }

    /// The library video a job already saved, if any (newest videos first,
    /// none older than the job).
    async fn saved_for(
        &self,
        id: &JobId,
        since: chrono::DateTime<Utc>,
    ) -> Result<Option<MediaId>, ServiceError> {
        let mut q = ListQuery {
            kind: Some(MediaKind::Video),
            limit: 100,
            ..ListQuery::default()
        };
        loop {
            let page = self.library.list(&q).await.map_err(ServiceError::Storage)?;
            for r in &page.records {
                if r.created < since - chrono::Duration::seconds(1) {
                    return Ok(None);
                }
                if r.fact("job_id") == Some(id.as_str()) {
                    return Ok(Some(r.id.clone()));
                }
            }
            if page.records.len() < q.limit as usize {
                return Ok(None);
            }
            q.offset += u64::from(q.limit);
        }
    }

    /// The next interval: 1.5 × the last, at most [`MAX_POLL_FACTOR`] ×
    /// the configured one.
    fn grow(&self, wait: Duration) -> Duration {
        let first = self.video.poll_interval;
        wait.max(first)
            .mul_f64(1.5)
            .min(first.mul_f64(MAX_POLL_FACTOR))
    }

    /// How long to wait after a failed call: what `Retry-After` asks, else
    /// twice the last wait, at most [`MAX_ERROR_WAIT`].
    fn after_error(&self, e: &BackendError, wait: Duration) -> Duration {
        match e {
            BackendError::RateLimited {
                retry_after: Some(r),
                ..
            } => *r,
            _ => wait.max(self.video.poll_interval).saturating_mul(2),
        }
        .min(MAX_ERROR_WAIT)
    }

    /// Whether the stored job has ended (cancelled) while this copy ran.
    async fn ended_elsewhere(&self, job: &Job) -> bool {
        matches!(self.jobs.get(&job.id).await, Ok(Some(stored)) if stored.state.is_final())
    }

    /// Stores the job as it stands now.
    async fn record(&self, job: &mut Job) {
        job.updated = Utc::now();
        if let Err(e) = self.jobs.update(job).await {
            tracing::warn!(error = %e, job = %job.id, "could not record the job");
        }
        self.jobs_changed();
    }

    async fn succeed(&self, job: &mut Job, file: MediaId) {
        tracing::info!(job = %job.id, file = %file, "video saved");
        job.state = JobState::Succeeded;
        job.result = Some(file);
        job.progress = Some(1.0);
        job.error = None;
        self.record(job).await;
        self.settle_job_usage(job, Outcome::Succeeded, true).await;
    }

    async fn fail(&self, job: &mut Job, code: ErrorCode, message: String) {
        tracing::info!(job = %job.id, code = code.as_str(), %message, "video job failed");
        job.state = JobState::Failed;
        job.error = Some(JobError {
            code: code.as_str().to_owned(),
            message,
        });
        self.record(job).await;
        // Veo bills only the videos it makes: a job that failed, was
        // blocked or timed out costs nothing.
        let outcome = match code {
            ErrorCode::ContentBlocked => Outcome::Blocked,
            _ => Outcome::Failed,
        };
        self.settle_job_usage(job, outcome, false).await;
    }

    /// Cancels a job: it is no longer polled and nothing is saved (the
    /// provider cannot be told to stop; its work is discarded).
    pub async fn cancel_job(&self, job_id: &str) -> Result<Job, ServiceError> {
        let id: JobId = job_id
            .parse()
            .map_err(|_| ServiceError::JobNotFound(job_id.to_owned()))?;
        let mut job = self
            .jobs
            .get(&id)
            .await
            .map_err(ServiceError::Storage)?
            .ok_or_else(|| ServiceError::JobNotFound(id.to_string()))?;
        if !job.state.is_final() {
            job.state = JobState::Cancelled;
            job.error = Some(JobError {
                code: ErrorCode::GenerationFailed.as_str().to_owned(),
                message: "the job was cancelled; nothing was saved".into(),
            });
            self.record(&mut job).await;
            // The provider keeps working on it, and bills it.
            self.settle_job_usage(&job, Outcome::Failed, true).await;
        }
        Ok(job)
    }

    /// The job `id`, or `JOB_NOT_FOUND`.
    pub async fn job(&self, job_id: &str) -> Result<Job, ServiceError> {
        let id: JobId = job_id
            .trim()
            .parse()
            .map_err(|_| ServiceError::JobNotFound(job_id.trim().to_owned()))?;
        self.jobs
            .get(&id)
            .await
            .map_err(ServiceError::Storage)?
            .ok_or_else(|| ServiceError::JobNotFound(id.to_string()))
    }

    /// Which provider this process sends videos to (`gemini`, `cliproxy`).
    pub fn video_backend_name(&self) -> Option<&'static str> {
        self.video_provider()
            .ok()
            .map(|p| backend_name(p.backend()))
    }
}

/// Whether a failed poll or download is tried again later: what is
/// transient for one request (connection, 429, 5xx) and also a slow answer —
/// a job lives for minutes, and its deadline bounds the retrying.
fn worth_another_try(e: &BackendError) -> bool {
    e.is_retryable() || matches!(e, BackendError::Timeout { .. })
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use async_trait::async_trait;
    use reqwest::Url;
    use tokio::time::Instant;

    use super::*;
    use crate::backend::{
        Backend, BackendConfig, RetryPolicy, VideoProvider, VideoRequest, cliproxy::CliProxyImages,
    };
    use crate::config::{
        CleanupSettings, EditSettings, GenerationSettings, PreviewMode, ResultSettings,
        VideoSettings,
    };
    use crate::service::{ServiceParts, VideoAccess};
    use crate::store::local::LocalStore;

    /// A provider that answers polls from a script and notes when it was asked.
    struct Scripted {
        url: Url,
        answers: Mutex<VecDeque<Result<VideoPoll, BackendError>>>,
        polls: Mutex<Vec<Instant>>,
        mp4: Bytes,
    }

    #[async_trait]
    impl VideoProvider for Scripted {
        fn backend(&self) -> Backend {
            Backend::Gemini
        }
        fn base_url(&self) -> &Url {
            &self.url
        }
        async fn submit(&self, _req: &VideoRequest<'_>) -> Result<String, BackendError> {
            Ok("models/m/operations/1".into())
        }
        async fn poll(&self, _operation: &str) -> Result<VideoPoll, BackendError> {
            self.polls.lock().unwrap().push(Instant::now());
            self.answers
                .lock()
                .unwrap()
                .pop_front()
                .unwrap_or(Ok(VideoPoll::Running { progress: None }))
        }
        async fn fetch(&self, sample: &VideoSample) -> Result<Bytes, BackendError> {
            match sample {
                VideoSample::Inline(b) => Ok(b.clone()),
                VideoSample::Uri(_) => Ok(self.mp4.clone()),
            }
        }
    }

    fn clip() -> Bytes {
        let mp4 = crate::emulator::video::render_mp4(&crate::emulator::video::Clip {
            seed: b"t".to_vec(),
            prompt: "t".into(),
            width: 64,
            height: 36,
            seconds: 1,
            first: None,
            last: None,
        })
        .unwrap();
        Bytes::from(mp4)
    }

    fn service(
        dir: &std::path::Path,
        answers: Vec<Result<VideoPoll, BackendError>>,
    ) -> (Arc<Service>, Arc<Scripted>) {
        let store = LocalStore::open(dir).unwrap();
        let url = Url::parse("http://127.0.0.1:9").unwrap();
        let provider = Arc::new(Scripted {
            url: url.clone(),
            answers: Mutex::new(answers.into()),
            polls: Mutex::default(),
            mp4: clip(),
        });
        let images = Arc::new(CliProxyImages::new(
            BackendConfig {
                base_url: url,
                api_key: None,
                timeout: Duration::from_secs(1),
                retry: RetryPolicy::default(),
            },
            reqwest::Client::new(),
        ));
        let service = Service::new(ServiceParts {
            images,
            library: store.library(),
            generation: GenerationSettings {
                default_model: crate::domain::DEFAULT_IMAGE_MODEL,
                fallback_model: None,
                batch_concurrency: 1,
                generation_concurrency: 1,
            },
            results: ResultSettings {
                preview: PreviewMode::Preview,
            },
            cleanup: CleanupSettings::default(),
            edit: EditSettings {
                input_max_bytes: 1 << 20,
                input_max_pixels: 1 << 20,
                mask_feather: 0,
                outpaint_max_extend: 16,
            },
            videos: VideoAccess::Ready(provider.clone()),
            jobs: store.jobs.clone(),
            video: VideoSettings {
                default_model: "veo-3.1-generate-preview",
                poll_interval: Duration::from_secs(10),
                deadline: Duration::from_secs(1200),
                lease: Duration::from_secs(30),
            },
            spend: Default::default(),
            usage: store.usage.clone(),
            confirm: Default::default(),
        });
        (Arc::new(service), provider)
    }

    fn job(provider_ref: Option<&str>) -> Job {
        let now = Utc::now();
        let mut params = Map::new();
        params.insert("prompt".into(), json!("waves"));
        params.insert("aspect_ratio".into(), json!("16:9"));
        params.insert("resolution".into(), json!("720p"));
        Job {
            id: JobId::new(now),
            operation: "generate_video".into(),
            provider: "gemini".into(),
            model: "veo-3.1-generate-preview".into(),
            state: JobState::Running,
            params,
            provider_ref: provider_ref.map(str::to_owned),
            progress: None,
            attempts: 1,
            error: None,
            result: None,
            sample_uri: None,
            created: now,
            updated: now,
            deadline: now + chrono::Duration::minutes(20),
        }
    }

    /// Several processes share one store: a job whose lease another live
    /// process holds is not polled here; once that process's lease runs
    /// out (it died), this one takes the job over, finishes it under the
    /// name made from the job's id, and gives the lease back.
    #[tokio::test]
    async fn a_job_another_process_drives_is_left_alone_until_its_lease_runs_out() {
        let dir = tempfile::tempdir().unwrap();
        let answers = vec![Ok(VideoPoll::Done(VideoSample::Uri(
            "https://example.invalid/v.mp4".into(),
        )))];
        let (service, provider) = service(dir.path(), answers);
        let job = job(Some("models/m/operations/1"));
        service.jobs.create(&job).await.unwrap();
        let far = Utc::now() + chrono::Duration::hours(1);
        assert_eq!(service.jobs.claim("other", far, 10).await.unwrap().len(), 1);
        service.advance_jobs().await.unwrap();
        assert!(
            provider.polls.lock().unwrap().is_empty(),
            "a job another process drives is not polled here"
        );
        assert_eq!(
            service.jobs.get(&job.id).await.unwrap().unwrap().state,
            JobState::Running
        );
        // The other process died: its lease ran out.
        assert!(
            service
                .jobs
                .renew(&job.id, "other", Utc::now() - chrono::Duration::seconds(1))
                .await
                .unwrap()
        );
        service.advance_jobs().await.unwrap();
        assert_eq!(provider.polls.lock().unwrap().len(), 1);
        let done = service.jobs.get(&job.id).await.unwrap().unwrap();
        assert_eq!(done.state, JobState::Succeeded);
        assert_eq!(done.result, Some(video_name(&job.id, "mp4")));
        assert!(
            !service
                .jobs
                .renew(&job.id, &service.owner, far)
                .await
                .unwrap(),
            "the lease was given back"
        );
    }

    /// Two processes that both come to save one job's video (a lease ran
    /// out under a slow one) leave one file, which both report.
    #[tokio::test]
    async fn two_processes_saving_one_job_leave_one_file() {
        let dir = tempfile::tempdir().unwrap();
        let (one, _) = service(dir.path(), vec![]);
        let (two, _) = service(dir.path(), vec![]);
        let job = job(Some("models/m/operations/1"));
        one.jobs.create(&job).await.unwrap();
        let (a, b) = tokio::join!(one.save_video(&job, clip()), two.save_video(&job, clip()));
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(a.id, b.id);
        assert_eq!(a.id, video_name(&job.id, "mp4"));
        let page = one.library.list(&ListQuery::default()).await.unwrap();
        assert_eq!(page.total, 1);
        let files = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".mp4"))
            .count();
        assert_eq!(files, 1);
    }

    /// A slow answer to one poll is not the end of a job that takes
    /// minutes: it is polled again, and finishes.
    #[tokio::test(start_paused = true)]
    async fn a_poll_that_times_out_is_tried_again() {
        let dir = tempfile::tempdir().unwrap();
        let answers = vec![
            Err(BackendError::Timeout {
                after: Duration::from_secs(120),
            }),
            Ok(VideoPoll::Done(VideoSample::Uri(
                "https://example.invalid/v.mp4".into(),
            ))),
        ];
        let (service, provider) = service(dir.path(), answers);
        let job = job(Some("models/m/operations/1"));
        service.jobs.create(&job).await.unwrap();
        service.drive(job.clone(), &CancellationToken::new()).await;
        assert_eq!(provider.polls.lock().unwrap().len(), 2);
        let done = service.jobs.get(&job.id).await.unwrap().unwrap();
        assert_eq!(done.state, JobState::Succeeded, "{:?}", done.error);
    }

    #[tokio::test(start_paused = true)]
    async fn polls_back_off_honour_retry_after_and_save_once() {
        let dir = tempfile::tempdir().unwrap();
        let answers = vec![
            Ok(VideoPoll::Running {
                progress: Some(0.1),
            }),
            Ok(VideoPoll::Running { progress: None }),
            Err(BackendError::RateLimited {
                retry_after: Some(Duration::from_secs(30)),
                message: "slow down".into(),
            }),
            Ok(VideoPoll::Running {
                progress: Some(0.6),
            }),
            Ok(VideoPoll::Done(VideoSample::Uri(
                "https://example.invalid/v.mp4".into(),
            ))),
        ];
        let (service, provider) = service(dir.path(), answers);
        let job = job(Some("models/m/operations/1"));
        service.jobs.create(&job).await.unwrap();
        let start = Instant::now();
        service.drive(job.clone(), &CancellationToken::new()).await;
        let at: Vec<f64> = provider
            .polls
            .lock()
            .unwrap()
            .iter()
            .map(|t| (*t - start).as_secs_f64())
            .collect();
        let gaps: Vec<f64> = std::iter::once(at[0])
            .chain(at.windows(2).map(|w| w[1] - w[0]))
            .collect();
        // 10 s first, ×1.5 each poll, 30 s as Retry-After asked, then capped
        // at 4 × 10 s.
        assert_eq!(gaps, [10.0, 15.0, 22.5, 30.0, 40.0], "{at:?}");
        let done = service.jobs.get(&job.id).await.unwrap().unwrap();
        assert_eq!(done.state, JobState::Succeeded);
        assert_eq!(done.progress, Some(1.0));
        assert_eq!(
            done.sample_uri.as_deref(),
            Some("https://example.invalid/v.mp4")
        );
        let file = done.result.unwrap();
        let record = service.library.get(&file).await.unwrap().unwrap();
        assert_eq!(record.kind, MediaKind::Video);
        assert_eq!(record.fact("job_id"), Some(job.id.as_str()));
        assert_eq!((record.width, record.height), (Some(64), Some(36)));
        assert_eq!(record.metadata["duration_seconds"], json!(1.0));

        // Run again (as after a crash before the job was marked done): the
        // saved file is found by its job, nothing is polled or saved again.
        let mut again = job.clone();
        again.state = JobState::Running;
        service.jobs.update(&again).await.unwrap();
        let polls = provider.polls.lock().unwrap().len();
        service.drive(again, &CancellationToken::new()).await;
        assert_eq!(provider.polls.lock().unwrap().len(), polls);
        let page = service.library.list(&ListQuery::default()).await.unwrap();
        assert_eq!(page.total, 1);
        let done = service.jobs.get(&job.id).await.unwrap().unwrap();
        assert_eq!((done.state, done.result), (JobState::Succeeded, Some(file)));
    }

    #[tokio::test(start_paused = true)]
    async fn failures_end_jobs_with_their_codes() {
        let dir = tempfile::tempdir().unwrap();
        let answers = vec![
            Ok(VideoPoll::Filtered {
                reasons: vec!["policy".into()],
            }),
            Ok(VideoPoll::Failed {
                message: "internal".into(),
            }),
            Err(BackendError::AuthFailed {
                status: 403,
                message: "no".into(),
            }),
        ];
        let (service, _) = service(dir.path(), answers);
        for code in ["CONTENT_BLOCKED", "GENERATION_FAILED", "AUTH_FAILED"] {
            let job = job(Some("models/m/operations/1"));
            service.jobs.create(&job).await.unwrap();
            service.drive(job.clone(), &CancellationToken::new()).await;
            let ended = service.jobs.get(&job.id).await.unwrap().unwrap();
            assert_eq!(ended.state, JobState::Failed);
            assert_eq!(ended.error.unwrap().code, code);
        }
        // Still being submitted by the process that started it (queued,
        // young): left alone, not failed under that process's feet.
        let mut submitting = job(None);
        submitting.state = JobState::Queued;
        service.jobs.create(&submitting).await.unwrap();
        service
            .drive(submitting.clone(), &CancellationToken::new())
            .await;
        let untouched = service.jobs.get(&submitting.id).await.unwrap().unwrap();
        assert_eq!((untouched.state, untouched.error), (JobState::Queued, None));
        // Queued for longer than any submission takes: its process died.
        let mut abandoned = job(None);
        abandoned.state = JobState::Queued;
        abandoned.created -= chrono::Duration::minutes(11);
        service.jobs.create(&abandoned).await.unwrap();
        service
            .drive(abandoned.clone(), &CancellationToken::new())
            .await;
        let ended = service.jobs.get(&abandoned.id).await.unwrap().unwrap();
        assert_eq!(ended.state, JobState::Failed);
        // Accepted by nobody: failed at once, nothing polled.
        let job = job(None);
        service.jobs.create(&job).await.unwrap();
        service.drive(job.clone(), &CancellationToken::new()).await;
        let ended = service.jobs.get(&job.id).await.unwrap().unwrap();
        assert!(
            ended
                .error
                .unwrap()
                .message
                .contains("before the provider accepted")
        );
        assert_eq!(
            service
                .library
                .list(&ListQuery::default())
                .await
                .unwrap()
                .total,
            0
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_job_stops_and_saves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let answers = vec![
            Ok(VideoPoll::Running { progress: None }),
            Ok(VideoPoll::Done(VideoSample::Uri("https://x/v.mp4".into()))),
        ];
        let (service, provider) = service(dir.path(), answers);
        let job = job(Some("models/m/operations/1"));
        service.jobs.create(&job).await.unwrap();
        let driver = {
            let service = service.clone();
            let job = job.clone();
            tokio::spawn(async move { service.drive(job, &CancellationToken::new()).await })
        };
        // After the first poll, before the second.
        tokio::time::sleep(Duration::from_secs(12)).await;
        assert_eq!(provider.polls.lock().unwrap().len(), 1);
        let cancelled = service.cancel_job(job.id.as_str()).await.unwrap();
        assert_eq!(cancelled.state, JobState::Cancelled);
        driver.await.unwrap();
        assert_eq!(provider.polls.lock().unwrap().len(), 1);
        let ended = service.jobs.get(&job.id).await.unwrap().unwrap();
        assert_eq!(ended.state, JobState::Cancelled);
        assert_eq!(
            service
                .library
                .list(&ListQuery::default())
                .await
                .unwrap()
                .total,
            0
        );
    }
}
