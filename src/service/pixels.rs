//! Pixel work — decoding, resizing and encoding images and video frames —
//! runs off the async runtime, at most one task per core at a time. A burst
//! of requests (200 generations, a gallery page asking for dozens of
//! thumbnails) then queues here instead of decoding everything at once:
//! the CPU does the same work, but only a few full-size images are in
//! memory together, and the peak (which the process keeps long after) stays
//! small.

use std::sync::OnceLock;

use tokio::sync::Semaphore;

use super::ServiceError;

/// One slot per core.
fn slots() -> &'static Semaphore {
    static SLOTS: OnceLock<Semaphore> = OnceLock::new();
    SLOTS.get_or_init(|| {
        Semaphore::new(std::thread::available_parallelism().map_or(2, std::num::NonZero::get))
    })
}

/// Runs `f` on a blocking thread once a slot is free; `what` names the work
/// in the error if the task fails.
pub(super) async fn run<T: Send + 'static>(
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ServiceError> {
    let _slot = slots()
        .acquire()
        .await
        .map_err(|e| ServiceError::Internal(e.to_string()))?;
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ServiceError::Internal(format!("{what} task failed: {e}")))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// However many ask at once, no more tasks run together than there are
    /// slots.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn no_more_at_once_than_slots() {
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..64)
            .map(|_| {
                let (running, most) = (running.clone(), most.clone());
                tokio::spawn(run("test", move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(2));
                    running.fetch_sub(1, Ordering::SeqCst);
                }))
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        assert!(most.load(Ordering::SeqCst) <= cores, "{most:?} at once");
    }
}
