//! `cargo run -- signals`: signals between real processes. Handlers run and
//! return, nest under their masks, and every blocking call is interrupted as
//! the interruption table says (docs/mechanisms.md): `Interrupted` before
//! progress, the count after it, restarted under RESTART. Then: an alarm
//! wakes a paused process, SIGPIPE kills a writer (its reader sees end of
//! file), SIGCHLD reaches a parent, SIGTERM and SIGKILL go through process
//! handles only (SIGKILL frees everything a blocked process held), forged
//! `signal_return` frames are killed, and the ledger counts every frame.
//!
//! The same program plays the children, chosen by its argument
//! (`role NAME`).

#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU64, Ordering::SeqCst};

use kipc::ErrorCode;
use kipc_user::ipc::{self, Deadline, Handle};
use kipc_user::signal::{self, NODEFER, RESTART, Signal, SignalFrame, SignalSet};
use kipc_user::{ProcessId, SysResult, check, number, println, spawn, wait};

kipc_user::entry!(main);

/// Times each signal's handler ran in this process.
static CAUGHT: [AtomicU64; 32] = [const { AtomicU64::new(0) }; 32];
/// Handlers entered in this process (each pushed one frame).
static HANDLED: AtomicU64 = AtomicU64::new(0);
/// Events of the nesting test, one hex digit each, oldest first.
static LOG: AtomicU64 = AtomicU64::new(0);

fn log(event: u64) {
    let _ = LOG.fetch_update(SeqCst, SeqCst, |log| Some(log << 4 | event));
}

extern "C" fn count(signal: u64, _: &mut SignalFrame) {
    HANDLED.fetch_add(1, SeqCst);
    CAUGHT[signal as usize & 31].fetch_add(1, SeqCst);
}

fn caught(signal: Signal) -> u64 {
    CAUGHT[signal.number() as usize].load(SeqCst)
}

fn main(start: kipc_user::Start) -> u32 {
    let mut words = start.argument.split(' ');
    if words.next() == Some("role") {
        return role(words.next().unwrap_or(""), start.handles);
    }
    println!("signals: POSIX-style signals between real processes");
    handlers_run_and_return();
    nested_handlers_follow_their_masks();
    interruption_table();
    restart_table();
    alarm_wakes_a_paused_process();
    sigpipe_kills_the_writer_and_its_reader_sees_eof();
    sigchld_reaches_the_parent();
    signals_travel_only_through_process_handles();
    sigkill_frees_everything_a_blocked_process_held();
    forged_frames_are_killed();
    the_ledger_counts_every_frame();
    println!("signals: every check held");
    0
}

fn with_code(result: SysResult<impl Sized>, code: ErrorCode) -> bool {
    matches!(result, Err(error) if error == code)
}

// ------------------------------------------------------------------ handlers

fn handlers_run_and_return() {
    signal::catch(Signal::SIGUSR1, count, 0).expect("sigaction");
    let before = caught(Signal::SIGUSR1);
    // Live values across the handler: it must come back to exactly here.
    let mut sum = 0u64;
    for round in 1..=3u64 {
        signal::raise(Signal::SIGUSR1).expect("raise");
        sum += round;
    }
    check!(
        caught(Signal::SIGUSR1) == before + 3 && sum == 6,
        "handler ran {} times, sum {sum}",
        caught(Signal::SIGUSR1) - before
    );
    println!("signals: a SIGUSR1 handler ran in user mode and returned, 3 times out of 3");
}

extern "C" fn outer(_: u64, _: &mut SignalFrame) {
    HANDLED.fetch_add(1, SeqCst);
    log(1);
    let _ = signal::raise(Signal::SIGUSR2);
    log(2);
}

extern "C" fn inner(_: u64, _: &mut SignalFrame) {
    HANDLED.fetch_add(1, SeqCst);
    log(3);
}

