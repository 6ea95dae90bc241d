//! The scheduler fed job sets: single decisions, then whole runs through a small
//! deterministic simulation of lanes and GPU time, then properties over random runs.
//! Several targets with several lanes each are in [`lanes`].

mod lanes;

use std::collections::HashMap;
use std::time::Duration;

use proptest::prelude::*;

use super::*;

const WINDOW: Duration = Duration::from_secs(30);

fn policy() -> Policy {
    Policy {
        affinity_window: WINDOW,
    }
}

fn head(job: &str, priority: i32, tenant: &str, model: &str, queued_at_ms: i64) -> Head {
    Head {
        job: job.into(),
        priority,
        tenant: Tenant::new(tenant, ""),
        model: model.into(),
        queued_at_ms,
    }
}

fn target(name: &str, resident: &[&str], installed: &[&str]) -> TargetView {
    TargetView {
        name: name.into(),
        up: true,
        free_slots: 1,
        parallel: 1,
        load: 0,
        resident: resident.iter().map(|m| m.to_string()).collect(),
        installed: installed.iter().map(|m| m.to_string()).collect(),
        unpolled: false,
    }
}

fn one_box(resident: &[&str]) -> Vec<TargetView> {
    vec![target(
        "gpu",
        resident,
        &["a:latest", "b:latest", "c:latest"],
    )]
}

fn picked(heads: Vec<Head>, targets: &[TargetView], now_ms: i64) -> Option<(String, String)> {
    let queue = QueueView {
        heads,
        service: HashMap::new(),
    };
    pick(&queue, targets, &policy(), now_ms).map(|a| (a.job, a.target))
}

fn job_of(heads: Vec<Head>, targets: &[TargetView], now_ms: i64) -> Option<String> {
    picked(heads, targets, now_ms).map(|(job, _)| job)
}

/// The job picked on [`one_box`] with `resident` loaded, the tenants having had `service`.
fn job_served(
    heads: Vec<Head>,
    service: HashMap<Tenant, f64>,
    resident: &[&str],
    now_ms: i64,
) -> Option<String> {
    let queue = QueueView { heads, service };
    pick(&queue, &one_box(resident), &policy(), now_ms).map(|a| a.job)
}

/// Job `01` of tenant `first` for `a:latest`, then job `02` of tenant `second` for
/// `b:latest` 10 ms later.
fn a_then_b(first: &str, second: &str) -> Vec<Head> {
    vec![
        head("01", 0, first, "a:latest", 0),
        head("02", 0, second, "b:latest", 10),
    ]
}

/// The target that job `01`, the only one queued, for `a:latest`, goes to.
fn target_of_one_job(targets: &[TargetView]) -> Option<String> {
    let heads = vec![head("01", 0, "k", "a:latest", 0)];
    picked(heads, targets, 10).map(|(job, target)| {
        assert_eq!(job, "01");
        target
    })
}

#[test]
fn an_empty_queue_picks_nothing() {
    assert_eq!(job_of(vec![], &one_box(&[]), 0), None);
}

#[test]
fn the_resident_models_job_goes_before_an_older_job_of_another_model() {
    assert_eq!(
        job_of(a_then_b("k", "k"), &one_box(&["b:latest"]), 1_000),
        Some("02".into())
    );
}

#[test]
fn the_oldest_job_goes_once_it_has_waited_the_affinity_window() {
    let now = WINDOW.as_millis() as i64;
    assert_eq!(
        job_of(a_then_b("k", "k"), &one_box(&["b:latest"]), now),
        Some("01".into())
    );
}

#[test]
fn a_zero_window_is_oldest_first() {
    let queue = QueueView {
        heads: a_then_b("k", "k"),
        service: HashMap::new(),
    };
    let fifo = Policy {
        affinity_window: Duration::ZERO,
    };
    let chosen = pick(&queue, &one_box(&["b:latest"]), &fifo, 20).map(|a| a.job);
    assert_eq!(chosen, Some("01".into()));
}

#[test]
fn a_higher_priority_goes_first_whatever_model_is_resident() {
    let heads = vec![
        head("01", 0, "k", "a:latest", 0),
        head("02", 10, "k", "b:latest", 50),
    ];
    assert_eq!(
        job_of(heads, &one_box(&["a:latest"]), 100),
        Some("02".into())
    );
}

