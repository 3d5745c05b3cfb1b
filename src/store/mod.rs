//! The media library's storage, behind four narrow async ports:
//!
//! - [`MediaStore`]: media bytes and their JSON sidecars, by name;
//! - [`Catalog`]: the searchable index of records (and lineage), by name;
//! - [`JobStore`]: durable long-running jobs (video), by id;
//! - [`ChangeFeed`]: "the library changed" events for every listener.
//!
//! No path crosses a port (a local store may offer [`MediaStore::local_path`]
//! for results that show where a file is on disk), so object storage and a
//! database server can implement them beside the embedded default in
//! [`local`] (a directory + SQLite). [`Library`] holds the protocols written
//! once over the ports: the atomic save, the crash-safe delete, reconcile and
//! the clean-up.
//!
//! Object storage: [`object::ObjectMedia`] keeps media and sidecars as
//! objects in an S3-compatible store (or Google Cloud Storage, Azure Blob
//! Storage) under a key prefix, in the local layout (`<name>`,
//! `metadata/<name>.json`), with conditional creates for put-if-absent and
//! presigned download URLs when asked.
//!
//! Files and sidecars are the truth; the catalog is an index that can always
//! be rebuilt from them ([`Library::reconcile`]).

mod id;
mod jobs;
mod library;
pub mod local;
pub mod object;
pub mod postgres;
mod record;
#[cfg(test)]
pub(crate) mod suite;
mod usage;

use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};

pub use id::{InvalidMediaId, MediaId, new_name};
pub use jobs::{InvalidJobId, Job, JobError, JobId, JobState};
pub use library::{Library, ReconcileReport, SHARED_RECONCILE_GRACE};
pub use record::{ListQuery, MediaKind, MediaRecord, NewMedia, Page, SortBy, timestamp};
pub use usage::{CAP_EPSILON, Cap, CapHit, HoldKey, Outcome, UsageEntry, first_cap_hit};

/// The ports one process runs on, whichever implementations they are:
/// the local default ([`local::LocalStore`]) or shared servers.
#[derive(Clone)]
pub struct Stores {
    pub media: Arc<dyn MediaStore>,
    pub catalog: Arc<dyn Catalog>,
    pub jobs: Arc<dyn JobStore>,
    pub usage: Arc<dyn UsageLedger>,
    pub feed: Arc<dyn ChangeFeed>,
    /// Other processes (replicas) save into the same store.
    pub shared: bool,
}

impl Stores {
    /// The library protocols over these ports.
    pub fn library(&self) -> Library {
        let library = Library::new(self.media.clone(), self.catalog.clone(), self.feed.clone());
        match self.shared {
            true => library.shared_with_other_processes(),
            false => library,
        }
    }
}

impl From<local::LocalStore> for Stores {
    fn from(l: local::LocalStore) -> Self {
        Self {
            media: l.media,
            catalog: l.catalog,
            jobs: l.jobs,
            usage: l.usage,
            feed: l.feed,
            shared: false,
        }
    }
}

/// How long a temporary upload may sit before reconcile removes it even if
/// its writer still seems alive (its process id may have been reused).
pub const STALE_TEMP_AGE: Duration = Duration::from_secs(3600);

/// A stored media file as listed: its name, size and last change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    pub id: MediaId,
    pub size: u64,
    pub modified: DateTime<Utc>,
}

/// How to make a new, unique, sortable file name; a save asks it for
/// another candidate when a name is taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameSpec {
    /// `image`, `video` …
    pub prefix: &'static str,
    pub created: DateTime<Utc>,
    /// Without the dot: `png`, `mp4`.
    pub extension: String,
}

impl NameSpec {
    pub fn candidate(&self) -> MediaId {
        new_name(self.prefix, self.created, &self.extension)
    }
}

/// Something that changed in the library, as listeners learn of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Added(MediaId),
    Removed(MediaId),
    /// Many files changed at once (reconcile), or a listener fell behind:
    /// anything may have changed.
    Rescanned,
}

/// A small file made from a stored one (the gallery's thumbnail): cached
/// beside the sidecar, removed with it, made again whenever it is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rendition {
    Thumbnail,
}

impl Rendition {
    pub const ALL: [Rendition; 1] = [Rendition::Thumbnail];

    /// How its name ends, after the media file's name.
    pub fn suffix(self) -> &'static str {
        match self {
            Self::Thumbnail => "thumb",
        }
    }
}

