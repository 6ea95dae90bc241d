//! Manual release of a pull: the test sends each progress line of `/api/pull` and decides
//! how the pull ends.

use serde_json::Value;

use super::catalog::Layer;
use super::manual::{Stepper, Steps};

/// What the test sends down a pull's stream.
#[derive(Debug)]
pub(crate) enum PullStep {
    Progress { layer: usize, completed: u64 },
    Finish,
    Fail(String),
    Cut,
}

/// One layer a [`Pull`] downloads.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PullLayer {
    /// `sha256:` and 64 hex digits.
    pub digest: String,
    /// Its size in bytes: the `total` of its progress lines.
    pub total: u64,
}

/// One `/api/pull` of a model the pretend registry has, released by hand
/// ([`Release::Manual`](crate::Release::Manual)).
///
/// Its stream has sent `{"status":"pulling manifest"}` when the test gets the handle, and
/// then sends what the test says: progress lines for the model's [`layers`](Self::layers),
/// and the end. The stream stays open while this handle lives; dropping it without
/// [`finish`](Self::finish) or [`fail`](Self::fail) cuts the stream.
///
/// ```no_run
/// # async fn demo() -> std::io::Result<()> {
/// use std::time::Duration;
/// use foreman_sim::SimConfig;
///
/// let sim = foreman_sim::spawn(SimConfig::manual()).await?;
/// // ... POST {"model": "smollm2:135m"} to sim.url()/api/pull, directly or through a proxy ...
/// let pull = sim.next_pull(Duration::from_secs(5)).await.expect("a pull");
/// let total = pull.layers()[0].total;
/// pull.progress(0, 0); // {"status":"pulling 1a2b3c4d5e6f","digest":"sha256:...","total":...}
/// pull.progress(0, total / 2);
/// pull.progress(0, total);
/// pull.finish(); // verifying sha256 digest, writing manifest, success: the model is installed
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Pull {
    request: Value,
    layers: Vec<PullLayer>,
    steps: Stepper<PullStep>,
}

impl Pull {
    /// A handle and the receiving end its stream reads.
    pub(crate) fn new(request: Value, layers: &[Layer]) -> (Self, Steps<PullStep>) {
        let (steps, receiving) = Stepper::new();
        let layers = layers
            .iter()
            .map(|layer| PullLayer {
                digest: layer.digest.clone(),
                total: layer.size,
            })
            .collect();
        let pull = Self {
            request,
            layers,
            steps,
        };
        (pull, receiving)
    }

    /// The request's JSON body, as the client sent it.
    pub fn request(&self) -> &Value {
        &self.request
    }

    /// The layers of the model being pulled, weights first.
    pub fn layers(&self) -> &[PullLayer] {
        &self.layers
    }

    /// Sends one progress line for layer `layer` (an index into [`layers`](Self::layers)):
    /// `{"status":"pulling <12 hex>","digest":...,"total":...,"completed":completed}`,
    /// without `completed` when it is zero, as Ollama writes the line that announces a
    /// layer.
    ///
    /// # Panics
    /// If the model has no such layer.
    pub fn progress(&self, layer: usize, completed: u64) {
        assert!(
            layer < self.layers.len(),
            "the model has {} layers, not {}",
            self.layers.len(),
            layer + 1
        );
        self.steps.send(PullStep::Progress { layer, completed });
    }

    /// Ends the pull as Ollama ends one: `verifying sha256 digest`, `writing manifest`,
    /// then `success` once the model is installed.
    pub fn finish(self) {
        self.steps.send(PullStep::Finish);
    }

    /// Ends the pull with the line `{"error": message}`; the model is not installed.
    pub fn fail(self, message: &str) {
        self.steps.send(PullStep::Fail(message.to_owned()));
    }

    /// Breaks the connection off without the response's proper end.
    pub fn cut(self) {
        self.steps.send(PullStep::Cut);
    }

    /// Resolves once the client has hung up before the pull ended; never otherwise, so
    /// wrap it in a timeout.
    pub async fn hung_up(&self) {
        self.steps.hung_up().await;
    }
}
