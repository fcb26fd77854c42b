//! `chaos`: fault injection, a rights sample and exhaustion, all through
//! system calls. As the scenario root it parses `seed=` from the kernel
//! command line; children are copies of itself started as `role NAME`.
//!
//! For each kind of transfer it sets up two children, kills one at a
//! seeded random moment (alternately with `kill` and with SIGKILL through a
//! process handle), and checks the survivor: it unblocks with the
//! documented error, the data it got before the kill is intact and not
//! duplicated, and resource usage returns to the baseline afterwards.
//!
//! Out of frames is not reached here (regions are capped at 64 pages and a
//! process's quota at 8 regions, against some 230 MiB of free frames): init's
//! `out-of-frames` test reaches it by booting with 40 MiB and filling memory
//! with files.

#![no_std]
#![no_main]

use kipc::{ErrorCode, Rights};
use kipc_abi::EXIT_KILLED;
use kipc_user::ipc::{self, Deadline, Handle};
use kipc_user::{ProcessId, check, println, spawn, wait};

kipc_user::entry!(main);

const DEFAULT_SEED: u64 = 0xc4a05;

fn main(start: kipc_user::Start) -> u32 {
    match start.argument.strip_prefix("role ") {
        Some(role) => child(role, start.handles),
        None => root(start.argument),
    }
}

fn word(argument: &str, key: &str) -> Option<u64> {
    argument
        .split_ascii_whitespace()
        .find_map(|token| token.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
}

/// xorshift64*.
struct Random(u64);

impl Random {
    fn below(&mut self, bound: u64) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d) % bound.max(1)
    }
}

fn usage() -> kipc_abi::ResourceUsage {
    kipc_user::resource_usage().expect("resource usage")
}

fn start_child(role: &str, handles: &[Handle]) -> ProcessId {
    let mut raw = [0u32; 8];
    for (slot, handle) in raw.iter_mut().zip(handles) {
        *slot = handle.0;
    }
    let argument = kipc_user::format_line!("role {role}");
    let argument = argument.as_str();
    spawn("chaos", argument, &raw[..handles.len()]).expect("spawn a chaos child")
}

fn close_all(handles: &[Handle]) {
    for handle in handles {
        check!(ipc::close(*handle).is_ok(), "close {handle:?}");
    }
}

/// Kills so far: every other one is a SIGKILL through a process handle, so
/// the signal path (an interrupted wait, then delivery on the way back to
/// user mode) is hit at random moments too.
static KILLS: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);

fn kill_and_reap(victim: ProcessId) {
    use kipc_user::signal::{self, Signal};
    let by_signal = KILLS.fetch_add(1, core::sync::atomic::Ordering::Relaxed) % 2 == 1;
    // The victim may have finished on its own just before: then it is a
    // zombie with exit code 0, which is as good (the kill came too late).
    let sent = if by_signal {
        signal::process_handle(victim).and_then(|handle| {
            let sent = signal::send(handle, Signal::SIGKILL);
            check!(ipc::close(handle).is_ok(), "close the process handle");
            sent
        })
    } else {
        kipc_user::kill(victim)
    };
    let code = match sent {
        Ok(()) => wait(victim).expect("wait for the victim"),
        Err(_) => wait(victim).expect("wait for the finished victim"),
    };
    let killed = if by_signal {
        signal::exit_code(Signal::SIGKILL)
    } else {
        EXIT_KILLED
    };
    check!(code == killed || code == 0, "victim exited with {code}");
}

fn settle(baseline: &kipc_abi::ResourceUsage, what: &str) {
    let mut now = usage();
    for _ in 0..200 {
        if now == *baseline {
            break;
        }
        kipc_user::sleep_ms(5);
        now = usage();
    }
    check!(
        now == *baseline,
        "{what}: resources not back to the baseline: {now:?} vs {baseline:?}"
    );
}

