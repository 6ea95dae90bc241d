//! The scheduler over several targets with lanes of N slots: single decisions about
//! routing, then whole runs through a deterministic simulation of a pool, then properties
//! over random pools and job sets.

use std::collections::HashMap;

use proptest::prelude::*;

use super::*;

#[test]
fn a_model_only_a_down_target_has_waits_for_it() {
    let mut down = target("down", &["a:latest"], &["a:latest"]);
    down.up = false;
    let boxes = vec![down, target("up", &[], &["b:latest"])];
    let heads = vec![head("01", 0, "k", "a:latest", 0)];
    assert_eq!(picked(heads, &boxes, 10), None);
}

#[test]
fn a_job_goes_to_the_target_that_has_its_model_installed() {
    let boxes = vec![
        target("one", &[], &["a:latest"]),
        target("two", &[], &["b:latest"]),
    ];
    let heads = vec![head("01", 0, "k", "b:latest", 0)];
    assert_eq!(picked(heads, &boxes, 10), Some(("01".into(), "two".into())));
}

#[test]
fn a_target_with_a_free_slot_of_several_takes_more_work() {
    let mut busy = target("gpu", &["a:latest"], &["a:latest"]);
    busy.free_slots = 1;
    busy.load = 3;
    let heads = vec![head("01", 0, "k", "a:latest", 0)];
    assert_eq!(
        picked(heads, &[busy], 10),
        Some(("01".into(), "gpu".into()))
    );
}

#[test]
fn each_warm_target_drains_its_own_model() {
    let boxes = vec![
        target("x", &["a:latest"], &["a:latest", "b:latest"]),
        target("y", &["b:latest"], &["a:latest", "b:latest"]),
    ];
    // y is less loaded, so it chooses first: it leaves the older `a` job to x.
    let heads = vec![
        head("01", 0, "k", "a:latest", 0),
        head("02", 0, "k", "b:latest", 5),
    ];
    let mut boxes = boxes;
    boxes[0].load = 4;
    assert_eq!(picked(heads, &boxes, 10), Some(("02".into(), "y".into())));
}

/// A target of the simulated pool.
#[derive(Debug, Clone)]
struct SimTarget {
    name: String,
    parallel: u32,
    installed: Vec<String>,
    /// The model in memory (one, as on a GPU that holds one generation model).
    resident: Option<String>,
    /// When each running job ends, with its id.
    running: Vec<(i64, String)>,
    loads: u32,
}

/// What a run of the pool did.
#[derive(Debug, Default)]
struct PoolRun {
    /// Job id → (target, start).
    started: HashMap<String, (String, i64)>,
    loads: u32,
    makespan: i64,
}

/// Runs `jobs` on `targets` as the worker does: at every arrival and every end, claim
/// until the scheduler says no target with a free slot can run anything, with the
/// store's load (running plus queued jobs of resident models). Checks after each claim
/// that no target runs more than its lanes or a model it lacks, and at each quiescent
/// point that no free target could run a queued job.
fn run_pool(mut jobs: Vec<SimJob>, mut targets: Vec<SimTarget>, load_ms: i64) -> PoolRun {
    jobs.sort_by_key(|j| (j.arrives_ms, j.id.clone()));
    let mut pending = jobs.into_iter().peekable();
    let mut queued: Vec<SimJob> = Vec::new();
    let mut run = PoolRun::default();
    let mut now = 0_i64;
    let listed = |targets: &[SimTarget], model: &str| {
        targets
            .iter()
            .any(|t| t.installed.iter().any(|m| m == model))
    };
    loop {
        for target in &mut targets {
            target.running.retain(|(end, _)| *end > now);
        }
        while let Some(job) = pending.next_if(|j| j.arrives_ms <= now) {
            queued.push(job);
        }
        loop {
            let views: Vec<TargetView> = targets
                .iter()
                .map(|t| {
                    let running = t.running.len() as u32;
                    let bound = queued
                        .iter()
                        .filter(|j| t.resident.as_deref() == Some(j.model.as_str()))
                        .count() as u32;
                    TargetView {
                        name: t.name.clone(),
                        up: true,
                        free_slots: t.parallel - running,
                        parallel: t.parallel,
                        load: running + bound,
                        resident: t.resident.iter().cloned().collect(),
                        installed: t.installed.clone(),
                        unpolled: false,
                    }
                })
                .collect();
            let view = queue_view(&queued, HashMap::new());
            let Some(chosen) = pick(&view, &views, &policy(), now) else {
                // Quiescent: no free target may run any queued job.
                for t in targets
                    .iter()
                    .filter(|t| (t.running.len() as u32) < t.parallel)
                {
                    for job in &queued {
                        let runs_here =
                            t.installed.contains(&job.model) || !listed(&targets, &job.model);
                        assert!(
                            !runs_here,
                            "job {} waits while {} has a free slot for it",
                            job.id, t.name
                        );
                    }
                }
                break;
            };
            let index = queued.iter().position(|j| j.id == chosen.job).unwrap();
            let job = queued.remove(index);
            let target = targets
                .iter_mut()
                .find(|t| t.name == chosen.target)
                .unwrap();
            assert!(
                (target.running.len() as u32) < target.parallel,
                "{} given more than its lanes",
                target.name
            );
            assert!(
                target.installed.contains(&job.model),
                "{} given a model it lacks",
                target.name
            );
            let load = if target.resident.as_deref() == Some(job.model.as_str()) {
                0
            } else {
                target.loads += 1;
                run.loads += 1;
                load_ms
            };
            target.resident = Some(job.model.clone());
            let end = now + load + job.runs_ms;
            target.running.push((end, job.id.clone()));
            run.makespan = run.makespan.max(end);
            run.started
                .insert(job.id.clone(), (target.name.clone(), now));
        }
        let next_end = targets
            .iter()
            .flat_map(|t| t.running.iter().map(|(end, _)| *end))
            .min();
        let next_arrival = pending.peek().map(|j| j.arrives_ms);
        now = match (next_end, next_arrival) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) => a,
            (None, Some(b)) => b,
            (None, None) => {
                assert!(queued.is_empty(), "jobs left that no target can run");
                return run;
            }
        };
    }
}

