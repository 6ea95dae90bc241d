//! What replicas share besides the queue: webhook deliveries, the rate window, the
//! notifications between them and idempotency keys.

use super::*;

#[tokio::test]
async fn a_delivery_is_handed_to_one_replica_until_it_is_recorded_or_its_claim_lapses() {
    let [a, b] = &replicas().await;
    let mut ids = Vec::new();
    for _ in 0..20 {
        let hooked = NewJob {
            webhook_url: Some("http://127.0.0.1:9/hook".into()),
            ..job("a:latest", Origin::Async)
        };
        ids.push(add(&a.store, hooked).await);
    }
    let (to_a, to_b) = tokio::join!(a.store.due_deliveries(15), b.store.due_deliveries(15));
    let (to_a, to_b) = (to_a.unwrap(), to_b.unwrap());
    let mut handed: Vec<i64> = to_a.iter().chain(&to_b).map(|d| d.outbox_id).collect();
    handed.sort_unstable();
    handed.dedup();
    assert_eq!(
        handed.len(),
        to_a.len() + to_b.len(),
        "no delivery handed out twice"
    );
    assert_eq!(handed.len(), 20, "between them, every due delivery");
    assert!(a.store.due_deliveries(20).await.unwrap().is_empty());
    let next = b.store.next_delivery_at().await.unwrap().unwrap();
    assert!(
        next > now_ms(),
        "a claimed delivery is not due for the others"
    );

    let ok = DeliveryOutcome {
        status: Some(204),
        latency: Duration::ZERO,
        error: None,
    };
    let failed = DeliveryOutcome {
        status: Some(500),
        latency: Duration::ZERO,
        error: Some("500".into()),
    };
    a.store
        .record_delivery(&to_a[0], failed, 5, Duration::ZERO)
        .await
        .unwrap();
    let retry = b.store.due_deliveries(20).await.unwrap();
    assert_eq!(retry.len(), 1, "a recorded attempt gives up the claim");
    assert_eq!(
        (retry[0].outbox_id, retry[0].attempts),
        (to_a[0].outbox_id, 1)
    );
    b.store
        .record_delivery(&retry[0], ok, 5, Duration::ZERO)
        .await
        .unwrap();

    a.execute("UPDATE webhook_outbox SET claim_expires_at = 0 WHERE claimed_by IS NOT NULL")
        .await;
    let lapsed = b.store.due_deliveries(40).await.unwrap();
    assert_eq!(
        lapsed.len(),
        19,
        "lapsed claims are due again (the delivered one is not)"
    );
}

#[tokio::test]
async fn replicas_share_one_rate_window_per_tenant() {
    let replicas = replicas::<2>().await;
    let (a, b) = (&replicas[0].store, &replicas[1].store);
    let alice = Tenant::new("alice", "");
    assert!(a.admit(alice.clone(), 3).await.unwrap().is_ok());
    assert!(b.admit(alice.clone(), 3).await.unwrap().is_ok());
    assert!(a.admit(alice.clone(), 3).await.unwrap().is_ok());
    for store in [a, b] {
        let wait = store.admit(alice.clone(), 3).await.unwrap().unwrap_err();
        assert!(
            wait > Duration::from_secs(50) && wait <= Duration::from_secs(60),
            "until the first leaves the window: {wait:?}"
        );
    }
    let lowered = a.admit(alice.clone(), 1).await.unwrap();
    assert!(lowered.is_err(), "a lowered limit applies at once");
    assert!(b
        .admit(Tenant::new("alice", "u1"), 3)
        .await
        .unwrap()
        .is_ok());
    assert_eq!(
        b.admit(Tenant::new("bob", ""), 0).await.unwrap(),
        Err(Duration::from_secs(60)),
        "rpm 0 admits nothing"
    );
    assert!(b.is_shared());
}

/// Starts `replica` listening; returns its wakers (and the receiver of its cancels) once
/// its connection is listening.
async fn listening(
    replica: &Replica,
    stop: &CancellationToken,
) -> (Wakers, tokio::sync::mpsc::UnboundedReceiver<JobId>) {
    let (cancelled, cancels) = tokio::sync::mpsc::unbounded_channel();
    let wakers = Wakers {
        work: Arc::default(),
        keys: Arc::default(),
        cancelled,
    };
    let before = replica
        .count(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND query LIKE 'LISTEN%'",
        )
        .await;
    replica.store.watch(wakers.clone(), stop.clone());
    let listening = wait_until(Duration::from_secs(10), || async {
        replica
            .count(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE datname = current_database() AND query LIKE 'LISTEN%'
                   AND state = 'idle'",
            )
            .await
            > before
    })
    .await;
    assert!(listening, "the replica never listened");
    (wakers, cancels)
}

