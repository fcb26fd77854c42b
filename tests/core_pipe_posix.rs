//! POSIX blocking writes: a blocking pipe (or FIFO) write of n bytes delivers n. What
//! does not fit waits, recorded with the writer's buffer; each read that makes room
//! carries the parked writes on (oldest first, an atomic one only when all of it fits),
//! and the write ends with `Completion::Written(n)` — no retried call, so no state is
//! left behind between calls. Only a non-blocking write, a deadline, a cancelled wait, a
//! vanished reader or a fault end it short, always with the bytes already moved. Zero-
//! length writes return 0, with or without a reader (as on Linux).

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

    /// Another writer: a new process with its own memory and a write handle.
    fn another_writer(&mut self) -> (ProcessId, Handle) {
        let pid = self.ipc.process_create().expect("a process slot");
        self.machine.give_private_memory(pid);
        let write = self
            .ipc
            .handle_grant(self.writer, self.write, pid, Rights::WRITE)
            .unwrap();
        (pid, write)
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
fn a_blocking_write_delivers_all_its_bytes_as_readers_make_room() {
    let mut w = World::new();
    // 64 bytes go in at once; the write parks with the rest recorded.
    assert_eq!(w.write(Blocking::Forever), Ok(Outcome::Blocked));
    let mut received = 0;
    let mut rounds = 0;
    let total = loop {
        // Each read makes room, and kipc carries the parked write on from the writer's
        // own buffer; nobody re-issues anything.
        received += w.drain(0x1000 + received as u64);
        rounds += 1;
        match w.machine.take_wakes().as_slice() {
            [] => assert!(
                w.ipc.is_waiting(w.writer),
                "the write stopped waiting silently"
            ),
            [(pid, Wakeup::Completed(Completion::Written(total)))] if *pid == w.writer => {
                break *total;
            }
            other => panic!("unexpected wake-ups {other:?}"),
        }
        assert!(rounds < 10, "the write never finished");
    };
    received += w.drain(0x1000 + received as u64);
    assert_eq!((total, received), (LENGTH, LENGTH));
    assert_eq!(
        rounds, 3,
        "200 bytes through a 64-byte pipe take three reads to finish"
    );
    assert!(!w.ipc.is_waiting(w.writer));
    let expected = w.machine.read(w.writer, PRIVATE_BASE, LENGTH).unwrap();
    assert_eq!(
        w.machine
            .read(w.reader, PRIVATE_BASE + 0x1000, LENGTH)
            .unwrap(),
        expected,
        "bytes lost, repeated or reordered"
    );
    // The ledger counts each byte once in (for the writer) and once out.
    let pipe = |direction| {
        w.ipc
            .ledger()
            .global()
            .copies(Mechanism::Pipe, direction)
            .bytes
    };
    assert_eq!(pipe(Direction::UserToKernel), LENGTH as u64);
    assert_eq!(pipe(Direction::KernelToUser), LENGTH as u64);
    assert_eq!(
        w.ipc.ledger().process(w.writer).unwrap().total_bytes(),
        LENGTH as u64
    );
}

#[test]
fn a_non_blocking_write_returns_a_short_count() {
    let mut w = World::new();
    assert_eq!(w.write(Blocking::NonBlocking), Ok(Outcome::Done(64)));
    assert_eq!(w.write(Blocking::NonBlocking), Err(Error::WouldBlock));
}

#[test]
fn a_reader_going_away_mid_write_ends_it_with_what_was_written() {
    let mut w = World::new();
    assert_eq!(w.write(Blocking::Forever), Ok(Outcome::Blocked));
    w.ipc
        .handle_close(w.reader, w.read, &mut w.machine)
        .unwrap();
    assert_eq!(
        w.machine.take_wakes(),
        vec![(w.writer, Wakeup::Completed(Completion::Written(64)))]
    );
    assert_eq!(w.write(Blocking::Forever), Err(Error::BrokenPipe));
}

#[test]
fn a_deadline_passing_mid_write_ends_it_with_what_was_written() {
    let mut w = World::new();
    assert_eq!(w.write(Blocking::Until(10)), Ok(Outcome::Blocked));
    w.machine.now = 10;
    assert_eq!(w.ipc.expire(10, &mut w.machine), 1);
    assert_eq!(
        w.machine.take_wakes(),
        vec![(w.writer, Wakeup::Completed(Completion::Written(64)))]
    );
    // Nothing moved: the deadline is an error.
    assert_eq!(w.write(Blocking::Until(10)), Err(Error::TimedOut));
}

#[test]
fn a_cancelled_write_ends_with_what_was_written_and_leaves_nothing_behind() {
    let mut w = World::new();
    assert_eq!(w.write(Blocking::Forever), Ok(Outcome::Blocked));
    assert_eq!(
        w.ipc.cancel_wait(w.writer),
        Ok(Some(Wakeup::Completed(Completion::Written(64))))
    );
    // A later write of the same buffer is a new write (nothing of the old one is
    // remembered): it waits for room like any other.
    assert_eq!(w.drain(0x1000), 64);
    assert_eq!(w.write(Blocking::Forever), Ok(Outcome::Blocked));
    assert_eq!(w.drain(0x1100), 64);
    assert_eq!(
        w.machine.read(w.reader, PRIVATE_BASE + 0x1100, 64).unwrap(),
        w.machine.read(w.writer, PRIVATE_BASE, 64).unwrap(),
        "the new write did not start at its beginning"
    );
    // A cancelled wait that had moved nothing fails with Cancelled.
    let mut fresh = World::new();
    assert_eq!(fresh.write(Blocking::NonBlocking), Ok(Outcome::Done(64)));
    assert_eq!(fresh.write(Blocking::Forever), Ok(Outcome::Blocked));
    assert_eq!(
        fresh.ipc.cancel_wait(fresh.writer),
        Ok(Some(Wakeup::Failed(Error::Cancelled)))
    );
}

#[test]
fn parked_writers_are_served_in_order_and_an_atomic_write_waits_for_all_its_room() {
    let mut w = World::new();
    let (second, write2) = w.another_writer();
    w.machine.write(second, PRIVATE_BASE, &[0xee; 40]).unwrap();
    assert_eq!(w.write(Blocking::NonBlocking), Ok(Outcome::Done(64)));
    // A 40-byte write is atomic (under PIPE_ATOMIC): it waits for 40 bytes of room.
    let atomic = w.machine.slice(PRIVATE_BASE, 40);
    assert_eq!(
        w.ipc
            .pipe_write(second, write2, atomic, Blocking::Forever, &mut w.machine),
        Ok(Outcome::Blocked)
    );
    let into = w.machine.slice(PRIVATE_BASE + 0x1000, 20);
    assert_eq!(
        w.ipc.pipe_read(
            w.reader,
            w.read,
            into,
            Blocking::NonBlocking,
            &mut w.machine
        ),
        Ok(Outcome::Done(20))
    );
    assert!(
        w.machine.take_wakes().is_empty(),
        "an atomic write went in with 20 bytes of room"
    );
    assert_eq!(w.drain(0x1100), 44);
    assert_eq!(
        w.machine.take_wakes(),
        vec![(second, Wakeup::Completed(Completion::Written(40)))]
    );
    assert_eq!(w.drain(0x1200), 40);
    assert_eq!(
        w.machine.read(w.reader, PRIVATE_BASE + 0x1200, 40).unwrap(),
        vec![0xee; 40]
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

#[test]
fn a_writer_that_fits_is_not_held_up_by_an_atomic_one_that_does_not() {
    let mut w = World::new();
    let (b, write_b) = w.another_writer();
    let (c, write_c) = w.another_writer();
    assert_eq!(w.write(Blocking::NonBlocking), Ok(Outcome::Done(64)));
    // B: a 60-byte atomic write, parked until 60 bytes are free.
    let b_data = w.machine.slice(PRIVATE_BASE, 60);
    assert_eq!(
        w.ipc
            .pipe_write(b, write_b, b_data, Blocking::Forever, &mut w.machine),
        Ok(Outcome::Blocked)
    );
    // 50 bytes free: C's 70-byte (non-atomic) write takes them and parks with 20 left.
    let into = w.machine.slice(PRIVATE_BASE + 0x1000, 50);
    assert_eq!(
        w.ipc.pipe_read(
            w.reader,
            w.read,
            into,
            Blocking::NonBlocking,
            &mut w.machine
        ),
        Ok(Outcome::Done(50))
    );
    let c_data = w.machine.slice(PRIVATE_BASE, 70);
    assert_eq!(
        w.ipc
            .pipe_write(c, write_c, c_data, Blocking::Forever, &mut w.machine),
        Ok(Outcome::Blocked)
    );
    w.machine.take_wakes();
    // 40 bytes free: not enough for B's 60, enough for C's last 20. C must finish.
    let into = w.machine.slice(PRIVATE_BASE + 0x1100, 40);
    assert_eq!(
        w.ipc.pipe_read(
            w.reader,
            w.read,
            into,
            Blocking::NonBlocking,
            &mut w.machine
        ),
        Ok(Outcome::Done(40))
    );
    assert_eq!(
        w.machine.take_wakes(),
        vec![(c, Wakeup::Completed(Completion::Written(70)))]
    );
    assert!(
        w.ipc.is_waiting(b),
        "the atomic write went in without its room"
    );
}

#[test]
fn a_parked_reader_is_filled_and_a_blocking_writer_goes_on_while_there_is_room() {
    let mut w = World::new();
    // The reader waits first, with a 32-byte buffer.
    let first = w.machine.slice(PRIVATE_BASE + 0x1000, 32);
    assert_eq!(
        w.ipc
            .pipe_read(w.reader, w.read, first, Blocking::Forever, &mut w.machine),
        Ok(Outcome::Blocked)
    );
    // The write fills the pipe, the parked read takes 32 of it (completed in place,
    // no retry), and the write goes on into the room that made before it parks:
    // it never waits on a pipe with space.
    assert_eq!(w.write(Blocking::Forever), Ok(Outcome::Blocked));
    assert_eq!(
        w.machine.take_wakes(),
        vec![(w.reader, Wakeup::Completed(Completion::Read(32)))]
    );
    assert_eq!(
        w.ipc.pipe_buffered(w.reader, w.read),
        Ok(64),
        "the writer stopped with room left in the pipe"
    );
    // The reader reads on: everything arrives once, in order, and the write ends
    // with all 200 bytes.
    let mut received = 32;
    let mut finished = None;
    for _ in 0..10 {
        received += w.drain(0x1000 + received as u64);
        if let [(pid, Wakeup::Completed(Completion::Written(total)))] =
            w.machine.take_wakes().as_slice()
        {
            assert_eq!(*pid, w.writer);
            finished = Some(*total);
        }
        if received == LENGTH {
            break;
        }
    }
    assert_eq!((finished, received), (Some(LENGTH), LENGTH));
    let expected = w.machine.read(w.writer, PRIVATE_BASE, LENGTH).unwrap();
    assert_eq!(
        w.machine
            .read(w.reader, PRIVATE_BASE + 0x1000, LENGTH)
            .unwrap(),
        expected,
        "bytes lost, repeated or reordered"
    );
}

#[test]
fn a_reader_finding_the_pipe_emptied_by_another_lets_the_parked_writer_go_on() {
    let mut w = World::new();
    let (second, second_read) = {
        let pid = w.ipc.process_create().expect("a process slot");
        w.machine.give_private_memory(pid);
        let read = w
            .ipc
            .handle_grant(w.reader, w.read, pid, Rights::READ)
            .unwrap();
        (pid, read)
    };
    // The second reader waits with a large buffer; the writer's 200 bytes fill the
    // pipe, it takes 64, the writer fills it again and parks.
    let big = w.machine.slice(PRIVATE_BASE + 0x2000, 64);
    assert_eq!(
        w.ipc
            .pipe_read(second, second_read, big, Blocking::Forever, &mut w.machine),
        Ok(Outcome::Blocked)
    );
    assert_eq!(w.write(Blocking::Forever), Ok(Outcome::Blocked));
    assert_eq!(
        w.machine.take_wakes(),
        vec![(second, Wakeup::Completed(Completion::Read(64)))]
    );
    // The first reader reads; its read carries the writer on, and nothing waits on an
    // empty pipe while the writer still has bytes.
    let mut received = 0;
    for _ in 0..10 {
        received += w.drain(0x1000 + received as u64);
        w.machine.take_wakes();
        if !w.ipc.is_waiting(w.writer) && w.ipc.pipe_buffered(w.reader, w.read) == Ok(0) {
            break;
        }
    }
    assert_eq!(
        received + 64,
        LENGTH,
        "every byte reached one of the readers"
    );
}
