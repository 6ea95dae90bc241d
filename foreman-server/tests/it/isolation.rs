//! Isolation: a job belongs to the key that submitted it. Other keys get 404 for it on
//! every job route, lists and the queue show them only their own, admins see all.

use std::time::Duration;

use foreman_client::{ChatMessage, ChatRequest, Client, JobQuery, JobState, NewKey, SubmitRequest};
use foreman_testkit::{TestApp, WebhookReceiver};
use reqwest::StatusCode;
use serde_json::Value;

use crate::keys::{key_client, with_token, with_token_and_delay};
use crate::DEADLINE;

fn chat(text: &str) -> SubmitRequest {
    SubmitRequest::new(ChatRequest::new("llama3.2", vec![ChatMessage::user(text)]))
}

async fn two_keys(app: &TestApp) -> (Client, String, Client, String) {
    let (alice, a) = key_client(app, NewKey::new("alice")).await;
    let (bob, b) = key_client(app, NewKey::new("bob")).await;
    (alice, a, bob, b)
}

/// Status and body of `method path` sent with `token`.
async fn raw(app: &TestApp, method: reqwest::Method, path: &str, token: &str) -> (u16, String) {
    let response = app
        .http
        .request(method, app.at(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test]
async fn another_keys_job_answers_404_on_every_job_route_exactly_as_an_unknown_one() {
    let app = with_token().await;
    let (alice, _, _, bob_secret) = two_keys(&app).await;
    let id = alice.submit(chat("alice's secret plan")).await.unwrap();
    let done = alice.wait(id, DEADLINE).await.unwrap();
    assert_eq!(done.state, JobState::Done);
    assert_eq!(done.key.as_deref(), Some("alice"));
    let unknown = foreman_client::JobId::new();

    use reqwest::Method;
    for (method, suffix) in [
        (Method::GET, ""),
        (Method::GET, "/artifacts/completion"),
        (Method::DELETE, ""),
    ] {
        let path = |job: foreman_client::JobId| format!("/jobs/{job}{suffix}");
        let (status, body) = raw(&app, method.clone(), &path(id), &bob_secret).await;
        let (unknown_status, unknown_body) =
            raw(&app, method.clone(), &path(unknown), &bob_secret).await;
        assert_eq!(status, 404, "{method} {suffix}: {body}");
        assert_eq!(unknown_status, 404);
        assert_eq!(
            body.replace(&id.to_string(), "ID"),
            unknown_body.replace(&unknown.to_string(), "ID"),
            "the answer says nothing an unknown id's does not"
        );
        assert!(!body.contains("alice"));
    }
    // Nothing bob did touched it; alice and the admin still see it.
    assert_eq!(alice.job(id).await.unwrap().state, JobState::Done);
    assert_eq!(
        alice.artifact(id, "completion").await.unwrap().text(),
        Some(app.ollama.reply().as_str())
    );
    assert_eq!(
        app.client.job(id).await.unwrap().key.as_deref(),
        Some("alice")
    );
}

#[tokio::test]
async fn a_key_cancels_only_its_own_jobs_and_an_admin_cancels_any() {
    let app = with_token_and_delay(Duration::from_secs(30)).await;
    let (alice, _, bob, _) = two_keys(&app).await;
    let running = alice.submit(chat("first")).await.unwrap();
    app.ollama.wait_for_generations(1, DEADLINE).await;
    let queued = alice.submit(chat("second")).await.unwrap();
    for id in [running, queued] {
        let err = bob.cancel(id).await.unwrap_err();
        assert!(err.is_not_found(), "{err}");
    }
    assert_eq!(alice.job(queued).await.unwrap().state, JobState::Queued);
    assert_eq!(
        alice.cancel(queued).await.unwrap().state,
        JobState::Cancelled
    );
    assert_eq!(
        app.client.cancel(running).await.unwrap().state,
        JobState::Cancelled
    );
}

#[tokio::test]
async fn job_lists_show_a_key_its_own_jobs_and_an_admin_everyones() {
    let app = with_token().await;
    let (alice, _, bob, _) = two_keys(&app).await;
    let a1 = alice.submit(chat("a1")).await.unwrap();
    let b1 = bob.submit(chat("b1")).await.unwrap();
    let a2 = alice.submit(chat("a2")).await.unwrap();
    // A sync request is a job of its key too.
    bob.chat(ChatRequest::new("llama3.2", vec![ChatMessage::user("b2")]))
        .await
        .unwrap();
    let ids = |client: Client| async move {
        let page = client.jobs(&JobQuery::new()).await.unwrap();
        page.jobs.iter().map(|j| j.id).collect::<Vec<_>>()
    };
    assert_eq!(ids(alice.clone()).await, vec![a2, a1]);
    let bobs = ids(bob.clone()).await;
    assert_eq!(bobs.len(), 2);
    assert!(bobs.contains(&b1));
    assert_eq!(ids(app.client.clone()).await.len(), 4);
    // Paging and filters stay within the key's jobs.
    let page = alice.jobs(&JobQuery::new().limit(1)).await.unwrap();
    assert_eq!(page.jobs[0].id, a2);
    let next = alice
        .jobs(&JobQuery::new().limit(1).before(page.next_cursor.unwrap()))
        .await
        .unwrap();
    assert_eq!(next.jobs.iter().map(|j| j.id).collect::<Vec<_>>(), vec![a1]);
    assert!(
        next.next_cursor.is_none(),
        "bob's jobs are not a further page"
    );
}

#[tokio::test]
async fn the_queue_counts_every_job_but_shows_another_keys_running_job_only_as_its_model() {
    let app = with_token_and_delay(Duration::from_secs(30)).await;
    let (alice, _, bob, _) = two_keys(&app).await;
    let running = alice.submit(chat("a secret prompt")).await.unwrap();
    app.ollama.wait_for_generations(1, DEADLINE).await;
    alice.submit(chat("a2")).await.unwrap();
    bob.submit(chat("b1")).await.unwrap();

    let bobs: Value = bob.queue().await.unwrap();
    assert_eq!(bobs["depth"], 2, "every queued job is counted: {bobs}");
    assert_eq!(bobs["running"]["model"], "llama3.2:latest");
    assert!(bobs["running"].get("id").is_none(), "{bobs}");
    assert!(!bobs.to_string().contains(&running.to_string()));
    let alices: Value = alice.queue().await.unwrap();
    assert_eq!(alices["running"]["id"], running.to_string());
    let admins: Value = app.client.queue().await.unwrap();
    assert_eq!(admins["running"]["key"], "alice");
    app.client.cancel(running).await.unwrap();
}

#[tokio::test]
async fn each_keys_webhook_hears_only_of_its_own_jobs() {
    let app = with_token().await;
    let (alice, _, bob, _) = two_keys(&app).await;
    let (to_alice, to_bob) = (
        WebhookReceiver::start().await,
        WebhookReceiver::start().await,
    );
    let a = alice
        .submit(chat("a").webhook(to_alice.url()))
        .await
        .unwrap();
    let b = bob.submit(chat("b").webhook(to_bob.url())).await.unwrap();
    alice.wait(a, DEADLINE).await.unwrap();
    bob.wait(b, DEADLINE).await.unwrap();
    for (receiver, own) in [(&to_alice, a), (&to_bob, b)] {
        // queued, loading or working, done: at least three events, all of its own job.
        let hooks = receiver.wait_for(3, DEADLINE).await;
        for hook in hooks {
            let event: Value = serde_json::from_slice(&hook.body).unwrap();
            assert_eq!(event["job_id"], own.to_string());
        }
    }
}

#[tokio::test]
async fn on_an_open_foreman_everyone_sees_everything_as_before() {
    let app = TestApp::spawn().await;
    let id = app.client.submit(chat("x")).await.unwrap();
    let other = app.client_with("any-token-at-all");
    assert_eq!(other.job(id).await.unwrap().id, id);
    assert!(other.job(id).await.unwrap().key.is_none());
    let (status, _) = raw(&app, reqwest::Method::GET, "/jobs", "whatever").await;
    assert_eq!(status, StatusCode::OK.as_u16());
}

#[tokio::test]
async fn an_idempotency_key_belongs_to_the_key_that_used_it() {
    let app = with_token().await;
    let (_, alice, _, bob) = two_keys(&app).await;
    let submit = |token: String, body: &'static str| {
        let app = &app;
        async move {
            let response = app
                .http
                .post(app.at("/jobs"))
                .bearer_auth(token)
                .header("idempotency-key", "invoice-42")
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            let status = response.status();
            let body: Value = response.json().await.unwrap();
            (status, body["job_id"].as_str().map(str::to_owned))
        }
    };
    let same = r#"{"model":"llama3.2","messages":[{"role":"user","content":"hi"}]}"#;
    let other = r#"{"model":"llama3.2","messages":[{"role":"user","content":"other"}]}"#;
    let (status, first) = submit(alice.clone(), same).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    // The same key again is the same job.
    let (status, again) = submit(alice, same).await;
    assert_eq!((status, &again), (StatusCode::OK, &first));
    // Another key with the same header is another request, whatever its body.
    let (status, bobs) = submit(bob.clone(), same).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_ne!(bobs, first);
    let (status, _) = submit(bob, other).await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "bob's own key, another body"
    );
}
