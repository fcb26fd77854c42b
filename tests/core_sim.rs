//! Multi-process scenarios on a simulated host kernel, through kipc's public API exactly as
//! an embedding kernel uses it. The headline: a file transfer through every mechanism, with
//! the copies per byte read from kipc's ledger.

mod sim;

use kipc::*;
use sim::{PRIVATE_BASE, Program, Scheduler, Step, System};

const SOURCE: &str = "source";
const COPY: &str = "copy";
/// Not a multiple of any buffer size, so partial chunks and ring wrap-around happen.
const FILE_SIZE: usize = 64 * 1024 + 123;
const BUFFER: u64 = PRIVATE_BASE;
const CHUNK: usize = 256;
const LIMIT: usize = 1_000_000;

fn system_with_file() -> System {
    let mut system = System::new();
    let data: Vec<u8> = (0..FILE_SIZE).map(|i| (i * 7 + i / 251) as u8).collect();
    system.files.insert(SOURCE.into(), data);
    system
}

fn copies_per_byte(system: &System) -> f64 {
    system.ipc.ledger().global().total_bytes() as f64 / FILE_SIZE as f64
}

/// Checks the copy arrived intact and nothing leaked once every process exited.
fn check_transfer(system: &System) {
    assert_eq!(system.files.get(COPY).map(Vec::len), Some(FILE_SIZE));
    assert!(
        system.files[COPY] == system.files[SOURCE],
        "the copy differs from the source"
    );
}

fn check_no_leaks(system: &System, kernel: ProcessId) {
    let usage = system.ipc.usage();
    assert_eq!(usage.processes, 1, "only the harness process is left");
    let harness_handles = system.ipc.usage().handles;
    assert_eq!(harness_handles, 0, "{usage:?}");
    assert_eq!(
        (
            usage.mailboxes,
            usage.pipes,
            usage.regions,
            usage.semaphores
        ),
        (0, 0, 0, 0),
        "{usage:?}"
    );
    assert_eq!(
        (usage.frames_held, usage.mappings, usage.waiters),
        (0, 0, 0),
        "{usage:?}"
    );
    assert!(system.ipc.is_alive(kernel));
    assert_eq!(
        system.machine.free_frames(),
        sim::MACHINE_FRAMES - sim::PRIVATE_PAGES,
        "every frame except the harness's private memory is back with the allocator"
    );
}

fn expect_no_failure(resumed: &Option<Wakeup>) {
    if let Some(Wakeup::Failed(error)) = resumed {
        panic!("unexpected failure: {error}");
    }
}

// ---------------------------------------------------------------- pipe / FIFO programs

/// Reads the source file in chunks and writes it to a pipe (or a FIFO it opens first).
struct StreamWriter {
    handle: Option<Handle>,
    fifo: Option<&'static [u8]>,
    offset: usize,
    chunk: Option<(usize, usize)>,
}

impl Program for StreamWriter {
    fn step(&mut self, system: &mut System, me: ProcessId, resumed: Option<Wakeup>) -> Step {
        expect_no_failure(&resumed);
        let handle = match (self.handle, resumed) {
            (Some(handle), _) => handle,
            (None, Some(Wakeup::Completed(Completion::Opened(handle)))) => handle,
            (None, _) => {
                let name = self.fifo.expect("a FIFO name");
                match system.ipc.fifo_open(
                    me,
                    name,
                    OpenMode::Write,
                    Blocking::Forever,
                    &mut system.machine,
                ) {
                    Ok(Outcome::Done(handle)) => handle,
                    Ok(Outcome::Blocked) => return Step::Blocked,
                    Err(error) => panic!("open: {error}"),
                }
            }
        };
        self.handle = Some(handle);
        let (length, sent) = match self.chunk {
            Some(chunk) => chunk,
            None if self.offset >= FILE_SIZE => return Step::Exit,
            None => {
                let buffer = system.machine.slice(BUFFER, 1024);
                (system.file_read(me, SOURCE, self.offset, buffer), 0)
            }
        };
        let data = system.machine.slice(BUFFER + sent as u64, length - sent);
        match system
            .ipc
            .pipe_write(me, handle, data, Blocking::Forever, &mut system.machine)
        {
            Ok(Outcome::Done(n)) => {
                if sent + n == length {
                    self.offset += length;
                    self.chunk = None;
                } else {
                    self.chunk = Some((length, sent + n));
                }
                Step::Continue
            }
            Ok(Outcome::Blocked) => {
                self.chunk = Some((length, sent));
                Step::Blocked
            }
            Err(error) => panic!("write: {error}"),
        }
    }
}

/// Reads a pipe (or a FIFO it opens first) until end of file, appending to the copy.
struct StreamReader {
    handle: Option<Handle>,
    fifo: Option<&'static [u8]>,
}

