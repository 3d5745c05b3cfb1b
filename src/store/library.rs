//! The library's protocols, written once over the ports so every storage
//! implementation gets the same guarantees:
//!
//! - **save**: the sidecar (created only if absent: it reserves the name),
//!   then the bytes (durable, never overwriting), then the catalog row, then
//!   the change is announced. Every stored file has its metadata: a crash
//!   between the two writes leaves a sidecar without a file, which reconcile
//!   removes, never a file that would pass for one added by hand. A failure
//!   undoes what was written; a save, once started, finishes even if its
//!   caller goes away.
//! - **delete**: the row is marked, the file and sidecar go, the row goes.
//!   Reconcile finishes a delete a crash interrupted.
//! - **reconcile**: the catalog is brought in line with the files (files
//!   added by hand are catalogued, rows of vanished files dropped, unfinished
//!   writes and orphan sidecars removed).
//! - **clean-up**: oldest first, by age and by total size.

use std::collections::HashSet;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use tokio::sync::RwLock;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{
    Catalog, Change, ChangeFeed, ListQuery, MediaId, MediaKind, MediaRecord, MediaStore, NameSpec,
    NewMedia, ObjectMeta, Page, Rendition, StoreError, Subscription,
};

/// Names a save tries before giving up (a name is taken only when another
/// file got the same millisecond and random suffix).
const NAME_TRIES: usize = 8;

/// What a reconcile changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Files found without a catalog row, now catalogued.
    pub added: usize,
    /// Rows whose file had vanished (or whose delete was interrupted), now dropped.
    pub removed: usize,
    /// Unfinished writes removed.
    pub temp_removed: usize,
    /// Sidecars whose media file was gone, deleted.
    pub sidecars_removed: usize,
}

/// The media library over its ports. Cheap to clone.
#[derive(Clone)]
pub struct Library {
    media: Arc<dyn MediaStore>,
    catalog: Arc<dyn Catalog>,
    feed: Arc<dyn ChangeFeed>,
    /// Saves share it; reconcile takes it alone, so it never mistakes the
    /// sidecar of a save under way for an orphan.
    gate: Arc<RwLock<()>>,
    /// Saves and deletes under way: they finish even if their caller goes
    /// away, and [`Library::settle`] waits for them before the process ends.
    tasks: TaskTracker,
    /// How young a row without its file, or a sidecar without its file,
    /// may be and still be left alone by reconcile: zero when this process
    /// is the only writer (the gate covers its own saves); with other
    /// processes saving into the same store, theirs may be half-way.
    grace: Duration,
}

/// The reconcile grace of a store other processes write to as well: far
/// longer than a save takes from its sidecar to its catalog row.
pub const SHARED_RECONCILE_GRACE: Duration = Duration::from_secs(600);

impl Library {
    pub fn new(
        media: Arc<dyn MediaStore>,
        catalog: Arc<dyn Catalog>,
        feed: Arc<dyn ChangeFeed>,
    ) -> Self {
        Self {
            media,
            catalog,
            feed,
            gate: Arc::default(),
            tasks: TaskTracker::new(),
            grace: Duration::ZERO,
        }
    }

    /// For a store other processes save into too (replicas): reconcile
    /// runs in one process at a time and leaves alone what is younger than
    /// [`SHARED_RECONCILE_GRACE`] (another process's save may be half-way).
    pub fn shared_with_other_processes(mut self) -> Self {
        self.grace = SHARED_RECONCILE_GRACE;
        self
    }

    /// Waits for the saves and deletes under way (and refuses none: the
    /// library stays usable). Call before the process ends.
    pub async fn settle(&self) {
        self.tasks.close();
        self.tasks.wait().await;
        self.tasks.reopen();
    }

    /// Listens for library changes (saves, deletes, clean-up, reconcile).
    pub fn subscribe(&self) -> Subscription {
        self.feed.subscribe()
    }

    /// Where a file is on this machine's disk, if the store has a disk.
    pub fn local_path(&self, id: &MediaId) -> Option<PathBuf> {
        self.media.local_path(id)
    }

