//! A foreman in front of the simulator in manual release, where the test hands out each of
//! the target's tokens itself: for what happens between two chunks of a stream.

use foreman_server::Config;
use foreman_sim::{Generation, SimConfig, SimHandle};
use foreman_testkit::TestApp;
use serde_json::Value;

use crate::DEADLINE;

/// A simulated Ollama whose tokens the test releases, and a foreman in front of it.
pub(crate) async fn manual_target() -> (SimHandle, TestApp) {
    manual_target_with(|_| {}).await
}

/// [`manual_target`] with foreman's configuration changed by `configure`.
pub(crate) async fn manual_target_with(
    configure: impl FnOnce(&mut Config) + Send + 'static,
) -> (SimHandle, TestApp) {
    let sim = foreman_sim::spawn(SimConfig::manual())
        .await
        .expect("the simulator starts");
    let app = TestApp::builder()
        .target_url(sim.url())
        .configure(configure)
        .spawn()
        .await;
    (sim, app)
}

/// The next generation foreman sends the simulator, within the deadline.
pub(crate) async fn next_generation(sim: &SimHandle) -> Generation {
    sim.next_generation(DEADLINE)
        .await
        .expect("a generation request")
}

/// A foreman in front of a [`manual_target`], `body` posted to `path`, and the first token
/// of its generation released: the simulator (to keep while the test runs), foreman, the
/// generation to go on with, and the call's response, whose headers wait for the target's
/// first chunk to pass through foreman, as Ollama's do.
pub(crate) async fn first_token(
    path: &str,
    body: Value,
    token: &str,
) -> (SimHandle, TestApp, Generation, reqwest::Response) {
    let (sim, app) = manual_target().await;
    let pending = app.spawn_post(path, body);
    let generation = next_generation(&sim).await;
    generation.token(token);
    let response = pending.await.unwrap().unwrap();
    (sim, app, generation, response)
}

/// Waits, up to the deadline, for the newest job to satisfy `condition`.
pub(crate) async fn newest_job(app: &TestApp, condition: impl Fn(&Value) -> bool) -> bool {
    foreman_testkit::wait_until(DEADLINE, || async {
        app.jobs_json("").await.first().is_some_and(&condition)
    })
    .await
}