fn root(argument: &str) -> u32 {
    let seed = word(argument, "seed").unwrap_or(DEFAULT_SEED);
    println!("chaos: seed {seed}");
    let mut random = Random(seed ^ 0x9e37_79b9_7f4a_7c15 | 1);
    // The root's own page tables for the mapping area are created on its
    // first mapping and kept until it exits: create them before the baseline.
    let warm = ipc::region_create(2).expect("region");
    let address = ipc::region_map(warm, None, true).expect("map");
    check!(ipc::region_unmap(address).is_ok(), "unmap");
    close_all(&[warm]);
    let baseline = usage();

    // 1. A mailbox call waiting for its reply; the server dies.
    let mailbox = ipc::mailbox_create().expect("mailbox");
    let received = ipc::semaphore_create(0).expect("semaphore");
    let server = start_child("server", &[mailbox, received]);
    let client = start_child("client", &[mailbox]);
    close_all(&[mailbox]);
    check!(
        ipc::semaphore_wait(received, Deadline::after_ms(2000)).is_ok(),
        "the server never got the call"
    );
    kipc_user::sleep_ms(random.below(10));
    kill_and_reap(server);
    check!(wait(client) == Ok(0), "client of a killed server");
    close_all(&[received]);
    settle(&baseline, "mailbox call");
    println!("chaos: mailbox call: the caller got PeerClosed when the server died");

    // 2. A pipe: kill the writer (reader sees the data intact, then end of
    //    file), then kill the reader (blocked writer gets BrokenPipe).
    for victim_is_writer in [true, false] {
        let (read, write) = ipc::pipe().expect("pipe");
        let reader = start_child("pipe-reader", &[read]);
        let writer = start_child("pipe-writer", &[write]);
        close_all(&[read, write]);
        kipc_user::sleep_ms(5 + random.below(20));
        if victim_is_writer {
            kill_and_reap(writer);
            check!(wait(reader) == Ok(0), "reader after its writer was killed");
        } else {
            kill_and_reap(reader);
            check!(wait(writer) == Ok(0), "writer after its reader was killed");
        }
        settle(&baseline, "pipe");
    }
    println!(
        "chaos: pipe: writer killed -> data intact then end of file; reader killed -> BrokenPipe"
    );

    // 3. A message queue: the sender dies; the receiver (waiting with a
    //    deadline) gets every message once, in order, then TimedOut.
    let queue = ipc::mqueue_create("chaos-queue", 16, 64).expect("queue");
    check!(ipc::mqueue_unlink("chaos-queue").is_ok(), "unlink queue");
    let receiver = start_child("queue-receiver", &[queue]);
    let sender = start_child("queue-sender", &[queue]);
    close_all(&[queue]);
    kipc_user::sleep_ms(random.below(15));
    kill_and_reap(sender);
    check!(wait(receiver) == Ok(0), "queue receiver");
    settle(&baseline, "queue");
    println!("chaos: queue: receiver got each message once, in order, then TimedOut");

    // 4. A region mapped in three processes; one of the children dies.
    let region = ipc::region_create(2).expect("region");
    let address = ipc::region_map(region, None, true).expect("map");
    let one = start_child("region-user", &[region]);
    let two = start_child("region-user", &[region]);
    kipc_user::sleep_ms(random.below(10));
    kill_and_reap(one);
    check!(wait(two) == Ok(0), "the surviving region user");
    // SAFETY: the region is mapped read-write at `address` (2 pages).
    let marker = unsafe { core::ptr::read_volatile((address + 4096) as *const u64) };
    check!(
        marker == 0x5afe,
        "the survivor's write is not visible: {marker:#x}"
    );
    check!(ipc::region_unmap(address).is_ok(), "unmap");
    close_all(&[region]);
    settle(&baseline, "region");
    println!("chaos: region: survives a killed mapper; the other two still share it");

    // 5. A page loan in flight: the lender dies before or after sending.
    let mailbox = ipc::mailbox_create().expect("mailbox");
    let borrower = start_child("borrower", &[mailbox]);
    let lender = start_child("lender", &[mailbox]);
    close_all(&[mailbox]);
    kipc_user::sleep_ms(random.below(8));
    kill_and_reap(lender);
    let code = wait(borrower).expect("wait borrower");
    check!(
        code == 0 || code == 2,
        "borrower: {code} (0 = loan intact, 2 = none arrived)"
    );
    settle(&baseline, "page loan");
    println!(
        "chaos: page loan: {}",
        if code == 0 {
            "arrived intact although the lender was killed"
        } else {
            "lender killed before sending; the borrower timed out"
        }
    );

    rights(&baseline);
    exhaustion(&baseline);
    println!("chaos: all transfers, rights and exhaustion checks passed");
    0
}

fn denied<T: core::fmt::Debug>(result: kipc_user::SysResult<T>, what: &str) {
    check!(
        matches!(result, Err(error) if error == ErrorCode::PermissionDenied),
        "{what}: {result:?} instead of PermissionDenied"
    );
}

