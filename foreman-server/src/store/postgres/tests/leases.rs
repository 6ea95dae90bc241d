//! Leases: a replica back from a pause, a run whose end was never written, and the
//! rescue of a replica whose lease lapsed.

use super::*;

#[tokio::test]
async fn a_replica_back_from_a_pause_past_its_lease_gives_its_work_back_first() {
    let [a] = &replicas().await;
    let batch = a.running().await;
    let chat = add(&a.store, job("a:latest", Origin::Sync)).await;
    a.lapse().await;

    // While lapsed it neither claims nor takes sync callers.
    assert!(a.claim().await.is_none());
    assert!(matches!(
        a.store.enqueue(job("a:latest", Origin::Sync)).await,
        Err(StoreError::LeaseLapsed)
    ));
    // Its next renewal says so, having put its run back and cancelled its sync job.
    assert!(matches!(
        a.store.keep_alive(5, vec![batch]).await,
        Err(StoreError::LeaseLapsed)
    ));
    assert_eq!(state(&a.store, batch).await, JobState::Queued);
    assert_eq!(state(&a.store, chat).await, JobState::Cancelled);
    // Renewed: it claims again, the slot free.
    assert_eq!(a.claimed().await.id, batch);
    assert_eq!(
        a.store.keep_alive(5, vec![batch]).await.unwrap(),
        Recovered::default()
    );
}

#[tokio::test]
async fn a_run_whose_end_was_never_written_is_given_back_after_a_lease() {
    let [a] = &replicas().await;
    let id = a.running().await;
    // Still running here, or too recent to judge: left alone.
    let nothing = a.store.keep_alive(5, vec![id]).await.unwrap();
    assert_eq!(nothing, Recovered::default());
    assert_eq!(
        a.store.keep_alive(5, Vec::new()).await.unwrap(),
        Recovered::default()
    );
    assert!(a.claim().await.is_none());

    // A lease later, and this process no longer runs it (its end failed to commit).
    a.execute(&format!(
        "UPDATE jobs SET updated_at = updated_at - 60000 WHERE id = '{id}'"
    ))
    .await;
    let swept = a.store.keep_alive(5, Vec::new()).await.unwrap();
    assert_eq!(swept.requeued, 1);
    assert_eq!(state(&a.store, id).await, JobState::Queued);
    assert_eq!(a.claimed().await.id, id);
}

#[tokio::test]
async fn a_lapsed_replicas_work_is_taken_over_once_by_the_live_ones() {
    let [dead, b, c] = &replicas().await;
    let running = add(
        &dead.store,
        NewJob {
            webhook_url: Some("http://127.0.0.1:9/hook".into()),
            ..job("a:latest", Origin::Async)
        },
    )
    .await;
    assert_eq!(dead.claimed().await.id, running);
    let streaming = add(&dead.store, job("a:latest", Origin::Sync)).await;
    let wide = ClaimRequest {
        targets: vec![TargetView {
            name: "other".into(),
            up: true,
            free_slots: 1,
            parallel: 1,
            ..TargetView::default()
        }],
        ..one_slot()
    };
    assert_eq!(
        dead.store.claim_next(wide).await.unwrap().unwrap().id,
        streaming
    );
    let waiting = add(&dead.store, job("a:latest", Origin::Sync)).await;
    let claimed_deliveries = dead.store.due_deliveries(10).await.unwrap();
    assert_eq!(
        claimed_deliveries.len(),
        1,
        "the dead replica held a delivery"
    );

    dead.lapse().await;
    assert!(
        dead.claim().await.is_none(),
        "a replica whose lease lapsed claims nothing"
    );
    let (by_b, by_c) = tokio::join!(
        b.store.keep_alive(3, Vec::new()),
        c.store.keep_alive(3, Vec::new())
    );
    let mut rescued = by_b.unwrap();
    rescued += by_c.unwrap();
    assert_eq!(
        rescued,
        Recovered {
            requeued: 1,
            failed: 0,
            cancelled: 2
        },
        "taken over exactly once"
    );

    let job = b.store.job(running).await.unwrap().unwrap();
    assert_eq!((job.state, job.attempts), (JobState::Queued, 1));
    assert!(
        job.error.unwrap().contains(dead.id()),
        "names the lost replica"
    );
    assert_eq!(state(&b.store, streaming).await, JobState::Cancelled);
    assert_eq!(state(&b.store, waiting).await, JobState::Cancelled);
    let leftovers = b
        .count(&format!(
            "SELECT (SELECT count(*) FROM target_slots WHERE holder IS NOT NULL)
                  + (SELECT count(*) FROM webhook_outbox WHERE claimed_by IS NOT NULL)
                  + (SELECT count(*) FROM replicas WHERE id = '{}')",
            dead.id()
        ))
        .await;
    assert_eq!(
        leftovers, 0,
        "its slots, outbox claims and lease row are gone"
    );
    assert_eq!(
        b.store.due_deliveries(10).await.unwrap()[0].webhook_id,
        claimed_deliveries[0].webhook_id,
        "its delivery is due again, for a live replica"
    );
    let rerun = c.claimed().await;
    assert_eq!(
        (rerun.id, rerun.attempts),
        (running, 2),
        "the freed slot runs it again"
    );
    assert_eq!(
        b.store.keep_alive(3, Vec::new()).await.unwrap(),
        Recovered::default()
    );
}

#[tokio::test]
async fn a_rescued_job_out_of_attempts_fails_naming_the_lost_replica() {
    let [dead, live] = &replicas().await;
    let id = dead.running().await;
    dead.lapse().await;
    let rescued = live.store.keep_alive(1, Vec::new()).await.unwrap();
    assert_eq!(rescued.failed, 1);
    let job = live.store.job(id).await.unwrap().unwrap();
    assert_eq!(job.state, JobState::Failed);
    let error = job.error.unwrap();
    assert!(
        error.contains(dead.id()) && error.contains("gave up after 1"),
        "{error}"
    );
}
