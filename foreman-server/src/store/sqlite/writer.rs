//! The single writer: one thread, one connection, group commit.
//!
//! The connection commits with `synchronous=NORMAL`: a commit is in the WAL file, so it
//! survives a crash of this process, but not yet on the disk. Each operation says
//! whether it needs more (ADR 24); when any operation of a batch does, the writer syncs
//! the WAL file to the disk after the commit and before answering, which is what
//! `synchronous=FULL` does at every commit.

use std::fs::File;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rusqlite::{Connection, Transaction, TransactionBehavior};
use tokio::sync::{mpsc, oneshot};

use super::{Result, StoreError};

/// Most operations folded into one transaction.
const MAX_BATCH: usize = 512;

/// An operation for the writer: runs inside the batch's transaction and returns a closure
/// that answers the caller once the batch has committed (or fails it if the commit did),
/// and whether what it wrote must be on the disk before that answer.
type Op = Box<dyn FnOnce(&Transaction<'_>) -> (Reply, Durable) + Send>;
type Reply = Box<dyn FnOnce(Result<()>) + Send>;

/// Whether an operation's writes must reach the disk before its caller is answered, or
/// only this process's crash must not lose them (ADR 24).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Durable {
    /// On the disk: survives power loss (`synchronous=FULL`'s promise).
    Disk,
    /// In the WAL file: survives a crash of this process, not of the machine.
    Process,
}

/// Sends operations to the writer thread.
#[derive(Debug, Clone)]
pub(super) struct WriterHandle {
    ops: mpsc::UnboundedSender<Op>,
    /// How many times the WAL was synced to the disk, for tests of what needs it.
    #[cfg(test)]
    syncs: Arc<AtomicU64>,
}

impl WriterHandle {
    /// How many batches have been synced to the disk so far.
    #[cfg(test)]
    pub(super) fn disk_syncs(&self) -> u64 {
        self.syncs.load(Ordering::Relaxed)
    }

    /// Runs `f` in a transaction and answers once it is committed; `f` also says how
    /// durable its writes must be before the answer (a failed operation wrote nothing).
    pub(super) async fn run<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<(T, Durable)> + Send + 'static,
    {
        let (answer, answered) = oneshot::channel();
        let op: Op = Box::new(move |tx| {
            // Each operation gets a savepoint so its failure rolls back only itself.
            // Cached statements: one savepoint per operation, without re-parsing its SQL.
            let run = |sql: &str| tx.prepare_cached(sql).and_then(|mut st| st.execute([]));
            let outcome = match run("SAVEPOINT op") {
                Ok(_) => {
                    let outcome = f(tx);
                    let closed = if outcome.is_ok() {
                        run("RELEASE op")
                    } else {
                        run("ROLLBACK TO op").and_then(|_| run("RELEASE op"))
                    };
                    match (outcome, closed) {
                        (Ok(value), Ok(_)) => Ok(value),
                        (Err(err), _) => Err(err),
                        (Ok(_), Err(err)) => Err(err.into()),
                    }
                }
                Err(err) => Err(err.into()),
            };
            let durable = match &outcome {
                Ok((_, durable)) => *durable,
                Err(_) => Durable::Process,
            };
            let reply: Reply = Box::new(move |committed: Result<()>| {
                let result = match (committed, outcome) {
                    (Ok(()), outcome) => outcome.map(|(value, _)| value),
                    (Err(err), _) => Err(err),
                };
                let _ = answer.send(result);
            });
            (reply, durable)
        });
        self.ops.send(op).map_err(|_| StoreError::WriterGone)?;
        answered.await.map_err(|_| StoreError::WriterGone)?
    }
}

/// Starts the writer thread on `conn`, the database at `path`.
pub(super) fn spawn(conn: Connection, path: PathBuf) -> Result<WriterHandle> {
    let (ops, queue) = mpsc::unbounded_channel();
    let syncs = Arc::new(AtomicU64::new(0));
    let wal = Wal::new(path, Arc::clone(&syncs));
    std::thread::Builder::new()
        .name("foreman-db-writer".into())
        .spawn(move || write_loop(conn, wal, queue))
        .map_err(|err| StoreError::Corrupt(format!("cannot start the writer thread: {err}")))?;
    Ok(WriterHandle {
        ops,
        #[cfg(test)]
        syncs,
    })
}

/// The database's WAL file, synced to the disk after a batch that needs it.
struct Wal {
    path: PathBuf,
    file: Option<File>,
    syncs: Arc<AtomicU64>,
}

impl Wal {
    fn new(database: PathBuf, syncs: Arc<AtomicU64>) -> Self {
        let mut path = database.into_os_string();
        path.push("-wal");
        Self {
            path: path.into(),
            file: None,
            syncs,
        }
    }

    /// `fsync`s the WAL: every frame committed so far is then on the disk. The file is
    /// opened once (SQLite keeps it while the writer's connection is open) and read
    /// only; syncing through this handle flushes the same file SQLite writes.
    fn sync(&mut self) -> std::io::Result<()> {
        if self.file.is_none() {
            self.file = Some(File::open(&self.path)?);
        }
        if let Some(file) = &self.file {
            file.sync_data()?;
            self.syncs.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}

fn write_loop(mut conn: Connection, mut wal: Wal, mut queue: mpsc::UnboundedReceiver<Op>) {
    let mut batch: Vec<Op> = Vec::with_capacity(MAX_BATCH);
    // Ends when every handle is dropped: the store is gone.
    while let Some(first) = queue.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        run_batch(&mut conn, &mut wal, &mut batch);
    }
}

fn run_batch(conn: &mut Connection, wal: &mut Wal, batch: &mut Vec<Op>) {
    let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(err) => {
            // Dropping the operations drops their answer channels: each caller gets an
            // error rather than a hang, and nothing was written.
            tracing::error!(error = %err, "cannot begin a write transaction");
            batch.clear();
            return;
        }
    };
    let replies: Vec<(Reply, Durable)> = batch.drain(..).map(|op| op(&tx)).collect();
    let mut committed = tx.commit().map_err(StoreError::from);
    if let Err(err) = &committed {
        tracing::error!(error = %err, "a write transaction failed to commit");
    }
    let to_disk = replies.iter().any(|(_, durable)| *durable == Durable::Disk);
    if committed.is_ok() && to_disk {
        if let Err(err) = wal.sync() {
            // Committed but maybe not on the disk: the callers that needed it hear so.
            tracing::error!(error = %err, "cannot sync the WAL file to the disk");
            committed = Err(StoreError::Corrupt(format!("cannot sync the WAL: {err}")));
        }
    }
    for (reply, durable) in replies {
        let outcome = match &committed {
            Ok(()) => Ok(()),
            // A failed sync leaves the commit in place for those that did not need it.
            Err(_) if durable == Durable::Process && to_disk => Ok(()),
            Err(err) => Err(StoreError::Corrupt(format!("commit failed: {err}"))),
        };
        reply(outcome);
    }
}