#[test]
fn the_tenant_with_less_service_goes_first_even_against_the_resident_model() {
    let service = HashMap::from([(Tenant::new("busy", ""), 5_000.0)]);
    let chosen = job_served(a_then_b("busy", "new"), service, &["a:latest"], 20);
    assert_eq!(chosen, Some("02".into()));
}

#[test]
fn tenants_tied_on_service_are_drained_by_model() {
    let service = HashMap::from([(Tenant::new("x", ""), 7.0), (Tenant::new("y", ""), 7.0)]);
    let chosen = job_served(a_then_b("x", "y"), service, &["b:latest"], 20);
    assert_eq!(chosen, Some("02".into()));
}

#[test]
fn end_users_behind_one_key_are_separate_tenants() {
    let alice = Tenant::new("webui", "alice");
    let bob = Tenant::new("webui", "bob");
    let heads = vec![
        Head {
            tenant: alice.clone(),
            ..head("01", 0, "", "a:latest", 0)
        },
        Head {
            tenant: bob,
            ..head("02", 0, "", "a:latest", 5)
        },
    ];
    let chosen = job_served(heads, HashMap::from([(alice, 100.0)]), &["a:latest"], 10);
    assert_eq!(chosen, Some("02".into()));
}

#[test]
fn a_target_takes_no_job_for_a_model_it_does_not_have() {
    let boxes = vec![target("one", &[], &["a:latest"]), {
        let mut busy = target("two", &[], &["b:latest"]);
        busy.free_slots = 0;
        busy
    }];
    let heads = vec![head("01", 0, "k", "b:latest", 0)];
    assert_eq!(picked(heads, &boxes, 10), None);
}

#[test]
fn a_model_no_target_lists_may_run_anywhere_and_the_target_decides() {
    let heads = vec![head("01", 0, "k", "mystery:latest", 0)];
    assert_eq!(
        picked(heads, &one_box(&[]), 10),
        Some(("01".into(), "gpu".into()))
    );
}

#[test]
fn a_job_goes_to_the_target_that_holds_its_model_in_memory() {
    let boxes = vec![
        target("cold", &[], &["a:latest"]),
        target("warm", &["a:latest"], &["a:latest"]),
    ];
    assert_eq!(target_of_one_job(&boxes), Some("warm".into()));
}

#[test]
fn an_idle_target_with_the_model_installed_runs_it_when_the_warm_one_is_busy() {
    let mut warm = target("warm", &["a:latest"], &["a:latest"]);
    warm.free_slots = 0;
    let boxes = vec![target("cold", &[], &["a:latest"]), warm];
    assert_eq!(target_of_one_job(&boxes), Some("cold".into()));
}

#[test]
fn among_equal_targets_the_least_loaded_takes_the_job() {
    let mut busy = target("a-busy", &[], &["a:latest"]);
    busy.load = 5;
    let mut idle = target("b-idle", &[], &["a:latest"]);
    idle.load = 1;
    assert_eq!(target_of_one_job(&[busy, idle]), Some("b-idle".into()));
}

#[test]
fn a_target_that_is_down_or_full_takes_nothing() {
    let mut down = target("down", &[], &["a:latest"]);
    down.up = false;
    let mut full = target("full", &[], &["a:latest"]);
    full.free_slots = 0;
    assert_eq!(target_of_one_job(&[down, full]), None);
}

#[test]
fn a_lower_priority_job_runs_where_the_higher_ones_cannot() {
    let mut other = target("other", &[], &["b:latest"]);
    other.free_slots = 0;
    let boxes = vec![target("gpu", &[], &["a:latest"]), other];
    let heads = vec![
        head("01", 10, "k", "b:latest", 0),
        head("02", 0, "k", "a:latest", 5),
    ];
    assert_eq!(picked(heads, &boxes, 10), Some(("02".into(), "gpu".into())));
}

#[test]
fn activation_lifts_to_the_least_active_tenant_and_never_lowers() {
    assert_eq!(activation_service(0.0, &[40.0, 25.0], &[]), 25.0);
    assert_eq!(activation_service(90.0, &[40.0, 25.0], &[]), 90.0);
    assert_eq!(activation_service(0.0, &[], &[10.0, 70.0]), 70.0);
    assert_eq!(activation_service(3.0, &[], &[]), 3.0);
}

