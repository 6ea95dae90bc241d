//! CPU time spent per unit of work, and the rate it allows: the throughput benchmarks'
//! figures are bounded by this machine's cores as much as by foreman, and the CPU a job
//! costs says by how much.

use std::time::Duration;

use rustix::time::{clock_gettime, ClockId};

use crate::report::Row;

/// CPU time this process (every thread: foreman, the bench's clients, in-process targets)
/// has used so far.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cpu(Duration);

impl Cpu {
    pub(crate) fn now() -> Self {
        let time = clock_gettime(ClockId::ProcessCPUTime);
        let secs = u64::try_from(time.tv_sec).unwrap_or(0);
        let nanos = u64::try_from(time.tv_nsec).unwrap_or(0);
        Self(Duration::from_secs(secs) + Duration::from_nanos(nanos))
    }

    /// The CPU time used since `self`.
    pub(crate) fn since(self) -> Duration {
        Self::now().0.saturating_sub(self.0)
    }
}

/// CPU time over a number of units of work done in `wall` time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PerUnit {
    pub cpu: Duration,
    pub units: usize,
    pub wall: Duration,
}

impl PerUnit {
    /// CPU per unit, in ms.
    pub(crate) fn ms(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e3 / self.units.max(1) as f64
    }

    /// How busy this process kept the machine's cores, 0 to 1.
    pub(crate) fn busy(&self) -> f64 {
        self.cpu.as_secs_f64() / (self.wall.as_secs_f64() * cores() as f64).max(1e-9)
    }

    /// Units per second with every core of this machine busy on them and nothing else.
    pub(crate) fn ceiling_per_second(&self) -> f64 {
        cores() as f64 / (self.cpu.as_secs_f64() / self.units.max(1) as f64)
    }
}

/// This machine's cores, for the rows that name them.
pub(crate) fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// The `info` row of `spent` for benchmark `bench`: CPU per `what` (spent by `who`), how
/// busy that kept the cores, and the rate all of them busy on it would reach.
pub(crate) fn row(bench: &str, spent: PerUnit, what: &str, who: &str) -> Row {
    let figure = format!(
        "CPU per {what}: {:.3} ms ({who}), the {} cores {:.0} % busy; all of them busy on it would reach {:.0}/s",
        spent.ms(),
        cores(),
        spent.busy() * 100.0,
        spent.ceiling_per_second()
    );
    Row::info(bench, figure, Some(spent.ms()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ceiling_is_the_cores_over_the_cpu_a_unit_costs_and_busy_is_cpu_over_wall() {
        let spent = PerUnit {
            cpu: Duration::from_secs(2),
            units: 4_000,
            wall: Duration::from_secs(2),
        };
        assert!((spent.ms() - 0.5).abs() < 1e-9);
        let ceiling = spent.ceiling_per_second();
        assert!(
            (ceiling - 2_000.0 * cores() as f64).abs() < 1e-6,
            "{ceiling}"
        );
        assert!((spent.busy() - 1.0 / cores() as f64).abs() < 1e-9);
    }
}
