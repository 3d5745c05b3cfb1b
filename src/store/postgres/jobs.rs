//! [`JobStore`] over PostgreSQL: each job kept whole as `jsonb` beside the
//! columns its queries use, and the lease of the replica that drives it.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::{Db, json, millis, text};
use crate::store::{Job, JobId, JobStore, StoreError};

/// The jobs in a PostgreSQL database.
#[derive(Clone)]
pub struct PgJobs {
    db: Db,
}

impl PgJobs {
    pub(crate) fn new(db: Db) -> Self {
        Self { db }
    }

    /// The job as stored (NUL characters become U+FFFD, see [`json`]).
    fn body(&self, job: &Job) -> Result<Value, StoreError> {
        serde_json::to_value(job).map(|v| json(&v)).map_err(|e| {
            self.db
                .failure(format!("job `{}` cannot be encoded: {e}", job.id))
        })
    }

    /// Jobs from a query whose first column is the body; a row that no
    /// longer parses is skipped (and logged) rather than hiding every other
    /// job.
    async fn jobs(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Job>, StoreError> {
        let client = self.db.client().await?;
        let err = |e| self.db.error(e);
        let stmt = client.prepare_cached(sql).await.map_err(err)?;
        let rows = client.query(&stmt, params).await.map_err(err)?;
        Ok(rows.iter().filter_map(parse).collect())
    }
}

fn parse(row: &Row) -> Option<Job> {
    let body: Value = match row.try_get(0) {
        Ok(body) => body,
        Err(e) => {
            tracing::warn!(error = %e, "skipping a job row that cannot be read");
            return None;
        }
    };
    match serde_json::from_value(body) {
        Ok(job) => Some(job),
        Err(e) => {
            tracing::warn!(error = %e, "skipping a job row that does not parse");
            None
        }
    }
}

#[async_trait]
impl JobStore for PgJobs {
    async fn create(&self, job: &Job) -> Result<(), StoreError> {
        let body = self.body(job)?;
        let client = self.db.client().await?;
        let err = |e| self.db.error(e);
        let stmt = client
            .prepare_cached(
                "INSERT INTO jobs (id, state, created, body) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING",
            )
            .await
            .map_err(err)?;
        let n = client
            .execute(
                &stmt,
                &[
                    &job.id.as_str(),
                    &job.state.as_str(),
                    &millis(job.created),
                    &body,
                ],
            )
            .await
            .map_err(err)?;
        if n == 0 {
            return Err(StoreError::JobExists(job.id.clone()));
        }
        Ok(())
    }

    async fn get(&self, id: &JobId) -> Result<Option<Job>, StoreError> {
        Ok(self
            .jobs("SELECT body FROM jobs WHERE id = $1", &[&id.as_str()])
            .await?
            .pop())
    }

    async fn update(&self, job: &Job) -> Result<bool, StoreError> {
        let body = self.body(job)?;
        let client = self.db.client().await?;
        let err = |e| self.db.error(e);
        let stmt = client
            .prepare_cached("UPDATE jobs SET state = $2, body = $3 WHERE id = $1")
            .await
            .map_err(err)?;
        let n = client
            .execute(&stmt, &[&job.id.as_str(), &job.state.as_str(), &body])
            .await
            .map_err(err)?;
        Ok(n > 0)
    }

    async fn active(&self) -> Result<Vec<Job>, StoreError> {
        self.jobs(
            "SELECT body FROM jobs WHERE state IN ('queued', 'running') ORDER BY created, id",
            &[],
        )
        .await
    }

    /// One statement: `FOR UPDATE SKIP LOCKED` makes concurrent claims
    /// (from any replica) pass over the rows another is taking, and the
    /// recheck of a row another claim took in the meantime finds its new
    /// lease.
    async fn claim(
        &self,
        owner: &str,
        until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Job>, StoreError> {
        let mut claimed = self
            .jobs(
                "UPDATE jobs SET lease_owner = $1, lease_until = $2
                 WHERE id IN (
                     SELECT id FROM jobs
                     WHERE state IN ('queued', 'running')
                       AND (lease_owner IS NULL OR lease_until IS NULL OR lease_until <= $3)
                     ORDER BY created, id
                     LIMIT $4
                     FOR UPDATE SKIP LOCKED)
                 RETURNING body",
                &[
                    &text(owner),
                    &millis(until),
                    &millis(Utc::now()),
                    &i64::from(limit),
                ],
            )
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
        let client = self.db.client().await?;
        let err = |e| self.db.error(e);
        let stmt = client
            .prepare_cached("UPDATE jobs SET lease_until = $3 WHERE id = $1 AND lease_owner = $2")
            .await
            .map_err(err)?;
        let n = client
            .execute(&stmt, &[&id.as_str(), &text(owner), &millis(until)])
            .await
            .map_err(err)?;
        Ok(n > 0)
    }

    async fn release(&self, id: &JobId, owner: &str) -> Result<(), StoreError> {
        let client = self.db.client().await?;
        let err = |e| self.db.error(e);
        let stmt = client
            .prepare_cached(
                "UPDATE jobs SET lease_owner = NULL, lease_until = NULL WHERE id = $1 AND lease_owner = $2",
            )
            .await
            .map_err(err)?;
        client
            .execute(&stmt, &[&id.as_str(), &text(owner)])
            .await
            .map_err(err)?;
        Ok(())
    }

    async fn recent(&self, limit: u32) -> Result<Vec<Job>, StoreError> {
        self.jobs(
            "SELECT body FROM jobs ORDER BY created DESC, id DESC LIMIT $1",
            &[&i64::from(limit)],
        )
        .await
    }
}
