//! One target's slots over all replicas, and who may claim, move and end a run.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_claiming_at_once_never_run_two_generations_on_a_one_slot_target() {
    const JOBS: usize = 24;
    let replicas = replicas::<2>().await;
    let mut ids = Vec::new();
    for i in 0..JOBS {
        ids.push(add(&replicas[i % 2].store, job("a:latest", Origin::Async)).await);
    }
    let running = Arc::new(AtomicU32::new(0));
    let finished = Arc::new(AtomicUsize::new(0));
    let mut claimers = tokio::task::JoinSet::new();
    for replica in &replicas {
        for _ in 0..3 {
            let store = replica.store.clone();
            let pg = replica.pg.clone();
            let (running, finished) = (running.clone(), finished.clone());
            claimers.spawn(async move {
                while finished.load(Ordering::SeqCst) < JOBS {
                    let Some(claimed) = store.claim_next(one_slot()).await.unwrap() else {
                        tokio::task::yield_now().await;
                        continue;
                    };
                    // The run lasts from the claim's commit until just before its end is
                    // committed, and takes a database round trip, so that another claim
                    // can try its luck meanwhile: no other run may start on the target.
                    let before = running.fetch_add(1, Ordering::SeqCst);
                    assert_eq!(before, 0, "two generations at once on a one-slot target");
                    let client = pg.client().await.unwrap();
                    let on_target: i64 = client
                        .query_one(
                            "SELECT count(*) FROM jobs
                             WHERE target = 'gpu' AND state IN ('loading', 'working')",
                            &[],
                        )
                        .await
                        .unwrap()
                        .get(0);
                    assert_eq!(on_target, 1, "two jobs running on a one-slot target");
                    drop(client);
                    running.fetch_sub(1, Ordering::SeqCst);
                    let ended = store.finish(claimed.id, done()).await.unwrap();
                    assert_eq!(ended, Some(JobState::Done));
                    finished.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
    }
    let all_done = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(claimer) = claimers.join_next().await {
            claimer.expect("a claimer panicked");
        }
    })
    .await;
    assert!(all_done.is_ok(), "the jobs were not all run in time");
    for id in ids {
        let job = replicas[0].store.job(id).await.unwrap().unwrap();
        assert_eq!(
            (job.state, job.attempts),
            (JobState::Done, 1),
            "run exactly once"
        );
    }
    let held = replicas[0]
        .count("SELECT count(*) FROM target_slots WHERE holder IS NOT NULL")
        .await;
    assert_eq!(held, 0, "every slot was freed");
}

#[tokio::test]
async fn a_cancelled_run_keeps_its_slot_until_its_replica_has_stopped_it() {
    let [a, b] = &replicas().await;
    let id = a.running().await;
    let next = add(&b.store, job("a:latest", Origin::Async)).await;

    // Cancelled through replica B while A's generation is still running.
    assert_eq!(
        b.store.cancel(id, "stop".into()).await.unwrap(),
        Some(JobState::Loading)
    );
    assert!(
        b.claim().await.is_none(),
        "the target still runs A's generation"
    );
    // A's stale answers change nothing, and its stopped run frees the slot.
    assert!(!a.store.mark_working(id).await.unwrap());
    let stopped = Finish::Cancelled {
        reason: "cancelled".into(),
    };
    assert_eq!(a.store.finish(id, stopped).await.unwrap(), None);
    assert_eq!(b.claim().await.map(|c| c.id), Some(next));
}

#[tokio::test]
async fn a_replica_cannot_end_a_run_another_replica_took_over() {
    let [a, b] = &replicas().await;
    let id = a.running().await;
    a.lapse().await;
    b.store.keep_alive(5, Vec::new()).await.unwrap();
    assert_eq!(b.claimed().await.id, id);

    // A comes back from a long pause and reports its old run: B's run goes on.
    assert_eq!(a.store.finish(id, done()).await.unwrap(), None);
    assert_eq!(state(&b.store, id).await, JobState::Loading);
    assert!(b.store.mark_working(id).await.unwrap());
    assert_eq!(
        b.store.finish(id, done()).await.unwrap(),
        Some(JobState::Done)
    );
}

#[tokio::test]
async fn a_sync_job_is_claimed_only_by_the_replica_its_caller_is_connected_to() {
    let [a, b] = &replicas().await;
    let sync = add(&a.store, job("a:latest", Origin::Sync)).await;
    let later = add(&b.store, job("a:latest", Origin::Async)).await;

    let claimed = b.claimed().await;
    assert_eq!(claimed.id, later, "B passes over A's older sync job");
    b.store.finish(later, done()).await.unwrap();
    assert!(b.claim().await.is_none());
    assert_eq!(state(&b.store, sync).await, JobState::Queued);

    let claimed = a.claimed().await;
    assert_eq!((claimed.id, claimed.origin), (sync, Origin::Sync));
}
