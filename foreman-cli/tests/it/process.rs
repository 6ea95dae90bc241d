//! The `foreman` binary as a long-running process: a free address to give it, a wait for
//! it to answer, and a graceful stop by SIGTERM.

use std::time::Duration;

use tokio::process::Child;

/// A `127.0.0.1` address nothing listens on now.
pub(crate) fn free_addr() -> String {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    probe.local_addr().unwrap().to_string()
}

/// Waits until `GET {url}` answers 2xx.
pub(crate) async fn wait_healthy(http: &reqwest::Client, url: &str) {
    let up = foreman_testkit::wait_until(Duration::from_secs(20), || async {
        http.get(url)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    })
    .await;
    assert!(up, "{url} did not become healthy");
}

/// `foreman serve ARGS` on a free address with its database in `dir`, changed by
/// `configure` (its environment, where stderr goes); once it answers `/healthz`, the
/// process (killed when dropped) and its URL.
pub(crate) async fn serve(
    args: &[&str],
    dir: &std::path::Path,
    configure: impl FnOnce(&mut tokio::process::Command),
) -> (Child, String) {
    let addr = free_addr();
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_foreman"));
    command
        .arg("serve")
        .args(args)
        .args(["--listen-addr", &addr])
        .env("FOREMAN_DB_PATH", dir.join("f.db"))
        .kill_on_drop(true);
    configure(&mut command);
    let child = command.spawn().expect("foreman serve starts");
    let url = format!("http://{addr}");
    wait_healthy(&reqwest::Client::new(), &format!("{url}/healthz")).await;
    (child, url)
}

/// `foreman serve` on `addr` in front of `target`, quiet (stdout and stderr dropped, only
/// warnings logged), with no token from the environment, with the crash and replica
/// suites' quick retries (webhooks, targets, polls), killed when dropped. The caller adds
/// its database and spawns it.
pub(crate) fn quiet_serve(addr: &str, target: &str) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_foreman"));
    command
        .arg("serve")
        .args(["--listen-addr", addr, "--target-url", target])
        .args(["--webhook-allow-private", "true"])
        .args(["--webhook-retry-wait", "50ms", "--poll-interval", "200ms"])
        .args(["--retry-backoff", "50ms"])
        .env_remove("FOREMAN_AUTH_TOKEN")
        .env_remove("FOREMAN_DB_PATH")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    command
}

/// Sends the process SIGTERM, the signal of a graceful stop.
pub(crate) async fn sigterm(child: &Child) {
    let pid = child.id().expect("the process still runs").to_string();
    let killed = tokio::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(killed.success(), "kill -TERM {pid}");
}

/// Sends the process SIGTERM and checks that it exits 0 `within` that long.
pub(crate) async fn stop_gracefully(child: &mut Child, within: Duration) {
    sigterm(child).await;
    let status = tokio::time::timeout(within, child.wait())
        .await
        .expect("foreman exits after SIGTERM")
        .unwrap();
    assert!(status.success(), "a graceful stop exits 0: {status:?}");
}

/// `GET url` (or `POST url` with `body`), parsed as JSON.
pub(crate) async fn json(
    http: &reqwest::Client,
    url: &str,
    body: Option<&serde_json::Value>,
) -> serde_json::Value {
    let request = match body {
        Some(body) => http.post(url).json(body),
        None => http.get(url),
    };
    request
        .send()
        .await
        .unwrap_or_else(|err| panic!("{url}: {err}"))
        .json()
        .await
        .unwrap_or_else(|err| panic!("{url}: not a JSON answer: {err}"))
}

/// A streamed `/api/chat` ("hi" to llama3.2) from foreman at `url`, as the crash and
/// replica suites' sync caller sends it.
pub(crate) async fn stream_a_chat(
    http: &reqwest::Client,
    url: &str,
) -> reqwest::Result<reqwest::Response> {
    let body = serde_json::json!({"model": "llama3.2", "stream": true,
                                  "messages": [{"role": "user", "content": "hi"}]});
    http.post(format!("{url}/api/chat"))
        .json(&body)
        .send()
        .await
}
