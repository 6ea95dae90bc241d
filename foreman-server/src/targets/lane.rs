//! A target's lane: how many generations it may run at once, how many run now, the model
//! it ran last (to count swaps) and the pause after it was unreachable.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use foreman_types::Backoff;

/// The longest pause after the target was unreachable.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// One target's slots. The worker takes a slot for each job it starts there and gives it
/// back when the run is over, so no more than `parallel` run at once.
#[derive(Debug)]
pub(crate) struct Lane {
    parallel: u32,
    state: Mutex<State>,
    swaps: AtomicU64,
}

#[derive(Debug)]
struct State {
    running: u32,
    last_model: Option<String>,
    backoff: Backoff,
}

impl Lane {
    /// A lane of `parallel` slots (at least one); `retry_backoff` is the first pause after
    /// the target was unreachable, doubling up to 30 s.
    pub(crate) fn new(parallel: u32, retry_backoff: Duration) -> Self {
        Self {
            parallel: parallel.max(1),
            state: Mutex::new(State {
                running: 0,
                last_model: None,
                backoff: Backoff::new(retry_backoff, MAX_BACKOFF),
            }),
            swaps: AtomicU64::new(0),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut crate::lock::lock(&self.state))
    }

    /// How many generations it may run at once.
    pub(crate) fn parallel(&self) -> u32 {
        self.parallel
    }

    /// How many run now.
    pub(crate) fn running(&self) -> u32 {
        self.with(|s| s.running)
    }

    /// Slots free now.
    pub(crate) fn free(&self) -> u32 {
        self.parallel.saturating_sub(self.running())
    }

    /// Takes a slot for a job of `model`; counts a swap when the lane's last job was for
    /// another model.
    pub(crate) fn take(&self, model: &str) {
        let swapped = self.with(|s| {
            s.running += 1;
            let swapped = s.last_model.as_deref().is_some_and(|m| m != model);
            s.last_model = Some(model.to_owned());
            swapped
        });
        if swapped {
            self.swaps.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Gives a slot back.
    pub(crate) fn release(&self) {
        self.with(|s| s.running = s.running.saturating_sub(1));
    }

    /// Generations that ran on a different model from the lane's one before.
    pub(crate) fn swaps(&self) -> u64 {
        self.swaps.load(Ordering::Relaxed)
    }

    /// The pause before the slot of a run that found the target unreachable is given back:
    /// doubling while the target keeps failing, so a flapping target is not hammered.
    pub(crate) fn next_backoff(&self) -> Duration {
        self.with(|s| s.backoff.next_delay())
    }

    /// A run reached the target: the next failure pauses briefly again.
    pub(crate) fn reset_backoff(&self) {
        self.with(|s| s.backoff.reset());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_taken_and_given_back_and_swaps_counted() {
        let lane = Lane::new(2, Duration::from_millis(10));
        assert_eq!(lane.free(), 2);
        lane.take("a");
        lane.take("a");
        assert_eq!((lane.running(), lane.free()), (2, 0));
        lane.release();
        lane.take("b");
        assert_eq!(lane.swaps(), 1);
        lane.release();
        lane.release();
        lane.release();
        assert_eq!(lane.free(), 2, "an extra release is harmless");
    }

    #[test]
    fn a_lane_has_at_least_one_slot() {
        assert_eq!(Lane::new(0, Duration::ZERO).parallel(), 1);
    }
}
