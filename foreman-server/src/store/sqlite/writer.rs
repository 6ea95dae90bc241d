//! The single writer: one thread, one connection, group commit, a second thread
//! that syncs the WAL to the disk ([`sync`]) and a third that checkpoints ([`checkpoint`]).
//!
//! The connection commits with `synchronous=NORMAL`: a commit is in the WAL file, so it
//! survives a crash of this process, but not yet on the disk. Each operation says
//! whether it needs more (ADR 24). An operation that needs only the commit is answered
//! as soon as its batch commits. One that needs the disk is answered by the sync thread
//! after an `fsync` of the WAL that began after its commit, which is what
//! `synchronous=FULL` promises. The writer does not wait for that `fsync`: it commits the
//! next batch meanwhile, and the sync thread covers every batch committed while it was
//! busy with one `fsync` (ADR 25).
//!
//! An operation that finds the writer idle (nothing queued for the writer thread, the
//! connection free) is run and committed by its caller, on its own thread: one batch of
//! one, without the two thread hand-offs of a trip through the writer thread (ADR 29).
//! Whatever comes while a batch runs queues for the writer thread, which batches it.
//!
//! A third thread checkpoints: it copies what the WAL holds back into the database file
//! once the WAL is long, on a connection of its own, while the writer goes on committing.
//! SQLite's own automatic checkpoint would run inside the commit that crossed the limit,
//! and that commit's callers (and everyone queued behind it) would wait for two `fsync`s
//! and the copy (ADR 27).

mod checkpoint;
mod sync;

use std::path::PathBuf;
use std::sync::atomic::{AtomicI32, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc as std_mpsc, Arc, Mutex};

use rusqlite::{Connection, Transaction, TransactionBehavior};
use tokio::sync::{mpsc, oneshot, watch};

#[cfg(test)]
pub(super) use self::checkpoint::CHECKPOINT_AT;
use self::checkpoint::{note_wal_frames, Checkpoint};
use self::sync::{sync_loop, Waiting, Wal};
use super::{within_savepoint, Result, StoreError};

/// Most operations folded into one transaction.
const MAX_BATCH: usize = 512;

/// An operation for the writer: runs inside the batch's transaction and returns a closure
/// that answers the caller once the batch has committed (or fails it if the commit did),
/// and whether what it wrote must be on the disk before that answer.
type Op = Box<dyn FnOnce(&Transaction<'_>) -> (Reply, Durable) + Send>;
type Reply = Box<dyn FnOnce(Result<()>) + Send>;

/// What the writer thread receives.
enum Msg {
    /// An operation to run in the next transaction.
    Op(Op),
    /// The sync thread finished an `fsync`.
    Synced,
}

/// Whether an operation's writes must reach the disk before its caller is answered, or
/// only this process's crash must not lose them (ADR 24).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Durable {
    /// On the disk: survives power loss (`synchronous=FULL`'s promise).
    Disk,
    /// In the WAL file when its caller is answered, on the disk at the sync that follows
    /// at once, which its caller does not wait for. Whoever tells the world outside
    /// foreman about it (the webhook dispatcher) waits for [`WriterHandle::on_disk`].
    Soon,
    /// In the WAL file: survives a crash of this process, not of the machine.
    Process,
}

/// Sends operations to the writer thread.
#[derive(Debug, Clone)]
pub(super) struct WriterHandle {
    ops: mpsc::UnboundedSender<Msg>,
    /// The connection, and what follows a commit: the writer thread's, and an idle
    /// writer's caller's.
    shared: Arc<Shared>,
    /// How many batches that need the disk the sync thread has on the disk.
    synced: watch::Receiver<u64>,
    /// How many times the WAL was synced to the disk, for tests of what needs it.
    #[cfg(test)]
    syncs: Arc<AtomicU64>,
    /// Held by a test to keep the sync thread from syncing.
    #[cfg(test)]
    sync_gate: Arc<std::sync::Mutex<()>>,
    /// Held by a test to keep the checkpoint thread from checkpointing.
    #[cfg(test)]
    checkpoint_gate: Arc<std::sync::Mutex<()>>,
    /// How many checkpoints the checkpoint thread has run.
    #[cfg(test)]
    pub(super) checkpoints: watch::Receiver<u64>,
}

