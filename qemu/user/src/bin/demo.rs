//! `demo`: what `cargo run` shows. A short tour of every kipc mechanism
//! between separate processes, then the file-transfer experiment.
//!
//! Each tour stop starts a second process (this same program, in the `peer`
//! role) and prints one line saying what crossed between the two.

#![no_std]
#![no_main]

use kipc::Rights;
use kipc_user::ipc::{self, Deadline, Handle};
use kipc_user::shared::{Access, Shared};
use kipc_user::{check, println, spawn, wait};

kipc_user::entry!(main);

fn main(start: kipc_user::Start) -> u32 {
    let mut words = start.argument.split_ascii_whitespace();
    if words.next() == Some("peer") {
        return peer(words.next().unwrap_or(""), start.handles);
    }
    println!("demo: a tour of kipc, each stop between two separate processes");
    pipe_stop();
    mailbox_stop();
    queue_stop();
    region_stop();
    notification_stop();
    signal_stop();
    println!();
    let experiment = spawn("experiment", start.argument, &[]).expect("spawn experiment");
    check!(wait(experiment) == Ok(0), "the experiment failed");
    0
}

fn start_peer(role: &str, handles: &[Handle]) -> kipc_user::ProcessId {
    let argument = kipc_user::format_line!("peer {role}");
    let raw: heapless::Vec<u32, 4> = handles.iter().map(|handle| handle.0).collect();
    spawn("demo", argument.as_str(), &raw).expect("spawn peer")
}

fn pipe_stop() {
    let (read, write) = ipc::pipe().expect("pipe");
    let peer = start_peer("pipe", &[write]);
    ipc::close(write).expect("close write end");
    let mut buffer = [0u8; 64];
    let length = ipc::read_full(read, &mut buffer).expect("read");
    ipc::close(read).expect("close read end");
    check!(wait(peer) == Ok(0), "pipe peer");
    let text = core::str::from_utf8(&buffer[..length]).unwrap_or("?");
    println!(
        "  pipe:         the peer wrote {length} bytes and closed its end; we read {text:?}, then end of file"
    );
}

fn mailbox_stop() {
    let mailbox = ipc::mailbox_create().expect("mailbox");
    let badged = ipc::mailbox_mint(mailbox, Rights::WRITE | Rights::TRANSFER, 42).expect("mint");
    let peer = start_peer("mailbox", &[badged]);
    ipc::close(badged).expect("close badged copy");
    let mut request = [0u8; 32];
    let message = ipc::receive(mailbox, &mut request, Deadline::Forever).expect("receive call");
    let reply = message.reply.expect("a call carries a reply handle");
    let (read, write) = ipc::pipe().expect("pipe");
    ipc::write_all(write, b"sent through the pipe we handed over").expect("pipe write");
    ipc::close(write).expect("close");
    ipc::reply(reply, b"here is a pipe", &[read]).expect("reply");
    check!(wait(peer) == Ok(0), "mailbox peer");
    ipc::close(mailbox).expect("close mailbox");
    let asked = core::str::from_utf8(&request[..message.length]).unwrap_or("?");
    println!(
        "  mailbox:      the peer (badge {}) called with {asked:?}; the reply carried a pipe handle it read from",
        message.badge
    );
}

fn queue_stop() {
    let queue = ipc::mqueue_create("demo-queue", 8, 64).expect("queue");
    for (text, priority) in [(&b"low"[..], 1u8), (b"high", 9), (b"middle", 5)] {
        ipc::mqueue_send(queue, text, priority, Deadline::NoWait).expect("send");
    }
    let peer = start_peer("queue", &[]);
    check!(wait(peer) == Ok(0), "queue peer: priorities out of order");
    ipc::mqueue_unlink("demo-queue").expect("unlink");
    ipc::close(queue).expect("close queue");
    println!(
        "  mqueue:       sent low(1), high(9), middle(5); the peer, opening the queue by name, got high, middle, low"
    );
}

fn region_stop() {
    let region = ipc::region_create(1).expect("region");
    let lock = ipc::semaphore_create(1).expect("semaphore");
    let shared = Shared::map(region, Access::ReadWrite).expect("map");
    let peer = start_peer("region", &[region, lock]);
    add_under_lock(&shared, lock, 1000);
    check!(wait(peer) == Ok(0), "region peer");
    let total = shared.word(0);
    check!(total == 2000, "shared counter is {total}, not 2000");
    shared.unmap().expect("unmap");
    ipc::close(region).expect("close region");
    ipc::close(lock).expect("close semaphore");
    println!(
        "  shm:          both processes added 1000 to one counter in a shared page, taking turns by semaphore: {total}"
    );
}