#[tokio::test]
async fn a_replica_hears_the_others_jobs_keys_and_cancels() {
    let [a, b] = &replicas().await;
    let stop = CancellationToken::new();
    let (wakers, mut cancels) = listening(b, &stop).await;
    let heard = Duration::from_secs(10);

    add(&a.store, job("a:latest", Origin::Async)).await;
    let woken = tokio::time::timeout(heard, wakers.work.notified()).await;
    assert!(woken.is_ok(), "an enqueue on A wakes B's dispatcher");

    let key = crate::keys::KeyRecord {
        name: "ci".into(),
        hash: [7; 32],
        prefix: "fm_ci".into(),
        admin: true,
        weight: 1,
        max_queued: None,
        rpm: None,
        trust_user_header: false,
        created_at: now_ms(),
    };
    a.store.create_key(key, true).await.unwrap();
    let woken = tokio::time::timeout(heard, wakers.keys.notified()).await;
    assert!(woken.is_ok(), "a key created on A makes B reload its keys");

    let claimed = b.claimed().await;
    let was = a
        .store
        .cancel(claimed.id, "not wanted".into())
        .await
        .unwrap();
    assert!(matches!(was, Some(JobState::Loading | JobState::Working)));
    let stopped = tokio::time::timeout(heard, cancels.recv()).await;
    assert_eq!(
        stopped.ok().flatten(),
        Some(claimed.id),
        "B stops the run A cancelled"
    );
    stop.cancel();
}

#[tokio::test]
async fn a_replica_listens_again_after_losing_its_connection() {
    let [a, b] = &replicas().await;
    let stop = CancellationToken::new();
    let (wakers, _cancels) = listening(b, &stop).await;
    let heard = Duration::from_secs(10);

    a.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND query LIKE 'LISTEN%'",
    )
    .await;
    let woken = tokio::time::timeout(heard, wakers.work.notified()).await;
    assert!(
        woken.is_ok(),
        "listening again, B looks for work it may have missed"
    );
    add(&a.store, job("a:latest", Origin::Async)).await;
    let woken = tokio::time::timeout(heard, wakers.work.notified()).await;
    assert!(woken.is_ok(), "B hears A's enqueues again");
    stop.cancel();
}

#[tokio::test]
async fn a_cancel_through_another_replica_reaches_a_sync_caller_still_queued() {
    let [a, b] = &replicas().await;
    let stop = CancellationToken::new();
    let (_wakers, mut cancels) = listening(a, &stop).await;
    let chat = add(&a.store, job("a:latest", Origin::Sync)).await;
    assert_eq!(
        b.store.cancel(chat, "no".into()).await.unwrap(),
        Some(JobState::Queued)
    );
    let heard = tokio::time::timeout(Duration::from_secs(10), cancels.recv()).await;
    assert_eq!(heard.expect("heard in time"), Some(chat));
    stop.cancel();
}

#[tokio::test]
async fn replicas_racing_on_one_idempotency_key_make_one_job() {
    let replicas = replicas::<2>().await;
    for round in 0..10 {
        let keyed = || NewJob {
            idempotency_key: Some(format!("key-{round}")),
            request_hash: Some("same".into()),
            ..job("a:latest", Origin::Async)
        };
        let (first, second) = tokio::join!(
            replicas[0].store.enqueue(keyed()),
            replicas[1].store.enqueue(keyed())
        );
        let (first, second) = (first.unwrap(), second.unwrap());
        assert_eq!(first.id(), second.id(), "one job");
        let created = [&first, &second]
            .iter()
            .filter(|e| matches!(e, Enqueued::Created(_)))
            .count();
        assert_eq!(created, 1, "one created, the other told it exists");
    }
    let jobs = replicas[0].count("SELECT count(*) FROM jobs").await;
    assert_eq!(jobs, 10);
}
