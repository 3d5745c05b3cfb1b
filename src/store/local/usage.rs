//! [`UsageLedger`] over SQLite: the `usage` table.

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{Connection, TransactionBehavior, params};

use super::sqlite::Db;
use crate::store::{
    Cap, CapHit, HoldKey, Outcome, StoreError, UsageEntry, UsageLedger, first_cap_hit,
};

/// The usage ledger in the embedded database.
#[derive(Clone)]
pub struct SqliteUsage {
    db: Db,
}

impl SqliteUsage {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

fn insert(c: &Connection, e: &UsageEntry) -> Result<(), rusqlite::Error> {
    c.prepare_cached(
        "INSERT INTO usage (time_ms, model, operation, kind, size, seconds, estimate_usd, cost_usd, outcome, error, job_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        e.time.timestamp_millis(),
        e.model,
        e.operation,
        e.kind,
        e.size,
        e.seconds,
        e.estimate_usd,
        e.cost_usd,
        e.outcome.as_str(),
        e.error,
        e.job_id,
    ])
    .map(drop)
}

fn spent(c: &Connection, since: DateTime<Utc>) -> Result<f64, rusqlite::Error> {
    c.prepare_cached("SELECT coalesce(sum(cost_usd), 0.0) FROM usage WHERE time_ms >= ?1")?
        .query_row([since.timestamp_millis()], |r| r.get(0))
}

fn held(c: &Connection, now: DateTime<Utc>) -> Result<f64, rusqlite::Error> {
    c.prepare_cached("SELECT coalesce(sum(usd), 0.0) FROM usage_holds WHERE expires_ms > ?1")?
        .query_row([now.timestamp_millis()], |r| r.get(0))
}

#[async_trait]
impl UsageLedger for SqliteUsage {
    async fn record(&self, e: &UsageEntry) -> Result<(), StoreError> {
        let e = e.clone();
        self.db.run(move |c| insert(c, &e)).await
    }

    async fn hold(
        &self,
        usd: f64,
        caps: &[Cap],
        expires: DateTime<Utc>,
    ) -> Result<Result<HoldKey, CapHit>, StoreError> {
        let caps = caps.to_vec();
        self.db
            .run(move |c| {
                // IMMEDIATE: the write lock is taken before the sums are
                // read, so another process's hold waits for this one.
                let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let now = Utc::now();
                tx.execute(
                    "DELETE FROM usage_holds WHERE expires_ms <= ?1",
                    [now.timestamp_millis()],
                )?;
                let spent: Vec<f64> = caps
                    .iter()
                    .map(|cap| spent(&tx, cap.since))
                    .collect::<Result<_, _>>()?;
                if let Some(hit) = first_cap_hit(&caps, &spent, held(&tx, now)?, usd) {
                    return Ok(Err(hit));
                }
                let key = HoldKey::new();
                tx.execute(
                    "INSERT INTO usage_holds (key, usd, expires_ms) VALUES (?1, ?2, ?3)",
                    params![key.0, usd, expires.timestamp_millis()],
                )?;
                tx.commit()?;
                Ok(Ok(key))
            })
            .await
    }

    async fn settle(
        &self,
        key: &HoldKey,
        usd: f64,
        entry: Option<&UsageEntry>,
    ) -> Result<(), StoreError> {
        let (key, entry) = (key.clone(), entry.cloned());
        self.db
            .run(move |c| {
                let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
                tx.execute(
                    "UPDATE usage_holds SET usd = usd - ?2 WHERE key = ?1",
                    params![key.0, usd],
                )?;
                tx.execute(
                    "DELETE FROM usage_holds WHERE key = ?1 AND usd <= ?2",
                    params![key.0, crate::store::CAP_EPSILON],
                )?;
                if let Some(e) = &entry {
                    insert(&tx, e)?;
                }
                tx.commit()
            })
            .await
    }

    async fn held(&self, now: DateTime<Utc>) -> Result<f64, StoreError> {
        self.db.run(move |c| held(c, now)).await
    }

    async fn settle_job(
        &self,
        job_id: &str,
        outcome: Outcome,
        cost_usd: f64,
        seconds: Option<f64>,
        error: Option<String>,
    ) -> Result<bool, StoreError> {
        let job_id = job_id.to_owned();
        self.db
            .run(move |c| {
                c.prepare_cached(
                    "UPDATE usage SET outcome = ?2, cost_usd = ?3, seconds = coalesce(?4, seconds), error = ?5
                     WHERE job_id = ?1",
                )?
                .execute(params![job_id, outcome.as_str(), cost_usd, seconds, error])
                .map(|n| n > 0)
            })
            .await
    }

    async fn entries(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<UsageEntry>, StoreError> {
        let (since, until) = (since.timestamp_millis(), until.timestamp_millis());
        self.db
            .run(move |c| {
                let mut stmt = c.prepare_cached(
                    "SELECT time_ms, model, operation, kind, size, seconds, estimate_usd, cost_usd, outcome, error, job_id
                     FROM usage WHERE time_ms >= ?1 AND time_ms < ?2 ORDER BY time_ms, id",
                )?;
                let rows = stmt.query_map([since, until], |r| {
                    let outcome: String = r.get(8)?;
                    Ok(UsageEntry {
                        time: Utc
                            .timestamp_millis_opt(r.get(0)?)
                            .single()
                            .unwrap_or_default(),
                        model: r.get(1)?,
                        operation: r.get(2)?,
                        kind: r.get(3)?,
                        size: r.get(4)?,
                        seconds: r.get(5)?,
                        estimate_usd: r.get(6)?,
                        cost_usd: r.get(7)?,
                        outcome: Outcome::parse(&outcome).unwrap_or(Outcome::Failed),
                        error: r.get(9)?,
                        job_id: r.get(10)?,
                    })
                })?;
                rows.collect()
            })
            .await
    }

    async fn spent_since(&self, since: DateTime<Utc>) -> Result<f64, StoreError> {
        self.db.run(move |c| spent(c, since)).await
    }
}
