//! The same user scenarios with the kernel and programs built in release
//! mode: optimisation must not change behaviour (and release builds have no
//! overflow checks, so a wrap that a debug build would catch as a panic must
//! not turn into silent corruption either).

mod common;

use std::time::Duration;

use kipc_qemu::Profile;

fn expect_pass(scenario: &str, append: &[&str]) {
    let options = common::options(scenario, append, Duration::from_secs(120));
    let report = common::expect_pass_with(Profile::Release, &options);
    assert!(
        report.serial.contains("(release build)"),
        "not a release kernel"
    );
}

#[test]
fn release_processes_and_isolation() {
    for scenario in ["processes", "isolation", "bad-arguments", "smoke"] {
        expect_pass(scenario, &[]);
    }
}

#[test]
fn release_every_mechanism_between_processes() {
    for scenario in [
        "pipe",
        "fifo",
        "mqueue",
        "mailbox",
        "shm",
        "notification",
        "peer-death",
        "handle-exhaustion",
        "reply-receive",
        "short-messages",
    ] {
        expect_pass(scenario, &[]);
    }
}

#[test]
fn release_experiment_fuzz_and_chaos() {
    expect_pass("experiment", &["size_kib=512"]);
    expect_pass("fuzz", &["seed=7", "calls=3000"]);
    expect_pass("chaos", &["seed=11"]);
    expect_pass("hostile-cycle", &[]);
}