fn nested_handlers_follow_their_masks() {
    let usr2 = SignalSet::of(Signal::SIGUSR2);
    signal::set_action(
        Signal::SIGUSR2,
        signal::Action::Handler(inner, SignalSet::EMPTY, 0),
    )
    .expect("sigaction");
    // SIGUSR2 in SIGUSR1's mask: it waits until the outer handler returns.
    signal::set_action(Signal::SIGUSR1, signal::Action::Handler(outer, usr2, 0))
        .expect("sigaction");
    LOG.store(0, SeqCst);
    signal::raise(Signal::SIGUSR1).expect("raise");
    let masked = LOG.load(SeqCst);
    // Without it, SIGUSR2's handler runs inside SIGUSR1's.
    signal::set_action(
        Signal::SIGUSR1,
        signal::Action::Handler(outer, SignalSet::EMPTY, NODEFER),
    )
    .expect("sigaction");
    LOG.store(0, SeqCst);
    signal::raise(Signal::SIGUSR1).expect("raise");
    let nested = LOG.load(SeqCst);
    check!(
        masked == 0x123 && nested == 0x132,
        "order {masked:#x} (masked) and {nested:#x} (nested)"
    );
    let mask = signal::block(SignalSet::EMPTY).expect("mask");
    check!(mask.is_empty(), "the mask came back empty: {mask:?}");
    println!(
        "signals: nested handlers: masked order 1,2,3 (after the outer handler), unmasked 1,3,2 (inside it); the mask is restored"
    );
    signal::catch(Signal::SIGUSR1, count, 0).expect("sigaction");
}

// ------------------------------------------------------------------ the interruption table

/// Runs `call` with an alarm 20 ms away and requires `expected` from it, and
/// the SIGALRM handler to have run.
fn under_alarm<T: core::fmt::Debug>(
    name: &str,
    expected: &str,
    check: impl FnOnce(&SysResult<T>) -> bool,
    call: impl FnOnce() -> SysResult<T>,
) {
    let before = caught(Signal::SIGALRM);
    signal::alarm_ms(20).expect("alarm");
    let result = call();
    let _ = signal::alarm_ms(0);
    check!(check(&result), "{name}: wanted {expected}, got {result:?}");
    check!(
        caught(Signal::SIGALRM) == before + 1,
        "{name}: the SIGALRM handler ran {} times",
        caught(Signal::SIGALRM) - before
    );
    println!("signals:   {name:<38} -> {expected}");
}

/// Writes up to `bytes` into an empty `pipe` without waiting, `data` at a
/// time; returns how many went in.
fn fill(pipe: Handle, data: &[u8], bytes: usize) -> usize {
    let mut done = 0;
    while done < bytes {
        let piece = &data[..data.len().min(bytes - done)];
        match ipc::write(pipe, piece, Deadline::NoWait) {
            Ok(count) => done += count,
            Err(error) if error == ErrorCode::WouldBlock => break,
            Err(error) => {
                check!(false, "fill: {error:?}");
                break;
            }
        }
    }
    done
}

/// Reads `pipe` without waiting until it is empty; returns how much it held.
fn drain_all(pipe: Handle, buffer: &mut [u8]) -> usize {
    let mut done = 0;
    loop {
        match ipc::read(pipe, buffer, Deadline::NoWait) {
            Ok(count) => done += count,
            Err(error) if error == ErrorCode::WouldBlock => return done,
            Err(error) => {
                check!(false, "drain: {error:?}");
                return done;
            }
        }
    }
}

fn interrupted<T>(result: &SysResult<T>) -> bool {
    matches!(result, Err(error) if *error == ErrorCode::Interrupted)
}

