//! Fair share (ADR 14) on both backends: what a run costs its tenant, where a tenant
//! comes back after idling, and the counts the triggers keep.

use foreman_types::JobId;

use super::harness::{Backend, Harness};
use super::tests::{add, claim, claim_one, job, LONG};
use super::*;

fn for_tenant(key: &str, weight: u32) -> NewJob {
    NewJob {
        tenant: crate::scheduler::Tenant::new(key, ""),
        weight,
        ..job("a:latest", Origin::Async)
    }
}

/// Pretends the running job `id` started `ms` ago, so its run costs GPU time.
async fn backdate_run(h: &Harness, id: JobId, ms: i64) {
    h.execute(format!(
        "UPDATE jobs SET started_at = started_at - {ms} WHERE id = '{id}'"
    ))
    .await;
}

/// Each tenant's (settled service, queued, running) as the store keeps them.
async fn tenant_row(h: &Harness, key: &str) -> (f64, i64, i64) {
    let row = h
        .numbers(format!(
            "SELECT service, queued, running FROM tenants WHERE key_name = '{key}'"
        ))
        .await;
    (row[0], row[1] as i64, row[2] as i64)
}

/// The trigger-kept counts agree with the jobs themselves.
pub(super) async fn assert_counts_agree(h: &Harness) {
    let drift = h
        .numbers(
            "SELECT
               (SELECT count(*) FROM tenants t WHERE queued !=
                  (SELECT count(*) FROM jobs j WHERE j.state = 'queued'
                     AND j.tenant_key = t.key_name AND j.tenant_user = t.end_user))
             + (SELECT count(*) FROM tenants t WHERE running !=
                  (SELECT count(*) FROM jobs j WHERE j.state IN ('loading', 'working')
                     AND j.tenant_key = t.key_name AND j.tenant_user = t.end_user))
             + (SELECT count(*) FROM queue_groups g WHERE queued !=
                  (SELECT count(*) FROM jobs j WHERE j.state = 'queued'
                     AND j.priority = g.priority AND j.model = g.model
                     AND j.tenant_key = g.tenant_key AND j.tenant_user = g.tenant_user))
             + (SELECT count(*) FROM (SELECT DISTINCT priority, model, tenant_key,
                  tenant_user FROM jobs WHERE state = 'queued') q
                WHERE NOT EXISTS (SELECT 1 FROM queue_groups g
                  WHERE g.priority = q.priority AND g.model = q.model
                    AND g.tenant_key = q.tenant_key AND g.tenant_user = q.tenant_user))"
                .to_owned(),
        )
        .await;
    assert_eq!(
        drift[0], 0.0,
        "tenants or queue_groups drifted from the jobs"
    );
}

async fn a_key_arriving_behind_a_backlog_runs_right_after_the_running_job(backend: Backend) {
    let (h, store) = backend.open(100).await;
    let flood: Vec<JobId> = {
        let mut ids = Vec::new();
        for _ in 0..3 {
            ids.push(add(&store, for_tenant("flood", 1)).await);
        }
        ids
    };
    let running = claim_one(&store, None).await;
    assert_eq!(running.id, flood[0]);
    let late = add(&store, for_tenant("late", 1)).await;
    backdate_run(&h, running.id, 5_000).await;
    let done = Finish::Done {
        result: None,
        artifacts: Vec::new(),
    };
    store.finish(running.id, done).await.unwrap();

    let next = claim_one(&store, None).await;
    assert_eq!(
        next.id, late,
        "the late key goes before the flood's older jobs"
    );
    assert_eq!(next.tenant.key, "late");
    assert_counts_agree(&h).await;
}

async fn a_run_is_charged_to_its_tenant_divided_by_weight_and_kept_on_the_job(backend: Backend) {
    let (h, store) = backend.open(100).await;
    let id = add(&store, for_tenant("heavy", 2)).await;
    let running = claim_one(&store, None).await;
    assert_eq!((tenant_row(&h, "heavy").await).2, 1, "counted as running");
    backdate_run(&h, running.id, 4_000).await;
    store
        .finish(id, Finish::Failed { error: "x".into() })
        .await
        .unwrap();
    let (service, queued, running) = tenant_row(&h, "heavy").await;
    assert!((2_000.0..2_100.0).contains(&service), "service {service}");
    assert_eq!((queued, running), (0, 0));
    let gpu_ms = h
        .numbers(format!("SELECT gpu_ms FROM jobs WHERE id = '{id}'"))
        .await[0] as i64;
    assert!((4_000..4_200).contains(&gpu_ms), "gpu_ms {gpu_ms}");
}

