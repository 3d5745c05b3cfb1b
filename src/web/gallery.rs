//! The web gallery at `/gallery`: a page (HTML, CSS and JavaScript compiled
//! into the binary: no CDN, it works offline) over a small JSON API —
//! `api/files` (list, filter by type and prompt text), `api/files/NAME`
//! (metadata and lineage), `thumbs/NAME` (cached thumbnails) and `events`
//! (server-sent events from the library's change feed, so new media appear
//! without a reload). Deleting goes through `DELETE /files/NAME`.

use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::Stream;
use serde::Deserialize;

use super::{Failure, Web, json};
use crate::service::ListInput;
use crate::store::Change;

const INDEX_HTML: &str = include_str!("assets/gallery.html");
const APP_JS: &str = include_str!("assets/gallery.js");
const APP_CSS: &str = include_str!("assets/gallery.css");

/// The page may load only its own scripts, styles, images and media, and
/// may not be framed (clickjacking of the delete button).
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
media-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// How often an idle event stream gets a keep-alive comment.
const EVENTS_KEEP_ALIVE: Duration = Duration::from_secs(15);

pub(super) fn routes(web: Web) -> Router {
    Router::new()
        .route("/gallery", get(index))
        .route("/gallery/", get(index))
        .route("/gallery/app.js", get(app_js))
        .route("/gallery/app.css", get(app_css))
        .route("/gallery/api/files", get(list))
        .route("/gallery/api/files/{name}", get(info))
        .route("/gallery/thumbs/{name}", get(thumbnail))
        .route("/gallery/events", get(events))
        .with_state(web)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        body,
    )
        .into_response();
    if content_type.starts_with("text/html") {
        let h = response.headers_mut();
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
        h.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
    }
    response
}

async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX_HTML)
}

async fn app_js() -> Response {
    asset("text/javascript; charset=utf-8", APP_JS)
}

async fn app_css() -> Response {
    asset("text/css; charset=utf-8", APP_CSS)
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    #[serde(rename = "type")]
    kind: Option<String>,
    q: Option<String>,
    sort: Option<String>,
    order: Option<String>,
    offset: Option<i64>,
    limit: Option<i64>,
}

async fn list(State(web): State<Web>, Query(q): Query<ListQuery>) -> Result<Response, Failure> {
    let input = ListInput {
        kind: q.kind,
        limit: q.limit,
        offset: q.offset,
        sort_by: q.sort,
        order: q.order,
        query: q.q.filter(|s| !s.trim().is_empty()),
    };
    let mut out = web.service.list_files(&input).await?;
    web.link(&mut out);
    Ok(json(StatusCode::OK, &out))
}

async fn info(State(web): State<Web>, Path(name): Path<String>) -> Result<Response, Failure> {
    let mut out = web.service.file_info(&name).await?;
    web.link(&mut out);
    Ok(json(StatusCode::OK, &out))
}

async fn thumbnail(
    State(web): State<Web>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Failure> {
    let file = web.service.stored_file(&name).await?;
    // A thumbnail is a function of the file, which never changes.
    let etag = format!("\"t{}", file.etag().trim_start_matches('"'));
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let thumb = web.service.thumbnail(&name).await?;
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(thumb.mime_type),
            )],
            thumb.bytes,
        )
            .into_response()
    };
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=86400"),
    );
    Ok(response)
}

/// `added` / `removed` events with the file name as data, `rescanned` when
/// anything may have changed (reload the list).
async fn events(State(web): State<Web>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let subscription = web.service.subscribe();
    let stop = web.stop.clone();
    let stream = futures::stream::unfold((subscription, stop), |(mut sub, stop)| async move {
        let change = tokio::select! {
            change = sub.next() => change?,
            () = stop.cancelled() => return None,
        };
        let event = match change {
            Change::Added(id) => Event::default().event("added").data(id.as_str()),
            Change::Removed(id) => Event::default().event("removed").data(id.as_str()),
            Change::Rescanned => Event::default().event("rescanned").data(""),
        };
        Some((Ok(event), (sub, stop)))
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(EVENTS_KEEP_ALIVE))
}