fn interruption_table() {
    signal::catch(Signal::SIGALRM, count, 0).expect("sigaction");
    println!("signals: each blocking call, SIGALRM arriving while it waits (no RESTART):");
    let mut buffer = [0u8; 64];

    let (read, write) = ipc::pipe().expect("pipe");
    under_alarm("pipe read, empty", "Interrupted", interrupted, || {
        ipc::read(read, &mut buffer, Deadline::Forever)
    });
    // Nothing was lost: data written now is all there.
    ipc::write(write, b"after", Deadline::Forever).expect("write");
    let got = ipc::read(read, &mut buffer, Deadline::NoWait);
    check!(
        got == Ok(5) && &buffer[..5] == b"after",
        "read after: {got:?}"
    );

    // Fill the pipe, then a 10-byte (atomic) write moves nothing.
    let capacity = ipc::pipe_capacity().expect("pipe capacity");
    let big = [0x5au8; 20 * 1024];
    let mut drain = [0u8; 20 * 1024];
    let filled = fill(write, &big, capacity);
    check!(filled == capacity, "filled {filled} of {capacity}");
    under_alarm(
        "pipe write, full, nothing moved",
        "Interrupted",
        interrupted,
        || ipc::write(write, &big[..10], Deadline::Forever),
    );
    let drained = drain_all(read, &mut drain);
    check!(drained == filled, "drained {drained}, filled {filled}");
    // A write of more than the room left: the room fills, then it waits.
    let room = (16 * 1024).min(capacity / 2);
    let before = fill(write, &big, capacity - room);
    let expected = kipc_user::format_line!("Ok({room}): the bytes that fitted");
    under_alarm(
        "pipe write, part moved",
        expected.as_str(),
        |result| *result == Ok(room),
        || ipc::write(write, &big[..room + 4096], Deadline::Forever),
    );
    let drained = drain_all(read, &mut drain);
    check!(
        drained == before + room,
        "exactly those bytes: {drained} of {}",
        before + room
    );
    check!(
        with_code(
            ipc::read(read, &mut drain, Deadline::NoWait),
            ErrorCode::WouldBlock
        ),
        "no more arrives later"
    );
    ipc::close(read).expect("close");
    ipc::close(write).expect("close");

    ipc::fifo_create("/sig-fifo").expect("fifo");
    under_alarm("fifo open, no writer", "Interrupted", interrupted, || {
        ipc::fifo_open("/sig-fifo", false, Deadline::Forever)
    });
    ipc::fifo_unlink("/sig-fifo").expect("unlink");

    let queue = ipc::mqueue_create("/sig-queue", 1, 16).expect("queue");
    under_alarm("queue receive, empty", "Interrupted", interrupted, || {
        ipc::mqueue_receive(queue, &mut buffer, Deadline::Forever)
    });
    ipc::mqueue_send(queue, b"one", 1, Deadline::NoWait).expect("send");
    under_alarm("queue send, full", "Interrupted", interrupted, || {
        ipc::mqueue_send(queue, b"two", 1, Deadline::Forever)
    });
    let got = ipc::mqueue_receive(queue, &mut buffer, Deadline::NoWait);
    check!(
        got == Ok((3, 1)) && &buffer[..3] == b"one",
        "the queue holds only one: {got:?}"
    );
    check!(
        with_code(
            ipc::mqueue_receive(queue, &mut buffer, Deadline::NoWait),
            ErrorCode::WouldBlock
        ),
        "the interrupted send was not taken"
    );
    ipc::close(queue).expect("close");
    ipc::mqueue_unlink("/sig-queue").expect("unlink");

    let mailbox = ipc::mailbox_create().expect("mailbox");
    under_alarm("mailbox receive, empty", "Interrupted", interrupted, || {
        ipc::receive(mailbox, &mut buffer, Deadline::Forever)
    });
    for _ in 0..kipc_abi::BUFFERED_PER_SENDER {
        ipc::send(mailbox, b"queued", &[], Deadline::NoWait).expect("send");
    }
    under_alarm("mailbox send, full", "Interrupted", interrupted, || {
        ipc::send(mailbox, b"extra", &[], Deadline::Forever)
    });
    let mut reply = [0u8; 16];
    under_alarm(
        "mailbox call, full (before sending)",
        "Interrupted",
        interrupted,
        || ipc::call_mailbox(mailbox, b"call", &[], &mut reply),
    );
    let mut messages = 0;
    while let Ok(message) = ipc::receive(mailbox, &mut buffer, Deadline::NoWait) {
        check!(
            message.reply.is_none(),
            "an interrupted call's message was queued"
        );
        check!(
            &buffer[..message.length] == b"queued",
            "an interrupted send arrived"
        );
        messages += 1;
    }
    check!(
        messages == kipc_abi::BUFFERED_PER_SENDER,
        "{messages} messages queued"
    );
    call_interrupted_after_the_server_took_it(mailbox);
    ipc::close(mailbox).expect("close");

    let semaphore = ipc::semaphore_create(0).expect("semaphore");
    under_alarm("semaphore wait", "Interrupted", interrupted, || {
        ipc::semaphore_wait(semaphore, Deadline::Forever)
    });
    ipc::semaphore_post(semaphore).expect("post");
    check!(
        ipc::semaphore_wait(semaphore, Deadline::NoWait).is_ok(),
        "the unit posted afterwards is there"
    );
    ipc::close(semaphore).expect("close");
    let notification = ipc::notification_create().expect("notification");
    under_alarm("notification wait", "Interrupted", interrupted, || {
        ipc::notification_wait(notification, Deadline::Forever)
    });
    ipc::close(notification).expect("close");

    under_alarm(
        "sleep (the kernel's own wait)",
        "Interrupted",
        interrupted,
        || kipc_user::call(number::SLEEP, [10_000, 0, 0, 0, 0, 0]),
    );
    let child = start_role("linger", &[]);
    under_alarm("wait for a child", "Interrupted", interrupted, || {
        wait(child)
    });
    let code = wait(child);
    check!(code == Ok(0), "the child still reports its exit: {code:?}");
}

