//! `bench`: the benchmarks behind `cargo run -- bench`.
//!
//! Run under QEMU with `-icount shift=0`, the time-stamp counter counts guest
//! instructions, so every figure here is a deterministic instruction count.
//! The program prints `BENCH ...` lines that the runner turns into a table,
//! a JSON file and an SVG chart:
//!
//! - `BENCH memcpy bytes=B instructions=I`: a guest `memcpy` (the same
//!   `copy_nonoverlapping` the kernel copies with), the physical limit of
//!   every copy-based mechanism;
//! - `BENCH latency mechanism=M size=S round_trips=N instructions=I`: a
//!   message of S bytes there and back between two processes;
//! - throughput: the file-transfer `experiment` at each size, whose
//!   `EXPERIMENT ...` lines carry bytes, copies and instructions.

#![no_std]
#![no_main]

use kipc_user::ipc::{self, Deadline, Handle};
use kipc_user::{check, println, spawn, tsc, wait};

kipc_user::entry!(main);

const SIZES: [usize; 4] = [8, 64, 256, 4096];
const LATENCY_MECHANISMS: [&str; 6] = ["pipe", "fifo", "mqueue", "mailbox", "mailbox-regs", "shm"];
const ROUND_TRIPS: u64 = 200;
const WARM_UP: u64 = 20;
const THROUGHPUT_KIB: [u64; 6] = [4, 16, 64, 256, 1024, 4096];

#[repr(C, align(4096))]
struct Buffers {
    source: [u8; 1 << 20],
    destination: [u8; 1 << 20],
}

static mut BUFFERS: Buffers = Buffers {
    source: [0; 1 << 20],
    destination: [0; 1 << 20],
};

fn main(start: kipc_user::Start) -> u32 {
    let mut words = start.argument.split_ascii_whitespace();
    if words.next() == Some("echo") {
        let mechanism = words.next().unwrap_or("");
        let size: usize = words.next().and_then(|word| word.parse().ok()).unwrap_or(0);
        let count: u64 = words.next().and_then(|word| word.parse().ok()).unwrap_or(0);
        return echo(mechanism, size, count, start.handles);
    }
    // `only=MECHANISM` runs just that mechanism's latency (for profiling),
    // `rounds=N` times, with `size=BYTES` messages (one of `SIZES`; 64 if not).
    let only = start
        .argument
        .split_ascii_whitespace()
        .find_map(|word| word.strip_prefix("only="));
    if only == Some("syscalls") {
        null_syscall();
        return 0;
    }
    if only == Some("breakdown") {
        breakdown();
        return 0;
    }
    if let Some(wanted) = only {
        let rounds = start
            .argument
            .split_ascii_whitespace()
            .find_map(|word| word.strip_prefix("rounds="))
            .and_then(|value| value.parse().ok())
            .unwrap_or(ROUND_TRIPS);
        let size = start
            .argument
            .split_ascii_whitespace()
            .find_map(|word| word.strip_prefix("size="))
            .and_then(|value| value.parse().ok())
            .filter(|size| SIZES.contains(size))
            .unwrap_or(64);
        for mechanism in LATENCY_MECHANISMS
            .into_iter()
            .filter(|mechanism| *mechanism == wanted)
        {
            latency(mechanism, size, rounds, false);
        }
        return 0;
    }
    memcpy();
    null_syscall();
    for mechanism in LATENCY_MECHANISMS {
        // Message registers carry at most 64 bytes.
        for size in SIZES
            .into_iter()
            .filter(|&size| mechanism != "mailbox-regs" || size <= kipc_abi::MESSAGE_REGISTER_BYTES)
        {
            latency(mechanism, size, ROUND_TRIPS, false);
        }
    }
    for size_kib in THROUGHPUT_KIB {
        let argument = kipc_user::format_line!("size_kib={size_kib} icount=1");
        let child = spawn("experiment", argument.as_str(), &[]).expect("spawn experiment");
        check!(wait(child) == Ok(0), "experiment at {size_kib} KiB failed");
    }
    // 1 MiB again in larger steps (the byte streams and the shared region).
    for chunk_kib in [16, 64, 256] {
        let argument = kipc_user::format_line!("size_kib=1024 chunk_kib={chunk_kib} icount=1");
        let child = spawn("experiment", argument.as_str(), &[]).expect("spawn experiment");
        check!(
            wait(child) == Ok(0),
            "experiment in {chunk_kib} KiB chunks failed"
        );
    }
    println!("BENCH done");
    0
}

