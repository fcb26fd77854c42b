//! Multi-process scenarios on a simulated host kernel, through kipc's public API exactly as
//! an embedding kernel uses it. The headline: a file transfer through every mechanism, with
//! the copies per byte read from kipc's ledger.

mod sim;

use kipc::*;
use sim::{Machine, PRIVATE_BASE, Program, Scheduler, Step, System};

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
    assert!(system.files[COPY] == system.files[SOURCE], "the copy differs from the source");
}

fn check_no_leaks(system: &System, kernel: ProcessId) {
    let usage = system.ipc.usage();
    assert_eq!(usage.processes, 1, "only the harness process is left");
    let harness_handles = system.ipc.usage().handles;
    assert_eq!(harness_handles, 0, "{usage:?}");
    assert_eq!((usage.mailboxes, usage.pipes, usage.regions, usage.semaphores), (0, 0, 0, 0), "{usage:?}");
    assert_eq!((usage.frames_held, usage.mappings, usage.waiters), (0, 0, 0), "{usage:?}");
    assert!(system.ipc.is_alive(kernel));
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
                match system.ipc.fifo_open(me, name, OpenMode::Write, Blocking::Forever, &mut system.machine) {
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
        match system.ipc.pipe_write(me, handle, data, Blocking::Forever, &mut system.machine) {
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
        let handle = match (self.handle, resumed) {
            (Some(handle), _) => handle,
            (None, Some(Wakeup::Completed(Completion::Opened(handle)))) => handle,
            (None, _) => {
                let name = self.fifo.expect("a FIFO name");
                match system.ipc.fifo_open(me, name, OpenMode::Read, Blocking::Forever, &mut system.machine) {
                    Ok(Outcome::Done(handle)) => handle,
                    Ok(Outcome::Blocked) => return Step::Blocked,
                    Err(error) => panic!("open: {error}"),
                }
            }
        };
        self.handle = Some(handle);
        let buffer = system.machine.slice(BUFFER, 1024);
        match system.ipc.pipe_read(me, handle, buffer, Blocking::Forever, &mut system.machine) {
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

#[test]
fn file_transfer_through_a_pipe_costs_four_copies_per_byte() {
    let mut system = system_with_file();
    let kernel = system.spawn();
    let server = system.spawn();
    let client = system.spawn();
    let (read, write) = system.ipc.pipe_create(kernel).unwrap();
    let write = system.ipc.handle_grant(kernel, write, server, Rights::WRITE).unwrap();
    let read_c = system.ipc.handle_grant(kernel, read, client, Rights::READ).unwrap();
    let mut machine = Machine::new(0);
    system.ipc.handle_close(kernel, read, &mut machine).unwrap();
    let own_write = system.ipc.process(kernel);
    let _ = own_write;
    system.ledger_clean_start(kernel);

    let mut scheduler = Scheduler::new();
    scheduler.add(client, StreamReader { handle: Some(read_c), fifo: None });
    scheduler.add(server, StreamWriter { handle: Some(write), fifo: None, offset: 0, chunk: None });
    scheduler.run(&mut system, LIMIT);

    check_transfer(&system);
    let ledger = system.ipc.ledger_snapshot();
    let g = ledger.global();
    assert_eq!(g.copies(Mechanism::Pipe, Direction::UserToKernel).bytes, FILE_SIZE as u64);
    assert_eq!(g.copies(Mechanism::Pipe, Direction::KernelToUser).bytes, FILE_SIZE as u64);
    assert_eq!(g.bytes_by(Mechanism::File), 2 * FILE_SIZE as u64);
    assert_eq!(copies_per_byte(&system), 4.0);
    check_no_leaks(&system, kernel);
}
