//! Every error a system call can return is reachable, and each is produced here by the
//! situation its documentation names. The scenarios are chosen by an exhaustive `match`
//! on `ErrorCode` (no wildcard): a new error code does not compile until it has one.

mod sim;

use kipc::*;
use sim::{Machine, PRIVATE_BASE, PRIVATE_PAGES};

/// Tiny tables: 2 processes, 4 handles, 2 objects per kind, 16-byte messages, 16-byte
/// pipes, 2-message mailboxes and queues, 4-page regions, 2 mappings, no quotas.
type Tiny = Ipc<2, 4, 2, 16, 16, 2, 2, 4, 2, Unlimited>;

struct OneEach;
impl Limits for OneEach {
    const QUOTAS: Quotas = Quotas {
        objects_per_kind: 1,
        ..Quotas::UNLIMITED
    };
}

struct World {
    ipc: Box<Tiny>,
    machine: Machine,
    a: ProcessId,
    b: ProcessId,
}

impl World {
    fn new() -> World {
        World::with_frames(2 * PRIVATE_PAGES + 32)
    }

    fn with_frames(frames: usize) -> World {
        let mut ipc = Box::new(Tiny::new());
        let mut machine = Machine::new(frames);
        let a = ipc.process_create().unwrap();
        let b = ipc.process_create().unwrap();
        machine.give_private_memory(a);
        machine.give_private_memory(b);
        World { ipc, machine, a, b }
    }

    fn buffer(&self, length: usize) -> UserSlice {
        self.machine.slice(PRIVATE_BASE, length)
    }
}