async fn an_idle_key_comes_back_at_the_least_active_service(backend: Backend) {
    let (h, store) = backend.open(100).await;
    // "early" runs alone and builds up service, then "busy" becomes active behind it.
    let early = add(&store, for_tenant("early", 1)).await;
    claim_one(&store, None).await;
    backdate_run(&h, early, 9_000).await;
    let busy = add(&store, for_tenant("busy", 1)).await;
    store
        .finish(early, Finish::Failed { error: "x".into() })
        .await
        .unwrap();
    claim_one(&store, None).await;
    backdate_run(&h, busy, 1_000).await;
    add(&store, for_tenant("busy", 1)).await;
    store
        .finish(busy, Finish::Failed { error: "x".into() })
        .await
        .unwrap();
    // A brand-new key starts level with the least active key, not at zero.
    add(&store, for_tenant("newcomer", 1)).await;
    let (busy_service, ..) = tenant_row(&h, "busy").await;
    let (newcomer_service, ..) = tenant_row(&h, "newcomer").await;
    assert!(busy_service >= 1_000.0);
    assert_eq!(newcomer_service, busy_service);
    assert_counts_agree(&h).await;
}

async fn tenant_and_group_counts_follow_every_state_change(backend: Backend) {
    let (h, store) = backend.open(100).await;
    let a = add(&store, for_tenant("a", 1)).await;
    let b = add(&store, for_tenant("b", 1)).await;
    add(
        &store,
        NewJob {
            priority: 5,
            ..for_tenant("a", 1)
        },
    )
    .await;
    assert_counts_agree(&h).await;
    let first = claim_one(&store, None).await;
    assert_counts_agree(&h).await;
    let retry = Finish::Retry {
        error: "unreachable".into(),
        max_attempts: 3,
    };
    store.finish(first.id, retry).await.unwrap();
    assert_counts_agree(&h).await;
    store.cancel(b, "no longer wanted".into()).await.unwrap();
    assert_counts_agree(&h).await;
    claim_one(&store, None).await;
    store.recover(3).await.unwrap();
    assert_counts_agree(&h).await;
    store.cancel(a, "no".into()).await.unwrap();
    while let Some(job) = store.claim_next(claim(None, LONG)).await.unwrap() {
        let done = Finish::Done {
            result: None,
            artifacts: Vec::new(),
        };
        store.finish(job.id, done).await.unwrap();
    }
    assert_counts_agree(&h).await;
    store.prune(now_ms() + 1).await.unwrap();
    assert_counts_agree(&h).await;
    let groups = h
        .numbers("SELECT count(*) FROM queue_groups".to_owned())
        .await[0];
    assert_eq!(groups, 0.0, "empty groups are removed");
}

async fn queue_position_follows_fair_share_between_keys(backend: Backend) {
    let (_h, store) = backend.open(100).await;
    let mut flood = Vec::new();
    for _ in 0..5 {
        flood.push(add(&store, for_tenant("flood", 1)).await);
    }
    let late = add(&store, for_tenant("late", 1)).await;
    let heavy = add(&store, for_tenant("heavy", 2)).await;
    let position = |id| {
        let store = store.clone();
        async move {
            store
                .job(id)
                .await
                .unwrap()
                .unwrap()
                .queue_position
                .unwrap()
        }
    };
    // The late keys' first jobs go before the flood's backlog, not behind it; "heavy"
    // (weight 2) has a turn before "late"'s first job, and before the flood's.
    assert_eq!(position(heavy).await, 0);
    assert_eq!(position(late).await, 1);
    assert_eq!(position(flood[0]).await, 1);
    // The flood's third job waits for its two older jobs, one job of "late" (its only one)
    // and two of "heavy" (weight 2, but it has only one).
    assert_eq!(position(flood[2]).await, 2 + 1 + 1);
}

super::harness::on_both_backends!(
    a_key_arriving_behind_a_backlog_runs_right_after_the_running_job,
    a_run_is_charged_to_its_tenant_divided_by_weight_and_kept_on_the_job,
    an_idle_key_comes_back_at_the_least_active_service,
    tenant_and_group_counts_follow_every_state_change,
    queue_position_follows_fair_share_between_keys,
);