#[test]
fn weight_divides_service() {
    assert_eq!(weighted(1_000.0, 2), 500.0);
    assert_eq!(weighted(1_000.0, 0), 1_000.0);
}

/// The heads of the queued jobs' groups, as the store reads them, with the service each
/// tenant has had.
fn queue_view(queued: &[SimJob], service: HashMap<Tenant, f64>) -> QueueView {
    let mut heads: HashMap<(i32, Tenant, String), &SimJob> = HashMap::new();
    for job in queued {
        let key = (job.priority, job.tenant.clone(), job.model.clone());
        let entry = heads.entry(key).or_insert(job);
        if (job.arrives_ms, &job.id) < (entry.arrives_ms, &entry.id) {
            *entry = job;
        }
    }
    QueueView {
        heads: heads
            .values()
            .map(|j| Head {
                job: j.id.clone(),
                priority: j.priority,
                tenant: j.tenant.clone(),
                model: j.model.clone(),
                queued_at_ms: j.arrives_ms,
            })
            .collect(),
        service,
    }
}

/// A job in the simulation.
#[derive(Debug, Clone)]
struct SimJob {
    id: String,
    tenant: Tenant,
    model: String,
    priority: i32,
    arrives_ms: i64,
    runs_ms: i64,
}

/// When each job started and where.
#[derive(Debug, Clone)]
struct Started {
    job: SimJob,
    at_ms: i64,
}

/// One GPU box running the jobs one at a time, with the store's accounting: service is
/// charged when a job ends, a running job counts its run as an estimate, and a tenant that
/// becomes active is lifted by `activation_service`. A model swap costs `load_ms`.
/// Every decision is checked against the invariants the module promises.
fn simulate(mut jobs: Vec<SimJob>, weights: &HashMap<String, u32>, load_ms: i64) -> Vec<Started> {
    jobs.sort_by_key(|j| (j.arrives_ms, j.id.clone()));
    let mut pending = jobs.into_iter().peekable();
    let mut queued: Vec<SimJob> = Vec::new();
    let mut settled: HashMap<Tenant, f64> = HashMap::new();
    let mut started = Vec::new();
    let mut resident: Option<String> = None;
    let mut now = 0_i64;
    let weight = |t: &Tenant| weights.get(&t.key).copied().unwrap_or(1);
    loop {
        admit(&mut pending, now, None, &mut queued, &mut settled);
        if queued.is_empty() {
            match pending.peek() {
                Some(next) => {
                    now = next.arrives_ms;
                    continue;
                }
                None => return started,
            }
        }
        let view = queue_view(&queued, settled.clone());
        let gpu = TargetView {
            name: "gpu".into(),
            up: true,
            free_slots: 1,
            parallel: 1,
            load: queued.len() as u32,
            resident: resident.iter().cloned().collect(),
            installed: Vec::new(),
            unpolled: false,
        };
        let chosen = pick(&view, &[gpu], &policy(), now).expect("a queued job can always run");
        let index = queued.iter().position(|j| j.id == chosen.job).unwrap();
        let job = queued.remove(index);
        check_invariants(&job, &queued, &settled, now);
        let swap = resident.as_deref() != Some(job.model.as_str());
        resident = Some(job.model.clone());
        started.push(Started {
            job: job.clone(),
            at_ms: now,
        });
        let took = job.runs_ms + if swap { load_ms } else { 0 };
        // Jobs that arrive while this one runs see its tenant active, not yet charged.
        admit(
            &mut pending,
            now + took - 1,
            Some(&job.tenant),
            &mut queued,
            &mut settled,
        );
        now += took;
        *settled.entry(job.tenant.clone()).or_default() +=
            weighted(took as f64, weight(&job.tenant));
    }
}

