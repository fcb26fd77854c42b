//! `experiment`: a file travels from a server process to a client process
//! through every mechanism, and the kernel's own counters say what it cost.
//!
//! For each mechanism: generate nothing new (the input file stays the same),
//! start `xfer server M` and `xfer client M`, wait until both are set up,
//! reset the copy ledger, start the clock, let them run, stop the clock, read
//! the ledger and the kernel's counters, and have the kernel checksum the
//! output file against the input. Then print one table.
//!
//! Command line (the kernel passes its own): `size_kib=N` (default 1024) or
//! `size_bytes=N`,
//! `only=MECHANISM`, `icount=1` (set by the runner when QEMU counts
//! instructions, so the time-stamp counter is a guest-instruction count).

#![no_std]
#![no_main]

use kipc::Rights;
use kipc_abi::{DIRECTIONS, LedgerRecord};
use kipc_user::ipc::{self, Deadline, Handle};
use kipc_user::{check, file, println, spawn, wait};

kipc_user::entry!(main);

/// The mechanisms, in table order.
const MECHANISMS: [&str; 7] = [
    "pipe",
    "fifo",
    "mqueue",
    "mailbox",
    "mailbox-direct",
    "shm",
    "loan",
];

/// Ledger index of each direction (kipc's `Direction`).
const USER_TO_KERNEL: usize = 0;
const KERNEL_TO_USER: usize = 1;
const KERNEL_TO_KERNEL: usize = 2;
const USER_TO_USER: usize = 3;

struct Row {
    mechanism: &'static str,
    bytes: u64,
    copied: [u64; DIRECTIONS],
    pages_mapped: u64,
    pages_loaned: u64,
    syscalls: u64,
    switches: u64,
    instructions: u64,
    verified: bool,
}

fn argument<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_ascii_whitespace()
        .find_map(|word| word.strip_prefix(key)?.strip_prefix('='))
}

fn main(start: kipc_user::Start) -> u32 {
    let size_kib: u64 = argument(start.argument, "size_kib")
        .and_then(|value| value.parse().ok())
        .unwrap_or(1024);
    let size: u64 = argument(start.argument, "size_bytes")
        .and_then(|value| value.parse().ok())
        .unwrap_or(size_kib * 1024);
    let only = argument(start.argument, "only");
    // Bytes per step for the byte streams and the shared region; messages
    // (queues, mailboxes) are at most a page, loans move whole files.
    let chunk: usize = argument(start.argument, "chunk_kib")
        .and_then(|value| value.parse::<usize>().ok())
        .map_or(PAGE, |kib| kib * 1024);
    check!(
        (PAGE..=256 * 1024).contains(&chunk) && chunk.is_multiple_of(PAGE),
        "chunk_kib: whole pages up to 256"
    );
    let icount = argument(start.argument, "icount") == Some("1");
    let input_sum = file::generate("input", size, 0x6b69_7063).expect("generate input");
    println!("experiment: moving a {size}-byte file from a server to a client, once per mechanism");
    let mut rows: heapless::Vec<Row, 8> = heapless::Vec::new();
    for mechanism in MECHANISMS {
        if only.is_some_and(|wanted| wanted != mechanism) {
            continue;
        }
        let chunked =
            matches!(mechanism, "pipe" | "fifo") || (mechanism == "shm" && slots_for(chunk) > 0);
        if chunk != PAGE && !chunked {
            continue;
        }
        let row = run(mechanism, size, input_sum, chunk);
        let _ = rows.push(row);
    }
    print_table(&rows, size, icount);
    file::unlink("input").expect("unlink input");
    let all_verified = rows.iter().all(|row| row.verified);
    check!(all_verified, "an output file differs from the input");
    println!(
        "experiment: {} mechanisms, every output verified",
        rows.len()
    );
    0
}

/// Handles for one run: the three start/stop semaphores plus the
/// mechanism's own, for the server and for the client.
struct Setup {
    server: heapless::Vec<u32, 8>,
    client: heapless::Vec<u32, 8>,
    /// Handles the experiment closes after the children have their copies.
    ours: heapless::Vec<Handle, 8>,
}

