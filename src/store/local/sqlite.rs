//! The embedded database (`catalog.sqlite3`: WAL, bundled SQLite) that
//! holds the catalog and the jobs. One connection behind a mutex: every
//! operation is short and runs on a blocking thread.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::Utc;
use rusqlite::Connection;

use crate::store::{StoreError, blocking};

const SCHEMA_VERSION: i32 = 6;

/// The schema, applied whenever `user_version` is older (every statement is
/// idempotent).
///
/// Catalog: listings read only `state = 'ready'` rows in one of three
/// orders, optionally of one kind, so each order has a partial index that
/// ends on the primary key: a page of 20 is an index walk of 20 entries at
/// any library size. `media_counts` keeps the number of ready rows per kind
/// (triggers), so `total` costs nothing without a search. Prompt search
/// uses an FTS5 trigram index (substring matches, case-insensitive) kept in
/// step by triggers.
///
/// Jobs: the whole job as JSON, with the columns its queries need.
///
/// Usage (version 5): the ledger, one row per backend call; sums run over
/// `time_ms` ranges.
///
/// Version 6: budget holds (`usage_holds`) and job leases (the `lease_*`
/// columns, added by [`add_lease_columns`] since SQLite's `ADD COLUMN` has
/// no `IF NOT EXISTS`).
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
CREATE TABLE IF NOT EXISTS jobs (
    id          TEXT PRIMARY KEY,
    state       TEXT NOT NULL,
    created_ms  INTEGER NOT NULL,
    body        TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_created ON jobs(created_ms, id);
CREATE INDEX IF NOT EXISTS jobs_active ON jobs(created_ms, id) WHERE state IN ('queued', 'running');
CREATE TABLE IF NOT EXISTS usage (
    id           INTEGER PRIMARY KEY,
    time_ms      INTEGER NOT NULL,
    model        TEXT NOT NULL,
    operation    TEXT NOT NULL,
    kind         TEXT NOT NULL,
    size         TEXT,
    seconds      REAL,
    estimate_usd REAL,
    cost_usd     REAL NOT NULL,
    outcome      TEXT NOT NULL,
    error        TEXT,
    job_id       TEXT
);
CREATE INDEX IF NOT EXISTS usage_time ON usage(time_ms);
CREATE INDEX IF NOT EXISTS usage_job ON usage(job_id) WHERE job_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS usage_holds (
    key         TEXT PRIMARY KEY,
    usd         REAL NOT NULL,
    expires_ms  INTEGER NOT NULL
);
";

/// Adds the job lease columns unless they are there.
fn add_lease_columns(conn: &Connection) -> Result<(), rusqlite::Error> {
    let mut stmt = conn.prepare("SELECT name FROM pragma_table_info('jobs')")?;
    let columns: Vec<String> = stmt
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for (name, kind) in [("lease_owner", "TEXT"), ("lease_until_ms", "INTEGER")] {
        if !columns.iter().any(|c| c == name) {
            conn.execute_batch(&format!("ALTER TABLE jobs ADD COLUMN {name} {kind}"))?;
        }
    }
    Ok(())
}

/// The database: one connection, shared by the catalog and the jobs.
/// Cheap to clone.
#[derive(Clone)]
pub struct Db {
    path: Arc<PathBuf>,
    conn: Arc<Mutex<Connection>>,
}

impl Db {
    /// Opens or creates the database. A file that is not a database is
    /// moved aside (`.corrupt-<time>`) and a new one created; reconcile
    /// refills the catalog from the files.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let fail = |source: rusqlite::Error| database_error(path, source);
        let conn = match try_open(path) {
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
                try_open(path).map_err(fail)?
            }
            Err(source) => return Err(fail(source)),
        };
        Ok(Self {
            path: Arc::new(path.to_owned()),
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs `f` with the connection, on a blocking thread.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, rusqlite::Error> + Send + 'static,
    ) -> Result<T, StoreError> {
        let db = self.clone();
        blocking(move || db.with(f)).await
    }

    /// Runs `f` with the connection on this thread.
    pub fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, rusqlite::Error>,
    ) -> Result<T, StoreError> {
        let mut conn = self.conn.lock().map_err(|_| StoreError::Poisoned)?;
        f(&mut conn).map_err(|source| database_error(&self.path, source))
    }
}

fn database_error(path: &Path, source: rusqlite::Error) -> StoreError {
    StoreError::Database {
        location: path.display().to_string(),
        source: Box::new(source),
    }
}

fn try_open(path: &Path) -> Result<Connection, rusqlite::Error> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    let version: i32 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version < SCHEMA_VERSION {
        conn.execute_batch(SCHEMA)?;
        add_lease_columns(&conn)?;
        conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    }
    Ok(conn)
}
