//! Replicas: three real `foreman serve` processes on one PostgreSQL database in front of
//! two simulated GPU boxes, with async jobs submitted to all of them and a chat streaming
//! from one, and one replica `kill -9`ed mid-run (ADR 23).
//!
//! Checked: every accepted job ends `done`; the jobs the killed replica was running are
//! run again elsewhere, their lost run counted as an attempt; the streamed chat on a
//! surviving replica ends normally; each GPU box never had two generations in flight
//! (`FOREMAN_TARGET_PARALLEL` is 1); and every job's answer was generated exactly once
//! apart from the runs the kill cut off (the simulators' counters).
//!
//! Needs the test PostgreSQL server (`scripts/test.sh`).

use std::process::Stdio;
use std::time::Duration;

use foreman_testkit::wait_until;
use serde_json::{json, Value};
use tokio::process::{Child, Command};

use crate::crash::{free_addr, start_sim, wait_healthy};

const JOBS: usize = 18;

fn start_replica(addr: &str, targets: &str, db_url: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_foreman"))
        .arg("serve")
        .args(["--listen-addr", addr, "--target-url", targets])
        .args(["--db-url", db_url, "--lease", "2s"])
        .args(["--max-attempts", "5", "--poll-interval", "200ms"])
        .args(["--retry-backoff", "50ms"])
        .env_remove("FOREMAN_AUTH_TOKEN")
        .env_remove("FOREMAN_DB_PATH")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("foreman serve starts")
}

async fn get_json(http: &reqwest::Client, url: &str) -> Value {
    http.get(url)
        .send()
        .await
        .unwrap_or_else(|err| panic!("GET {url}: {err}"))
        .json()
        .await
        .expect("a JSON answer")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replica_killed_mid_run_loses_no_job_and_no_gpu_runs_two_generations() {
    let db_url = foreman_testkit::postgres::fresh_database().await;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let gpus = [free_addr(), free_addr()];
    let _sims: Vec<Child> = gpus.iter().map(|addr| start_sim(addr)).collect();
    for addr in &gpus {
        wait_healthy(&http, &format!("http://{addr}/")).await;
    }
    let targets = format!("gpu1=http://{},gpu2=http://{}", gpus[0], gpus[1]);
    let addrs: Vec<String> = (0..3).map(|_| free_addr()).collect();
    let mut replicas: Vec<Child> = addrs
        .iter()
        .map(|addr| start_replica(addr, &targets, &db_url))
        .collect();
    for addr in &addrs {
        wait_healthy(&http, &format!("http://{addr}/healthz")).await;
    }
    let urls: Vec<String> = addrs.iter().map(|a| format!("http://{a}")).collect();

    // Async jobs through every replica, round robin.
    let mut accepted = Vec::new();
    for i in 0..JOBS {
        let body = json!({
            "model": if i % 2 == 0 { "llama3.2" } else { "qwen2.5:0.5b" },
            "messages": [{"role": "user", "content": format!("job {i}")}],
        });
        let answer = http
            .post(format!("{}/jobs", urls[i % 3]))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 202, "replica {} refused job {i}", i % 3);
        let answer: Value = answer.json().await.unwrap();
        accepted.push(answer["job_id"].as_str().unwrap().to_owned());
    }

    // A chat streams from replica 1 while the jobs run and replica 0 dies.
    let stream = {
        let http = http.clone();
        let url = urls[1].clone();
        tokio::spawn(async move {
            let body = json!({"model": "llama3.2", "stream": true,
                              "messages": [{"role": "user", "content": "hi"}]});
            let response = http
                .post(format!("{url}/api/chat"))
                .json(&body)
                .send()
                .await
                .expect("the streamed chat is answered");
            assert_eq!(response.status(), 200);
            response.text().await.expect("the stream reads to its end")
        })
    };

    // Kill replica 0 once it is running something (both boxes are busy by then).
    let observer = urls[1].clone();
    let busy = wait_until(Duration::from_secs(30), || {
        let http = http.clone();
        let url = format!("{observer}/jobs?state=working");
        async move {
            let page = get_json(&http, &url).await;
            page["jobs"].as_array().is_some_and(|jobs| !jobs.is_empty())
        }
    })
    .await;
    assert!(busy, "no job started on any replica");
    replicas[0].start_kill().expect("kill -9 replica 0");
    let _ = replicas[0].wait().await;

    let streamed = stream.await.expect("the streaming task ends");
    let last: Value = serde_json::from_str(streamed.lines().last().expect("a line"))
        .expect("the last line is JSON");
    assert_eq!(
        last["done"], true,
        "the stream through a surviving replica ends normally: {streamed}"
    );

    // Every accepted job ends, as the survivors see it.
    let all_ended = wait_until(Duration::from_secs(60), || {
        let http = http.clone();
        let url = urls[2].clone();
        let accepted = accepted.clone();
        async move {
            for id in &accepted {
                let job = get_json(&http, &format!("{url}/jobs/{id}")).await;
                if !matches!(job["state"].as_str(), Some("done" | "failed" | "cancelled")) {
                    return false;
                }
            }
            true
        }
    })
    .await;
    assert!(all_ended, "some jobs never ended after the kill");
    let mut retried = 0;
    for id in &accepted {
        let job = get_json(&http, &format!("{}/jobs/{id}", urls[2])).await;
        assert_eq!(job["state"], "done", "job {id} did not end done: {job}");
        let attempts = job["attempts"].as_u64().unwrap();
        assert!((1..=2).contains(&attempts), "job {id}: {attempts} attempts");
        if attempts == 2 {
            retried += 1;
        }
    }

    let mut generations = 0;
    let mut cut = 0;
    for addr in &gpus {
        let stats = get_json(&http, &format!("http://{addr}/sim/stats")).await;
        assert_eq!(
            stats["max_concurrent"], 1,
            "{addr} had two generations in flight at once: {stats}"
        );
        generations += stats["generations"].as_u64().unwrap();
        cut += stats["hung_up"].as_u64().unwrap();
    }
    // Each job and the chat generated once to the end; the cut-off runs are the retried
    // jobs' lost first runs.
    assert_eq!(
        generations - cut,
        JOBS as u64 + 1,
        "{generations} generations, {cut} cut off"
    );
    assert_eq!(cut, retried, "each cut-off run was retried once");
    println!("{retried} of {JOBS} jobs were taken over from the killed replica");
}
