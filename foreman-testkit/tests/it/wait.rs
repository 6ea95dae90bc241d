use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use foreman_testkit::{eventually, temp_db, wait_until};

#[tokio::test]
async fn wait_until_returns_true_once_the_condition_holds() {
    let calls = AtomicUsize::new(0);

    let held = wait_until(Duration::from_secs(5), || {
        let n = calls.fetch_add(1, Ordering::SeqCst);
        async move { n >= 3 }
    })
    .await;

    assert!(held);
    assert_eq!(calls.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn wait_until_returns_false_at_the_deadline() {
    let held = wait_until(Duration::from_millis(30), || async { false }).await;

    assert!(!held);
}

#[tokio::test]
#[should_panic(expected = "timed out after 20ms waiting for the impossible")]
async fn eventually_panics_with_what_it_waited_for() {
    eventually(Duration::from_millis(20), "the impossible", || async {
        false
    })
    .await;
}

#[test]
fn temp_db_gives_a_fresh_path_in_a_directory_that_is_removed_on_drop() {
    let (dir, path) = temp_db();
    let (_other, other_path) = temp_db();

    assert!(path.starts_with(dir.path()));
    assert!(!path.exists());
    assert_ne!(path, other_path);
    let kept = dir.path().to_owned();
    drop(dir);
    assert!(!kept.exists());
}
