//! nginx as a plain proxy hop, the floor of what any proxy adds: a child process with a
//! generated configuration in a temporary directory, one worker, keep-alive connections to
//! the upstream and no buffering, so a stream passes chunk by chunk.
//!
//! Without nginx installed, [`Nginx::start`] returns `Ok(None)` and the benchmarks print a
//! `skipped` row; `scripts/bench.sh` installs it (Debian's `nginx`).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use tokio::process::{Child, Command};

use crate::process::{find_program, free_port};

/// The row printed when nginx is missing.
pub(crate) const MISSING: &str = "nginx hop: nginx not installed (scripts/bench.sh installs it)";

/// A running nginx in front of one upstream; stop it with [`Nginx::stop`] (dropping it
/// kills it).
#[derive(Debug)]
pub(crate) struct Nginx {
    /// `http://127.0.0.1:PORT`, proxying every path to the upstream.
    pub url: String,
    child: Child,
    dir: tempfile::TempDir,
}

impl Nginx {
    /// Starts nginx proxying to `upstream` (`http://HOST:PORT`) and waits until it
    /// answers; `None` when nginx is not installed.
    pub(crate) async fn start(upstream: &str) -> Result<Option<Self>> {
        let Some(bin) = find_program("nginx") else {
            return Ok(None);
        };
        let upstream = url::Url::parse(upstream)?;
        let upstream = format!(
            "{}:{}",
            upstream.host_str().context("the upstream has no host")?,
            upstream
                .port_or_known_default()
                .context("the upstream has no port")?
        );
        let dir = tempfile::tempdir()?;
        let port = free_port()?;
        let conf = dir.path().join("nginx.conf");
        std::fs::write(&conf, config(dir.path(), port, &upstream))?;
        let child = Command::new(&bin)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf)
            // Before it reads the configuration, nginx logs to its compiled-in path.
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        let mut nginx = Self {
            url: format!("http://127.0.0.1:{port}"),
            child,
            dir,
        };
        nginx.wait_listening(port, Duration::from_secs(10)).await?;
        Ok(Some(nginx))
    }

    async fn wait_listening(&mut self, port: u16, deadline: Duration) -> Result<()> {
        let started = Instant::now();
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Ok(());
            }
            if let Some(status) = self.child.try_wait()? {
                bail!("nginx exited ({status}): {}", self.error_log());
            }
            if started.elapsed() > deadline {
                bail!(
                    "nginx did not listen within {deadline:?}: {}",
                    self.error_log()
                );
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }

    /// Asks nginx to stop (SIGTERM: the master stops its worker) and waits for it.
    pub(crate) async fn stop(mut self) -> Result<()> {
        if let Some(pid) = self
            .child
            .id()
            .and_then(|id| rustix::process::Pid::from_raw(id as i32))
        {
            rustix::process::kill_process(pid, rustix::process::Signal::TERM)?;
        }
        match tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await {
            Ok(status) => {
                status?;
            }
            Err(_) => {
                self.child.kill().await?;
                bail!("nginx did not stop within 10 s");
            }
        }
        Ok(())
    }
}

/// The configuration: everything nginx writes stays in `dir`.
fn config(dir: &Path, port: u16, upstream: &str) -> String {
    let path = |name: &str| -> PathBuf { dir.join(name) };
    format!(
        r#"worker_processes 1;
error_log {error_log} warn;
pid {pid};
events {{
    worker_connections 4096;
}}
http {{
    access_log off;
    client_body_temp_path {body};
    proxy_temp_path {proxy};
    fastcgi_temp_path {fastcgi};
    uwsgi_temp_path {uwsgi};
    scgi_temp_path {scgi};
    tcp_nodelay on;
    upstream target {{
        server {upstream};
        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://target;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
            proxy_request_buffering off;
        }}
    }}
}}
"#,
        error_log = path("error.log").display(),
        pid = path("nginx.pid").display(),
        body = path("client_body").display(),
        proxy = path("proxy").display(),
        fastcgi = path("fastcgi").display(),
        uwsgi = path("uwsgi").display(),
        scgi = path("scgi").display(),
    )
}
