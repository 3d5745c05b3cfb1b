//! [`Catalog`] over SQLite. It holds nothing the files and sidecars do not,
//! so it can be rebuilt at any time.

use async_trait::async_trait;
use chrono::DateTime;
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Map, Value};

use super::sqlite::Db;
use crate::store::{Catalog, ListQuery, MediaId, MediaKind, MediaRecord, Page, SortBy, StoreError};

const COLUMNS: &str = "filename, kind, mime_type, size_bytes, width, height, created, created_ms, prompt, model, source, metadata";

/// The catalog in the embedded database.
#[derive(Clone)]
pub struct SqliteCatalog {
    db: Db,
}

impl SqliteCatalog {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

fn insert_row(conn: &Connection, r: &MediaRecord) -> Result<(), rusqlite::Error> {
    let metadata = Value::Object(r.metadata.clone()).to_string();
    conn.prepare_cached(
        // An upsert, not INSERT OR REPLACE: a replace deletes without firing
        // the delete trigger, which would leave the search index stale.
        "INSERT INTO media (filename, kind, mime_type, size_bytes, width, height, created, created_ms, prompt, model, source, metadata)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
         ON CONFLICT(filename) DO UPDATE SET kind = excluded.kind, mime_type = excluded.mime_type,
             size_bytes = excluded.size_bytes, width = excluded.width, height = excluded.height,
             created = excluded.created, created_ms = excluded.created_ms, prompt = excluded.prompt,
             model = excluded.model, source = excluded.source, metadata = excluded.metadata,
             state = 'ready'",
    )?
    .execute(params![
        r.id.as_str(),
        r.kind.as_str(),
        r.mime_type,
        r.size_bytes as i64,
        r.width,
        r.height,
        r.created.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        r.created.timestamp_millis(),
        r.prompt,
        r.model,
        r.source.as_ref().map(MediaId::as_str),
        metadata,
    ])?;
    Ok(())
}

fn row_to_record(row: &rusqlite::Row<'_>) -> Result<Option<MediaRecord>, rusqlite::Error> {
    let filename: String = row.get(0)?;
    let Ok(id) = filename.parse::<MediaId>() else {
        return Ok(None);
    };
    let kind: String = row.get(1)?;
    let created_ms: i64 = row.get(7)?;
    let metadata: String = row.get(11)?;
    let source: Option<String> = row.get(10)?;
    Ok(Some(MediaRecord {
        id,
        kind: MediaKind::parse(&kind).unwrap_or(MediaKind::Image),
        mime_type: row.get(2)?,
        size_bytes: row.get::<_, i64>(3)?.max(0) as u64,
        width: row.get(4)?,
        height: row.get(5)?,
        created: DateTime::from_timestamp_millis(created_ms).unwrap_or_default(),
        prompt: row.get(8)?,
        model: row.get(9)?,
        source: source.and_then(|s| s.parse().ok()),
        metadata: serde_json::from_str::<Map<String, Value>>(&metadata).unwrap_or_default(),
    }))
}

/// The names a query returns (first column), skipping any that are not valid.
fn ids(
    conn: &Connection,
    sql: &str,
    args: impl rusqlite::Params,
) -> Result<Vec<MediaId>, rusqlite::Error> {
    let mut stmt = conn.prepare_cached(sql)?;
    let names = stmt.query_map(args, |r| r.get::<_, String>(0))?;
    let mut out = Vec::new();
    for n in names {
        if let Ok(id) = n?.parse() {
            out.push(id);
        }
    }
    Ok(out)
}

/// One page of `q` (the query plan is explained where it is chosen).
fn list_page(c: &mut Connection, q: &ListQuery) -> Result<Page, rusqlite::Error> {
    let mut filter = String::from("state = 'ready'");
    let mut args: Vec<rusqlite::types::Value> = Vec::new();
    if let Some(kind) = q.kind {
        filter.push_str(" AND kind = ?");
        args.push(kind.as_str().to_owned().into());
    }
    let text = q.text.as_deref().filter(|t| !t.is_empty());
    // The trigram index needs three characters; a quoted phrase matches
    // as a case-insensitive substring.
    let phrase = text
        .filter(|t| t.chars().count() >= 3)
        .map(|t| format!("prompt:\"{}\"", t.replace('"', "\"\"")));
    if let (Some(text), None) = (text, &phrase) {
        // Too short for trigrams: a scan, bounded by the library size.
        filter.push_str(" AND prompt LIKE ? ESCAPE '\\'");
        let escaped = text
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        args.push(format!("%{escaped}%").into());
    }
    let dir = if q.descending { "DESC" } else { "ASC" };
    // Every order ends on the primary key, so pages never overlap.
    let order = match q.sort {
        SortBy::Date => format!("created_ms {dir}, filename {dir}"),
        SortBy::Size => format!("size_bytes {dir}, filename {dir}"),
        SortBy::Name => format!("filename {dir}"),
    };
    let mut total = None;
    if let Some(phrase) = &phrase {
        const MATCHES: &str = "(SELECT rowid FROM media_fts WHERE media_fts MATCH ?)";
        let hits: i64 = c
            .prepare_cached("SELECT count(*) FROM media_fts WHERE media_fts MATCH ?")?
            .query_row([phrase], |r| r.get(0))?;
        // Few matches: fetch them by rowid and sort. Many: walk the
        // order's index and keep rows that match (`+rowid` stops
        // SQLite from choosing the first plan), which finds a page
        // after a few dozen rows instead of sorting thousands.
        if hits <= 2000 {
            filter.push_str(&format!(" AND rowid IN {MATCHES}"));
        } else {
            filter.push_str(&format!(" AND +rowid IN {MATCHES}"));
        }
        args.push(phrase.clone().into());
        let pending: bool = c
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM media WHERE state <> 'ready')")?
            .query_row([], |r| r.get(0))?;
        if q.kind.is_none() && !pending {
            // Every indexed row is a ready row: the index's count is exact.
            total = Some(hits);
        }
    }
    let total = match total {
        Some(t) => t,
        None if phrase.is_some() || text.is_some() => c
            .prepare_cached(&format!("SELECT count(*) FROM media WHERE {filter}"))?
            .query_row(rusqlite::params_from_iter(args.iter()), |r| r.get(0))?,
        // No search: the per-kind counters.
        None => match q.kind {
            Some(kind) => c
                .prepare_cached("SELECT coalesce(sum(n), 0) FROM media_counts WHERE kind = ?")?
                .query_row([kind.as_str()], |r| r.get(0))?,
            None => c
                .prepare_cached("SELECT coalesce(sum(n), 0) FROM media_counts")?
                .query_row([], |r| r.get(0))?,
        },
    };
    let page_sql = format!(
        "SELECT {COLUMNS} FROM media WHERE {filter} ORDER BY {order} LIMIT {} OFFSET {}",
        q.limit, q.offset
    );
    let mut stmt = c.prepare_cached(&page_sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(args.iter()), row_to_record)?;
    let mut out = Vec::new();
    for r in rows {
        if let Some(r) = r? {
            out.push(r);
        }
    }
    Ok(Page {
        records: out,
        total: total.max(0) as u64,
    })
}