fn setup(mechanism: &str, ready: Handle, go: Handle, done: Handle, chunk: usize) -> Setup {
    let mut setup = Setup {
        server: heapless::Vec::new(),
        client: heapless::Vec::new(),
        ours: heapless::Vec::new(),
    };
    for handle in [ready, go, done] {
        let _ = setup.server.push(handle.0);
        let _ = setup.client.push(handle.0);
    }
    match mechanism {
        "pipe" => {
            let (read, write) = ipc::pipe().expect("pipe");
            let _ = setup.server.push(write.0);
            let _ = setup.client.push(read.0);
            let _ = setup.ours.extend_from_slice(&[read, write]);
        }
        "fifo" => ipc::fifo_create("xfer").expect("fifo"),
        "mqueue" => {
            let queue = ipc::mqueue_create("xfer", 16, 4096).expect("queue");
            let _ = setup.ours.push(queue);
        }
        "mailbox" => {
            let mailbox = ipc::mailbox_create().expect("mailbox");
            let batch = ipc::semaphore_create(0).expect("semaphore");
            let drained = ipc::semaphore_create(0).expect("semaphore");
            for handle in [mailbox, batch, drained] {
                let _ = setup.server.push(handle.0);
                let _ = setup.client.push(handle.0);
                let _ = setup.ours.push(handle);
            }
        }
        "mailbox-direct" | "loan" => {
            let mailbox = ipc::mailbox_create().expect("mailbox");
            let _ = setup.server.push(mailbox.0);
            let _ = setup.client.push(mailbox.0);
            let _ = setup.ours.push(mailbox);
        }
        "shm" => {
            let slots = slots_for(chunk);
            let region = ipc::region_create(1 + slots * chunk / PAGE).expect("region");
            let filled = ipc::semaphore_create(0).expect("semaphore");
            let free = ipc::semaphore_create(slots as u32).expect("semaphore");
            // The client only reads: give it a handle without WRITE.
            let read_only = ipc::duplicate(region, Rights::READ | Rights::MAP | Rights::TRANSFER)
                .expect("read-only duplicate");
            let _ = setup
                .server
                .extend_from_slice(&[region.0, filled.0, free.0]);
            let _ = setup
                .client
                .extend_from_slice(&[read_only.0, filled.0, free.0]);
            let _ = setup
                .ours
                .extend_from_slice(&[region, read_only, filled, free]);
        }
        _ => {}
    }
    setup
}

/// A page.
const PAGE: usize = 4096;

/// Slots of the shared-region ring for `chunk`-byte slots (as in `xfer`):
/// up to 8, as many as fit beside the length page in a 64-page region.
const fn slots_for(chunk: usize) -> usize {
    let fit = 63 / (chunk / PAGE);
    if fit < 8 { fit } else { 8 }
}

fn snapshot() -> (kipc_abi::KernelStats, u64) {
    let stats = kipc_user::kernel_stats().expect("kernel stats");
    (stats, kipc_user::tsc())
}

fn run(mechanism: &'static str, size: u64, input_sum: u64, chunk: usize) -> Row {
    let ready = ipc::semaphore_create(0).expect("semaphore");
    let go = ipc::semaphore_create(0).expect("semaphore");
    let done = ipc::semaphore_create(0).expect("semaphore");
    let setup = setup(mechanism, ready, go, done, chunk);
    let argument = kipc_user::format_line!("server {mechanism} {size} {chunk}");
    let server_argument = argument.as_str();
    let server = spawn("xfer", server_argument, &setup.server).expect("spawn server");
    let argument = kipc_user::format_line!("client {mechanism} {size} {chunk}");
    let client_argument = argument.as_str();
    let client = spawn("xfer", client_argument, &setup.client).expect("spawn client");
    for handle in &setup.ours {
        ipc::close(*handle).expect("close our copy");
    }
    for _ in 0..2 {
        ipc::semaphore_wait(ready, Deadline::Forever).expect("wait ready");
    }
    ipc::ledger_reset().expect("ledger reset");
    // With a breakdown kernel (`bench --breakdown`), the phases of this run.
    let split = kipc_user::breakdown().is_ok();
    let (before, start) = snapshot();
    ipc::semaphore_post(go).expect("go");
    ipc::semaphore_post(go).expect("go");
    for _ in 0..2 {
        ipc::semaphore_wait(done, Deadline::Forever).expect("wait done");
    }
    let (after, end) = snapshot();
    if split && let Ok(phases) = kipc_user::breakdown() {
        println!(
            "EXPERIMENT-PHASES mechanism={mechanism} chunk={chunk} bytes={size} total={} dispatch={} kipc={} copy={} wake={} scheduler={} switch={} host_copy={} syscalls={}",
            end.wrapping_sub(start),
            phases.dispatch,
            phases.kipc,
            phases.copy,
            phases.wake,
            phases.scheduler,
            phases.switch,
            phases.host_copy,
            after.syscalls - before.syscalls
        );
    }
    let ledger = ipc::ledger().expect("ledger");
    check!(wait(server) == Ok(0), "{mechanism} server failed");
    check!(wait(client) == Ok(0), "{mechanism} client failed");
    for handle in [ready, go, done] {
        ipc::close(handle).expect("close semaphore");
    }
    match mechanism {
        "fifo" => ipc::fifo_unlink("xfer").expect("unlink fifo"),
        "mqueue" => ipc::mqueue_unlink("xfer").expect("unlink queue"),
        _ => {}
    }
    let output = file::open("output", 0).expect("open output");
    let verified = output.size() == Ok(size) && output.checksum() == Ok(input_sum);
    output.close().expect("close output");
    file::unlink("output").expect("unlink output");
    let copied = directions(&ledger);
    let row = Row {
        mechanism,
        bytes: size,
        copied,
        pages_mapped: ledger.pages_mapped.iter().sum(),
        pages_loaned: ledger.pages_loaned.iter().sum(),
        syscalls: after.syscalls - before.syscalls,
        switches: after.context_switches - before.context_switches,
        instructions: end.wrapping_sub(start),
        verified,
    };
    // One machine-readable line per run, for tests and tools.
    println!(
        "EXPERIMENT mechanism={} chunk={chunk} bytes={} user_to_kernel={} kernel_to_user={} kernel_to_kernel={} user_to_user={} copy_operations={} pages_mapped={} pages_loaned={} syscalls={} context_switches={} tsc={} verified={}",
        row.mechanism,
        row.bytes,
        copied[USER_TO_KERNEL],
        copied[KERNEL_TO_USER],
        copied[KERNEL_TO_KERNEL],
        copied[USER_TO_USER],
        ledger.operations.iter().flatten().sum::<u64>(),
        row.pages_mapped,
        row.pages_loaned,
        row.syscalls,
        row.switches,
        row.instructions,
        if verified { "yes" } else { "no" }
    );
    row
}

