//! Media bytes and sidecars by name. The local implementation writes
//! atomically: temporary file in the same directory, fsync, rename without
//! clobbering, fsync of the directory.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{METADATA_DIR, MediaId, StoreError};

/// A media file as listed.
#[derive(Debug, Clone)]
pub struct FileEntry {
    pub id: MediaId,
    pub size: u64,
    pub modified: DateTime<Utc>,
}

/// Bytes by name. No paths cross this trait.
pub trait MediaFiles: Send + Sync {
    /// Stores `bytes` under a new name from `name`, never overwriting an
    /// existing file (asks for another name on collision).
    fn put_new(
        &self,
        bytes: &[u8],
        name: &mut dyn FnMut() -> MediaId,
    ) -> Result<MediaId, StoreError>;
    /// Writes (or replaces) the sidecar of `id`.
    fn put_sidecar(&self, id: &MediaId, json: &[u8]) -> Result<(), StoreError>;
    /// Writes many sidecars with one directory sync at the end and no sync
    /// per file: for sidecars that can be made again from their files
    /// (reconcile), where a sync per file would dominate start-up.
    fn put_sidecars_batch(&self, items: &[(MediaId, Vec<u8>)]) -> Result<(), StoreError>;
    fn read_sidecar(&self, id: &MediaId) -> Result<Option<Vec<u8>>, StoreError>;
    /// The whole file.
    fn read(&self, id: &MediaId) -> Result<Vec<u8>, StoreError>;
    /// The first `max` bytes of a file (enough for its header).
    fn read_head(&self, id: &MediaId, max: usize) -> Result<Vec<u8>, StoreError>;
    fn remove(&self, id: &MediaId) -> Result<(), StoreError>;
    fn remove_sidecar(&self, id: &MediaId) -> Result<(), StoreError>;
    /// Every media file (not sidecars, catalog or temporary files).
    fn list(&self) -> Result<Vec<FileEntry>, StoreError>;
    /// Names that have a sidecar.
    fn list_sidecars(&self) -> Result<Vec<MediaId>, StoreError>;
    /// Deletes temporary files of writers that are gone, or older than `stale_after`.
    fn remove_stale_temp(&self, stale_after: Duration) -> Result<usize, StoreError>;
}

/// Files in a local directory; sidecars in its `metadata/`.
pub struct LocalFiles {
    root: PathBuf,
    meta: PathBuf,
}

const TEMP_PREFIX: &str = ".tmp-";

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_owned(),
        source,
    }
}

impl LocalFiles {
    pub fn open(root: &Path) -> Result<Self, StoreError> {
        let meta = root.join(METADATA_DIR);
        std::fs::create_dir_all(&meta).map_err(io(&meta))?;
        Ok(Self {
            root: root.to_owned(),
            meta,
        })
    }

    fn sidecar_path(&self, id: &MediaId) -> PathBuf {
        self.meta.join(format!("{}.json", id.as_str()))
    }

    /// A temporary file whose name carries our PID, so reconcile can tell a
    /// dead writer's leftovers from a live writer's work in progress.
    fn temp_in(dir: &Path) -> Result<tempfile::NamedTempFile, StoreError> {
        use std::os::unix::fs::PermissionsExt;
        // Ordinary file permissions (0644 less the umask's effect is not
        // applied by tempfile, which defaults to 0600: library files are for
        // the user's other tools too).
        tempfile::Builder::new()
            .prefix(&format!("{TEMP_PREFIX}{}-", std::process::id()))
            .permissions(std::fs::Permissions::from_mode(0o644))
            .tempfile_in(dir)
            .map_err(io(dir))
    }

    fn write_synced(dir: &Path, bytes: &[u8]) -> Result<tempfile::NamedTempFile, StoreError> {
        let tmp = Self::write_temp(dir, bytes)?;
        tmp.as_file().sync_all().map_err(io(tmp.path()))?;
        Ok(tmp)
    }

    fn write_temp(dir: &Path, bytes: &[u8]) -> Result<tempfile::NamedTempFile, StoreError> {
        let mut tmp = Self::temp_in(dir)?;
        let path = tmp.path().to_owned();
        tmp.write_all(bytes).map_err(io(&path))?;
        Ok(tmp)
    }

    /// Renames a written temporary file over the sidecar of `id`.
    fn persist_sidecar(
        &self,
        tmp: tempfile::NamedTempFile,
        id: &MediaId,
    ) -> Result<(), StoreError> {
        let path = self.sidecar_path(id);
        tmp.persist(&path).map_err(|e| StoreError::Io {
            path: path.clone(),
            source: e.error,
        })?;
        Ok(())
    }

    fn sync_dir(dir: &Path) -> Result<(), StoreError> {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io(dir))
    }
}

fn is_temp(name: &str) -> bool {
    name.starts_with(TEMP_PREFIX)
}