/// Guest memcpy: 1 MiB, eight times, after one warm-up pass.
fn memcpy() {
    // SAFETY: the only user of the static buffers in this process.
    let buffers = unsafe { &mut *core::ptr::addr_of_mut!(BUFFERS) };
    for (index, byte) in buffers.source.iter_mut().enumerate() {
        *byte = index as u8;
    }
    buffers.destination.copy_from_slice(&buffers.source);
    let begin = tsc();
    for round in 0..8u8 {
        buffers.source[0] = round;
        buffers
            .destination
            .copy_from_slice(core::hint::black_box(&buffers.source));
    }
    let instructions = tsc() - begin;
    check!(buffers.destination[0] == 7, "memcpy did not copy");
    println!("BENCH memcpy bytes={} instructions={instructions}", 8 << 20);
    copy_methods(buffers);
}

/// The copies the CPU offers without vector registers (this target is
/// soft-float, and the kernel saves no vector state): `rep movsb`, `rep movsq`
/// (what `memcpy` uses for all but the ends) and a loop of 8-byte moves, each
/// over the same 1 MiB, checked.
fn copy_methods(buffers: &mut Buffers) {
    const BYTES: usize = 1 << 20;
    let source = buffers.source.as_ptr();
    let destination = buffers.destination.as_mut_ptr();
    let mut counts = [0u64; 3];
    for (method, count) in counts.iter_mut().enumerate() {
        buffers.destination[BYTES - 1] = !buffers.source[BYTES - 1];
        let begin = tsc();
        // SAFETY: both buffers are 1 MiB, 4 KiB-aligned, apart, and ours; each
        // method moves exactly 1 MiB from `source` to `destination`.
        unsafe {
            match method {
                0 => core::arch::asm!(
                    "rep movsb",
                    inout("rcx") BYTES => _,
                    inout("rsi") source => _,
                    inout("rdi") destination => _,
                    options(nostack, preserves_flags)
                ),
                1 => core::arch::asm!(
                    "rep movsq",
                    inout("rcx") BYTES / 8 => _,
                    inout("rsi") source => _,
                    inout("rdi") destination => _,
                    options(nostack, preserves_flags)
                ),
                _ => {
                    let words = BYTES / 8;
                    let (from, to) = (source.cast::<u64>(), destination.cast::<u64>());
                    for index in 0..words {
                        to.add(index)
                            .write_volatile(from.add(index).read_volatile());
                    }
                }
            }
        }
        *count = tsc() - begin;
        check!(
            buffers.destination[BYTES - 1] == buffers.source[BYTES - 1],
            "copy method {method} did not copy"
        );
    }
    println!(
        "BENCH copy bytes={BYTES} movsb={} movsq={} loop={}",
        counts[0], counts[1], counts[2]
    );
}

