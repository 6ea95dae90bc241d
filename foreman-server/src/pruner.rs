//! The TTL pruner: deletes finished jobs older than `FOREMAN_JOB_TTL`.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::state::App;

/// Prunes now and then every quarter of the TTL (between one second and one hour).
pub(crate) async fn run(app: App, shutdown: CancellationToken) {
    let ttl = app.config.job_ttl;
    let every = (ttl / 4).clamp(Duration::from_secs(1), Duration::from_secs(3600));
    loop {
        let cutoff = crate::store::now_ms() - ttl.as_millis() as i64;
        match app.store.prune(cutoff).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, "pruned finished jobs past their TTL"),
            Err(err) => tracing::error!(error = %err, "cannot prune finished jobs"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}