impl Program for StreamReader {
    fn step(&mut self, system: &mut System, me: ProcessId, resumed: Option<Wakeup>) -> Step {
        expect_no_failure(&resumed);
        let handle = match (self.handle, resumed.clone()) {
            (Some(handle), _) => handle,
            (None, Some(Wakeup::Completed(Completion::Opened(handle)))) => handle,
            (None, _) => {
                let name = self.fifo.expect("a FIFO name");
                match system.ipc.fifo_open(
                    me,
                    name,
                    OpenMode::Read,
                    Blocking::Forever,
                    &mut system.machine,
                ) {
                    Ok(Outcome::Done(handle)) => handle,
                    Ok(Outcome::Blocked) => return Step::Blocked,
                    Err(error) => panic!("open: {error}"),
                }
            }
        };
        self.handle = Some(handle);
        let buffer = system.machine.slice(BUFFER, 1024);
        // A parked read that a write filled: the bytes are already in the buffer.
        if let Some(Wakeup::Completed(Completion::Read(n))) = resumed {
            system.file_append(me, COPY, buffer.prefix(n));
            return Step::Continue;
        }
        match system
            .ipc
            .pipe_read(me, handle, buffer, Blocking::Forever, &mut system.machine)
        {
            Ok(Outcome::Done(0)) => Step::Exit,
            Ok(Outcome::Done(n)) => {
                system.file_append(me, COPY, buffer.prefix(n));
                Step::Continue
            }
            Ok(Outcome::Blocked) => Step::Blocked,
            Err(error) => panic!("read: {error}"),
        }
    }
}

/// The harness ("kernel") hands `handle` to `to` with `rights` and drops its own copy.
fn give(
    system: &mut System,
    kernel: ProcessId,
    handle: Handle,
    to: ProcessId,
    rights: Rights,
) -> Handle {
    let given = system.ipc.handle_grant(kernel, handle, to, rights).unwrap();
    system
        .ipc
        .handle_close(kernel, handle, &mut system.machine)
        .unwrap();
    given
}

#[test]
fn file_transfer_through_a_pipe_costs_four_copies_per_byte() {
    let mut system = system_with_file();
    let kernel = system.spawn();
    let server = system.spawn();
    let client = system.spawn();
    let (read, write) = system.ipc.pipe_create(kernel).unwrap();
    let write = give(&mut system, kernel, write, server, Rights::WRITE);
    let read = give(&mut system, kernel, read, client, Rights::READ);
    system.ipc.ledger_reset();

    let mut scheduler = Scheduler::new();
    scheduler.add(
        client,
        StreamReader {
            handle: Some(read),
            fifo: None,
        },
    );
    scheduler.add(
        server,
        StreamWriter {
            handle: Some(write),
            fifo: None,
            offset: 0,
            chunk: None,
        },
    );
    scheduler.run(&mut system, LIMIT);

    check_transfer(&system);
    let ledger = system.ipc.ledger_snapshot();
    let g = ledger.global();
    assert_eq!(
        g.copies(Mechanism::Pipe, Direction::UserToKernel).bytes,
        FILE_SIZE as u64
    );
    assert_eq!(
        g.copies(Mechanism::Pipe, Direction::KernelToUser).bytes,
        FILE_SIZE as u64
    );
    assert_eq!(g.bytes_by(Mechanism::File), 2 * FILE_SIZE as u64);
    assert_eq!(copies_per_byte(&system), 4.0);
    // Per process: the server copied in, the client out.
    let server_counters = ledger.process(server).unwrap();
    assert_eq!(
        server_counters
            .copies(Mechanism::Pipe, Direction::UserToKernel)
            .bytes,
        FILE_SIZE as u64
    );
    assert_eq!(
        server_counters
            .copies(Mechanism::Pipe, Direction::KernelToUser)
            .bytes,
        0
    );
    check_no_leaks(&system, kernel);
}

#[test]
fn file_transfer_through_a_fifo_costs_four_copies_per_byte() {
    let mut system = system_with_file();
    let kernel = system.spawn();
    let server = system.spawn();
    let client = system.spawn();
    system.ipc.fifo_create(kernel, b"transfer").unwrap();
    system.ipc.ledger_reset();

    let mut scheduler = Scheduler::new();
    // The reader opens first and must wait for the writer (blocking open).
    scheduler.add(
        client,
        StreamReader {
            handle: None,
            fifo: Some(b"transfer"),
        },
    );
    scheduler.add(
        server,
        StreamWriter {
            handle: None,
            fifo: Some(b"transfer"),
            offset: 0,
            chunk: None,
        },
    );
    scheduler.run(&mut system, LIMIT);

    check_transfer(&system);
    let g = *system.ipc.ledger().global();
    assert_eq!(g.bytes_by(Mechanism::Fifo), 2 * FILE_SIZE as u64);
    assert_eq!(g.bytes_by(Mechanism::Pipe), 0);
    assert_eq!(copies_per_byte(&system), 4.0);
    system
        .ipc
        .fifo_unlink(kernel, b"transfer", &mut system.machine)
        .unwrap();
    check_no_leaks(&system, kernel);
    assert_eq!(system.ipc.usage().fifos, 0);
}

