//! Boot tests for IPC between real user processes: each test boots one
//! `init` test (see `qemu/user/src/bin/init.rs`) in which init and the
//! programs it spawns talk through one kipc mechanism, then checks the
//! verdict (PASS means every check in every process held and nothing leaked)
//! and the serial lines that prove the exchange really happened.

mod common;

use kipc_qemu::{Profile, RunOptions, RunReport};

/// Boots `scenario` and requires a pass, showing the serial log otherwise.
fn expect_pass(scenario: &str) -> RunReport {
    common::expect_pass_with(Profile::Debug, &RunOptions::scenario(scenario))
}

/// Requires every one of `lines` somewhere in the serial log.
fn expect_lines(report: &RunReport, lines: &[&str]) {
    for line in lines {
        assert!(
            report.serial.contains(line),
            "missing {line:?}:\n{}",
            report.serial
        );
    }
}

/// The text between `before` and `after` on the first serial line that has
/// both, in that order.
fn field<'a>(report: &'a RunReport, before: &str, after: &str) -> &'a str {
    report
        .serial
        .lines()
        .find_map(|line| {
            let rest = &line[line.find(before)? + before.len()..];
            Some(&rest[..rest.find(after)?])
        })
        .unwrap_or_else(|| panic!("no line with {before:?} ... {after:?}:\n{}", report.serial))
}

fn count(report: &RunReport, text: &str) -> usize {
    report.serial.matches(text).count()
}

/// The stream pattern of `pipe-writer` (the same function as in init).
fn pattern(index: usize) -> u8 {
    ((index as u32).wrapping_mul(2_654_435_761) >> 24) as u8
}

/// FNV-1a 64 of the first `length` bytes of the stream, computed here,
/// independently of the guest.
fn stream_checksum(length: usize) -> u64 {
    (0..length).fold(0xcbf2_9ce4_8422_2325, |hash, index| {
        (hash ^ u64::from(pattern(index))).wrapping_mul(0x0100_0000_01b3)
    })
}

#[test]
fn pipe_carries_messages_and_a_multi_page_stream_between_processes() {
    let report = expect_pass("pipe");
    expect_lines(
        &report,
        &[
            "init: pipe: 4 small messages arrived byte for byte",
            "end of file after the writer exited",
        ],
    );
    let bytes: usize = field(&report, "init: pipe: ", " bytes byte-exact")
        .parse()
        .expect("stream size");
    let ring: usize = field(&report, "byte-exact through a ", "-byte ring")
        .parse()
        .expect("ring size");
    assert!(
        bytes >= 4 * ring,
        "a {bytes}-byte stream through a {ring}-byte ring"
    );
    let checksum = format!("checksum {:#018x}", stream_checksum(bytes));
    assert_eq!(
        count(&report, &checksum),
        2,
        "writer and reader should both report {checksum}:\n{}",
        report.serial
    );
    // Both sides had to wait: the writer for room, the reader for data.
    let writer_waits: u32 = field(&report, "waited for room ", " times")
        .parse()
        .expect("writer waits");
    let reader_waits: u32 = field(&report, "reader found the pipe empty ", " times")
        .parse()
        .expect("reader waits");
    assert!(writer_waits > 0 && reader_waits > 0, "{}", report.serial);
}

#[test]
fn fifo_is_opened_by_name_from_two_programs() {
    let report = expect_pass("fifo");
    expect_lines(
        &report,
        &[
            "init: fifo: 3 lines and a 40000-byte block arrived intact by name; end of file",
            "init: fifo: write open without a reader gave NoReader; after unlink the name is gone",
        ],
    );
    // Each blocking open waited for the other side (both sleep 50 ms first).
    let writer_waited: u64 = field(&report, "fifo-peer: open for writing waited ", " ms")
        .parse()
        .expect("writer wait");
    let reader_waited: u64 = field(&report, "init: fifo: read open waited ", " ms")
        .parse()
        .expect("reader wait");
    assert!(
        writer_waited >= 20 && reader_waited >= 20,
        "{}",
        report.serial
    );
}

#[test]
fn message_queue_priority_order_is_seen_from_another_process() {
    let report = expect_pass("mqueue");
    expect_lines(
        &report,
        &[
            "mq-peer: sent 6 messages at priorities 1 5 3 5 1 3",
            "init: mqueue: received in order 5:high-a 5:high-b 3:mid-a 3:mid-b 1:low-a 1:low-b",
            "init: mqueue: empty queue gave WouldBlock, then TimedOut after",
            "mq-peer: received 48 messages in order",
            "init: mqueue: streamed 48 messages through an 8-deep queue",
        ],
    );
    // The sender had exited before init received anything.
    let sent = report.serial.find("mq-peer: sent 6").unwrap();
    let received = report
        .serial
        .find("init: mqueue: received in order")
        .unwrap();
    assert!(sent < received, "{}", report.serial);
}