/// A call whose message the server took: interrupted, never restarted; the
/// server's reply fails with PeerClosed.
fn call_interrupted_after_the_server_took_it(mailbox: Handle) {
    let go = ipc::semaphore_create(0).expect("semaphore");
    let server = start_role("hold-call", &[mailbox, go]);
    // Give the server time to wait in receive, so the call is handed over.
    kipc_user::sleep_ms(10);
    let mut reply = [0u8; 16];
    signal::catch(Signal::SIGALRM, count, RESTART).expect("sigaction");
    under_alarm(
        "mailbox call, server took it",
        "Interrupted (even under RESTART)",
        interrupted,
        || ipc::call_mailbox(mailbox, b"call", &[], &mut reply),
    );
    signal::catch(Signal::SIGALRM, count, 0).expect("sigaction");
    ipc::semaphore_post(go).expect("post");
    let code = wait(server);
    check!(
        code == Ok(0),
        "the server's late reply did not fail with PeerClosed: exit {code:?}"
    );
    println!(
        "signals:   (the server's late reply failed with PeerClosed, and it kept its handles)"
    );
    ipc::close(go).expect("close");
}

fn restart_table() {
    signal::catch(Signal::SIGALRM, count, RESTART).expect("sigaction");
    println!("signals: under RESTART the same calls run again after the handler:");
    let mut buffer = [0u8; 64];

    let (read, write) = ipc::pipe().expect("pipe");
    let writer = start_role("write-later", &[write]);
    ipc::close(write).expect("close");
    under_alarm(
        "pipe read, restarted",
        "Ok(5): the data sent after the signal",
        |result| *result == Ok(5),
        || ipc::read(read, &mut buffer, Deadline::Forever),
    );
    check!(
        &buffer[..5] == b"later",
        "restarted read got {:?}",
        &buffer[..5]
    );
    check!(wait(writer) == Ok(0), "writer");
    ipc::close(read).expect("close");

    let queue = ipc::mqueue_create("/sig-restart", 2, 16).expect("queue");
    let sender = start_role("queue-later", &[queue]);
    under_alarm(
        "queue receive, restarted",
        "Ok: the message sent after the signal",
        |result| matches!(result, Ok((5, 3))),
        || ipc::mqueue_receive(queue, &mut buffer, Deadline::Forever),
    );
    check!(wait(sender) == Ok(0), "sender");
    ipc::close(queue).expect("close");
    ipc::mqueue_unlink("/sig-restart").expect("unlink");

    let semaphore = ipc::semaphore_create(0).expect("semaphore");
    let poster = start_role("post-later", &[semaphore]);
    under_alarm(
        "semaphore wait, restarted",
        "Ok: the unit posted after the signal",
        |result| result.is_ok(),
        || ipc::semaphore_wait(semaphore, Deadline::Forever),
    );
    check!(wait(poster) == Ok(0), "poster");
    ipc::close(semaphore).expect("close");

    // A post-and-wait parks as the wait it has become: run again after the
    // handler, it waits without posting a second unit.
    let (given, turn) = (
        ipc::semaphore_create(0).expect("semaphore"),
        ipc::semaphore_create(0).expect("semaphore"),
    );
    let poster = start_role("post-later", &[turn]);
    under_alarm(
        "semaphore post and wait, restarted",
        "Ok: posted once, then the unit posted after the signal",
        |result| result.is_ok(),
        || ipc::semaphore_post_wait(given, turn, Deadline::Forever),
    );
    check!(
        ipc::semaphore_wait(given, Deadline::NoWait).is_ok()
            && with_code(
                ipc::semaphore_wait(given, Deadline::NoWait),
                ErrorCode::WouldBlock
            ),
        "the restarted post-and-wait posted more than once"
    );
    check!(wait(poster) == Ok(0), "poster");

    // The same on the fast path: the peer already waits for the unit, which
    // goes straight to it, and the caller parks as the wait.
    let peer = start_role("take-then-post", &[given, turn]);
    kipc_user::sleep_ms(10);
    let before = kipc_user::kernel_stats().expect("stats").fast_path_handoffs;
    under_alarm(
        "semaphore post and wait (fast path), restarted",
        "Ok: posted once, then the unit posted after the signal",
        |result| result.is_ok(),
        || ipc::semaphore_post_wait(given, turn, Deadline::Forever),
    );
    let handoffs = kipc_user::kernel_stats().expect("stats").fast_path_handoffs - before;
    check!(
        handoffs == 1,
        "{handoffs} fast path hand-offs for one post-and-wait"
    );
    check!(
        with_code(
            ipc::semaphore_wait(given, Deadline::NoWait),
            ErrorCode::WouldBlock
        ),
        "the restarted post-and-wait posted more than once"
    );
    check!(wait(peer) == Ok(0), "peer");
    ipc::close(given).expect("close");
    ipc::close(turn).expect("close");
    signal::catch(Signal::SIGALRM, count, 0).expect("sigaction");
}