/// The cheapest system call, to separate entry/exit cost from IPC work.
fn null_syscall() {
    let begin = tsc();
    for _ in 0..1000 {
        core::hint::black_box(kipc_user::process_id());
    }
    let instructions = tsc() - begin;
    let (read, write) = ipc::pipe().expect("pipe");
    let begin = tsc();
    let mut byte = [0u8; 8];
    for _ in 0..1000 {
        ipc::write(write, &byte, Deadline::NoWait).expect("write");
        ipc::read(read, &mut byte, Deadline::NoWait).expect("read");
    }
    let pipe_pair = tsc() - begin;
    ipc::close(read).expect("close");
    ipc::close(write).expect("close");
    let semaphore = ipc::semaphore_create(0).expect("semaphore");
    let begin = tsc();
    for _ in 0..1000 {
        ipc::semaphore_post(semaphore).expect("post");
        ipc::semaphore_wait(semaphore, Deadline::NoWait).expect("wait");
    }
    let semaphore_pair = tsc() - begin;
    ipc::close(semaphore).expect("close");
    let mailbox = ipc::mailbox_create().expect("mailbox");
    let mut buffer = [0u8; 64];
    let begin = tsc();
    for _ in 0..1000 {
        ipc::send(mailbox, &byte, &[], Deadline::NoWait).expect("send");
        ipc::receive(mailbox, &mut buffer, Deadline::NoWait).expect("receive");
    }
    let mailbox_pair = tsc() - begin;
    let begin = tsc();
    for _ in 0..1000 {
        core::hint::black_box(ipc::info(mailbox).expect("info"));
    }
    let info = tsc() - begin;
    ipc::close(mailbox).expect("close");
    println!(
        "BENCH syscall calls=1000 null={instructions} pipe_pairs={pipe_pair} semaphore_pairs={semaphore_pair} mailbox_pairs={mailbox_pair} handle_info={info}"
    );
}

fn echo_argument(mechanism: &str, size: usize, count: u64) -> kipc_user::Line {
    kipc_user::format_line!("echo {mechanism} {size} {count}")
}

/// One side's operations for a round trip.
struct Channel {
    mechanism: &'static str,
    send: Handle,
    receive: Handle,
    extra: Handle,
    region: *mut u8,
}

impl Channel {
    fn there(&self, message: &[u8]) {
        match self.mechanism {
            "pipe" | "fifo" => ipc::write_all(self.send, message).expect("write"),
            "mqueue" => ipc::mqueue_send(self.send, message, 0, Deadline::Forever).expect("send"),
            "shm" => {
                // SAFETY: our mapping of the shared page; the semaphores give
                // the two processes turns.
                unsafe {
                    core::ptr::copy_nonoverlapping(message.as_ptr(), self.region, message.len())
                };
                // The turn goes over and the answer is waited for in one call
                // (`back` then only copies it out).
                ipc::semaphore_post_wait(self.send, self.receive, Deadline::Forever)
                    .expect("post and wait");
            }
            _ => unreachable!(),
        }
    }

    /// `scratch` takes a queue's message (a receive needs room for the
    /// largest one the queue allows); the caller keeps it across rounds, so
    /// no round pays for zeroing 4 KiB.
    fn back(&self, buffer: &mut [u8], scratch: &mut [u8; 4096]) {
        match self.mechanism {
            "pipe" | "fifo" => {
                let got = ipc::read_full(self.receive, buffer).expect("read");
                check!(got == buffer.len(), "short read");
            }
            "mqueue" => {
                let (length, _) =
                    ipc::mqueue_receive(self.receive, scratch, Deadline::Forever).expect("receive");
                check!(length == buffer.len(), "short message");
                buffer.copy_from_slice(&scratch[..length]);
            }
            "shm" => {
                // `there` waited for the turn to come back.
                // SAFETY: as in `there`; it is our turn.
                unsafe {
                    core::ptr::copy_nonoverlapping(self.region, buffer.as_mut_ptr(), buffer.len())
                };
            }
            _ => unreachable!(),
        }
    }
}

