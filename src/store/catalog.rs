//! The catalog: an SQLite index of the library (WAL, bundled SQLite). It holds
//! nothing the files and sidecars do not, so it can be rebuilt at any time.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Map, Value};

use super::{MediaId, MediaKind, MediaRecord, StoreError};

/// Records by name. No paths cross this trait.
pub trait Catalog: Send + Sync {
    fn insert(&self, r: &MediaRecord) -> Result<(), StoreError>;
    fn insert_many(&self, rs: &[MediaRecord]) -> Result<(), StoreError>;
    fn get(&self, id: &MediaId) -> Result<Option<MediaRecord>, StoreError>;
    fn remove(&self, id: &MediaId) -> Result<(), StoreError>;
    fn all_ids(&self) -> Result<Vec<MediaId>, StoreError>;
    fn count(&self) -> Result<u64, StoreError>;
    /// One page of records matching `q`, and how many match in all.
    fn list(&self, q: &ListQuery) -> Result<(Vec<MediaRecord>, u64), StoreError>;
    /// Files made from `id` (edits, upscales, videos from images).
    fn derived_from(&self, id: &MediaId) -> Result<Vec<MediaId>, StoreError>;
    /// First step of a delete: the row is hidden from reads but kept, so an
    /// interrupted delete can be finished by reconcile.
    fn mark_deleting(&self, id: &MediaId) -> Result<bool, StoreError>;
    /// Rows whose delete was started but not finished.
    fn deleting(&self) -> Result<Vec<MediaId>, StoreError>;
    /// Every ready file, oldest first, with its size and creation time (ms).
    fn oldest_first(&self) -> Result<Vec<(MediaId, u64, i64)>, StoreError>;
}

/// Sort keys for listings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortBy {
    #[default]
    Date,
    Size,
    Name,
}

/// A listing request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    pub kind: Option<MediaKind>,
    pub sort: SortBy,
    pub descending: bool,
    pub limit: u32,
    pub offset: u64,
    /// Case-insensitive substring of the prompt.
    pub text: Option<String>,
}

impl Default for ListQuery {
    fn default() -> Self {
        Self {
            kind: None,
            sort: SortBy::Date,
            descending: true,
            limit: 20,
            offset: 0,
            text: None,
        }
    }
}

const COLUMNS: &str = "filename, kind, mime_type, size_bytes, width, height, created, created_ms, prompt, model, source, metadata";

const SCHEMA_VERSION: i32 = 3;

/// The schema, applied whenever `user_version` is older (every statement is
/// idempotent). Listings read only `state = 'ready'` rows in one of three
/// orders, optionally of one kind, so each order has a partial index that
/// ends on the primary key: a page of 20 is an index walk of 20 entries at
/// any library size. `media_counts` keeps the number of ready rows per kind
/// (triggers), so `total` costs nothing without a search. Prompt search uses an FTS5 trigram index (substring
/// matches, case-insensitive) kept in step by triggers.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS media (
    filename    TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    mime_type   TEXT NOT NULL,
    size_bytes  INTEGER NOT NULL,
    width       INTEGER,
    height      INTEGER,
    created     TEXT NOT NULL,
    created_ms  INTEGER NOT NULL,
    prompt      TEXT,
    model       TEXT,
    source      TEXT,
    metadata    TEXT NOT NULL,
    state       TEXT NOT NULL DEFAULT 'ready'
);
DROP INDEX IF EXISTS media_created;
DROP INDEX IF EXISTS media_kind_created;
DROP INDEX IF EXISTS media_size;
DROP INDEX IF EXISTS media_state_kind;
CREATE INDEX IF NOT EXISTS media_ready_date ON media(created_ms, filename) WHERE state = 'ready';
CREATE INDEX IF NOT EXISTS media_ready_size ON media(size_bytes, filename) WHERE state = 'ready';
CREATE INDEX IF NOT EXISTS media_ready_name ON media(filename) WHERE state = 'ready';
CREATE INDEX IF NOT EXISTS media_ready_kind_date ON media(kind, created_ms, filename) WHERE state = 'ready';
CREATE INDEX IF NOT EXISTS media_ready_kind_size ON media(kind, size_bytes, filename) WHERE state = 'ready';
CREATE INDEX IF NOT EXISTS media_ready_kind_name ON media(kind, filename) WHERE state = 'ready';
CREATE INDEX IF NOT EXISTS media_deleting ON media(filename) WHERE state <> 'ready';
CREATE INDEX IF NOT EXISTS media_source ON media(source);
CREATE VIRTUAL TABLE IF NOT EXISTS media_fts USING fts5(
    prompt, content = 'media', content_rowid = 'rowid', tokenize = 'trigram'
);
CREATE TRIGGER IF NOT EXISTS media_fts_insert AFTER INSERT ON media BEGIN
    INSERT INTO media_fts(rowid, prompt) VALUES (new.rowid, new.prompt);