fn rights(baseline: &kipc_abi::ResourceUsage) {
    let mailbox = ipc::mailbox_create().expect("mailbox");
    let no_write = ipc::duplicate(mailbox, Rights::READ).expect("dup");
    let no_read = ipc::duplicate(mailbox, Rights::WRITE).expect("dup");
    denied(
        ipc::send(no_write, b"x", &[], Deadline::NoWait),
        "send without WRITE",
    );
    let mut buffer = [0u8; 8];
    denied(
        ipc::receive(no_read, &mut buffer, Deadline::NoWait),
        "receive without READ",
    );
    denied(
        ipc::duplicate(no_read, Rights::WRITE),
        "duplicate without DUPLICATE",
    );
    denied(
        ipc::send(mailbox, b"x", &[no_read], Deadline::NoWait),
        "transfer without TRANSFER",
    );
    let (read, write) = ipc::pipe().expect("pipe");
    let read_only_write_end = ipc::duplicate(write, Rights::READ).ok();
    if let Some(handle) = read_only_write_end {
        denied(
            ipc::write(handle, b"x", Deadline::NoWait),
            "pipe write without WRITE",
        );
    }
    let semaphore = ipc::semaphore_create(1).expect("semaphore");
    let no_signal = ipc::duplicate(semaphore, Rights::WAIT).expect("dup");
    let no_wait = ipc::duplicate(semaphore, Rights::SIGNAL).expect("dup");
    denied(ipc::semaphore_post(no_signal), "post without SIGNAL");
    denied(
        ipc::semaphore_wait(no_wait, Deadline::NoWait),
        "wait without WAIT",
    );
    let notification = ipc::notification_create().expect("notification");
    let quiet = ipc::duplicate(notification, Rights::WAIT).expect("dup");
    denied(ipc::notification_signal(quiet, 1), "signal without SIGNAL");
    let region = ipc::region_create(1).expect("region");
    let no_map = ipc::duplicate(region, Rights::WRITE | Rights::TRANSFER).expect("dup");
    let map_only = ipc::duplicate(region, Rights::MAP | Rights::TRANSFER).expect("dup");
    denied(ipc::region_map(no_map, None, false), "map without MAP");
    denied(
        ipc::region_map(map_only, None, true),
        "map read-write without WRITE",
    );
    // A read-only mapping cannot be written: the writer is killed, the
    // region survives with its contents.
    let address = ipc::region_map(region, None, true).expect("map");
    // SAFETY: mapped read-write just above (1 page).
    unsafe { core::ptr::write_volatile(address as *mut u64, 0x600d) };
    let writer = start_child("read-only-writer", &[map_only]);
    check!(
        wait(writer) == Ok(EXIT_KILLED),
        "a write through a read-only mapping did not kill the writer"
    );
    // SAFETY: still mapped.
    let value = unsafe { core::ptr::read_volatile(address as *const u64) };
    check!(value == 0x600d, "region contents changed: {value:#x}");
    check!(ipc::region_unmap(address).is_ok(), "unmap");
    let mut all = [
        mailbox,
        no_write,
        no_read,
        read,
        write,
        semaphore,
        no_signal,
        no_wait,
        notification,
        quiet,
        region,
        no_map,
        map_only,
    ];
    close_all(&all);
    if let Some(handle) = read_only_write_end {
        all[0] = handle;
        close_all(&all[..1]);
    }
    settle(baseline, "rights");
    println!(
        "chaos: rights: send, receive, duplicate, transfer, write, post, wait, signal, map denied without their right; read-only mapping writer killed, region intact"
    );
}

