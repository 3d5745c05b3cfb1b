//! [`MediaStore`] over a local directory: media files at its top, sidecars
//! in `metadata/`. Writes are atomic: a temporary file in the same
//! directory, fsync, rename without clobbering, fsync of the directory.
//! Reads never follow a symbolic link, so nothing outside the directory is
//! read through a name.

use std::io::{Read, Seek, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};

use super::{CATALOG_FILE, METADATA_DIR};
use crate::store::{MediaId, MediaStore, ObjectMeta, Rendition, StoreError, blocking};

/// Files in a local directory. Cheap to clone.
#[derive(Clone)]
pub struct LocalMedia {
    dirs: Arc<Dirs>,
}

struct Dirs {
    root: PathBuf,
    meta: PathBuf,
    /// `root` with every link resolved, to recognise our files by path.
    canonical_root: PathBuf,
}

const TEMP_PREFIX: &str = ".tmp-";

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_owned(),
        source,
    }
}

impl LocalMedia {
    /// Uses `root` (creating it and `root/metadata`). Fast: no scan.
    pub fn open(root: &Path) -> Result<Self, StoreError> {
        let meta = root.join(METADATA_DIR);
        std::fs::create_dir_all(&meta).map_err(io(&meta))?;
        let canonical_root = root.canonicalize().map_err(io(root))?;
        Ok(Self {
            dirs: Arc::new(Dirs {
                root: root.to_owned(),
                meta,
                canonical_root,
            }),
        })
    }

    /// Runs `f` on the directories off the async runtime.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Dirs) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let dirs = self.dirs.clone();
        blocking(move || f(&dirs)).await
    }
}

impl Dirs {
    fn file(&self, id: &MediaId) -> PathBuf {
        self.root.join(id.as_str())
    }

    fn sidecar(&self, id: &MediaId) -> PathBuf {
        self.meta.join(format!("{}.json", id.as_str()))
    }

    fn rendition(&self, id: &MediaId, kind: Rendition) -> PathBuf {
        self.meta.join(format!("{}.{}", id.as_str(), kind.suffix()))
    }

    /// A temporary file whose name carries our PID, so reconcile can tell a
    /// dead writer's leftovers from a live writer's work in progress.
    fn temp_in(dir: &Path) -> Result<tempfile::NamedTempFile, StoreError> {
        use std::os::unix::fs::PermissionsExt;
        // Ordinary file permissions (tempfile defaults to 0600): library
        // files are for the user's other tools too.
        tempfile::Builder::new()
            .prefix(&format!("{TEMP_PREFIX}{}-", std::process::id()))
            .permissions(std::fs::Permissions::from_mode(0o644))
            .tempfile_in(dir)
            .map_err(io(dir))
    }

    fn write_temp(
        dir: &Path,
        bytes: &[u8],
        sync: bool,
    ) -> Result<tempfile::NamedTempFile, StoreError> {
        let mut tmp = Self::temp_in(dir)?;
        let path = tmp.path().to_owned();
        tmp.write_all(bytes).map_err(io(&path))?;
        if sync {
            tmp.as_file().sync_all().map_err(io(&path))?;
        }
        Ok(tmp)
    }

    /// Renames a written temporary file over the sidecar of `id`.
    fn persist_sidecar(
        &self,
        tmp: tempfile::NamedTempFile,
        id: &MediaId,
    ) -> Result<(), StoreError> {
        let path = self.sidecar(id);
        tmp.persist(&path).map_err(|e| StoreError::Io {
            path: path.clone(),
            source: e.error,
        })?;
        Ok(())
    }

    /// Moves a written temporary file to `path` in `dir` unless something
    /// is there (then `false`, and the temporary file is removed), and
    /// makes the new name durable.
    fn create(tmp: tempfile::NamedTempFile, path: &Path, dir: &Path) -> Result<bool, StoreError> {
        match tmp.persist_noclobber(path) {
            Ok(_) => {
                Self::sync_dir(dir)?;
                Ok(true)
            }
            // Dropping `e.file` removes the temporary file.
            Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(io(path)(e.error)),
        }
    }

    fn sync_dir(dir: &Path) -> Result<(), StoreError> {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io(dir))
    }

    /// Opens a regular file without following a link.
    fn open_file(path: &Path) -> Result<(std::fs::File, std::fs::Metadata), StoreError> {
        use std::os::unix::fs::OpenOptionsExt;
        // O_NOFOLLOW: a file swapped for a link to somewhere else is refused.
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .map_err(io(path))?;
        let meta = file.metadata().map_err(io(path))?;
        if !meta.is_file() {
            return Err(StoreError::Io {
                path: path.to_owned(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file"),
            });
        }
        Ok((file, meta))
    }

    fn read_range(&self, id: &MediaId, range: Range<u64>) -> Result<Bytes, StoreError> {
        let path = self.file(id);
        let (mut file, meta) = Self::open_file(&path)?;
        let end = range.end.min(meta.len());
        let start = range.start.min(end);
        if start > 0 {
            file.seek(std::io::SeekFrom::Start(start))
                .map_err(io(&path))?;
        }
        let len = end - start;
        let mut buf = Vec::with_capacity(usize::try_from(len).unwrap_or(0).min(1 << 30));
        file.take(len).read_to_end(&mut buf).map_err(io(&path))?;
        Ok(Bytes::from(buf))
    }

    fn remove_file(path: &Path) -> Result<(), StoreError> {
        match std::fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(path)(e)),
        }
    }
}

/// The whole file, or `None` if there is none.
fn read_if_there(path: &Path) -> Result<Option<Bytes>, StoreError> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(Bytes::from(b))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(path)(e)),
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

