//! foreman in this process, on a port of its own and a fresh database.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use foreman_server::Config;
use foreman_sim::SimHandle;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::http::wait_healthy;

/// A running foreman; stop it with [`Foreman::stop`].
#[derive(Debug)]
pub(crate) struct Foreman {
    pub url: String,
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), foreman_server::Error>>,
    _dir: tempfile::TempDir,
}

impl Foreman {
    /// Starts foreman in front of `target` with a database in a fresh directory (under
    /// `db_dir`, else the system's temporary directory), with `tweak` applied to the
    /// defaults. With `nodelay`, its sockets get TCP_NODELAY (an experiment: foreman's
    /// `run` does not set it).
    pub(crate) async fn start(
        (db_dir, nodelay): (Option<&Path>, bool),
        target: &str,
        tweak: impl FnOnce(&mut Config),
    ) -> Result<Self> {
        let dir = match db_dir {
            Some(parent) => tempfile::tempdir_in(parent)?,
            None => tempfile::tempdir()?,
        };
        let mut config = Config::new(target.parse()?, dir.path().join("foreman.db"));
        config.max_queue = 10_000_000;
        config.webhook_allow_private = true;
        tweak(&mut config);
        let listener = if nodelay {
            crate::http::nodelay_listener()?
        } else {
            tokio::net::TcpListener::bind("127.0.0.1:0").await?
        };
        let url = format!("http://{}", listener.local_addr()?);
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(foreman_server::run(config, listener, shutdown.clone()));
        wait_healthy(&url, Duration::from_secs(10)).await?;
        Ok(Self {
            url,
            shutdown,
            task,
            _dir: dir,
        })
    }

    /// [`start`](Self::start) in front of several simulators at once, the targets named
    /// `{prefix}1`, `{prefix}2`... in order.
    pub(crate) async fn start_over(
        placement: (Option<&Path>, bool),
        sims: &[SimHandle],
        prefix: &str,
    ) -> Result<Self> {
        let list = sims
            .iter()
            .enumerate()
            .map(|(i, sim)| format!("{prefix}{}={}", i + 1, sim.url()))
            .collect::<Vec<_>>()
            .join(",");
        Self::start(placement, sims[0].url(), |c| {
            c.target_url = list.parse().expect("the simulators' URLs parse");
        })
        .await
    }

    /// Shuts foreman down and waits (a little) for it.
    pub(crate) async fn stop(self) -> Result<()> {
        self.shutdown.cancel();
        let ended = tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .context("foreman did not stop within 10 s")?;
        ended??;
        Ok(())
    }
}