fn latency(mechanism: &'static str, size: usize, round_trips: u64, split: bool) {
    let count = WARM_UP + round_trips;
    let mut message = [0u8; 4096];
    for (index, byte) in message.iter_mut().enumerate() {
        *byte = index as u8;
    }
    let mut reply = [0u8; 4096];
    let mut scratch = [0u8; 4096];
    // The echo peer answers one round more than is measured: the clock stops
    // before that last round, so the peer's exit, which follows its last
    // answer, falls outside the window.
    let argument = echo_argument(mechanism, size, count + 1);
    let argument = argument.as_str();
    let (peer, channel, ours): (_, Option<Channel>, heapless::Vec<Handle, 4>) = match mechanism {
        "pipe" => {
            let (to_read, to_write) = ipc::pipe().expect("pipe");
            let (from_read, from_write) = ipc::pipe().expect("pipe");
            let peer = spawn("bench", argument, &[to_read.0, from_write.0]).expect("spawn");
            let channel = Channel {
                mechanism,
                send: to_write,
                receive: from_read,
                extra: to_write,
                region: core::ptr::null_mut(),
            };
            (
                peer,
                Some(channel),
                heapless::Vec::from_slice(&[to_read, to_write, from_read, from_write])
                    .unwrap_or_default(),
            )
        }
        "fifo" => {
            ipc::fifo_create("bench-there").expect("fifo");
            ipc::fifo_create("bench-back").expect("fifo");
            let peer = spawn("bench", argument, &[]).expect("spawn");
            let send = ipc::fifo_open("bench-there", true, Deadline::Forever).expect("open");
            let receive = ipc::fifo_open("bench-back", false, Deadline::Forever).expect("open");
            let channel = Channel {
                mechanism,
                send,
                receive,
                extra: send,
                region: core::ptr::null_mut(),
            };
            (
                peer,
                Some(channel),
                heapless::Vec::from_slice(&[send, receive]).unwrap_or_default(),
            )
        }
        "mqueue" => {
            let there = ipc::mqueue_create("bench-there", 4, 4096).expect("queue");
            let back = ipc::mqueue_create("bench-back", 4, 4096).expect("queue");
            let peer = spawn("bench", argument, &[]).expect("spawn");
            let channel = Channel {
                mechanism,
                send: there,
                receive: back,
                extra: there,
                region: core::ptr::null_mut(),
            };
            (
                peer,
                Some(channel),
                heapless::Vec::from_slice(&[there, back]).unwrap_or_default(),
            )
        }
        "mailbox" | "mailbox-regs" => {
            let mailbox = ipc::mailbox_create().expect("mailbox");
            let peer = spawn("bench", argument, &[mailbox.0]).expect("spawn");
            (
                peer,
                None,
                heapless::Vec::from_slice(&[mailbox]).unwrap_or_default(),
            )
        }
        "shm" => {
            let region = ipc::region_create(1).expect("region");
            let there = ipc::semaphore_create(0).expect("semaphore");
            let back = ipc::semaphore_create(0).expect("semaphore");
            let address = ipc::region_map(region, None, true).expect("map");
            let peer = spawn("bench", argument, &[region.0, there.0, back.0]).expect("spawn");
            let channel = Channel {
                mechanism,
                send: there,
                receive: back,
                extra: region,
                region: address as *mut u8,
            };
            (
                peer,
                Some(channel),
                heapless::Vec::from_slice(&[there, back]).unwrap_or_default(),
            )
        }
        _ => unreachable!(),
    };
    let mailbox = ours[0];
    let mut words = [0u64; kipc_abi::MESSAGE_REGISTERS];
    to_registers(
        &mut words,
        &message[..size.min(kipc_abi::MESSAGE_REGISTER_BYTES)],
    );
    let mut registers = [0u64; kipc_abi::MESSAGE_REGISTERS];
    let mut begin = 0;
    let mut syscalls_before = 0;
    let (mut instructions, mut phases, mut syscalls) = (0, None, 0);
    for round in 0..=count {
        if round == WARM_UP {
            if split {
                let _ = read_breakdown();
                syscalls_before = kipc_user::kernel_stats().map_or(0, |stats| stats.syscalls);
            }
            begin = tsc();
        }
        if round == count {
            instructions = tsc() - begin;
            if split {
                phases = Some(read_breakdown());
                syscalls =
                    kipc_user::kernel_stats().map_or(0, |stats| stats.syscalls) - syscalls_before;
            }
        }
        match &channel {
            Some(channel) => {
                channel.there(&message[..size]);
                channel.back(&mut reply[..size], &mut scratch);
            }
            None if mechanism == "mailbox" => {
                let answer = ipc::call_mailbox(mailbox, &message[..size], &[], &mut reply[..size])
                    .expect("call");
                check!(answer.length == size, "short reply");
            }
            None => {
                // A short-message client holds its message in words: they go
                // into the registers, the reply comes back in them.
                registers = words;
                let answer = ipc::call_short(mailbox, &mut registers, size).expect("call");
                check!(answer.length == size, "short reply");
            }
        }
    }
    if mechanism == "mailbox-regs" {
        from_registers(&registers, &mut reply[..size]);
    }
    if let Some(phases) = phases {
        print_breakdown(mechanism, round_trips, instructions, &phases, syscalls);
    }
    check!(
        reply[..size] == message[..size],
        "{mechanism}: the echo differs"
    );
    check!(wait(peer) == Ok(0), "{mechanism} echo peer failed");
    if let Some(channel) = &channel
        && mechanism == "shm"
    {
        ipc::region_unmap(channel.region as u64).expect("unmap");
        ipc::close(channel.extra).expect("close region");
    }
    for handle in ours {
        let _ = ipc::close(handle);
    }
    match mechanism {
        "fifo" => {
            ipc::fifo_unlink("bench-there").expect("unlink");
            ipc::fifo_unlink("bench-back").expect("unlink");
        }
        "mqueue" => {
            ipc::mqueue_unlink("bench-there").expect("unlink");
            ipc::mqueue_unlink("bench-back").expect("unlink");
        }
        _ => {}
    }
    println!(
        "BENCH latency mechanism={mechanism} size={size} round_trips={ROUND_TRIPS} instructions={instructions}"
    );
}

