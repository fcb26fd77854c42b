//! POSIX blocking writes: a blocking pipe (or FIFO) write of n bytes returns n, waiting
//! for room as often as it must (its retried call goes on where it stopped, never
//! writing a byte twice); only a non-blocking write, one whose deadline passes, one
//! whose wait is cancelled, and one whose reader goes away return a short count.
//! Zero-length writes return 0, with or without a reader (as on Linux).

mod sim;

use kipc::*;
use sim::{Machine, PRIVATE_BASE, PRIVATE_PAGES};

/// 64-byte pipes: a 200-byte write needs four rounds.
type PosixIpc = Ipc<4, 8, 4, 64, 64>;
const LENGTH: usize = 200;

struct World {
    ipc: Box<PosixIpc>,
    machine: Machine,
    writer: ProcessId,
    reader: ProcessId,
    write: Handle,
    read: Handle,
}

impl World {
    fn new() -> World {
        let mut ipc = Box::new(PosixIpc::new());
        let mut machine = Machine::new(4 * PRIVATE_PAGES + 16);
        let writer = ipc.process_create().unwrap();
        let reader = ipc.process_create().unwrap();
        machine.give_private_memory(writer);
        machine.give_private_memory(reader);
        let (read, write) = ipc.pipe_create(writer).unwrap();
        let read_end = ipc
            .handle_grant(writer, read, reader, Rights::READ)
            .unwrap();
        ipc.handle_close(writer, read, &mut machine).unwrap();
        let data: Vec<u8> = (0..LENGTH).map(|i| (i * 7 % 251) as u8).collect();
        machine.write(writer, PRIVATE_BASE, &data).unwrap();
        World {
            ipc,
            machine,
            writer,
            reader,
            write,
            read: read_end,
        }
    }

    fn data(&self) -> UserSlice {
        self.machine.slice(PRIVATE_BASE, LENGTH)
    }

    fn write(&mut self, blocking: Blocking) -> Result<Outcome<usize>, Error> {
        let data = self.data();
        self.ipc
            .pipe_write(self.writer, self.write, data, blocking, &mut self.machine)
    }

    /// Reads what the pipe holds into the reader's memory at `offset`; returns the count.
    fn drain(&mut self, offset: u64) -> usize {
        let into = self.machine.slice(PRIVATE_BASE + offset, 64);
        match self.ipc.pipe_read(
            self.reader,
            self.read,
            into,
            Blocking::NonBlocking,
            &mut self.machine,
        ) {
            Ok(Outcome::Done(count)) => count,
            other => panic!("read gave {other:?}"),
        }
    }
}

#[test]
fn a_blocking_write_returns_all_its_bytes_after_waiting_as_often_as_it_must() {
    let mut w = World::new();
    let mut received = 0;
    let mut waits = 0;
    let total = loop {
        match w.write(Blocking::Forever).unwrap() {
            Outcome::Done(total) => break total,
            Outcome::Blocked => {
                waits += 1;
                assert!(w.ipc.is_waiting(w.writer));
                // The reader makes room; the writer is woken to retry the same call.
                received += w.drain(0x1000 + received as u64);
                assert_eq!(w.machine.take_wakes(), vec![(w.writer, Wakeup::Retry)]);
            }
        }
        assert!(waits < 10, "the write never finished");
    };
    received += w.drain(0x1000 + received as u64);
    assert_eq!((total, received), (LENGTH, LENGTH));
    assert_eq!(
        waits, 3,
        "200 bytes through a 64-byte pipe wait three times"
    );
    let expected = w.machine.read(w.writer, PRIVATE_BASE, LENGTH).unwrap();
    assert_eq!(
        w.machine
            .read(w.reader, PRIVATE_BASE + 0x1000, LENGTH)
            .unwrap(),
        expected,
        "bytes lost, repeated or reordered across the retries"
    );
    // The ledger counts each byte once in and once out.
    let pipe = |direction| {
        w.ipc
            .ledger()
            .global()
            .copies(Mechanism::Pipe, direction)
            .bytes
    };
    assert_eq!(pipe(Direction::UserToKernel), LENGTH as u64);
    assert_eq!(pipe(Direction::KernelToUser), LENGTH as u64);
}

