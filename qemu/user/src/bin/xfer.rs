//! `xfer ROLE MECHANISM SIZE [CHUNK]`: one side of the file-transfer
//! experiment (`CHUNK`: bytes per step for pipes, FIFOs and shared regions,
//! whole pages; default one page).
//!
//! The server reads the file `input` and delivers it through MECHANISM; the
//! client receives it and writes the file `output`. `experiment` starts both
//! and passes the handles they need, always in this order:
//!
//! 0. `ready` semaphore: each side posts it once its setup is done;
//! 1. `go` semaphore: the experiment posts it when the clock starts;
//! 2. `done` semaphore: each side posts it when its last byte is through;
//! 3. onwards: the mechanism's own handles (pipe end, mailbox, region, ...).
//!
//! Where the bytes are copied, per mechanism (what the ledger must show):
//!
//! | mechanism       | server                         | client                          | copies/byte |
//! |-----------------|--------------------------------|---------------------------------|-------------|
//! | pipe, fifo      | file -> buffer, buffer -> pipe | pipe -> buffer, buffer -> file  | 4 |
//! | mqueue          | file -> buffer, buffer -> queue| queue -> buffer, buffer -> file | 4 |
//! | mailbox         | file -> buffer, buffer -> box  | box -> buffer, buffer -> file   | 4 |
//! | mailbox-direct  | file -> buffer, reply -> the waiting caller's buffer | buffer -> file | 3 |
//! | shm             | file -> shared region          | shared region -> file           | 2 |
//! | loan            | file pages lent, loaned        | pages mapped, appended to file  | 0 |

#![no_std]
#![no_main]

use kipc_user::file::{self, File};
use kipc_user::ipc::{self, Deadline, Handle};
use kipc_user::shared::{Access, Shared};
use kipc_user::{check, println};

kipc_user::entry!(main);

/// Bytes moved per step by default (one page); pipes, FIFOs and shared
/// regions take a larger chunk as the fifth word of the argument.
const CHUNK: usize = 4096;
/// The largest chunk (pipes and FIFOs).
const MAX_CHUNK: usize = 256 * 1024;
/// The most pages a region may have in the demo kernel (`REGION_PAGES`).
const REGION_PAGES: usize = 64;

/// Slots in the shared-region ring for `chunk`-byte slots (the first page
/// holds their lengths): up to 8, as many as fit in one region.
pub const fn slots_for(chunk: usize) -> usize {
    let fit = (REGION_PAGES - 1) / (chunk / CHUNK);
    if fit < 8 { fit } else { 8 }
}
/// Pages per page loan.
const LOAN_PAGES: usize = 64;

struct Context {
    ready: Handle,
    go: Handle,
    done: Handle,
    extra: &'static [u32],
    size: u64,
    /// Bytes per step (pipes, FIFOs, shared regions).
    chunk: usize,
}

impl Context {
    fn extra(&self, index: usize) -> Handle {
        Handle(self.extra[index])
    }

    /// Setup finished: tell the experiment, then wait for the start.
    fn start(&self) {
        ipc::semaphore_post(self.ready).expect("post ready");
        ipc::semaphore_wait(self.go, Deadline::Forever).expect("wait go");
    }

    fn finish(&self) {
        ipc::semaphore_post(self.done).expect("post done");
    }
}

#[repr(C, align(4096))]
struct Page([u8; CHUNK]);

static mut BUFFER: Page = Page([0; CHUNK]);

/// The page-sized transfer buffer (messages are at most a page).
fn buffer() -> &'static mut [u8; CHUNK] {
    // SAFETY: each process is single-threaded and uses the buffer from one
    // place at a time.
    unsafe { &mut (*core::ptr::addr_of_mut!(BUFFER)).0 }
}

