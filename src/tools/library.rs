//! The media library: `list_models`, `list_generated`, `get_file_info`,
//! `delete_file`, and the `media://files/{filename}` resources.

use base64::Engine;
use rmcp::handler::server::tool::schema_for_output;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolResult, ListResourceTemplatesResult, ListResourcesResult, PaginatedRequestParams,
    ReadResourceResult, Resource, ResourceContents, ResourceTemplate,
};
use rmcp::{ErrorData, tool, tool_router};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::image::media_uri;
use super::{MediaServer, error_result, structured_result};
use crate::service::{ErrorCode, ServiceError};
use crate::store::{ListQuery, MediaKind, MediaRecord, SortBy};

/// Most entries one `list_generated` call returns.
pub const MAX_LIMIT: u32 = 1000;
/// Resources per `resources/list` page.
const RESOURCE_PAGE: u32 = 100;

fn type_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "string", "enum": ["image", "video", "all"], "default": "all"})
}

fn parse_type(field: &'static str, v: Option<&str>) -> Result<Option<MediaKind>, ServiceError> {
    match v.map(|s| s.trim().to_ascii_lowercase()).as_deref() {
        None | Some("all") | Some("") => Ok(None),
        Some("image") | Some("images") => Ok(Some(MediaKind::Image)),
        Some("video") | Some("videos") => Ok(Some(MediaKind::Video)),
        Some(other) => Err(ServiceError::InvalidParameter(
            crate::domain::InvalidValue::new(field, other, ["image", "video", "all"]),
        )),
    }
}

/// Parameters of `list_models`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ListModelsParams {
    /// Which models: `image`, `video` or `all` (default).
    #[serde(default, rename = "type")]
    #[schemars(schema_with = "type_schema")]
    pub kind: Option<String>,
}

/// One model and what it accepts.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ModelOutput {
    pub id: String,
    /// `image` or `video`.
    #[serde(rename = "type")]
    pub kind: String,
    pub aspect_ratios: Vec<String>,
    /// Image models: the `image_size` values.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub image_sizes: Vec<String>,
    /// Video models: whole seconds.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub durations: Vec<u32>,
    /// Video models: output resolutions.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resolutions: Vec<String>,
    /// Used when a call names no model.
    pub default: bool,
    /// Whether the backend offers it now; `null` when that could not be checked.
    pub available: Option<bool>,
}

/// Result of `list_models`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ListModelsOutput {
    pub success: bool,
    pub models: Vec<ModelOutput>,
    /// Why `available` is `null`, when it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

fn sort_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "string", "enum": ["date", "size", "name"], "default": "date",
        "description": "`date` (newest first), `size` (largest first) or `name` (A–Z)."})
}

fn order_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "string", "enum": ["asc", "desc"],
        "description": "Override the direction; the default depends on `sort_by`."})
}

/// Parameters of `list_generated`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ListGeneratedParams {
    /// `image`, `video` or `all` (default).
    #[serde(default, rename = "type")]
    #[schemars(schema_with = "type_schema")]
    pub kind: Option<String>,
    /// How many files to return (1–1000, default 20).
    #[serde(default)]
    pub limit: Option<i64>,
    #[serde(default)]
    #[schemars(schema_with = "sort_schema")]
    pub sort_by: Option<String>,
    #[serde(default)]
    #[schemars(schema_with = "order_schema")]
    pub order: Option<String>,
    /// Skip this many matches (paging: pass the previous `next_offset`).
    #[serde(default)]
    pub offset: Option<i64>,
    /// Only files whose prompt contains this text (case-insensitive).
    #[serde(default)]
    pub query: Option<String>,
}

/// One file of a listing.
#[derive(Debug, Serialize, JsonSchema)]
pub struct FileEntry {
    pub filename: String,
    /// Absolute path.
    pub path: String,
    /// `image` or `video`.
    #[serde(rename = "type")]
    pub kind: String,
    pub size_bytes: u64,
    /// RFC 3339, UTC.
    pub created: String,
    pub prompt: Option<String>,
    pub model: Option<String>,
    pub mime_type: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// `media://files/FILENAME`.
    pub uri: String,
}