fn alarm_wakes_a_paused_process() {
    let before = caught(Signal::SIGALRM);
    let started = kipc_user::uptime_ms();
    signal::alarm_ms(30).expect("alarm");
    let error = signal::pause();
    let waited = kipc_user::uptime_ms() - started;
    check!(
        error == ErrorCode::Interrupted,
        "pause ended with {error:?}"
    );
    check!(
        caught(Signal::SIGALRM) == before + 1 && waited >= 20,
        "after {waited} ms, the handler ran {} times",
        caught(Signal::SIGALRM) - before
    );
    println!(
        "signals: an alarm woke a paused process after {waited} ms; pause returned Interrupted"
    );
}

// ------------------------------------------------------------------ SIGPIPE, SIGCHLD

fn sigpipe_kills_the_writer_and_its_reader_sees_eof() {
    let (out_read, out_write) = ipc::pipe().expect("pipe");
    let (log_read, log_write) = ipc::pipe().expect("pipe");
    // Nobody will ever read `out`.
    ipc::close(out_read).expect("close");
    let writer = start_role("sigpipe", &[out_write, log_write]);
    ipc::close(out_write).expect("close");
    ipc::close(log_write).expect("close");
    let mut buffer = [0u8; 32];
    let first = ipc::read(log_read, &mut buffer, Deadline::Forever);
    check!(
        first == Ok(6) && &buffer[..6] == b"before",
        "the writer's log: {first:?}"
    );
    let end = ipc::read(log_read, &mut buffer, Deadline::Forever);
    check!(end == Ok(0), "its reader sees end of file: {end:?}");
    let code = wait(writer);
    check!(
        code == Ok(signal::exit_code(Signal::SIGPIPE)),
        "the writer ended with {code:?}"
    );
    ipc::close(log_read).expect("close");
    // Ignored, the same write only fails with BrokenPipe.
    signal::set_action(Signal::SIGPIPE, signal::Action::Ignore).expect("sigaction");
    let (read, write) = ipc::pipe().expect("pipe");
    ipc::close(read).expect("close");
    let result = ipc::write(write, b"lost", Deadline::Forever);
    check!(
        with_code(result, ErrorCode::BrokenPipe),
        "ignored SIGPIPE: {result:?}"
    );
    ipc::close(write).expect("close");
    signal::set_action(Signal::SIGPIPE, signal::Action::Default).expect("sigaction");
    println!(
        "signals: SIGPIPE killed a writer with no reader (exit {:#x}); the reader of its other pipe saw end of file; ignored, the write fails with BrokenPipe",
        signal::exit_code(Signal::SIGPIPE)
    );
}

