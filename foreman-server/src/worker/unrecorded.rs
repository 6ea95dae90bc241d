//! The sync jobs whose runs started before their rows were committed (ADR 30), until the
//! commit is in. Whatever reads or writes such a job waits here first:
//! - the run's own writes (its end, `loading` → `working`), which need the row;
//! - the lookup of the job by id. A caller has a job's id (`x-foreman-job-id`) as soon as
//!   its answer begins, which may be before the commit; the lookup never answers 404 for a
//!   job whose caller has been answered.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use foreman_types::JobId;
use tokio::sync::watch;

use crate::lock::lock;

/// The jobs whose commit is under way; one per server.
#[derive(Debug, Default)]
pub(crate) struct Unrecorded {
    pending: Arc<Mutex<HashMap<JobId, watch::Receiver<bool>>>>,
}

impl Unrecorded {
    /// Notes that `id`'s run has started before its commit. The commit is settled, one way
    /// or the other, when the returned guard is dropped.
    pub(crate) fn begin(&self, id: JobId) -> Settling {
        let (settled, watching) = watch::channel(false);
        lock(&self.pending).insert(id, watching);
        Settling {
            id,
            settled,
            pending: Arc::clone(&self.pending),
        }
    }

    /// Waits until `id`'s commit is settled, if one is under way. Called before the store
    /// is read or written: a commit not under way now is either in already or never was.
    pub(crate) async fn settled(&self, id: JobId) {
        let watching = lock(&self.pending).get(&id).cloned();
        if let Some(mut watching) = watching {
            // An error only means the guard is gone, which settles it too.
            let _ = watching.wait_for(|settled| *settled).await;
        }
    }
}

/// Held while `id`'s commit is under way.
#[derive(Debug)]
pub(crate) struct Settling {
    id: JobId,
    settled: watch::Sender<bool>,
    pending: Arc<Mutex<HashMap<JobId, watch::Receiver<bool>>>>,
}

impl Drop for Settling {
    fn drop(&mut self) {
        lock(&self.pending).remove(&self.id);
        self.settled.send_replace(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_wait_ends_when_the_commit_under_way_has_and_no_later() {
        let unrecorded = Unrecorded::default();
        let id = JobId::new();
        // Nothing under way: at once.
        unrecorded.settled(id).await;

        let settling = unrecorded.begin(id);
        let mut waiting = std::pin::pin!(unrecorded.settled(id));
        assert!(
            futures::poll!(waiting.as_mut()).is_pending(),
            "a wait ended while the commit was under way"
        );
        drop(settling);
        waiting.await;
        assert!(lock(&unrecorded.pending).is_empty());
        unrecorded.settled(id).await;
    }
}
