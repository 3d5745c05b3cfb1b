//! `GET /files/NAME` (download: MIME type, `Range`, `ETag` /
//! `If-None-Match`, `Content-Disposition` with the name), `DELETE
//! /files/NAME`, and `POST /files` (upload an input image: a raw `image/*`
//! body, or the multipart field `file`).

use std::ops::Range;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use serde::Deserialize;

use super::{Failure, Web, json, refusal};
use crate::contract::ErrorCode;
use crate::service::StoredFile;

/// Room for the multipart framing around the file itself.
const MULTIPART_OVERHEAD: usize = 64 * 1024;

pub(super) fn routes(web: Web) -> Router {
    let limit = usize::try_from(web.service.upload_limit())
        .unwrap_or(usize::MAX)
        .saturating_add(MULTIPART_OVERHEAD);
    Router::new()
        .route(
            "/files",
            axum::routing::post(upload).layer(DefaultBodyLimit::max(limit)),
        )
        .route("/files/{name}", get(download).delete(delete))
        .with_state(web)
}

#[derive(Debug, Deserialize)]
struct DownloadQuery {
    /// Any value: `Content-Disposition: attachment` (save, not show).
    download: Option<String>,
}

async fn download(
    State(web): State<Web>,
    Path(name): Path<String>,
    Query(q): Query<DownloadQuery>,
    headers: HeaderMap,
) -> Result<Response, Failure> {
    let file = web.service.stored_file(&name).await?;
    let disposition = match q.download {
        Some(_) => "attachment",
        None => "inline",
    };
    // Presigned links (`MCP_STORAGE_PRESIGN`): the bytes come from the
    // store itself, not through this server.
    if q.download.is_none()
        && let Some(url) = web.service.download_url(&file.id).await?
        && let Ok(location) = HeaderValue::from_str(&url)
    {
        let mut response = StatusCode::TEMPORARY_REDIRECT.into_response();
        response.headers_mut().insert(header::LOCATION, location);
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return Ok(response);
    }
    serve(&web, &file, &headers, disposition).await
}

/// The file, whole or the asked range, with its validators.
async fn serve(
    web: &Web,
    file: &StoredFile,
    headers: &HeaderMap,
    disposition: &str,
) -> Result<Response, Failure> {
    let etag = file.etag();
    if let Some(given) = headers.get(header::IF_NONE_MATCH)
        && etag_matches(given, &etag)
    {
        return Ok(with_file_headers(
            StatusCode::NOT_MODIFIED.into_response(),
            file,
            &etag,
            disposition,
        ));
    }
    // A range applies only to the version the client has (If-Range).
    let range_allowed = headers
        .get(header::IF_RANGE)
        .is_none_or(|v| v.to_str().is_ok_and(|v| v.trim() == etag));
    let range = match headers.get(header::RANGE).filter(|_| range_allowed) {
        Some(value) => match parse_range(value.to_str().unwrap_or_default(), file.size) {
            RangeAsk::Whole => None,
            RangeAsk::Part(r) => Some(r),
            RangeAsk::Unsatisfiable => {
                let mut response = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
                if let Ok(v) = HeaderValue::from_str(&format!("bytes */{}", file.size)) {
                    response.headers_mut().insert(header::CONTENT_RANGE, v);
                }
                return Ok(with_file_headers(response, file, &etag, disposition));
            }
        },
        None => None,
    };
    let (status, bytes, content_range) = match range {
        Some(r) => {
            let bytes = web.service.read_range(&file.id, r.clone()).await?;
            let end = r.start + bytes.len() as u64;
            let content_range =
                format!("bytes {}-{}/{}", r.start, end.saturating_sub(1), file.size);
            (StatusCode::PARTIAL_CONTENT, bytes, Some(content_range))
        }
        None => (
            StatusCode::OK,
            web.service.read_range(&file.id, 0..file.size).await?,
            None,
        ),
    };
    let mut response = (status, Body::from(bytes)).into_response();
    if let Some(v) = content_range.and_then(|c| HeaderValue::from_str(&c).ok()) {
        response.headers_mut().insert(header::CONTENT_RANGE, v);
    }
    Ok(with_file_headers(response, file, &etag, disposition))
}

fn with_file_headers(
    mut response: Response,
    file: &StoredFile,
    etag: &str,
    disposition: &str,
) -> Response {
    let h = response.headers_mut();
    let mut set = |name, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            h.insert(name, v);
        }
    };
    set(header::CONTENT_TYPE, &file.mime_type);
    set(header::ETAG, etag);
    set(header::ACCEPT_RANGES, "bytes");
    // Library names are `[A-Za-z0-9_.-]`: no quoting problems.
    set(
        header::CONTENT_DISPOSITION,
        &format!("{disposition}; filename=\"{}\"", file.id),
    );
    // Files never change under their name, but may be deleted: cache
    // privately, and revalidate (cheap: 304) after a day.
    set(header::CACHE_CONTROL, "private, max-age=86400");
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    response
}

fn etag_matches(given: &HeaderValue, etag: &str) -> bool {
    given.to_str().is_ok_and(|v| {
        v.split(',')
            .map(|t| t.trim().trim_start_matches("W/"))
            .any(|t| t == "*" || t == etag)
    })
}

/// What a `Range` header asks of a file of `size` bytes.
#[derive(Debug, PartialEq, Eq)]
enum RangeAsk {
    /// Absent, malformed, or several ranges: the whole file (allowed by RFC 9110).
    Whole,
    Part(Range<u64>),
    Unsatisfiable,
}

