//! API keys: the admin API, revocation, bootstrap on an open foreman, and secrets that
//! are stored hashed and never logged.

use foreman_client::{Client, NewKey};
use foreman_testkit::TestApp;
use reqwest::StatusCode;
use serde_json::{json, Value};

pub(crate) const ADMIN_TOKEN: &str = "admin-token-9d2e41";

/// A foreman with `FOREMAN_AUTH_TOKEN` set; its `client` is the admin's.
pub(crate) async fn with_token() -> TestApp {
    TestApp::builder().auth_token(ADMIN_TOKEN).spawn().await
}

/// [`with_token`] in front of a target that takes `delay` for every generation.
pub(crate) async fn with_token_and_delay(delay: std::time::Duration) -> TestApp {
    TestApp::builder()
        .generation_delay(delay)
        .auth_token(ADMIN_TOKEN)
        .spawn()
        .await
}

/// Creates a key through the admin API and returns a client that uses it.
pub(crate) async fn key_client(app: &TestApp, key: NewKey) -> (Client, String) {
    let created = app
        .client
        .create_key(key)
        .await
        .expect("the key is created");
    (app.client_with(&created.key), created.key)
}

async fn status_with(app: &TestApp, token: Option<&str>, path: &str) -> StatusCode {
    let mut request = app.http.get(app.at(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap().status()
}

#[tokio::test]
async fn an_admin_creates_a_key_whose_secret_is_shown_once_and_listed_never() {
    let app = with_token().await;
    let response = app
        .post_as(
            "/admin/keys",
            ADMIN_TOKEN,
            &json!({"name": "alice", "weight": 3, "max_queued": 5, "rpm": 60}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Value = response.json().await.unwrap();
    let secret = created["key"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("fm_") && secret.len() > 40, "{secret}");
    assert_eq!(created["name"], "alice");
    assert_eq!(created["admin"], false);
    assert_eq!(created["weight"], 3);
    assert_eq!(created["max_queued"], 5);
    assert_eq!(created["rpm"], 60);
    assert_eq!(created["trust_user_header"], false);
    assert_eq!(created["prefix"], secret[..7]);

    assert_eq!(
        status_with(&app, Some(&secret), "/api/tags").await,
        StatusCode::OK
    );
    let listed = app
        .get_as("/admin/keys", ADMIN_TOKEN)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        !listed.contains(&secret),
        "the list shows no secret: {listed}"
    );
    let keys = app.client.keys().await.unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].name, "alice");
    assert_eq!(keys[0].weight, 3);
}

#[tokio::test]
async fn a_revoked_key_is_refused_on_its_very_next_request() {
    let app = with_token().await;
    let (alice, secret) = key_client(&app, NewKey::new("alice")).await;
    alice.tags().await.expect("alice's key works");
    app.client.revoke_key("alice").await.unwrap();
    let err = alice.tags().await.unwrap_err();
    assert_eq!(err.status(), Some(401), "{err}");
    assert_eq!(
        status_with(&app, Some(&secret), "/jobs").await,
        StatusCode::UNAUTHORIZED
    );
    assert!(app.client.keys().await.unwrap().is_empty());
    let again = app.client.revoke_key("alice").await.unwrap_err();
    assert!(again.is_not_found(), "{again}");
}

#[tokio::test]
async fn a_non_admin_key_may_not_manage_keys_or_models() {
    let app = with_token().await;
    let (alice, _) = key_client(&app, NewKey::new("alice")).await;
    for err in [
        alice.create_key(NewKey::new("mallory")).await.unwrap_err(),
        alice.keys().await.map(|_| ()).unwrap_err(),
        alice.revoke_key("alice").await.unwrap_err(),
    ] {
        assert_eq!(err.status(), Some(403), "{err}");
    }
    let pull = alice
        .pull(foreman_client::PullRequest::new("gemma3"))
        .await
        .err()
        .expect("a pull needs an admin key");
    assert_eq!(pull.status(), Some(403), "{pull}");
    // An admin key may do what the token may.
    let (admin, _) = key_client(&app, NewKey::new("ops").admin(true)).await;
    admin.create_key(NewKey::new("bob")).await.unwrap();
    assert_eq!(admin.keys().await.unwrap().len(), 3);
}

#[tokio::test]
async fn bad_key_requests_are_refused_with_the_reason() {
    let app = with_token().await;
    app.client.create_key(NewKey::new("alice")).await.unwrap();
    for (body, status, says) in [
        (json!({"name": "alice"}), 409, "exists already"),
        (json!({"name": "admin"}), 400, "reserved"),
        (json!({"name": "a b"}), 400, "key name"),
        (json!({"name": ""}), 400, "key name"),
        (json!({"name": "x", "weight": 0}), 400, "weight"),
        (json!({"name": "x", "weight": 1001}), 400, "weight"),
        (json!({"name": "x", "rpm": 0}), 400, "rpm"),
        (json!({"name": "x", "max_queued": 0}), 400, "max_queued"),
        (json!({"weight": 2}), 400, "name"),
    ] {
        let response = app.post_as("/admin/keys", ADMIN_TOKEN, &body).await;
        assert_eq!(response.status().as_u16(), status, "{body}");
        let error: Value = response.json().await.unwrap();
        let message = error["error"].as_str().unwrap();
        assert!(message.contains(says), "{body}: {message}");
    }
}

#[tokio::test]
async fn an_open_foreman_closes_once_its_first_key_exists_and_never_loses_its_last_admin() {
    let app = TestApp::spawn().await;
    assert_eq!(status_with(&app, None, "/jobs").await, StatusCode::OK);
    // Without FOREMAN_AUTH_TOKEN, a first key that is not an admin's would lock everyone
    // out of key management.
    let first = app
        .client
        .create_key(NewKey::new("alice"))
        .await
        .unwrap_err();
    assert_eq!(first.status(), Some(409), "{first}");
    assert_eq!(status_with(&app, None, "/jobs").await, StatusCode::OK);

    let root = app
        .client
        .create_key(NewKey::new("root").admin(true))
        .await
        .unwrap();
    assert_eq!(
        status_with(&app, None, "/jobs").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        status_with(&app, Some("fm_not-a-key"), "/jobs").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(status_with(&app, None, "/healthz").await, StatusCode::OK);
    let root = app.client_with(&root.key);
    root.create_key(NewKey::new("alice")).await.unwrap();
    let last = root.revoke_key("root").await.unwrap_err();
    assert_eq!(last.status(), Some(409), "{last}");
    root.revoke_key("alice").await.unwrap();
    assert_eq!(
        status_with(&app, None, "/jobs").await,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn keys_are_stored_hashed_and_survive_a_restart() {
    let app = with_token().await;
    let created = app.client.create_key(NewKey::new("alice")).await.unwrap();
    let app = app.restart().await;
    let alice = app.client_with(&created.key);
    alice.tags().await.expect("the key works after a restart");

    let db = rusqlite::Connection::open(app.db_path()).unwrap();
    let stored: String = db
        .query_row("SELECT hash FROM api_keys WHERE name = 'alice'", [], |r| {
            r.get(0)
        })
        .unwrap();
    use sha2::Digest;
    assert_eq!(stored, hex::encode(sha2::Sha256::digest(&created.key)));
    // Nowhere in the database files, WAL included, is the secret itself.
    for entry in std::fs::read_dir(app.dir()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(
            !bytes
                .windows(created.key.len())
                .any(|w| w == created.key.as_bytes()),
            "the secret is stored in plain text"
        );
    }
}

// A current-thread runtime: every task foreman spawns logs under this test's subscriber.
#[tokio::test(flavor = "current_thread")]
async fn a_keys_secret_never_appears_in_the_logs() {
    let (logs, _guard) = crate::logs::capture();
    let app = with_token().await;
    let (alice, secret) = key_client(&app, NewKey::new("alice")).await;
    alice
        .chat(foreman_client::ChatRequest::new(
            "llama3.2",
            vec![foreman_client::ChatMessage::user("hi")],
        ))
        .await
        .unwrap();
    app.client.revoke_key("alice").await.unwrap();
    let _ = alice.tags().await;
    drop(app);
    let logs = logs.text();
    assert!(logs.contains("API key created"), "logs were captured");
    assert!(!logs.contains(&secret), "the secret appears in the logs");
    assert!(
        !logs.contains(&secret[7..]),
        "part of the secret appears in the logs"
    );
}

#[tokio::test]
async fn metrics_name_every_key_so_only_admins_may_scrape_them() {
    let app = with_token().await;
    let (_, alice) = key_client(&app, NewKey::new("alice")).await;
    assert_eq!(
        status_with(&app, Some(&alice), "/metrics").await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        status_with(&app, Some(ADMIN_TOKEN), "/metrics").await,
        StatusCode::OK
    );
    let (_, ops) = key_client(&app, NewKey::new("ops").admin(true)).await;
    assert_eq!(
        status_with(&app, Some(&ops), "/metrics").await,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "current_thread")]
async fn each_request_is_logged_with_the_name_of_its_key() {
    let (logs, _guard) = crate::logs::capture();
    let app = with_token().await;
    let (_, alice) = key_client(&app, NewKey::new("alice")).await;
    assert_eq!(
        status_with(&app, Some(&alice), "/jobs").await,
        StatusCode::OK
    );
    let line = logs
        .line(
            |l| l.contains("answered") && l.contains("path=/jobs") && l.contains("key=alice"),
            crate::DEADLINE,
        )
        .await;
    assert!(line.contains("status=200"), "{line}");
    let admin = logs
        .line(
            |l| l.contains("answered") && l.contains("path=/admin/keys"),
            crate::DEADLINE,
        )
        .await;
    assert!(
        admin.contains("key=admin"),
        "the token is the key 'admin': {admin}"
    );
}
