//! Backoff: doubling, the cap, reset, no overflow.

use std::time::Duration;

use foreman_types::Backoff;

const SECOND: Duration = Duration::from_secs(1);

#[test]
fn waits_double_from_the_first_up_to_the_cap() {
    let mut backoff = Backoff::new(Duration::from_millis(50), SECOND);
    let waits: Vec<u128> = (0..7).map(|_| backoff.next_delay().as_millis()).collect();
    assert_eq!(waits, [50, 100, 200, 400, 800, 1000, 1000]);
}

#[test]
fn reset_starts_over_and_delay_ignores_the_count() {
    let mut backoff = Backoff::new(SECOND, Duration::from_secs(30));
    backoff.next_delay();
    backoff.next_delay();
    assert_eq!(backoff.delay(0), SECOND);
    backoff.reset();
    assert_eq!(backoff.next_delay(), SECOND);
}

#[test]
fn huge_retry_counts_saturate_instead_of_overflowing() {
    let uncapped = Backoff::new(SECOND, Duration::MAX);
    assert_eq!(uncapped.delay(4), Duration::from_secs(16));
    assert_eq!(uncapped.delay(31), SECOND * (1 << 31));
    assert_eq!(uncapped.delay(32), SECOND * u32::MAX);
    assert_eq!(uncapped.delay(u32::MAX), SECOND * u32::MAX);
    let capped = Backoff::new(SECOND, Duration::from_secs(30));
    assert_eq!(capped.delay(u32::MAX), Duration::from_secs(30));
}
