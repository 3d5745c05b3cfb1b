//! [`UsageLedger`] over PostgreSQL: the `usage` table.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio_postgres::Row;

use super::{Db, millis, opt_text, text};
use crate::store::{Outcome, StoreError, UsageEntry, UsageLedger};

const INSERT: &str = "INSERT INTO usage (time, model, operation, kind, size, seconds, estimate_usd, cost_usd, outcome, error, job_id)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";

/// The usage ledger in a PostgreSQL database.
#[derive(Clone)]
pub struct PgUsage {
    db: Db,
}

impl PgUsage {
    pub(crate) fn new(db: Db) -> Self {
        Self { db }
    }
}

/// Adds `e` through `client` (a pooled connection or a transaction).
async fn insert(
    client: &impl deadpool_postgres::GenericClient,
    e: &UsageEntry,
) -> Result<(), tokio_postgres::Error> {
    let stmt = client.prepare_cached(INSERT).await?;
    client
        .execute(
            &stmt,
            &[
                &millis(e.time),
                &text(&e.model),
                &text(&e.operation),
                &text(&e.kind),
                &opt_text(e.size.as_deref()),
                &e.seconds,
                &e.estimate_usd,
                &e.cost_usd,
                &e.outcome.as_str(),
                &opt_text(e.error.as_deref()),
                &opt_text(e.job_id.as_deref()),
            ],
        )
        .await
        .map(drop)
}

fn entry(r: &Row) -> Result<UsageEntry, tokio_postgres::Error> {
    let outcome: String = r.try_get(8)?;
    Ok(UsageEntry {
        time: r.try_get(0)?,
        model: r.try_get(1)?,
        operation: r.try_get(2)?,
        kind: r.try_get(3)?,
        size: r.try_get(4)?,
        seconds: r.try_get(5)?,
        estimate_usd: r.try_get(6)?,
        cost_usd: r.try_get(7)?,
        outcome: Outcome::parse(&outcome).unwrap_or(Outcome::Failed),
        error: r.try_get(9)?,
        job_id: r.try_get(10)?,
    })
}

#[async_trait]
impl UsageLedger for PgUsage {
    async fn record(&self, e: &UsageEntry) -> Result<(), StoreError> {
        let client = self.db.client().await?;
        insert(&client, e).await.map_err(|e| self.db.error(e))
    }

    async fn settle_job(
        &self,
        job_id: &str,
        outcome: Outcome,
        cost_usd: f64,
        seconds: Option<f64>,
        error: Option<String>,
    ) -> Result<bool, StoreError> {
        let client = self.db.client().await?;
        let err = |e| self.db.error(e);
        let stmt = client
            .prepare_cached(
                "UPDATE usage SET outcome = $2, cost_usd = $3, seconds = coalesce($4, seconds), error = $5
                 WHERE job_id = $1",
            )
            .await
            .map_err(err)?;
        let n = client
            .execute(
                &stmt,
                &[
                    &text(job_id),
                    &outcome.as_str(),
                    &cost_usd,
                    &seconds,
                    &opt_text(error.as_deref()),
                ],
            )
            .await
            .map_err(err)?;
        Ok(n > 0)
    }

    async fn entries(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<UsageEntry>, StoreError> {
        let client = self.db.client().await?;
        let err = |e| self.db.error(e);
        let stmt = client
            .prepare_cached(
                "SELECT time, model, operation, kind, size, seconds, estimate_usd, cost_usd, outcome, error, job_id
                 FROM usage WHERE time >= $1 AND time < $2 ORDER BY time, id",
            )
            .await
            .map_err(err)?;
        let rows = client
            .query(&stmt, &[&millis(since), &millis(until)])
            .await
            .map_err(err)?;
        rows.iter()
            .map(entry)
            .collect::<Result<_, _>>()
            .map_err(err)
    }

    async fn spent_since(&self, since: DateTime<Utc>) -> Result<f64, StoreError> {
        let client = self.db.client().await?;
        let err = |e| self.db.error(e);
        let stmt = client
            .prepare_cached("SELECT coalesce(sum(cost_usd), 0.0) FROM usage WHERE time >= $1")
            .await
            .map_err(err)?;
        let row = client
            .query_one(&stmt, &[&millis(since)])
            .await
            .map_err(err)?;
        row.try_get(0).map_err(err)
    }
}
