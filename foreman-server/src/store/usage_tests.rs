//! The store's keys and usage: runs charged in the transaction that ends them, kept past
//! the pruner; keys that cannot lock foreman out of its own administration.

use std::time::Duration;

use bytes::Bytes;
use foreman_types::{JobId, JobKind, JobState};

use super::harness::Backend;
use super::{ClaimRequest, Finish, NewJob, Origin, Reported, Store, StoreError, UsageFilter};
use crate::keys::KeyRecord;
use crate::scheduler::Tenant;

fn job_of(key: &str, user: &str) -> NewJob {
    NewJob {
        id: JobId::new(),
        kind: JobKind::Chat,
        origin: Origin::Async,
        model: "m:latest".into(),
        priority: 0,
        payload: Bytes::from_static(b"{\"model\":\"m\",\"messages\":[]}"),
        webhook_url: None,
        tenant: Tenant::new(key, user),
        weight: 1,
        max_queued: None,
        idempotency_key: None,
        request_hash: None,
    }
}

/// Queues a job of `key` and claims it: it is running.
async fn running(store: &Store, key: &str) -> JobId {
    let id = store.enqueue(job_of(key, "")).await.unwrap().id();
    assert_eq!(claim(store).await, id);
    id
}

/// Claims the next job.
async fn claim(store: &Store) -> JobId {
    store
        .claim_next(ClaimRequest::single(None, Duration::from_secs(30)))
        .await
        .unwrap()
        .expect("a job to claim")
        .id
}

fn reported(prompt: u64, output: u64, ms: Option<u64>) -> Reported {
    Reported {
        prompt_tokens: Some(prompt),
        output_tokens: Some(output),
        total_duration_ms: ms,
    }
}

async fn a_finished_run_adds_its_reported_tokens_and_gpu_time_to_the_job_and_its_tenant(
    backend: Backend,
) {
    let (_h, store) = backend.open(100).await;
    for (prompt, output) in [(10, 20), (1, 2)] {
        let id = running(&store, "alice").await;
        let done = Finish::Done {
            result: None,
            artifacts: Vec::new(),
        };
        let ended = store
            .finish_reporting(id, done, reported(prompt, output, Some(1500)))
            .await
            .unwrap();
        assert_eq!(ended, Some(JobState::Done));
        let job = store.job(id).await.unwrap().unwrap();
        assert_eq!(
            (job.prompt_tokens, job.output_tokens),
            (Some(prompt), Some(output))
        );
    }
    let rows = store.usage(UsageFilter::default()).await.unwrap();
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(
        (row.key.as_str(), row.model.as_str()),
        ("alice", "m:latest")
    );
    assert_eq!(
        (row.requests, row.prompt_tokens, row.output_tokens),
        (2, 11, 22)
    );
    assert_eq!(
        row.gpu_ms, 3000,
        "the target's total_duration, not foreman's clock"
    );
    let totals = store.usage_totals().await.unwrap();
    assert_eq!((totals[0].key.as_str(), totals[0].requests), ("alice", 2));
}

async fn a_retried_run_costs_gpu_time_but_only_the_run_that_ends_the_job_is_a_request(
    backend: Backend,
) {
    let (_h, store) = backend.open(100).await;
    let id = running(&store, "bob").await;
    let retry = Finish::Retry {
        error: "connection refused".into(),
        max_attempts: 3,
    };
    let ended = store
        .finish_reporting(id, retry, Reported::default())
        .await
        .unwrap();
    assert_eq!(ended, Some(JobState::Queued));
    let rows = store.usage(UsageFilter::default()).await.unwrap();
    assert!(rows.iter().all(|r| r.requests == 0), "{rows:?}");
    // Cancelled while running: one request, no tokens (the target never reported any).
    assert_eq!(claim(&store).await, id);
    store.cancel(id, "stop".into()).await.unwrap();
    let rows = store.usage(UsageFilter::default()).await.unwrap();
    assert_eq!((rows[0].requests, rows[0].output_tokens), (1, 0));
    // A job cancelled while queued never ran: nothing to count.
    let queued = store.enqueue(job_of("carol", "")).await.unwrap().id();
    store.cancel(queued, "stop".into()).await.unwrap();
    let carol = UsageFilter {
        key: Some("carol".into()),
        ..UsageFilter::default()
    };
    assert!(store.usage(carol).await.unwrap().is_empty());
}

