//! The single writer: one thread, one connection, group commit.

use rusqlite::{Connection, Transaction, TransactionBehavior};
use tokio::sync::{mpsc, oneshot};

use super::{Result, StoreError};

/// Most operations folded into one transaction.
const MAX_BATCH: usize = 512;

/// An operation for the writer: runs inside the batch's transaction and returns a closure
/// that answers the caller once the batch has committed (or fails it if the commit did).
type Op = Box<dyn FnOnce(&Transaction<'_>) -> Reply + Send>;
type Reply = Box<dyn FnOnce(Result<()>) + Send>;

/// Sends operations to the writer thread.
#[derive(Debug, Clone)]
pub(super) struct WriterHandle {
    ops: mpsc::UnboundedSender<Op>,
}

impl WriterHandle {
    /// Runs `f` in a transaction and answers once it is committed.
    pub(super) async fn run<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T> + Send + 'static,
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
            Box::new(move |committed: Result<()>| {
                let result = match (committed, outcome) {
                    (Ok(()), outcome) => outcome,
                    (Err(err), _) => Err(err),
                };
                let _ = answer.send(result);
            })
        });
        self.ops.send(op).map_err(|_| StoreError::WriterGone)?;
        answered.await.map_err(|_| StoreError::WriterGone)?
    }
}

/// Starts the writer thread on `conn`.
pub(super) fn spawn(conn: Connection) -> Result<WriterHandle> {
    let (ops, queue) = mpsc::unbounded_channel();
    std::thread::Builder::new()
        .name("foreman-db-writer".into())
        .spawn(move || write_loop(conn, queue))
        .map_err(|err| StoreError::Corrupt(format!("cannot start the writer thread: {err}")))?;
    Ok(WriterHandle { ops })
}

fn write_loop(mut conn: Connection, mut queue: mpsc::UnboundedReceiver<Op>) {
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
        run_batch(&mut conn, &mut batch);
    }
}

fn run_batch(conn: &mut Connection, batch: &mut Vec<Op>) {
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
    let replies: Vec<Reply> = batch.drain(..).map(|op| op(&tx)).collect();
    let committed = tx.commit().map_err(StoreError::from);
    if let Err(err) = &committed {
        tracing::error!(error = %err, "a write transaction failed to commit");
    }
    for reply in replies {
        let outcome = match &committed {
            Ok(()) => Ok(()),
            Err(err) => Err(StoreError::Corrupt(format!("commit failed: {err}"))),
        };
        reply(outcome);
    }
}