/// The far side of a latency measurement: receive, send back, `count` times.
fn echo(mechanism: &str, size: usize, count: u64, handles: &[u32]) -> u32 {
    let mut buffer = [0u8; 4096];
    let buffer = &mut buffer[..size];
    match mechanism {
        "pipe" => {
            let (receive, send) = (Handle(handles[0]), Handle(handles[1]));
            for _ in 0..count {
                check!(ipc::read_full(receive, buffer) == Ok(size), "echo read");
                ipc::write_all(send, buffer).expect("echo write");
            }
        }
        "fifo" => {
            let receive = ipc::fifo_open("bench-there", false, Deadline::Forever).expect("open");
            let send = ipc::fifo_open("bench-back", true, Deadline::Forever).expect("open");
            for _ in 0..count {
                check!(ipc::read_full(receive, buffer) == Ok(size), "echo read");
                ipc::write_all(send, buffer).expect("echo write");
            }
        }
        "mqueue" => {
            let receive = ipc::mqueue_open("bench-there").expect("open");
            let send = ipc::mqueue_open("bench-back").expect("open");
            let mut large = [0u8; 4096];
            for _ in 0..count {
                let (length, _) =
                    ipc::mqueue_receive(receive, &mut large, Deadline::Forever).expect("receive");
                ipc::mqueue_send(send, &large[..length], 0, Deadline::Forever).expect("send");
            }
        }
        "mailbox" => {
            let mailbox = Handle(handles[0]);
            // Answer each call and wait for the next in one system call.
            let mut pending: Option<(Handle, usize)> = None;
            for _ in 0..count {
                let (reply, length) = pending.map_or((None, 0), |(h, l)| (Some(h), l));
                let message = ipc::reply_receive(mailbox, buffer, reply, length).expect("receive");
                pending = Some((message.reply.expect("reply handle"), message.length));
            }
            if let Some((reply, length)) = pending {
                ipc::reply(reply, &buffer[..length], &[]).expect("reply");
            }
        }
        "mailbox-regs" => {
            let mailbox = Handle(handles[0]);
            // The message stays in the registers: answered as it came.
            let mut registers = [0u64; kipc_abi::MESSAGE_REGISTERS];
            let mut pending: Option<(Handle, usize)> = None;
            for _ in 0..count {
                let (reply, length) = pending.map_or((None, 0), |(h, l)| (Some(h), l));
                let message = ipc::reply_receive_short(mailbox, &mut registers, reply, length)
                    .expect("receive");
                pending = Some((message.reply.expect("reply handle"), message.length));
            }
            if let Some((reply, length)) = pending {
                let mut bytes = [0u8; kipc_abi::MESSAGE_REGISTER_BYTES];
                from_registers(&registers, &mut bytes);
                ipc::reply(reply, &bytes[..length], &[]).expect("reply");
            }
        }
        "shm" => {
            let (region, there, back) =
                (Handle(handles[0]), Handle(handles[1]), Handle(handles[2]));
            let shared = ipc::region_map(region, None, true).expect("map") as *mut u8;
            ipc::semaphore_wait(there, Deadline::Forever).expect("wait");
            for round in 0..count {
                // SAFETY: our mapping of the shared page, our turn.
                unsafe {
                    core::ptr::copy_nonoverlapping(shared, buffer.as_mut_ptr(), size);
                    core::ptr::copy_nonoverlapping(buffer.as_ptr(), shared, size);
                }
                // Hand the answer back and wait for the next message in one
                // call; after the last, only hand it back.
                if round + 1 < count {
                    ipc::semaphore_post_wait(back, there, Deadline::Forever)
                        .expect("post and wait");
                } else {
                    ipc::semaphore_post(back).expect("post");
                }
            }
        }
        _ => return 2,
    }
    0
}