// ---------------------------------------------------------------- message queue

struct QueueWriter {
    queue: Handle,
    offset: usize,
    chunk: Option<usize>,
    finished: bool,
}

impl Program for QueueWriter {
    fn step(&mut self, system: &mut System, me: ProcessId, resumed: Option<Wakeup>) -> Step {
        expect_no_failure(&resumed);
        if self.finished {
            return Step::Exit;
        }
        let length = match self.chunk {
            Some(length) => length,
            None => system.file_read(me, SOURCE, self.offset, system.machine.slice(BUFFER, CHUNK)),
        };
        // An empty message marks the end of the file.
        let message = system.machine.slice(BUFFER, length);
        match system.ipc.mqueue_send(
            me,
            self.queue,
            message,
            3,
            Blocking::Forever,
            &mut system.machine,
        ) {
            Ok(Outcome::Done(())) => {
                self.chunk = None;
                self.offset += length;
                self.finished = length == 0;
                Step::Continue
            }
            Ok(Outcome::Blocked) => {
                self.chunk = Some(length);
                Step::Blocked
            }
            Err(error) => panic!("send: {error}"),
        }
    }
}

struct QueueReader {
    queue: Handle,
}

impl Program for QueueReader {
    fn step(&mut self, system: &mut System, me: ProcessId, resumed: Option<Wakeup>) -> Step {
        expect_no_failure(&resumed);
        let buffer = system.machine.slice(BUFFER, CHUNK);
        // A parked receive that a send filled: the message is already in the buffer.
        if let Some(Wakeup::Completed(Completion::Dequeued(message))) = resumed {
            if message.length == 0 {
                return Step::Exit;
            }
            assert_eq!(message.priority, 3);
            system.file_append(me, COPY, buffer.prefix(message.length));
            return Step::Continue;
        }
        match system.ipc.mqueue_receive(
            me,
            self.queue,
            buffer,
            Blocking::Forever,
            &mut system.machine,
        ) {
            Ok(Outcome::Done(message)) if message.length == 0 => Step::Exit,
            Ok(Outcome::Done(message)) => {
                assert_eq!(message.priority, 3);
                system.file_append(me, COPY, buffer.prefix(message.length));
                Step::Continue
            }
            Ok(Outcome::Blocked) => Step::Blocked,
            Err(error) => panic!("receive: {error}"),
        }
    }
}

#[test]
fn file_transfer_through_a_message_queue_costs_four_copies_per_byte() {
    let mut system = system_with_file();
    let kernel = system.spawn();
    let server = system.spawn();
    let client = system.spawn();
    let created = system
        .ipc
        .mqueue_create(kernel, b"/transfer", 4, CHUNK)
        .unwrap();
    system.ipc.mqueue_unlink(kernel, b"/transfer").unwrap();
    let queue_server = system
        .ipc
        .handle_grant(kernel, created, server, Rights::WRITE)
        .unwrap();
    let queue_client = give(&mut system, kernel, created, client, Rights::READ);
    system.ipc.ledger_reset();

    let mut scheduler = Scheduler::new();
    scheduler.add(
        client,
        QueueReader {
            queue: queue_client,
        },
    );
    scheduler.add(
        server,
        QueueWriter {
            queue: queue_server,
            offset: 0,
            chunk: None,
            finished: false,
        },
    );
    scheduler.run(&mut system, LIMIT);

    check_transfer(&system);
    let g = *system.ipc.ledger().global();
    assert_eq!(g.bytes_by(Mechanism::MessageQueue), 2 * FILE_SIZE as u64);
    assert_eq!(copies_per_byte(&system), 4.0);
    check_no_leaks(&system, kernel);
    assert_eq!(
        system.ipc.usage().message_queues,
        0,
        "unlinked and closed: gone"
    );
}

// ---------------------------------------------------------------- mailboxes

struct MailboxWriter {
    mailbox: Handle,
    offset: usize,
    chunk: Option<usize>,
    finished: bool,
}

impl Program for MailboxWriter {
    fn step(&mut self, system: &mut System, me: ProcessId, resumed: Option<Wakeup>) -> Step {
        expect_no_failure(&resumed);
        if self.finished {
            return Step::Exit;
        }
        let length = match self.chunk {
            Some(length) => length,
            None => system.file_read(me, SOURCE, self.offset, system.machine.slice(BUFFER, CHUNK)),
        };
        let payload = system.machine.slice(BUFFER, length);
        match system.ipc.mailbox_send(
            me,
            self.mailbox,
            payload,
            &[],
            Blocking::Forever,
            &mut system.machine,
        ) {
            Ok(Outcome::Done(())) => {
                self.chunk = None;
                self.offset += length;
                self.finished = length == 0;
                Step::Continue
            }
            Ok(Outcome::Blocked) => {
                self.chunk = Some(length);
                Step::Blocked
            }
            Err(error) => panic!("send: {error}"),
        }
    }
}

