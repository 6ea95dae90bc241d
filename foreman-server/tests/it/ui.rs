//! The status page: login and its cookie, the event stream's auth and isolation, and
//! cancelling from the page only from the page's own origin.

use std::time::Duration;

use foreman_client::{ChatMessage, ChatRequest, JobState, NewKey, SubmitRequest};
use foreman_testkit::{eventually, TestApp};
use reqwest::header::{COOKIE, ORIGIN, SET_COOKIE};
use reqwest::StatusCode;
use serde_json::Value;

use crate::keys::{key_client, ADMIN_TOKEN};
use crate::DEADLINE;

fn chat(text: &str) -> SubmitRequest {
    SubmitRequest::new(ChatRequest::new("llama3.2", vec![ChatMessage::user(text)]))
}

/// A client that shows redirects instead of following them, so `Set-Cookie` is seen.
pub(crate) fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Logs in with `key` from the page's own origin; the response.
async fn login(app: &TestApp, key: &str) -> reqwest::Response {
    browser()
        .post(app.at("/ui/login"))
        .header(ORIGIN, &app.url)
        .form(&[("key", key)])
        .send()
        .await
        .unwrap()
}

/// The `name=value` part of the session cookie a good login sets.
async fn session(app: &TestApp, key: &str) -> String {
    let response = login(app, key).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let cookie = response.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    cookie.split(';').next().unwrap().to_owned()
}

/// An open `/ui/events` stream, read one snapshot at a time.
pub(crate) struct Snapshots {
    response: reqwest::Response,
    text: String,
}

