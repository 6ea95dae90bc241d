//! Reading a whole answer a test expects: its status checked first, then its body parsed,
//! so that a wrong status fails with the body that explains it.

use reqwest::header::CONTENT_TYPE;
use serde_json::Value;

/// The JSON body of `response`, after checking that its status is `status` and that it
/// says it is JSON (`Content-Type: application/json`).
///
/// # Panics
/// When the status differs (the message shows the body), or the body is not JSON or not
/// labelled so.
///
/// ```no_run
/// # async fn demo(app: foreman_testkit::TestApp) {
/// use foreman_testkit::json_answer;
/// let body = json_answer(app.get("/jobs/nope").await, 404).await;
/// assert!(body["error"].is_string());
/// # }
/// ```
pub async fn json_answer(response: reqwest::Response, status: u16) -> Value {
    let got = response.status();
    let content_type = response.headers().get(CONTENT_TYPE).cloned();
    let text = response
        .text()
        .await
        .expect("the answer's body is readable");
    assert_eq!(got, status, "answered {got}, not {status}: {text}");
    let labelled = content_type
        .as_ref()
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"));
    assert!(labelled, "a JSON answer labelled {content_type:?}: {text}");
    serde_json::from_str(&text).unwrap_or_else(|err| panic!("not JSON ({err}): {text:?}"))
}
