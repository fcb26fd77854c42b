//! Signals between real processes under QEMU: the `signals` program (see
//! `qemu/user/src/bin/signals.rs`) walks the interruption table with alarms
//! and child processes, and checks handlers, nesting, SIGPIPE, SIGCHLD,
//! process handles, SIGKILL on a blocked process and forged frames. The
//! kernel's verdict adds that nothing leaked. These checks read its lines.

mod common;

use kipc_qemu::{Profile, RunOptions};

#[test]
fn signals_interrupt_every_blocking_call_and_handlers_run_in_user_mode() {
    let report = common::expect_pass_with(Profile::Debug, &RunOptions::scenario("signals"));
    let serial = &report.serial;
    for line in [
        "signals: a SIGUSR1 handler ran in user mode and returned, 3 times out of 3",
        "signals: nested handlers: masked order 1,2,3",
        "pipe read, empty                       -> Interrupted",
        "pipe write, full, nothing moved        -> Interrupted",
        "pipe write, part moved                 -> Ok(16384): the bytes that fitted",
        "fifo open, no writer                   -> Interrupted",
        "queue receive, empty                   -> Interrupted",
        "queue send, full                       -> Interrupted",
        "mailbox receive, empty                 -> Interrupted",
        "mailbox send, full                     -> Interrupted",
        "mailbox call, full (before sending)    -> Interrupted",
        "mailbox call, server took it           -> Interrupted (even under RESTART)",
        "the server's late reply failed with PeerClosed",
        "semaphore wait                         -> Interrupted",
        "notification wait                      -> Interrupted",
        "sleep (the kernel's own wait)          -> Interrupted",
        "wait for a child                       -> Interrupted",
        "pipe read, restarted                   -> Ok(5)",
        "queue receive, restarted               -> Ok",
        "semaphore wait, restarted              -> Ok",
        "semaphore post and wait, restarted     -> Ok: posted once",
        "semaphore post and wait (fast path), restarted -> Ok: posted once",
        "signals: an alarm woke a paused process",
        "killed: SIGPIPE (its default action)",
        "the reader of its other pipe saw end of file",
        "signals: SIGCHLD reached the parent",
        "killed: SIGTERM (its default action)",
        "killed: SIGKILL (its default action)",
        "killed: forged signal frame: rip outside user memory",
        "killed: forged signal frame: privileged flags",
        "killed: signal_return outside a signal handler",
        "signals: every check held",
        "kernel: no leaks",
    ] {
        assert!(serial.contains(line), "missing {line:?}:\n{serial}");
    }
    // The ledger line: as many frames pushed as read back, 168 bytes each.
    let ledger = serial
        .lines()
        .find(|line| line.contains("the ledger counted"))
        .unwrap_or_else(|| panic!("no ledger line:\n{serial}"));
    let numbers: Vec<u64> = ledger
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|word| word.parse().ok())
        .collect();
    assert!(
        numbers.len() >= 3 && numbers[0] > 10 && numbers[1] == 168 && numbers[2] == numbers[0],
        "{ledger}"
    );
}
