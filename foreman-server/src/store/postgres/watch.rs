//! Hearing the other replicas: a connection of its own (outside the pool, which recycles
//! connections) `LISTEN`s on the channels the store's writes notify, and each
//! notification wakes what it concerns.
//!
//! - `foreman_work`: a job was queued or a target slot freed, by any replica.
//! - `foreman_keys`: a key was created or revoked.
//! - `foreman_cancel`, payload `"<replica> <job id>"`: a job running on that replica was
//!   cancelled by another one.
//!
//! A notification sent while the connection is down is lost: after reconnecting the
//! dispatcher and the key map are woken once, to look for themselves.

use std::time::Duration;

use foreman_types::{Backoff, JobId};
use futures::StreamExt;
use tokio_postgres::{AsyncMessage, NoTls};
use tokio_util::sync::CancellationToken;

use super::PgStore;
use crate::store::Wakers;

/// Waits between attempts to reconnect.
const RECONNECT: Backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));

impl PgStore {
    /// Starts listening for other replicas' changes until `shutdown`.
    pub(crate) fn watch(&self, wakers: Wakers, shutdown: CancellationToken) {
        let config = self.config.clone();
        let me = self.replica.to_string();
        tokio::spawn(async move {
            let mut backoff = RECONNECT;
            let mut lost = false;
            loop {
                let ended = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    ended = listen(&config, &me, &wakers, lost, &mut backoff) => ended,
                };
                match ended {
                    Ok(()) => tracing::warn!("the database closed the notification connection"),
                    Err(err) => {
                        tracing::warn!(error = %err, "the notification connection failed");
                    }
                }
                lost = true;
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(backoff.next_delay()) => {}
                }
            }
        });
    }
}

/// Connects, listens and forwards notifications until the connection ends. After a lost
/// connection (`lost`), wakes everything once when listening again.
async fn listen(
    config: &tokio_postgres::Config,
    me: &str,
    wakers: &Wakers,
    lost: bool,
    backoff: &mut Backoff,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = config.connect(NoTls).await?;
    let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
    // The connection has to be polled for LISTEN to be answered.
    let listening =
        client.batch_execute("LISTEN foreman_work; LISTEN foreman_keys; LISTEN foreman_cancel");
    tokio::pin!(listening);
    loop {
        tokio::select! {
            done = &mut listening => {
                done?;
                break;
            }
            message = messages.next() => match message {
                Some(message) => forward(message?, me, wakers),
                None => return Ok(()),
            },
        }
    }
    backoff.reset();
    if lost {
        tracing::info!("listening to the other replicas again");
        wakers.work.notify_one();
        wakers.keys.notify_one();
    }
    while let Some(message) = messages.next().await {
        forward(message?, me, wakers);
    }
    Ok(())
}

fn forward(message: AsyncMessage, me: &str, wakers: &Wakers) {
    let AsyncMessage::Notification(notification) = message else {
        return;
    };
    match notification.channel() {
        "foreman_work" => wakers.work.notify_one(),
        "foreman_keys" => wakers.keys.notify_one(),
        "foreman_cancel" => {
            let cancelled = notification
                .payload()
                .split_once(' ')
                .filter(|(replica, _)| *replica == me)
                .and_then(|(_, id)| id.parse::<JobId>().ok());
            if let Some(id) = cancelled {
                let _ = wakers.cancelled.send(id);
            }
        }
        _ => {}
    }
}
