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
use crate::store::{Recovered, StoreError};

/// Renews the lease every third of `FOREMAN_LEASE` and rescues lapsed replicas. The
/// replica fences itself (stops its runs) when it has not renewed for two thirds of the
/// lease, before any other replica may take its work (at a whole lease), or when the
/// database says its lease lapsed anyway (a pause longer than the lease).
pub(crate) async fn keep_alive(app: App, shutdown: CancellationToken) {
    let lease = app.config.lease;
    let every = lease / 3;
    let mut renewed = Instant::now();
    let mut fenced = false;
    loop {
        let began = Instant::now();
        let running: Vec<foreman_types::JobId> = match app.running.lock() {
            Ok(running) => running.keys().copied().collect(),
            Err(_) => Vec::new(),
        };
        let kept = tokio::time::timeout(
            every,
            app.store.keep_alive(app.config.max_attempts, running),
        )
        .await;
        match kept {
            Ok(Ok(rescued)) => {
                renewed = began;
                if fenced {
                    tracing::info!("the database answers again: this replica takes work again");
                    fenced = false;
                }
                // The store has logged each takeover, with the replica it came from.
                if rescued != Recovered::default() {
                    app.wake();
                }
            }
            Ok(Err(StoreError::LeaseLapsed)) => {
                // It has renewed, having given its work back: stop what still runs.
                renewed = began;
                fence(&app);
                fenced = false;
                app.wake();
            }
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "cannot renew this replica's lease");
            }
            Err(_) => tracing::warn!("renewing this replica's lease takes too long"),
        }
        if !fenced && renewed.elapsed() >= lease.saturating_sub(every) {
            fence(&app);
            fenced = true;
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every.saturating_sub(began.elapsed())) => {}
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
    // Their sync jobs are cancelled by whoever takes the work over: their callers hear now.
    app.live
        .release_all("this replica lost its lease on the database; please try again");
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
                // The store passes on only cancels of this replica's jobs: a sync caller
                // still waiting for its turn here hears now, as on a local cancel; else
                // the run here stops.
                Some(id) => match app.live.take(id) {
                    Some(waiting) => {
                        let _ = waiting.try_send(crate::live::LiveEvent::Fail {
                            status: axum::http::StatusCode::CONFLICT,
                            message: format!("the request was cancelled (DELETE /jobs/{id})"),
                        });
                    }
                    None => {
                        app.stop_running(id);
                    }
                },
                None => return,
            },
        }
    }
}