/// Media bytes and sidecars by name. Writes never overwrite a media file;
/// removals are idempotent.
///
/// New files are written put-if-absent (object storage: a conditional
/// create, `If-None-Match: *`), sidecar first: [`Library`] reserves a name
/// by creating its sidecar, then stores the file under it, so a file that
/// exists always has its metadata (see [`Library::save`]).
#[async_trait]
pub trait MediaStore: Send + Sync + 'static {
    /// Stores `bytes` as `id` unless a file of that name exists: then
    /// `Ok(false)` and nothing is written. When this returns `Ok(true)`, the
    /// bytes are durable.
    async fn put_if_absent(&self, id: &MediaId, bytes: Bytes) -> Result<bool, StoreError>;
    /// The whole file.
    async fn get(&self, id: &MediaId) -> Result<Bytes, StoreError>;
    /// `range` of the file's bytes (shorter at the end of the file).
    async fn get_range(&self, id: &MediaId, range: Range<u64>) -> Result<Bytes, StoreError>;
    /// Size and time of a file; `None` if there is none.
    async fn head(&self, id: &MediaId) -> Result<Option<ObjectMeta>, StoreError>;
    async fn delete(&self, id: &MediaId) -> Result<(), StoreError>;
    /// Every media file (not sidecars, catalog or unfinished writes).
    async fn list(&self) -> Result<Vec<ObjectMeta>, StoreError>;
    /// Writes the sidecar of `id` unless it has one: then `Ok(false)` and
    /// nothing is written. When this returns `Ok(true)`, it is durable.
    async fn put_sidecar_if_absent(&self, id: &MediaId, json: Bytes) -> Result<bool, StoreError>;
    /// Writes (or replaces) many sidecars that can be made again from their
    /// files (reconcile): durable as a whole at the end, not one by one.
    async fn put_sidecars(&self, items: Vec<(MediaId, Bytes)>) -> Result<(), StoreError>;
    async fn get_sidecar(&self, id: &MediaId) -> Result<Option<Bytes>, StoreError>;
    /// Removes the sidecar of `id` and every [`Rendition`] of it.
    async fn delete_sidecar(&self, id: &MediaId) -> Result<(), StoreError>;
    /// Caches a rendition of `id` (not synced: it can be made again).
    async fn put_rendition(
        &self,
        id: &MediaId,
        kind: Rendition,
        bytes: Bytes,
    ) -> Result<(), StoreError>;
    /// The cached rendition, if there is one.
    async fn get_rendition(
        &self,
        id: &MediaId,
        kind: Rendition,
    ) -> Result<Option<Bytes>, StoreError>;
    /// Names that have a sidecar.
    async fn list_sidecars(&self) -> Result<Vec<MediaId>, StoreError>;
    /// Removes unfinished writes of writers that are gone, or older than
    /// `stale_after`; returns how many.
    async fn sweep_incomplete(&self, stale_after: Duration) -> Result<usize, StoreError>;
    /// Where the file is on this machine's disk, for stores that have one.
    fn local_path(&self, _id: &MediaId) -> Option<PathBuf> {
        None
    }
    /// The name of the stored file at `path` (a canonical path on this
    /// machine), if it is one of this store's files: an input given as the
    /// path a result showed is then known as the library file it is.
    fn local_id(&self, _path: &std::path::Path) -> Option<MediaId> {
        None
    }
    /// A URL from which anyone holding it can download the file `id` for
    /// `ttl`, without going through this server (object storage: a
    /// presigned GET), when the store makes them; `None` otherwise. Makes
    /// no claim that the file exists.
    async fn download_url(
        &self,
        _id: &MediaId,
        _ttl: Duration,
    ) -> Result<Option<String>, StoreError> {
        Ok(None)
    }
    /// Whether the store can be reached and written right now (readiness
    /// checks, `doctor`): a cheap real check, not a cached answer.
    async fn ready(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// The index of records. Only `ready` rows are visible to reads; a delete
/// first marks its row so an interrupted delete can be finished.
#[async_trait]
pub trait Catalog: Send + Sync + 'static {
    /// Adds or replaces a record (as `ready`).
    async fn insert(&self, record: &MediaRecord) -> Result<(), StoreError>;
    /// Adds or replaces many records in one transaction.
    async fn insert_many(&self, records: Vec<MediaRecord>) -> Result<(), StoreError>;
    async fn get(&self, id: &MediaId) -> Result<Option<MediaRecord>, StoreError>;
    /// One page of the records matching `q`, and how many match in all.
    async fn list(&self, q: &ListQuery) -> Result<Page, StoreError>;
    /// Files made from `id` (edits, upscales, videos from images), oldest first.
    async fn derived_from(&self, id: &MediaId) -> Result<Vec<MediaId>, StoreError>;
    /// First step of a delete: hides the row from reads but keeps it.
    /// `false` if no visible row has this name.
    async fn mark_deleting(&self, id: &MediaId) -> Result<bool, StoreError>;
    /// Rows whose delete was started and not finished.
    async fn deleting(&self) -> Result<Vec<MediaId>, StoreError>;
    /// Drops the row, whatever its state.
    async fn remove(&self, id: &MediaId) -> Result<(), StoreError>;
    /// Every row's name, whatever its state.
    async fn all_ids(&self) -> Result<Vec<MediaId>, StoreError>;
    /// Every ready file, oldest first: name, size, creation time (ms).
    async fn oldest_first(&self) -> Result<Vec<(MediaId, u64, i64)>, StoreError>;
    /// Whether the database answers right now (`/readyz`, `doctor`).
    async fn ready(&self) -> Result<(), StoreError>;
    /// Takes the library-wide lock `name` unless another process holds it
    /// (`None` then), until the guard is dropped or this process dies:
    /// work that must run in one process at a time (reconcile).
    async fn try_exclusive(&self, name: &str) -> Result<Option<Exclusive>, StoreError>;
}