    /// The library name of the file at `path` on this machine, if it is one.
    pub fn local_id(&self, path: &std::path::Path) -> Option<MediaId> {
        self.media.local_id(path)
    }

    /// A URL to download `id` from the store itself for `ttl` (a presigned
    /// object storage URL), if the store makes them.
    pub async fn download_url(
        &self,
        id: &MediaId,
        ttl: Duration,
    ) -> Result<Option<String>, StoreError> {
        self.media.download_url(id, ttl).await
    }

    /// Adds a file with a new unique name: bytes, sidecar, row, announcement.
    pub async fn save(&self, new: NewMedia) -> Result<MediaRecord, StoreError> {
        let this = self.clone();
        // Spawned: a caller that stops waiting cannot leave half a save.
        self.tasks
            .spawn(async move { this.save_now(new).await })
            .await
            .map_err(|e| StoreError::Task(e.to_string()))?
    }

    async fn save_now(&self, new: NewMedia) -> Result<MediaRecord, StoreError> {
        let _shared = self.gate.read().await;
        // Millisecond precision: what the sidecar and catalog keep.
        let now = Utc::now();
        let created = DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now);
        let name = NameSpec {
            prefix: new.kind.as_str(),
            created,
            extension: new.extension.clone(),
        };
        for _ in 0..NAME_TRIES {
            let id = name.candidate();
            let record = record_of(&new, &id, created);
            // The sidecar first: it reserves the name, and a file never
            // exists without its metadata. A crash before the file is
            // stored leaves a sidecar alone, which reconcile removes.
            if !self
                .media
                .put_sidecar_if_absent(&id, record.sidecar_json())
                .await?
            {
                continue;
            }
            let stored = match self.media.put_if_absent(&id, new.bytes.clone()).await {
                // A file of that name with no sidecar (one added by hand):
                // give the name back and take another.
                Ok(false) => {
                    self.media.delete_sidecar(&id).await?;
                    continue;
                }
                Ok(true) => self.catalog.insert(&record).await,
                Err(e) => Err(e),
            };
            if let Err(e) = stored {
                // Leave nothing half-made behind: the file first, so that
                // a crash here too leaves only a sidecar.
                let _ = self.media.delete(&id).await;
                let _ = self.media.delete_sidecar(&id).await;
                return Err(e);
            }
            self.feed.publish(Change::Added(id)).await;
            return Ok(record);
        }
        Err(StoreError::NameCollision)
    }

    /// Saves `new` under exactly `id`, or finds it saved there already:
    /// for work that may run more than once — a video job taken over by
    /// another process after its lease ran out, or run again after a crash
    /// — so that however many times (and wherever) it runs, one file
    /// results. Unlike [`Library::save`] it never picks another name: a
    /// sidecar already there is kept (the first writer's record is the
    /// record), and a file already there is the file.
    pub async fn save_once(&self, id: MediaId, new: NewMedia) -> Result<MediaRecord, StoreError> {
        let this = self.clone();
        self.tasks
            .spawn(async move { this.save_once_now(id, new).await })
            .await
            .map_err(|e| StoreError::Task(e.to_string()))?
    }

    async fn save_once_now(&self, id: MediaId, new: NewMedia) -> Result<MediaRecord, StoreError> {
        let _shared = self.gate.read().await;
        let now = Utc::now();
        let created = DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now);
        let size = new.bytes.len() as u64;
        let mut record = record_of(&new, &id, created);
        if !self
            .media
            .put_sidecar_if_absent(&id, record.sidecar_json())
            .await?
        {
            // An earlier run reserved the name: its record stands.
            match self
                .media
                .get_sidecar(&id)
                .await?
                .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            {
                Some(Value::Object(map)) => {
                    if let Some(earlier) = MediaRecord::from_sidecar(&id, size, map) {
                        record = earlier;
                    }
                }
                _ => {
                    self.media
                        .put_sidecars(vec![(id.clone(), record.sidecar_json())])
                        .await?
                }
            }
        }
        let stored = self.media.put_if_absent(&id, new.bytes).await?;
        if !stored && let Some(meta) = self.media.head(&id).await? {
            record.size_bytes = meta.size;
        }
        self.catalog.insert(&record).await?;
        // Also when an earlier run stored the file: its row may be new.
        self.feed.publish(Change::Added(id)).await;
        Ok(record)
    }

    /// Whether the catalog's database answers and the media store can be
    /// reached right now (`/readyz`, `doctor`).
    pub async fn ready(&self) -> Result<(), StoreError> {
        self.catalog.ready().await?;
        self.media.ready().await
    }

    pub async fn get(&self, id: &MediaId) -> Result<Option<MediaRecord>, StoreError> {
        self.catalog.get(id).await
    }

    pub async fn list(&self, q: &ListQuery) -> Result<Page, StoreError> {
        self.catalog.list(q).await
    }

    /// Files made from `id`.
    pub async fn derived_from(&self, id: &MediaId) -> Result<Vec<MediaId>, StoreError> {
        self.catalog.derived_from(id).await
    }

    /// The whole file.
    pub async fn read(&self, id: &MediaId) -> Result<Bytes, StoreError> {
        self.media.get(id).await
    }

    /// `range` of a file's bytes (shorter at the end of the file).
    pub async fn read_range(&self, id: &MediaId, range: Range<u64>) -> Result<Bytes, StoreError> {
        self.media.get_range(id, range).await
    }

    /// The first `max` bytes of a file (enough for its header).
    pub async fn read_head(&self, id: &MediaId, max: u64) -> Result<Bytes, StoreError> {
        self.media.get_range(id, 0..max).await
    }

    /// The cached rendition of `id`, if there is one.
    pub async fn rendition(
        &self,
        id: &MediaId,
        kind: Rendition,
    ) -> Result<Option<Bytes>, StoreError> {
        self.media.get_rendition(id, kind).await
    }

    /// Caches a rendition of `id`, unless `id` is no longer catalogued (a
    /// delete removes renditions with the sidecar; this keeps one made
    /// while a delete ran from outliving its file).
    pub async fn put_rendition(
        &self,
        id: &MediaId,
        kind: Rendition,
        bytes: Bytes,
    ) -> Result<(), StoreError> {
        if self.catalog.get(id).await?.is_none() {
            return Ok(());
        }
        self.media.put_rendition(id, kind, bytes).await
    }

    /// Size and time of the stored file now.
    pub async fn stat(&self, id: &MediaId) -> Result<Option<ObjectMeta>, StoreError> {
        self.media.head(id).await
    }

    /// Deletes a catalogued file, its sidecar and its row; `Ok(false)` if
    /// the catalog does not know `id`. Crash-safe: see the module comment.
    pub async fn delete(&self, id: &MediaId) -> Result<bool, StoreError> {
        let this = self.clone();
        let id = id.clone();
        self.tasks
            .spawn(async move {
                if !this.catalog.mark_deleting(&id).await? {
                    return Ok(false);
                }
                // Hidden from reads from here on, even if a removal fails.
                this.feed.publish(Change::Removed(id.clone())).await;
                this.finish_delete(&id).await?;
                Ok(true)
            })
            .await
            .map_err(|e| StoreError::Task(e.to_string()))?
    }

    async fn finish_delete(&self, id: &MediaId) -> Result<(), StoreError> {
        self.media.delete(id).await?;
        self.media.delete_sidecar(id).await?;
        self.catalog.remove(id).await
    }

    /// Automatic clean-up: deletes files older than `max_age`, then the
    /// oldest files until the library is at most `max_total_bytes`. Returns
    /// what was deleted; each delete is the crash-safe [`Library::delete`].
    /// `stop` ends it between two deletes (the rest waits for the next run).
    pub async fn cleanup(
        &self,
        max_age: Option<Duration>,
        max_total_bytes: Option<u64>,
        now: DateTime<Utc>,
        stop: &CancellationToken,
    ) -> Result<Vec<MediaId>, StoreError> {
        if max_age.is_none() && max_total_bytes.is_none() {
            return Ok(Vec::new());
        }
        // One process at a time: two replicas each counting the library's
        // size and deleting down to the limit would delete twice as much.
        let Some(_exclusive) = self.catalog.try_exclusive("cleanup").await? else {
            tracing::info!("another process is cleaning up the library; skipping this round");
            return Ok(Vec::new());
        };
        let files = self.catalog.oldest_first().await?;
        let mut total: u64 = files.iter().map(|(_, size, _)| size).sum();
        let cutoff = max_age.map(|age| {
            now.timestamp_millis()
                .saturating_sub(i64::try_from(age.as_millis()).unwrap_or(i64::MAX))
        });
        let mut deleted = Vec::new();
        for (id, size, created_ms) in files {
            if stop.is_cancelled() {
                break;
            }
            let too_old = cutoff.is_some_and(|c| created_ms < c);
            let too_big = max_total_bytes.is_some_and(|max| total > max);
            if !too_old && !too_big {
                // Oldest first: once neither limit applies, none will further on.
                break;
            }
            if self.delete(&id).await? {
                total = total.saturating_sub(size);
                deleted.push(id);
            }
        }
        Ok(deleted)
    }

    /// Brings the catalog in line with the stored files: catalogues files
    /// added by hand, drops rows whose files vanished, finishes interrupted
    /// deletes, removes unfinished writes (of dead writers, or older than
    /// `stale_after`) and orphan sidecars.
    pub async fn reconcile(&self, stale_after: Duration) -> Result<ReconcileReport, StoreError> {
        let _alone = self.gate.write().await;
        // One process at a time; if another is at it, its result will do.
        let Some(_exclusive) = self.catalog.try_exclusive("reconcile").await? else {
            tracing::info!("another process is reconciling the library; skipping");
            return Ok(ReconcileReport::default());
        };
        let young = |created: DateTime<Utc>| {
            !self.grace.is_zero()
                && Utc::now()
                    .signed_duration_since(created)
                    .to_std()
                    .unwrap_or_default()
                    < self.grace
        };
        let mut report = ReconcileReport {
            temp_removed: self.media.sweep_incomplete(stale_after).await?,
            ..ReconcileReport::default()
        };
        for id in self.catalog.deleting().await? {
            self.finish_delete(&id).await?;
            report.removed += 1;
        }
        let stored = self.media.list().await?;
        let names: HashSet<&MediaId> = stored.iter().map(|e| &e.id).collect();
        let known = self.catalog.all_ids().await?;
        let known_set: HashSet<&MediaId> = known.iter().collect();
        for id in &known {
            if !names.contains(id) {
                if !self.grace.is_zero() {
                    // Saved by another process since the listing, or still
                    // being saved there: leave it.
                    if self.media.head(id).await?.is_some() {
                        continue;
                    }
                    if let Some(r) = self.catalog.get(id).await?
                        && young(r.created)
                    {
                        continue;
                    }
                }
                self.catalog.remove(id).await?;
                let _ = self.media.delete_sidecar(id).await;
                report.removed += 1;
            }
        }
        let mut new_records = Vec::new();
        let mut new_sidecars = Vec::new();
        for entry in stored.iter().filter(|e| !known_set.contains(&e.id)) {
            if let Some((record, sidecar)) = self.record_for_unknown(entry).await? {
                new_records.push(record);
                new_sidecars.extend(sidecar.map(|s| (entry.id.clone(), s)));
            }
        }
        report.added = new_records.len();
        // The sidecars made here hold only what the files say; a lost one
        // is made again by the next reconcile, so they share one sync.
        self.media.put_sidecars(new_sidecars).await?;
        self.catalog.insert_many(new_records).await?;
        for id in self.media.list_sidecars().await? {
            if !names.contains(&id) {
                if !self.grace.is_zero() && self.sidecar_is_young(&id, &young).await? {
                    continue;
                }
                self.media.delete_sidecar(&id).await?;
                report.sidecars_removed += 1;
            }
        }
        if report.added + report.removed > 0 {
            self.feed.publish(Change::Rescanned).await;
        }
        Ok(report)
    }

    /// Whether the sidecar of `id` says it was made within the grace (a
    /// save under way in another process reserved the name).
    async fn sidecar_is_young(
        &self,
        id: &MediaId,
        young: &impl Fn(DateTime<Utc>) -> bool,
    ) -> Result<bool, StoreError> {
        if self.media.head(id).await?.is_some() {
            return Ok(true); // its file arrived since the listing
        }
        let created = self
            .media
            .get_sidecar(id)
            .await?
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .and_then(|v| {
                v.get("created")
                    .and_then(Value::as_str)
                    .and_then(|c| DateTime::parse_from_rfc3339(c).ok())
            });
        Ok(created.is_some_and(|c| young(c.with_timezone(&Utc))))
    }

    /// A record for a file that has no row: from its sidecar if it has a
    /// good one, else from what the file itself says (and the sidecar to
    /// write). `None` for files that are not media.
    async fn record_for_unknown(
        &self,
        entry: &ObjectMeta,
    ) -> Result<Option<(MediaRecord, Option<Bytes>)>, StoreError> {
        if let Some(Value::Object(map)) = self
            .media
            .get_sidecar(&entry.id)
            .await?
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            && let Some(r) = MediaRecord::from_sidecar(&entry.id, entry.size, map)
        {
            return Ok(Some((r, None)));
        }
        let head = self.media.get_range(&entry.id, 0..64 * 1024).await?;
        let mut extra = Map::new();
        let (mime, width, height) = match crate::media::probe(&head) {
            Ok(info) => (
                info.mime_type.to_owned(),
                Some(info.width),
                Some(info.height),
            ),
            Err(_) if crate::media::video::is_mp4(&head) => {
                // An MP4's size and length may sit at its end: read it all.
                let whole = self.media.get(&entry.id).await?;
                match crate::media::video::probe_mp4(&whole) {
                    Ok(v) => {
                        extra.insert(
                            "duration_seconds".into(),
                            json!((v.duration_seconds * 1000.0).round() / 1000.0),
                        );
                        (v.mime_type.to_owned(), Some(v.width), Some(v.height))
                    }
                    Err(_) => ("video/mp4".to_owned(), None, None),
                }
            }
            Err(_) => match mime_from_extension(entry.id.as_str()) {
                Some(m) => (m.to_owned(), None, None),
                None => return Ok(None), // not media: leave it alone
            },
        };
        extra.insert("added_by_hand".into(), json!(true));
        let record = MediaRecord {
            id: entry.id.clone(),
            kind: MediaKind::from_mime(&mime),
            mime_type: mime,
            size_bytes: entry.size,
            width,
            height,
            created: entry.modified,
            prompt: None,
            model: None,
            source: None,
            metadata: Map::new(),
        }
        .with_sidecar(extra);
        let sidecar = record.sidecar_json();
        Ok(Some((record, Some(sidecar))))
    }
}

/// The record a save of `new` under `id` writes (sidecar and row).
fn record_of(new: &NewMedia, id: &MediaId, created: DateTime<Utc>) -> MediaRecord {
    MediaRecord {
        id: id.clone(),
        kind: new.kind,
        mime_type: new.mime_type.clone(),
        size_bytes: new.bytes.len() as u64,
        width: new.width,
        height: new.height,
        created,
        prompt: new.prompt.clone(),
        model: new.model.clone(),
        source: new.source.clone(),
        metadata: Map::new(),
    }
    .with_sidecar(new.metadata.clone())
}

fn mime_from_extension(name: &str) -> Option<&'static str> {
    let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match ext.as_str() {
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "mov" => "video/quicktime",
        _ => return None,
    })
}