/// Bytes copied in each direction, over all mechanisms (file copies included).
fn directions(ledger: &LedgerRecord) -> [u64; DIRECTIONS] {
    let mut totals = [0u64; DIRECTIONS];
    for row in ledger.bytes.iter() {
        for (total, bytes) in totals.iter_mut().zip(row) {
            *total += bytes;
        }
    }
    totals
}

/// `value / size` with two decimals, as text.
struct PerByte(u64, u64);

impl core::fmt::Display for PerByte {
    fn fmt(&self, out: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let hundredths = (self.0 * 100 + self.1 / 2) / self.1.max(1);
        let text = kipc_user::format_line!("{}.{:02}", hundredths / 100, hundredths % 100);
        out.pad(text.as_str())
    }
}

fn print_table(rows: &[Row], size: u64, icount: bool) {
    println!();
    println!(
        "  copies per byte of payload, by direction (u=user, k=kernel), counted by the kernel's ledger:"
    );
    println!(
        "  {:<15} {:>9} {:>6} {:>6} {:>6} {:>6} {:>7} {:>6} {:>8} {:>8} {:>10} {:>8}",
        "mechanism",
        "bytes",
        "u->k",
        "k->u",
        "k->k",
        "u->u",
        "copies",
        "pages",
        "syscalls",
        "switches",
        "instr/KiB",
        "verified"
    );
    for row in rows {
        let total: u64 = row.copied.iter().sum();
        let instructions = if icount {
            kipc_user::format_line!("{}", row.instructions / (size / 1024).max(1))
        } else {
            kipc_user::format_line!("n/a")
        };
        println!(
            "  {:<15} {:>9} {:>6} {:>6} {:>6} {:>6} {:>7} {:>6} {:>8} {:>8} {:>10} {:>8}",
            row.mechanism,
            row.bytes,
            PerByte(row.copied[USER_TO_KERNEL], size),
            PerByte(row.copied[KERNEL_TO_USER], size),
            PerByte(row.copied[KERNEL_TO_KERNEL], size),
            PerByte(row.copied[USER_TO_USER], size),
            PerByte(total, size),
            row.pages_mapped + row.pages_loaned,
            row.syscalls,
            row.switches,
            instructions.as_str(),
            if row.verified { "yes" } else { "NO" }
        );
    }
    println!();
    println!(
        "  Reading the table: a byte sent through a pipe, FIFO, queue or buffered mailbox is copied"
    );
    println!(
        "  four times (file -> server buffer -> kernel -> client buffer -> file). A mailbox call"
    );
    println!(
        "  whose caller is already waiting takes the reply straight from the server's buffer into"
    );
    println!(
        "  the client's (3). A shared region is filled from the file and written to the file (2)."
    );
    println!(
        "  A page loan moves the file's own pages: 0 copies, only pages mapped (the 'pages' column)."
    );
    if !icount {
        println!(
            "  (instr/KiB needs `-icount`: run `cargo run -- --icount` to count guest instructions.)"
        );
    }
    println!();
}