impl WriterHandle {
    /// How many batches have been synced to the disk so far.
    #[cfg(test)]
    pub(super) fn disk_syncs(&self) -> u64 {
        self.syncs.load(Ordering::Relaxed)
    }

    /// Keeps the WAL from being synced until the guard is dropped.
    #[cfg(test)]
    pub(super) fn hold_syncs(&self) -> std::sync::MutexGuard<'_, ()> {
        crate::lock::lock(&self.sync_gate)
    }

    /// Keeps the checkpoint thread from checkpointing until the guard is dropped.
    #[cfg(test)]
    pub(super) fn hold_checkpoints(&self) -> std::sync::MutexGuard<'_, ()> {
        crate::lock::lock(&self.checkpoint_gate)
    }

    /// How many times the checkpoint thread has been asked for a checkpoint.
    #[cfg(test)]
    pub(super) fn checkpoint_requests(&self) -> u64 {
        self.shared.sending.nudges.load(Ordering::SeqCst)
    }

    /// Waits until the checkpoint thread has run at least `count` checkpoints.
    #[cfg(test)]
    pub(super) async fn checkpointed(&self, count: u64) {
        let _ = self.checkpoints.clone().wait_for(|&n| n >= count).await;
    }

    /// Whether the queue may hold a job, as the last commit left it.
    pub(super) fn may_have_queued(&self) -> bool {
        self.shared.sending.queued.load(Ordering::SeqCst) != 0
    }

    /// Waits until everything committed so far is on the disk.
    pub(super) async fn on_disk(&self) {
        let committed = self.shared.sending.needed.load(Ordering::SeqCst);
        let mut synced = self.synced.clone();
        // An error means the sync thread is gone with the store: nothing left to wait for.
        let _ = synced.wait_for(|&synced| synced >= committed).await;
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
            let outcome = within_savepoint(tx, || f(tx));
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
        let op = match self.shared.run_if_idle(op) {
            // Committed here; answered already, or by the sync thread.
            None => return answered.await.map_err(|_| StoreError::WriterGone)?,
            Some(op) => op,
        };
        self.shared.pending.fetch_add(1, Ordering::SeqCst);
        if self.ops.send(Msg::Op(op)).is_err() {
            self.shared.pending.fetch_sub(1, Ordering::SeqCst);
            return Err(StoreError::WriterGone);
        }
        answered.await.map_err(|_| StoreError::WriterGone)?
    }

    /// Holds the write connection as a batch would: operations meanwhile queue for the
    /// writer thread.
    #[cfg(test)]
    pub(super) fn hold_connection(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.shared.connection()
    }
}

/// What the writer thread and the callers of an idle writer share.
struct Shared {
    conn: Mutex<Connection>,
    sending: Sending,
    /// Operations sent to the writer thread that it has not taken yet.
    pending: AtomicUsize,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("pending", &self.pending)
            .finish_non_exhaustive()
    }
}

impl Shared {
    fn connection(&self) -> std::sync::MutexGuard<'_, Connection> {
        crate::lock::lock(&self.conn)
    }

    /// Runs and commits `op` on this thread when nothing waits for the writer thread and
    /// the connection is free; otherwise gives it back, for the writer thread. Nothing in
    /// here awaits, so a caller that goes away cannot leave a batch half done.
    fn run_if_idle(&self, op: Op) -> Option<Op> {
        if self.pending.load(Ordering::SeqCst) > 0 {
            return Some(op);
        }
        let Ok(mut conn) = self.conn.try_lock() else {
            return Some(op);
        };
        match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
            Ok(tx) => {
                let reply = op(&tx);
                commit(tx, vec![reply], &self.sending);
            }
            // Dropping the operation drops its answer channel: its caller gets an error.
            Err(err) => tracing::error!(error = %err, "cannot begin a write transaction"),
        }
        None
    }
}