/// Queues the jobs that have arrived by `now`, lifting each tenant that was idle (nothing
/// queued, nothing running) as the store does at enqueue.
fn admit(
    pending: &mut std::iter::Peekable<std::vec::IntoIter<SimJob>>,
    now: i64,
    running: Option<&Tenant>,
    queued: &mut Vec<SimJob>,
    settled: &mut HashMap<Tenant, f64>,
) {
    while let Some(job) = pending.next_if(|j| j.arrives_ms <= now) {
        let active: Vec<&Tenant> = queued.iter().map(|q| &q.tenant).chain(running).collect();
        if !active.contains(&&job.tenant) {
            let active: Vec<f64> = active
                .iter()
                .map(|t| settled.get(*t).copied().unwrap_or(0.0))
                .collect();
            let known: Vec<f64> = settled.values().copied().collect();
            let own = settled.get(&job.tenant).copied().unwrap_or(0.0);
            settled.insert(job.tenant.clone(), activation_service(own, &active, &known));
        }
        queued.push(job);
    }
}

/// What every decision must respect: strict priority, least service within it, and the
/// affinity window within the chosen tenant's jobs.
fn check_invariants(chosen: &SimJob, left: &[SimJob], settled: &HashMap<Tenant, f64>, now: i64) {
    let service = |t: &Tenant| settled.get(t).copied().unwrap_or(0.0);
    for other in left {
        assert!(other.priority <= chosen.priority, "priority order broken");
        if other.priority == chosen.priority {
            assert!(
                service(&other.tenant) >= service(&chosen.tenant),
                "a tenant with more service went first"
            );
        }
        let same_queue = other.priority == chosen.priority && other.tenant == chosen.tenant;
        let older = (other.arrives_ms, &other.id) < (chosen.arrives_ms, &chosen.id);
        if same_queue && older {
            assert!(
                now - other.arrives_ms < WINDOW.as_millis() as i64,
                "job {} waited past the affinity window behind younger job {}",
                other.id,
                chosen.id
            );
        }
    }
}

fn job(id: usize, tenant: &str, model: &str, arrives_ms: i64, runs_ms: i64) -> SimJob {
    SimJob {
        id: format!("{id:05}"),
        tenant: Tenant::new(tenant, ""),
        model: model.into(),
        priority: 0,
        arrives_ms,
        runs_ms,
    }
}

/// Key `flood` queues twenty jobs of a second each for `a:latest`; 10 ms later key `late`
/// queues one for `model`. When the late job starts, and how many started before it.
fn late_after_a_flood(model: &str, load_ms: i64) -> (usize, i64) {
    let mut jobs: Vec<SimJob> = (0..20)
        .map(|i| job(i, "flood", "a:latest", 0, 1_000))
        .collect();
    jobs.push(job(99, "late", model, 10, 1_000));
    let started = simulate(jobs, &HashMap::new(), load_ms);
    let late = started
        .iter()
        .position(|s| s.job.tenant.key == "late")
        .unwrap();
    (late, started[late].at_ms)
}

#[test]
fn a_key_with_twenty_jobs_delays_another_keys_first_job_by_at_most_the_running_one() {
    let (before, at_ms) = late_after_a_flood("a:latest", 0);
    assert_eq!(
        before, 1,
        "the late key's job should follow the one running when it came"
    );
    assert_eq!(at_ms, 1_000);
}

#[test]
fn the_late_key_is_served_next_even_for_another_model() {
    let (before, _) = late_after_a_flood("b:latest", 500);
    assert_eq!(before, 1);
}

#[test]
fn flooding_keys_share_gpu_time_by_weight() {
    let mut jobs = Vec::new();
    for (k, key) in ["one", "two", "heavy"].iter().enumerate() {
        for i in 0..60 {
            jobs.push(job(k * 100 + i, key, "a:latest", 0, 100));
        }
    }
    let weights = HashMap::from([("heavy".to_string(), 2)]);
    let started = simulate(jobs, &weights, 0);
    let first: Vec<&Started> = started.iter().take(80).collect();
    let share = |key: &str| first.iter().filter(|s| s.job.tenant.key == key).count();
    assert!(
        (19..=21).contains(&share("one")),
        "one got {}",
        share("one")
    );
    assert!(
        (19..=21).contains(&share("two")),
        "two got {}",
        share("two")
    );
    assert!(
        (39..=41).contains(&share("heavy")),
        "heavy got {}",
        share("heavy")
    );
}