fn parse_range(value: &str, size: u64) -> RangeAsk {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return RangeAsk::Whole;
    };
    if spec.contains(',') {
        return RangeAsk::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeAsk::Whole;
    };
    let (first, last) = (first.trim(), last.trim());
    let range = match (first.is_empty(), last.is_empty()) {
        // `-N`: the last N bytes.
        (true, false) => match last.parse::<u64>() {
            Ok(0) => return RangeAsk::Unsatisfiable,
            Ok(n) => size.saturating_sub(n)..size,
            Err(_) => return RangeAsk::Whole,
        },
        // `A-`: from A to the end.
        (false, true) => match first.parse::<u64>() {
            Ok(a) => a..size,
            Err(_) => return RangeAsk::Whole,
        },
        (false, false) => match (first.parse::<u64>(), last.parse::<u64>()) {
            (Ok(a), Ok(b)) if a <= b => a..b.saturating_add(1).min(size),
            _ => return RangeAsk::Whole,
        },
        (true, true) => return RangeAsk::Whole,
    };
    if range.start >= size || range.is_empty() {
        return RangeAsk::Unsatisfiable;
    }
    RangeAsk::Part(range)
}

async fn delete(State(web): State<Web>, Path(name): Path<String>) -> Result<Response, Failure> {
    let out = web.service.delete_file(&name, true).await?;
    Ok(json(StatusCode::OK, &out))
}

#[derive(Debug, Deserialize)]
struct UploadQuery {
    /// The original file name, for a raw body (kept in the sidecar).
    name: Option<String>,
}

/// Stores an uploaded image and answers with its library name (201).
async fn upload(State(web): State<Web>, req: Request) -> Response {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let limit = web.service.upload_limit();
    let query_name = Query::<UploadQuery>::try_from_uri(req.uri())
        .ok()
        .and_then(|q| q.0.name);
    let received = if content_type.starts_with("multipart/form-data") {
        multipart_file(req, limit).await
    } else if content_type.starts_with("image/") {
        match axum::body::to_bytes(
            req.into_body(),
            usize::try_from(limit).unwrap_or(usize::MAX),
        )
        .await
        {
            Ok(bytes) => Ok((bytes, query_name)),
            Err(_) => Err(too_large(limit)),
        }
    } else {
        Err(refusal(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::InvalidParameter,
            format!(
                "send the image as the request body with `Content-Type: image/png` (or jpeg, \
webp, gif), or as the multipart/form-data field `file`; got `{}`",
                if content_type.is_empty() {
                    "no Content-Type"
                } else {
                    &content_type
                }
            ),
        ))
    };
    let (bytes, name) = match received {
        Ok(r) => r,
        Err(response) => return response,
    };
    match web.service.upload(bytes, name).await {
        Ok(mut out) => {
            web.link(&mut out);
            json(StatusCode::CREATED, &out)
        }
        Err(e) => Failure(e).into_response(),
    }
}

/// The `file` field of a multipart upload, and its file name.
async fn multipart_file(req: Request, limit: u64) -> Result<(Bytes, Option<String>), Response> {
    let bad = |message: String| {
        refusal(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidParameter,
            message,
        )
    };
    let mut form = Multipart::from_request(req, &())
        .await
        .map_err(|e| bad(format!("not a readable multipart/form-data body: {e}")))?;
    loop {
        let field = form
            .next_field()
            .await
            .map_err(|e| multipart_error(&e, limit))?;
        let Some(field) = field else {
            return Err(bad(
                "the multipart body has no field named `file`: send the image as `file`".into(),
            ));
        };
        if field.name() != Some("file") {
            continue;
        }
        let name = field.file_name().map(str::to_owned);
        let bytes = field
            .bytes()
            .await
            .map_err(|e| multipart_error(&e, limit))?;
        return Ok((bytes, name));
    }
}

fn multipart_error(e: &axum::extract::multipart::MultipartError, limit: u64) -> Response {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return too_large(limit);
    }
    refusal(
        StatusCode::BAD_REQUEST,
        ErrorCode::InvalidParameter,
        format!("the multipart body could not be read: {}", e.body_text()),
    )
}

fn too_large(limit: u64) -> Response {
    refusal(
        StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::InvalidImage,
        format!(
            "the upload is over the limit of {:.1} MB (`input_max_bytes`); send a smaller \
image, or raise MCP_INPUT_MAX_BYTES on the server",
            limit as f64 / 1e6
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), RangeAsk::Part(0..10));
        assert_eq!(parse_range("bytes=90-200", 100), RangeAsk::Part(90..100));
        assert_eq!(parse_range("bytes=95-", 100), RangeAsk::Part(95..100));
        assert_eq!(parse_range("bytes=-5", 100), RangeAsk::Part(95..100));
        assert_eq!(parse_range("bytes=-500", 100), RangeAsk::Part(0..100));
        assert_eq!(parse_range("bytes=100-", 100), RangeAsk::Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 100), RangeAsk::Unsatisfiable);
        assert_eq!(parse_range("bytes=5-1", 100), RangeAsk::Whole);
        assert_eq!(parse_range("bytes=0-1,5-6", 100), RangeAsk::Whole);
        assert_eq!(parse_range("items=0-1", 100), RangeAsk::Whole);
        assert_eq!(parse_range("bytes=a-b", 100), RangeAsk::Whole);
        assert_eq!(parse_range("bytes=0-0", 0), RangeAsk::Unsatisfiable);
    }

    #[test]
    fn etags() {
        let e = "\"x-1-2\"";
        assert!(etag_matches(&HeaderValue::from_static("\"x-1-2\""), e));
        assert!(etag_matches(
            &HeaderValue::from_static("\"a\", W/\"x-1-2\""),
            e
        ));
        assert!(etag_matches(&HeaderValue::from_static("*"), e));
        assert!(!etag_matches(&HeaderValue::from_static("\"x-1-3\""), e));
    }
}