fn exhaustion(baseline: &kipc_abi::ResourceUsage) {
    // Handle table: duplicates until it is full.
    let semaphore = ipc::semaphore_create(0).expect("semaphore");
    let (_, held, _) = ipc::info(semaphore).expect("info");
    let mut copies = [Handle(0); 64];
    let mut count = 0;
    let error = loop {
        match ipc::duplicate(semaphore, held) {
            Ok(handle) if count < copies.len() => {
                copies[count] = handle;
                count += 1;
            }
            Ok(handle) => {
                check!(false, "more than 64 handles in one table ({handle:?})");
            }
            Err(error) => break error,
        }
    };
    check!(
        error == ErrorCode::OutOfHandles,
        "full handle table: {error:?}"
    );
    check!(ipc::close(copies[count - 1]).is_ok(), "close one");
    copies[count - 1] = ipc::duplicate(semaphore, held).expect("retry after closing");
    close_all(&copies[..count]);
    close_all(&[semaphore]);
    println!(
        "chaos: exhaustion: handle table full at {} handles -> OutOfHandles; works again after a close",
        count + 1
    );

    // Object table: mailboxes until none is left.
    let mut mailboxes = [Handle(0); 32];
    let mut count = 0;
    let error = loop {
        match ipc::mailbox_create() {
            Ok(handle) if count < mailboxes.len() => {
                mailboxes[count] = handle;
                count += 1;
            }
            Ok(_) => check!(false, "more than 32 mailboxes"),
            Err(error) => break error,
        }
    };
    // One process stops at its quota (half the table), before the table is full.
    check!(
        error == ErrorCode::QuotaExceeded,
        "mailboxes past the quota: {error:?}"
    );
    check!(ipc::close(mailboxes[count - 1]).is_ok(), "close one");
    mailboxes[count - 1] = ipc::mailbox_create().expect("retry after closing");
    close_all(&mailboxes[..count]);
    println!(
        "chaos: exhaustion: quota reached at {count} mailboxes -> QuotaExceeded; works again after a close"
    );

    // Queue full: non-blocking send.
    let queue = ipc::mqueue_create("chaos-full", 4, 16).expect("queue");
    for index in 0..4u8 {
        ipc::mqueue_send(queue, &[index], 0, Deadline::NoWait).expect("send");
    }
    let result = ipc::mqueue_send(queue, b"x", 0, Deadline::NoWait);
    check!(
        result.err() == Some(ErrorCode::WouldBlock.into()),
        "full queue: {result:?}"
    );
    let mut buffer = [0u8; 16];
    check!(
        ipc::mqueue_receive(queue, &mut buffer, Deadline::NoWait) == Ok((1, 0)) && buffer[0] == 0,
        "first message intact"
    );
    ipc::mqueue_send(queue, b"y", 0, Deadline::NoWait).expect("send after a receive");
    check!(ipc::mqueue_unlink("chaos-full").is_ok(), "unlink");
    close_all(&[queue]);

    // Pipe full: non-blocking write.
    let (read, write) = ipc::pipe().expect("pipe");
    let chunk = [0xa5u8; 1024];
    let mut written = 0;
    let error = loop {
        match ipc::write(write, &chunk, Deadline::NoWait) {
            Ok(count) => written += count,
            Err(error) => break error,
        }
        check!(written <= 1 << 20, "pipe never fills");
    };
    check!(error == ErrorCode::WouldBlock, "full pipe: {error:?}");
    let mut buffer = [0u8; 1024];
    check!(
        ipc::read(read, &mut buffer, Deadline::NoWait) == Ok(1024) && buffer == chunk,
        "read from a full pipe"
    );
    check!(
        ipc::write(write, &chunk, Deadline::NoWait) == Ok(1024),
        "write after a read"
    );
    close_all(&[read, write]);
    settle(baseline, "exhaustion");
    println!(
        "chaos: exhaustion: queue full -> WouldBlock, pipe full at {written} bytes -> WouldBlock; both work again after a receive/read"
    );
    println!("chaos: exhaustion: out of frames is init's out-of-frames test (a 40 MiB boot)");
}

// ------------------------------------------------------------------ children

