//! A run's slot on its target, and when it is given back.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::state::App;
use crate::targets::Target;

/// A run's slot on its target, given back once: when the run is over, or as soon as a
/// sync caller has its whole answer and only the record of the run's end is left.
pub(super) struct Slot<'a> {
    pub(super) app: &'a App,
    pub(super) target: &'a Target,
    held: AtomicBool,
}

impl<'a> Slot<'a> {
    pub(super) fn taken(app: &'a App, target: &'a Target) -> Self {
        Self {
            app,
            target,
            held: AtomicBool::new(true),
        }
    }

    /// Frees the slot, and wakes the dispatcher when a job may be waiting for it.
    pub(super) fn give_back(&self) {
        if self.held.swap(false, Ordering::SeqCst) {
            self.target.lane.release();
            if self.app.store.may_have_queued() {
                self.app.work.notify_one();
            }
        }
    }

    /// Frees the slot before the run's end is recorded: the caller's next request, often
    /// sent at once, then finds the target idle and claims beside its enqueue. A claim is
    /// the scheduler's choice among the slots the worker counts, so the run's end, still
    /// on its way to the store, takes nothing from it. Not with a shared queue, whose
    /// target slots are rows that the end's own transaction frees.
    fn give_back_early(&self) {
        if !self.app.store.is_shared() {
            self.give_back();
        }
    }

    /// A sync caller has its whole answer: the slot goes back early, and the caller's
    /// connection gets to write the answer before this run records its end. An idle
    /// writer commits on the thread of whoever asks (ADR 29), and the caller's task,
    /// woken by the answer, would otherwise wait on this thread behind that commit.
    pub(super) async fn caller_answered(&self) {
        self.give_back_early();
        tokio::task::yield_now().await;
    }
}