fn sigchld_reaches_the_parent() {
    signal::catch(Signal::SIGCHLD, count, 0).expect("sigaction");
    // Block it first, so it cannot arrive before we wait for it.
    let old = signal::block(SignalSet::of(Signal::SIGCHLD)).expect("mask");
    let child = start_role("exit-7", &[]);
    let error = signal::suspend(old);
    check!(error == ErrorCode::Interrupted, "suspend: {error:?}");
    check!(
        caught(Signal::SIGCHLD) == 1,
        "SIGCHLD handled {} times",
        caught(Signal::SIGCHLD)
    );
    let mask = signal::block(SignalSet::EMPTY).expect("mask");
    check!(
        mask.contains(Signal::SIGCHLD),
        "suspend restored the mask: {mask:?}"
    );
    signal::set_mask(old).expect("mask");
    check!(wait(child) == Ok(7), "exit code");
    signal::set_action(Signal::SIGCHLD, signal::Action::Default).expect("sigaction");
    println!(
        "signals: SIGCHLD reached the parent, suspended with it unblocked; wait() then gave the exit code"
    );
}

// ------------------------------------------------------------------ authority

fn signals_travel_only_through_process_handles() {
    let me = kipc_user::process_id();
    let child = start_role("no-authority", &[]);
    let code = wait(child);
    check!(
        code == Ok(0),
        "a child without a handle could signal its parent: {code:?}"
    );
    // A parent gets a handle to its child, and SIGTERM's default ends it.
    let (read, write) = ipc::pipe().expect("pipe");
    let blocked = start_role("block-read", &[read, write]);
    ipc::close(read).expect("close");
    kipc_user::sleep_ms(10);
    let handle = signal::process_handle(blocked).expect("process handle");
    let rights = ipc::info(handle).expect("info").1;
    check!(
        rights.contains(kipc::Rights::SIGNAL),
        "a process handle has SIGNAL: {rights:?}"
    );
    signal::send(handle, Signal::SIGTERM).expect("send");
    let code = wait(blocked);
    check!(
        code == Ok(signal::exit_code(Signal::SIGTERM)),
        "SIGTERM through the handle: {code:?}"
    );
    let gone = signal::send(handle, Signal::SIGTERM);
    check!(
        with_code(gone, ErrorCode::NoSuchProcess),
        "the handle after exit: {gone:?}"
    );
    ipc::close(handle).expect("close");
    ipc::close(write).expect("close");
    let stranger = signal::process_handle(ProcessId(me.0 ^ 1));
    check!(
        with_code(stranger, ErrorCode::NoSuchProcess),
        "a handle to a process that is not a child: {stranger:?}"
    );
    println!(
        "signals: SIGTERM went through a process handle; a child without one could not signal its parent"
    );
}

