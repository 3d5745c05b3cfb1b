//! Schema migrations: the SQL files of `migrations/postgres/`, embedded in
//! the binary, applied in order and recorded in `schema_migrations`.
//!
//! Every pending migration is applied in ONE transaction that first takes a
//! transaction-scoped advisory lock, so replicas starting at once apply each
//! migration once: the others wait for the lock, then find nothing pending.
//! A migration that fails leaves the database as it was. Migrations must
//! therefore run inside a transaction (no `CREATE INDEX CONCURRENTLY`), and an
//! applied file is never edited: the next change is the next file.

use std::collections::BTreeSet;

use tokio_postgres::GenericClient;

use super::{PgError, Target, database_error};
use crate::store::StoreError;

/// The advisory lock migrations are applied under (any fixed number that
/// nothing else in the database uses: "mgmigrat").
const LOCK: i64 = 0x6d67_6d69_6772_6174;

pub(super) struct Migration {
    version: i32,
    pub(super) name: &'static str,
    sql: &'static str,
}

/// Every migration, oldest first.
pub(super) const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "0001_init",
    sql: include_str!("../../../migrations/postgres/0001_init.sql"),
}];

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)";

/// The names of the migrations the database at `url` has not had yet,
/// oldest first (`media-gen migrate --dry-run`). Changes nothing.
pub async fn pending_migrations(url: &str) -> Result<Vec<String>, StoreError> {
    let target = Target::parse(url)?;
    let client = target.connect_one().await?;
    let exists: bool = client
        .query_one("SELECT to_regclass('schema_migrations') IS NOT NULL", &[])
        .await
        .and_then(|row| row.try_get(0))
        .map_err(|e| target.error(e))?;
    let applied = if exists {
        applied(&client).await.map_err(|e| target.error(e))?
    } else {
        BTreeSet::new()
    };
    Ok(MIGRATIONS
        .iter()
        .filter(|m| !applied.contains(&m.version))
        .map(|m| m.name.to_owned())
        .collect())
}

/// Applies the pending migrations to the database at `url` (`media-gen
/// migrate`); returns their names, oldest first (none when it was up to
/// date).
pub async fn migrate(url: &str) -> Result<Vec<String>, StoreError> {
    apply(&Target::parse(url)?).await
}

/// Versions recorded as applied.
async fn applied(client: &impl GenericClient) -> Result<BTreeSet<i32>, tokio_postgres::Error> {
    client
        .query("SELECT version FROM schema_migrations", &[])
        .await?
        .iter()
        .map(|row| row.try_get(0))
        .collect()
}

pub(super) async fn apply(target: &Target) -> Result<Vec<String>, StoreError> {
    let mut client = target.connect_one().await?;
    let tx = client.transaction().await.map_err(|e| target.error(e))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK])
        .await
        .map_err(|e| target.error(e))?;
    tx.batch_execute(CREATE_TABLE)
        .await
        .map_err(|e| target.error(e))?;
    let applied = applied(&tx).await.map_err(|e| target.error(e))?;
    let mut done = Vec::new();
    for m in MIGRATIONS.iter().filter(|m| !applied.contains(&m.version)) {
        let failed = |e| {
            database_error(
                &target.location,
                PgError::Other(format!("migration {}: {}", m.name, PgError::Postgres(e))),
            )
        };
        tx.batch_execute(m.sql).await.map_err(failed)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
            &[&m.version, &m.name],
        )
        .await
        .map_err(failed)?;
        done.push(m.name.to_owned());
    }
    tx.commit().await.map_err(|e| target.error(e))?;
    let known: BTreeSet<i32> = MIGRATIONS.iter().map(|m| m.version).collect();
    let newer: Vec<i32> = applied.difference(&known).copied().collect();
    if !newer.is_empty() {
        tracing::warn!(database = %target.location, versions = ?newer, "the database has migrations this build does not know (a newer media-gen applied them)");
    }
    if !done.is_empty() {
        tracing::info!(database = %target.location, applied = ?done, "database migrations applied");
    }
    Ok(done)
}