END;
CREATE TRIGGER IF NOT EXISTS media_fts_delete AFTER DELETE ON media BEGIN
    INSERT INTO media_fts(media_fts, rowid, prompt) VALUES ('delete', old.rowid, old.prompt);
END;
CREATE TRIGGER IF NOT EXISTS media_fts_update AFTER UPDATE OF prompt ON media BEGIN
    INSERT INTO media_fts(media_fts, rowid, prompt) VALUES ('delete', old.rowid, old.prompt);
    INSERT INTO media_fts(rowid, prompt) VALUES (new.rowid, new.prompt);
END;
INSERT INTO media_fts(media_fts) VALUES ('rebuild');
CREATE TABLE IF NOT EXISTS media_counts (kind TEXT PRIMARY KEY, n INTEGER NOT NULL);
CREATE TRIGGER IF NOT EXISTS media_count_insert AFTER INSERT ON media WHEN new.state = 'ready' BEGIN
    INSERT INTO media_counts(kind, n) VALUES (new.kind, 1) ON CONFLICT(kind) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER IF NOT EXISTS media_count_delete AFTER DELETE ON media WHEN old.state = 'ready' BEGIN
    UPDATE media_counts SET n = n - 1 WHERE kind = old.kind;
END;
CREATE TRIGGER IF NOT EXISTS media_count_update_old AFTER UPDATE OF state, kind ON media WHEN old.state = 'ready' BEGIN
    UPDATE media_counts SET n = n - 1 WHERE kind = old.kind;
END;
CREATE TRIGGER IF NOT EXISTS media_count_update_new AFTER UPDATE OF state, kind ON media WHEN new.state = 'ready' BEGIN
    INSERT INTO media_counts(kind, n) VALUES (new.kind, 1) ON CONFLICT(kind) DO UPDATE SET n = n + 1;
END;
DELETE FROM media_counts;
INSERT INTO media_counts(kind, n) SELECT kind, count(*) FROM media WHERE state = 'ready' GROUP BY kind;
";

