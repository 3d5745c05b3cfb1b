//! The media library: files, JSON sidecars and the SQLite catalog.
//!
//! Files and sidecars are the truth; the catalog is an index that can always be
//! rebuilt from them ([`Store::reconcile`]). A save writes the media and its
//! sidecar atomically (temporary file, fsync, rename without clobbering, fsync
//! of the directory) and only then inserts the catalog row, so a crash at any
//! point leaves no partial file and no row for a missing file; leftovers
//! (temporary files, orphan sidecars) are cleaned by reconcile.
//!
//! Storage sits behind two narrow traits — [`MediaFiles`] (bytes by name) and
//! [`Catalog`] (records by name) — with no paths crossing them, so an object
//! store or a database server can replace the local implementations.

mod catalog;
mod files;
mod id;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

pub use catalog::{Catalog, ListQuery, SortBy, SqliteCatalog};
pub use files::{LocalFiles, MediaFiles};
pub use id::{InvalidMediaId, MediaId, new_name};

/// Image or video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaKind {
    Image,
    Video,
}

impl MediaKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::Video => "video",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "image" => Some(Self::Image),
            "video" => Some(Self::Video),
            _ => None,
        }
    }

    /// Guess from a MIME type (for files added by hand).
    pub fn from_mime(mime: &str) -> Self {
        if mime.starts_with("video/") {
            Self::Video
        } else {
            Self::Image
        }
    }
}

/// A file to add to the library.
#[derive(Debug, Clone)]
pub struct NewMedia<'a> {
    pub bytes: &'a [u8],
    pub kind: MediaKind,
    pub extension: &'a str,
    pub mime_type: &'a str,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub prompt: Option<&'a str>,
    pub model: Option<&'a str>,
    /// Written into the sidecar as-is (aspect ratio, size, operation …).
    pub metadata: Map<String, Value>,
    /// The file this one was made from (edits).
    pub source: Option<&'a MediaId>,
}

/// A catalogued file.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaRecord {
    pub id: MediaId,
    pub kind: MediaKind,
    pub mime_type: String,
    pub size_bytes: u64,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub created: DateTime<Utc>,
    pub prompt: Option<String>,
    pub model: Option<String>,
    pub source: Option<MediaId>,
    /// The whole sidecar object.
    pub metadata: Map<String, Value>,
}

impl MediaRecord {
    /// The sidecar JSON for this record.
    pub fn sidecar(&self) -> Value {
        Value::Object(self.metadata.clone())
    }

    /// Builds a record from a sidecar object; `None` if it lacks the essentials.
    fn from_sidecar(id: &MediaId, size_bytes: u64, v: Map<String, Value>) -> Option<Self> {
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        let n = |k: &str| {
            v.get(k)
                .and_then(Value::as_u64)
                .and_then(|x| u32::try_from(x).ok())
        };
        let mime_type = s("mime_type")?;
        let created = s("created")
            .and_then(|c| DateTime::parse_from_rfc3339(&c).ok())?
            .with_timezone(&Utc);
        Some(Self {
            id: id.clone(),
            kind: s("type")
                .as_deref()
                .and_then(MediaKind::parse)
                .unwrap_or_else(|| MediaKind::from_mime(&mime_type)),
            width: n("width"),
            height: n("height"),
            prompt: s("prompt"),
            model: s("model"),
            source: s("source").and_then(|x| x.parse().ok()),
            mime_type,
            size_bytes,
            created,
            metadata: v,
        })
    }
}

/// What a reconcile changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Files found without a catalog row, now catalogued.
    pub added: usize,
    /// Rows whose file had vanished, now dropped.
    pub removed: usize,
    /// Leftover temporary files deleted.
    pub temp_removed: usize,
    /// Sidecars whose media file was gone, deleted.
    pub sidecars_removed: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("file operation on `{}` failed: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("catalog `{}` failed: {source}", path.display())]
    Catalog {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("could not find a free file name after several tries")]
    NameCollision,
    #[error("the catalog lock was poisoned by a panic")]
    Poisoned,
}

/// The library: files + catalog. Cheap to clone; blocking (call from
/// `spawn_blocking`).
#[derive(Clone)]
pub struct Store {
    root: Arc<PathBuf>,
    files: Arc<dyn MediaFiles>,
    catalog: Arc<dyn Catalog>,
    /// A counter bumped whenever files are added or removed; watchers see
    /// the latest value, so bursts of changes coalesce.
    changes: Arc<tokio::sync::watch::Sender<u64>>,
}

/// Name of the catalog file inside the output directory.
pub const CATALOG_FILE: &str = "catalog.sqlite3";
/// Folder of the JSON sidecars.
pub const METADATA_DIR: &str = "metadata";

impl Store {
    /// Opens the library in `root` (creating it). Fast: no directory scan.
    pub fn open(root: &Path) -> Result<Store, StoreError> {
        let files = LocalFiles::open(root)?;
        let catalog = SqliteCatalog::open(&root.join(CATALOG_FILE))?;
        Ok(Store {
            root: Arc::new(root.to_owned()),
            files: Arc::new(files),
            catalog: Arc::new(catalog),
            changes: Arc::new(tokio::sync::watch::Sender::new(0)),
        })
    }

