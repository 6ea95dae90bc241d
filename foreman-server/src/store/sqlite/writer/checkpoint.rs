//! The checkpoint thread, and how the writer asks it for checkpoints (ADR 27).

use std::cell::Cell;
use std::ffi::c_int;
use std::sync::atomic::Ordering;
use std::sync::{mpsc as std_mpsc, Arc};

use rusqlite::Connection;
use tokio::sync::watch;

use super::Sending;

/// WAL frames (pages) after a commit from which the checkpoint thread is asked to copy
/// them into the database: SQLite's own default for its automatic checkpoint.
pub(in crate::store::sqlite) const CHECKPOINT_AT: c_int = 1000;

/// WAL frames from which the writer checkpoints itself, after its commit: only when the
/// checkpoint thread cannot catch up, because the writer never pauses long enough for a
/// checkpoint to copy everything (the WAL starts over only then). Bounds the WAL at about
/// 64 MiB.
const WRITER_CHECKPOINT_AT: c_int = 16_384;

thread_local! {
    /// The frames in the WAL after this thread's last commit, as the WAL hook saw them.
    static WAL_FRAMES: Cell<c_int> = const { Cell::new(0) };
}

/// Runs `commit` (of the writer's connection, on this thread) and says how many frames
/// the WAL holds after it: the WAL hook notes them during the commit. 0 if the commit
/// failed before the hook ran.
pub(super) fn counting_frames<T>(commit: impl FnOnce() -> T) -> (T, c_int) {
    WAL_FRAMES.set(0);
    let outcome = commit();
    (outcome, WAL_FRAMES.get())
}

/// The writer connection's WAL hook, run by SQLite after each commit with the frames now
/// in the WAL. A checkpoint error is logged, not returned: the commit stands, and an
/// error here would be reported as the commit's.
pub(super) fn note_wal_frames(wal: &rusqlite::hooks::Wal, frames: c_int) -> rusqlite::Result<()> {
    WAL_FRAMES.set(frames);
    if frames >= WRITER_CHECKPOINT_AT {
        if let Err(err) = wal.checkpoint() {
            tracing::warn!(error = %err, frames, "the writer could not checkpoint a long WAL");
        }
    }
    Ok(())
}

/// The checkpoint thread's connection, and what a test watches it by.
pub(super) struct Checkpoint {
    pub(super) conn: Connection,
    /// Locked around each checkpoint; only a test ever holds it otherwise.
    pub(super) gate: Arc<std::sync::Mutex<()>>,
    /// How many checkpoints have run.
    pub(super) done: watch::Sender<u64>,
}

impl Checkpoint {
    /// Checkpoints each time the writer says the WAL is long, until the writer is gone.
    /// `PASSIVE`: it copies what no reader still needs and waits for no one, so the
    /// writer goes on committing meanwhile; once a checkpoint has copied every frame, the
    /// writer's next transaction starts the WAL over from its beginning.
    pub(super) fn run(self, nudges: std_mpsc::Receiver<()>) {
        while nudges.recv().is_ok() {
            // One checkpoint for every commit that asked while the last one ran.
            while nudges.try_recv().is_ok() {}
            let _gate = crate::lock::lock(&self.gate);
            if let Err(err) = self
                .conn
                .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
            {
                tracing::warn!(error = %err, "cannot checkpoint the WAL");
            }
            self.done.send_modify(|n| *n += 1);
        }
    }
}

/// Asks the checkpoint thread for a checkpoint when the WAL has reached
/// [`CHECKPOINT_AT`] frames, and again each time it has grown by as many since: under a
/// load that never pauses a checkpoint cannot copy the frames committed while it runs,
/// the WAL cannot start over, and asking after every commit would keep the checkpoint
/// thread syncing without end.
pub(super) fn ask_for_checkpoint(sending: &Sending, frames: c_int) {
    let mut asked = sending.nudged_at.load(Ordering::SeqCst);
    if frames < asked {
        // The WAL has started over since: count from its beginning.
        asked = 0;
        sending.nudged_at.store(0, Ordering::SeqCst);
    }
    if frames >= asked + CHECKPOINT_AT {
        sending.nudged_at.store(frames, Ordering::SeqCst);
        #[cfg(test)]
        sending.nudges.fetch_add(1, Ordering::SeqCst);
        // Gone only with the store.
        let _ = sending.to_checkpoint.send(());
    }
}
