//! `fuzz`: a system-call fuzzer. As the scenario root it parses `seed=`,
//! `calls=`, `workers=` and `kills=` from the kernel command line, records
//! the kernel's resource usage, and starts `workers` copies of itself
//! (argument `worker slot=K seed=S calls=N`). Each worker issues random system
//! calls — every number in `kipc_abi::number` except `EXIT` and
//! `SIGNAL_RETURN`, plus unknown numbers — with a mix of valid and invalid handles (live, closed, stale
//! generation, wrong kind, never issued), pointers (null, kernel half,
//! non-canonical, unmapped, read-only for a write, straddling a hole,
//! wrapping), lengths, rights, flags and deadlines, against a population of
//! objects it creates and destroys as it goes. Every answer must be a success
//! or a known `kipc::ErrorCode`; a call that must fail (a kernel write to
//! memory that cannot take it) must not succeed.
//!
//! Workers count their calls in a shared region the root reads, so the count
//! of a worker the root kills at a random moment is still exact; the root
//! starts a replacement with the rest of its budget. When all are done the
//! root removes the names the workers could have created (FIFOs, queues and
//! files live in a global namespace until unlinked) and requires resource
//! usage to be back at the baseline.
//!
//! Replay a failure with the seed it printed:
//! `cargo run -- fuzz --append "seed=S calls=N"`.
//!
//! Why workers cannot hurt themselves: the kernel only writes into the
//! dedicated `SCRATCH` pages; page loans and mapping targets are confined to
//! the `LOAN` pages, which the program itself never touches; the counter
//! mapping is never offered to `region_unmap`; `EXIT` is issued once, at the
//! end; `SPAWN` starts only `hello` with one round; `MAILBOX_CALL` and the
//! short calls, which wait with no deadline, are only aimed where they must fail;
//! every other wait has a deadline of at most a few milliseconds, and a
//! signal suspension an alarm a few milliseconds away; the signals it sends,
//! raises or arms have a handler (see `signal_arguments`), which runs for real
//! in the middle of any call.

#![no_std]
#![no_main]

use core::ptr::{addr_of, addr_of_mut};

use kipc::{ErrorCode, Signal};
use kipc_abi::{EXIT_KILLED, ResourceUsage, number};
use kipc_user::ipc::{self, Handle};
use kipc_user::{ProcessId, check, println};

kipc_user::entry!(main);

const PAGE: u64 = 4096;
/// Seed used when the command line has none.
const DEFAULT_SEED: u64 = 0x5eed_cafe;
/// Worker copies that may run at once.
const MAX_WORKERS: usize = 8;
/// Counter slots in the shared page: one per worker ever started.
const COUNTER_SLOTS: usize = 512;

fn main(start: kipc_user::Start) -> u32 {
    if start.argument.starts_with("worker") {
        worker(start.argument, start.handles)
    } else {
        root(start.argument)
    }
}

/// `key=value` from a command line, as a number.
fn word(argument: &str, key: &str) -> Option<u64> {
    argument.split_ascii_whitespace().find_map(|token| {
        let value = token.strip_prefix(key)?.strip_prefix('=')?;
        match value.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16).ok(),
            None => value.parse().ok(),
        }
    })
}

/// xorshift64*: small, fast, and the same on every run for a seed.
struct Random(u64);

