//! [`UsageLedger`] over PostgreSQL: the `usage` table.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio_postgres::Row;

use super::{Db, millis, opt_text, text};
use crate::store::{
    CAP_EPSILON, Cap, CapHit, HoldKey, Outcome, StoreError, UsageEntry, UsageLedger, first_cap_hit,
};

/// The advisory lock every change to the holds is made under ("mgholds!"):
/// a hold's sums and its insert, and a settle's move from held to spent,
/// are serialised across every replica.
const HOLD_LOCK: i64 = 0x6d67_686f_6c64_7321;

const INSERT: &str = "INSERT INTO usage (time, model, operation, kind, size, seconds, estimate_usd, cost_usd, outcome, error, job_id)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";

const SPENT: &str = "SELECT coalesce(sum(cost_usd), 0.0) FROM usage WHERE time >= $1";
const HELD: &str = "SELECT coalesce(sum(usd), 0.0) FROM usage_holds WHERE expires > $1";

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

    async fn hold(
        &self,
        usd: f64,
        caps: &[Cap],
        expires: DateTime<Utc>,
    ) -> Result<Result<HoldKey, CapHit>, StoreError> {
        let mut client = self.db.client().await?;
        let err = |e| self.db.error(e);
        let tx = client.transaction().await.map_err(err)?;
        // Taken before anything is read: each statement after it (READ
        // COMMITTED) sees every hold and settle committed before.
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&HOLD_LOCK])
            .await
            .map_err(err)?;
        let now = Utc::now();
        tx.execute(
            "DELETE FROM usage_holds WHERE expires <= $1",
            &[&millis(now)],
        )
        .await
        .map_err(err)?;
        let spent_stmt = tx.prepare_cached(SPENT).await.map_err(err)?;
        let mut spent = Vec::with_capacity(caps.len());
        for cap in caps {
            let row = tx
                .query_one(&spent_stmt, &[&millis(cap.since)])
                .await
                .map_err(err)?;
            spent.push(row.try_get::<_, f64>(0).map_err(err)?);
        }
        let held: f64 = tx
            .query_one(HELD, &[&millis(now)])
            .await
            .and_then(|r| r.try_get(0))
            .map_err(err)?;
        if let Some(hit) = first_cap_hit(caps, &spent, held, usd) {
            // Nothing written but the expired holds' removal: keep that.
            tx.commit().await.map_err(err)?;
            return Ok(Err(hit));
        }
        let key = HoldKey::new();
        tx.execute(
            "INSERT INTO usage_holds (key, usd, expires) VALUES ($1, $2, $3)",
            &[&key.0, &usd, &millis(expires)],
        )
        .await
        .map_err(err)?;
        tx.commit().await.map_err(err)?;
        Ok(Ok(key))
    }

    async fn settle(
        &self,
        key: &HoldKey,
        usd: f64,
        entry: Option<&UsageEntry>,
    ) -> Result<(), StoreError> {
        let mut client = self.db.client().await?;
        let err = |e| self.db.error(e);
        let tx = client.transaction().await.map_err(err)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&HOLD_LOCK])
            .await
            .map_err(err)?;
        tx.execute(
            "UPDATE usage_holds SET usd = usd - $2 WHERE key = $1",
            &[&key.0, &usd],
        )
        .await
        .map_err(err)?;
        tx.execute(
            "DELETE FROM usage_holds WHERE key = $1 AND usd <= $2",
            &[&key.0, &CAP_EPSILON],
        )
        .await
        .map_err(err)?;
        if let Some(e) = entry {
            insert(&tx, e).await.map_err(err)?;
        }
        tx.commit().await.map_err(err)
    }

    async fn held(&self, now: DateTime<Utc>) -> Result<f64, StoreError> {
        let client = self.db.client().await?;
        let err = |e| self.db.error(e);
        let stmt = client.prepare_cached(HELD).await.map_err(err)?;
        client
            .query_one(&stmt, &[&millis(now)])
            .await
            .and_then(|r| r.try_get(0))
            .map_err(err)
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
        let stmt = client.prepare_cached(SPENT).await.map_err(err)?;
        let row = client
            .query_one(&stmt, &[&millis(since)])
            .await
            .map_err(err)?;
        row.try_get(0).map_err(err)
    }
}