/// A held library-wide lock ([`Catalog::try_exclusive`]); dropping it
/// releases the lock.
pub struct Exclusive(#[allow(dead_code)] Box<dyn Send + Sync>);

impl Exclusive {
    /// A guard holding `held` (a connection, a lock file …) until dropped.
    pub fn new(held: impl Send + Sync + 'static) -> Self {
        Self(Box::new(held))
    }
}

/// Durable jobs: what was asked, where the provider's work stands, and
/// what it produced. Survives restarts.
#[async_trait]
pub trait JobStore: Send + Sync + 'static {
    /// Records a new job; an existing id is an error.
    async fn create(&self, job: &Job) -> Result<(), StoreError>;
    async fn get(&self, id: &JobId) -> Result<Option<Job>, StoreError>;
    /// Replaces the stored job with `job` (same id); `false` if unknown.
    async fn update(&self, job: &Job) -> Result<bool, StoreError>;
    /// Jobs still queued or running, oldest first: what to resume at start.
    async fn active(&self) -> Result<Vec<Job>, StoreError>;
    /// The newest jobs, newest first.
    async fn recent(&self, limit: u32) -> Result<Vec<Job>, StoreError>;
    /// Active jobs that no process drives (no lease, or its lease ran
    /// out), oldest first, at most `limit`: each is now leased to `owner`
    /// until `until`. Two processes never hold one job's lease at once, so
    /// a job is polled and saved by one process; when that process dies,
    /// its lease runs out and another takes the job over. Leases compare
    /// with the callers' clocks: processes sharing a store keep their
    /// clocks in step (NTP).
    async fn claim(
        &self,
        owner: &str,
        until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Job>, StoreError>;
    /// Extends `owner`'s lease on `id` to `until`; `false` when `owner`
    /// does not hold it any more (it ran out and another process took the
    /// job): the caller stops driving it.
    async fn renew(
        &self,
        id: &JobId,
        owner: &str,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Gives up `owner`'s lease on `id` (the job ended, or the process
    /// stops) so another may take it at once; a no-op if `owner` does not
    /// hold it.
    async fn release(&self, id: &JobId, owner: &str) -> Result<(), StoreError>;
}

/// The usage ledger: one row per backend call, kept with the catalog.
#[async_trait]
pub trait UsageLedger: Send + Sync + 'static {
    /// Adds a row.
    async fn record(&self, entry: &UsageEntry) -> Result<(), StoreError>;
    /// Settles the row of video job `job_id`: its outcome, cost and the
    /// seconds made; `false` if it has none.
    async fn settle_job(
        &self,
        job_id: &str,
        outcome: Outcome,
        cost_usd: f64,
        seconds: Option<f64>,
        error: Option<String>,
    ) -> Result<bool, StoreError>;
    /// Rows from `since` (inclusive) to `until` (exclusive), oldest first.
    async fn entries(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<UsageEntry>, StoreError>;
    /// What counts as spent from `since` on (every row's `cost_usd`).
    async fn spent_since(&self, since: DateTime<Utc>) -> Result<f64, StoreError>;
    /// Reserves `usd` if, for every cap, the cost recorded since
    /// `cap.since` plus the live holds plus `usd` stays within
    /// `cap.limit_usd` ([`first_cap_hit`]). The check and the write are
    /// one transaction, serialised against every other hold on the same
    /// ledger, so concurrent calls from any number of processes never pass
    /// a cap together. A hold still there at `expires` stops counting (its
    /// process died before settling it).
    async fn hold(
        &self,
        usd: f64,
        caps: &[Cap],
        expires: DateTime<Utc>,
    ) -> Result<Result<HoldKey, CapHit>, StoreError>;
    /// Takes `usd` off the hold `key` (removing it when nothing is left)
    /// and records `entry`, in one transaction: what a call cost moves
    /// from held to spent with no moment where it is neither. An unknown
    /// or expired key only records the entry.
    async fn settle(
        &self,
        key: &HoldKey,
        usd: f64,
        entry: Option<&UsageEntry>,
    ) -> Result<(), StoreError>;
    /// What the live holds add up to at `now`.
    async fn held(&self, now: DateTime<Utc>) -> Result<f64, StoreError>;
}

/// Library changes for every listener: in one process (a channel) or,
/// later, across replicas. Listeners that fall behind get
/// [`Change::Rescanned`] instead of what they missed.
#[async_trait]
pub trait ChangeFeed: Send + Sync + 'static {
    /// Tells every listener. Never fails the operation that changed the
    /// library; a feed that cannot deliver logs why.
    async fn publish(&self, change: Change);
    fn subscribe(&self) -> Subscription;
}

/// A listener's end of a [`ChangeFeed`].
pub struct Subscription {
    rx: tokio::sync::broadcast::Receiver<Change>,
}

impl Subscription {
    pub fn new(rx: tokio::sync::broadcast::Receiver<Change>) -> Self {
        Self { rx }
    }

    /// The next change; `None` once the feed is gone.
    pub async fn next(&mut self) -> Option<Change> {
        use tokio::sync::broadcast::error::RecvError;
        match self.rx.recv().await {
            Ok(change) => Some(change),
            Err(RecvError::Lagged(_)) => Some(Change::Rescanned),
            Err(RecvError::Closed) => None,
        }
    }

    /// Drops changes already waiting; `true` if there were any. Listeners
    /// that only care *that* something changed use it to coalesce bursts.
    pub fn drain(&mut self) -> bool {
        let mut any = false;
        while !matches!(
            self.rx.try_recv(),
            Err(tokio::sync::broadcast::error::TryRecvError::Empty
                | tokio::sync::broadcast::error::TryRecvError::Closed)
        ) {
            any = true;
        }
        any
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("file operation on `{}` failed: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("catalog `{location}` failed: {source}")]
    Database {
        /// Where the database is (a file, or a server without credentials).
        location: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("could not find a free file name after several tries")]
    NameCollision,
    #[error("job `{0}` already exists")]
    JobExists(JobId),
    #[error("the catalog lock was poisoned by a panic")]
    Poisoned,
    #[error("a storage task failed: {0}")]
    Task(String),
    /// An object storage request failed. The message names the key and
    /// the store's answer with its causes (a refused connection …), never
    /// a credential.
    #[error("object storage `{key}` failed: {}", object::error_chain(source))]
    Object {
        key: String,
        #[source]
        source: object_store::Error,
    },
    /// A storage setting cannot be used as given.
    #[error("{setting} {problem}")]
    Setting {
        setting: &'static str,
        problem: String,
    },
}

impl StoreError {
    /// Whether the error means "there is no such file".
    pub fn is_not_found(&self) -> bool {
        match self {
            Self::Io { source, .. } => source.kind() == std::io::ErrorKind::NotFound,
            Self::Object { source, .. } => matches!(source, object_store::Error::NotFound { .. }),
            _ => false,
        }
    }
}

/// Runs blocking storage work (file system, SQLite) off the async runtime.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
}
