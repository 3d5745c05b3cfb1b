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
}

const SCHEMA_VERSION: i32 = 1;

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
            c.prepare_cached(
                "SELECT filename, kind, mime_type, size_bytes, width, height, created, created_ms, prompt, model, source, metadata
                 FROM media WHERE filename = ?1 AND state = 'ready'",
            )?
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
}