fn child(role: &str, handles: &[u32]) -> u32 {
    let handle = |index: usize| Handle(handles.get(index).copied().unwrap_or(0));
    match role {
        "server" => {
            let mut buffer = [0u8; 64];
            let message =
                ipc::receive(handle(0), &mut buffer, Deadline::Forever).expect("receive call");
            check!(message.reply.is_some(), "a call carries a reply handle");
            ipc::semaphore_post(handle(1)).expect("post");
            // Never answers: waits to be killed.
            loop {
                kipc_user::sleep_ms(1000);
            }
        }
        "client" => {
            let mut reply = [0u8; 16];
            let result = ipc::call_mailbox(handle(0), b"question", &[], &mut reply);
            check!(
                result.err() == Some(ErrorCode::PeerClosed.into()),
                "call to a killed server: {result:?}"
            );
            0
        }
        "pipe-writer" => {
            // The reader is killed under it: it wants BrokenPipe, not SIGPIPE.
            let quiet = kipc_user::signal::set_action(
                kipc_user::signal::Signal::SIGPIPE,
                kipc_user::signal::Action::Ignore,
            );
            check!(quiet.is_ok(), "ignore SIGPIPE: {quiet:?}");
            let mut block = [0u8; 256];
            let mut sequence = 0u32;
            loop {
                for byte in block.iter_mut() {
                    *byte = (sequence % 251) as u8;
                    sequence = sequence.wrapping_add(1);
                }
                let mut rest = &block[..];
                while !rest.is_empty() {
                    match ipc::write(handle(0), rest, Deadline::Forever) {
                        Ok(count) => rest = &rest[count..],
                        Err(error) => {
                            check!(
                                error == ErrorCode::BrokenPipe,
                                "writer's error after the reader died: {error:?}"
                            );
                            return 0;
                        }
                    }
                }
            }
        }
        "pipe-reader" => {
            let mut buffer = [0u8; 300];
            let mut expected = 0u32;
            loop {
                // Slow: lets the writer fill the pipe and block.
                kipc_user::sleep_ms(2);
                let count = ipc::read(handle(0), &mut buffer, Deadline::Forever).expect("read");
                if count == 0 {
                    check!(expected > 0, "end of file before any data");
                    return 0;
                }
                for &byte in &buffer[..count] {
                    check!(
                        byte == (expected % 251) as u8,
                        "byte {expected} corrupted or duplicated: {byte}"
                    );
                    expected += 1;
                }
            }
        }
        "queue-sender" => {
            for index in 0u32..1000 {
                ipc::mqueue_send(handle(0), &index.to_le_bytes(), 0, Deadline::Forever)
                    .expect("send");
                kipc_user::sleep_ms(1);
            }
            0
        }
        "queue-receiver" => {
            let mut next = 0u32;
            let mut buffer = [0u8; 64];
            loop {
                match ipc::mqueue_receive(handle(0), &mut buffer, Deadline::after_ms(100)) {
                    Ok((4, 0)) => {
                        let index =
                            u32::from_le_bytes([buffer[0], buffer[1], buffer[2], buffer[3]]);
                        check!(index == next, "message {index}, expected {next}");
                        next += 1;
                    }
                    Ok(other) => check!(false, "unexpected message {other:?}"),
                    Err(error) => {
                        check!(
                            error == ErrorCode::TimedOut,
                            "receiver's error after the sender died: {error:?}"
                        );
                        return 0;
                    }
                }
            }
        }
        "region-user" => {
            let address = ipc::region_map(handle(0), None, true).expect("map");
            for round in 0..20u64 {
                // SAFETY: the region is mapped read-write (2 pages).
                unsafe { core::ptr::write_volatile(address as *mut u64, round) };
                kipc_user::sleep_ms(1);
            }
            // SAFETY: as above; the second page.
            unsafe { core::ptr::write_volatile((address + 4096) as *mut u64, 0x5afe) };
            0
        }
        "lender" => {
            // A page of our own memory, filled, then moved out by the loan.
            static mut PAGE: Aligned = Aligned([0; 4096]);
            let page = core::ptr::addr_of_mut!(PAGE) as u64;
            for offset in (0..4096).step_by(8) {
                // SAFETY: PAGE is ours, page-aligned, 4096 bytes.
                unsafe { core::ptr::write_volatile((page + offset) as *mut u64, offset ^ 0x1234) };
            }
            let loan = ipc::pages_loan(page, 1).expect("loan");
            kipc_user::sleep_ms(3);
            ipc::send(handle(0), b"loan", &[loan], Deadline::Forever).expect("send loan");
            loop {
                kipc_user::sleep_ms(1000);
            }
        }
        "borrower" => {
            let mut buffer = [0u8; 8];
            let message = match ipc::receive(handle(0), &mut buffer, Deadline::after_ms(300)) {
                Ok(message) => message,
                Err(error) => {
                    check!(
                        error == ErrorCode::TimedOut || error == ErrorCode::PeerClosed,
                        "borrower: {error:?}"
                    );
                    return 2;
                }
            };
            check!(message.handle_count == 1, "the loan's handle");
            let address = ipc::region_map(message.handles[0], None, false).expect("map loan");
            for offset in (0..4096).step_by(8) {
                // SAFETY: the loan is mapped read-only (1 page).
                let value = unsafe { core::ptr::read_volatile((address + offset) as *const u64) };
                check!(
                    value == offset ^ 0x1234,
                    "loaned page corrupted at {offset}"
                );
            }
            0
        }
        "read-only-writer" => {
            let address = ipc::region_map(handle(0), None, false).expect("map read-only");
            // SAFETY: deliberately wrong: the mapping is read-only, and the
            // kernel must kill this process for the write.
            unsafe { core::ptr::write_volatile(address as *mut u64, 0xbad) };
            3
        }
        other => {
            println!("chaos: unknown role {other:?}");
            4
        }
    }
}

#[repr(C, align(4096))]
struct Aligned([u8; 4096]);
