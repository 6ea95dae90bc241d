//! Usage: what the target reported, per key, end user and model, at `GET /usage` and in
//! the Prometheus counters; kept after the jobs are pruned.

use std::time::Duration;

use foreman_client::{
    ChatMessage, ChatRequest, Client, NewKey, SubmitRequest, UsageQuery, UsageRow,
};
use foreman_testkit::{eventually, TestApp};
use serde_json::{json, Value};

use crate::keys::{key_client, with_token, ADMIN_TOKEN};
use crate::DEADLINE;

/// Tokens and GPU milliseconds as a target reported them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Tally {
    requests: u64,
    prompt: u64,
    output: u64,
    gpu_ms: u64,
}

impl Tally {
    /// Adds Ollama's counts from a final chunk or a whole answer.
    fn ollama(&mut self, chunk: &Value) {
        self.requests += 1;
        self.prompt += chunk["prompt_eval_count"].as_u64().unwrap();
        self.output += chunk["eval_count"].as_u64().unwrap();
        self.gpu_ms += chunk["total_duration"].as_u64().unwrap() / 1_000_000;
    }

    /// Adds an OpenAI- or Anthropic-shaped `usage` object.
    fn usage(&mut self, usage: &Value) {
        self.requests += 1;
        let count = |a: &str, b: &str| usage[a].as_u64().or_else(|| usage[b].as_u64()).unwrap();
        self.prompt += count("prompt_tokens", "input_tokens");
        self.output += count("completion_tokens", "output_tokens");
    }

    fn matches(&self, row: &UsageRow) -> bool {
        (row.requests, row.prompt_tokens, row.output_tokens)
            == (self.requests, self.prompt, self.output)
    }
}

async fn post_json(app: &TestApp, token: &str, path: &str, body: Value) -> reqwest::Response {
    let response = app.post_as(path, token, &body).await;
    assert_eq!(response.status(), 200, "{path}");
    response
}

fn chat(stream: bool) -> Value {
    json!({"model": "llama3.2", "stream": stream,
           "messages": [{"role": "user", "content": "Why is the sky blue, in short?"}]})
}

/// The usage rows `client` sees, once they add up to `requests` in total.
async fn usage_once(client: &Client, query: &UsageQuery, requests: u64) -> Vec<UsageRow> {
    let rows = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let counted = foreman_testkit::wait_until(DEADLINE, || {
        let (client, query, rows) = (client.clone(), query.clone(), rows.clone());
        async move {
            let seen = client.usage(&query).await.unwrap().usage;
            let total: u64 = seen.iter().map(|r| r.requests).sum();
            *rows.lock().unwrap() = seen;
            total >= requests
        }
    })
    .await;
    let rows = rows.lock().unwrap().clone();
    assert!(counted, "usage never reached {requests} requests: {rows:?}");
    rows
}

/// Alice's Ollama-shaped traffic (sync, streamed, generate, an async job) and what the
/// target reported for it.
async fn ollama_traffic(app: &TestApp, alice: &Client, secret: &str) -> Tally {
    let mut tally = Tally::default();
    let whole: Value = post_json(app, secret, "/api/chat", chat(false))
        .await
        .json()
        .await
        .unwrap();
    tally.ollama(&whole);
    let streamed = post_json(app, secret, "/api/chat", chat(true))
        .await
        .text()
        .await
        .unwrap();
    let last: Value = serde_json::from_str(streamed.lines().last().unwrap()).unwrap();
    tally.ollama(&last);
    let generated: Value = post_json(
        app,
        secret,
        "/api/generate",
        json!({"model": "llama3.2", "prompt": "one two three four", "stream": false}),
    )
    .await
    .json()
    .await
    .unwrap();
    tally.ollama(&generated);
    let request = ChatRequest::new("llama3.2", vec![ChatMessage::user("an async job")]);
    let id = alice.submit(SubmitRequest::new(request)).await.unwrap();
    let job = alice.wait(id, DEADLINE).await.unwrap();
    let result = job.result.clone().unwrap();
    tally.ollama(&result);
    assert_eq!(job.prompt_tokens, result["prompt_eval_count"].as_u64());
    assert_eq!(job.output_tokens, result["eval_count"].as_u64());
    tally
}

