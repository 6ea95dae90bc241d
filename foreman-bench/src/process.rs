//! The `foreman` binary as a child process: start-up time and resident memory; and what
//! the other child processes (nginx, wrk) need: finding a program, a free port, enough
//! file descriptors.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::http::wait_healthy;

/// Where the `foreman` binary is: `explicit`, else beside this executable (or its
/// `deps/` parent, for tests), preferring a release build.
pub(crate) fn find_binary(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(path) = explicit {
        return path.is_file().then(|| path.to_owned());
    }
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    let mut candidates = vec![dir.join("foreman")];
    if let Some(target) = dir
        .ancestors()
        .find(|d| d.join("release").is_dir() || d.join("debug").is_dir())
    {
        candidates.push(target.join("release").join("foreman"));
        candidates.push(target.join("debug").join("foreman"));
    }
    candidates.into_iter().find(|path| path.is_file())
}

/// `name` on `PATH`, or in `/usr/sbin` and `/usr/local/sbin` (where Debian puts nginx,
/// outside a non-root `PATH`).
pub(crate) fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/local/sbin".into()])
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// A loopback port that was free a moment ago, for a child process to listen on.
pub(crate) fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Raises this process's open-file limit (`ulimit -n`; children inherit it) to at least
/// `want`, lifting the hard limit too where allowed (as root). Errors if it stays below.
pub(crate) fn raise_open_files(want: u64) -> Result<u64> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    let current = limit.current.unwrap_or(u64::MAX);
    if current >= want {
        return Ok(current);
    }
    let hard = limit.maximum.unwrap_or(u64::MAX);
    let raised = if hard >= want {
        setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(want),
                maximum: limit.maximum,
            },
        )
    } else {
        setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(want),
                maximum: Some(want),
            },
        )
    };
    raised.with_context(|| {
        format!("needs {want} open files, the limit is {current} (hard {hard}): raise `ulimit -n`")
    })?;
    Ok(want)
}

/// A running `foreman serve`; killed when dropped.
#[derive(Debug)]
pub(crate) struct Process {
    pub url: String,
    child: Child,
}

impl Process {
    /// Spawns `foreman serve` on a free port and waits until `/healthz` answers; returns
    /// it with the time from spawn to healthy.
    pub(crate) async fn start(
        bin: &Path,
        target: &str,
        db: &Path,
        max_queue: usize,
    ) -> Result<(Self, Duration)> {
        let db = db.as_os_str().to_string_lossy();
        Self::serve(bin, target, &["--db-path", &db], max_queue).await
    }

    /// [`start`](Self::start) with the queue in the PostgreSQL database at `db_url`, as
    /// one of several replicas.
    pub(crate) async fn start_replica(
        bin: &Path,
        target: &str,
        db_url: &str,
        max_queue: usize,
    ) -> Result<Self> {
        let (process, _) = Self::serve(bin, target, &["--db-url", db_url], max_queue).await?;
        Ok(process)
    }

    async fn serve(
        bin: &Path,
        target: &str,
        database: &[&str],
        max_queue: usize,
    ) -> Result<(Self, Duration)> {
        let port = free_port()?;
        let listen = format!("127.0.0.1:{port}");
        let url = format!("http://{listen}");
        let started = Instant::now();
        let child = Command::new(bin)
            .arg("serve")
            .args(["--listen-addr", &listen])
            .args(["--target-url", target])
            .args(database)
            .args(["--max-queue", &max_queue.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        let process = Self { url, child };
        wait_healthy(&process.url, Duration::from_secs(60)).await?;
        Ok((process, started.elapsed()))
    }

    /// `VmRSS` and `VmHWM` (peak) from `/proc/<pid>/status`, in bytes.
    pub(crate) fn memory(&self) -> Result<(u64, u64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let field = |name: &str| -> Result<u64> {
            let line = status
                .lines()
                .find(|l| l.starts_with(name))
                .with_context(|| format!("no {name} in /proc status"))?;
            let kib: u64 = line
                .split_whitespace()
                .nth(1)
                .context("malformed /proc status")?
                .parse()?;
            Ok(kib * 1024)
        };
        Ok((field("VmRSS:")?, field("VmHWM:")?))
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