/// A `chunk`-byte buffer for a byte stream: the page above, or for larger
/// chunks a private region mapped before the clock starts (so page-sized
/// runs carry no larger process than before).
fn chunk_buffer(chunk: usize) -> &'static mut [u8] {
    if chunk == CHUNK {
        return buffer();
    }
    let region = ipc::region_create(chunk / CHUNK).expect("chunk region");
    let address = ipc::region_map(region, None, true).expect("map chunk region");
    // SAFETY: `chunk` bytes of a fresh read-write mapping of our own, kept
    // until the process exits and used from one place at a time.
    unsafe { core::slice::from_raw_parts_mut(address as *mut u8, chunk) }
}

fn main(start: kipc_user::Start) -> u32 {
    let mut words = start.argument.split_ascii_whitespace();
    let role = words.next().unwrap_or("");
    let mechanism = words.next().unwrap_or("");
    let size: u64 = words.next().and_then(|word| word.parse().ok()).unwrap_or(0);
    let chunk: usize = words
        .next()
        .and_then(|word| word.parse().ok())
        .unwrap_or(CHUNK);
    check!(
        (CHUNK..=MAX_CHUNK).contains(&chunk) && chunk.is_multiple_of(CHUNK),
        "chunk {chunk}: whole pages, at most {MAX_CHUNK}"
    );
    check!(start.handles.len() >= 3, "xfer needs ready/go/done handles");
    let context = Context {
        ready: Handle(start.handles[0]),
        go: Handle(start.handles[1]),
        done: Handle(start.handles[2]),
        extra: &start.handles[3..],
        size,
        chunk,
    };
    match (role, mechanism) {
        ("server", "pipe") => pipe_server(&context, context.extra(0)),
        ("client", "pipe") => pipe_client(&context, context.extra(0)),
        ("server", "fifo") => {
            let end =
                ipc::fifo_open("xfer", true, Deadline::Forever).expect("open fifo for writing");
            pipe_server(&context, end)
        }
        ("client", "fifo") => {
            let end =
                ipc::fifo_open("xfer", false, Deadline::Forever).expect("open fifo for reading");
            pipe_client(&context, end)
        }
        ("server", "mqueue") => queue_server(&context),
        ("client", "mqueue") => queue_client(&context),
        ("server", "mailbox") => mailbox_server(&context),
        ("client", "mailbox") => mailbox_client(&context),
        ("server", "mailbox-direct") => call_server(&context),
        ("client", "mailbox-direct") => call_client(&context),
        ("server", "shm") => region_server(&context),
        ("client", "shm") => region_client(&context),
        ("server", "loan") => loan_server(&context),
        ("client", "loan") => loan_client(&context),
        _ => {
            println!("xfer: unknown role/mechanism {role} {mechanism}");
            2
        }
    }
}

fn open_input() -> File {
    file::open("input", 0).expect("open input")
}

fn create_output() -> File {
    file::create("output").expect("create output")
}

/// Reads the next chunk of the input into `into`; 0 at the end.
fn next_chunk(input: File, into: &mut [u8]) -> usize {
    input.read(into).expect("read input")
}

fn write_out(output: File, data: &[u8]) {
    let written = output.write(data).expect("write output");
    check!(
        written == data.len(),
        "short file write {written} of {}",
        data.len()
    );
}

// ----- pipes and FIFOs -----

fn pipe_server(context: &Context, pipe: Handle) -> u32 {
    let input = open_input();
    let chunk = chunk_buffer(context.chunk);
    context.start();
    loop {
        let length = next_chunk(input, chunk);
        if length == 0 {
            break;
        }
        ipc::write_all(pipe, &chunk[..length]).expect("pipe write");
    }
    ipc::close(pipe).expect("close the write end");
    context.finish();
    0
}

