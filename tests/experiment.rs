//! The file-transfer experiment, booted under QEMU: a file crosses every
//! mechanism between two processes and the kernel's own ledger must show the
//! classic copy counts — computed by the kernel from its copy paths, checked
//! here exactly, per direction.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use kipc_qemu::{Profile, RunReport};

fn boot(scenario: &str, append: &[&str]) -> RunReport {
    let options = common::options(scenario, append, Duration::from_secs(120));
    common::expect_pass_with(Profile::Debug, &options)
}

/// The `EXPERIMENT` lines, by mechanism, as key -> value maps.
fn runs(serial: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    serial
        .lines()
        .filter_map(|line| line.trim().strip_prefix("EXPERIMENT "))
        .map(|rest| {
            let fields: BTreeMap<String, String> = rest
                .split_whitespace()
                .filter_map(|word| word.split_once('='))
                .map(|(key, value)| (key.to_string(), value.to_string()))
                .collect();
            (fields["mechanism"].clone(), fields)
        })
        .collect()
}

fn field(run: &BTreeMap<String, String>, key: &str) -> u64 {
    run[key]
        .parse()
        .unwrap_or_else(|_| panic!("{key} is not a number: {run:?}"))
}

/// Expected bytes copied per byte of payload: (user->kernel, kernel->user,
/// kernel->kernel, user->user).
const EXPECTED: [(&str, [u64; 4]); 7] = [
    ("pipe", [2, 2, 0, 0]),
    ("fifo", [2, 2, 0, 0]),
    ("mqueue", [2, 2, 0, 0]),
    ("mailbox", [2, 2, 0, 0]),
    ("mailbox-direct", [1, 1, 0, 1]),
    ("shm", [1, 1, 0, 0]),
    ("loan", [0, 0, 0, 0]),
];

fn check_copies(serial: &str, size: u64) {
    let runs = runs(serial);
    assert_eq!(
        runs.len(),
        EXPECTED.len(),
        "one run per mechanism:\n{serial}"
    );
    for (mechanism, per_byte) in EXPECTED {
        let run = runs
            .get(mechanism)
            .unwrap_or_else(|| panic!("no run for {mechanism}:\n{serial}"));
        assert_eq!(
            run["verified"], "yes",
            "{mechanism}: output differs from input"
        );
        assert_eq!(field(run, "bytes"), size);
        let copied = [
            field(run, "user_to_kernel"),
            field(run, "kernel_to_user"),
            field(run, "kernel_to_kernel"),
            field(run, "user_to_user"),
        ];
        let expected = per_byte.map(|copies| copies * size);
        assert_eq!(
            copied, expected,
            "{mechanism}: bytes copied (u->k, k->u, k->k, u->u) for a {size}-byte file"
        );
        let total: u64 = copied.iter().sum();
        let copies_per_byte = per_byte.iter().sum::<u64>();
        assert_eq!(
            total,
            copies_per_byte * size,
            "{mechanism}: copies per byte"
        );
    }
    // The zero-copy run moved pages instead: every page lent, loaned and mapped.
    let loan = &runs["loan"];
    let pages = size.div_ceil(4096);
    assert_eq!(field(loan, "pages_loaned"), pages, "{loan:?}");
    assert_eq!(
        field(loan, "pages_mapped"),
        2 * pages,
        "lent by the file, mapped by the client"
    );
    assert_eq!(field(loan, "copy_operations"), 0);
}

#[test]
fn ledger_shows_four_three_two_and_zero_copies_per_byte() {
    let report = boot("experiment", &["size_kib=256"]);
    check_copies(&report.serial, 256 * 1024);
    assert!(
        report
            .serial
            .contains("experiment: 7 mechanisms, every output verified"),
        "{}",
        report.serial
    );
}

#[test]
fn an_odd_sized_file_crosses_every_mechanism_intact() {
    // 100 KiB + 1 byte is not a whole number of pages or chunks: the last
    // chunk is short and the last loaned page is partly used.
    let report = boot("experiment", &["size_bytes=102401"]);
    check_copies(&report.serial, 102_401);
}

#[test]
fn demo_tours_every_mechanism_and_runs_the_experiment() {
    let report = boot("demo", &["size_kib=64"]);
    for line in [
        "pipe:         the peer wrote 20 bytes",
        "mailbox:      the peer (badge 42) called",
        "mqueue:       sent low(1), high(9), middle(5)",
        "shm:          both processes added 1000",
        "notification: the peer signalled 0b001 and then 0b100; one wait returned both: 0b101",
        "signal:       SIGUSR1 through a process handle ran the peer's handler in user mode; its blocked read then returned Interrupted",
        "copies per byte of payload",
    ] {
        assert!(
            report.serial.contains(line),
            "missing {line:?}:\n{}",
            report.serial
        );
    }
    check_copies(&report.serial, 64 * 1024);
}
