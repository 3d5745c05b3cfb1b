//! [`Catalog`] over PostgreSQL: the `media` table (see
//! `migrations/postgres/0001_init.sql`), with the same visibility, orders,
//! tie-breaks, totals and prompt search as [`crate::store::local::SqliteCatalog`]
//! (a test lists the same rows through both and compares every page).
//!
//! Writes are serialised across replicas (an advisory lock every statement
//! on `media` takes first, in the schema): totals come from per-kind
//! counters kept by triggers, which concurrent writers would otherwise
//! deadlock on. Two differences from SQLite remain: text cannot hold NUL
//! (stored as U+FFFD, see [`super::text`]), and case-insensitive search of
//! non-ASCII letters follows the database's collation (SQLite folds them
//! for searches of three characters or more, not for shorter ones).

use std::collections::HashSet;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::{Db, json, millis, opt_text, text};
use crate::store::{
    Catalog, Exclusive, ListQuery, MediaId, MediaKind, MediaRecord, Page, SortBy, StoreError,
};

const COLUMNS: &str = "filename, kind, mime_type, size_bytes, width, height, created, prompt, model, source, metadata";

/// Rows per statement of a batch insert.
const CHUNK: usize = 1000;

/// An upsert of many rows in one statement (one array per column): a
/// known name is replaced and made `ready` again.
const UPSERT: &str = "INSERT INTO media (filename, kind, mime_type, size_bytes, width, height, created, prompt, model, source, metadata)
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[], $5::int8[], $6::int8[],
                         $7::timestamptz[], $8::text[], $9::text[], $10::text[], $11::jsonb[])
    ON CONFLICT (filename) DO UPDATE SET kind = excluded.kind, mime_type = excluded.mime_type,
        size_bytes = excluded.size_bytes, width = excluded.width, height = excluded.height,
        created = excluded.created, prompt = excluded.prompt, model = excluded.model,
        source = excluded.source, metadata = excluded.metadata, state = 'ready'";

/// The catalog in a PostgreSQL database.
#[derive(Clone)]
pub struct PgCatalog {
    db: Db,
}

impl PgCatalog {
    pub(crate) fn new(db: Db) -> Self {
        Self { db }
    }

    /// Upserts `records` (the last of any name given twice wins, as one
    /// insert after another would) in one transaction.
    async fn upsert(&self, records: &[MediaRecord]) -> Result<(), StoreError> {
        let mut seen = HashSet::new();
        let mut rows: Vec<&MediaRecord> = records
            .iter()
            .rev()
            .filter(|r| seen.insert(r.id.as_str()))
            .collect();
        rows.reverse();
        let mut client = self.db.client().await?;
        let err = |e| self.db.error(e);
        let tx = client.transaction().await.map_err(err)?;
        let stmt = tx.prepare_cached(UPSERT).await.map_err(err)?;
        for chunk in rows.chunks(CHUNK) {
            let columns = Columns::of(chunk);
            tx.execute(&stmt, &columns.params()).await.map_err(err)?;
        }
        tx.commit().await.map_err(err)
    }

    /// Names from a query whose first column is one, skipping any that are
    /// not valid.
    async fn ids(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<MediaId>, StoreError> {
        let client = self.db.client().await?;
        let stmt = client
            .prepare_cached(sql)
            .await
            .map_err(|e| self.db.error(e))?;
        let rows = client
            .query(&stmt, params)
            .await
            .map_err(|e| self.db.error(e))?;
        Ok(rows
            .iter()
            .filter_map(|r| r.try_get::<_, String>(0).ok()?.parse().ok())
            .collect())
    }
}

/// A batch of records, column by column, as [`UPSERT`] takes them.
struct Columns {
    filename: Vec<String>,
    kind: Vec<&'static str>,
    mime_type: Vec<String>,
    size_bytes: Vec<i64>,
    width: Vec<Option<i64>>,
    height: Vec<Option<i64>>,
    created: Vec<DateTime<Utc>>,
    prompt: Vec<Option<String>>,
    model: Vec<Option<String>>,
    source: Vec<Option<String>>,
    metadata: Vec<Value>,
}

impl Columns {
    fn of(records: &[&MediaRecord]) -> Self {
        Self {
            filename: records.iter().map(|r| r.id.as_str().to_owned()).collect(),
            kind: records.iter().map(|r| r.kind.as_str()).collect(),
            mime_type: records
                .iter()
                .map(|r| text(&r.mime_type).into_owned())
                .collect(),
            size_bytes: records
                .iter()
                .map(|r| i64::try_from(r.size_bytes).unwrap_or(i64::MAX))
                .collect(),
            width: records.iter().map(|r| r.width.map(i64::from)).collect(),
            height: records.iter().map(|r| r.height.map(i64::from)).collect(),
            created: records.iter().map(|r| millis(r.created)).collect(),
            prompt: records
                .iter()
                .map(|r| opt_text(r.prompt.as_deref()))
                .collect(),
            model: records
                .iter()
                .map(|r| opt_text(r.model.as_deref()))
                .collect(),
            source: records
                .iter()
                .map(|r| r.source.as_ref().map(|s| s.as_str().to_owned()))
                .collect(),
            metadata: records
                .iter()
                .map(|r| json(&Value::Object(r.metadata.clone())))
                .collect(),
        }
    }