/// Polls without ever waiting in the kernel, so every message is buffered.
struct PollingMailboxReader {
    mailbox: Handle,
}

impl Program for PollingMailboxReader {
    fn step(&mut self, system: &mut System, me: ProcessId, resumed: Option<Wakeup>) -> Step {
        expect_no_failure(&resumed);
        let buffer = system.machine.slice(BUFFER, CHUNK);
        match system.ipc.mailbox_receive(
            me,
            self.mailbox,
            buffer,
            Blocking::NonBlocking,
            &mut system.machine,
        ) {
            Ok(Outcome::Done(message)) if message.length == 0 => Step::Exit,
            Ok(Outcome::Done(message)) => {
                system.file_append(me, COPY, buffer.prefix(message.length));
                Step::Continue
            }
            Err(Error::WouldBlock) => Step::Continue,
            other => panic!("receive: {other:?}"),
        }
    }
}

fn mailbox_pair(
    system: &mut System,
    kernel: ProcessId,
    server: ProcessId,
    client: ProcessId,
) -> (Handle, Handle) {
    let mailbox = system.ipc.mailbox_create(kernel).unwrap();
    let send = system
        .ipc
        .handle_grant(kernel, mailbox, server, Rights::WRITE | Rights::TRANSFER)
        .unwrap();
    let receive = give(system, kernel, mailbox, client, Rights::READ);
    (send, receive)
}

#[test]
fn file_transfer_through_a_buffered_mailbox_costs_four_copies_per_byte() {
    let mut system = system_with_file();
    let kernel = system.spawn();
    let server = system.spawn();
    let client = system.spawn();
    let (send, receive) = mailbox_pair(&mut system, kernel, server, client);
    system.ipc.ledger_reset();

    let mut scheduler = Scheduler::new();
    scheduler.add(
        server,
        MailboxWriter {
            mailbox: send,
            offset: 0,
            chunk: None,
            finished: false,
        },
    );
    scheduler.add(client, PollingMailboxReader { mailbox: receive });
    scheduler.run(&mut system, LIMIT);

    check_transfer(&system);
    let g = *system.ipc.ledger().global();
    assert_eq!(
        g.copies(Mechanism::Mailbox, Direction::UserToKernel).bytes,
        FILE_SIZE as u64
    );
    assert_eq!(
        g.copies(Mechanism::Mailbox, Direction::KernelToUser).bytes,
        FILE_SIZE as u64
    );
    assert_eq!(g.copies(Mechanism::Mailbox, Direction::UserToUser).bytes, 0);
    assert_eq!(copies_per_byte(&system), 4.0);
    check_no_leaks(&system, kernel);
}

/// Asks for each chunk with a call and waits for the reply.
struct CallingClient {
    mailbox: Handle,
}

impl Program for CallingClient {
    fn step(&mut self, system: &mut System, me: ProcessId, resumed: Option<Wakeup>) -> Step {
        expect_no_failure(&resumed);
        let buffer = system.machine.slice(BUFFER, CHUNK);
        if let Some(Wakeup::Completed(Completion::Received(reply))) = resumed {
            if reply.length == 0 {
                return Step::Exit;
            }
            system.file_append(me, COPY, buffer.prefix(reply.length));
        }
        let outcome = system.ipc.mailbox_call(
            me,
            self.mailbox,
            UserSlice::EMPTY,
            &[],
            buffer,
            Blocking::Forever,
            &mut system.machine,
        );
        assert_eq!(
            outcome,
            Ok(Outcome::Blocked),
            "a call always waits for its reply"
        );
        Step::Blocked
    }
}

/// Receives requests and answers each with the next chunk of the file.
struct ReplyingServer {
    mailbox: Handle,
    offset: usize,
}

impl Program for ReplyingServer {
    fn step(&mut self, system: &mut System, me: ProcessId, resumed: Option<Wakeup>) -> Step {
        expect_no_failure(&resumed);
        let request = match resumed {
            Some(Wakeup::Completed(Completion::Received(request))) => request,
            _ => match system.ipc.mailbox_receive(
                me,
                self.mailbox,
                UserSlice::EMPTY,
                Blocking::Forever,
                &mut system.machine,
            ) {
                Ok(Outcome::Done(request)) => request,
                Ok(Outcome::Blocked) => return Step::Blocked,
                Err(error) => panic!("receive: {error}"),
            },
        };
        let reply = request.reply.expect("requests are calls");
        let buffer = system.machine.slice(BUFFER, CHUNK);
        let length = system.file_read(me, SOURCE, self.offset, buffer);
        self.offset += length;
        system
            .ipc
            .mailbox_reply(me, reply, buffer.prefix(length), &[], &mut system.machine)
            .unwrap();
        if length == 0 {
            Step::Exit
        } else {
            Step::Continue
        }
    }
}

