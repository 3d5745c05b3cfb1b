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

const SCHEMA_VERSION: i32 = 2;

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
CREATE INDEX IF NOT EXISTS media_created ON media(created_ms);
CREATE INDEX IF NOT EXISTS media_kind_created ON media(kind, created_ms);
CREATE INDEX IF NOT EXISTS media_size ON media(size_bytes);
CREATE INDEX IF NOT EXISTS media_source ON media(source);
CREATE INDEX IF NOT EXISTS media_state_kind ON media(state, kind);
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
        "INSERT OR REPLACE INTO media (filename, kind, mime_type, size_bytes, width, height, created, created_ms, prompt, model, source, metadata)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
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
        if let Some(text) = q.text.as_deref().filter(|t| !t.is_empty()) {
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
        let page_sql = format!(
            "SELECT {COLUMNS} FROM media WHERE {filter} ORDER BY {order} LIMIT {} OFFSET {}",
            q.limit, q.offset
        );
        let count_sql = format!("SELECT count(*) FROM media WHERE {filter}");
        self.with(|c| {
            let mut stmt = c.prepare_cached(&page_sql)?;
            let rows = stmt.query_map(rusqlite::params_from_iter(args.iter()), row_to_record)?;
            let mut out = Vec::new();
            for r in rows {
                if let Some(r) = r? {
                    out.push(r);
                }
            }
            let total: i64 = c
                .prepare_cached(&count_sql)?
                .query_row(rusqlite::params_from_iter(args.iter()), |r| r.get(0))?;
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
