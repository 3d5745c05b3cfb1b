//! The embedded default: media and sidecars in a local directory
//! ([`LocalMedia`]), the catalog and jobs in SQLite inside it
//! ([`SqliteCatalog`], [`SqliteJobs`], [`SqliteUsage`]), changes within the process
//! ([`LocalFeed`]).

mod catalog;
mod feed;
mod files;
mod jobs;
mod sqlite;
#[cfg(test)]
mod tests;
mod usage;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use catalog::SqliteCatalog;
pub use feed::LocalFeed;
pub use files::LocalMedia;
pub use jobs::SqliteJobs;
pub use usage::SqliteUsage;

use super::{Library, StoreError};

/// Name of the database file inside the output directory.
pub const CATALOG_FILE: &str = "catalog.sqlite3";
/// Folder of the JSON sidecars.
pub const METADATA_DIR: &str = "metadata";

/// The local implementations of every port, over one directory.
#[derive(Clone)]
pub struct LocalStore {
    pub root: PathBuf,
    pub media: Arc<LocalMedia>,
    pub catalog: Arc<SqliteCatalog>,
    pub jobs: Arc<SqliteJobs>,
    pub usage: Arc<SqliteUsage>,
    pub feed: Arc<LocalFeed>,
}

impl LocalStore {
    /// Opens the library in `root`, creating it, and checks that files can
    /// be written there. Fast: no directory scan (reconcile does that).
    pub fn open(root: &Path) -> Result<Self, StoreError> {
        let media = LocalMedia::open(root)?;
        probe_writable(root)?;
        Self::with(root, media)
    }

    /// Opens the library in `root` only if there is one (its catalog is
    /// there); creates nothing. For commands that only look: a listing of
    /// a directory never used must not leave a library behind.
    pub fn open_existing(root: &Path) -> Result<Option<Self>, StoreError> {
        if !root.join(CATALOG_FILE).is_file() {
            return Ok(None);
        }
        Self::with(root, LocalMedia::open(root)?).map(Some)
    }

    fn with(root: &Path, media: LocalMedia) -> Result<Self, StoreError> {
        let db = sqlite::Db::open(&root.join(CATALOG_FILE))?;
        Ok(Self {
            root: root.to_owned(),
            media: Arc::new(media),
            catalog: Arc::new(SqliteCatalog::new(db.clone())),
            jobs: Arc::new(SqliteJobs::new(db.clone())),
            usage: Arc::new(SqliteUsage::new(db)),
            feed: Arc::new(LocalFeed::default()),
        })
    }

    /// The library protocols over these ports.
    pub fn library(&self) -> Library {
        Library::new(self.media.clone(), self.catalog.clone(), self.feed.clone())
    }
}

/// A directory can exist and still refuse writes (read-only mount,
/// permissions): find out at start, not at the first save.
fn probe_writable(root: &Path) -> Result<(), StoreError> {
    tempfile::Builder::new()
        .prefix(".tmp-probe-")
        .tempfile_in(root)
        .map(drop)
        .map_err(|source| StoreError::Io {
            path: root.to_owned(),
            source,
        })
}