/// PID encoded in a temp name, `.tmp-PID-random`.
fn temp_pid(name: &str) -> Option<u32> {
    name.strip_prefix(TEMP_PREFIX)?
        .split('-')
        .next()?
        .parse()
        .ok()
}

fn pid_alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    Path::new(&format!("/proc/{pid}")).exists()
}

impl MediaFiles for LocalFiles {
    fn put_new(
        &self,
        bytes: &[u8],
        name: &mut dyn FnMut() -> MediaId,
    ) -> Result<MediaId, StoreError> {
        let mut tmp = Self::write_synced(&self.root, bytes)?;
        for _ in 0..8 {
            let id = name();
            match tmp.persist_noclobber(self.root.join(id.as_str())) {
                Ok(_) => {
                    Self::sync_dir(&self.root)?;
                    return Ok(id);
                }
                Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => tmp = e.file,
                Err(e) => {
                    let path = self.root.join(id.as_str());
                    return Err(StoreError::Io {
                        path,
                        source: e.error,
                    });
                }
            }
        }
        Err(StoreError::NameCollision)
    }

    fn put_sidecar(&self, id: &MediaId, json: &[u8]) -> Result<(), StoreError> {
        self.persist_sidecar(Self::write_synced(&self.meta, json)?, id)?;
        Self::sync_dir(&self.meta)
    }

    fn put_sidecars_batch(&self, items: &[(MediaId, Vec<u8>)]) -> Result<(), StoreError> {
        if items.is_empty() {
            return Ok(());
        }
        for (id, json) in items {
            self.persist_sidecar(Self::write_temp(&self.meta, json)?, id)?;
        }
        Self::sync_dir(&self.meta)
    }

    fn read_sidecar(&self, id: &MediaId) -> Result<Option<Vec<u8>>, StoreError> {
        let path = self.sidecar_path(id);
        match std::fs::read(&path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(&path)(e)),
        }
    }

    fn read(&self, id: &MediaId) -> Result<Vec<u8>, StoreError> {
        self.read_head(id, usize::MAX)
    }

    fn read_head(&self, id: &MediaId, max: usize) -> Result<Vec<u8>, StoreError> {
        use std::os::unix::fs::OpenOptionsExt;
        let path = self.root.join(id.as_str());
        // O_NOFOLLOW: a file swapped for a link to somewhere else is refused,
        // so nothing outside the library is ever read.
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(io(&path))?;
        let meta = file.metadata().map_err(io(&path))?;
        if !meta.is_file() {
            return Err(StoreError::Io {
                path,
                source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file"),
            });
        }
        let mut buf = Vec::with_capacity((meta.len() as usize).min(max).min(1 << 30));
        file.take(max as u64)
            .read_to_end(&mut buf)
            .map_err(io(&path))?;
        Ok(buf)
    }

    fn remove(&self, id: &MediaId) -> Result<(), StoreError> {
        let path = self.root.join(id.as_str());
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(&path)(e)),
        }
    }

    fn remove_sidecar(&self, id: &MediaId) -> Result<(), StoreError> {
        let path = self.sidecar_path(id);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(&path)(e)),
        }
    }

    fn list(&self) -> Result<Vec<FileEntry>, StoreError> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&self.root).map_err(io(&self.root))? {
            let entry = entry.map_err(io(&self.root))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if is_temp(name) || name.starts_with(super::CATALOG_FILE) {
                continue;
            }
            let Ok(id) = name.parse::<MediaId>() else {
                continue;
            };
            // symlink_metadata: a link is not followed, and not catalogued.
            let Ok(meta) = entry.path().symlink_metadata() else {
                continue;
            };
            if !meta.file_type().is_file() {
                continue;
            }
            let modified = meta
                .modified()
                .map(DateTime::<Utc>::from)
                .unwrap_or_else(|_| Utc::now());
            out.push(FileEntry {
                id,
                size: meta.len(),
                modified,
            });
        }
        Ok(out)
    }

    fn list_sidecars(&self) -> Result<Vec<MediaId>, StoreError> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&self.meta).map_err(io(&self.meta))? {
            let entry = entry.map_err(io(&self.meta))?;
            if let Some(id) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".json"))
                .and_then(|n| n.parse::<MediaId>().ok())
            {
                out.push(id);
            }
        }
        Ok(out)
    }

    fn remove_stale_temp(&self, stale_after: Duration) -> Result<usize, StoreError> {
        let mut removed = 0;
        for dir in [&self.root, &self.meta] {
            for entry in std::fs::read_dir(dir).map_err(io(dir))? {
                let entry = entry.map_err(io(dir))?;
                let name = entry.file_name();
                let Some(name) = name.to_str() else { continue };
                if !is_temp(name) {
                    continue;
                }
                let age = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .unwrap_or(Duration::MAX);
                let writer_gone = temp_pid(name).is_none_or(|pid| !pid_alive(pid));
                if (writer_gone || age >= stale_after) && std::fs::remove_file(entry.path()).is_ok()
                {
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }
}