/// Result of `list_generated`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ListGeneratedOutput {
    pub success: bool,
    pub files: Vec<FileEntry>,
    /// How many files match in all (not just this page).
    pub total: u64,
    /// Pass as `offset` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_offset: Option<u64>,
}

/// Parameters of `get_file_info`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct FileParams {
    /// A file name from the library (as `generate_image` or `list_generated` returned it),
    /// or its `media://files/…` URI.
    pub filename: String,
}

/// Where a file came from and what was made from it.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Lineage {
    /// The file this one was made from (edits), if any.
    pub source: Option<String>,
    /// Files made from this one.
    pub derived: Vec<String>,
}

/// Result of `get_file_info`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct FileInfoOutput {
    pub success: bool,
    pub filename: String,
    pub path: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub size_bytes: u64,
    pub mime_type: String,
    /// Read from the file itself.
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub created: String,
    pub uri: String,
    /// The JSON sidecar: prompt, model, parameters.
    pub metadata: Map<String, Value>,
    pub lineage: Lineage,
}

/// Parameters of `delete_file`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct DeleteParams {
    /// The file name to delete (from `list_generated`).
    pub filename: String,
    /// Must be `true`; otherwise nothing is deleted (`CONFIRMATION_REQUIRED`).
    #[serde(default)]
    #[schemars(extend("default" = false))]
    pub confirm: bool,
}

/// Result of `delete_file`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct DeleteOutput {
    pub success: bool,
    /// The file name that was deleted.
    pub deleted: String,
}

