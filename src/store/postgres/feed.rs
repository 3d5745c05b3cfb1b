//! [`ChangeFeed`] across replicas: `NOTIFY` on one channel, and in each
//! replica one connection that `LISTEN`s and hands what it hears to the
//! replica's listeners (a broadcast channel, like
//! [`crate::store::local::LocalFeed`]).
//!
//! A replica's own changes reach its listeners the same way (one path, one
//! order). When the listening connection drops, it is made again with
//! back-off and every listener is told [`Change::Rescanned`]: changes made
//! while it was away were not heard.
//!
//! `LISTEN` needs a session of its own: through a pooler, use session
//! pooling (PgBouncer's transaction mode does not deliver notifications).

use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use tokio::sync::broadcast;
use tokio_postgres::{AsyncMessage, Client};
use tokio_util::sync::{CancellationToken, DropGuard};

use super::{Db, Messages, PgError, Target};
use crate::store::{Change, ChangeFeed, MediaId, StoreError, Subscription};

/// The channel every replica of one database publishes on.
pub(crate) const CHANNEL: &str = "media_gen_changes";
/// How the listening connection shows in `pg_stat_activity`.
pub(crate) const LISTENER_NAME: &str = "media-gen-listener";
/// How many changes a slow listener may fall behind before it is told
/// [`Change::Rescanned`] instead.
const BACKLOG: usize = 256;
/// The first wait before making a dropped listening connection again; it
/// doubles up to [`MAX_BACKOFF`] while attempts fail.
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Library changes for the listeners of every replica on one database.
pub struct PgFeed {
    db: Db,
    tx: broadcast::Sender<Change>,
    /// Stops the listening task when the feed goes.
    _listening: DropGuard,
}

impl PgFeed {
    /// Starts listening; returns once the first `LISTEN` is in place, so
    /// a change published after this returns is heard.
    pub(crate) async fn start(db: Db, target: Target) -> Result<Self, StoreError> {
        let mut config = target.config.clone();
        config.application_name(LISTENER_NAME);
        // An idle connection on a dead network is noticed within a minute
        // or so rather than the system's two hours.
        config
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(30))
            .keepalives_interval(Duration::from_secs(10))
            .keepalives_retries(3);
        let session = listen(&target, &config).await?;
        let tx = broadcast::Sender::new(BACKLOG);
        let stop = CancellationToken::new();
        tokio::spawn(run(target, config, tx.clone(), stop.clone(), session));
        Ok(Self {
            db,
            tx,
            _listening: stop.drop_guard(),
        })
    }
}

/// A change as a notification's payload: `+name`, `-name` or `*`.
fn encode(change: &Change) -> String {
    match change {
        Change::Added(id) => format!("+{id}"),
        Change::Removed(id) => format!("-{id}"),
        Change::Rescanned => "*".into(),
    }
}

/// A payload as a change; anything unknown (say, from a newer replica)
/// means "anything may have changed".
fn decode(payload: &str) -> Change {
    let name = |s: &str| s.parse::<MediaId>().ok();
    match payload.split_at_checked(1) {
        Some(("+", rest)) => name(rest).map(Change::Added),
        Some(("-", rest)) => name(rest).map(Change::Removed),
        _ => None,
    }
    .unwrap_or(Change::Rescanned)
}

/// Opens a connection and `LISTEN`s on it.
async fn listen(
    target: &Target,
    config: &tokio_postgres::Config,
) -> Result<(Client, Messages), StoreError> {
    let (client, mut messages) = target
        .connect_with(config)
        .await
        .map_err(|e| target.error(e))?;
    let statement = format!("LISTEN {CHANNEL}");
    {
        let listening = client.batch_execute(&statement);
        tokio::pin!(listening);
        // The connection only moves while its messages are polled.
        loop {
            tokio::select! {
                done = &mut listening => {
                    done.map_err(|e| target.error(e))?;
                    break;
                }
                message = messages.next() => match message {
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(target.error(e)),
                    None => return Err(target.failure("the server closed the connection".into())),
                },
            }
        }
    }
    Ok((client, messages))
}

/// Hands notifications to the listeners until the connection ends; says
/// why it ended.
async fn forward(messages: &mut Messages, tx: &broadcast::Sender<Change>) -> String {
    while let Some(message) = messages.next().await {
        match message {
            Ok(AsyncMessage::Notification(n)) if n.channel() == CHANNEL => {
                // No listener is not an error: nobody needs to know.
                let _ = tx.send(decode(n.payload()));
            }
            Ok(_) => {}
            Err(e) => return PgError::Postgres(e).to_string(),
        }
    }
    "the server closed the connection".into()
}

/// The listening task: forwards, and makes the connection again whenever it
/// drops, until `stop`.
async fn run(
    target: Target,
    config: tokio_postgres::Config,
    tx: broadcast::Sender<Change>,
    stop: CancellationToken,
    first: (Client, Messages),
) {
    let mut session = Some(first);
    loop {
        if let Some((client, mut messages)) = session.take() {
            let why = tokio::select! {
                _ = stop.cancelled() => return,
                why = forward(&mut messages, &tx) => why,
            };
            drop(client);
            tracing::warn!(database = %target.location, reason = %why, "the change feed lost its database connection; reconnecting");
        }
        let mut delay = MIN_BACKOFF;
        let mut attempts = 0u32;
        while session.is_none() {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(delay) => {}
            }
            attempts += 1;
            let attempt = tokio::select! {
                _ = stop.cancelled() => return,
                attempt = listen(&target, &config) => attempt,
            };
            match attempt {
                Ok(s) => {
                    session = Some(s);
                    tracing::info!(database = %target.location, attempts, "the change feed is listening again");
                    // Whatever changed while nobody listened.
                    let _ = tx.send(Change::Rescanned);
                }
                Err(e) => {
                    tracing::warn!(error = %e, attempts, retry_in_ms = delay.as_millis() as u64, "the change feed could not reconnect");
                    delay = (delay * 2).min(MAX_BACKOFF);
                }
            }
        }
    }
}

#[async_trait]
impl ChangeFeed for PgFeed {
    /// `NOTIFY`s every replica's listening connection, this one's too. If
    /// the database cannot be reached, this replica's listeners still hear
    /// the change (the others will get [`Change::Rescanned`] when their
    /// connection comes back, or see it at their next reconcile).
    async fn publish(&self, change: Change) {
        let payload = encode(&change);
        let sent = async {
            let client = self.db.client().await?;
            client
                .execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &payload])
                .await
                .map_err(|e| self.db.error(e))
        }
        .await;
        if let Err(e) = sent {
            tracing::warn!(error = %e, change = %payload, "could not announce a library change to the other replicas");
            let _ = self.tx.send(change);
        }
    }

    fn subscribe(&self) -> Subscription {
        Subscription::new(self.tx.subscribe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip_and_unknown_ones_mean_rescanned() {
        let id: MediaId = "image_20260101_120000_000_abcdef.png".parse().unwrap();
        for change in [
            Change::Added(id.clone()),
            Change::Removed(id),
            Change::Rescanned,
        ] {
            assert_eq!(decode(&encode(&change)), change);
        }
        for odd in ["", "+", "-../x", "?what", "{\"v\":2}"] {
            assert_eq!(decode(odd), Change::Rescanned, "{odd:?}");
        }
    }
}
