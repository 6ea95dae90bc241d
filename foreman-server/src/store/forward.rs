//! The [`Queue`](super::Queue) implementation each backend gets from its inherent
//! methods.

/// Implements [`Queue`](super::Queue) for a backend whose inherent methods carry the same names and
/// signatures, so each backend writes its operations once, in the files they belong in.
/// `one_transaction` adds the backend's own `claim_free_slots`, `enqueue_and_claim` and
/// `finish_and_claim` in place of the trait's defaults, which take a transaction a step.
macro_rules! forward_queue {
    ($backend:ty, one_transaction) => {
        $crate::store::forward_queue!(@impl $backend, {
            async fn claim_free_slots(
                &self,
                request: $crate::store::ClaimRequest,
            ) -> $crate::store::Result<Vec<$crate::store::ClaimedJob>> {
                <$backend>::claim_free_slots(self, request).await
            }
            async fn enqueue_and_claim(
                &self,
                job: $crate::store::NewJob,
                claim: $crate::store::ClaimRequest,
            ) -> $crate::store::Result<(
                $crate::store::Enqueued,
                Option<$crate::store::ClaimedJob>,
            )> {
                <$backend>::enqueue_and_claim(self, job, claim).await
            }
            async fn enqueue_claimed(
                &self,
                job: $crate::store::NewJob,
                chosen: $crate::store::Chosen,
            ) -> $crate::store::Result<$crate::store::Enqueued> {
                <$backend>::enqueue_claimed(self, job, chosen).await
            }
            async fn finish_and_claim(
                &self,
                id: foreman_types::JobId,
                finish: $crate::store::Finish,
                reported: $crate::store::Reported,
                claim: $crate::store::ClaimRequest,
            ) -> $crate::store::Result<(
                Option<foreman_types::JobState>,
                Option<$crate::store::ClaimedJob>,
            )> {
                <$backend>::finish_and_claim(self, id, finish, reported, claim).await
            }
        });
    };
    ($backend:ty) => {
        $crate::store::forward_queue!(@impl $backend, {});
    };
    (@impl $backend:ty, { $($own:tt)* }) => {
        #[async_trait::async_trait]
        impl $crate::store::Queue for $backend {
            $($own)*
            async fn enqueue(
                &self,
                job: $crate::store::NewJob,
            ) -> $crate::store::Result<$crate::store::Enqueued> {
                <$backend>::enqueue(self, job).await
            }
            async fn claim_next(
                &self,
                request: $crate::store::ClaimRequest,
            ) -> $crate::store::Result<Option<$crate::store::ClaimedJob>> {
                <$backend>::claim_next(self, request).await
            }
            async fn mark_working(&self, id: foreman_types::JobId) -> $crate::store::Result<bool> {
                <$backend>::mark_working(self, id).await
            }
            async fn finish_reporting(
                &self,
                id: foreman_types::JobId,
                finish: $crate::store::Finish,
                reported: $crate::store::Reported,
            ) -> $crate::store::Result<Option<foreman_types::JobState>> {
                <$backend>::finish_reporting(self, id, finish, reported).await
            }
            async fn cancel(
                &self,
                id: foreman_types::JobId,
                reason: String,
            ) -> $crate::store::Result<Option<foreman_types::JobState>> {
                <$backend>::cancel(self, id, reason).await
            }
            async fn cancel_if_queued(
                &self,
                id: foreman_types::JobId,
                reason: String,
            ) -> $crate::store::Result<bool> {
                <$backend>::cancel_if_queued(self, id, reason).await
            }
            async fn job(
                &self,
                id: foreman_types::JobId,
            ) -> $crate::store::Result<Option<foreman_types::Job>> {
                <$backend>::job(self, id).await
            }
            async fn job_owner(
                &self,
                id: foreman_types::JobId,
            ) -> $crate::store::Result<Option<String>> {
                <$backend>::job_owner(self, id).await
            }
            async fn list(
                &self,
                filter: $crate::store::JobFilter,
            ) -> $crate::store::Result<Vec<foreman_types::Job>> {
                <$backend>::list(self, filter).await
            }
            async fn queue_snapshot(&self) -> $crate::store::Result<$crate::store::QueueSnapshot> {
                <$backend>::queue_snapshot(self).await
            }
            async fn artifact(
                &self,
                id: foreman_types::JobId,
                name: String,
            ) -> $crate::store::Result<Option<(String, Vec<u8>)>> {
                <$backend>::artifact(self, id, name).await
            }
            async fn keys(&self) -> $crate::store::Result<Vec<$crate::keys::KeyRecord>> {
                <$backend>::keys(self).await
            }
            async fn create_key(
                &self,
                key: $crate::keys::KeyRecord,
                keep_an_admin: bool,
            ) -> $crate::store::Result<()> {
                <$backend>::create_key(self, key, keep_an_admin).await
            }
            async fn revoke_key(
                &self,
                name: String,
                keep_an_admin: bool,
            ) -> $crate::store::Result<bool> {
                <$backend>::revoke_key(self, name, keep_an_admin).await
            }
            async fn due_deliveries(
                &self,
                limit: u32,
            ) -> $crate::store::Result<Vec<$crate::store::Delivery>> {
                <$backend>::due_deliveries(self, limit).await
            }
            async fn next_delivery_at(&self) -> $crate::store::Result<Option<i64>> {
                <$backend>::next_delivery_at(self).await
            }
            async fn record_delivery(
                &self,
                delivery: &$crate::store::Delivery,
                outcome: $crate::store::DeliveryOutcome,
                max_attempts: u32,
                first_wait: std::time::Duration,
            ) -> $crate::store::Result<()> {
                <$backend>::record_delivery(self, delivery, outcome, max_attempts, first_wait).await
            }
            async fn recover(
                &self,
                max_attempts: u32,
            ) -> $crate::store::Result<$crate::store::Recovered> {
                <$backend>::recover(self, max_attempts).await
            }
            async fn prune(&self, cutoff_ms: i64) -> $crate::store::Result<usize> {
                <$backend>::prune(self, cutoff_ms).await
            }
            async fn counts_by_state(
                &self,
            ) -> $crate::store::Result<Vec<(foreman_types::JobState, u64)>> {
                <$backend>::counts_by_state(self).await
            }
            async fn queued_by_model(&self) -> $crate::store::Result<Vec<(String, u64)>> {
                <$backend>::queued_by_model(self).await
            }
            async fn usage(
                &self,
                filter: $crate::store::UsageFilter,
            ) -> $crate::store::Result<Vec<foreman_types::UsageRow>> {
                <$backend>::usage(self, filter).await
            }
            async fn usage_totals(&self) -> $crate::store::Result<Vec<$crate::store::KeyTotals>> {
                <$backend>::usage_totals(self).await
            }
            async fn save_ui_samples(&self, body: String) -> $crate::store::Result<()> {
                <$backend>::save_ui_samples(self, body).await
            }
            async fn load_ui_samples(&self) -> $crate::store::Result<Option<String>> {
                <$backend>::load_ui_samples(self).await
            }
            async fn keep_alive(
                &self,
                max_attempts: u32,
                running: Vec<foreman_types::JobId>,
            ) -> $crate::store::Result<$crate::store::Recovered> {
                <$backend>::keep_alive(self, max_attempts, running).await
            }
            fn watch(
                &self,
                wakers: $crate::store::Wakers,
                shutdown: tokio_util::sync::CancellationToken,
            ) {
                <$backend>::watch(self, wakers, shutdown)
            }
            fn is_shared(&self) -> bool {
                <$backend>::is_shared(self)
            }
            fn may_have_queued(&self) -> bool {
                <$backend>::may_have_queued(self)
            }
            async fn admit(
                &self,
                tenant: $crate::scheduler::Tenant,
                rpm: u32,
            ) -> $crate::store::Result<Result<(), std::time::Duration>> {
                <$backend>::admit(self, tenant, rpm).await
            }
        }
    };
}
pub(crate) use forward_queue;
