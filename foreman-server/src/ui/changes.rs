//! The signal that something the status page shows has changed (a job enqueued, claimed,
//! started, ended or cancelled; a target going down or coming back), so each open
//! `/ui/events` stream pushes a snapshot at once instead of at its next tick.
//!
//! A `watch` channel rather than a `Notify`: each stream has its own receiver that remembers
//! whether it has seen the latest change, so a change that lands while a stream is busy
//! building a snapshot is not lost, and any number of changes before the stream looks
//! again count as one (the coalescing is in `routes/ui.rs`).

use std::sync::Arc;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::state::App;
use crate::targets::Target;

/// The change signal; one per server.
#[derive(Debug)]
pub(crate) struct Changes {
    tx: watch::Sender<()>,
}

impl Default for Changes {
    fn default() -> Self {
        Self {
            tx: watch::Sender::new(()),
        }
    }
}

impl Changes {
    /// Says that something changed. Cheap, and fine with no stream open.
    pub(crate) fn bump(&self) {
        self.tx.send_modify(|_| {});
    }

    /// A receiver for one stream, with every change so far counted as seen.
    pub(crate) fn subscribe(&self) -> watch::Receiver<()> {
        self.tx.subscribe()
    }
}

/// Bumps the change signal whenever `target` goes down or comes back, until `shutdown`.
pub(crate) async fn watch_health(app: App, target: Arc<Target>, shutdown: CancellationToken) {
    let mut health = target.inventory.health();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            changed = health.changed() => {
                if changed.is_err() {
                    return;
                }
                app.ui_changes.bump();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn changes_before_a_stream_looks_again_count_once() {
        let changes = Changes::default();
        let mut stream = changes.subscribe();
        assert!(!stream.has_changed().unwrap());

        changes.bump();
        changes.bump();

        assert!(stream.has_changed().unwrap());
        stream.borrow_and_update();
        assert!(!stream.has_changed().unwrap());
    }
}
