//! The sync thread: `fsync`s the WAL for the batches that wait for the disk (ADR 25).

use std::fs::File;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc as std_mpsc, Arc};

use tokio::sync::{mpsc, watch};

use super::{Msg, Reply, StoreError};

/// The database's WAL file, synced to the disk after a batch that needs it.
pub(super) struct Wal {
    path: PathBuf,
    file: Option<File>,
    syncs: Arc<AtomicU64>,
    /// Locked around each sync; only a test ever holds it otherwise.
    gate: Arc<std::sync::Mutex<()>>,
}

impl Wal {
    pub(super) fn new(
        database: PathBuf,
        syncs: Arc<AtomicU64>,
        gate: Arc<std::sync::Mutex<()>>,
    ) -> Self {
        let mut path = database.into_os_string();
        path.push("-wal");
        Self {
            path: path.into(),
            file: None,
            syncs,
            gate,
        }
    }

    /// `fsync`s the WAL: every frame committed so far is then on the disk. The file is
    /// opened once (SQLite keeps it while the writer's connection is open) and read
    /// only; syncing through this handle flushes the same file SQLite writes.
    fn sync(&mut self) -> std::io::Result<()> {
        let _gate = crate::lock::lock(&self.gate);
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

/// A committed batch that needs the disk: its number among such batches, and the answers
/// that wait for the sync.
pub(super) struct Waiting {
    pub(super) batch: u64,
    pub(super) replies: Vec<Reply>,
}

/// Syncs the WAL for every batch that waits for it, as many batches per `fsync` as were
/// committed before it began, and says how many batches are on the disk.
pub(super) fn sync_loop(
    mut wal: Wal,
    synced: std_mpsc::Receiver<Waiting>,
    on_disk: watch::Sender<u64>,
    attempted: Arc<AtomicU64>,
    writer: mpsc::WeakUnboundedSender<Msg>,
) {
    while let Ok(first) = synced.recv() {
        let mut last = first.batch;
        let mut replies = first.replies;
        // Each of these was sent after its batch committed, so this one sync covers them.
        while let Ok(more) = synced.try_recv() {
            last = last.max(more.batch);
            replies.extend(more.replies);
        }
        let outcome = wal.sync();
        match &outcome {
            Ok(()) => {
                on_disk.send_replace(last);
            }
            // Committed but maybe not on the disk: the callers that needed it hear so,
            // and `on_disk` waits for a sync that succeeds.
            Err(err) => tracing::error!(error = %err, "cannot sync the WAL file to the disk"),
        }
        for reply in replies {
            reply(match &outcome {
                Ok(()) => Ok(()),
                Err(err) => Err(StoreError::Corrupt(format!("cannot sync the WAL: {err}"))),
            });
        }
        // A writer holding a batch open for this sync commits it now.
        attempted.store(last, Ordering::SeqCst);
        if let Some(writer) = writer.upgrade() {
            let _ = writer.send(Msg::Synced);
        }
    }
}