    /// Watches the library: the receiver is marked changed whenever files
    /// are added or removed through this store (saves, deletes, clean-up,
    /// reconcile).
    pub fn watch_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    fn changed(&self) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Absolute path of a file (local storage only).
    pub fn path_of(&self, id: &MediaId) -> PathBuf {
        self.root.join(id.as_str())
    }

    pub fn catalog(&self) -> &dyn Catalog {
        self.catalog.as_ref()
    }

    /// Saves a new file with a unique name: bytes, then sidecar, then row.
    pub fn save(&self, m: NewMedia<'_>) -> Result<MediaRecord, StoreError> {
        // Millisecond precision: what the sidecar and catalog keep.
        let now = Utc::now();
        let created = DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now);
        let prefix = m.kind.as_str();
        let mut sidecar = Map::new();
        let id = self
            .files
            .put_new(m.bytes, &mut || new_name(prefix, created, m.extension))?;
        sidecar.insert("filename".into(), json!(id.as_str()));
        sidecar.insert("type".into(), json!(m.kind.as_str()));
        sidecar.insert("mime_type".into(), json!(m.mime_type));
        sidecar.insert("file_size_bytes".into(), json!(m.bytes.len()));
        sidecar.insert("width".into(), json!(m.width));
        sidecar.insert("height".into(), json!(m.height));
        sidecar.insert(
            "created".into(),
            json!(created.to_rfc3339_opts(SecondsFormat::Millis, true)),
        );
        sidecar.insert("prompt".into(), json!(m.prompt));
        sidecar.insert("model".into(), json!(m.model));
        if let Some(src) = m.source {
            sidecar.insert("source".into(), json!(src.as_str()));
        }
        for (k, v) in m.metadata {
            sidecar.entry(k).or_insert(v);
        }
        let record = MediaRecord {
            id: id.clone(),
            kind: m.kind,
            mime_type: m.mime_type.to_owned(),
            size_bytes: m.bytes.len() as u64,
            width: m.width,
            height: m.height,
            created,
            prompt: m.prompt.map(str::to_owned),
            model: m.model.map(str::to_owned),
            source: m.source.cloned(),
            metadata: sidecar,
        };
        let undo = |e: StoreError| {
            // Leave nothing half-made behind.
            let _ = self.files.remove_sidecar(&id);
            let _ = self.files.remove(&id);
            e
        };
        let text = serde_json::to_vec_pretty(&record.sidecar()).unwrap_or_default();
        self.files.put_sidecar(&id, &text).map_err(undo)?;
        self.catalog.insert(&record).map_err(undo)?;
        self.changed();
        Ok(record)
    }

    pub fn get(&self, id: &MediaId) -> Result<Option<MediaRecord>, StoreError> {
        self.catalog.get(id)
    }

    pub fn list(&self, q: &ListQuery) -> Result<(Vec<MediaRecord>, u64), StoreError> {
        self.catalog.list(q)
    }

    pub fn derived_from(&self, id: &MediaId) -> Result<Vec<MediaId>, StoreError> {
        self.catalog.derived_from(id)
    }

    /// The whole file, read without following a symbolic link.
    pub fn read(&self, id: &MediaId) -> Result<Vec<u8>, StoreError> {
        self.files.read(id)
    }

    /// The first bytes of a file (its header), without following links.
    pub fn read_head(&self, id: &MediaId, max: usize) -> Result<Vec<u8>, StoreError> {
        self.files.read_head(id, max)
    }

    /// Deletes a catalogued file, its sidecar and its row. All or nothing
    /// across crashes: the row is marked first, then the files go, then the
    /// row; reconcile finishes a delete that was interrupted. `Ok(false)` if
    /// the catalog does not know `id`.
    pub fn delete(&self, id: &MediaId) -> Result<bool, StoreError> {
        if !self.catalog.mark_deleting(id)? {
            return Ok(false);
        }
        // Hidden from reads from here on, even if the removal fails.
        self.changed();
        self.finish_delete(id)?;
        Ok(true)
    }

    fn finish_delete(&self, id: &MediaId) -> Result<(), StoreError> {
        self.files.remove(id)?;
        self.files.remove_sidecar(id)?;
        self.catalog.remove(id)
    }

    /// Automatic clean-up: deletes files older than `max_age`, then the
    /// oldest files until the library is at most `max_total_bytes`. Returns
    /// what was deleted. Each delete is the crash-safe [`Store::delete`].
    pub fn cleanup(
        &self,
        max_age: Option<Duration>,
        max_total_bytes: Option<u64>,
        now: DateTime<Utc>,
    ) -> Result<Vec<MediaId>, StoreError> {
        if max_age.is_none() && max_total_bytes.is_none() {
            return Ok(Vec::new());
        }
        let files = self.catalog.oldest_first()?;
        let mut total: u64 = files.iter().map(|(_, size, _)| size).sum();
        let cutoff = max_age.map(|age| {
            now.timestamp_millis()
                .saturating_sub(i64::try_from(age.as_millis()).unwrap_or(i64::MAX))
        });
        let mut deleted = Vec::new();
        for (id, size, created_ms) in files {
            let too_old = cutoff.is_some_and(|c| created_ms < c);
            let too_big = max_total_bytes.is_some_and(|max| total > max);
            if !too_old && !too_big {
                // Oldest first: once neither limit applies, none will further on.
                break;
            }
            if self.delete(&id)? {
                total = total.saturating_sub(size);
                deleted.push(id);
            }
        }
        Ok(deleted)
    }

    /// Brings the catalog in line with the directory: catalogues files added by
    /// hand, drops rows whose files vanished, removes temporary files left by
    /// dead writers (or older than `stale_after`) and orphan sidecars.
    pub fn reconcile(&self, stale_after: Duration) -> Result<ReconcileReport, StoreError> {
        let mut report = ReconcileReport {
            temp_removed: self.files.remove_stale_temp(stale_after)?,
            ..ReconcileReport::default()
        };
        for id in self.catalog.deleting()? {
            self.finish_delete(&id)?;
            report.removed += 1;
        }
        let on_disk = self.files.list()?;
        let names: std::collections::HashSet<&MediaId> = on_disk.iter().map(|e| &e.id).collect();
        let known = self.catalog.all_ids()?;
        let known_set: std::collections::HashSet<&MediaId> = known.iter().collect();
        for id in &known {
            if !names.contains(id) {
                self.catalog.remove(id)?;
                let _ = self.files.remove_sidecar(id);
                report.removed += 1;
            }
        }
        let mut new_records = Vec::new();
        let mut new_sidecars = Vec::new();
        for entry in &on_disk {
            if known_set.contains(&entry.id) {
                continue;
            }
            if let Some((record, sidecar)) = self.record_for_unknown(entry)? {
                new_records.push(record);
                new_sidecars.extend(sidecar.map(|s| (entry.id.clone(), s)));
            }
        }
        report.added = new_records.len();
        // The sidecars made here hold only what the files say; a lost one
        // is made again by the next reconcile, so they share one sync.
        self.files.put_sidecars_batch(&new_sidecars)?;
        self.catalog.insert_many(&new_records)?;
        for id in self.files.list_sidecars()? {
            if !names.contains(&id) {
                self.files.remove_sidecar(&id)?;
                report.sidecars_removed += 1;
            }
        }
        if report.added + report.removed > 0 {
            self.changed();
        }
        Ok(report)
    }

    /// A record for a file that has no row: from its sidecar if it has a good
    /// one, else from what the file itself says (and the sidecar to write).
    fn record_for_unknown(
        &self,
        entry: &files::FileEntry,
    ) -> Result<Option<Recovered>, StoreError> {
        if let Some(Value::Object(map)) = self
            .files
            .read_sidecar(&entry.id)?
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            && let Some(r) = MediaRecord::from_sidecar(&entry.id, entry.size, map)
        {
            return Ok(Some((r, None)));
        }
        let head = self.files.read_head(&entry.id, 64 * 1024)?;
        let (mime, w, h) = match crate::media::probe(&head) {
            Ok(info) => (
                info.mime_type.to_owned(),
                Some(info.width),
                Some(info.height),
            ),
            Err(_) => match mime_from_extension(entry.id.as_str()) {
                Some(m) => (m.to_owned(), None, None),
                None => return Ok(None), // not media: leave it alone
            },
        };
        let mut sidecar = Map::new();
        let kind = MediaKind::from_mime(&mime);
        sidecar.insert("filename".into(), json!(entry.id.as_str()));
        sidecar.insert("type".into(), json!(kind.as_str()));
        sidecar.insert("mime_type".into(), json!(mime));
        sidecar.insert("file_size_bytes".into(), json!(entry.size));
        sidecar.insert("width".into(), json!(w));
        sidecar.insert("height".into(), json!(h));
        sidecar.insert(
            "created".into(),
            json!(entry.modified.to_rfc3339_opts(SecondsFormat::Millis, true)),
        );
        sidecar.insert("prompt".into(), Value::Null);
        sidecar.insert("model".into(), Value::Null);
        sidecar.insert("added_by_hand".into(), json!(true));
        let record = MediaRecord {
            id: entry.id.clone(),
            kind,
            mime_type: mime,
            size_bytes: entry.size,
            width: w,
            height: h,
            created: entry.modified,
            prompt: None,
            model: None,
            source: None,
            metadata: sidecar,
        };
        let text = serde_json::to_vec_pretty(&record.sidecar()).unwrap_or_default();
        Ok(Some((record, Some(text))))
    }
}

/// A record made by reconcile, and the sidecar to write for it (`None` when
/// the file already had a good one).
type Recovered = (MediaRecord, Option<Vec<u8>>);

fn mime_from_extension(name: &str) -> Option<&'static str> {
    let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match ext.as_str() {
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "mov" => "video/quicktime",
        _ => return None,
    })
}

#[cfg(test)]
mod tests;