fn pipe_client(context: &Context, pipe: Handle) -> u32 {
    let output = create_output();
    let chunk = chunk_buffer(context.chunk);
    context.start();
    let mut total = 0u64;
    loop {
        let length = ipc::read(pipe, chunk, Deadline::Forever).expect("pipe read");
        if length == 0 {
            break;
        }
        write_out(output, &chunk[..length]);
        total += length as u64;
    }
    check!(
        total == context.size,
        "pipe delivered {total} of {} bytes",
        context.size
    );
    context.finish();
    0
}

// ----- message queues -----

fn queue_server(context: &Context) -> u32 {
    let input = open_input();
    let queue = ipc::mqueue_open("xfer").expect("open queue");
    context.start();
    loop {
        let length = next_chunk(input, buffer());
        ipc::mqueue_send(queue, &buffer()[..length], 0, Deadline::Forever).expect("queue send");
        if length == 0 {
            break;
        }
    }
    context.finish();
    0
}

fn queue_client(context: &Context) -> u32 {
    let output = create_output();
    let queue = ipc::mqueue_open("xfer").expect("open queue");
    context.start();
    loop {
        let (length, _) =
            ipc::mqueue_receive(queue, buffer(), Deadline::Forever).expect("queue receive");
        if length == 0 {
            break;
        }
        write_out(output, &buffer()[..length]);
    }
    context.finish();
    0
}

// ----- mailboxes, buffered: whole batches are queued before the client looks -----

fn mailbox_server(context: &Context) -> u32 {
    let input = open_input();
    let (mailbox, batch, drained) = (context.extra(0), context.extra(1), context.extra(2));
    context.start();
    let mut finished = false;
    while !finished {
        // As many as this sender may have waiting in one mailbox (its quota).
        for _ in 0..kipc_abi::BUFFERED_PER_SENDER {
            let length = next_chunk(input, buffer());
            ipc::send(mailbox, &buffer()[..length], &[], Deadline::NoWait).expect("buffered send");
            if length == 0 {
                finished = true;
                break;
            }
        }
        ipc::semaphore_post(batch).expect("post batch");
        ipc::semaphore_wait(drained, Deadline::Forever).expect("wait drained");
    }
    context.finish();
    0
}

fn mailbox_client(context: &Context) -> u32 {
    let output = create_output();
    let (mailbox, batch, drained) = (context.extra(0), context.extra(1), context.extra(2));
    context.start();
    loop {
        ipc::semaphore_wait(batch, Deadline::Forever).expect("wait batch");
        let mut finished = false;
        loop {
            match ipc::receive(mailbox, buffer(), Deadline::NoWait) {
                Ok(message) if message.length == 0 => finished = true,
                Ok(message) => write_out(output, &buffer()[..message.length]),
                Err(error) => {
                    check!(
                        error == kipc::ErrorCode::WouldBlock,
                        "receive failed: {error:?}"
                    );
                    break;
                }
            }
        }
        ipc::semaphore_post(drained).expect("post drained");
        if finished {
            break;
        }
    }
    context.finish();
    0
}

// ----- mailboxes, direct: the client calls, the server replies into its buffer -----

fn call_server(context: &Context) -> u32 {
    let input = open_input();
    let mailbox = context.extra(0);
    context.start();
    let mut request = [0u8; 8];
    loop {
        let message =
            ipc::receive(mailbox, &mut request, Deadline::Forever).expect("receive request");
        let reply = message.reply.expect("a call carries a reply handle");
        let length = next_chunk(input, buffer());
        ipc::reply(reply, &buffer()[..length], &[]).expect("reply");
        if length == 0 {
            break;
        }
    }
    context.finish();
    0
}

fn call_client(context: &Context) -> u32 {
    let output = create_output();
    let mailbox = context.extra(0);
    context.start();
    loop {
        let message = ipc::call_mailbox(mailbox, &[], &[], buffer()).expect("call");
        if message.length == 0 {
            break;
        }
        write_out(output, &buffer()[..message.length]);
    }
    context.finish();
    0
}

// ----- shared region: a ring of page-sized slots, two semaphores -----