#[test]
fn an_idle_key_banks_no_credit() {
    // "early" runs 10 jobs alone, then goes quiet; "saver" arrives later with 10 jobs,
    // then "early" comes back: it must not be starved for the service it had while alone,
    // nor may "saver" be served only because it was idle before.
    let mut jobs: Vec<SimJob> = (0..10)
        .map(|i| job(i, "early", "a:latest", 0, 100))
        .collect();
    jobs.extend((10..20).map(|i| job(i, "saver", "a:latest", 2_000, 100)));
    jobs.extend((20..30).map(|i| job(i, "early", "a:latest", 2_000, 100)));
    let started = simulate(jobs, &HashMap::new(), 0);
    let after: Vec<&str> = started
        .iter()
        .filter(|s| s.at_ms >= 2_000)
        .take(6)
        .map(|s| s.job.tenant.key.as_str())
        .collect();
    let early = after.iter().filter(|k| **k == "early").count();
    assert_eq!(early, 3, "they should alternate, got {after:?}");
}

#[test]
fn one_tenant_keeps_plain_drain_by_model() {
    // Interleaved models from one key: the loaded model's jobs go first, so a 60-job mix of
    // three models loads each model about once while the window allows.
    let models = ["a:latest", "b:latest", "c:latest"];
    let jobs: Vec<SimJob> = (0..60)
        .map(|i| job(i, "k", models[i % 3], i as i64, 100))
        .collect();
    let started = simulate(jobs, &HashMap::new(), 200);
    let swaps = started
        .windows(2)
        .filter(|w| w[0].job.model != w[1].job.model)
        .count();
    assert!(swaps <= 3, "{swaps} swaps");
}

fn arbitrary_jobs() -> impl Strategy<Value = Vec<SimJob>> {
    let one = (
        0..3_usize,
        0..3_usize,
        0..2_i32,
        0..60_000_i64,
        1..8_000_i64,
    );
    prop::collection::vec(one, 1..60).prop_map(|jobs| {
        jobs.into_iter()
            .enumerate()
            .map(
                |(i, (tenant, model, priority, arrives_ms, runs_ms))| SimJob {
                    id: format!("{i:05}"),
                    tenant: Tenant::new(format!("t{tenant}"), ""),
                    model: format!("m{model}:latest"),
                    priority,
                    arrives_ms,
                    runs_ms,
                },
            )
            .collect()
    })
}

proptest! {
    /// Every decision of random runs keeps priority, fair share and the window (checked
    /// inside `simulate`), and every job runs exactly once.
    #[test]
    fn random_runs_keep_every_promise(jobs in arbitrary_jobs(), load_ms in 0..5_000_i64) {
        let count = jobs.len();
        let started = simulate(jobs, &HashMap::new(), load_ms);
        prop_assert_eq!(started.len(), count);
        let mut ids: Vec<&str> = started.iter().map(|s| s.job.id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        prop_assert_eq!(ids.len(), count);
    }

    /// With one tenant on one level, a job starts within the window plus one run and one
    /// load after it became the oldest job waiting (ADR 2's bound).
    #[test]
    fn one_tenants_jobs_wait_within_the_documented_bound(
        jobs in arbitrary_jobs(), load_ms in 0..5_000_i64,
    ) {
        let jobs: Vec<SimJob> = jobs
            .into_iter()
            .map(|j| SimJob { tenant: Tenant::new("k", ""), priority: 0, ..j })
            .collect();
        let longest = jobs.iter().map(|j| j.runs_ms).max().unwrap_or(0);
        let started = simulate(jobs, &HashMap::new(), load_ms);
        let window = WINDOW.as_millis() as i64;
        for s in &started {
            // It became the oldest when every older job had started.
            let oldest_since = started
                .iter()
                .filter(|o| (o.job.arrives_ms, &o.job.id) < (s.job.arrives_ms, &s.job.id))
                .map(|o| o.at_ms)
                .max()
                .unwrap_or(s.job.arrives_ms)
                .max(s.job.arrives_ms);
            let bound = oldest_since.max(s.job.arrives_ms + window) + longest + load_ms;
            prop_assert!(s.at_ms <= bound, "job {} started at {} past {}", s.job.id, s.at_ms, bound);
        }
    }
}