/// Adds 1 to word 0 of `shared` `times` times, each read-modify-write
/// under the semaphore `lock` (the other process does the same).
fn add_under_lock(shared: &Shared, lock: Handle, times: u32) {
    for _ in 0..times {
        ipc::semaphore_wait(lock, Deadline::Forever).expect("lock");
        shared.set_word(0, shared.word(0) + 1);
        ipc::semaphore_post(lock).expect("unlock");
    }
}

fn notification_stop() {
    let notification = ipc::notification_create().expect("notification");
    let peer = start_peer("notification", &[notification]);
    check!(wait(peer) == Ok(0), "notification peer");
    let bits = ipc::notification_wait(notification, Deadline::NoWait).expect("bits");
    ipc::close(notification).expect("close");
    check!(bits == 0b101, "bits {bits:#b}");
    println!(
        "  notification: the peer signalled 0b001 and then 0b100; one wait returned both: {bits:#05b}"
    );
}

fn signal_stop() {
    use kipc_user::signal::{self, Signal};
    let (quiet_read, quiet_write) = ipc::pipe().expect("pipe");
    let (report_read, report_write) = ipc::pipe().expect("pipe");
    let peer = start_peer("signal", &[quiet_read, report_write]);
    ipc::close(quiet_read).expect("close");
    ipc::close(report_write).expect("close");
    // Until the peer waits in its read (the only kipc wait there is).
    while kipc_user::resource_usage().map_or(0, |usage| usage.waiters) == 0 {
        kipc_user::sleep_ms(1);
    }
    let handle = signal::process_handle(peer).expect("a handle to our child");
    signal::send(handle, Signal::SIGUSR1).expect("send SIGUSR1");
    let mut report = [0u8; 96];
    let length = ipc::read_full(report_read, &mut report).expect("report");
    check!(wait(peer) == Ok(0), "signal peer");
    for handle in [handle, quiet_write, report_read] {
        ipc::close(handle).expect("close");
    }
    let text = core::str::from_utf8(&report[..length]).unwrap_or("?");
    println!(
        "  signal:       SIGUSR1 through a process handle ran the peer's handler in user mode; {text}"
    );
}

static HANDLED: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

extern "C" fn on_signal(_: u64, frame: &mut kipc_user::signal::SignalFrame) {
    // The frame holds the interrupted context: where the read will resume.
    HANDLED.store(frame.rip, core::sync::atomic::Ordering::Relaxed);
}

fn peer(role: &str, handles: &'static [u32]) -> u32 {
    let handle = |index: usize| Handle(handles[index]);
    match role {
        "pipe" => {
            ipc::write_all(handle(0), b"hello through a pipe").expect("write");
        }
        "mailbox" => {
            let mut reply = [0u8; 32];
            let message =
                ipc::call_mailbox(handle(0), b"may I have a pipe?", &[], &mut reply).expect("call");
            check!(&reply[..message.length] == b"here is a pipe", "reply text");
            check!(
                message.handle_count == 1,
                "the reply carried {} handles",
                message.handle_count
            );
            let mut buffer = [0u8; 64];
            let length = ipc::read_full(message.handles[0], &mut buffer).expect("read");
            check!(
                &buffer[..length] == b"sent through the pipe we handed over",
                "pipe contents"
            );
        }
        "queue" => {
            let queue = ipc::mqueue_open("demo-queue").expect("open by name");
            let mut buffer = [0u8; 64];
            for expected in [&b"high"[..], b"middle", b"low"] {
                let (length, _) =
                    ipc::mqueue_receive(queue, &mut buffer, Deadline::NoWait).expect("receive");
                check!(&buffer[..length] == expected, "priority order");
            }
        }
        "region" => {
            let shared = Shared::map(handle(0), Access::ReadWrite).expect("map");
            add_under_lock(&shared, handle(1), 1000);
            shared.unmap().expect("unmap");
        }
        "notification" => {
            ipc::notification_signal(handle(0), 0b001).expect("signal");
            ipc::notification_signal(handle(0), 0b100).expect("signal");
        }
        "signal" => {
            use kipc_user::signal::{self, Signal};
            signal::catch(Signal::SIGUSR1, on_signal, 0).expect("catch SIGUSR1");
            let mut buffer = [0u8; 8];
            let result = ipc::read(handle(0), &mut buffer, Deadline::Forever);
            let resumed = HANDLED.load(core::sync::atomic::Ordering::Relaxed);
            check!(resumed != 0, "the handler did not run");
            check!(
                matches!(result, Err(error) if error == kipc::ErrorCode::Interrupted),
                "the read returned {result:?}"
            );
            let report = kipc_user::format_line!(
                "its blocked read then returned Interrupted (the frame saved rip {resumed:#x})"
            );
            ipc::write_all(handle(1), report.as_bytes()).expect("report");
        }
        _ => return 2,
    }
    0
}