fn sigkill_frees_everything_a_blocked_process_held() {
    let before = kipc_user::resource_usage().expect("usage");
    let ready = ipc::semaphore_create(0).expect("semaphore");
    let child = start_role("hoard-and-block", &[ready]);
    ipc::semaphore_wait(ready, Deadline::Forever).expect("ready");
    let during = kipc_user::resource_usage().expect("usage");
    check!(
        during.regions > before.regions && during.pipes > before.pipes,
        "the child holds a region and a pipe"
    );
    let handle = signal::process_handle(child).expect("process handle");
    // It blocks and ignores everything it can.
    signal::send(handle, Signal::SIGTERM).expect("send");
    signal::send(handle, Signal::SIGINT).expect("send");
    kipc_user::sleep_ms(10);
    let still = kipc_user::resource_usage().expect("usage");
    check!(
        still.processes == during.processes,
        "SIGTERM and SIGINT were held back"
    );
    signal::send(handle, Signal::SIGKILL).expect("send");
    let code = wait(child);
    check!(
        code == Ok(signal::exit_code(Signal::SIGKILL)),
        "SIGKILL: {code:?}"
    );
    ipc::close(handle).expect("close");
    ipc::close(ready).expect("close");
    let after = kipc_user::resource_usage().expect("usage");
    check!(
        after == before,
        "SIGKILL left something behind:\n before {before:?}\n after  {after:?}"
    );
    println!(
        "signals: SIGKILL ended a process blocked in a read with every other signal blocked or ignored; its region, pipe and frames all came back"
    );
}

fn forged_frames_are_killed() {
    for role in ["forge-rip", "forge-flags", "forge-outside"] {
        let child = start_role(role, &[]);
        let code = wait(child);
        check!(
            code == Ok(kipc_abi::EXIT_KILLED),
            "{role}: the forger survived: {code:?}"
        );
    }
    println!(
        "signals: forged signal_return frames (a kernel rip, IOPL 3, no handler running) killed their process, never the kernel"
    );
}

fn the_ledger_counts_every_frame() {
    let me = kipc_user::process_id();
    let ledger = ipc::ledger_of(me.0).expect("ledger");
    let signal_column = kipc::Mechanism::Signal as usize;
    let pushed = ledger.operations[signal_column][1];
    let pushed_bytes = ledger.bytes[signal_column][1];
    let returned = ledger.operations[signal_column][0];
    let handled = HANDLED.load(SeqCst);
    let frame = 8 + size_of::<SignalFrame>() as u64;
    check!(
        pushed == handled && pushed_bytes == handled * frame && returned == handled,
        "ledger: {pushed} frames ({pushed_bytes} bytes) out, {returned} back; {handled} handlers ran"
    );
    println!(
        "signals: the ledger counted {pushed} frames of {frame} bytes pushed and {returned} read back: one per handler run"
    );
}

// ------------------------------------------------------------------ children

fn start_role(name: &str, handles: &[Handle]) -> ProcessId {
    let argument = kipc_user::Line::format(format_args!("role {name}"));
    let mut raw = [0u32; 8];
    for (slot, handle) in raw.iter_mut().zip(handles) {
        *slot = handle.0;
    }
    match spawn("signals", argument.as_str(), &raw[..handles.len()]) {
        Ok(child) => child,
        Err(error) => {
            check!(false, "spawn {name}: {error:?}");
            unreachable!()
        }
    }
}

