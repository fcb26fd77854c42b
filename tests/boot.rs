//! Boot tests: build the demo kernel once, then boot it under QEMU once per
//! scenario (picked on the kernel command line). At most one QEMU per core
//! runs at a time; each boot has a timeout.
//!
//! The `fault-*` scenarios go wrong on purpose. Their tests pass only if the
//! harness reports them as failures with the right reason — this is how the
//! harness itself is tested.

mod common;

use std::time::Duration;

use kipc_qemu::{Profile, RunOptions, RunReport, Verdict};

fn boot_with(options: RunOptions) -> RunReport {
    common::boot_with(Profile::Debug, &options)
}

fn boot(scenario: &str) -> RunReport {
    boot_with(RunOptions::scenario(scenario))
}

/// Boots `scenario` and requires a pass, showing the serial log otherwise.
fn expect_pass(scenario: &str) -> RunReport {
    common::expect_pass_with(Profile::Debug, &RunOptions::scenario(scenario))
}

/// Boots a must-fail scenario and requires the harness to report a failure
/// whose reason contains every one of `reasons`.
fn expect_failure(report: RunReport, reasons: &[&str]) {
    match &report.verdict {
        Verdict::Pass => panic!(
            "a must-fail scenario was reported as passing:\n{}",
            report.serial
        ),
        Verdict::Fail(reason) => {
            for expected in reasons {
                assert!(
                    reason.contains(expected),
                    "failure reason {reason:?} does not mention {expected:?}\n--- serial log ---\n{}",
                    report.serial
                );
            }
        }
    }
}

#[test]
fn boots_to_the_banner_quickly() {
    let report = expect_pass("boot");
    assert!(
        report.serial.contains("kipc 0.1.0 - IPC microkernel demo"),
        "{}",
        report.serial
    );
    assert_eq!(report.exit_status, Some(kipc_qemu::EXIT_SUCCESS));
}

#[test]
fn demo_passes() {
    let report = expect_pass("demo");
    assert!(report.serial.contains("module: init"), "{}", report.serial);
}

#[test]
fn timer_interrupts_arrive() {
    let report = expect_pass("timer");
    assert!(report.serial.contains("timer: "), "{}", report.serial);
}

#[test]
fn frames_allocate_map_and_free() {
    expect_pass("memory");
}

#[test]
fn boot_archive_holds_every_user_program() {
    let report = expect_pass("modules");
    let programs = kipc_qemu::user_programs();
    assert!(programs.iter().any(|name| name == "init"), "{programs:?}");
    for program in &programs {
        assert!(
            report.serial.contains(&format!("module: {program} (")),
            "{}",
            report.serial
        );
    }
}

#[test]
fn command_line_reaches_the_kernel() {
    let mut options = RunOptions::scenario("boot");
    options.append.push("marker=4242".into());
    let report = boot_with(options);
    assert!(report.passed(), "{:?}\n{}", report.verdict, report.serial);
    assert!(
        report.serial.contains("scenario=boot marker=4242"),
        "{}",
        report.serial
    );
}

#[test]
fn harness_reports_a_kernel_page_fault() {
    let report = boot("fault-page");
    assert_eq!(report.exit_status, Some(kipc_qemu::EXIT_FAILURE));
    assert!(
        report.serial.contains("cr2 0xffffd000dead0000"),
        "{}",
        report.serial
    );
    expect_failure(
        report,
        &["fault-page", "#PF page fault", "cr2 0xffffd000dead0000"],
    );
}

#[test]
fn harness_reports_a_kernel_panic() {
    let report = boot("fault-panic");
    expect_failure(report, &["kernel panic", "deliberate panic"]);
}

#[test]
fn harness_reports_a_double_fault() {
    let report = boot("fault-double");
    expect_failure(report, &["#DF double fault"]);
}

#[test]
fn harness_reports_a_triple_fault_despite_exit_status_zero() {
    let report = boot("fault-triple");
    assert_eq!(report.exit_status, Some(0));
    expect_failure(report, &["status 0", "triple fault"]);
}

#[test]
fn harness_times_out_a_hung_kernel() {
    let mut options = RunOptions::scenario("fault-hang");
    options.timeout = Some(Duration::from_secs(3));
    let report = boot_with(options);
    assert!(report.timed_out);
    expect_failure(report, &["timed out after 3.0 s"]);
}

#[test]
fn a_deadlock_among_processes_is_reported_not_a_silent_hang() {
    let report = boot("self-deadlock");
    assert!(!report.timed_out, "the kernel idled until the timeout");
    let serial = report.serial.clone();
    for line in [
        "kernel: deadlock: every process waits and nothing can wake one:",
        "kernel:   process 0 (init) BlockedIpc, in system call 36",
    ] {
        assert!(serial.contains(line), "missing {line:?}:\n{serial}");
    }
    expect_failure(report, &["FAIL self-deadlock: deadlock"]);
}

#[test]
fn harness_requires_the_pass_line_not_just_the_exit_code() {
    let report = boot("fault-no-verdict");
    assert_eq!(report.exit_status, Some(kipc_qemu::EXIT_SUCCESS));
    expect_failure(
        report,
        &["never printed `KIPC-RESULT: PASS fault-no-verdict`"],
    );
}

#[test]
fn unknown_scenario_goes_to_init_which_lists_its_tests() {
    let report = boot("no-such-scenario");
    assert!(
        report.serial.contains("kernel scenarios:"),
        "{}",
        report.serial
    );
    assert!(
        report
            .serial
            .contains("init: unknown test \"no-such-scenario\"; init knows:"),
        "{}",
        report.serial
    );
    expect_failure(report, &["init exited with code 2"]);
}

#[test]
fn two_programs_run_side_by_side() {
    let report = expect_pass("processes");
    assert!(
        report.serial.contains("hello one: round 2"),
        "{}",
        report.serial
    );
    assert!(
        report.serial.contains("hello two: round 2"),
        "{}",
        report.serial
    );
    assert!(report.serial.contains("no leaks"), "{}", report.serial);
}

#[test]
fn a_faulting_process_dies_alone() {
    let report = expect_pass("isolation");
    for line in [
        "killed: #PF page fault at address 0xffffffff80100000",
        "killed: #PF page fault at address 0x0 ",
        "killed: #GP general protection fault",
        "killed: #UD invalid opcode",
        "killed: #DE divide error",
        "hello bystander: round 5",
    ] {
        assert!(
            report.serial.contains(line),
            "missing {line:?}:\n{}",
            report.serial
        );
    }
}

#[test]
fn bad_system_call_arguments_get_errors() {
    expect_pass("bad-arguments");
}

#[test]
fn every_object_kind_works_through_system_calls() {
    expect_pass("smoke");
}
