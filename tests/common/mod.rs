//! What every QEMU boot test needs: the kernel and programs built once per
//! test binary and profile, and a boot that must pass, with the serial log
//! shown when it does not.

#![allow(dead_code)] // each test binary uses the part it needs

use std::sync::OnceLock;
use std::time::Duration;

use kipc_qemu::{Artifacts, BuildOutput, Profile, RunOptions, RunReport};

/// The build for `profile`, made on first use.
pub fn artifacts(profile: Profile) -> &'static Artifacts {
    static DEBUG: OnceLock<Artifacts> = OnceLock::new();
    static RELEASE: OnceLock<Artifacts> = OnceLock::new();
    let built = match profile {
        Profile::Debug => &DEBUG,
        Profile::Release => &RELEASE,
    };
    built.get_or_init(|| {
        kipc_qemu::build(profile, BuildOutput::Capture)
            .unwrap_or_else(|error| panic!("{profile:?} build failed: {error}"))
    })
}

/// Options for `scenario` with extra kernel command-line words and a timeout.
pub fn options(scenario: &str, words: &[&str], timeout: Duration) -> RunOptions {
    let mut options = RunOptions::scenario(scenario);
    options.append = words.iter().map(|word| word.to_string()).collect();
    options.timeout = Some(timeout);
    options
}

/// Boots once with `options` (any verdict), logging the outcome.
pub fn boot_with(profile: Profile, options: &RunOptions) -> RunReport {
    let report = kipc_qemu::run(artifacts(profile), options)
        .unwrap_or_else(|error| panic!("could not boot: {error}"));
    eprintln!(
        "{profile:?} scenario {} {:?}: {:?} (exit status {:?}) in {:.2} s",
        options.scenario,
        options.append,
        report.verdict,
        report.exit_status,
        report.duration.as_secs_f64()
    );
    report
}

/// Boots with `options` and requires a pass, showing the serial log otherwise.
pub fn expect_pass_with(profile: Profile, options: &RunOptions) -> RunReport {
    let report = boot_with(profile, options);
    assert!(
        report.passed(),
        "scenario {} {:?} failed: {:?}\n--- serial log ---\n{}\n--- QEMU stderr ---\n{}",
        options.scenario,
        options.append,
        report.verdict,
        report.serial,
        report.qemu_stderr
    );
    report
}