/// Starts the writer thread on `conn`, the database at `path`, its sync thread and its
/// checkpoint thread (on `checkpointer`, a second connection to the same database).
pub(super) fn spawn(
    conn: Connection,
    checkpointer: Connection,
    path: PathBuf,
) -> Result<WriterHandle> {
    let (ops, queue) = mpsc::unbounded_channel();
    let (to_sync, synced) = std_mpsc::channel();
    let (on_disk, synced_rx) = watch::channel(0);
    let syncs = Arc::new(AtomicU64::new(0));
    let sync_gate = Arc::new(std::sync::Mutex::new(()));
    let wal = Wal::new(path, Arc::clone(&syncs), Arc::clone(&sync_gate));
    let start = |name: &str, run: Box<dyn FnOnce() + Send>| {
        std::thread::Builder::new()
            .name(name.into())
            .spawn(run)
            .map(|_| ())
            .map_err(|err| StoreError::Corrupt(format!("cannot start the {name} thread: {err}")))
    };
    // How many batches the sync thread has tried to sync, whether or not it could.
    let attempted = Arc::new(AtomicU64::new(0));
    let attempted_rx = Arc::clone(&attempted);
    // Weak, so the writer still ends when the last handle is dropped.
    let writer = ops.downgrade();
    start(
        "foreman-db-sync",
        Box::new(move || sync_loop(wal, synced, on_disk, attempted, writer)),
    )?;
    let (to_checkpoint, nudges) = std_mpsc::channel();
    let checkpoint_gate = Arc::new(std::sync::Mutex::new(()));
    #[cfg_attr(not(test), expect(unused_variables, reason = "watched by tests only"))]
    let (checkpoints, checkpoints_rx) = watch::channel(0);
    let checkpoint = Checkpoint {
        conn: checkpointer,
        gate: Arc::clone(&checkpoint_gate),
        done: checkpoints,
    };
    start(
        "foreman-db-checkpoint",
        Box::new(move || checkpoint.run(nudges)),
    )?;
    // In place of SQLite's automatic checkpoint, which installs a hook of its own.
    conn.wal_hook(Some(note_wal_frames));
    let shared = Arc::new(Shared {
        conn: Mutex::new(conn),
        sending: Sending {
            to_sync,
            to_checkpoint,
            needed: AtomicU64::new(0),
            queued: AtomicI64::new(-1),
            nudged_at: AtomicI32::new(0),
            #[cfg(test)]
            nudges: AtomicU64::new(0),
        },
        pending: AtomicUsize::new(0),
    });
    let writer_shared = Arc::clone(&shared);
    start(
        "foreman-db-writer",
        Box::new(move || write_loop(&writer_shared, queue, attempted_rx)),
    )?;
    Ok(WriterHandle {
        ops,
        shared,
        synced: synced_rx,
        #[cfg(test)]
        syncs,
        #[cfg(test)]
        sync_gate,
        #[cfg(test)]
        checkpoint_gate,
        #[cfg(test)]
        checkpoints: checkpoints_rx,
    })
}

/// Where the writer sends what follows a commit.
struct Sending {
    /// Batches that wait for the disk, to the sync thread.
    to_sync: std_mpsc::Sender<Waiting>,
    /// "The WAL is long", to the checkpoint thread.
    to_checkpoint: std_mpsc::Sender<()>,
    /// How many batches that need the disk have begun to commit.
    needed: AtomicU64,
    /// Jobs in the queue as the last commit left it; -1 until the first commit, or after
    /// one failed.
    queued: AtomicI64,
    /// The WAL's length when the checkpoint thread was last asked for a checkpoint.
    nudged_at: AtomicI32,
    /// How many times it was asked, for tests.
    #[cfg(test)]
    nudges: AtomicU64,
}

