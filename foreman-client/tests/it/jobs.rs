//! The foreman half against a wiremock server scripting foreman's answers.

use std::time::Duration;

use foreman_client::{
    ChatMessage, ChatRequest, Client, Error, JobId, JobQuery, JobState, SubmitRequest,
};
use futures::StreamExt;
use serde_json::{json, Value};
use wiremock::matchers::{body_partial_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{answering_once, job_json};

fn submit_request() -> SubmitRequest {
    let chat = ChatRequest::new("llama3.2", vec![ChatMessage::user("hi")]);
    SubmitRequest::new(chat).webhook("https://example.com/hook")
}

/// Answers `GET /jobs/{id}` with each state in turn (the last one for good).
async fn script_states(server: &MockServer, id: JobId, states: &[JobState]) {
    for (i, state) in states.iter().enumerate() {
        let mock = Mock::given(method("GET"))
            .and(path(format!("/jobs/{id}")))
            .respond_with(ResponseTemplate::new(200).set_body_json(job_json(id, *state)));
        let mock = if i + 1 < states.len() {
            mock.up_to_n_times(1)
        } else {
            mock
        };
        mock.mount(server).await;
    }
}

#[tokio::test]
async fn submit_posts_the_chat_and_returns_the_job_id() {
    let server = MockServer::start().await;
    let id = JobId::new();
    Mock::given(method("POST"))
        .and(path("/jobs"))
        .and(body_partial_json(json!({
            "model": "llama3.2",
            "messages": [{"role": "user", "content": "hi"}],
            "state_webhook_url": "https://example.com/hook"
        })))
        .respond_with(ResponseTemplate::new(202).set_body_json(json!({ "job_id": id })))
        .expect(1)
        .mount(&server)
        .await;
    let client = Client::new(server.uri()).unwrap();

    let submitted = client.submit(submit_request()).await.unwrap();

    assert_eq!(submitted, id);
}

#[tokio::test]
async fn submit_with_key_sends_the_idempotency_key_header() {
    let server = MockServer::start().await;
    let id = JobId::new();
    Mock::given(method("POST"))
        .and(path("/jobs"))
        .and(header("idempotency-key", "invoice-42"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "job_id": id })))
        .expect(2)
        .mount(&server)
        .await;
    let client = Client::new(server.uri()).unwrap();

    let first = client
        .submit_with_key(submit_request(), "invoice-42")
        .await
        .unwrap();
    let again = client
        .submit_with_key(submit_request(), "invoice-42")
        .await
        .unwrap();

    assert_eq!((first, again), (id, id));
}

#[tokio::test]
async fn submit_for_an_unknown_model_gives_the_servers_404_message() {
    let not_found = ResponseTemplate::new(404)
        .set_body_json(json!({"error": "model \"llama3.2\" not found, try pulling it first"}));
    let (_server, client) = answering_once("POST", "/jobs", not_found).await;

    let err = client.submit(submit_request()).await.unwrap_err();

    assert!(err.is_not_found());
    assert!(
        matches!(&err, Error::Api { status: 404, message } if message.contains("try pulling it first")),
        "{err:?}"
    );
}

#[tokio::test]
async fn wait_polls_until_the_job_is_done() {
    let server = MockServer::start().await;
    let id = JobId::new();
    script_states(
        &server,
        id,
        &[JobState::Queued, JobState::Working, JobState::Done],
    )
    .await;
    let client = Client::new(server.uri()).unwrap();

    let job = client.wait(id, Duration::from_secs(10)).await.unwrap();

    assert_eq!(job.state, JobState::Done);
    assert_eq!(job.id, id);
    let polls = server.received_requests().await.unwrap().len();
    assert_eq!(polls, 3, "one poll per state, none after the terminal one");
}

#[tokio::test]
async fn wait_times_out_on_a_job_that_stays_queued() {
    let server = MockServer::start().await;
    let id = JobId::new();
    script_states(&server, id, &[JobState::Queued]).await;
    let client = Client::new(server.uri()).unwrap();
    let started = std::time::Instant::now();

    let err = client
        .wait(id, Duration::from_millis(300))
        .await
        .unwrap_err();

    let took = started.elapsed();
    assert!(
        matches!(err, Error::Timeout { job, last_state: JobState::Queued } if job == id),
        "{err:?}"
    );
    assert!(err.is_timeout());
    assert!(
        took >= Duration::from_millis(300),
        "gave up early: {took:?}"
    );
    assert!(took < Duration::from_secs(3), "overran: {took:?}");
    let polls = server.received_requests().await.unwrap().len();
    assert!(polls >= 3, "polled {polls} times; the backoff starts short");
}

