//! The library as the tools see it: the model registry, listings, one
//! file's facts and lineage, deletes, reads for resources, and the change
//! feed that `list_changed` notifications follow.

use bytes::Bytes;

use super::input::{ListInput, parse_filename, parse_kind, parse_list};
use super::{Service, ServiceError};
use crate::contract::{
    self, DeleteOutput, FileEntry, FileInfoOutput, Lineage, ListGeneratedOutput, ListModelsOutput,
    ModelOutput,
};
use crate::domain;
use crate::store::{ListQuery, MediaId, MediaKind, MediaRecord, Subscription, timestamp};

/// How long `list_models` waits for the backend's model list.
const MODEL_PROBE: std::time::Duration = std::time::Duration::from_secs(5);

impl Service {
    /// The registry, marked with what the image backend offers now. Never
    /// fails over the backend: an unreachable one gives `available: null`
    /// and a note. `kind` is `image`, `video` or `all`.
    pub async fn list_models(&self, kind: Option<&str>) -> Result<ListModelsOutput, ServiceError> {
        let kind = parse_kind("type", kind)?;
        let probe = tokio::time::timeout(MODEL_PROBE, self.images.list_models()).await;
        let (offered, note) = match probe {
            Ok(Ok(list)) => (Some(list), None),
            Ok(Err(e)) => (None, Some(format!("availability unknown: {e}"))),
            Err(_) => (
                None,
                Some(format!(
                    "availability unknown: `{}` did not list its models within {} s",
                    self.images.base_url(),
                    MODEL_PROBE.as_secs()
                )),
            ),
        };
        let offers = |id: &str| offered.as_ref().map(|l| l.iter().any(|m| m == id));
        let strings = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let mut models = Vec::new();
        if kind != Some(MediaKind::Video) {
            for m in &domain::IMAGE_MODELS {
                models.push(ModelOutput {
                    id: m.id.to_owned(),
                    kind: MediaKind::Image.as_str().to_owned(),
                    aspect_ratios: m
                        .aspect_ratios
                        .iter()
                        .map(|r| r.as_str().to_owned())
                        .collect(),
                    image_sizes: m
                        .image_sizes
                        .iter()
                        .map(|s| s.as_str().to_owned())
                        .collect(),
                    durations: Vec::new(),
                    resolutions: Vec::new(),
                    max_reference_images: Some(m.max_reference_images),
                    default: m.id == self.generation.default_model,
                    available: offers(m.id),
                });
            }
        }
        let mut note = note;
        if kind != Some(MediaKind::Image) {
            let unavailable = self.video_unavailable();
            let family = self.video_family();
            let default_video = self.default_video_model().id;
            if let Some(why) = unavailable {
                let text = format!("video models are unavailable: {why}");
                note = Some(match note {
                    Some(n) => format!("{n}; {text}"),
                    None => text,
                });
            }
            for m in &domain::VIDEO_MODELS {
                // Veo is served by the Gemini API, which is not probed here;
                // CLIProxyAPI's video model shows in its model list. Models
                // of the other video backend cannot be used here.
                let available = match (unavailable, m.provider) {
                    (Some(_), _) => Some(false),
                    (None, p) if p != family => Some(false),
                    (None, domain::VideoProvider::CliProxy) => offers(m.id),
                    (None, domain::VideoProvider::Gemini) => None,
                };
                models.push(ModelOutput {
                    id: m.id.to_owned(),
                    kind: MediaKind::Video.as_str().to_owned(),
                    aspect_ratios: strings(m.aspect_ratios),
                    image_sizes: Vec::new(),
                    durations: m.durations.to_vec(),
                    resolutions: strings(m.resolutions),
                    max_reference_images: (m.extras.reference_images > 0)
                        .then_some(m.extras.reference_images),
                    default: m.id == default_video,
                    available,
                });
            }
        }
        Ok(ListModelsOutput {
            success: true,
            models,
            note,
        })
    }

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
    async fn known(&self, id: &MediaId) -> Result<MediaRecord, ServiceError> {
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