#[test]
fn a_non_blocking_write_returns_a_short_count() {
    let mut w = World::new();
    assert_eq!(w.write(Blocking::NonBlocking), Ok(Outcome::Done(64)));
    assert_eq!(w.write(Blocking::NonBlocking), Err(Error::WouldBlock));
}

#[test]
fn a_reader_going_away_mid_write_returns_what_was_written_then_broken_pipe() {
    let mut w = World::new();
    assert_eq!(w.write(Blocking::Forever), Ok(Outcome::Blocked));
    w.ipc
        .handle_close(w.reader, w.read, &mut w.machine)
        .unwrap();
    let wakes = w.machine.take_wakes();
    assert_eq!(wakes, vec![(w.writer, Wakeup::Retry)]);
    assert_eq!(w.write(Blocking::Forever), Ok(Outcome::Done(64)));
    assert_eq!(w.write(Blocking::Forever), Err(Error::BrokenPipe));
}

#[test]
fn a_deadline_passing_mid_write_returns_what_was_written() {
    let mut w = World::new();
    assert_eq!(w.write(Blocking::Until(10)), Ok(Outcome::Blocked));
    w.machine.now = 10;
    assert_eq!(w.ipc.expire(10, &mut w.machine), 1);
    assert_eq!(w.machine.take_wakes(), vec![(w.writer, Wakeup::Retry)]);
    assert_eq!(w.write(Blocking::Until(10)), Ok(Outcome::Done(64)));
    // Nothing moved: the deadline is an error.
    assert_eq!(w.write(Blocking::Until(10)), Err(Error::TimedOut));
}

#[test]
fn a_cancelled_write_returns_what_was_written() {
    let mut w = World::new();
    assert_eq!(w.write(Blocking::Forever), Ok(Outcome::Blocked));
    assert_eq!(w.ipc.cancel_wait(w.writer), Ok(Some(Wakeup::Retry)));
    assert_eq!(w.write(Blocking::Forever), Ok(Outcome::Done(64)));
    // A cancelled wait that had moved nothing fails with Cancelled.
    assert_eq!(w.write(Blocking::Forever), Ok(Outcome::Blocked));
    assert_eq!(
        w.ipc.cancel_wait(w.writer),
        Ok(Some(Wakeup::Failed(Error::Cancelled)))
    );
}

#[test]
fn a_different_write_after_a_wake_starts_afresh() {
    let mut w = World::new();
    assert_eq!(w.write(Blocking::Forever), Ok(Outcome::Blocked));
    assert_eq!(w.drain(0x1000), 64);
    w.machine.take_wakes();
    // Not the same call again: different data (a prefix) is a new write.
    let other = w.machine.slice(PRIVATE_BASE, 10);
    assert_eq!(
        w.ipc
            .pipe_write(w.writer, w.write, other, Blocking::Forever, &mut w.machine),
        Ok(Outcome::Done(10))
    );
    assert_eq!(w.drain(0x2000), 10);
    assert_eq!(
        w.machine.read(w.reader, PRIVATE_BASE + 0x2000, 10).unwrap(),
        w.machine.read(w.writer, PRIVATE_BASE, 10).unwrap()
    );
}

#[test]
fn zero_length_writes_return_zero_with_or_without_a_reader() {
    let mut w = World::new();
    let empty = w.machine.slice(PRIVATE_BASE, 0);
    assert_eq!(
        w.ipc
            .pipe_write(w.writer, w.write, empty, Blocking::Forever, &mut w.machine),
        Ok(Outcome::Done(0))
    );
    w.ipc
        .handle_close(w.reader, w.read, &mut w.machine)
        .unwrap();
    assert_eq!(
        w.ipc
            .pipe_write(w.writer, w.write, empty, Blocking::Forever, &mut w.machine),
        Ok(Outcome::Done(0))
    );
    let one = w.machine.slice(PRIVATE_BASE, 1);
    assert_eq!(
        w.ipc
            .pipe_write(w.writer, w.write, one, Blocking::Forever, &mut w.machine),
        Err(Error::BrokenPipe)
    );
}