fn region_server(context: &Context) -> u32 {
    let input = open_input();
    let (region, filled, free) = (context.extra(0), context.extra(1), context.extra(2));
    let shared = Shared::map(region, Access::ReadWrite).expect("map region read-write");
    let base = shared.address();
    context.start();
    let mut slot = 0usize;
    let (chunk, slots) = (context.chunk, slots_for(context.chunk));
    loop {
        ipc::semaphore_wait(free, Deadline::Forever).expect("wait free slot");
        let address = base + (CHUNK + slot * chunk) as u64;
        // SAFETY: the slot is `chunk` bytes of our read-write mapping, ours
        // until we post `filled` (the client only reads it after that).
        let slot_bytes = unsafe { core::slice::from_raw_parts_mut(address as *mut u8, chunk) };
        let length = next_chunk(input, slot_bytes);
        // The first page of the mapping holds one length per slot.
        shared.set_word(slot, length as u64);
        ipc::semaphore_post(filled).expect("post filled");
        if length == 0 {
            break;
        }
        slot = (slot + 1) % slots;
    }
    context.finish();
    0
}

fn region_client(context: &Context) -> u32 {
    let output = create_output();
    let (region, filled, free) = (context.extra(0), context.extra(1), context.extra(2));
    let shared = Shared::map(region, Access::ReadOnly).expect("map region read-only");
    let base = shared.address();
    context.start();
    let mut slot = 0usize;
    let (chunk, slots) = (context.chunk, slots_for(context.chunk));
    loop {
        ipc::semaphore_wait(filled, Deadline::Forever).expect("wait filled slot");
        // The server wrote this slot's length before posting `filled`.
        let length = shared.word(slot) as usize;
        if length == 0 {
            break;
        }
        check!(length <= chunk, "slot length {length}");
        let address = base + (CHUNK + slot * chunk) as u64;
        // SAFETY: the slot is a page of our read-only mapping, filled by the
        // server before it posted `filled`, unchanged until we post `free`.
        let slot_bytes = unsafe { core::slice::from_raw_parts(address as *const u8, length) };
        write_out(output, slot_bytes);
        ipc::semaphore_post(free).expect("post free slot");
        slot = (slot + 1) % slots;
    }
    context.finish();
    0
}

// ----- page loan: the file's own pages travel; nothing is copied -----

fn loan_server(context: &Context) -> u32 {
    let input = open_input();
    let mailbox = context.extra(0);
    context.start();
    let mut offset = 0u64;
    while offset < context.size {
        let pages = ((context.size - offset).div_ceil(CHUNK as u64) as usize).min(LOAN_PAGES);
        let address = input.lend(offset, pages).expect("lend file pages");
        let loan = ipc::pages_loan(address, pages).expect("loan pages");
        ipc::send(mailbox, &[], &[loan], Deadline::Forever).expect("send loan");
        offset += (pages * CHUNK) as u64;
    }
    ipc::send(mailbox, &[], &[], Deadline::Forever).expect("send end");
    context.finish();
    0
}

fn loan_client(context: &Context) -> u32 {
    let output = create_output();
    let mailbox = context.extra(0);
    context.start();
    let mut received = 0u64;
    loop {
        let message = ipc::receive(mailbox, &mut [], Deadline::Forever).expect("receive loan");
        if message.handle_count == 0 {
            break;
        }
        let loan = message.handles[0];
        let pages = ipc::region_pages(loan).expect("loan size");
        let address = ipc::region_map(loan, None, false).expect("map loan");
        let length = (context.size - received).min((pages * CHUNK) as u64);
        output
            .append_pages(address, pages, length)
            .expect("append pages");
        ipc::region_unmap(address).expect("unmap loan");
        ipc::close(loan).expect("close loan");
        received += length;
    }
    check!(
        received == context.size,
        "loans delivered {received} of {} bytes",
        context.size
    );
    context.finish();
    0
}