impl Snapshots {
    /// Opens the stream with `cookie` (empty on an open foreman).
    pub(crate) async fn open(app: &TestApp, cookie: &str) -> Self {
        let response = browser()
            .get(app.at("/ui/events"))
            .header(COOKIE, cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream"));
        Self {
            response,
            text: String::new(),
        }
    }

    /// The next snapshot pushed; fails the test if none comes within [`DEADLINE`].
    pub(crate) async fn next(&mut self) -> Value {
        let read = async {
            loop {
                // Events end with a blank line; keep-alive comments are skipped.
                while let Some(end) = self.text.find("\n\n") {
                    let event: String = self.text.drain(..end + 2).collect();
                    if let Some(data) = event.strip_prefix("event: snapshot\ndata: ") {
                        return serde_json::from_str(data.trim_end()).unwrap();
                    }
                    assert!(event.starts_with(':'), "not a snapshot: {event}");
                }
                match self.response.chunk().await.unwrap() {
                    Some(chunk) => self.text.push_str(&String::from_utf8_lossy(&chunk)),
                    None => panic!("the stream ended before a snapshot: {}", self.text),
                }
            }
        };
        tokio::time::timeout(DEADLINE, read)
            .await
            .expect("a snapshot within the deadline")
    }

    /// Reads snapshots until one satisfies `condition`, within [`DEADLINE`] in all.
    pub(crate) async fn until(&mut self, what: &str, condition: impl Fn(&Value) -> bool) -> Value {
        let read = async {
            loop {
                let snapshot = self.next().await;
                if condition(&snapshot) {
                    return snapshot;
                }
            }
        };
        tokio::time::timeout(DEADLINE, read)
            .await
            .unwrap_or_else(|_| panic!("no snapshot showed {what} within {DEADLINE:?}"))
    }
}

/// The first snapshot `/ui/events` pushes to `cookie`.
async fn first_snapshot(app: &TestApp, cookie: &str) -> Value {
    Snapshots::open(app, cookie).await.next().await
}

pub(crate) fn ids(snapshot: &Value, list: &str) -> Vec<String> {
    snapshot[list]
        .as_array()
        .unwrap()
        .iter()
        .map(|job| job["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn login_sets_an_http_only_strict_cookie_that_is_not_the_key() {
    let app = TestApp::builder().auth_token(ADMIN_TOKEN).spawn().await;

    let response = login(&app, ADMIN_TOKEN).await;

    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()["location"], "/ui");
    let cookie = response.headers()[SET_COOKIE].to_str().unwrap();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/ui"] {
        assert!(cookie.contains(attribute), "{attribute} missing: {cookie}");
    }
    assert!(cookie.starts_with("foreman_ui="));
    assert!(
        !cookie.contains(ADMIN_TOKEN),
        "the cookie must not carry the key"
    );
    let session = cookie.split(';').next().unwrap();
    let page = browser()
        .get(app.at("/ui"))
        .header(COOKIE, session)
        .send()
        .await
        .unwrap();
    assert!(page.text().await.unwrap().contains("/ui/app.js"));
}

#[tokio::test]
async fn a_wrong_key_or_a_cross_site_login_gets_no_session() {
    let app = TestApp::builder().auth_token(ADMIN_TOKEN).spawn().await;

    let wrong = login(&app, "not-the-key").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(wrong.headers().get(SET_COOKIE).is_none());
    assert!(wrong.text().await.unwrap().contains("not valid"));

    let cross = browser()
        .post(app.at("/ui/login"))
        .header("sec-fetch-site", "cross-site")
        .form(&[("key", ADMIN_TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), StatusCode::FORBIDDEN);
    assert!(cross.headers().get(SET_COOKIE).is_none());
}

#[tokio::test]
async fn the_event_stream_answers_no_one_without_a_session() {
    let app = TestApp::builder().auth_token(ADMIN_TOKEN).spawn().await;
    let http = browser();

    for cookie in [None, Some("foreman_ui=0123456789abcdef")] {
        let mut request = http.get(app.at("/ui/events"));
        if let Some(cookie) = cookie {
            request = request.header(COOKIE, cookie);
        }
        assert_eq!(
            request.send().await.unwrap().status(),
            StatusCode::UNAUTHORIZED
        );
    }
    // The page itself is the login form; the API's root still answers as Ollama does.
    let page = http.get(app.at("/ui")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("/ui/login"));
    let root = http.get(app.at("/")).send().await.unwrap();
    assert_eq!(root.text().await.unwrap(), "Ollama is running");
}

#[tokio::test]
async fn logging_out_ends_the_session() {
    let app = TestApp::builder().auth_token(ADMIN_TOKEN).spawn().await;
    let cookie = session(&app, ADMIN_TOKEN).await;

    let out = browser()
        .post(app.at("/ui/logout"))
        .header(ORIGIN, &app.url)
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();

    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    let events = browser()
        .get(app.at("/ui/events"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_non_admins_snapshot_holds_only_its_own_jobs_and_usage() {
    let app = TestApp::builder().auth_token(ADMIN_TOKEN).spawn().await;
    let (alice, alice_key) = key_client(&app, NewKey::new("alice")).await;
    let (bob, _) = key_client(&app, NewKey::new("bob")).await;
    let mine = alice.submit(chat("alice's")).await.unwrap();
    let theirs = bob.submit(chat("bob's")).await.unwrap();
    assert_eq!(
        alice.wait(mine, DEADLINE).await.unwrap().state,
        JobState::Done
    );
    assert_eq!(
        bob.wait(theirs, DEADLINE).await.unwrap().state,
        JobState::Done
    );

    let cookie = session(&app, &alice_key).await;
    let snapshot = first_snapshot(&app, &cookie).await;

    assert_eq!(snapshot["viewer"]["key"], "alice");
    assert_eq!(snapshot["viewer"]["admin"], false);
    assert_eq!(ids(&snapshot, "recent"), vec![mine.to_string()]);
    let usage_keys: Vec<&str> = snapshot["usage"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["key"].as_str().unwrap())
        .collect();
    assert_eq!(usage_keys, vec!["alice"]);
    let text = snapshot.to_string();
    assert!(!text.contains(&theirs.to_string()) && !text.contains("bob"));

    let admin = session(&app, ADMIN_TOKEN).await;
    let all = first_snapshot(&app, &admin).await;
    let recent = ids(&all, "recent");
    assert!(recent.contains(&mine.to_string()) && recent.contains(&theirs.to_string()));
}

#[tokio::test]
async fn the_page_cancels_a_job_only_from_its_own_origin() {
    let app = TestApp::builder()
        .generation_delay(Duration::from_secs(30))
        .auth_token(ADMIN_TOKEN)
        .spawn()
        .await;
    let running = app.client.submit(chat("long")).await.unwrap();
    eventually(DEADLINE, "the first job to start", || async {
        app.client.job(running).await.unwrap().state.is_running()
    })
    .await;
    let queued = app.client.submit(chat("behind it")).await.unwrap();
    let cookie = session(&app, ADMIN_TOKEN).await;
    let before = first_snapshot(&app, &cookie).await;
    assert_eq!(ids(&before, "queued"), vec![queued.to_string()]);
    assert_eq!(before["queued"][0]["position"], 1);
    assert_eq!(before["depth"], 1);
    let cancel = |id: String, header: Option<(&'static str, &'static str)>| {
        let mut request = browser()
            .post(app.at(&format!("/ui/jobs/{id}/cancel")))
            .header(COOKIE, &cookie);
        if let Some((name, value)) = header {
            request = request.header(name, value);
        }
        request.send()
    };

    for header in [
        None,
        Some(("sec-fetch-site", "cross-site")),
        Some(("sec-fetch-site", "same-site")),
        Some(("origin", "http://evil.example")),
    ] {
        let refused = cancel(queued.to_string(), header).await.unwrap();
        assert_eq!(refused.status(), StatusCode::FORBIDDEN, "{header:?}");
    }
    let still = app.client.job(queued).await.unwrap();
    assert_eq!(still.state, JobState::Queued);

    let done = cancel(queued.to_string(), Some(("sec-fetch-site", "same-origin")))
        .await
        .unwrap();
    assert_eq!(done.status(), StatusCode::OK);
    assert_eq!(
        app.client.job(queued).await.unwrap().state,
        JobState::Cancelled
    );
    let anonymous = browser()
        .post(app.at(&format!("/ui/jobs/{running}/cancel")))
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_open_foreman_shows_the_page_without_a_login() {
    let app = TestApp::spawn().await;

    let page = browser().get(app.at("/ui")).send().await.unwrap();
    assert!(page.text().await.unwrap().contains("/ui/app.js"));
    let snapshot = first_snapshot(&app, "").await;
    assert_eq!(snapshot["viewer"]["admin"], true);
    assert_eq!(snapshot["targets"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn an_open_stream_does_not_hold_up_shutdown() {
    let mut app = TestApp::spawn().await;
    let mut stream = browser().get(app.at("/ui/events")).send().await.unwrap();
    assert!(stream.chunk().await.unwrap().is_some());

    let stopped = tokio::time::timeout(DEADLINE, app.stop()).await;

    assert!(stopped.is_ok(), "shutdown waited on the page's stream");
}