fn sim_target(name: &str, parallel: u32, installed: &[&str]) -> SimTarget {
    SimTarget {
        name: name.into(),
        parallel,
        installed: installed.iter().map(|m| m.to_string()).collect(),
        resident: None,
        running: Vec::new(),
        loads: 0,
    }
}

#[test]
fn three_boxes_and_four_interleaved_models_load_each_model_about_once() {
    let models = ["a:latest", "b:latest", "c:latest", "d:latest"];
    let everything = models;
    let targets = vec![
        sim_target("gpu1", 1, &everything),
        sim_target("gpu2", 1, &everything),
        sim_target("gpu3", 1, &everything),
    ];
    let jobs: Vec<SimJob> = (0..80)
        .map(|i| job(i, "k", models[i % 4], 0, 500))
        .collect();
    let run = run_pool(jobs, targets, 2_000);
    assert!(run.loads <= 7, "{} loads", run.loads);
    // One box alone would take 80 × 0.5 s plus four loads.
    assert!(run.makespan < 80 * 500 / 2, "makespan {} ms", run.makespan);
}

#[test]
fn a_model_installed_on_one_target_only_runs_only_there() {
    let targets = vec![
        sim_target("big", 2, &["large:70b", "small:latest"]),
        sim_target("small", 2, &["small:latest"]),
    ];
    let jobs: Vec<SimJob> = (0..20)
        .map(|i| {
            let model = if i % 2 == 0 {
                "large:70b"
            } else {
                "small:latest"
            };
            job(i, "k", model, i as i64 * 10, 300)
        })
        .collect();
    let run = run_pool(jobs.clone(), targets, 1_000);
    for job in jobs.iter().filter(|j| j.model == "large:70b") {
        assert_eq!(run.started[&job.id].0, "big");
    }
}

fn arbitrary_pool() -> impl Strategy<Value = (Vec<SimTarget>, Vec<SimJob>)> {
    let target = (1..4_u32, prop::collection::vec(any::<bool>(), 4));
    let targets = prop::collection::vec(target, 1..4);
    (targets, super::arbitrary_jobs()).prop_map(|(targets, jobs)| {
        let targets: Vec<SimTarget> = targets
            .into_iter()
            .enumerate()
            .map(|(i, (parallel, has))| {
                let installed: Vec<String> = has
                    .iter()
                    .enumerate()
                    .filter(|(_, has)| **has)
                    .map(|(m, _)| format!("m{m}:latest"))
                    .collect();
                SimTarget {
                    installed,
                    ..sim_target(&format!("t{i}"), parallel, &[])
                }
            })
            .collect();
        // Every job's model is installed somewhere, or it could never run.
        let jobs = jobs
            .into_iter()
            .filter(|j| targets.iter().any(|t| t.installed.contains(&j.model)))
            .collect();
        (targets, jobs)
    })
}

proptest! {
    /// Random pools and jobs: no target over its lanes or given a model it lacks, no free
    /// target idle while a job it could run waits (checked inside `run_pool`), and every
    /// job runs exactly once.
    #[test]
    fn random_pools_keep_every_promise((targets, jobs) in arbitrary_pool(), load_ms in 0..3_000_i64) {
        let count = jobs.len();
        let run = run_pool(jobs, targets, load_ms);
        prop_assert_eq!(run.started.len(), count);
    }
}

#[test]
fn a_model_nobody_lists_waits_for_a_target_that_never_answered() {
    let mut unknown = target("unknown", &[], &[]);
    unknown.unpolled = true;
    unknown.up = false;
    let boxes = vec![unknown, target("known", &[], &["a:latest"])];
    let heads = vec![head("01", 0, "k", "mystery:latest", 0)];
    assert_eq!(picked(heads.clone(), &boxes, 10), None);
    let mut boxes = boxes;
    boxes[0].up = true;
    assert_eq!(
        picked(heads, &boxes, 10),
        Some(("01".into(), "unknown".into()))
    );
}
