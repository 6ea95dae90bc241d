//! What several test files share.

use foreman_client::{Client, JobId, JobState};
use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// A client of a scripted server that answers `verb route` exactly once, with `response`;
/// the server checks the once when the test drops it, so keep it alive until then.
pub(crate) async fn answering_once(
    verb: &str,
    route: &str,
    response: ResponseTemplate,
) -> (MockServer, Client) {
    let server = MockServer::start().await;
    Mock::given(method(verb))
        .and(path(route))
        .respond_with(response)
        .expect(1)
        .mount(&server)
        .await;
    let client = Client::new(server.uri()).unwrap();
    (server, client)
}

/// A job as `GET /jobs/{id}` shows it, in `state`.
pub(crate) fn job_json(id: JobId, state: JobState) -> Value {
    let done = state == JobState::Done;
    json!({
        "id": id,
        "model": "llama3.2:latest",
        "state": state,
        "attempts": u32::from(state != JobState::Queued),
        "created_at": "2025-01-01T00:00:00Z",
        "updated_at": "2025-01-01T00:00:01Z",
        "error": if state == JobState::Failed { json!("target said no") } else { Value::Null },
        "result": if done { json!({"message": {"role": "assistant", "content": "blue"}, "done": true}) } else { Value::Null },
        "artifacts": if done {
            json!([{"name": "completion", "content_type": "text/plain; charset=utf-8", "size": 4, "data": "blue", "encoding": "utf8"}])
        } else { json!([]) },
        "kind": "chat",
        "priority": 0
    })
}