fn modified(meta: &std::fs::Metadata) -> DateTime<Utc> {
    meta.modified()
        .map(DateTime::<Utc>::from)
        .unwrap_or_else(|_| Utc::now())
}

#[async_trait]
impl MediaStore for LocalMedia {
    async fn put_if_absent(&self, id: &MediaId, bytes: Bytes) -> Result<bool, StoreError> {
        let id = id.clone();
        self.run(move |d| {
            let tmp = Dirs::write_temp(&d.root, &bytes, true)?;
            drop(bytes);
            Dirs::create(tmp, &d.file(&id), &d.root)
        })
        .await
    }

    async fn get(&self, id: &MediaId) -> Result<Bytes, StoreError> {
        self.get_range(id, 0..u64::MAX).await
    }

    async fn get_range(&self, id: &MediaId, range: Range<u64>) -> Result<Bytes, StoreError> {
        let id = id.clone();
        self.run(move |d| d.read_range(&id, range)).await
    }

    async fn head(&self, id: &MediaId) -> Result<Option<ObjectMeta>, StoreError> {
        let id = id.clone();
        self.run(move |d| {
            let path = d.file(&id);
            // symlink_metadata: a link is not followed, and is not a file.
            match std::fs::symlink_metadata(&path) {
                Ok(m) if m.file_type().is_file() => Ok(Some(ObjectMeta {
                    size: m.len(),
                    modified: modified(&m),
                    id,
                })),
                Ok(_) => Ok(None),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(io(&path)(e)),
            }
        })
        .await
    }

    async fn delete(&self, id: &MediaId) -> Result<(), StoreError> {
        let id = id.clone();
        self.run(move |d| Dirs::remove_file(&d.file(&id))).await
    }

    async fn list(&self) -> Result<Vec<ObjectMeta>, StoreError> {
        self.run(|d| {
            let mut out = Vec::new();
            for entry in std::fs::read_dir(&d.root).map_err(io(&d.root))? {
                let entry = entry.map_err(io(&d.root))?;
                let name = entry.file_name();
                let Some(name) = name.to_str() else { continue };
                if is_temp(name) || name.starts_with(CATALOG_FILE) {
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
                out.push(ObjectMeta {
                    id,
                    size: meta.len(),
                    modified: modified(&meta),
                });
            }
            Ok(out)
        })
        .await
    }

    async fn put_sidecar_if_absent(&self, id: &MediaId, json: Bytes) -> Result<bool, StoreError> {
        let id = id.clone();
        self.run(move |d| {
            let tmp = Dirs::write_temp(&d.meta, &json, true)?;
            Dirs::create(tmp, &d.sidecar(&id), &d.meta)
        })
        .await
    }

    async fn put_sidecars(&self, items: Vec<(MediaId, Bytes)>) -> Result<(), StoreError> {
        if items.is_empty() {
            return Ok(());
        }
        self.run(move |d| {
            for (id, json) in &items {
                d.persist_sidecar(Dirs::write_temp(&d.meta, json, false)?, id)?;
            }
            Dirs::sync_dir(&d.meta)
        })
        .await
    }

    async fn get_sidecar(&self, id: &MediaId) -> Result<Option<Bytes>, StoreError> {
        let id = id.clone();
        self.run(move |d| read_if_there(&d.sidecar(&id))).await
    }

    async fn delete_sidecar(&self, id: &MediaId) -> Result<(), StoreError> {
        let id = id.clone();
        self.run(move |d| {
            for kind in Rendition::ALL {
                Dirs::remove_file(&d.rendition(&id, kind))?;
            }
            Dirs::remove_file(&d.sidecar(&id))
        })
        .await
    }

    async fn put_rendition(
        &self,
        id: &MediaId,
        kind: Rendition,
        bytes: Bytes,
    ) -> Result<(), StoreError> {
        let id = id.clone();
        self.run(move |d| {
            let tmp = Dirs::write_temp(&d.meta, &bytes, false)?;
            let path = d.rendition(&id, kind);
            tmp.persist(&path).map_err(|e| StoreError::Io {
                path,
                source: e.error,
            })?;
            Ok(())
        })
        .await
    }

    async fn get_rendition(
        &self,
        id: &MediaId,
        kind: Rendition,
    ) -> Result<Option<Bytes>, StoreError> {
        let id = id.clone();
        self.run(move |d| read_if_there(&d.rendition(&id, kind)))
            .await
    }

    async fn list_sidecars(&self) -> Result<Vec<MediaId>, StoreError> {
        self.run(|d| {
            let mut out = Vec::new();
            for entry in std::fs::read_dir(&d.meta).map_err(io(&d.meta))? {
                let entry = entry.map_err(io(&d.meta))?;
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
        })
        .await
    }

    async fn sweep_incomplete(&self, stale_after: Duration) -> Result<usize, StoreError> {
        self.run(move |d| {
            let mut removed = 0;
            for dir in [&d.root, &d.meta] {
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
                    if (writer_gone || age >= stale_after)
                        && std::fs::remove_file(entry.path()).is_ok()
                    {
                        removed += 1;
                    }
                }
            }
            Ok(removed)
        })
        .await
    }

    /// The directory takes a new file (a temporary one, removed at once).
    async fn ready(&self) -> Result<(), StoreError> {
        self.run(|d| super::probe_writable(&d.root)).await
    }

    fn local_path(&self, id: &MediaId) -> Option<PathBuf> {
        Some(self.dirs.file(id))
    }

    fn local_id(&self, path: &Path) -> Option<MediaId> {
        if path.parent()? != self.dirs.canonical_root {
            return None;
        }
        path.file_name()?.to_str()?.parse().ok()
    }
}