/// Runs the scenario that must end in `code`; returns the error it got.
fn produce(code: ErrorCode) -> Option<Error> {
    let mut w = World::new();
    let (a, b) = (w.a, w.b);
    let nb = Blocking::NonBlocking;
    let result: Result<(), Error> = match code {
        ErrorCode::Success => return None,
        ErrorCode::WouldBlock => {
            let (read, _) = w.ipc.pipe_create(a).unwrap();
            let into = w.buffer(8);
            w.ipc
                .pipe_read(a, read, into, nb, &mut w.machine)
                .map(|_| ())
        }
        ErrorCode::Full => {
            w.ipc.fifo_create(a, b"one").unwrap();
            w.ipc.fifo_create(a, b"two").unwrap();
            w.ipc.fifo_create(a, b"three")
        }
        ErrorCode::PeerClosed => {
            let mailbox = w.ipc.mailbox_create(a).unwrap();
            let send = w.ipc.mailbox_mint(a, mailbox, Rights::WRITE, 0).unwrap();
            w.ipc.handle_close(a, mailbox, &mut w.machine).unwrap();
            let payload = w.buffer(4);
            w.ipc
                .mailbox_send(a, send, payload, &[], nb, &mut w.machine)
                .map(|_| ())
        }
        ErrorCode::BrokenPipe => {
            let (read, write) = w.ipc.pipe_create(a).unwrap();
            w.ipc.handle_close(a, read, &mut w.machine).unwrap();
            let data = w.buffer(4);
            w.ipc
                .pipe_write(a, write, data, nb, &mut w.machine)
                .map(|_| ())
        }
        ErrorCode::TimedOut => {
            let (read, _) = w.ipc.pipe_create(a).unwrap();
            let into = w.buffer(8);
            w.ipc
                .pipe_read(a, read, into, Blocking::Until(0), &mut w.machine)
                .map(|_| ())
        }
        ErrorCode::MessageTooLarge => {
            let mailbox = w.ipc.mailbox_create(a).unwrap();
            let payload = w.buffer(17);
            w.ipc
                .mailbox_send(a, mailbox, payload, &[], nb, &mut w.machine)
                .map(|_| ())
        }
        ErrorCode::BufferTooSmall => {
            let queue = w.ipc.mqueue_create(a, b"q", 2, 16).unwrap();
            let into = w.buffer(8);
            w.ipc
                .mqueue_receive(a, queue, into, nb, &mut w.machine)
                .map(|_| ())
        }
        ErrorCode::NotFound => w
            .ipc
            .mqueue_open(a, b"nowhere", QueueOpen::ReadWrite)
            .map(|_| ()),
        ErrorCode::AlreadyExists => {
            w.ipc.fifo_create(a, b"twice").unwrap();
            w.ipc.fifo_create(b, b"twice")
        }
        ErrorCode::NameTooLong => w.ipc.fifo_create(a, &[b'n'; NAME_MAX + 1]),
        ErrorCode::NoReader => {
            w.ipc.fifo_create(a, b"lonely").unwrap();
            w.ipc
                .fifo_open(a, b"lonely", OpenMode::Write, nb, &mut w.machine)
                .map(|_| ())
        }
        ErrorCode::Cancelled => {
            let (read, _) = w.ipc.pipe_create(a).unwrap();
            let into = w.buffer(8);
            let parked = w
                .ipc
                .pipe_read(a, read, into, Blocking::Forever, &mut w.machine);
            assert_eq!(parked, Ok(Outcome::Blocked));
            match w.ipc.cancel_wait(a).unwrap() {
                Some(Wakeup::Failed(error)) => Err(error),
                other => panic!("cancel_wait gave {other:?}"),
            }
        }
        ErrorCode::Interrupted => {
            // A signal with a handler reaches a process parked in a read.
            let (read, _) = w.ipc.pipe_create(a).unwrap();
            let catch = SignalAction {
                disposition: Disposition::Handler(0x40_1000),
                ..SignalAction::DEFAULT
            };
            w.ipc
                .signal_action(a, Signal::SIGUSR1, Some(catch))
                .unwrap();
            let into = w.buffer(8);
            let parked = w
                .ipc
                .pipe_read(a, read, into, Blocking::Forever, &mut w.machine);
            assert_eq!(parked, Ok(Outcome::Blocked));
            w.ipc
                .signal_post(a, Signal::SIGUSR1, &mut w.machine)
                .unwrap();
            match w.machine.take_wakes().pop() {
                Some((_, Wakeup::Failed(error))) => Err(error),
                other => panic!("the signal gave {other:?}"),
            }
        }
        ErrorCode::OutOfHandles => {
            // 4 handle slots: two semaphores and two notifications fill them.
            for _ in 0..2 {
                w.ipc.semaphore_create(a, 0).unwrap();
                w.ipc.notification_create(a).unwrap();
            }
            w.ipc.mailbox_create(a).map(|_| ())
        }
        ErrorCode::OutOfObjects => {
            w.ipc.semaphore_create(a, 0).unwrap();
            w.ipc.semaphore_create(b, 0).unwrap();
            w.ipc.semaphore_create(a, 0).map(|_| ())
        }
        ErrorCode::OutOfFrames => {
            let mut w = World::with_frames(2 * PRIVATE_PAGES + 2);
            w.ipc.region_create(w.a, 4, &mut w.machine).map(|_| ())
        }
        ErrorCode::OutOfMappings => {
            let region = w.ipc.region_create(a, 1, &mut w.machine).unwrap();
            for _ in 0..2 {
                w.ipc
                    .region_map(a, region, None, Access::ReadOnly, &mut w.machine)
                    .unwrap();
            }
            w.ipc
                .region_map(a, region, None, Access::ReadOnly, &mut w.machine)
                .map(|_| ())
        }
        ErrorCode::OutOfProcesses => w.ipc.process_create().map(|_| ()),
        ErrorCode::QuotaExceeded => {
            let mut ipc = Box::new(Ipc::<2, 4, 2, 16, 16, 2, 2, 4, 2, OneEach>::new());
            let p = ipc.process_create().unwrap();
            ipc.semaphore_create(p, 0).unwrap();
            ipc.semaphore_create(p, 0).map(|_| ())
        }
        ErrorCode::BadAddress => {
            let (_, write) = w.ipc.pipe_create(a).unwrap();
            let unmapped = w.machine.slice(PRIVATE_BASE + 0x100_0000, 4);
            w.ipc
                .pipe_write(a, write, unmapped, nb, &mut w.machine)
                .map(|_| ())
        }
        ErrorCode::BadHandle => w
            .ipc
            .handle_info(a, Handle::from_raw(0xdead_beef))
            .map(|_| ()),
        ErrorCode::StaleHandle => {
            let semaphore = w.ipc.semaphore_create(a, 0).unwrap();
            w.ipc.handle_close(a, semaphore, &mut w.machine).unwrap();
            w.ipc.semaphore_post(a, semaphore, &mut w.machine)
        }
        ErrorCode::WrongObjectKind => {
            let semaphore = w.ipc.semaphore_create(a, 0).unwrap();
            let into = w.buffer(8);
            w.ipc
                .pipe_read(a, semaphore, into, nb, &mut w.machine)
                .map(|_| ())
        }
        ErrorCode::PermissionDenied => {
            let (read, _) = w.ipc.pipe_create(a).unwrap();
            let data = w.buffer(4);
            w.ipc
                .pipe_write(a, read, data, nb, &mut w.machine)
                .map(|_| ())
        }
        ErrorCode::InvalidArgument => w.ipc.region_create(a, 0, &mut w.machine).map(|_| ()),
        ErrorCode::NoSuchProcess => {
            w.ipc.process_exit(b, &mut w.machine).unwrap();
            w.ipc.process_exit(b, &mut w.machine)
        }
        ErrorCode::AddressInUse => {
            let region = w.ipc.region_create(a, 1, &mut w.machine).unwrap();
            w.ipc
                .region_map(
                    a,
                    region,
                    Some(PRIVATE_BASE),
                    Access::ReadOnly,
                    &mut w.machine,
                )
                .map(|_| ())
        }
        ErrorCode::NotMapped => w
            .ipc
            .region_unmap(a, PRIVATE_BASE + 0x200_0000, &mut w.machine),
    };
    result.err()
}

#[test]
fn every_error_code_is_reached_by_its_documented_situation() {
    let mut seen = 0;
    for value in 0..256 {
        let Some(code) = ErrorCode::from_u32(value) else {
            continue;
        };
        let got = produce(code);
        if code == ErrorCode::Success {
            assert_eq!(got, None);
            continue;
        }
        let got = got.unwrap_or_else(|| panic!("the scenario for {code:?} succeeded"));
        assert_eq!(
            ErrorCode::from(got),
            code,
            "the scenario for {code:?} gave {got:?}"
        );
        seen += 1;
    }
    assert_eq!(seen, 28, "the 28 error codes (besides Success)");
}
