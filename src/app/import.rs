//! `media-gen import --from DIR`: copies a local library (a directory with
//! its SQLite catalog) into the shared library the settings name
//! (`MCP_STORAGE_URL`, `MCP_DATABASE_URL`).
//!
//! Each file goes over as a save would write it — the sidecar first, then
//! the file (both put-if-absent), then its catalog row — so an import that
//! is stopped anywhere can be run again: files whose row is already there
//! are skipped, a half-copied one is finished, and nothing is copied
//! twice. The source is only read. Lineage (`source`) travels in the rows.
//! Usage-ledger rows and video jobs stay behind: the ledger of the shared
//! deployment starts with its own calls.

use std::io::Write;
use std::path::Path;

use crate::store::local::LocalStore;
use crate::store::{Change, MediaRecord, StoreError, Stores};

/// What an import did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ImportReport {
    /// Files copied now.
    pub copied: usize,
    /// Files whose row the shared library had already (an earlier run).
    pub already: usize,
    /// Rows of the source whose file is missing there: not copied.
    pub missing: usize,
}

/// Copies every ready file of `source` into `target`, printing one line per
/// hundred files and a summary on `out`.
pub async fn import(
    source: &LocalStore,
    target: &Stores,
    out: &mut dyn Write,
) -> Result<ImportReport, StoreError> {
    use crate::store::{Catalog, MediaStore};
    let ids = source.catalog.oldest_first().await?;
    let total = ids.len();
    let mut report = ImportReport::default();
    for (n, (id, _, _)) in ids.into_iter().enumerate() {
        if target.catalog.get(&id).await?.is_some() {
            report.already += 1;
            continue;
        }
        let Some(record) = source.catalog.get(&id).await? else {
            continue; // deleted meanwhile
        };
        let bytes = match source.media.get(&id).await {
            Ok(b) => b,
            Err(e) if e.is_not_found() => {
                report.missing += 1;
                continue;
            }
            Err(e) => return Err(e),
        };
        let sidecar = match source.media.get_sidecar(&id).await? {
            Some(s) => s,
            None => record.sidecar_json(),
        };
        target.media.put_sidecar_if_absent(&id, sidecar).await?;
        if !target.media.put_if_absent(&id, bytes.clone()).await?
            && let Some(there) = target.media.head(&id).await?
            && there.size != bytes.len() as u64
        {
            // Another file of this name (not an earlier run's copy): keep
            // both apart rather than cataloguing the wrong bytes.
            return Err(StoreError::Task(format!(
                "the shared library already has a different file named `{id}` ({} bytes, here {}); rename one of them and run the import again",
                there.size,
                bytes.len()
            )));
        }
        target
            .catalog
            .insert(&with_size(record, bytes.len()))
            .await?;
        report.copied += 1;
        if (n + 1) % 100 == 0 {
            let _ = writeln!(out, "{} of {total} files…", n + 1);
        }
    }
    if report.copied > 0 {
        target.feed.publish(Change::Rescanned).await;
    }
    let _ = writeln!(
        out,
        "imported {} files ({} were there already{})",
        report.copied,
        report.already,
        match report.missing {
            0 => String::new(),
            n => format!("; {n} catalogued here without their file were skipped"),
        }
    );
    Ok(report)
}

fn with_size(mut record: MediaRecord, size: usize) -> MediaRecord {
    record.size_bytes = size as u64;
    record
}

/// Opens the source library at `dir`; it must exist (an import never
/// creates one).
pub fn source(dir: &Path) -> Result<LocalStore, String> {
    match LocalStore::open_existing(dir) {
        Ok(Some(s)) => Ok(s),
        Ok(None) => Err(format!(
            "there is no media-gen library in {} (no catalog there); give the directory `media-gen list` showed as `from …`",
            dir.display()
        )),
        Err(e) => Err(format!("cannot open the library in {}: {e}", dir.display())),
    }
}