#[tokio::test]
async fn usage_adds_up_what_the_target_reported_on_every_api_per_key() {
    let app = with_token().await;
    let (alice, alice_secret) = key_client(&app, NewKey::new("alice")).await;
    let (bob, bob_secret) = key_client(&app, NewKey::new("bob")).await;
    let alices = ollama_traffic(&app, &alice, &alice_secret).await;

    let mut bobs = Tally::default();
    let completion: Value = post_json(
        &app,
        &bob_secret,
        "/v1/chat/completions",
        json!({"model": "llama3.2", "messages": [{"role": "user", "content": "hi there"}]}),
    )
    .await
    .json()
    .await
    .unwrap();
    bobs.usage(&completion["usage"]);
    let events = post_json(
        &app,
        &bob_secret,
        "/v1/messages",
        json!({"model": "llama3.2", "max_tokens": 64, "stream": true,
               "messages": [{"role": "user", "content": "hello claude"}]}),
    )
    .await
    .text()
    .await
    .unwrap();
    let delta = events
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str::<Value>(d).unwrap())
        .find(|d| d["type"] == "message_delta")
        .unwrap();
    bobs.usage(&delta["usage"]);
    let response: Value = post_json(
        &app,
        &bob_secret,
        "/v1/responses",
        json!({"model": "llama3.2", "input": "three words here"}),
    )
    .await
    .json()
    .await
    .unwrap();
    bobs.usage(&response["usage"]);

    let all = usage_once(&app.client, &UsageQuery::new(), 7).await;
    assert_eq!(all.len(), 2, "{all:?}");
    let (a, b) = (&all[0], &all[1]);
    assert_eq!(
        (a.key.as_str(), a.user.as_str(), a.model.as_str()),
        ("alice", "", "llama3.2:latest")
    );
    assert!(alices.matches(a), "{alices:?} against {a:?}");
    assert_eq!(
        a.gpu_ms, alices.gpu_ms,
        "Ollama's total_duration is the GPU time"
    );
    assert_eq!(b.key, "bob");
    assert!(bobs.matches(b), "{bobs:?} against {b:?}");

    // A key sees its own usage only, whatever it asks for; an admin may pick a key.
    let own = alice.usage(&UsageQuery::new().key("bob")).await.unwrap();
    assert_eq!(own.usage, vec![a.clone()]);
    assert_eq!(
        bob.usage(&UsageQuery::new()).await.unwrap().usage,
        vec![b.clone()]
    );
    let picked = app
        .client
        .usage(&UsageQuery::new().key("bob"))
        .await
        .unwrap();
    assert_eq!(picked.usage, vec![b.clone()]);

    // The Prometheus counters say the same, per key.
    let text = app
        .get_as("/metrics", ADMIN_TOKEN)
        .await
        .text()
        .await
        .unwrap();
    for line in [
        format!(
            "foreman_key_requests_total{{key=\"alice\"}} {}\n",
            alices.requests
        ),
        format!(
            "foreman_key_prompt_tokens_total{{key=\"alice\"}} {}\n",
            alices.prompt
        ),
        format!(
            "foreman_key_output_tokens_total{{key=\"alice\"}} {}\n",
            alices.output
        ),
        format!(
            "foreman_key_output_tokens_total{{key=\"bob\"}} {}\n",
            bobs.output
        ),
    ] {
        assert!(text.contains(&line), "{line} in {text}");
    }
}

#[tokio::test]
async fn a_trusted_keys_usage_is_split_by_end_user() {
    let app = with_token().await;
    let (_, webui) = key_client(&app, NewKey::new("webui").trust_user_header(true)).await;
    for user in ["u1", "u2", "u2"] {
        let response = app
            .http
            .post(app.at("/api/chat"))
            .bearer_auth(&webui)
            .header("X-OpenWebUI-User-Id", user)
            .json(&chat(false))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let rows = usage_once(&app.client, &UsageQuery::new(), 3).await;
    let users: Vec<(&str, u64)> = rows.iter().map(|r| (r.user.as_str(), r.requests)).collect();
    assert_eq!(users, vec![("u1", 1), ("u2", 2)]);
}

#[tokio::test]
async fn usage_outlives_the_jobs_it_came_from() {
    let app = TestApp::builder()
        .auth_token(ADMIN_TOKEN)
        .configure(|c| c.job_ttl = Duration::from_millis(50))
        .spawn()
        .await;
    let (alice, secret) = key_client(&app, NewKey::new("alice")).await;
    let mut tally = Tally::default();
    for stream in [false, true] {
        let text = post_json(&app, &secret, "/api/chat", chat(stream))
            .await
            .text()
            .await
            .unwrap();
        tally.ollama(&serde_json::from_str(text.lines().last().unwrap()).unwrap());
    }
    let before = usage_once(&alice, &UsageQuery::new(), 2).await;
    assert!(tally.matches(&before[0]), "{tally:?} against {before:?}");
    eventually(DEADLINE, "the finished jobs to be pruned", || {
        let alice = alice.clone();
        async move {
            alice
                .jobs(&foreman_client::JobQuery::new())
                .await
                .unwrap()
                .jobs
                .is_empty()
        }
    })
    .await;
    let after = alice.usage(&UsageQuery::new()).await.unwrap().usage;
    assert_eq!(after, before);
}

#[tokio::test]
async fn since_and_until_select_hours_in_rfc_3339_or_unix_milliseconds() {
    let app = with_token().await;
    let (alice, secret) = key_client(&app, NewKey::new("alice")).await;
    post_json(&app, &secret, "/api/chat", chat(false)).await;
    usage_once(&alice, &UsageQuery::new(), 1).await;

    let now = chrono::Utc::now();
    let count = |query: UsageQuery| {
        let alice = alice.clone();
        async move { alice.usage(&query).await.unwrap().usage.len() }
    };
    assert_eq!(
        count(UsageQuery::new().since(now - chrono::Duration::minutes(5))).await,
        1
    );
    assert_eq!(
        count(UsageQuery::new().since(now + chrono::Duration::hours(2))).await,
        0
    );
    assert_eq!(
        count(UsageQuery::new().until(now - chrono::Duration::hours(2))).await,
        0
    );
    assert_eq!(
        count(UsageQuery::new().until(now + chrono::Duration::hours(2))).await,
        1
    );

    let raw = |query: &'static str| {
        let http = app.http.clone();
        let url = app.at(&format!("/usage?{query}"));
        let secret = secret.clone();
        async move {
            let response = http.get(url).bearer_auth(secret).send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    let (status, body) = raw("since=0").await;
    assert_eq!((status, body["usage"].as_array().unwrap().len()), (200, 1));
    assert_eq!(body["since"], "1970-01-01T00:00:00Z");
    let (status, body) = raw("since=2000-01-01T00:00:00%2B02:00&until=4102444800000").await;
    assert_eq!(
        (status, body["usage"].as_array().unwrap().len()),
        (200, 1),
        "{body}"
    );
    for bad in [
        "since=yesterday",
        "until=2025-13-01",
        "since=2000&until=1000",
    ] {
        let (status, body) = raw(bad).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
}
