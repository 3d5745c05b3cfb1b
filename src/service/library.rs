//! The library as the tools see it: listings, one file's facts and
//! lineage, deletes, reads for resources, and the change feed that
//! `list_changed` notifications follow.

use bytes::Bytes;

use super::input::{ListInput, parse_filename, parse_list};
use super::{Service, ServiceError};
use crate::contract::{
    self, DeleteOutput, FileEntry, FileInfoOutput, Lineage, ListGeneratedOutput,
};
use crate::store::{ListQuery, MediaId, MediaKind, MediaRecord, Subscription, timestamp};

impl Service {
    /// Whether the library's storage and database can be reached right
    /// now (`/readyz`, `doctor`).
    pub async fn ready(&self) -> Result<(), crate::store::StoreError> {
        self.library.ready().await
    }
}

impl Service {
    /// One page of the library, from the catalog.
    pub async fn list_files(&self, input: &ListInput) -> Result<ListGeneratedOutput, ServiceError> {
        let q = parse_list(input)?;
        let page = self.library.list(&q).await.map_err(ServiceError::Storage)?;
        let next = q.offset + page.records.len() as u64;
        let full_page = page.records.len() as u32 == q.limit;
        Ok(ListGeneratedOutput {
            success: true,
            files: page.records.iter().map(|r| self.file_entry(r)).collect(),
            total: page.total,
            next_offset: (next < page.total && full_page).then_some(next),
        })
    }

    /// `limit` files from `offset`, newest first (for `resources/list`), and
    /// how many there are in all.
    pub async fn page_files(
        &self,
        offset: u64,
        limit: u32,
    ) -> Result<(Vec<FileEntry>, u64), ServiceError> {
        let q = ListQuery {
            limit,
            offset,
            ..ListQuery::default()
        };
        let page = self.library.list(&q).await.map_err(ServiceError::Storage)?;
        let files = page.records.iter().map(|r| self.file_entry(r)).collect();
        Ok((files, page.total))
    }

    fn file_entry(&self, r: &MediaRecord) -> FileEntry {
        FileEntry {
            filename: r.id.to_string(),
            path: self.path_text(&r.id),
            kind: r.kind.as_str().to_owned(),
            size_bytes: r.size_bytes,
            created: timestamp(r.created),
            prompt: r.prompt.clone(),
            model: r.model.clone(),
            mime_type: r.mime_type.clone(),
            width: r.width,
            height: r.height,
            uri: contract::media_uri(r.id.as_str()),
            url: None,
            cost_usd: r
                .metadata
                .get("cost_usd")
                .and_then(serde_json::Value::as_f64),
            operation: r.fact("operation").map(str::to_owned),
        }
    }

    /// The library file a shell argument names: a bare name, a
    /// `media://files/NAME` URI, or a path to a file in the library (as
    /// `media-gen generate` prints it; relative ones from the working
    /// directory). Only the shell asks this way: a tool's `filename` is
    /// never a path. A path elsewhere is `FILE_NOT_FOUND` saying so.
    pub fn shell_file(&self, reference: &str) -> Result<MediaId, ServiceError> {
        if let Ok(id) = parse_filename(reference) {
            return Ok(id);
        }
        let path = std::path::Path::new(reference.trim());
        let not_in_library = || ServiceError::NotInLibrary(reference.trim().to_owned());
        let name = path.file_name().ok_or_else(not_in_library)?;
        // The directory, links resolved; the file itself may be gone.
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => std::path::Path::new("."),
        };
        let dir = dir.canonicalize().map_err(|_| not_in_library())?;
        self.library
            .local_id(&dir.join(name))
            .ok_or_else(not_in_library)
    }

    /// A catalogued file with what its header says now, or `FILE_NOT_FOUND`.
    pub async fn file_info(&self, filename: &str) -> Result<FileInfoOutput, ServiceError> {
        let id = parse_filename(filename)?;
        let r = self.known(&id).await?;
        let head = self
            .library
            .read_head(&id, 256 * 1024)
            .await
            .map_err(|_| ServiceError::FileNotFound(id.to_string()))?;
        let header = match r.kind {
            MediaKind::Video => self.video_header(&id).await,
            _ => crate::media::probe(&head).ok(),
        };
        let size_on_disk = self
            .library
            .stat(&id)
            .await
            .ok()
            .flatten()
            .map_or(r.size_bytes, |m| m.size);
        let derived = self
            .library
            .derived_from(&id)
            .await
            .map_err(ServiceError::Storage)?;
        Ok(FileInfoOutput {
            success: true,
            filename: r.id.to_string(),
            path: self.path_text(&r.id),
            kind: r.kind.as_str().to_owned(),
            size_bytes: size_on_disk,
            mime_type: header.map_or_else(|| r.mime_type.clone(), |h| h.mime_type.to_owned()),
            width: header.map(|h| h.width).or(r.width),
            height: header.map(|h| h.height).or(r.height),
            created: timestamp(r.created),
            uri: contract::media_uri(r.id.as_str()),
            url: None,
            lineage: Lineage {
                source: r.source.as_ref().map(ToString::to_string),
                derived: derived.iter().map(ToString::to_string).collect(),
            },
            metadata: r.metadata,
        })
    }

    /// What a library video's MP4 says of itself (its `moov` may be at the
    /// end, so the whole file is read).
    async fn video_header(&self, id: &MediaId) -> Option<crate::media::ImageInfo> {
        let bytes = self.library.read(id).await.ok()?;
        let info = tokio::task::spawn_blocking(move || crate::media::video::probe_mp4(&bytes))
            .await
            .ok()?
            .ok()?;
        Some(crate::media::ImageInfo {
            mime_type: info.mime_type,
            extension: info.extension,
            width: info.width,
            height: info.height,
        })
    }

    /// Deletes a file, its sidecar and its row. Needs `confirm`; without it
    /// nothing happens (and an unknown name says so first).
    pub async fn delete_file(
        &self,
        filename: &str,
        confirm: bool,
    ) -> Result<DeleteOutput, ServiceError> {
        let id = parse_filename(filename)?;
        if !confirm {
            // Say whether the file exists first: a wrong name is the bigger mistake.
            let known = self.library.get(&id).await.map_err(ServiceError::Storage)?;
            return Err(match known {
                None => ServiceError::FileNotFound(id.to_string()),
                Some(_) => ServiceError::ConfirmationRequired(id.to_string()),
            });
        }
        match self
            .library
            .delete(&id)
            .await
            .map_err(ServiceError::Storage)?
        {
            true => Ok(DeleteOutput {
                success: true,
                deleted: id.to_string(),
            }),
            false => Err(ServiceError::FileNotFound(id.to_string())),
        }
    }

    /// A file's bytes and MIME type (for `resources/read`).
    pub async fn read_file(&self, filename: &str) -> Result<(String, Bytes), ServiceError> {
        let id = parse_filename(filename)?;
        let record = self.known(&id).await?;
        let bytes = self
            .library
            .read(&id)
            .await
            .map_err(|_| ServiceError::FileNotFound(id.to_string()))?;
        Ok((record.mime_type, bytes))
    }

    /// The catalogued record of `id`, or `FILE_NOT_FOUND`.
    pub(super) async fn known(&self, id: &MediaId) -> Result<MediaRecord, ServiceError> {
        self.library
            .get(id)
            .await
            .map_err(ServiceError::Storage)?
            .ok_or_else(|| ServiceError::FileNotFound(id.to_string()))
    }

    /// Listens for library changes (from any session, the clean-up or reconcile).
    pub fn subscribe(&self) -> Subscription {
        self.library.subscribe()
    }
}
