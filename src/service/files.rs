//! Library files for clients that reach the server over HTTP: ranged reads
//! for downloads, uploads of input images (a remote client cannot name a
//! path on the server), and the gallery's thumbnails — made once, off the
//! runtime, and cached beside the sidecar.

use std::ops::Range;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::{Service, ServiceError, parse_filename};
use crate::contract::{self, UploadOutput};
use crate::media::{self, input::decode_input};
use crate::store::{MediaId, MediaKind, NewMedia, Rendition};

/// Long side of a gallery thumbnail: sharp in a 240-px grid cell on a
/// high-density screen.
pub const THUMBNAIL_MAX_SIDE: u32 = 480;
/// Approximate byte budget of a thumbnail.
pub const THUMBNAIL_MAX_BYTES: usize = 48 * 1024;

/// What a download needs to know before reading a byte.
#[derive(Debug, Clone)]
pub struct StoredFile {
    pub id: MediaId,
    pub mime_type: String,
    pub size: u64,
    pub created: DateTime<Utc>,
}

impl StoredFile {
    /// A strong validator: library files never change once written, so
    /// name, size and time identify the bytes.
    pub fn etag(&self) -> String {
        format!(
            "\"{}-{:x}-{:x}\"",
            self.id,
            self.size,
            self.created.timestamp_millis()
        )
    }
}

/// A thumbnail and its type (JPEG, or PNG when the image has transparency).
#[derive(Debug, Clone)]
pub struct Thumbnail {
    pub mime_type: &'static str,
    pub bytes: Bytes,
}

/// How long a presigned download link stays valid.
pub const PRESIGNED_TTL: std::time::Duration = std::time::Duration::from_secs(3600);

impl Service {
    /// The largest upload, in bytes (`input_max_bytes`, as for every input).
    pub fn upload_limit(&self) -> u64 {
        self.edit.input_max_bytes
    }

    /// A catalogued file's type, size and time, or `FILE_NOT_FOUND`.
    pub async fn stored_file(&self, filename: &str) -> Result<StoredFile, ServiceError> {
        let id = parse_filename(filename)?;
        let record = self.known(&id).await?;
        let meta = self
            .library
            .stat(&id)
            .await
            .map_err(ServiceError::Storage)?
            .ok_or_else(|| ServiceError::FileNotFound(id.to_string()))?;
        Ok(StoredFile {
            id,
            mime_type: record.mime_type,
            size: meta.size,
            created: record.created,
        })
    }

    /// `range` of a stored file's bytes.
    /// A link straight to the store for `id` (a presigned object-storage
    /// URL, valid for [`PRESIGNED_TTL`]) when the store is set to make
    /// them (`MCP_STORAGE_PRESIGN`); `None` otherwise.
    pub async fn download_url(&self, id: &MediaId) -> Result<Option<String>, ServiceError> {
        self.library
            .download_url(id, PRESIGNED_TTL)
            .await
            .map_err(ServiceError::Storage)
    }

    pub async fn read_range(&self, id: &MediaId, range: Range<u64>) -> Result<Bytes, ServiceError> {
        self.library
            .read_range(id, range)
            .await
            .map_err(|_| ServiceError::FileNotFound(id.to_string()))
    }

    /// Stores an uploaded input image in the library, checked as the edit
    /// tools check their inputs (a supported image within the size and
    /// pixel limits, decoded once to be sure). `original_name` is kept in
    /// the sidecar.
    pub async fn upload(
        &self,
        bytes: Bytes,
        original_name: Option<String>,
    ) -> Result<UploadOutput, ServiceError> {
        let limits = self.input_limits();
        let checked = bytes.clone();
        let info = tokio::task::spawn_blocking(move || decode_input(&checked, &limits))
            .await
            .map_err(|e| ServiceError::Internal(e.to_string()))?
            .map_err(|source| ServiceError::InvalidImage {
                field: "file".into(),
                reference: original_name.clone().unwrap_or_else(|| "upload".into()),
                source,
            })?
            .info;
        let mut facts = Map::new();
        facts.insert("operation".into(), json!("upload"));
        if let Some(name) = original_name
            .as_deref()
            .map(clean_name)
            .filter(|n| !n.is_empty())
        {
            facts.insert("original_name".into(), Value::String(name));
        }
        let record = self
            .library
            .save(NewMedia {
                bytes,
                kind: MediaKind::Image,
                extension: info.extension.to_owned(),
                mime_type: info.mime_type.to_owned(),
                width: Some(info.width),
                height: Some(info.height),
                prompt: None,
                model: None,
                metadata: facts,
                source: None,
            })
            .await
            .map_err(ServiceError::Save)?;
        Ok(UploadOutput {
            success: true,
            filename: record.id.to_string(),
            uri: contract::media_uri(record.id.as_str()),
            url: None,
            mime_type: record.mime_type,
            width: info.width,
            height: info.height,
            size_bytes: record.size_bytes,
        })
    }

    /// The gallery thumbnail of a library file: the cached one, or made now
    /// (an image scaled down; a video's first frame) and cached.
    pub async fn thumbnail(&self, filename: &str) -> Result<Thumbnail, ServiceError> {
        let file = self.stored_file(filename).await?;
        let id = file.id;
        if let Ok(Some(bytes)) = self.library.rendition(&id, Rendition::Thumbnail).await
            && let Ok(info) = media::probe(&bytes)
        {
            return Ok(Thumbnail {
                mime_type: info.mime_type,
                bytes,
            });
        }
        let bytes = self
            .library
            .read(&id)
            .await
            .map_err(|_| ServiceError::FileNotFound(id.to_string()))?;
        let video = media::video::is_mp4(&bytes);
        // Pixel work shares the per-core slots: a gallery page asking for
        // dozens at once leaves generations their share.
        let made = super::pixels::run("thumbnail", move || {
            if video {
                let first = media::video::frames(&bytes, 1)?
                    .into_iter()
                    .next()
                    .ok_or(media::MediaError::Unsupported)?;
                media::preview_of(
                    &image::DynamicImage::ImageRgb8(first),
                    THUMBNAIL_MAX_SIDE,
                    THUMBNAIL_MAX_BYTES,
                )
            } else {
                media::preview(&bytes, THUMBNAIL_MAX_SIDE, THUMBNAIL_MAX_BYTES)
            }
        })
        .await?
        .map_err(ServiceError::NotAnImage)?;
        let bytes = Bytes::from(made.data);
        if let Err(e) = self
            .library
            .put_rendition(&id, Rendition::Thumbnail, bytes.clone())
            .await
        {
            tracing::warn!(file = %id, error = %e, "could not cache a thumbnail");
        }
        Ok(Thumbnail {
            mime_type: made.mime_type,
            bytes,
        })
    }
}

/// The last component of an uploaded file's name, without control
/// characters, at most 200 characters.
fn clean_name(name: &str) -> String {
    name.rsplit(['/', '\\'])
        .next()
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect::<String>()
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_names_keep_only_the_last_component() {
        assert_eq!(clean_name("../../etc/passwd"), "passwd");
        assert_eq!(clean_name("C:\\Users\\me\\cat.png"), "cat.png");
        assert_eq!(clean_name("a\u{0}b\nc.png"), "abc.png");
        assert_eq!(clean_name("dir/"), "");
    }
}