#[test]
fn file_transfer_through_a_mailbox_to_a_waiting_receiver_costs_three_copies_per_byte() {
    let mut system = system_with_file();
    let kernel = system.spawn();
    let server = system.spawn();
    let client = system.spawn();
    // The client sends requests; the server receives them.
    let (send, receive) = mailbox_pair(&mut system, kernel, client, server);
    system.ipc.ledger_reset();

    let mut scheduler = Scheduler::new();
    scheduler.add(
        server,
        ReplyingServer {
            mailbox: receive,
            offset: 0,
        },
    );
    scheduler.add(client, CallingClient { mailbox: send });
    scheduler.run(&mut system, LIMIT);

    check_transfer(&system);
    let g = *system.ipc.ledger().global();
    assert_eq!(
        g.copies(Mechanism::Mailbox, Direction::UserToUser).bytes,
        FILE_SIZE as u64
    );
    assert_eq!(
        g.copies(Mechanism::Mailbox, Direction::UserToKernel).bytes,
        0
    );
    assert_eq!(
        g.copies(Mechanism::Mailbox, Direction::KernelToUser).bytes,
        0
    );
    assert_eq!(copies_per_byte(&system), 3.0);
    check_no_leaks(&system, kernel);
}

// ---------------------------------------------------------------- shared region

const REGION_PAGES: usize = 4;
const REGION_BYTES: usize = REGION_PAGES * PAGE_SIZE;

/// Copies file chunks straight from the file system into the shared region.
struct RegionWriter {
    at: u64,
    empty: Handle,
    full: Handle,
    offset: usize,
    holding: bool,
}

impl Program for RegionWriter {
    fn step(&mut self, system: &mut System, me: ProcessId, resumed: Option<Wakeup>) -> Step {
        expect_no_failure(&resumed);
        if self.offset >= FILE_SIZE {
            return Step::Exit;
        }
        if matches!(resumed, Some(Wakeup::Completed(Completion::Acquired))) {
            self.holding = true;
        }
        if !self.holding {
            match system
                .ipc
                .semaphore_wait(me, self.empty, Blocking::Forever, &mut system.machine)
            {
                Ok(Outcome::Done(())) => self.holding = true,
                Ok(Outcome::Blocked) => return Step::Blocked,
                Err(error) => panic!("wait: {error}"),
            }
        }
        let n = system.file_read(
            me,
            SOURCE,
            self.offset,
            system.machine.slice(self.at, REGION_BYTES),
        );
        self.offset += n;
        self.holding = false;
        system
            .ipc
            .semaphore_post(me, self.full, &mut system.machine)
            .unwrap();
        Step::Continue
    }
}

/// Copies each chunk from the shared region into the copy file.
struct RegionReader {
    at: u64,
    empty: Handle,
    full: Handle,
    received: usize,
}

impl Program for RegionReader {
    fn step(&mut self, system: &mut System, me: ProcessId, resumed: Option<Wakeup>) -> Step {
        expect_no_failure(&resumed);
        if !matches!(resumed, Some(Wakeup::Completed(Completion::Acquired))) {
            match system
                .ipc
                .semaphore_wait(me, self.full, Blocking::Forever, &mut system.machine)
            {
                Ok(Outcome::Done(())) => {}
                Ok(Outcome::Blocked) => return Step::Blocked,
                Err(error) => panic!("wait: {error}"),
            }
        }
        let n = REGION_BYTES.min(FILE_SIZE - self.received);
        system.file_append(me, COPY, system.machine.slice(self.at, n));
        self.received += n;
        if self.received == FILE_SIZE {
            return Step::Exit;
        }
        system
            .ipc
            .semaphore_post(me, self.empty, &mut system.machine)
            .unwrap();
        Step::Continue
    }
}

