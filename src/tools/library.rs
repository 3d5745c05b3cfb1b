//! The media library: `list_models`, `list_generated`, `get_file_info`,
//! `delete_file`, `get_usage`, and the `media://files/{filename}` resources.

use super::args::Parameters;
use base64::Engine;
use rmcp::handler::server::tool::schema_for_output;
use rmcp::model::{
    CallToolResult, ListResourceTemplatesResult, ListResourcesResult, PaginatedRequestParams,
    ReadResourceResult, Resource, ResourceContents, ResourceTemplate,
};
use rmcp::{ErrorData, tool, tool_router};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::Deserialize;

use super::{MediaServer, outcome};
use crate::contract::{
    DeleteOutput, FileEntry, FileInfoOutput, ListGeneratedOutput, ListModelsOutput, UsageOutput,
};
use crate::service::ListInput;

/// Resources per `resources/list` page.
const RESOURCE_PAGE: u32 = 100;

fn type_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "string", "enum": ["image", "video", "all"], "default": "all"})
}

/// Parameters of `list_models`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ListModelsParams {
    /// Which models: `image`, `video` or `all` (default).
    #[serde(default, rename = "type")]
    #[schemars(schema_with = "type_schema")]
    pub kind: Option<String>,
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

/// Parameters of `get_usage`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct UsageParams {
    /// Start of the period: a date (`2026-03-01`, UTC) or an RFC 3339 time. Default: the
    /// first of this month (UTC).
    #[serde(default)]
    pub since: Option<String>,
    /// End of the period: a date (through the end of that day, UTC) or an RFC 3339 time.
    /// Default: now.
    #[serde(default)]
    pub until: Option<String>,
}

/// Parameters of `get_file_info`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct FileParams {
    /// A file name from the library (as `generate_image` or `list_generated` returned it),
    /// or its `media://files/…` URI.
    pub filename: String,
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

impl MediaServer {
    /// A resource for one file: name, shortened prompt as title, MIME, size.
    fn resource(f: &FileEntry) -> Resource {
        let title: String = f
            .prompt
            .as_deref()
            .unwrap_or(&f.filename)
            .chars()
            .take(80)
            .collect();
        Resource::new(f.uri.clone(), f.filename.clone())
            .with_title(title)
            .with_mime_type(f.mime_type.clone())
            .with_size(f.size_bytes)
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
        let (files, total) = self
            .service()
            .page_files(offset, RESOURCE_PAGE)
            .await
            .map_err(|e| ErrorData::internal_error(e.message(), None))?;
        let next = offset + files.len() as u64;
        let mut result =
            ListResourcesResult::with_all_items(files.iter().map(Self::resource).collect());
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
                format!(
                    "unknown resource `{uri}`; media-gen serves `media://files/{{filename}}` \
                     and `{}`",
                    super::viewer::VIEWER_URI
                ),
                Some(serde_json::json!({"uri": uri})),
            ));
        };
        match self.service().read_file(name).await {
            Ok((mime_type, bytes)) => {
                let blob = base64::engine::general_purpose::STANDARD.encode(&bytes);
                Ok(ReadResourceResult::new(vec![
                    ResourceContents::blob(blob, uri).with_mime_type(mime_type),
                ]))
            }
            Err(e) if e.is_missing_file() => Err(ErrorData::resource_not_found(
                e.message(),
                Some(serde_json::json!({"uri": uri})),
            )),
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
image sizes or video durations each accepts, which one is the default, whether the backend \
offers it right now (`available`; `null` when the backend could not be asked) and its estimated \
`price`: `{\"per_image_usd\":{\"1K\":0.134,…}}` for image models, \
`{\"per_second_usd\":{\"720p\":0.4,…}}` for video models, with the date the figures were \
`checked` and whether the config file set some (`configured`).",
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
        outcome(self.service().list_models(p.kind.as_deref()).await)
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
        let input = ListInput {
            kind: p.kind,
            limit: p.limit,
            offset: p.offset,
            sort_by: p.sort_by,
            order: p.order,
            query: p.query,
        };
        self.linked_outcome(self.service().list_files(&input).await)
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
        self.linked_outcome(self.service().file_info(&p.filename).await)
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
        outcome(self.service().delete_file(&p.filename, p.confirm).await)
    }

    #[tool(
        name = "get_usage",
        title = "Get usage",
        description = "What media-gen's backend calls cost from `since` to `until` (default: this \
month so far, UTC), estimated from its dated price table — not a bill: `total_usd`, images and \
videos made, per model (`by_model`) and per UTC day (`by_day`), the calls that failed or were \
blocked, and the budget (`MCP_BUDGET_DAILY_USD`/`MCP_BUDGET_MONTHLY_USD`, what counts against \
them today and this month). Counted as spend: files made, video jobs still running (their \
estimate), and calls that may have been generated before they failed (answer lost, cancelled); \
not counted: safety-blocked calls (no output is billed), rate-limited, timed-out or refused ones.",
        annotations(
            title = "Get usage",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        ),
        output_schema = schema_for_output::<UsageOutput>()
    )]
    async fn get_usage(&self, Parameters(p): Parameters<UsageParams>) -> CallToolResult {
        outcome(
            self.service()
                .usage(p.since.as_deref(), p.until.as_deref())
                .await,
        )
    }
}