#[tokio::test]
async fn watch_yields_each_change_of_state_and_ends_at_the_terminal_one() {
    let server = MockServer::start().await;
    let id = JobId::new();
    let states = [
        JobState::Queued,
        JobState::Queued,
        JobState::Loading,
        JobState::Working,
        JobState::Working,
        JobState::Failed,
    ];
    script_states(&server, id, &states).await;
    let client = Client::new(server.uri()).unwrap();

    let seen: Vec<JobState> = client
        .watch(id)
        .map(|job| job.unwrap().state)
        .collect()
        .await;

    assert_eq!(
        seen,
        [
            JobState::Queued,
            JobState::Loading,
            JobState::Working,
            JobState::Failed
        ]
    );
}

#[tokio::test]
async fn job_for_an_unknown_id_is_not_found() {
    let id = JobId::new();
    let not_found =
        ResponseTemplate::new(404).set_body_json(json!({"error": format!("job {id} not found")}));
    let (_server, client) = answering_once("GET", &format!("/jobs/{id}"), not_found).await;

    let err = client.job(id).await.unwrap_err();

    assert!(err.is_not_found(), "{err:?}");
    assert!(err.to_string().contains("not found"));
}

#[tokio::test]
async fn artifact_returns_the_bytes_and_content_type_of_a_percent_encoded_name() {
    let id = JobId::new();
    let text = ResponseTemplate::new(200)
        .set_body_raw("The sky is blue.".as_bytes(), "text/plain; charset=utf-8");
    let route = format!("/jobs/{id}/artifacts/my%20notes%2F1.txt");
    let (_server, client) = answering_once("GET", &route, text).await;

    let artifact = client.artifact(id, "my notes/1.txt").await.unwrap();

    assert_eq!(artifact.content_type, "text/plain; charset=utf-8");
    assert_eq!(&artifact.data[..], b"The sky is blue.");
    assert_eq!(artifact.text(), Some("The sky is blue."));
}

#[tokio::test]
async fn cancel_deletes_the_job_and_returns_it() {
    let id = JobId::new();
    let cancelled = ResponseTemplate::new(200).set_body_json(job_json(id, JobState::Cancelled));
    let (_server, client) = answering_once("DELETE", &format!("/jobs/{id}"), cancelled).await;

    let job = client.cancel(id).await.unwrap();

    assert_eq!(job.state, JobState::Cancelled);
}

#[tokio::test]
async fn jobs_sends_the_filters_as_query_parameters() {
    let server = MockServer::start().await;
    let id = JobId::new();
    Mock::given(method("GET"))
        .and(path("/jobs"))
        .and(query_param("state", "failed"))
        .and(query_param("model", "qwen2.5:0.5b"))
        .and(query_param("limit", "2"))
        .and(query_param("before", "01JZZZZZZZZZZZZZZZZZZZZZZZ"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "jobs": [job_json(id, JobState::Failed)],
            "next_cursor": id.to_string()
        })))
        .expect(1)
        .mount(&server)
        .await;
    let client = Client::new(server.uri()).unwrap();
    let query = JobQuery::new()
        .state(JobState::Failed)
        .model("qwen2.5:0.5b")
        .limit(2)
        .before("01JZZZZZZZZZZZZZZZZZZZZZZZ");

    let page = client.jobs(&query).await.unwrap();

    assert_eq!(page.jobs.len(), 1);
    assert_eq!(page.next_cursor, Some(id.to_string()));
}

#[tokio::test]
async fn health_and_queue_read_their_json() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/healthz"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"status": "ok", "degraded": true})),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/queue"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"depth": 3})))
        .mount(&server)
        .await;
    let client = Client::new(server.uri()).unwrap();

    let health = client.health().await.unwrap();
    let queue: Value = client.queue().await.unwrap();

    assert_eq!(health.status, "ok");
    assert!(health.degraded);
    assert_eq!(queue["depth"], 3);
}

#[tokio::test]
async fn a_body_that_is_not_the_expected_json_is_a_decode_error() {
    let login_page = ResponseTemplate::new(200).set_body_string("<html>proxy login</html>");
    let (_server, client) = answering_once("GET", "/healthz", login_page).await;

    let err = client.health().await.unwrap_err();

    assert!(
        matches!(&err, Error::Decode(m) if m.contains("proxy login")),
        "{err:?}"
    );
}