#[test]
fn file_transfer_through_a_shared_region_costs_two_copies_per_byte() {
    let mut system = system_with_file();
    let kernel = system.spawn();
    let server = system.spawn();
    let client = system.spawn();
    let region = system
        .ipc
        .region_create(kernel, REGION_PAGES, &mut system.machine)
        .unwrap();
    let empty = system.ipc.semaphore_create(kernel, 1).unwrap();
    let full = system.ipc.semaphore_create(kernel, 0).unwrap();
    let region_server = system
        .ipc
        .handle_grant(kernel, region, server, Rights::MAP | Rights::WRITE)
        .unwrap();
    let region_client = give(&mut system, kernel, region, client, Rights::MAP);
    let empty_server = system
        .ipc
        .handle_grant(kernel, empty, server, Rights::WAIT)
        .unwrap();
    let empty_client = give(&mut system, kernel, empty, client, Rights::SIGNAL);
    let full_server = system
        .ipc
        .handle_grant(kernel, full, server, Rights::SIGNAL)
        .unwrap();
    let full_client = give(&mut system, kernel, full, client, Rights::WAIT);
    let at_server = system
        .ipc
        .region_map(
            server,
            region_server,
            None,
            Access::ReadWrite,
            &mut system.machine,
        )
        .unwrap();
    assert_eq!(
        system.ipc.region_map(
            client,
            region_client,
            None,
            Access::ReadWrite,
            &mut system.machine
        ),
        Err(Error::PermissionDenied),
        "the client's handle has no WRITE right"
    );
    let at_client = system
        .ipc
        .region_map(
            client,
            region_client,
            None,
            Access::ReadOnly,
            &mut system.machine,
        )
        .unwrap();
    system.ipc.ledger_reset();

    let mut scheduler = Scheduler::new();
    scheduler.add(
        server,
        RegionWriter {
            at: at_server,
            empty: empty_server,
            full: full_server,
            offset: 0,
            holding: false,
        },
    );
    scheduler.add(
        client,
        RegionReader {
            at: at_client,
            empty: empty_client,
            full: full_client,
            received: 0,
        },
    );
    scheduler.run(&mut system, LIMIT);

    check_transfer(&system);
    let g = *system.ipc.ledger().global();
    assert_eq!(g.bytes_by(Mechanism::File), 2 * FILE_SIZE as u64);
    assert_eq!(g.bytes_by(Mechanism::SharedRegion), 0);
    assert_eq!(copies_per_byte(&system), 2.0);
    check_no_leaks(&system, kernel);
}

// ---------------------------------------------------------------- page loan

const LOAN_PAGES: usize = FILE_SIZE.div_ceil(PAGE_SIZE);

/// Holds the file in its own pages and loans them, sending the region handle.
struct Lender {
    mailbox: Handle,
}

impl Program for Lender {
    fn step(&mut self, system: &mut System, me: ProcessId, resumed: Option<Wakeup>) -> Step {
        expect_no_failure(&resumed);
        let loan = system
            .ipc
            .pages_loan(me, BUFFER, LOAN_PAGES, &mut system.machine)
            .unwrap();
        let sent = system.ipc.mailbox_send(
            me,
            self.mailbox,
            UserSlice::EMPTY,
            &[loan],
            Blocking::Forever,
            &mut system.machine,
        );
        assert_eq!(sent, Ok(Outcome::Done(())));
        assert!(
            system.machine.read(me, BUFFER, 1).is_err(),
            "the pages have left the lender"
        );
        Step::Exit
    }
}

struct Borrower;

impl Program for Borrower {
    fn step(&mut self, system: &mut System, me: ProcessId, resumed: Option<Wakeup>) -> Step {
        expect_no_failure(&resumed);
        let message = match resumed {
            Some(Wakeup::Completed(Completion::Received(message))) => message,
            _ => unreachable!("the borrower starts by waiting"),
        };
        let loan = message.handles[0];
        assert_eq!(system.ipc.region_pages(me, loan), Ok(LOAN_PAGES));
        let at = system
            .ipc
            .region_map(me, loan, None, Access::ReadOnly, &mut system.machine)
            .unwrap();
        // The data is simply there: the borrower reads it in place.
        let data = system.machine.read(me, at, FILE_SIZE).unwrap();
        system.files.insert(COPY.into(), data);
        Step::Exit
    }
}

#[test]
fn file_transfer_by_page_loan_copies_nothing() {
    let mut system = system_with_file();
    let kernel = system.spawn();
    let server = system.spawn();
    let client = system.spawn();
    let (send, receive) = mailbox_pair(&mut system, kernel, server, client);
    // The server's file cache holds the file in its own pages (set-up, not measured).
    let contents = system.files[SOURCE].clone();
    system.machine.write(server, BUFFER, &contents).unwrap();
    // The borrower is already waiting when the loan arrives.
    assert!(
        system
            .ipc
            .mailbox_receive(
                client,
                receive,
                UserSlice::EMPTY,
                Blocking::Forever,
                &mut system.machine
            )
            .unwrap()
            .is_blocked()
    );
    system.ipc.ledger_reset();

    let mut scheduler = Scheduler::new();
    scheduler.add(server, Lender { mailbox: send });
    scheduler.run_with_parked(&mut system, client, Borrower, LIMIT);

    check_transfer(&system);
    let g = *system.ipc.ledger().global();
    assert_eq!(g.total_bytes(), 0, "zero payload copies");
    assert_eq!(copies_per_byte(&system), 0.0);
    assert_eq!(g.pages_loaned(Mechanism::PageLoan), LOAN_PAGES as u64);
    assert_eq!(g.pages_mapped(Mechanism::PageLoan), LOAN_PAGES as u64);
    check_no_leaks(&system, kernel);
}

// ---------------------------------------------------------------- lifecycle scenarios

