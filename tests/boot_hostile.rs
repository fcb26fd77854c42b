//! Hostile user space under QEMU: the system-call fuzzer (`fuzz`, two fixed
//! seeds, a bounded number of calls, workers killed at random moments) and
//! fault injection with a rights sample and exhaustion (`chaos`). Each must
//! end with the kernel's verdict PASS: no panic or kernel fault, every
//! answer a defined error or a success, and no leak.
//!
//! A longer fuzz run is a command (see README): `cargo run -- --release
//! fuzz --append "seed=1 calls=1000000" --timeout 0`.

mod common;

use std::time::Duration;

use kipc_qemu::{Profile, RunReport};

/// Boots `scenario` with extra command-line words and requires a pass.
fn expect_pass(scenario: &str, words: &[&str]) -> RunReport {
    let options = common::options(scenario, words, Duration::from_secs(120));
    common::expect_pass_with(Profile::Debug, &options)
}

fn fuzz(seed: u64, calls: u64) {
    let seed_word = format!("seed={seed}");
    let calls_word = format!("calls={calls}");
    let report = expect_pass("fuzz", &[&seed_word, &calls_word]);
    let serial = &report.serial;
    assert!(
        serial.contains(&format!("fuzz: seed {seed}, {calls} calls, 3 workers")),
        "{serial}"
    );
    let clean = format!("fuzz: {calls} calls ran clean (");
    let line = serial
        .lines()
        .find(|line| line.starts_with(&clean))
        .unwrap_or_else(|| panic!("no {clean:?} line:\n{serial}"));
    let killed: u64 = line
        .split('(')
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|number| number.parse().ok())
        .unwrap_or_else(|| panic!("no kill count in {line:?}"));
    assert!(
        serial.matches("(fuzz) killed by its parent").count() as u64 >= killed,
        "{serial}"
    );
    assert!(serial.contains("kernel: no leaks"), "{serial}");
    assert!(!serial.contains("CHECK FAILED"), "{serial}");
}

#[test]
fn fuzzer_first_seed_runs_clean() {
    fuzz(7, 3000);
}

#[test]
fn fuzzer_second_seed_runs_clean() {
    fuzz(20_240_611, 3000);
}

#[test]
fn fault_injection_rights_and_exhaustion() {
    let report = expect_pass("chaos", &["seed=11"]);
    let serial = &report.serial;
    for line in [
        "chaos: seed 11",
        "chaos: mailbox call: the caller got PeerClosed when the server died",
        "chaos: pipe: writer killed -> data intact then end of file; reader killed -> BrokenPipe",
        "chaos: queue: receiver got each message once, in order, then TimedOut",
        "chaos: region: survives a killed mapper",
        "chaos: page loan: ",
        "read-only mapping writer killed, region intact",
        "-> OutOfHandles; works again after a close",
        "quota reached at 8 mailboxes -> QuotaExceeded",
        "queue full -> WouldBlock, pipe full at 65536 bytes -> WouldBlock",
        "chaos: all transfers, rights and exhaustion checks passed",
        "kernel: no leaks",
    ] {
        assert!(serial.contains(line), "missing {line:?}:\n{serial}");
    }
}

#[test]
fn killing_a_child_leaves_the_parent_running() {
    let report = expect_pass("hostile-kill", &[]);
    assert!(
        report
            .serial
            .contains("hostile-kill: the parent survived killing its child"),
        "{}",
        report.serial
    );
}

#[test]
fn mailbox_handle_cycles_do_not_outlive_their_process() {
    let report = expect_pass("hostile-cycle", &[]);
    assert!(
        report.serial.contains("hostile-cycle: move-self: no leak"),
        "{}",
        report.serial
    );
}

#[test]
fn a_hog_at_every_quota_cannot_starve_a_process_started_after_it() {
    let report = expect_pass("quotas", &[]);
    let serial = &report.serial;
    for line in [
        // Half of every 16-slot table, 32 of 64 mappings, 4 of the inbox's 8 slots.
        "quota-hog: holding 8 mailboxes, 8 pipes, 8 semaphores, 8 notifications, 8 queues, 8 FIFOs, 8 regions, 32 mappings, 4 messages in init's inbox; every further one refused",
        "quota-polite: started after the hog, it created one object of every kind, mapped a region, used a pipe and sent to init",
        "init: quotas: the inbox held 4 messages from the hog and 1 from the process started after it",
        "kernel: no leaks",
    ] {
        assert!(serial.contains(line), "missing {line:?}:\n{serial}");
    }
}

#[test]
fn running_out_of_physical_frames_is_an_error_that_leaks_nothing() {
    // 40 MiB: the debug boot archive and kernel leave about 2,800 frames.
    let mut options = common::options("out-of-frames", &[], Duration::from_secs(60));
    options.memory_mib = 40;
    let report = common::expect_pass_with(Profile::Debug, &options);
    for line in [
        "a 64-page region failed with OutOfFrames and took none; after",
        "ballast files went, it worked",
        "kernel: no leaks",
    ] {
        assert!(
            report.serial.contains(line),
            "missing {line:?}:\n{}",
            report.serial
        );
    }
}

#[test]
fn too_little_guest_memory_is_refused_with_a_clear_message() {
    let artifacts = common::artifacts(Profile::Debug);
    let mut options = common::options("boot", &[], Duration::from_secs(10));
    options.memory_mib = 8;
    let error =
        kipc_qemu::run(artifacts, &options).expect_err("8 MiB cannot hold the boot archive");
    assert!(error.to_string().contains("use --memory"), "{error}");
}