impl Random {
    fn new(seed: u64) -> Random {
        let mut random = Random((seed ^ 0x9e37_79b9_7f4a_7c15).max(1));
        for _ in 0..4 {
            random.next();
        }
        random
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..bound` (0 if `bound` is 0).
    fn below(&mut self, bound: u64) -> u64 {
        if bound == 0 { 0 } else { self.next() % bound }
    }

    /// True with `percent` % probability.
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

// ------------------------------------------------------------------ names

/// Every name a worker may create objects under. The root unlinks them all
/// at the end: FIFOs, queues and files outlive their creators until unlinked.
const NAMES: &[&[u8]] = &[
    b"fz0",
    b"fz1",
    b"fz-shared",
    b"",
    b"\xff\xfe\x00bin",
    b"fz-name-of-exactly-32-bytes-long",
];
/// Names that must be refused (too long), offered alongside [`NAMES`].
const LONG_NAME: &[u8] = b"fz-name-of-33-bytes-is-one-too-lo";

fn unlink_everything() {
    for name in NAMES {
        for call in [
            number::FIFO_UNLINK,
            number::MQUEUE_UNLINK,
            number::FILE_UNLINK,
        ] {
            let _ = kipc_user::call(call, [name.as_ptr() as u64, name.len() as u64, 0, 0, 0, 0]);
        }
    }
}

// ------------------------------------------------------------------ root

struct Worker {
    pid: ProcessId,
    slot: usize,
    budget: u64,
}

fn counter(counters: u64, slot: usize) -> u64 {
    // SAFETY: `counters` is the shared page, mapped read-write for the whole
    // run; `slot < COUNTER_SLOTS` keeps the read inside it.
    unsafe { core::ptr::read_volatile((counters as *const u64).add(slot)) }
}

fn root(argument: &str) -> u32 {
    let seed = word(argument, "seed").unwrap_or(DEFAULT_SEED);
    let calls = word(argument, "calls").unwrap_or(3000);
    let workers = word(argument, "workers")
        .unwrap_or(3)
        .clamp(1, MAX_WORKERS as u64) as usize;
    let kills = word(argument, "kills").unwrap_or(workers as u64);
    println!("fuzz: seed {seed}, {calls} calls, {workers} workers");
    let mut random = Random::new(seed);

    let region = ipc::region_create(1).expect("counter region");
    let counters = ipc::region_map(region, None, true).expect("map counter region");
    let baseline = kipc_user::resource_usage().expect("resource usage");

    let mut running: [Option<Worker>; MAX_WORKERS] = [const { None }; MAX_WORKERS];
    let mut slots_used = 0usize;
    let mut spawn_worker = |budget: u64, random: &mut Random| -> Worker {
        check!(slots_used < COUNTER_SLOTS, "too many workers started");
        let slot = slots_used;
        slots_used += 1;
        let worker_seed = random.next();
        let line = kipc_user::format_line!("worker slot={slot} seed={worker_seed} calls={budget}");
        let text = line.as_str();
        // Orphans (children of killed workers) may briefly fill the
        // process table; wait for them to finish.
        let mut attempts = 0;
        loop {
            match kipc_user::spawn("fuzz", text, &[region.0]) {
                Ok(pid) => {
                    return Worker { pid, slot, budget };
                }
                Err(error) if error == ErrorCode::OutOfProcesses && attempts < 500 => {
                    attempts += 1;
                    kipc_user::sleep_ms(10);
                }
                Err(error) => {
                    check!(false, "spawn worker: {error:?}");
                }
            }
        }
    };

    let per_worker = calls / workers as u64;
    for (index, place) in running.iter_mut().take(workers).enumerate() {
        let budget = per_worker
            + if index == 0 {
                calls % workers as u64
            } else {
                0
            };
        *place = Some(spawn_worker(budget, &mut random));
    }

    let mut total = 0u64;
    let mut killed = 0u64;
    let finish = |worker: &Worker, code: u32, was_killed: bool| -> u64 {
        let done = counter(counters, worker.slot);
        if was_killed {
            check!(
                code == EXIT_KILLED,
                "killed worker {} exited with {code}",
                worker.slot
            );
        } else {
            check!(
                code == 0,
                "worker {} (slot seed in its argument) exited with {code}{}",
                worker.slot,
                if code == EXIT_KILLED {
                    ": it faulted — the kernel corrupted it, or it corrupted itself"
                } else {
                    ""
                }
            );
            check!(
                done == worker.budget,
                "worker {} ran {done} of {} calls",
                worker.slot,
                worker.budget
            );
        }
        done
    };

    for _ in 0..kills {
        kipc_user::sleep_ms(1 + random.below(25));
        let index = random.below(workers as u64) as usize;
        let Some(worker) = running[index].take() else {
            continue;
        };
        match kipc_user::kill(worker.pid) {
            Ok(()) => {
                let code = kipc_user::wait(worker.pid).expect("wait for a killed worker");
                let done = finish(&worker, code, true);
                total += done;
                killed += 1;
                let rest = worker.budget - done.min(worker.budget);
                if rest > 0 {
                    running[index] = Some(spawn_worker(rest, &mut random));
                }
            }
            Err(error) => {
                // It had already finished (a zombie cannot be killed).
                check!(
                    error == ErrorCode::NoSuchProcess,
                    "kill worker {}: {error:?}",
                    worker.slot
                );
                let code = kipc_user::wait(worker.pid).expect("wait for a worker");
                total += finish(&worker, code, false);
            }
        }
    }
    for worker in running.iter_mut().filter_map(Option::take) {
        let code = kipc_user::wait(worker.pid).expect("wait for a worker");
        total += finish(&worker, code, false);
    }
    check!(
        total == calls,
        "workers report {total} calls in all, the budget was {calls}"
    );

    // Children the workers spawned (`hello`) may outlive a killed worker.
    let mut usage = kipc_user::resource_usage().expect("resource usage");
    for _ in 0..500 {
        if usage.processes == baseline.processes {
            break;
        }
        kipc_user::sleep_ms(10);
        usage = kipc_user::resource_usage().expect("resource usage");
    }
    unlink_everything();
    let usage = kipc_user::resource_usage().expect("resource usage");
    if usage != baseline {
        report_difference(&baseline, &usage);
        check!(
            false,
            "resource usage differs from the baseline after fuzzing"
        );
    }
    println!("fuzz: {total} calls ran clean ({killed} workers killed, {slots_used} started)");
    check!(ipc::region_unmap(counters).is_ok(), "unmap counters");
    check!(ipc::close(region).is_ok(), "close counter region");
    0
}

fn report_difference(before: &ResourceUsage, after: &ResourceUsage) {
    let fields = |usage: &ResourceUsage| {
        [
            ("free frames", usage.free_frames),
            ("processes", usage.processes),
            ("handles", usage.handles),
            ("mailboxes", usage.mailboxes),
            ("pipes", usage.pipes),
            ("fifos", usage.fifos),
            ("message queues", usage.message_queues),
            ("regions", usage.regions),
            ("semaphores", usage.semaphores),
            ("notifications", usage.notifications),
            ("region frames", usage.region_frames),
            ("mappings", usage.mappings),
            ("mapped pages", usage.mapped_pages),
            ("queued messages", usage.queued_messages),
            ("handles in flight", usage.handles_in_flight),
            ("waiters", usage.waiters),
        ]
    };
    for ((name, old), (_, new)) in fields(before).into_iter().zip(fields(after)) {
        if old != new {
            println!("fuzz: LEAK {name}: {old} before, {new} after");
        }
    }
}

// ------------------------------------------------------------------ worker

/// Page count for a loan (or file append) at `address`: absurd counts are
/// kept (the kernel must refuse them before touching a page), others are
/// cut so the pages stay inside the loan pages when `address` is there, or
/// to one page elsewhere.
fn clamp_loan(address: u64, pages: u64) -> u64 {
    if pages > kipc::REGION_PAGES_MAX as u64 {
        return pages;
    }
    let start = loan_area();
    if address >= start && address < start + LOAN_PAGES * PAGE {
        pages.min(LOAN_PAGES - (address - start) / PAGE)
    } else {
        pages.min(1)
    }
}

/// Pages the kernel may write into. The last one is loaned away at start
/// (and the loan closed), leaving a hole for straddling buffers.
const SCRATCH_PAGES: u64 = 8;
/// Pages that may be loaned away and mapped over; never touched directly.
const LOAN_PAGES: u64 = 8;

#[repr(C, align(4096))]
struct Pages([u8; 8 * 4096]);

static mut SCRATCH: Pages = Pages([0; 8 * 4096]);
static mut LOAN: Pages = Pages([0; 8 * 4096]);
/// The action record `SIGNAL_ACTION` calls read (never the scratch pages,
/// whose bytes the kernel scribbles: a random handler address there could
/// be installed and run).
static mut ACTION: kipc_abi::SignalActionRecord = kipc_abi::SignalActionRecord {
    handler: 0,
    mask: 0,
    flags: 0,
    restorer: 0,
};
/// Signal handlers run in this worker.
static CAUGHT: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// The worker's one handler: counts, and returns.
extern "C" fn caught(_: u64, _: &mut kipc_abi::SignalFrame) {
    CAUGHT.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
}

fn scratch() -> u64 {
    addr_of!(SCRATCH) as u64
}

fn loan_area() -> u64 {
    addr_of!(LOAN) as u64
}

/// Usable scratch bytes (below the hole).
const SCRATCH_BYTES: u64 = (SCRATCH_PAGES - 1) * PAGE;

fn scratch_write_u32s(offset: u64, words: &[u32]) {
    let base = addr_of_mut!(SCRATCH) as *mut u8;
    for (index, word) in words.iter().enumerate() {
        for (byte_index, byte) in word.to_le_bytes().into_iter().enumerate() {
            let at = offset as usize + index * 4 + byte_index;
            if (at as u64) < SCRATCH_BYTES {
                // SAFETY: inside the scratch pages, which stay mapped (only
                // the last page, excluded above, is loaned away).
                unsafe { core::ptr::write_volatile(base.add(at), byte) };
            }
        }
    }
}

fn scratch_read_u32(offset: u64) -> u32 {
    let base = addr_of!(SCRATCH) as *const u8;
    let mut bytes = [0u8; 4];
    for (index, byte) in bytes.iter_mut().enumerate() {
        let at = offset as usize + index;
        if (at as u64) < SCRATCH_BYTES {
            // SAFETY: as in `scratch_write_u32s`.
            *byte = unsafe { core::ptr::read_volatile(base.add(at)) };
        }
    }
    u32::from_le_bytes(bytes)
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Mailbox,
    PipeRead,
    PipeWrite,
    Queue,
    Region,
    Semaphore,
    Notification,
    Reply,
    Process,
    Unknown,
}

#[derive(Clone, Copy)]
struct Entry {
    raw: u32,
    kind: Kind,
    rights: u32,
    live: bool,
}

const POPULATION: usize = 96;

/// How a pointer argument relates to the worker's memory.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Pointer {
    /// Inside the scratch pages.
    Scratch,
    /// Mapped but read-only (program text).
    ReadOnly,
    /// Null, kernel half, non-canonical, unmapped or wrapping: no byte of it
    /// can be accessed.
    Bad,
    /// Starts in scratch and runs into the hole.
    Straddle,
    /// In the loan pages: mapped or not, depending on earlier calls.
    Loan,
}

struct Fuzzer {
    random: Random,
    entries: [Entry; POPULATION],
    length: usize,
    mappings: [u64; 16],
    mapping_count: usize,
    child: Option<u64>,
    counters: u64,
}

const ALL_NUMBERS: &[u64] = &[
    number::CONSOLE_WRITE,
    number::SPAWN,
    number::WAIT,
    number::YIELD,
    number::SLEEP,
    number::CLOCK,
    number::PROCESS_ID,
    number::KERNEL_STATS,
    number::KILL,
    number::RESOURCE_USAGE,
    number::HANDLE_CLOSE,
    number::HANDLE_DUPLICATE,
    number::HANDLE_INFO,
    number::MAILBOX_CREATE,
    number::MAILBOX_MINT,
    number::MAILBOX_SEND,
    number::MAILBOX_RECEIVE,
    number::MAILBOX_CALL,
    number::MAILBOX_REPLY,
    number::MAILBOX_REPLY_RECEIVE,
    number::MAILBOX_CALL_SHORT,
    number::MAILBOX_REPLY_RECEIVE_SHORT,
    number::PIPE_CREATE,
    number::PIPE_READ,
    number::PIPE_WRITE,
    number::FIFO_CREATE,
    number::FIFO_OPEN,
    number::FIFO_UNLINK,
    number::MQUEUE_CREATE,
    number::MQUEUE_OPEN,
    number::MQUEUE_UNLINK,
    number::MQUEUE_SEND,
    number::MQUEUE_RECEIVE,
    number::MQUEUE_ATTRIBUTES,
    number::REGION_CREATE,
    number::REGION_MAP,
    number::REGION_UNMAP,
    number::PAGES_LOAN,
    number::REGION_PAGES,
    number::SEMAPHORE_CREATE,
    number::SEMAPHORE_WAIT,
    number::SEMAPHORE_POST,
    number::SEMAPHORE_POST_WAIT,
    number::NOTIFICATION_CREATE,
    number::NOTIFICATION_SIGNAL,
    number::NOTIFICATION_WAIT,
    number::LEDGER_READ,
    number::LEDGER_RESET,
    number::FILE_OPEN,
    number::FILE_READ,
    number::FILE_WRITE,
    number::FILE_CLOSE,
    number::FILE_SEEK,
    number::FILE_SIZE,
    number::FILE_UNLINK,
    number::FILE_CHECKSUM,
    number::FILE_GENERATE,
    number::FILE_LEND,
    number::FILE_APPEND_PAGES,
    number::SIGNAL_ACTION,
    number::SIGNAL_MASK,
    number::SIGNAL_SEND,
    number::SIGNAL_RAISE,
    number::SIGNAL_PENDING,
    number::ALARM,
    number::SIGNAL_SUSPEND,
    number::PROCESS_HANDLE,
];

/// What a call was, for the failure report and the result checks.
struct Call {
    number: u64,
    arguments: [u64; 6],
    /// The call must not succeed (with a non-zero value where `nonzero`).
    must_fail: bool,
    nonzero: bool,
}

fn worker(argument: &str, handles: &[u32]) -> u32 {
    let slot = word(argument, "slot").unwrap_or(0) as usize;
    let seed = word(argument, "seed").unwrap_or(DEFAULT_SEED);
    let calls = word(argument, "calls").unwrap_or(0);
    check!(
        slot < COUNTER_SLOTS && handles.len() == 1,
        "worker started without its counter region"
    );
    let counters = ipc::region_map(Handle(handles[0]), None, true).expect("map counters");
    let counter_address = counters + slot as u64 * 8;
    // Signals the fuzzer sends, raises and arms alarms for run `caught`;
    // a write to a broken pipe only fails.
    for signal in [Signal::SIGUSR1, Signal::SIGUSR2, Signal::SIGALRM] {
        check!(
            kipc_user::signal::catch(signal, caught, 0).is_ok(),
            "catch {signal:?}"
        );
    }
    let quiet = kipc_user::signal::set_action(Signal::SIGPIPE, kipc_user::signal::Action::Ignore);
    check!(quiet.is_ok(), "ignore SIGPIPE");
    // The hole after the scratch pages: loan the last page away and drop it.
    let hole = ipc::pages_loan(scratch() + SCRATCH_BYTES, 1).expect("loan scratch page");
    check!(ipc::close(hole).is_ok(), "close the hole's loan");

    let mut fuzzer = Fuzzer {
        random: Random::new(seed),
        entries: [Entry {
            raw: 0,
            kind: Kind::Unknown,
            rights: 0,
            live: false,
        }; POPULATION],
        length: 0,
        mappings: [0; 16],
        mapping_count: 0,
        child: None,
        counters,
    };
    for index in 0..calls {
        let call = fuzzer.next_call();
        // SAFETY: see the module documentation: every pointer the kernel may
        // write through lies in SCRATCH or is invalid; loans and mappings
        // only touch LOAN; the counters mapping is never unmapped.
        let (rax, rdx, r8) = unsafe { kipc_user::syscall(call.number, call.arguments) };
        let outcome = kipc_abi::decode(rax);
        let good = match outcome {
            Ok(value) => !(call.must_fail && (!call.nonzero || value != 0)),
            Err(code) => code != 0 && ErrorCode::from_u32(code).is_some(),
        };
        if !good {
            println!(
                "fuzz worker {slot}: CHECK FAILED: call {index} (worker seed {seed}): number {} arguments {:#x?} returned {rax:#x} ({outcome:?}){}",
                call.number,
                call.arguments,
                if call.must_fail {
                    ", but it had to fail"
                } else {
                    ", not a known error code"
                }
            );
            return 1;
        }
        if let Ok(value) = outcome {
            fuzzer.succeeded(&call, value, rdx, r8);
        }
        // SAFETY: the counters page is mapped read-write at `counters`
        // and never unmapped while the worker runs.
        unsafe { core::ptr::write_volatile(counter_address as *mut u64, index + 1) };
    }
    if let Some(child) = fuzzer.child.take() {
        let _ = kipc_user::wait(ProcessId(child));
    }
    println!(
        "fuzz worker {slot}: {calls} calls, {} signal handlers ran in the middle of them",
        CAUGHT.load(core::sync::atomic::Ordering::Relaxed)
    );
    // EXIT takes the low 32 bits of its argument: garbage above must not
    // change the exit code the root sees.
    let high = fuzzer.random.next() << 32;
    let _ = kipc_user::call(
        number::EXIT,
        [high, fuzzer.random.next(), 0, u64::MAX, 0, 0],
    );
    unreachable!("exit returned")
}

impl Fuzzer {
    fn add(&mut self, raw: u32, kind: Kind, rights: u32) {
        let entry = Entry {
            raw,
            kind,
            rights,
            live: true,
        };
        if self.length < POPULATION {
            self.entries[self.length] = entry;
            self.length += 1;
            return;
        }
        // Full: forget a dead entry, or failing that a random one (the
        // handle stays open, untracked; exit cleans it up).
        let victim = self.entries[..self.length]
            .iter()
            .position(|entry| !entry.live)
            .unwrap_or_else(|| self.random.below(POPULATION as u64) as usize);
        self.entries[victim] = entry;
    }

    fn kill_entry(&mut self, raw: u32) {
        for entry in self.entries[..self.length].iter_mut() {
            if entry.raw == raw && entry.live {
                entry.live = false;
            }
        }
    }

    fn live_count(&self) -> usize {
        self.entries[..self.length]
            .iter()
            .filter(|entry| entry.live)
            .count()
    }

    fn entry_of(&self, raw: u64) -> Option<Entry> {
        self.entries[..self.length]
            .iter()
            .copied()
            .find(|entry| entry.live && u64::from(entry.raw) == raw)
    }

    /// A random entry matching `filter`.
    fn pick_entry(&mut self, filter: impl Fn(&Entry) -> bool) -> Option<Entry> {
        let matching = self.entries[..self.length]
            .iter()
            .filter(|entry| filter(entry))
            .count();
        if matching == 0 {
            return None;
        }
        let chosen = self.random.below(matching as u64) as usize;
        self.entries[..self.length]
            .iter()
            .copied()
            .filter(|entry| filter(entry))
            .nth(chosen)
    }

    /// A handle argument, usually one of `wanted` kind (any kind for
    /// [`Kind::Unknown`]).
    fn handle(&mut self, wanted: Kind) -> u64 {
        let roll = self.random.below(100);
        let chosen = if roll < 55 && wanted == Kind::Unknown {
            self.pick_entry(|entry| entry.live)
        } else if roll < 55 {
            self.pick_entry(|entry| entry.live && entry.kind == wanted)
        } else if roll < 70 {
            self.pick_entry(|entry| entry.live)
        } else if roll < 80 {
            self.pick_entry(|entry| !entry.live)
        } else {
            None
        };
        if let Some(entry) = chosen {
            return u64::from(entry.raw);
        }
        self.garbage_handle()
    }

    /// A handle value this process was (almost certainly) never given.
    fn garbage_handle(&mut self) -> u64 {
        match self.random.below(8) {
            0 => 0,
            1 => u64::from(u32::MAX),
            2 => self.random.below(64),
            3 => (self.random.below(0xffff) << 16) | self.random.below(64),
            4 => 64 + self.random.below(0x1_0000 - 64),
            5 => (1 << 32) | self.random.below(64),
            6 => {
                // A live handle's slot with another generation.
                match self.pick_entry(|entry| entry.live) {
                    Some(entry) => u64::from(entry.raw ^ (1 + self.random.below(3) as u32) << 16),
                    None => self.random.next(),
                }
            }
            _ => self.random.next(),
        }
    }

    /// A length: often small, sometimes absurd.
    fn length(&mut self) -> u64 {
        match self.random.below(12) {
            0 => 0,
            1 => 1,
            2..=4 => 1 + self.random.below(64),
            5 | 6 => 1 + self.random.below(PAGE),
            7 => PAGE + 1,
            8 => self.random.below(6 * PAGE),
            9 => 16384 + self.random.below(3),
            10 => self
                .random
                .pick(&[1 << 40, u64::MAX, u64::from(u32::MAX), i64::MAX as u64]),
            _ => self.random.below(300),
        }
    }

    /// A pointer for a buffer of `length` bytes the kernel reads or writes.
    fn pointer(&mut self, length: u64) -> (u64, Pointer) {
        match self.random.below(20) {
            0..=9 => {
                if length >= SCRATCH_BYTES {
                    let start = scratch() + self.random.below(16);
                    let inside = start
                        .checked_add(length)
                        .is_some_and(|end| end <= scratch() + SCRATCH_BYTES);
                    let kind = if inside {
                        Pointer::Scratch
                    } else {
                        Pointer::Straddle
                    };
                    (start, kind)
                } else {
                    let offset = self.random.below(SCRATCH_BYTES - length + 1);
                    (scratch() + offset, Pointer::Scratch)
                }
            }
            10 => (0, Pointer::Bad),
            11 => (
                self.random.pick(&[
                    0xffff_8000_0000_0000,
                    0xffff_ffff_8000_0000,
                    0xffff_ffff_ffff_f000,
                ]) + self.random.below(PAGE),
                Pointer::Bad,
            ),
            12 => (
                self.random.pick(&[
                    0x8000_0000_0000_0000,
                    0x0000_8000_0000_0000,
                    0x1234_5678_9abc_def0,
                ]) | self.random.below(1 << 20),
                Pointer::Bad,
            ),
            13 => (
                0x0000_7000_0000_0000 + self.random.below(1 << 30),
                Pointer::Bad,
            ),
            14 => (u64::MAX - self.random.below(64), Pointer::Bad),
            15 => (
                main as *const () as u64 + self.random.below(64),
                Pointer::ReadOnly,
            ),
            16 | 17 => {
                let back = 1 + self.random.below(64);
                let kind = if length > back {
                    Pointer::Straddle
                } else {
                    Pointer::Scratch
                };
                (scratch() + SCRATCH_BYTES - back, kind)
            }
            _ => (
                loan_area() + self.random.below(LOAN_PAGES * PAGE),
                Pointer::Loan,
            ),
        }
    }

    /// A pointer no byte of which is accessible.
    fn bad_pointer(&mut self) -> u64 {
        loop {
            let (pointer, kind) = self.pointer(8);
            if kind == Pointer::Bad {
                return pointer;
            }
        }
    }

    /// A deadline: no wait, already past, or a few milliseconds away.
    fn deadline(&mut self) -> u64 {
        match self.random.below(10) {
            0..=3 => kipc_abi::NO_WAIT,
            4 => 1,
            _ => kipc_user::uptime_ms() + 1 + self.random.below(4),
        }
    }

    fn rights(&mut self) -> u64 {
        match self.random.below(10) {
            0 => self.random.next(),
            1 => 1 << (7 + self.random.below(25)),
            2 => 0x7f,
            _ => self.random.below(0x80),
        }
    }

    fn name(&mut self) -> (u64, u64) {
        match self.random.below(12) {
            0 => (LONG_NAME.as_ptr() as u64, LONG_NAME.len() as u64),
            1 => {
                // Only unreadable names: readable random bytes could
                // create an object under a name the root cannot unlink.
                (self.bad_pointer(), 1 + self.random.below(8))
            }
            2 => (NAMES[0].as_ptr() as u64, 1 << 40),
            _ => {
                let name = self.random.pick(NAMES);
                (name.as_ptr() as u64, name.len() as u64)
            }
        }
    }

    /// A page-aligned address for mapping or loaning: inside the loan pages,
    /// a far unmapped area, or invalid — never the program's own pages, nor
    /// the hole after the scratch pages (a mapping there would make
    /// straddling buffers valid). Callers keep page counts inside the loan
    /// pages with [`clamp_loan`].
    fn target_address(&mut self) -> u64 {
        match self.random.below(10) {
            0..=3 => loan_area() + self.random.below(LOAN_PAGES) * PAGE,
            4 => 0x0000_6000_0000_0000 + self.random.below(64) * PAGE,
            5 => loan_area() + 1 + self.random.below(PAGE - 1),
            6 => self.random.pick(&[
                0,
                0xffff_8000_0000_0000,
                0x0000_8000_0000_0000,
                0x0000_7fff_ffff_f000,
            ]),
            // The first page above the stack, and the last user page.
            7 => 0x0000_7fff_ffff_0000,
            8 => 0x0000_7fff_ffff_f000,
            _ => self.random.next() & !0xfff,
        }
    }

    /// Writes up to `count` handle values into scratch at `offset`.
    fn handle_list(&mut self, offset: u64, count: usize) {
        let mut words = [0u32; 9];
        for word in words.iter_mut().take(count) {
            *word = self.handle(Kind::Unknown) as u32;
            // A mailbox's receive handle queued in itself (or in a cycle
            // of mailboxes) keeps it alive after the process is gone, by
            // kipc's documented design (`mailbox.rs`, "Closing"). That is
            // a leak the kernel's check would report, so never send one.
            let receive_handle = self.entries[..self.length].iter().any(|entry| {
                entry.live
                    && entry.raw == *word
                    && matches!(entry.kind, Kind::Mailbox | Kind::Unknown)
                    && entry.rights & kipc::Rights::READ.bits() != 0
            });
            if receive_handle {
                *word = 0;
            }
        }
        scratch_write_u32s(offset, &words[..count.min(9)]);
    }

    fn next_call(&mut self) -> Call {
        // Keep the population from filling the handle table for good.
        let live = self.live_count();
        let number = if live > 40 && self.random.chance(30) {
            number::HANDLE_CLOSE
        } else if self.random.chance(4) {
            self.unknown_number()
        } else {
            self.random.pick(ALL_NUMBERS)
        };
        let mut call = Call {
            number,
            arguments: [0; 6],
            must_fail: false,
            nonzero: false,
        };
        // Unused argument registers get garbage now and then.
        if self.random.chance(20) {
            for argument in call.arguments.iter_mut() {
                *argument = self.random.next();
            }
        }
        self.arguments(&mut call);
        call
    }

    fn unknown_number(&mut self) -> u64 {
        match self.random.below(5) {
            0 => 11 + self.random.below(5),
            1 => 19 + self.random.below(13),
            2 => {
                // Between the file calls and the signal calls, or past them.
                let gap = 131 + self.random.below(9);
                let beyond = number::PROCESS_HANDLE + 1 + self.random.below(1000);
                self.random.pick(&[gap, beyond])
            }
            3 => (1 << 32) | self.random.pick(ALL_NUMBERS),
            _ => self.random.next() | (1 << 40),
        }
    }

    fn arguments(&mut self, call: &mut Call) {
        let a = &mut call.arguments;
        match call.number {
            number::CONSOLE_WRITE => {
                // Never print real bytes: only refusals and empty writes.
                let (pointer, kind) = self.pointer(8);
                match self.random.below(3) {
                    0 => *a = [pointer, 0, 0, 0, 0, 0],
                    1 => {
                        *a = [
                            pointer,
                            (64 << 10) + 1 + self.random.below(1 << 20),
                            0,
                            0,
                            0,
                            0,
                        ]
                    }
                    _ => {
                        if kind == Pointer::Bad {
                            a[0] = pointer;
                            a[1] = 1 + self.random.below(100);
                            call.must_fail = true;
                        } else {
                            a[0] = scratch() + SCRATCH_BYTES - 4;
                            a[1] = 8 + self.random.below(PAGE);
                            call.must_fail = true;
                        }
                    }
                }
            }
            number::SPAWN => {
                let name: &[u8] = match self.random.below(6) {
                    0..=2 => b"hello",
                    3 => b"no-such-program",
                    4 => b"",
                    _ => b"a-program-name-longer-than-the-limit",
                };
                let argument: &[u8] = b"fz 0 1";
                a[0] = name.as_ptr() as u64;
                a[1] = name.len() as u64;
                a[2] = argument.as_ptr() as u64;
                a[3] = argument.len() as u64;
                match self.random.below(6) {
                    0 => a[0] = self.pointer(8).0,
                    1 => a[3] = 257 + self.random.below(1000),
                    2 => a[2] = self.bad_pointer(),
                    _ => {}
                }
                let count = self.random.below(10);
                let offset = self.random.below(256) * 4;
                self.handle_list(offset, count as usize);
                a[4] = scratch() + offset;
                a[5] = count;
                if self.random.chance(10) {
                    a[4] = self.pointer(36).0;
                }
                if self.child.is_some() && name == b"hello" {
                    // One child at a time keeps the process table roomy.
                    a[0] = 0;
                }
            }
            number::WAIT | number::KILL => {
                a[0] = match (self.child, self.random.below(4)) {
                    (Some(child), 0 | 1) => child,
                    (_, 2) => kipc_user::process_id().0,
                    _ => {
                        let extra = self.random.next();
                        self.random.pick(&[0, 1, u64::MAX, extra])
                    }
                };
            }
            number::YIELD | number::PROCESS_ID | number::LEDGER_RESET => {}
            number::SLEEP => a[0] = self.random.below(3),
            number::CLOCK => {
                a[0] = {
                    let extra = self.random.next();
                    self.random.pick(&[0, 1, 2, extra])
                }
            }
            number::KERNEL_STATS | number::RESOURCE_USAGE | number::LEDGER_READ => {
                let size = match call.number {
                    number::KERNEL_STATS => size_of::<kipc_abi::KernelStats>(),
                    number::RESOURCE_USAGE => size_of::<ResourceUsage>(),
                    _ => size_of::<kipc_abi::LedgerRecord>(),
                } as u64;
                let length = if self.random.chance(80) {
                    size
                } else {
                    self.length()
                };
                let (pointer, kind) = self.pointer(length);
                a[0] = pointer;
                a[1] = length;
                a[2] = match self.random.below(4) {
                    0 => kipc_user::process_id().0,
                    1 => self.random.next(),
                    _ => kipc_abi::LEDGER_GLOBAL,
                };
                call.must_fail =
                    matches!(kind, Pointer::Bad | Pointer::ReadOnly | Pointer::Straddle);
            }
            number::HANDLE_CLOSE
            | number::HANDLE_INFO
            | number::REGION_PAGES
            | number::MQUEUE_ATTRIBUTES
            | number::SEMAPHORE_POST => {
                let wanted = match call.number {
                    number::REGION_PAGES => Kind::Region,
                    number::MQUEUE_ATTRIBUTES => Kind::Queue,
                    number::SEMAPHORE_POST => Kind::Semaphore,
                    _ => self.random.pick(&[
                        Kind::Mailbox,
                        Kind::PipeRead,
                        Kind::Region,
                        Kind::Queue,
                        Kind::Semaphore,
                    ]),
                };
                a[0] = self.handle(wanted);
            }
            number::HANDLE_DUPLICATE | number::MAILBOX_MINT => {
                let wanted = if call.number == number::MAILBOX_MINT {
                    Kind::Mailbox
                } else {
                    self.random.pick(&[
                        Kind::Mailbox,
                        Kind::PipeWrite,
                        Kind::Region,
                        Kind::Semaphore,
                        Kind::Notification,
                    ])
                };
                a[0] = self.handle(wanted);
                a[1] = self.rights();
                a[2] = self.random.next();
            }
            number::MAILBOX_CREATE | number::PIPE_CREATE | number::NOTIFICATION_CREATE => {}
            number::MAILBOX_SEND | number::MAILBOX_REPLY => {
                let wanted = if call.number == number::MAILBOX_SEND {
                    Kind::Mailbox
                } else {
                    Kind::Reply
                };
                a[0] = self.handle(wanted);
                let length = if self.random.chance(70) {
                    self.random.below(200)
                } else {
                    self.length()
                };
                let (pointer, kind) = self.pointer(length);
                a[1] = pointer;
                a[2] = length;
                let count = if self.random.chance(60) {
                    0
                } else {
                    self.random.below(6)
                };
                let offset = 7 * 4096 - 64 - self.random.below(64) * 4;
                self.handle_list(offset, count as usize);
                a[3] = if self.random.chance(10) {
                    self.pointer(20).0
                } else {
                    scratch() + offset
                };
                a[4] = count;
                a[5] = self.deadline();
                call.must_fail = kind == Pointer::Bad && length > 0;
            }
            number::MAILBOX_RECEIVE => {
                a[0] = self.handle(Kind::Mailbox);
                let length = self.length();
                let (pointer, kind) = self.pointer(length);
                a[1] = pointer;
                a[2] = length;
                a[3] = match self.random.below(5) {
                    0 => 0,
                    1 => self.pointer(20).0,
                    _ => scratch() + self.random.below(64) * 4,
                };
                a[4] = self.deadline();
                call.must_fail = matches!(kind, Pointer::Bad | Pointer::ReadOnly) && length > 0;
                call.nonzero = true;
            }
            number::MAILBOX_CALL => self.mailbox_call(call),
            number::MAILBOX_REPLY_RECEIVE => {
                // Once its reply succeeds this call waits forever, so aim it only
                // where the reply must fail: a reply handle that is no 32-bit value.
                a[0] = self.handle(Kind::Mailbox);
                let length = self.length();
                a[1] = self.pointer(length).0;
                a[2] = length;
                a[3] = scratch() + self.random.below(64) * 4;
                a[4] = self.random.next() | 1 << 40;
                a[5] = self
                    .random
                    .below(length.saturating_mul(2).saturating_add(1));
                call.must_fail = true;
                call.nonzero = true;
            }
            number::MAILBOX_CALL_SHORT => {
                // Waits forever once sent: aim it where it must fail, with more
                // bytes than the message registers hold.
                a[0] = self.handle(Kind::Mailbox);
                a[1] = 65 + self.random.below(1 << 20);
                call.must_fail = true;
            }
            number::MAILBOX_REPLY_RECEIVE_SHORT => {
                // Likewise: a reply (never 0, which would receive) longer than
                // the message registers.
                a[0] = self.handle(Kind::Mailbox);
                let reply = (self.random.next() as u32 | 1) as u64;
                a[1] = reply | (65 + self.random.below(1 << 20)) << 32;
                call.must_fail = true;
            }
            number::PIPE_READ | number::PIPE_WRITE => {
                let reading = call.number == number::PIPE_READ;
                a[0] = self.handle(if reading {
                    Kind::PipeRead
                } else {
                    Kind::PipeWrite
                });
                let length = self.length();
                let (pointer, kind) = self.pointer(length);
                a[1] = pointer;
                a[2] = length;
                a[3] = self.deadline();
                call.must_fail =
                    length > 0 && (kind == Pointer::Bad || (reading && kind == Pointer::ReadOnly));
                call.nonzero = true;
            }
            number::FIFO_CREATE
            | number::FIFO_UNLINK
            | number::MQUEUE_OPEN
            | number::MQUEUE_UNLINK
            | number::FILE_UNLINK => {
                let (pointer, length) = self.name();
                a[0] = pointer;
                a[1] = length;
            }
            number::FIFO_OPEN => {
                let (pointer, length) = self.name();
                a[0] = pointer;
                a[1] = length;
                a[2] = {
                    let extra = self.random.next();
                    self.random.pick(&[0, 1, 0, 1, 2, extra])
                };
                a[3] = self.deadline();
            }
            number::MQUEUE_CREATE => {
                let (pointer, length) = self.name();
                a[0] = pointer;
                a[1] = length;
                a[2] = {
                    let extra = self.random.below(20);
                    self.random.pick(&[0, 1, 4, 16, 17, u64::MAX, extra])
                };
                a[3] = {
                    let extra = self.random.below(600);
                    self.random.pick(&[0, 1, 64, 4096, 4097, u64::MAX, extra])
                };
            }
            number::MQUEUE_SEND => {
                a[0] = self.handle(Kind::Queue);
                let length = if self.random.chance(70) {
                    self.random.below(100)
                } else {
                    self.length()
                };
                let (pointer, kind) = self.pointer(length);
                a[1] = pointer;
                a[2] = length;
                a[3] = {
                    let extra = self.random.below(40);
                    self.random.pick(&[0, 1, 31, 32, 255, 256, extra])
                };
                a[4] = self.deadline();
                call.must_fail = kind == Pointer::Bad && length > 0;
            }
            number::MQUEUE_RECEIVE => {
                a[0] = self.handle(Kind::Queue);
                let length = self.length();
                let (pointer, kind) = self.pointer(length);
                a[1] = pointer;
                a[2] = length;
                a[3] = self.deadline();
                call.must_fail = matches!(kind, Pointer::Bad | Pointer::ReadOnly) && length > 0;
                call.nonzero = true;
            }
            number::REGION_CREATE => {
                a[0] = {
                    let extra = self.random.below(70);
                    self.random
                        .pick(&[0, 1, 2, 4, 8, 64, 65, u64::MAX, 1 << 32, extra])
                };
            }
            number::REGION_MAP => {
                a[0] = self.handle(Kind::Region);
                a[1] = if self.random.chance(40) {
                    0
                } else {
                    self.target_address()
                };
                a[2] = {
                    let extra = self.random.next();
                    self.random.pick(&[0, 1, 0, 1, 2, extra])
                };
            }
            number::REGION_UNMAP => {
                a[0] = if self.mapping_count > 0 && self.random.chance(50) {
                    self.mappings[self.random.below(self.mapping_count as u64) as usize]
                } else {
                    self.target_address()
                };
                if a[0] == self.counters {
                    a[0] = 0;
                }
            }
            number::PAGES_LOAN => {
                let (address, pages) = match self.random.below(6) {
                    0..=2 => {
                        let first = self.random.below(LOAN_PAGES);
                        let pages = 1 + self.random.below(LOAN_PAGES - first);
                        (loan_area() + first * PAGE, pages)
                    }
                    3 => {
                        let address = self.target_address();
                        (address, clamp_loan(address, self.random.below(4)))
                    }
                    4 if self.random.chance(30) => (scratch() + SCRATCH_BYTES, 1),
                    5 if self.mapping_count > 0 => (
                        self.mappings[self.random.below(self.mapping_count as u64) as usize],
                        1,
                    ),
                    _ => (loan_area(), self.random.pick(&[0, 65, u64::MAX, 1 << 52])),
                };
                a[0] = address;
                a[1] = pages;
                if address == self.counters {
                    a[0] = 0;
                }
            }
            number::SEMAPHORE_CREATE => {
                a[0] = {
                    let extra = self.random.next();
                    self.random
                        .pick(&[0, 1, 2, u64::from(u32::MAX), 1 << 32, extra])
                };
            }
            number::SEMAPHORE_WAIT | number::NOTIFICATION_WAIT => {
                a[0] = self.handle(if call.number == number::SEMAPHORE_WAIT {
                    Kind::Semaphore
                } else {
                    Kind::Notification
                });
                a[1] = self.deadline();
            }
            number::SEMAPHORE_POST_WAIT => {
                a[0] = self.handle(Kind::Semaphore);
                a[1] = self.handle(Kind::Semaphore);
                a[2] = self.deadline();
            }
            number::NOTIFICATION_SIGNAL => {
                a[0] = self.handle(Kind::Notification);
                a[1] = {
                    let extra = self.random.next();
                    self.random.pick(&[0, 1, u64::MAX, extra])
                };
            }
            number::FILE_OPEN | number::FILE_GENERATE => {
                let (pointer, length) = self.name();
                a[0] = pointer;
                a[1] = length;
                if call.number == number::FILE_OPEN {
                    a[2] = {
                        let extra = self.random.next();
                        self.random.pick(&[0, 1, 3, 5, 7, extra])
                    };
                } else {
                    a[2] = {
                        let extra = self.random.below(20_000);
                        self.random
                            .pick(&[0, 1, 4096, 5000, 3 * 4096, u64::MAX, extra])
                    };
                    a[3] = self.random.next();
                }
            }
            number::FILE_READ | number::FILE_WRITE => {
                a[0] = self.file_descriptor();
                let length = self.length();
                let (pointer, _) = self.pointer(length);
                a[1] = pointer;
                a[2] = length;
            }
            number::FILE_CLOSE | number::FILE_SIZE | number::FILE_CHECKSUM => {
                a[0] = self.file_descriptor();
            }
            number::FILE_SEEK => {
                a[0] = self.file_descriptor();
                a[1] = {
                    let extra = self.random.below(20_000);
                    self.random.pick(&[0, 1, 4096, u64::MAX, extra])
                };
            }
            number::FILE_LEND => {
                a[0] = self.file_descriptor();
                a[1] = {
                    let extra = self.random.below(8);
                    self.random.pick(&[0, 4096, 1, !0xfff, extra * PAGE])
                };
                a[2] = self.random.pick(&[0, 1, 2, 65, u64::MAX]);
            }
            number::FILE_APPEND_PAGES => {
                a[0] = self.file_descriptor();
                let first = self.random.below(LOAN_PAGES);
                a[1] = if self.random.chance(70) {
                    loan_area() + first * PAGE
                } else {
                    self.target_address()
                };
                // The file system's page checks are not kipc's: keep even
                // absurd counts inside the loan pages.
                a[2] = clamp_loan(a[1], self.random.pick(&[0, 1, 2, LOAN_PAGES]));
                if a[1] >= 0x0000_8000_0000_0000 && self.random.chance(50) {
                    a[2] = self.random.pick(&[65, u64::MAX]);
                }
                a[3] = {
                    let extra = self.random.below(10_000);
                    self.random.pick(&[0, 1, 4096, 8192, u64::MAX, extra])
                };
            }
            number::SIGNAL_ACTION
            | number::SIGNAL_MASK
            | number::SIGNAL_SEND
            | number::SIGNAL_RAISE
            | number::ALARM
            | number::SIGNAL_SUSPEND
            | number::PROCESS_HANDLE => self.signal_arguments(call),
            number::SIGNAL_PENDING => {}
            _ => {
                // An unknown number: all garbage.
                for argument in a.iter_mut() {
                    *argument = self.random.next();
                }
            }
        }
    }

    fn file_descriptor(&mut self) -> u64 {
        match self.random.below(6) {
            0 => self.random.next(),
            1 => u64::MAX,
            _ => self.random.below(10),
        }
    }

    /// `MAILBOX_CALL` waits for a reply with no deadline, and this process
    /// answers nobody: aim it only where it must fail before waiting.
    fn mailbox_call(&mut self, call: &mut Call) {
        let writable_mailbox = |entry: &Entry| {
            entry.live
                && matches!(entry.kind, Kind::Mailbox | Kind::Unknown)
                && entry.rights & kipc::Rights::WRITE.bits() != 0
        };
        let a = &mut call.arguments;
        let mut payload_length = self.random.below(100);
        let (mut payload, mut payload_kind) = self.pointer(payload_length);
        let mut handle = self.handle(Kind::Mailbox);
        let target_is_open = self
            .entry_of(handle)
            .is_some_and(|entry| writable_mailbox(&entry))
            || self.entries[..self.length].iter().any(|entry| {
                writable_mailbox(entry) && u64::from(entry.raw) == handle & 0xffff_ffff
            });
        let mut array = scratch() + self.random.below(64) * 4;
        let count = self.random.below(6) as u32;
        scratch_write_u32s(array - scratch(), &[count]);
        self.handle_list(array - scratch() + 4, 4);
        if target_is_open {
            // A mailbox it could deliver to: make the message itself bad.
            match self.random.below(4) {
                0 => {
                    payload_length = 4097 + self.random.below(100);
                    payload = scratch();
                }
                1 => array = self.pointer(20).0 | 1 << 63,
                2 => scratch_write_u32s(array - scratch(), &[5 + self.random.below(100) as u32]),
                _ => {
                    while payload_kind != Pointer::Bad {
                        (payload, payload_kind) = self.pointer(1);
                    }
                    payload_length = 1 + self.random.below(64);
                }
            }
            if handle > u64::from(u32::MAX) {
                handle &= 0xffff_ffff;
            }
        }
        let (reply, _) = self.pointer(64);
        *a = [handle, payload, payload_length, reply, 64, array];
        if self.random.chance(10) && !target_is_open {
            a[5] = 0;
        }
    }

    /// Arguments of the signal calls. The worker catches SIGUSR1, SIGUSR2 and
    /// SIGALRM and ignores SIGPIPE (see [`worker`]); the fuzzer keeps it so:
    /// it only installs that handler or (except for SIGALRM) ignores, and
    /// only sends or raises those signals (or SIGCHLD), so a
    /// handler running at any moment is part of the test, a death is not.
    /// `SIGNAL_RETURN` is not fuzzed (outside a handler it kills by design;
    /// the signals scenario checks forged frames), and a suspension always
    /// has an alarm armed and SIGALRM let through, so it ends.
    fn signal_arguments(&mut self, call: &mut Call) {
        const SAFE: [u64; 4] = [10, 12, 14, 17]; // USR1, USR2, ALRM, CHLD
        let a = &mut call.arguments;
        let invalid = self.random.pick(&[0, 32, 64, u64::MAX]);
        match call.number {
            number::SIGNAL_ACTION => {
                let roll = self.random.below(10);
                a[0] = match roll {
                    0 => invalid,
                    1 => 9, // SIGKILL: only a query may succeed
                    _ => self.random.pick(&[10, 12, 13, 14, 17]),
                };
                let mut record = kipc_abi::SignalActionRecord {
                    handler: caught as *const () as u64,
                    mask: self.random.next(),
                    // RESTART and NODEFER; never RESETHAND, which would leave
                    // the default action (the end of the worker) behind.
                    flags: self.random.below(4),
                    restorer: kipc_user::signal::kipc_signal_restorer as *const () as u64,
                };
                let mut refused = roll == 0;
                let mut bad_record = false;
                match self.random.below(8) {
                    0 if a[0] != 14 => record.handler = kipc_abi::signal::IGNORE,
                    1 => {
                        record.handler = 0xffff_8000_0000_0000 + self.random.below(PAGE);
                        bad_record = true;
                    }
                    2 => {
                        record.restorer = u64::MAX - self.random.below(PAGE);
                        bad_record = record.handler != kipc_abi::signal::IGNORE;
                    }
                    3 => {
                        record.flags = 1 << (8 + self.random.below(40));
                        bad_record = true;
                    }
                    _ => {}
                }
                // SAFETY: a private static only this (single-threaded) worker
                // touches, and the kernel only reads it.
                unsafe { *addr_of_mut!(ACTION) = record };
                let (new, old) = match self.random.below(6) {
                    0 => (0, scratch() + self.random.below(64) * 8),
                    1 => {
                        refused = true;
                        // (0 would mean "no record": a bad pointer is never 0 here.)
                        (self.bad_pointer().max(1), 0)
                    }
                    2 => {
                        refused = true;
                        (addr_of!(ACTION) as u64, self.bad_pointer().max(1))
                    }
                    _ => (
                        addr_of!(ACTION) as u64,
                        scratch() + self.random.below(64) * 8,
                    ),
                };
                // The record is read (and judged) only when one is passed.
                if new != 0 && (bad_record || a[0] == 9) {
                    refused = true;
                }
                a[1] = new;
                a[2] = old;
                call.must_fail = refused;
            }
            number::SIGNAL_MASK => {
                a[0] = self.random.below(4);
                a[1] = self.random.next();
                call.must_fail = a[0] == 3;
            }
            number::SIGNAL_SEND | number::SIGNAL_RAISE => {
                let signal = if self.random.chance(15) {
                    invalid
                } else {
                    self.random.pick(&SAFE)
                };
                if call.number == number::SIGNAL_SEND {
                    // To itself or its `hello` child: a child ended by a
                    // default action is only a child gone early.
                    a[0] = self.handle(Kind::Process);
                    a[1] = signal;
                } else {
                    a[0] = signal;
                }
                call.must_fail = signal == invalid;
            }
            number::ALARM => a[0] = self.random.pick(&[0, 1, 2, 3, u64::MAX]),
            number::SIGNAL_SUSPEND => {
                let armed = kipc_user::signal::alarm_ms(1 + self.random.below(3));
                check!(armed.is_ok(), "arm the alarm: {armed:?}");
                a[0] = self.random.next() & !(1 << 14);
                call.must_fail = true;
            }
            _ => {
                // PROCESS_HANDLE: itself, its child, or anyone.
                let me = kipc_user::process_id().0;
                a[0] = match (self.child, self.random.below(4)) {
                    (_, 0) => me,
                    (Some(child), 1) => child,
                    _ => self.random.next(),
                };
            }
        }
    }

    fn succeeded(&mut self, call: &Call, value: u64, rdx: u64, r8: u64) {
        let a = call.arguments;
        let raw = value as u32;
        let all = kipc::Rights::all().bits();
        match call.number {
            number::MAILBOX_CREATE => self.add(raw, Kind::Mailbox, all),
            number::PIPE_CREATE => {
                self.add(raw, Kind::PipeRead, all);
                self.add(rdx as u32, Kind::PipeWrite, all);
            }
            number::MQUEUE_CREATE | number::MQUEUE_OPEN => self.add(raw, Kind::Queue, all),
            number::REGION_CREATE | number::PAGES_LOAN => self.add(raw, Kind::Region, all),
            number::SEMAPHORE_CREATE => self.add(raw, Kind::Semaphore, all),
            number::PROCESS_HANDLE => self.add(raw, Kind::Process, all),
            number::NOTIFICATION_CREATE => self.add(raw, Kind::Notification, all),
            number::FIFO_OPEN => {
                let kind = if a[2] == 1 {
                    Kind::PipeWrite
                } else {
                    Kind::PipeRead
                };
                self.add(raw, kind, all);
            }
            number::HANDLE_DUPLICATE | number::MAILBOX_MINT => {
                let kind = self
                    .entry_of(a[0])
                    .map_or(Kind::Unknown, |entry| entry.kind);
                let kind = if call.number == number::MAILBOX_MINT {
                    Kind::Mailbox
                } else {
                    kind
                };
                self.add(raw, kind, a[1] as u32);
            }
            number::HANDLE_CLOSE => self.kill_entry(a[0] as u32),
            number::MAILBOX_SEND | number::MAILBOX_REPLY => {
                // The handles moved out with the message; a reply handle is
                // used up by its reply.
                for index in 0..a[4].min(4) {
                    let raw = scratch_read_u32(a[3].wrapping_sub(scratch()) + index * 4);
                    self.kill_entry(raw);
                }
                if call.number == number::MAILBOX_REPLY {
                    self.kill_entry(a[0] as u32);
                }
            }
            number::MAILBOX_RECEIVE => {
                let array = a[3];
                if array >= scratch() && array < scratch() + SCRATCH_BYTES {
                    let offset = array - scratch();
                    let count = scratch_read_u32(offset).min(4);
                    for index in 0..u64::from(count) {
                        let raw = scratch_read_u32(offset + 4 + index * 4);
                        self.add(raw, Kind::Unknown, all);
                    }
                }
                if r8 != 0 {
                    self.add(r8 as u32, Kind::Reply, all);
                }
            }
            number::REGION_MAP
                if self.mapping_count < self.mappings.len() && value != self.counters =>
            {
                self.mappings[self.mapping_count] = value;
                self.mapping_count += 1;
            }
            number::REGION_UNMAP => {
                if let Some(index) = self.mappings[..self.mapping_count]
                    .iter()
                    .position(|&address| address == a[0])
                {
                    self.mapping_count -= 1;
                    self.mappings[index] = self.mappings[self.mapping_count];
                }
            }
            number::SPAWN => self.child = Some(value),
            number::WAIT | number::KILL if Some(a[0]) == self.child => {
                if call.number == number::WAIT {
                    self.child = None;
                } else {
                    // Killed: reap it so the slot and the zombie go away.
                    let _ = kipc_user::wait(ProcessId(a[0]));
                    self.child = None;
                }
            }
            _ => {}
        }
    }
}