#[test]
fn mailbox_badges_calls_with_handles_and_a_blocking_stream() {
    let report = expect_pass("mailbox");
    expect_lines(
        &report,
        &[
            "init: mailbox: badges 0xa1 and 0xb2 told the two senders apart",
            "init: mailbox: a call carried a pipe end the server wrote through; a reply carried a region the server filled",
            "mail-peer: sent 40 messages, waited for room",
            "init: mailbox: 40 messages of 200 bytes arrived in order through an 8-deep mailbox",
        ],
    );
}

#[test]
fn shared_region_semaphores_read_only_mapping_and_page_loan() {
    let report = expect_pass("shm");
    expect_lines(
        &report,
        &[
            "init: shm: counter 200 after 100 alternating turns each; mutex-guarded counter 200, no update lost; the turns passed with semaphore_post_wait",
            "init: shm: the read-only viewer was killed by its write; the region survives with 200",
            "shm-peer: borrowed 2 pages at",
            "8192 bytes verified in place",
            "ledger: 0 payload bytes copied, 2 pages loaned, 2 pages mapped",
        ],
    );
    // The viewer was killed by a write fault at the address it had mapped.
    let address = field(&report, "shm-peer: read-only mapping at ", " sees 200");
    expect_lines(
        &report,
        &[&format!(
            "(shm-peer) killed: #PF page fault at address {address} "
        )],
    );
    assert!(
        !report.serial.contains("wrote through a read-only mapping"),
        "{}",
        report.serial
    );
}

#[test]
fn notification_bits_or_together_and_clear() {
    let report = expect_pass("notification");
    expect_lines(
        &report,
        &[
            "init: notification: 0x1, 0x4, 0x1, 0x10 arrived as 0x15, then cleared",
            "init: notification: a blocked wait woke with 0x80 after",
            "a deadline gave TimedOut",
        ],
    );
}

#[test]
fn a_dying_peer_gives_the_other_side_the_right_error() {
    let report = expect_pass("peer-death");
    expect_lines(
        &report,
        &[
            "init: peer-death: pipe writer killed after 1000 bytes; reader got them all, then end of file",
            "init: peer-death: pipe reader killed; the writer, blocked after",
            "got BrokenPipe",
            "init: peer-death: mailbox receiver killed; the sender, blocked after 5 messages, got PeerClosed",
            "dying-peer: server: got a call, holding its reply handle",
            "init: peer-death: callers got PeerClosed when the server died holding the call or exited before answering",
        ],
    );
    assert_eq!(
        count(
            &report,
            "(dying-peer) killed: #PF page fault at address 0x0 "
        ),
        4,
        "{}",
        report.serial
    );
}

#[test]
fn exhausting_the_handle_table_is_a_recoverable_error() {
    let report = expect_pass("handle-exhaustion");
    assert_eq!(
        count(
            &report,
            "handle-hog: 64 handles held; every create, mint and handle-carrying receive says OutOfHandles"
        ),
        2,
        "{}",
        report.serial
    );
    assert_eq!(
        count(
            &report,
            "handle-hog: closed all 64 handles; creating works again"
        ),
        2,
        "{}",
        report.serial
    );
    expect_lines(
        &report,
        &["init: handle-exhaustion: both hogs hit OutOfHandles"],
    );
}

#[test]
fn reading_another_process_address_kills_only_the_reader() {
    let report = expect_pass("isolation");
    let address = field(&report, "init: isolation: snoop will read ", ",");
    expect_lines(
        &report,
        &[
            &format!("(snoop) killed: #PF page fault at address {address} "),
            "hello bystander: round 5",
        ],
    );
    assert!(
        !report.serial.contains("from another process's memory"),
        "{}",
        report.serial
    );
}

#[test]
fn a_server_answers_and_waits_in_one_reply_receive_call() {
    let report = expect_pass("reply-receive");
    expect_lines(
        &report,
        &[
            "rpc-server: served 21 calls with reply_receive",
            "init: reply-receive: 21 calls answered by reply_receive, one carried a semaphore the server posted",
        ],
    );
}

#[test]
fn short_messages_travel_in_registers_with_the_same_checks_and_counts() {
    let report = expect_pass("short-messages");
    expect_lines(
        &report,
        &[
            "rpc-server: served 12 short calls in the message registers",
            "a reply carried a semaphore; a 100-byte call was kept for a plain receive; 65 bytes refused; ",
            " of the first 20 messages handed over on the fast path",
        ],
    );
    let moved: u64 = field(
        &report,
        "init: short-messages: 12 calls in the message registers, ",
        " bytes moved",
    )
    .parse()
    .expect("a byte count");
    assert_eq!(
        moved,
        2 * (17 + 1 + 5 + 8 + 13 + 32 + 63 + 64 + 40) + 7 + 108 + 7
    );
}

#[test]
fn loaned_file_pages_cannot_change_the_file() {
    let report = expect_pass("file-loan");
    expect_lines(
        &report,
        &[
            "shm-peer: read-only mapping at",
            "init: file-loan: 3 file pages loaned on read-only; a borrower's write was refused (PermissionDenied) then killed it, another exited holding its mapping; the file's checksum never changed",
            "kernel: no leaks",
        ],
    );
}