    fn params(&self) -> [&(dyn ToSql + Sync); 11] {
        [
            &self.filename,
            &self.kind,
            &self.mime_type,
            &self.size_bytes,
            &self.width,
            &self.height,
            &self.created,
            &self.prompt,
            &self.model,
            &self.source,
            &self.metadata,
        ]
    }
}

/// A record from a row of [`COLUMNS`]; `None` for a name that is not valid.
fn record(row: &Row) -> Result<Option<MediaRecord>, tokio_postgres::Error> {
    let filename: String = row.try_get(0)?;
    let Ok(id) = filename.parse::<MediaId>() else {
        return Ok(None);
    };
    let kind: String = row.try_get(1)?;
    let dim = |i| -> Result<Option<u32>, tokio_postgres::Error> {
        Ok(row
            .try_get::<_, Option<i64>>(i)?
            .and_then(|v| u32::try_from(v).ok()))
    };
    let source: Option<String> = row.try_get(9)?;
    let metadata = match row.try_get::<_, Value>(10)? {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    Ok(Some(MediaRecord {
        id,
        kind: MediaKind::parse(&kind).unwrap_or(MediaKind::Image),
        mime_type: row.try_get(2)?,
        size_bytes: row.try_get::<_, i64>(3)?.max(0) as u64,
        width: dim(4)?,
        height: dim(5)?,
        created: row.try_get(6)?,
        prompt: row.try_get(7)?,
        model: row.try_get(8)?,
        source: source.and_then(|s| s.parse().ok()),
        metadata,
    }))
}

/// `text` as an `ILIKE` pattern that matches it as a substring: `%`, `_`
/// and the escape character itself are literal.
fn substring_pattern(text: &str) -> String {
    let escaped = text
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

#[async_trait]
impl Catalog for PgCatalog {
    async fn insert(&self, record: &MediaRecord) -> Result<(), StoreError> {
        self.upsert(std::slice::from_ref(record)).await
    }

    async fn insert_many(&self, records: Vec<MediaRecord>) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        self.upsert(&records).await
    }

    async fn get(&self, id: &MediaId) -> Result<Option<MediaRecord>, StoreError> {
        let client = self.db.client().await?;
        let err = |e| self.db.error(e);
        let stmt = client
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM media WHERE filename = $1 AND state = 'ready'"
            ))
            .await
            .map_err(err)?;
        let row = client
            .query_opt(&stmt, &[&id.as_str()])
            .await
            .map_err(err)?;
        match row {
            Some(row) => record(&row).map_err(err),
            None => Ok(None),
        }
    }

    /// Ready rows only, in the order asked, every order ending on the name
    /// (pages never overlap); the prompt search is a case-insensitive
    /// substring (`ILIKE`, through the trigram index from three
    /// characters on). `total` counts every match.
    async fn list(&self, q: &ListQuery) -> Result<Page, StoreError> {
        let mut filter = String::from("state = 'ready'");
        let mut params: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
        if let Some(kind) = q.kind {
            params.push(Box::new(kind.as_str()));
            filter.push_str(&format!(" AND kind = ${}", params.len()));
        }
        let search = q.text.as_deref().filter(|t| !t.is_empty());
        if let Some(t) = search {
            params.push(Box::new(substring_pattern(&text(t))));
            filter.push_str(&format!(
                " AND prompt ILIKE ${} ESCAPE E'\\\\'",
                params.len()
            ));
        }
        let dir = if q.descending { "DESC" } else { "ASC" };
        let order = match q.sort {
            SortBy::Date => format!("created {dir}, filename {dir}"),
            SortBy::Size => format!("size_bytes {dir}, filename {dir}"),
            SortBy::Name => format!("filename {dir}"),
        };
        let n = params.len();
        let count_sql = match (search, q.kind) {
            // No search: the per-kind counters (`media_counts`).
            (None, Some(_)) => {
                "SELECT coalesce(sum(n), 0)::bigint FROM media_counts WHERE kind = $1".into()
            }
            (None, None) => "SELECT coalesce(sum(n), 0)::bigint FROM media_counts".into(),
            (Some(_), _) => format!("SELECT count(*) FROM media WHERE {filter}"),
        };
        let page_sql = format!(
            "SELECT {COLUMNS} FROM media WHERE {filter} ORDER BY {order} LIMIT ${} OFFSET ${}",
            n + 1,
            n + 2
        );
        let limit = i64::from(q.limit);
        let offset = i64::try_from(q.offset).unwrap_or(i64::MAX);
        let filter_params: Vec<&(dyn ToSql + Sync)> = params
            .iter()
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect();
        let mut page_params = filter_params.clone();
        page_params.push(&limit);
        page_params.push(&offset);

        let client = self.db.client().await?;
        let err = |e| self.db.error(e);
        let (count_stmt, page_stmt) = futures::try_join!(
            client.prepare_cached(&count_sql),
            client.prepare_cached(&page_sql)
        )
        .map_err(err)?;
        // Both statements go out together (tokio-postgres pipelines them).
        let (total, rows) = futures::try_join!(
            client.query_one(&count_stmt, &filter_params),
            client.query(&page_stmt, &page_params)
        )
        .map_err(err)?;
        let total: i64 = total.try_get(0).map_err(err)?;
        let mut records = Vec::with_capacity(rows.len());
        for row in &rows {
            if let Some(r) = record(row).map_err(err)? {
                records.push(r);
            }
        }
        Ok(Page {
            records,
            total: total.max(0) as u64,
        })
    }