fn rfc3339(r: &MediaRecord) -> String {
    r.created
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl MediaServer {
    fn entry(&self, r: &MediaRecord) -> FileEntry {
        FileEntry {
            filename: r.id.to_string(),
            path: self.service().store().path_of(&r.id).display().to_string(),
            kind: r.kind.as_str().to_owned(),
            size_bytes: r.size_bytes,
            created: rfc3339(r),
            prompt: r.prompt.clone(),
            model: r.model.clone(),
            mime_type: r.mime_type.clone(),
            width: r.width,
            height: r.height,
            uri: media_uri(r.id.as_str()),
        }
    }

    /// A resource for one file: name, shortened prompt as title, MIME, size.
    pub(super) fn resource(r: &MediaRecord) -> Resource {
        let title: String = r
            .prompt
            .as_deref()
            .unwrap_or(r.id.as_str())
            .chars()
            .take(80)
            .collect();
        Resource::new(media_uri(r.id.as_str()), r.id.as_str())
            .with_title(title)
            .with_mime_type(r.mime_type.clone())
            .with_size(r.size_bytes)
    }

    pub(super) async fn list_resources_page(
        &self,
        request: Option<PaginatedRequestParams>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let offset = match request.and_then(|r| r.cursor) {
            None => 0,
            Some(c) => c
                .parse::<u64>()
                .map_err(|_| ErrorData::invalid_params(format!("invalid cursor `{c}`"), None))?,
        };
        let (records, total) = self
            .service()
            .list_files(ListQuery {
                limit: RESOURCE_PAGE,
                offset,
                ..ListQuery::default()
            })
            .await
            .map_err(|e| ErrorData::internal_error(e.message(), None))?;
        let next = offset + records.len() as u64;
        let mut result =
            ListResourcesResult::with_all_items(records.iter().map(Self::resource).collect());
        result.next_cursor = (next < total).then(|| next.to_string());
        Ok(result)
    }

    pub(super) fn resource_templates() -> ListResourceTemplatesResult {
        let template = ResourceTemplate::new("media://files/{filename}", "media-file")
            .with_title("A generated image or video")
            .with_description("Any file in the media library, by the `filename` the tools return.");
        ListResourceTemplatesResult::with_all_items(vec![template])
    }

    pub(super) async fn read_media_resource(
        &self,
        uri: &str,
    ) -> Result<ReadResourceResult, ErrorData> {
        let Some(name) = uri.strip_prefix("media://files/") else {
            return Err(ErrorData::resource_not_found(
                format!("unknown resource `{uri}`; media-gen serves `media://files/{{filename}}`"),
                Some(serde_json::json!({"uri": uri})),
            ));
        };
        match self.service().read_file(name).await {
            Ok((record, bytes)) => {
                let blob = base64::engine::general_purpose::STANDARD.encode(&bytes);
                Ok(ReadResourceResult::new(vec![
                    ResourceContents::blob(blob, uri).with_mime_type(record.mime_type),
                ]))
            }
            Err(e)
                if matches!(
                    e.code(),
                    ErrorCode::FileNotFound | ErrorCode::InvalidParameter
                ) =>
            {
                Err(ErrorData::resource_not_found(
                    e.message(),
                    Some(serde_json::json!({"uri": uri})),
                ))
            }
            Err(e) => Err(ErrorData::internal_error(e.message(), None)),
        }
    }
}

#[tool_router(router = library_router, vis = "pub(super)")]
impl MediaServer {
    #[tool(
        name = "list_models",
        title = "List models",
        description = "List the image and video models media-gen can use, with the aspect ratios, \
image sizes or video durations each accepts, which one is the default, and whether the backend \
offers it right now (`available`; `null` when the backend could not be asked).",
        annotations(
            title = "List models",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        ),
        output_schema = schema_for_output::<ListModelsOutput>()
    )]
    async fn list_models(&self, Parameters(p): Parameters<ListModelsParams>) -> CallToolResult {
        let kind = match parse_type("type", p.kind.as_deref()) {
            Ok(k) => k,
            Err(e) => return error_result(&e),
        };
        let report = self.service().list_models(kind).await;
        let out = ListModelsOutput {
            success: true,
            models: report
                .models
                .into_iter()
                .map(|m| ModelOutput {
                    id: m.id.to_owned(),
                    kind: m.kind.as_str().to_owned(),
                    aspect_ratios: m.aspect_ratios.iter().map(|s| (*s).to_owned()).collect(),
                    image_sizes: m.image_sizes.iter().map(|s| (*s).to_owned()).collect(),
                    durations: m.durations,
                    resolutions: m.resolutions.iter().map(|s| (*s).to_owned()).collect(),
                    default: m.default,
                    available: m.available,
                })
                .collect(),
            note: report.note,
        };
        structured_result(&out, false, Vec::new())
    }

    #[tool(
        name = "list_generated",
        title = "List generated files",
        description = "List files in the media library, newest first by default. Filter by \
`type` and by prompt text (`query`), sort by `date`, `size` or `name`, and page with \
`limit`/`offset` (`next_offset` is returned while more remain; `total` counts all matches).",
        annotations(
            title = "List generated files",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        ),
        output_schema = schema_for_output::<ListGeneratedOutput>()
    )]
    async fn list_generated(
        &self,
        Parameters(p): Parameters<ListGeneratedParams>,
    ) -> CallToolResult {
        let q = match list_query(&p) {
            Ok(q) => q,
            Err(e) => return error_result(&e),
        };
        let (offset, limit) = (q.offset, q.limit);
        match self.service().list_files(q).await {
            Ok((records, total)) => {
                let next = offset + records.len() as u64;
                let out = ListGeneratedOutput {
                    success: true,
                    files: records.iter().map(|r| self.entry(r)).collect(),
                    total,
                    next_offset: (next < total && records.len() as u32 == limit).then_some(next),
                };
                structured_result(&out, false, Vec::new())
            }
            Err(e) => error_result(&e),
        }
    }

    #[tool(
        name = "get_file_info",
        title = "Get file info",
        description = "Everything known about one file of the library: path, type, size, MIME \
type and pixel size read from the file, the JSON sidecar (prompt, model, parameters), lineage \
(the file it was made from and the files made from it) and its `media://files/…` URI.",
        annotations(
            title = "Get file info",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        ),
        output_schema = schema_for_output::<FileInfoOutput>()
    )]
    async fn get_file_info(&self, Parameters(p): Parameters<FileParams>) -> CallToolResult {
        match self.service().file_info(&p.filename).await {
            Ok(info) => {
                let r = &info.record;
                let out = FileInfoOutput {
                    success: true,
                    filename: r.id.to_string(),
                    path: info.path.display().to_string(),
                    kind: r.kind.as_str().to_owned(),
                    size_bytes: info.size_on_disk,
                    mime_type: info
                        .header
                        .map_or_else(|| r.mime_type.clone(), |h| h.mime_type.to_owned()),
                    width: info.header.map(|h| h.width).or(r.width),
                    height: info.header.map(|h| h.height).or(r.height),
                    created: rfc3339(r),
                    uri: media_uri(r.id.as_str()),
                    metadata: r.metadata.clone(),
                    lineage: Lineage {
                        source: r.source.as_ref().map(ToString::to_string),
                        derived: info.derived.iter().map(ToString::to_string).collect(),
                    },
                };
                structured_result(&out, false, Vec::new())
            }
            Err(e) => error_result(&e),
        }
    }

    #[tool(
        name = "delete_file",
        title = "Delete file",
        description = "Delete one file from the media library: the file, its JSON sidecar and its \
catalog entry. Irreversible; requires `confirm: true` (without it nothing is deleted and the \
result is `CONFIRMATION_REQUIRED`).",
        annotations(
            title = "Delete file",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        ),
        output_schema = schema_for_output::<DeleteOutput>()
    )]
    async fn delete_file(&self, Parameters(p): Parameters<DeleteParams>) -> CallToolResult {
        match self.service().delete_file(&p.filename, p.confirm).await {
            Ok(id) => {
                let out = DeleteOutput {
                    success: true,
                    deleted: id.to_string(),
                };
                structured_result(&out, false, Vec::new())
            }
            Err(e) => error_result(&e),
        }
    }
}