#[async_trait]
impl Catalog for SqliteCatalog {
    async fn insert(&self, record: &MediaRecord) -> Result<(), StoreError> {
        let r = record.clone();
        self.db.run(move |c| insert_row(c, &r)).await
    }

    async fn insert_many(&self, records: Vec<MediaRecord>) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        self.db
            .run(move |c| {
                let tx = c.transaction()?;
                for r in &records {
                    insert_row(&tx, r)?;
                }
                tx.commit()
            })
            .await
    }

    async fn get(&self, id: &MediaId) -> Result<Option<MediaRecord>, StoreError> {
        let id = id.clone();
        self.db
            .run(move |c| {
                c.prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM media WHERE filename = ?1 AND state = 'ready'"
                ))?
                .query_row([id.as_str()], row_to_record)
                .optional()
                .map(Option::flatten)
            })
            .await
    }

    async fn list(&self, q: &ListQuery) -> Result<Page, StoreError> {
        let q = q.clone();
        self.db.run(move |c| list_page(c, &q)).await
    }

    async fn derived_from(&self, id: &MediaId) -> Result<Vec<MediaId>, StoreError> {
        let id = id.clone();
        self.db
            .run(move |c| {
                ids(
                    c,
                    "SELECT filename FROM media WHERE source = ?1 AND state = 'ready' ORDER BY created_ms",
                    [id.as_str()],
                )
            })
            .await
    }

    async fn mark_deleting(&self, id: &MediaId) -> Result<bool, StoreError> {
        let id = id.clone();
        self.db
            .run(move |c| {
                c.execute(
                    "UPDATE media SET state = 'deleting' WHERE filename = ?1 AND state = 'ready'",
                    [id.as_str()],
                )
                .map(|n| n > 0)
            })
            .await
    }

    async fn deleting(&self) -> Result<Vec<MediaId>, StoreError> {
        self.db
            .run(|c| ids(c, "SELECT filename FROM media WHERE state = 'deleting'", []))
            .await
    }

    async fn remove(&self, id: &MediaId) -> Result<(), StoreError> {
        let id = id.clone();
        self.db
            .run(move |c| {
                c.execute("DELETE FROM media WHERE filename = ?1", [id.as_str()])
                    .map(|_| ())
            })
            .await
    }

    async fn all_ids(&self) -> Result<Vec<MediaId>, StoreError> {
        self.db
            .run(|c| ids(c, "SELECT filename FROM media", []))
            .await
    }

    async fn oldest_first(&self) -> Result<Vec<(MediaId, u64, i64)>, StoreError> {
        self.db
            .run(|c| {
                let mut stmt = c.prepare(
                    "SELECT filename, size_bytes, created_ms FROM media WHERE state = 'ready' ORDER BY created_ms, filename",
                )?;
                let rows = stmt.query_map([], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
                })?;
                let mut out = Vec::new();
                for row in rows {
                    let (name, size, created) = row?;
                    if let Ok(id) = name.parse() {
                        out.push((id, size.max(0) as u64, created));
                    }
                }
                Ok(out)
            })
            .await
    }

    async fn ready(&self) -> Result<(), StoreError> {
        self.db
            .run(|c| c.query_row("SELECT count(*) FROM media_counts", [], |_| Ok(())))
            .await
    }
}