extern "C" fn to_kernel(_: u64, frame: &mut SignalFrame) {
    frame.rip = 0xffff_8000_0000_1000;
}

extern "C" fn to_iopl3(_: u64, frame: &mut SignalFrame) {
    frame.rflags |= 3 << 12;
}

fn role(name: &str, handles: &[u32]) -> u32 {
    let handle = |index: usize| Handle(handles.get(index).copied().unwrap_or(0));
    let mut buffer = [0u8; 64];
    match name {
        "linger" => {
            kipc_user::sleep_ms(60);
            0
        }
        "hold-call" => {
            let Ok(message) = ipc::receive(handle(0), &mut buffer, Deadline::Forever) else {
                return 1;
            };
            let _ = ipc::semaphore_wait(handle(1), Deadline::Forever);
            let Some(reply) = message.reply else {
                return 2;
            };
            let gift = ipc::semaphore_create(0).expect("semaphore");
            let answer = ipc::reply(reply, b"late", &[gift]);
            // PeerClosed, and the handle it tried to send is still its own.
            let kept = ipc::info(gift).is_ok();
            if with_code(answer, ErrorCode::PeerClosed) && kept {
                0
            } else {
                3
            }
        }
        "write-later" => {
            kipc_user::sleep_ms(60);
            ipc::write(handle(0), b"later", Deadline::Forever).map_or(1, |_| 0)
        }
        "queue-later" => {
            kipc_user::sleep_ms(60);
            ipc::mqueue_send(handle(0), b"later", 3, Deadline::Forever).map_or(1, |_| 0)
        }
        "post-later" => {
            kipc_user::sleep_ms(60);
            ipc::semaphore_post(handle(0)).map_or(1, |_| 0)
        }
        "take-then-post" => {
            if ipc::semaphore_wait(handle(0), Deadline::Forever).is_err() {
                return 1;
            }
            kipc_user::sleep_ms(60);
            ipc::semaphore_post(handle(1)).map_or(2, |_| 0)
        }
        "sigpipe" => {
            let _ = ipc::write(handle(1), b"before", Deadline::Forever);
            let _ = ipc::write(handle(0), b"into nowhere", Deadline::Forever);
            // Only reached if SIGPIPE did not end us.
            2
        }
        "exit-7" => 7,
        "no-authority" => {
            let parent_guess = ipc::Handle(1);
            let sent = signal::send(parent_guess, Signal::SIGKILL);
            let forged = signal::process_handle(ProcessId(1));
            if sent.is_err() && with_code(forged, ErrorCode::NoSuchProcess) {
                0
            } else {
                1
            }
        }
        "block-read" => {
            let _ = ipc::close(handle(1));
            let _ = ipc::read(handle(0), &mut buffer, Deadline::Forever);
            1
        }
        "hoard-and-block" => {
            let region = ipc::region_create(4).expect("region");
            let _ = ipc::region_map(region, None, true).expect("map");
            let (read, _write) = ipc::pipe().expect("pipe");
            signal::set_mask(SignalSet::ALL).expect("mask");
            signal::set_action(Signal::SIGTERM, signal::Action::Ignore).expect("ignore");
            ipc::semaphore_post(handle(0)).expect("post");
            let _ = ipc::read(read, &mut buffer, Deadline::Forever);
            1
        }
        "forge-rip" => {
            signal::catch(Signal::SIGUSR1, to_kernel, 0).expect("sigaction");
            let _ = signal::raise(Signal::SIGUSR1);
            3
        }
        "forge-flags" => {
            signal::catch(Signal::SIGUSR1, to_iopl3, 0).expect("sigaction");
            let _ = signal::raise(Signal::SIGUSR1);
            3
        }
        "forge-outside" => {
            let _ = kipc_user::call(number::SIGNAL_RETURN, [0; 6]);
            3
        }
        _ => 99,
    }
}
