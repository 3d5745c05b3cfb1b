//! Keeping the library in order in the background: reconcile once (after
//! the first answer, so it never delays a handshake), then the automatic
//! clean-up now and every hour, if configured.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Service;
use crate::store::{ReconcileReport, STALE_TEMP_AGE, StoreError};

/// How often the automatic clean-up runs (it also runs at start).
const CLEANUP_EVERY: Duration = Duration::from_secs(3600);

impl Service {
    /// Brings the catalog in line with the stored files.
    pub async fn reconcile(&self) -> Result<ReconcileReport, StoreError> {
        self.library.reconcile(STALE_TEMP_AGE).await
    }

    /// Waits for the library's saves and deletes under way (before exit).
    pub async fn settle(&self) {
        self.library.settle().await;
    }

    /// Reconciles (and says so on `reconciled`), then runs the clean-up at
    /// once and hourly until `shutdown`. Failures are logged; the next
    /// round tries again. A clean-up in progress stops at the next file
    /// when `shutdown` fires.
    pub async fn maintain(
        &self,
        shutdown: CancellationToken,
        reconciled: tokio::sync::oneshot::Sender<()>,
    ) {
        match self.reconcile().await {
            // Only what a user would want to know reaches the default log.
            Ok(r) if r.added + r.removed + r.temp_removed + r.sidecars_removed > 0 => {
                tracing::info!(
                    "library reconciled: {} file(s) added by hand catalogued, {} missing file(s) dropped, {} unfinished write(s) and {} orphan sidecar(s) removed",
                    r.added,
                    r.removed,
                    r.temp_removed,
                    r.sidecars_removed
                );
            }
            Ok(report) => tracing::debug!(?report, "catalog reconciled: nothing to change"),
            Err(e) => tracing::error!(error = %e, "catalog reconcile failed"),
        }
        let _ = reconciled.send(());
        let (max_age, max_bytes) = (self.cleanup.max_age, self.cleanup.max_total_bytes);
        if max_age.is_none() && max_bytes.is_none() {
            return;
        }
        let mut hourly = tokio::time::interval(CLEANUP_EVERY);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = hourly.tick() => {}
            }
            match self
                .library
                .cleanup(max_age, max_bytes, chrono::Utc::now(), &shutdown)
                .await
            {
                Ok(gone) if gone.is_empty() => tracing::debug!("clean-up: nothing to delete"),
                Ok(gone) => {
                    tracing::info!(count = gone.len(), files = ?gone, "clean-up deleted old files")
                }
                Err(e) => tracing::error!(error = %e, "clean-up failed"),
            }
        }
    }
}
