//! The same user scenarios with the kernel and programs built in release
//! mode: optimisation must not change behaviour (and release builds have no
//! overflow checks, so a wrap that a debug build would catch as a panic must
//! not turn into silent corruption either).

use std::sync::OnceLock;
use std::time::Duration;

use kipc_qemu::{Artifacts, BuildOutput, Profile, RunOptions};

fn artifacts() -> &'static Artifacts {
    static BUILT: OnceLock<Artifacts> = OnceLock::new();
    BUILT.get_or_init(|| {
        kipc_qemu::build(Profile::Release, BuildOutput::Capture)
            .unwrap_or_else(|error| panic!("release build failed: {error}"))
    })
}

fn expect_pass(scenario: &str, append: &[&str]) {
    let mut options = RunOptions::scenario(scenario);
    options.append = append.iter().map(|word| word.to_string()).collect();
    options.timeout = Some(Duration::from_secs(120));
    let report = kipc_qemu::run(artifacts(), &options).unwrap_or_else(|error| panic!("{error}"));
    eprintln!(
        "release scenario {scenario}: {:?} in {:.2} s",
        report.verdict,
        report.duration.as_secs_f64()
    );
    assert!(
        report.passed(),
        "release scenario {scenario} failed: {:?}\n--- serial log ---\n{}",
        report.verdict,
        report.serial
    );
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