#[test]
fn peers_see_eof_broken_pipe_and_peer_closed_when_a_process_dies() {
    let mut system = System::new();
    let kernel = system.spawn();
    let reader = system.spawn();
    let writer = system.spawn();
    let (read, write) = system.ipc.pipe_create(kernel).unwrap();
    let read = give(&mut system, kernel, read, reader, Rights::READ);
    let write = give(&mut system, kernel, write, writer, Rights::WRITE);
    let buffer = system.machine.slice(BUFFER, 64);

    // The reader waits on an empty pipe; the writer dies; the reader retries into EOF.
    let outcome =
        system
            .ipc
            .pipe_read(reader, read, buffer, Blocking::Forever, &mut system.machine);
    assert_eq!(outcome, Ok(Outcome::Blocked));
    system.exit(writer);
    assert_eq!(system.machine.take_wakes(), vec![(reader, Wakeup::Retry)]);
    assert_eq!(
        system
            .ipc
            .pipe_read(reader, read, buffer, Blocking::Forever, &mut system.machine),
        Ok(Outcome::Done(0))
    );
    let _ = write;

    // A writer blocked on a full pipe learns that its reader died.
    let writer = system.spawn();
    let (read2, write2) = system.ipc.pipe_create(writer).unwrap();
    let read2 = give(&mut system, writer, read2, reader, Rights::READ);
    let big = system.machine.slice(BUFFER, 4096);
    assert_eq!(
        system
            .ipc
            .pipe_write(writer, write2, big, Blocking::Forever, &mut system.machine),
        Ok(Outcome::Done(4096))
    );
    assert_eq!(
        system.ipc.pipe_write(
            writer,
            write2,
            buffer,
            Blocking::Forever,
            &mut system.machine
        ),
        Ok(Outcome::Blocked)
    );
    system.exit(reader);
    assert_eq!(system.machine.take_wakes(), vec![(writer, Wakeup::Retry)]);
    assert_eq!(
        system.ipc.pipe_write(
            writer,
            write2,
            buffer,
            Blocking::Forever,
            &mut system.machine
        ),
        Err(Error::BrokenPipe)
    );
    let _ = read2;

    // A caller waiting for a reply learns that the server died holding the reply handle.
    let server = system.spawn();
    let client = writer;
    let (send, receive) = mailbox_pair(&mut system, kernel, client, server);
    let reply_buffer = system.machine.slice(BUFFER, 64);
    let call = system.ipc.mailbox_call(
        client,
        send,
        UserSlice::EMPTY,
        &[],
        reply_buffer,
        Blocking::Forever,
        &mut system.machine,
    );
    assert_eq!(call, Ok(Outcome::Blocked));
    let request = system.ipc.mailbox_receive(
        server,
        receive,
        UserSlice::EMPTY,
        Blocking::NonBlocking,
        &mut system.machine,
    );
    assert!(request.unwrap().done().unwrap().reply.is_some());
    system.exit(server);
    assert_eq!(
        system.machine.take_wakes(),
        vec![(client, Wakeup::Failed(Error::PeerClosed))]
    );
    // And later sends find no receiver.
    let sent = system.ipc.mailbox_send(
        client,
        send,
        UserSlice::EMPTY,
        &[],
        Blocking::Forever,
        &mut system.machine,
    );
    assert_eq!(sent, Err(Error::PeerClosed));
    system.exit(client);
    check_no_leaks(&system, kernel);
}

#[test]
fn handles_in_undelivered_messages_are_closed_not_leaked() {
    let mut system = System::new();
    let kernel = system.spawn();
    let sender = system.spawn();
    let receiver = system.spawn();
    let (send, _receive) = mailbox_pair(&mut system, kernel, sender, receiver);
    // The sender ships a region (with its frames) and a pipe end; nobody receives.
    let region = system
        .ipc
        .region_create(sender, 3, &mut system.machine)
        .unwrap();
    let (pipe_read, pipe_write) = system.ipc.pipe_create(sender).unwrap();
    let sent = system.ipc.mailbox_send(
        sender,
        send,
        UserSlice::EMPTY,
        &[region, pipe_read],
        Blocking::NonBlocking,
        &mut system.machine,
    );
    assert_eq!(sent, Ok(Outcome::Done(())));
    assert_eq!(system.ipc.usage().handles_in_flight, 2);
    assert_eq!(system.ipc.usage().frames_held, 3);
    // The receiver dies: the message is discarded and what it carried is closed.
    system.exit(receiver);
    let usage = system.ipc.usage();
    assert_eq!(
        (usage.regions, usage.frames_held, usage.handles_in_flight),
        (0, 0, 0)
    );
    // The pipe lost its only reader with the message.
    let data = system.machine.slice(BUFFER, 1);
    assert_eq!(
        system.ipc.pipe_write(
            sender,
            pipe_write,
            data,
            Blocking::NonBlocking,
            &mut system.machine
        ),
        Err(Error::BrokenPipe)
    );
    system.exit(sender);
    check_no_leaks(&system, kernel);
}

