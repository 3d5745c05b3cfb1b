//! [`ChangeFeed`] within one process: a broadcast channel.

use async_trait::async_trait;
use tokio::sync::broadcast;

use crate::store::{Change, ChangeFeed, Subscription};

/// How many changes a slow listener may fall behind before it is told
/// [`Change::Rescanned`] instead.
const BACKLOG: usize = 256;

/// Changes announced to the listeners of this process.
pub struct LocalFeed {
    tx: broadcast::Sender<Change>,
}

impl Default for LocalFeed {
    fn default() -> Self {
        Self {
            tx: broadcast::Sender::new(BACKLOG),
        }
    }
}

#[async_trait]
impl ChangeFeed for LocalFeed {
    async fn publish(&self, change: Change) {
        // No listener is not an error: nobody needs to know.
        let _ = self.tx.send(change);
    }

    fn subscribe(&self) -> Subscription {
        Subscription::new(self.tx.subscribe())
    }
}