/// SQLite implementation. One connection behind a mutex: catalog operations
/// are short and run on blocking threads.
pub struct SqliteCatalog {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl SqliteCatalog {
    /// Opens or creates the catalog. A file that is not a database is moved
    /// aside (`.corrupt-<time>`) and a new one created; reconcile refills it.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = match Self::try_open(path) {
            Ok(c) => c,
            Err(rusqlite::Error::SqliteFailure(e, _))
                if matches!(
                    e.code,
                    rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt
                ) =>
            {
                let aside = path.with_extension(format!("corrupt-{}", Utc::now().timestamp()));
                tracing::warn!(catalog = %path.display(), moved_to = %aside.display(), "catalog is corrupt; rebuilding it from the files");
                std::fs::rename(path, &aside).map_err(|source| StoreError::Io {
                    path: path.to_owned(),
                    source,
                })?;
                Self::try_open(path).map_err(|source| StoreError::Catalog {
                    path: path.to_owned(),
                    source,
                })?
            }
            Err(source) => {
                return Err(StoreError::Catalog {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        Ok(Self {
            path: path.to_owned(),
            conn: Mutex::new(conn),
        })
    }

    fn try_open(path: &Path) -> Result<Connection, rusqlite::Error> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let version: i32 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version < SCHEMA_VERSION {
            conn.execute_batch(SCHEMA)?;
            conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        }
        Ok(conn)
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, rusqlite::Error>,
    ) -> Result<T, StoreError> {
        let mut conn = self.conn.lock().map_err(|_| StoreError::Poisoned)?;
        f(&mut conn).map_err(|source| StoreError::Catalog {
            path: self.path.clone(),
            source,
        })
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

impl Catalog for SqliteCatalog {
    fn insert(&self, r: &MediaRecord) -> Result<(), StoreError> {
        self.with(|c| insert_row(c, r))
    }

    fn insert_many(&self, rs: &[MediaRecord]) -> Result<(), StoreError> {
        self.with(|c| {
            let tx = c.transaction()?;
            for r in rs {
                insert_row(&tx, r)?;
            }
            tx.commit()
        })
    }

    fn get(&self, id: &MediaId) -> Result<Option<MediaRecord>, StoreError> {
        self.with(|c| {
            c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM media WHERE filename = ?1 AND state = 'ready'"
            ))?
            .query_row([id.as_str()], row_to_record)
            .optional()
            .map(Option::flatten)
        })
    }

    fn remove(&self, id: &MediaId) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute("DELETE FROM media WHERE filename = ?1", [id.as_str()])
                .map(|_| ())
        })
    }

    fn all_ids(&self) -> Result<Vec<MediaId>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare("SELECT filename FROM media")?;
            let names = stmt.query_map([], |r| r.get::<_, String>(0))?;
            let mut out = Vec::new();
            for n in names {
                if let Ok(id) = n?.parse() {
                    out.push(id);
                }
            }
            Ok(out)
        })
    }

    fn count(&self) -> Result<u64, StoreError> {
        self.with(|c| c.query_row("SELECT count(*) FROM media", [], |r| r.get::<_, i64>(0)))
            .map(|n| n.max(0) as u64)
    }

    fn list(&self, q: &ListQuery) -> Result<(Vec<MediaRecord>, u64), StoreError> {
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
        self.with(|c| {
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
                        .prepare_cached(
                            "SELECT coalesce(sum(n), 0) FROM media_counts WHERE kind = ?",
                        )?
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
            Ok((out, total.max(0) as u64))
        })
    }

    fn derived_from(&self, id: &MediaId) -> Result<Vec<MediaId>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT filename FROM media WHERE source = ?1 AND state = 'ready' ORDER BY created_ms",
            )?;
            let names = stmt.query_map([id.as_str()], |r| r.get::<_, String>(0))?;
            let mut out = Vec::new();
            for n in names {
                if let Ok(id) = n?.parse() {
                    out.push(id);
                }
            }
            Ok(out)
        })
    }

    fn mark_deleting(&self, id: &MediaId) -> Result<bool, StoreError> {
        self.with(|c| {
            c.execute(
                "UPDATE media SET state = 'deleting' WHERE filename = ?1 AND state = 'ready'",
                [id.as_str()],
            )
            .map(|n| n > 0)
        })
    }

    fn oldest_first(&self) -> Result<Vec<(MediaId, u64, i64)>, StoreError> {
        self.with(|c| {
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
    }

    fn deleting(&self) -> Result<Vec<MediaId>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare("SELECT filename FROM media WHERE state = 'deleting'")?;
            let names = stmt.query_map([], |r| r.get::<_, String>(0))?;
            let mut out = Vec::new();
            for n in names {
                if let Ok(id) = n?.parse() {
                    out.push(id);
                }
            }
            Ok(out)
        })
    }
}