#[test]
fn deadlines_expire_through_the_host_timer() {
    let mut system = System::new();
    let kernel = system.spawn();
    let queue = system.ipc.mqueue_create(kernel, b"timer", 2, 16).unwrap();
    let buffer = system.machine.slice(BUFFER, 16);
    let outcome = system.ipc.mqueue_receive(
        kernel,
        queue,
        buffer,
        Blocking::Until(100),
        &mut system.machine,
    );
    assert_eq!(outcome, Ok(Outcome::Blocked));
    assert_eq!(system.ipc.next_deadline(), Some(100));
    system.machine.now = 99;
    assert_eq!(
        system.ipc.expire(system.machine.now, &mut system.machine),
        0
    );
    system.machine.now = 100;
    assert_eq!(
        system.ipc.expire(system.machine.now, &mut system.machine),
        1
    );
    assert_eq!(
        system.machine.take_wakes(),
        vec![(kernel, Wakeup::Failed(Error::TimedOut))]
    );
    assert_eq!(system.ipc.next_deadline(), None);
    // Retrying after the deadline fails by itself.
    let retry = system.ipc.mqueue_receive(
        kernel,
        queue,
        buffer,
        Blocking::Until(100),
        &mut system.machine,
    );
    assert_eq!(retry, Err(Error::TimedOut));
    system.ipc.mqueue_unlink(kernel, b"timer").unwrap();
    system
        .ipc
        .handle_close(kernel, queue, &mut system.machine)
        .unwrap();
    assert_eq!(system.ipc.usage().message_queues, 0);
}

#[test]
fn restarted_processes_and_closed_handles_are_detected() {
    let mut system = System::new();
    let first = system.spawn();
    let handle = system.ipc.notification_create(first).unwrap();
    system.exit(first);
    let second = system.spawn();
    assert_eq!(first.slot(), second.slot(), "the slot is reused");
    assert_eq!(
        system.ipc.notification_create(first),
        Err(Error::NoSuchProcess)
    );
    // The new process does not inherit the old one's handles; slot generations survive
    // the restart, so the old number is recognised as closed and never names a new object.
    assert_eq!(
        system.ipc.handle_info(second, handle),
        Err(Error::StaleHandle)
    );
    let fresh = system.ipc.notification_create(second).unwrap();
    assert_eq!(fresh.index(), handle.index());
    assert_ne!(fresh, handle);
    assert_eq!(
        system.ipc.handle_info(second, handle),
        Err(Error::StaleHandle)
    );
    system
        .ipc
        .handle_close(second, fresh, &mut system.machine)
        .unwrap();
    assert_eq!(
        system.ipc.handle_info(second, fresh),
        Err(Error::StaleHandle)
    );
    assert_eq!(
        system.ipc.ledger().process(first),
        None,
        "the ledger follows the new process"
    );
    assert!(system.ipc.ledger().process(second).is_some());
}

#[test]
fn faults_are_reported_and_never_counted() {
    let mut system = System::new();
    let a = system.spawn();
    let (read, write) = system.ipc.pipe_create(a).unwrap();
    // Unmapped memory: the host reports a fault, kipc returns BadAddress.
    let unmapped = system.machine.slice(0x7000_0000, 16);
    assert_eq!(
        system.ipc.pipe_write(
            a,
            write,
            unmapped,
            Blocking::NonBlocking,
            &mut system.machine
        ),
        Err(Error::BadAddress)
    );
    // Kernel half: rejected by the allegation check before any copy is attempted.
    assert_eq!(
        UserSlice::new(0xffff_8000_0000_0000, 16, system.machine.user_limit()),
        Err(Error::BadAddress)
    );
    // A read-only mapping cannot be the destination of a read.
    let region = system.ipc.region_create(a, 1, &mut system.machine).unwrap();
    let at = system
        .ipc
        .region_map(a, region, None, Access::ReadOnly, &mut system.machine)
        .unwrap();
    let data = system.machine.slice(BUFFER, 8);
    assert_eq!(
        system
            .ipc
            .pipe_write(a, write, data, Blocking::NonBlocking, &mut system.machine),
        Ok(Outcome::Done(8))
    );
    let read_only = system.machine.slice(at, 8);
    assert_eq!(
        system.ipc.pipe_read(
            a,
            read,
            read_only,
            Blocking::NonBlocking,
            &mut system.machine
        ),
        Err(Error::BadAddress)
    );
    assert_eq!(
        system.ipc.pipe_buffered(a, read),
        Ok(8),
        "nothing was consumed"
    );
    assert_eq!(
        system.ipc.ledger().global().total_bytes(),
        8,
        "only the successful write counts"
    );
    assert_eq!(ErrorCode::from(Error::BadAddress).as_u32(), 64);
}