async fn usage_is_kept_when_its_jobs_are_pruned_and_filtered_by_key_and_hour(backend: Backend) {
    let (_h, store) = backend.open(100).await;
    let id = running(&store, "alice").await;
    let done = Finish::Done {
        result: None,
        artifacts: Vec::new(),
    };
    store
        .finish_reporting(id, done, reported(3, 4, None))
        .await
        .unwrap();
    assert_eq!(store.prune(super::now_ms() + 1).await.unwrap(), 1);
    assert!(store.job(id).await.unwrap().is_none());
    let now = super::now_ms();
    let window = |key: &str, since: Option<i64>, until: Option<i64>| UsageFilter {
        key: Some(key.into()),
        since_ms: since,
        until_ms: until,
    };
    assert_eq!(
        store
            .usage(window("alice", None, None))
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(store
        .usage(window("bob", None, None))
        .await
        .unwrap()
        .is_empty());
    // `since` counts the whole hour it falls in; `until` only hours that start before it.
    let in_an_hour = now + 3_600_000;
    assert_eq!(
        store
            .usage(window("alice", Some(now), None))
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(store
        .usage(window("alice", Some(in_an_hour), None))
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .usage(window("alice", None, Some(0)))
        .await
        .unwrap()
        .is_empty());
}

fn key(name: &str, admin: bool) -> KeyRecord {
    KeyRecord {
        name: name.into(),
        hash: crate::keys::digest(name),
        prefix: "fm_abcd".into(),
        admin,
        weight: 2,
        max_queued: Some(4),
        rpm: None,
        trust_user_header: true,
        created_at: 1,
    }
}

async fn keys_round_trip_and_names_are_unique(backend: Backend) {
    let (_h, store) = backend.open(100).await;
    store.create_key(key("alice", false), false).await.unwrap();
    let again = store
        .create_key(key("alice", true), false)
        .await
        .unwrap_err();
    assert!(matches!(again, StoreError::KeyExists(_)), "{again}");
    assert_eq!(store.keys().await.unwrap(), vec![key("alice", false)]);
    assert!(store.revoke_key("alice".into(), false).await.unwrap());
    assert!(!store.revoke_key("alice".into(), false).await.unwrap());
    assert!(store.keys().await.unwrap().is_empty());
}

async fn without_a_token_the_last_admin_key_stays(backend: Backend) {
    let (_h, store) = backend.open(100).await;
    let first = store
        .create_key(key("alice", false), true)
        .await
        .unwrap_err();
    assert!(matches!(first, StoreError::NoAdminLeft), "{first}");
    store.create_key(key("root", true), true).await.unwrap();
    store.create_key(key("alice", false), true).await.unwrap();
    let last = store.revoke_key("root".into(), true).await.unwrap_err();
    assert!(matches!(last, StoreError::NoAdminLeft), "{last}");
    store.create_key(key("ops", true), true).await.unwrap();
    assert!(store.revoke_key("root".into(), true).await.unwrap());
    // With a token to fall back on, anything goes.
    assert!(store.revoke_key("ops".into(), false).await.unwrap());
}

super::harness::on_both_backends!(
    a_finished_run_adds_its_reported_tokens_and_gpu_time_to_the_job_and_its_tenant,
    a_retried_run_costs_gpu_time_but_only_the_run_that_ends_the_job_is_a_request,
    usage_is_kept_when_its_jobs_are_pruned_and_filtered_by_key_and_hour,
    keys_round_trip_and_names_are_unique,
    without_a_token_the_last_admin_key_stays,
);
