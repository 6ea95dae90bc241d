//! The queue operations on PostgreSQL.

use std::time::Duration;

use foreman_types::{Job, JobId, JobState, UsageRow};

use super::PgStore;
use crate::keys::KeyRecord;
use crate::store::model::*;
use crate::store::{Result, StoreError};

fn todo<T>() -> Result<T> {
    Err(StoreError::Unavailable("not implemented yet".into()))
}

impl PgStore {
    pub(crate) async fn enqueue(&self, job: NewJob) -> Result<Enqueued> {
        let _ = job;
        todo()
    }
    pub(crate) async fn claim_next(&self, request: ClaimRequest) -> Result<Option<ClaimedJob>> {
        let _ = request;
        todo()
    }
    pub(crate) async fn mark_working(&self, id: JobId) -> Result<bool> {
        let _ = id;
        todo()
    }
    pub(crate) async fn finish_reporting(
        &self,
        id: JobId,
        finish: Finish,
        reported: Reported,
    ) -> Result<Option<JobState>> {
        let _ = (id, finish, reported);
        todo()
    }
    pub(crate) async fn cancel(&self, id: JobId, reason: String) -> Result<Option<JobState>> {
        let _ = (id, reason);
        todo()
    }
    pub(crate) async fn cancel_if_queued(&self, id: JobId, reason: String) -> Result<bool> {
        let _ = (id, reason);
        todo()
    }
    pub(crate) async fn job(&self, id: JobId) -> Result<Option<Job>> {
        let _ = id;
        todo()
    }
    pub(crate) async fn job_owner(&self, id: JobId) -> Result<Option<String>> {
        let _ = id;
        todo()
    }
    pub(crate) async fn list(&self, filter: JobFilter) -> Result<Vec<Job>> {
        let _ = filter;
        todo()
    }
    pub(crate) async fn queue_snapshot(&self) -> Result<QueueSnapshot> {
        todo()
    }
    pub(crate) async fn artifact(
        &self,
        id: JobId,
        name: String,
    ) -> Result<Option<(String, Vec<u8>)>> {
        let _ = (id, name);
        todo()
    }
    pub(crate) async fn keys(&self) -> Result<Vec<KeyRecord>> {
        todo()
    }
    pub(crate) async fn create_key(&self, key: KeyRecord, keep_an_admin: bool) -> Result<()> {
        let _ = (key, keep_an_admin);
        todo()
    }
    pub(crate) async fn revoke_key(&self, name: String, keep_an_admin: bool) -> Result<bool> {
        let _ = (name, keep_an_admin);
        todo()
    }
    pub(crate) async fn due_deliveries(&self, limit: u32) -> Result<Vec<Delivery>> {
        let _ = limit;
        todo()
    }
    pub(crate) async fn next_delivery_at(&self) -> Result<Option<i64>> {
        todo()
    }
    pub(crate) async fn record_delivery(
        &self,
        delivery: &Delivery,
        outcome: DeliveryOutcome,
        max_attempts: u32,
        first_wait: Duration,
    ) -> Result<()> {
        let _ = (delivery, outcome, max_attempts, first_wait);
        todo()
    }
    pub(crate) async fn recover(&self, max_attempts: u32) -> Result<Recovered> {
        let _ = max_attempts;
        todo()
    }
    pub(crate) async fn prune(&self, cutoff_ms: i64) -> Result<usize> {
        let _ = cutoff_ms;
        todo()
    }
    pub(crate) async fn counts_by_state(&self) -> Result<Vec<(JobState, u64)>> {
        todo()
    }
    pub(crate) async fn queued_by_model(&self) -> Result<Vec<(String, u64)>> {
        todo()
    }
    pub(crate) async fn usage(&self, filter: UsageFilter) -> Result<Vec<UsageRow>> {
        let _ = filter;
        todo()
    }
    pub(crate) async fn usage_totals(&self) -> Result<Vec<KeyTotals>> {
        todo()
    }
    pub(crate) async fn keep_alive(&self, max_attempts: u32) -> Result<Recovered> {
        let _ = max_attempts;
        todo()
    }
    pub(crate) fn watch(
        &self,
        wakers: crate::store::Wakers,
        shutdown: tokio_util::sync::CancellationToken,
    ) {
        let _ = (wakers, shutdown);
    }
    pub(crate) fn is_shared(&self) -> bool {
        true
    }
    pub(crate) async fn admit_shared(
        &self,
        tenant: crate::scheduler::Tenant,
        rpm: u32,
    ) -> Result<Result<(), Duration>> {
        let _ = (tenant, rpm);
        todo()
    }
}