/// Packs `bytes` (at most 64) into message registers, little-endian.
fn to_registers(registers: &mut [u64; kipc_abi::MESSAGE_REGISTERS], bytes: &[u8]) {
    for (word, chunk) in registers.iter_mut().zip(bytes.chunks(8)) {
        let mut eight = [0u8; 8];
        eight[..chunk.len()].copy_from_slice(chunk);
        *word = u64::from_le_bytes(eight);
    }
}

/// Unpacks message registers into `bytes` (at most 64).
fn from_registers(registers: &[u64; kipc_abi::MESSAGE_REGISTERS], bytes: &mut [u8]) {
    for (chunk, word) in bytes.chunks_mut(8).zip(registers) {
        chunk.copy_from_slice(&word.to_le_bytes()[..chunk.len()]);
    }
}

/// The kernel's phase totals since the last read (`cargo run -- bench --breakdown`).
fn read_breakdown() -> kipc_abi::Breakdown {
    let result = kipc_user::breakdown();
    check!(
        result.is_ok(),
        "this kernel has no breakdown (build it with the `breakdown` feature): {result:?}"
    );
    result.unwrap_or_default()
}

fn print_breakdown(
    mechanism: &str,
    rounds: u64,
    total: u64,
    phases: &kipc_abi::Breakdown,
    syscalls: u64,
) {
    println!(
        "BENCH breakdown mechanism={mechanism} rounds={rounds} total={total} dispatch={} kipc={} copy={} wake={} scheduler={} switch={} host_copy={} syscalls={syscalls}",
        phases.dispatch,
        phases.kipc,
        phases.copy,
        phases.wake,
        phases.scheduler,
        phases.switch,
        phases.host_copy
    );
}

/// `only=breakdown`: the null call (for the entry and exit cost), then the
/// 64-byte mailbox and pipe round trips, each split by the kernel's phases.
fn breakdown() {
    let _ = read_breakdown();
    let before = kipc_user::kernel_stats().map_or(0, |stats| stats.syscalls);
    let begin = tsc();
    for _ in 0..1000 {
        core::hint::black_box(kipc_user::process_id());
    }
    let total = tsc() - begin;
    let phases = read_breakdown();
    let syscalls = kipc_user::kernel_stats().map_or(0, |stats| stats.syscalls) - before;
    print_breakdown("null", 1000, total, &phases, syscalls);
    for mechanism in ["mailbox", "mailbox-regs", "pipe"] {
        latency(mechanism, 64, ROUND_TRIPS, true);
    }
    // 1 MiB through a pipe and a shared region, in page and 64 KiB steps.
    for chunk_kib in [4, 64] {
        for mechanism in ["pipe", "shm"] {
            let argument = kipc_user::format_line!(
                "size_kib=1024 chunk_kib={chunk_kib} only={mechanism} icount=1"
            );
            let child = spawn("experiment", argument.as_str(), &[]).expect("spawn experiment");
            check!(wait(child) == Ok(0), "experiment failed");
        }
    }
    println!("BENCH done");
}
