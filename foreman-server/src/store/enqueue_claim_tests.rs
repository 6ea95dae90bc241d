//! Claims made beside another write (`Queue::enqueue_and_claim`, `finish_and_claim`), as a
//! request or a run's end makes them when a slot is free, and the dispatcher's claims for
//! every free slot at once: each claim is the scheduler's, as if made alone.

use foreman_types::{JobId, JobState};

use super::harness::Backend;
use super::tests::{add, claim, claim_one, job, state, urgent, LONG};
use super::{ClaimedJob, Enqueued, Finish, NewJob, Origin, Reported, Store};

/// Enqueues a sync job for `a:latest` with its target free; its id, and what came back.
async fn enqueue_with_a_free_slot(store: &Store) -> (JobId, Enqueued, Option<ClaimedJob>) {
    let new = job("a:latest", Origin::Sync);
    let id = new.id;
    let free = claim(Some("a:latest"), LONG);
    let (enqueued, claimed) = store.enqueue_and_claim(new, free).await.unwrap();
    (id, enqueued, claimed)
}

async fn a_job_for_an_idle_target_is_claimed_as_it_is_queued(backend: Backend) {
    let (_h, store) = backend.open(100).await;

    let (id, enqueued, claimed) = enqueue_with_a_free_slot(&store).await;

    assert!(matches!(enqueued, Enqueued::Created(created) if created == id));
    let claimed = claimed.expect("the target was free");
    assert_eq!(claimed.id, id);
    assert_eq!(claimed.attempts, 1);
    assert_eq!(state(&store, id).await, JobState::Working);
    assert!(store.claim_next(claim(None, LONG)).await.unwrap().is_none());
}

async fn the_claim_beside_an_enqueue_takes_the_schedulers_pick_not_the_new_job(backend: Backend) {
    let (_h, store) = backend.open(100).await;
    let urgent = add(&store, urgent(10, "b:latest", Origin::Async)).await;

    let (id, _, claimed) = enqueue_with_a_free_slot(&store).await;

    assert_eq!(claimed.expect("a job was claimed").id, urgent);
    assert_eq!(
        state(&store, id).await,
        JobState::Queued,
        "the new job waits its turn"
    );
}

async fn without_a_free_slot_or_for_a_known_job_nothing_is_claimed(backend: Backend) {
    let (_h, store) = backend.open(100).await;
    let mut full = claim(None, LONG);
    full.targets[0].free_slots = 0;
    let (_, claimed) = store
        .enqueue_and_claim(job("a:latest", Origin::Sync), full)
        .await
        .unwrap();
    assert!(claimed.is_none(), "no target had room");

    let first = NewJob {
        idempotency_key: Some("k".into()),
        request_hash: Some("h".into()),
        ..job("a:latest", Origin::Async)
    };
    let again = NewJob {
        id: foreman_types::JobId::new(),
        ..first.clone()
    };
    store.enqueue(first).await.unwrap();
    let (enqueued, claimed) = store
        .enqueue_and_claim(again, claim(None, LONG))
        .await
        .unwrap();
    assert!(matches!(enqueued, Enqueued::Existing(_)));
    assert!(claimed.is_none(), "a replayed request claims nothing");
}

async fn a_runs_end_claims_the_next_job_for_its_slot(backend: Backend) {
    let (_h, store) = backend.open(100).await;
    let first = add(&store, job("a:latest", Origin::Async)).await;
    let second = add(&store, job("a:latest", Origin::Async)).await;
    let running = claim_one(&store, None).await;
    assert_eq!(running.id, first);
    let done = || Finish::Done {
        result: None,
        artifacts: Vec::new(),
    };

    let (ended, next) = store
        .finish_and_claim(first, done(), Reported::default(), claim(None, LONG))
        .await
        .unwrap();

    assert_eq!(ended, Some(JobState::Done));
    assert_eq!(next.expect("the queue had a job").id, second);
    assert_eq!(state(&store, second).await, JobState::Loading);
    let (ended, next) = store
        .finish_and_claim(first, done(), Reported::default(), claim(None, LONG))
        .await
        .unwrap();
    assert_eq!(
        (ended, next.map(|job| job.id)),
        (None, None),
        "a run that had ended claims nothing"
    );
}

async fn the_dispatcher_claims_a_job_for_each_free_slot_at_once(backend: Backend) {
    let (_h, store) = backend.open(100).await;
    let first = add(&store, job("a:latest", Origin::Async)).await;
    let second = add(&store, job("a:latest", Origin::Async)).await;
    let third = add(&store, job("a:latest", Origin::Async)).await;
    let mut two_free = claim(None, LONG);
    two_free.targets[0].free_slots = 2;

    let claimed = store.claim_free_slots(two_free.clone()).await.unwrap();

    let ids: Vec<_> = claimed.iter().map(|job| job.id).collect();
    assert_eq!(ids, vec![first, second], "two slots, the two oldest jobs");
    assert_eq!(state(&store, third).await, JobState::Queued);
    let last = store.claim_free_slots(two_free).await.unwrap();
    assert_eq!(last.len(), 1, "one job left to claim");
}

super::harness::on_both_backends!(
    the_dispatcher_claims_a_job_for_each_free_slot_at_once,
    a_runs_end_claims_the_next_job_for_its_slot,
    a_job_for_an_idle_target_is_claimed_as_it_is_queued,
    the_claim_beside_an_enqueue_takes_the_schedulers_pick_not_the_new_job,
    without_a_free_slot_or_for_a_known_job_nothing_is_claimed,
);