    async fn derived_from(&self, id: &MediaId) -> Result<Vec<MediaId>, StoreError> {
        self.ids(
            "SELECT filename FROM media WHERE source = $1 AND state = 'ready' ORDER BY created, filename",
            &[&id.as_str()],
        )
        .await
    }

    async fn mark_deleting(&self, id: &MediaId) -> Result<bool, StoreError> {
        let client = self.db.client().await?;
        let err = |e| self.db.error(e);
        let stmt = client
            .prepare_cached(
                "UPDATE media SET state = 'deleting' WHERE filename = $1 AND state = 'ready'",
            )
            .await
            .map_err(err)?;
        let n = client.execute(&stmt, &[&id.as_str()]).await.map_err(err)?;
        Ok(n > 0)
    }

    async fn deleting(&self) -> Result<Vec<MediaId>, StoreError> {
        self.ids(
            "SELECT filename FROM media WHERE state = 'deleting' ORDER BY filename",
            &[],
        )
        .await
    }

    async fn remove(&self, id: &MediaId) -> Result<(), StoreError> {
        let client = self.db.client().await?;
        let err = |e| self.db.error(e);
        let stmt = client
            .prepare_cached("DELETE FROM media WHERE filename = $1")
            .await
            .map_err(err)?;
        client.execute(&stmt, &[&id.as_str()]).await.map_err(err)?;
        Ok(())
    }

    async fn all_ids(&self) -> Result<Vec<MediaId>, StoreError> {
        self.ids("SELECT filename FROM media ORDER BY filename", &[])
            .await
    }

    /// One `SELECT 1` round trip, given a few seconds.
    async fn ready(&self) -> Result<(), StoreError> {
        self.db.ready().await
    }

    /// A session-level advisory lock on a connection taken out of the
    /// pool: the guard owns that connection, and dropping it closes the
    /// session, which releases the lock (as a crash of this process would).
    async fn try_exclusive(&self, name: &str) -> Result<Option<Exclusive>, StoreError> {
        let client = self.db.client().await?;
        let key = format!("media-gen:{name}");
        let row = client
            .query_one(
                "SELECT pg_try_advisory_lock(hashtextextended($1, 0))",
                &[&key],
            )
            .await
            .map_err(|e| self.db.error(e))?;
        match row.get::<_, bool>(0) {
            true => Ok(Some(Exclusive::new(deadpool_postgres::Object::take(
                client,
            )))),
            false => Ok(None),
        }
    }

    async fn oldest_first(&self) -> Result<Vec<(MediaId, u64, i64)>, StoreError> {
        let client = self.db.client().await?;
        let err = |e| self.db.error(e);
        let stmt = client
            .prepare_cached(
                "SELECT filename, size_bytes, created FROM media WHERE state = 'ready' ORDER BY created, filename",
            )
            .await
            .map_err(err)?;
        let rows = client.query(&stmt, &[]).await.map_err(err)?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let name: String = row.try_get(0).map_err(err)?;
            let size: i64 = row.try_get(1).map_err(err)?;
            let created: DateTime<Utc> = row.try_get(2).map_err(err)?;
            if let Ok(id) = name.parse() {
                out.push((id, size.max(0) as u64, created.timestamp_millis()));
            }
        }
        Ok(out)
    }
}
