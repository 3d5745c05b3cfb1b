//! [`JobStore`] over SQLite: each job is kept whole as JSON beside the
//! columns its queries use.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::sqlite::Db;
use crate::store::{Job, JobId, JobStore, StoreError};

/// The jobs in the embedded database.
#[derive(Clone)]
pub struct SqliteJobs {
    db: Db,
}

impl SqliteJobs {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

fn encode(job: &Job) -> Result<String, rusqlite::Error> {
    serde_json::to_string(job).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
}

/// Jobs from `SELECT body …`; a row that no longer parses is skipped (and
/// logged) rather than hiding every other job.
fn jobs(
    conn: &Connection,
    sql: &str,
    args: impl rusqlite::Params,
) -> Result<Vec<Job>, rusqlite::Error> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(args, |r| r.get::<_, String>(0))?;
    let mut out = Vec::new();
    for body in rows {
        match serde_json::from_str::<Job>(&body?) {
            Ok(job) => out.push(job),
            Err(e) => tracing::warn!(error = %e, "skipping a job row that does not parse"),
        }
    }
    Ok(out)
}

#[async_trait]
impl JobStore for SqliteJobs {
    async fn create(&self, job: &Job) -> Result<(), StoreError> {
        let job = job.clone();
        let inserted = self
            .db
            .run(move |c| {
                c.execute(
                    "INSERT INTO jobs (id, state, created_ms, body) VALUES (?1, ?2, ?3, ?4) ON CONFLICT(id) DO NOTHING",
                    params![job.id.as_str(), job.state.as_str(), job.created.timestamp_millis(), encode(&job)?],
                )
                .map(|n| (n > 0, job.id))
            })
            .await?;
        match inserted {
            (true, _) => Ok(()),
            (false, id) => Err(StoreError::JobExists(id)),
        }
    }

    async fn get(&self, id: &JobId) -> Result<Option<Job>, StoreError> {
        let id = id.clone();
        self.db
            .run(move |c| {
                let body: Option<String> = c
                    .prepare_cached("SELECT body FROM jobs WHERE id = ?1")?
                    .query_row([id.as_str()], |r| r.get(0))
                    .optional()?;
                Ok(body.and_then(|b| serde_json::from_str(&b).ok()))
            })
            .await
    }

    async fn update(&self, job: &Job) -> Result<bool, StoreError> {
        let job = job.clone();
        self.db
            .run(move |c| {
                c.execute(
                    "UPDATE jobs SET state = ?2, body = ?3 WHERE id = ?1",
                    params![job.id.as_str(), job.state.as_str(), encode(&job)?],
                )
                .map(|n| n > 0)
            })
            .await
    }

    async fn active(&self) -> Result<Vec<Job>, StoreError> {
        self.db
            .run(|c| {
                jobs(
                    c,
                    "SELECT body FROM jobs WHERE state IN ('queued', 'running') ORDER BY created_ms, id",
                    [],
                )
            })
            .await
    }

    async fn claim(
        &self,
        owner: &str,
        until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Job>, StoreError> {
        let owner = owner.to_owned();
        let now = Utc::now().timestamp_millis();
        let mut claimed = self
            .db
            .run(move |c| {
                // One statement: the connection (and, across processes,
                // SQLite's write lock) makes it atomic.
                jobs(
                    c,
                    "UPDATE jobs SET lease_owner = ?1, lease_until_ms = ?2
                     WHERE id IN (
                         SELECT id FROM jobs
                         WHERE state IN ('queued', 'running')
                           AND (lease_owner IS NULL OR lease_until_ms IS NULL OR lease_until_ms <= ?3)
                         ORDER BY created_ms, id LIMIT ?4)
                     RETURNING body",
                    params![owner, until.timestamp_millis(), now, limit],
                )
            })
            .await?;
        claimed.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
        Ok(claimed)
    }

    async fn renew(
        &self,
        id: &JobId,
        owner: &str,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let (id, owner) = (id.clone(), owner.to_owned());
        self.db
            .run(move |c| {
                c.prepare_cached(
                    "UPDATE jobs SET lease_until_ms = ?3 WHERE id = ?1 AND lease_owner = ?2",
                )?
                .execute(params![id.as_str(), owner, until.timestamp_millis()])
                .map(|n| n > 0)
            })
            .await
    }

    async fn release(&self, id: &JobId, owner: &str) -> Result<(), StoreError> {
        let (id, owner) = (id.clone(), owner.to_owned());
        self.db
            .run(move |c| {
                c.prepare_cached(
                    "UPDATE jobs SET lease_owner = NULL, lease_until_ms = NULL WHERE id = ?1 AND lease_owner = ?2",
                )?
                .execute(params![id.as_str(), owner])
                .map(drop)
            })
            .await
    }

    async fn recent(&self, limit: u32) -> Result<Vec<Job>, StoreError> {
        self.db
            .run(move |c| {
                jobs(
                    c,
                    "SELECT body FROM jobs ORDER BY created_ms DESC, id DESC LIMIT ?1",
                    [limit],
                )
            })
            .await
    }
}