fn list_query(p: &ListGeneratedParams) -> Result<ListQuery, ServiceError> {
    let bad = |field: &'static str, message: String| ServiceError::BadParameter { field, message };
    let kind = parse_type("type", p.kind.as_deref())?;
    let limit = match p.limit {
        None => 20,
        Some(n) if (1..=i64::from(MAX_LIMIT)).contains(&n) => n as u32,
        Some(n) => {
            return Err(bad(
                "limit",
                format!("`limit` = `{n}`; use 1 to {MAX_LIMIT}"),
            ));
        }
    };
    let offset = match p.offset {
        None => 0,
        Some(n) if n >= 0 => n as u64,
        Some(n) => return Err(bad("offset", format!("`offset` = `{n}`; use 0 or more"))),
    };
    let sort = match p.sort_by.as_deref().map(str::trim) {
        None | Some("date") | Some("") => SortBy::Date,
        Some("size") => SortBy::Size,
        Some("name") => SortBy::Name,
        Some(other) => {
            return Err(ServiceError::InvalidParameter(
                crate::domain::InvalidValue::new("sort_by", other, ["date", "size", "name"]),
            ));
        }
    };
    let descending = match p.order.as_deref().map(str::trim) {
        None | Some("") => sort != SortBy::Name,
        Some("desc") => true,
        Some("asc") => false,
        Some(other) => {
            return Err(ServiceError::InvalidParameter(
                crate::domain::InvalidValue::new("order", other, ["asc", "desc"]),
            ));
        }
    };
    Ok(ListQuery {
        kind,
        sort,
        descending,
        limit,
        offset,
        text: p.query.clone().filter(|q| !q.trim().is_empty()),
    })
}
