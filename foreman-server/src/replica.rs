//! A replica's part in sharing one PostgreSQL queue with others (ADR 23): it keeps its
//! lease alive, takes over the work of replicas whose leases lapse, follows the others'
//! key changes, and stops its own runs when it can no longer prove it is alive, since by
//! then another replica may have taken them over. With SQLite (one process) none of this
//! runs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::state::App;
use crate::store::Recovered;

/// Renews the lease every third of `FOREMAN_LEASE` and rescues lapsed replicas.
pub(crate) async fn keep_alive(app: App, shutdown: CancellationToken) {
    let lease = app.config.lease;
    let every = lease / 3;
    let mut renewed = Instant::now();
    let mut fenced = false;
    loop {
        match app.store.keep_alive(app.config.max_attempts).await {
            Ok(rescued) => {
                renewed = Instant::now();
                if fenced {
                    tracing::info!("the database answers again: this replica takes work again");
                    fenced = false;
                }
                if rescued != Recovered::default() {
                    tracing::warn!(
                        requeued = rescued.requeued,
                        failed = rescued.failed,
                        cancelled = rescued.cancelled,
                        "took over the work of a replica whose lease lapsed"
                    );
                    app.wake();
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot renew this replica's lease");
                if !fenced && renewed.elapsed() >= lease {
                    fence(&app);
                    fenced = true;
                }
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

/// The lease has lapsed: other replicas may re-queue this one's running jobs and run
/// them, so its own runs stop now rather than run twice. Each goes back to the queue as
/// at a shutdown, if this replica still owns it when the database answers again; an
/// answer about a run another replica has taken over changes nothing (ADR 23).
fn fence(app: &App) {
    let runs = app.running.lock().map_or(0, |running| running.len());
    tracing::error!(
        runs,
        "this replica's lease lapsed while the database was unreachable: stopping its runs, \
         which other replicas take over"
    );
    if let Ok(mut fence) = app.fence.lock() {
        fence.cancel();
        *fence = CancellationToken::new();
    }
}

/// Reloads the key map when another replica changes a key (`keys` is notified), and once
/// a lease in any case, should a notification be missed.
pub(crate) async fn follow_keys(app: App, keys: Arc<Notify>, shutdown: CancellationToken) {
    let every = app.config.lease.max(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = keys.notified() => {}
            _ = tokio::time::sleep(every) => {}
        }
        match app.store.keys().await {
            Ok(stored) => app.keys.replace(stored),
            Err(err) => tracing::warn!(error = %err, "cannot reload the keys"),
        }
    }
}

/// Stops the runs here of jobs another replica cancelled: its `DELETE /jobs/{id}` changed
/// the job in the database, but the run, and its target slot, are this replica's.
pub(crate) async fn stop_cancelled(
    app: App,
    mut cancels: tokio::sync::mpsc::UnboundedReceiver<foreman_types::JobId>,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            id = cancels.recv() => match id {
                // The store only passes on cancels of jobs this replica claimed.
                Some(id) => {
                    app.stop_running(id);
                }
                None => return,
            },
        }
    }
}