fn write_loop(shared: &Shared, mut queue: mpsc::UnboundedReceiver<Msg>, attempted: Arc<AtomicU64>) {
    let sending = &shared.sending;
    let took = |msg: Msg| match msg {
        Msg::Op(op) => {
            shared.pending.fetch_sub(1, Ordering::SeqCst);
            Some(op)
        }
        Msg::Synced => None,
    };
    // Ends when every handle is dropped: the store is gone. Dropping `to_sync` then lets
    // the sync thread answer what it holds and end.
    while let Some(msg) = queue.blocking_recv() {
        let Some(first) = took(msg) else { continue };
        let mut conn = shared.connection();
        let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
            Ok(tx) => tx,
            Err(err) => {
                // Dropping the operation drops its answer channel: its caller gets an
                // error rather than a hang, and nothing was written.
                tracing::error!(error = %err, "cannot begin a write transaction");
                continue;
            }
        };
        let mut replies = vec![first(&tx)];
        loop {
            while replies.len() < MAX_BATCH {
                match queue.try_recv() {
                    Ok(msg) => replies.extend(took(msg).map(|op| op(&tx))),
                    Err(_) => break,
                }
            }
            // While an fsync runs, a batch whose every answer waits for the disk gains
            // nothing from committing now (the next fsync cannot begin before that one
            // ends), so it stays open and grows: one commit instead of several.
            let syncing = attempted.load(Ordering::SeqCst) < sending.needed.load(Ordering::SeqCst);
            let all_wait = replies.iter().all(|(_, durable)| *durable == Durable::Disk);
            if replies.len() >= MAX_BATCH || !syncing || !all_wait {
                break;
            }
            match queue.blocking_recv() {
                Some(msg) => replies.extend(took(msg).map(|op| op(&tx))),
                None => break,
            }
        }
        commit(tx, replies, sending);
    }
}

/// Commits a batch. Operations that need only the commit are answered now; those that
/// need the disk go to the sync thread.
fn commit(tx: Transaction<'_>, replies: Vec<(Reply, Durable)>, sending: &Sending) {
    let Sending {
        to_sync,
        needed,
        queued,
        ..
    } = sending;
    let to_disk = replies
        .iter()
        .any(|(_, durable)| *durable != Durable::Process);
    // Counted before the commit, so that whoever reads this batch's rows and then asks
    // for `on_disk` waits for its sync.
    let number = to_disk.then(|| needed.fetch_add(1, Ordering::SeqCst) + 1);
    // Read last in the transaction, so as it commits: a run's end asks it whether a job
    // may be waiting for the slot it frees (a trigger keeps the count).
    let depth = tx
        .prepare_cached("SELECT queued FROM queue_depth WHERE id = 1")
        .and_then(|mut st| st.query_row([], |r| r.get::<_, i64>(0)));
    let (committed, frames) = checkpoint::counting_frames(|| tx.commit());
    let depth = match (&committed, depth) {
        (Ok(()), Ok(depth)) => depth,
        _ => -1,
    };
    queued.store(depth, Ordering::SeqCst);
    let mut waiting = Vec::new();
    for (reply, durable) in replies {
        match (&committed, durable) {
            (Err(err), _) => reply(Err(StoreError::Corrupt(format!("commit failed: {err}")))),
            (Ok(()), Durable::Disk) => waiting.push(reply),
            (Ok(()), Durable::Soon | Durable::Process) => reply(Ok(())),
        }
    }
    if let Err(err) = &committed {
        tracing::error!(error = %err, "a write transaction failed to commit");
    }
    // Sent even when the commit failed, so the count of batches on the disk moves on.
    if let Some(batch) = number {
        if let Err(std_mpsc::SendError(lost)) = to_sync.send(Waiting {
            batch,
            replies: waiting,
        }) {
            for reply in lost.replies {
                reply(Err(StoreError::Corrupt(
                    "the WAL sync thread is gone".into(),
                )));
            }
        }
    }
    checkpoint::ask_for_checkpoint(sending, frames);
}
