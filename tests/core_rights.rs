//! The rights matrix: for every façade operation that takes a handle, a table lists the
//! rights it needs. For each needed right the test derives a handle lacking exactly that
//! right (with `handle_duplicate`) and expects `PermissionDenied`; the full-rights handle
//! must get past the check; a handle of another kind gives `WrongObjectKind`, a closed one
//! `StaleHandle`, a never-issued one `BadHandle`. Then the special cases: duplicate and
//! mint never add rights, handle transfer needs TRANSFER, and a read-only mapping of a
//! region really is read-only in the simulated page tables.

mod sim;

use kipc::*;
use sim::{PRIVATE_BASE, System};

/// One process's scratch buffers in its private memory.
const BUFFER: u64 = PRIVATE_BASE;
const REPLY_BUFFER: u64 = PRIVATE_BASE + 0x1000;

/// A system with two processes and one object of every kind, all owned by `a`.
struct Fixture {
    system: System,
    a: ProcessId,
    b: ProcessId,
    mailbox: Handle,
    pipe_read: Handle,
    pipe_write: Handle,
    queue: Handle,
    region: Handle,
    semaphore: Handle,
    notification: Handle,
}

impl Fixture {
    fn new() -> Fixture {
        let mut system = System::new();
        let a = system.spawn();
        let b = system.spawn();
        let ipc = &mut system.ipc;
        let mailbox = ipc.mailbox_create(a).unwrap();
        let (pipe_read, pipe_write) = ipc.pipe_create(a).unwrap();
        let queue = ipc.mqueue_create(a, b"rights", 4, 16).unwrap();
        let region = ipc.region_create(a, 2, &mut system.machine).unwrap();
        let semaphore = ipc.semaphore_create(a, 1).unwrap();
        let notification = ipc.notification_create(a).unwrap();
        Fixture {
            system,
            a,
            b,
            mailbox,
            pipe_read,
            pipe_write,
            queue,
            region,
            semaphore,
            notification,
        }
    }

    fn slice(&self, address: u64, length: usize) -> UserSlice {
        self.system.machine.slice(address, length)
    }
}

/// Which fixture handle an operation works on.
#[derive(Clone, Copy, Debug)]
enum Target {
    Mailbox,
    PipeRead,
    PipeWrite,
    Queue,
    Region,
    Semaphore,
    Notification,
}

impl Target {
    fn handle(self, f: &Fixture) -> Handle {
        match self {
            Target::Mailbox => f.mailbox,
            Target::PipeRead => f.pipe_read,
            Target::PipeWrite => f.pipe_write,
            Target::Queue => f.queue,
            Target::Region => f.region,
            Target::Semaphore => f.semaphore,
            Target::Notification => f.notification,
        }
    }

    /// A live handle of `a` to an object of another kind.
    fn other_kind(self, f: &Fixture) -> Handle {
        match self {
            Target::Semaphore => f.notification,
            _ => f.semaphore,
        }
    }
}

type Operation = fn(&mut Fixture, Handle) -> Result<(), Error>;

/// One row of the matrix.
struct Row {
    name: &'static str,
    target: Target,
    needs: Rights,
    /// The operation works on a handle of any kind (so no `WrongObjectKind`).
    any_kind: bool,
    operation: Operation,
}

fn done<T>(result: Result<Outcome<T>, Error>) -> Result<(), Error> {
    result.map(|_| ())
}

fn matrix() -> Vec<Row> {
    vec![
        Row {
            name: "mailbox_send",
            target: Target::Mailbox,
            needs: Rights::WRITE,
            any_kind: false,
            operation: |f, h| {
                let payload = f.slice(BUFFER, 8);
                done(f.system.ipc.mailbox_send(
                    f.a,
                    h,
                    payload,
                    &[],
                    Blocking::NonBlocking,
                    &mut f.system.machine,
                ))
            },
        },
        Row {
            name: "mailbox_call",
            target: Target::Mailbox,
            needs: Rights::WRITE,
            any_kind: false,
            operation: |f, h| {
                let (payload, reply) = (f.slice(BUFFER, 8), f.slice(REPLY_BUFFER, 8));
                let outcome = f.system.ipc.mailbox_call(
                    f.a,
                    h,
                    payload,
                    &[],
                    reply,
                    Blocking::Forever,
                    &mut f.system.machine,
                );
                // The caller now waits for a reply; withdraw so the fixture stays usable.
                let _ = f.system.ipc.cancel_wait(f.a);
                done(outcome)
            },
        },
        Row {
            name: "mailbox_receive",
            target: Target::Mailbox,
            needs: Rights::READ,
            any_kind: false,
            operation: |f, h| {
                let buffer = f.slice(BUFFER, 64);
                done(f.system.ipc.mailbox_receive(
                    f.a,
                    h,
                    buffer,
                    Blocking::NonBlocking,
                    &mut f.system.machine,
                ))
            },
        },
        Row {
            name: "mailbox_mint",
            target: Target::Mailbox,
            needs: Rights::DUPLICATE,
            any_kind: false,
            operation: |f, h| {
                f.system
                    .ipc
                    .mailbox_mint(f.a, h, Rights::empty(), 9)
                    .map(drop)
            },
        },
        Row {
            name: "pipe_read",
            target: Target::PipeRead,
            needs: Rights::READ,
            any_kind: false,
            operation: |f, h| {
                let buffer = f.slice(BUFFER, 64);
                done(f.system.ipc.pipe_read(
                    f.a,
                    h,
                    buffer,
                    Blocking::NonBlocking,
                    &mut f.system.machine,
                ))
            },
        },
        Row {
            name: "pipe_write",
            target: Target::PipeWrite,
            needs: Rights::WRITE,
            any_kind: false,
            operation: |f, h| {
                let data = f.slice(BUFFER, 64);
                done(f.system.ipc.pipe_write(
                    f.a,
                    h,
                    data,
                    Blocking::NonBlocking,
                    &mut f.system.machine,
                ))
            },
        },
        Row {
            name: "pipe_buffered",
            target: Target::PipeRead,
            needs: Rights::empty(),
            any_kind: false,
            operation: |f, h| f.system.ipc.pipe_buffered(f.a, h).map(drop),
        },
        Row {
            name: "mqueue_send",
            target: Target::Queue,
            needs: Rights::WRITE,
            any_kind: false,
            operation: |f, h| {
                let message = f.slice(BUFFER, 16);
                done(f.system.ipc.mqueue_send(
                    f.a,
                    h,
                    message,
                    3,
                    Blocking::NonBlocking,
                    &mut f.system.machine,
                ))
            },
        },
        Row {
            name: "mqueue_receive",
            target: Target::Queue,
            needs: Rights::READ,
            any_kind: false,
            operation: |f, h| {
                let buffer = f.slice(BUFFER, 16);
                done(f.system.ipc.mqueue_receive(
                    f.a,
                    h,
                    buffer,
                    Blocking::NonBlocking,
                    &mut f.system.machine,
                ))
            },
        },
        Row {
            name: "mqueue_attributes",
            target: Target::Queue,
            needs: Rights::empty(),
            any_kind: false,
            operation: |f, h| f.system.ipc.mqueue_attributes(f.a, h).map(drop),
        },
        Row {
            name: "region_map read-only",
            target: Target::Region,
            needs: Rights::MAP,
            any_kind: false,
            operation: |f, h| {
                f.system
                    .ipc
                    .region_map(f.a, h, None, Access::ReadOnly, &mut f.system.machine)
                    .map(drop)
            },
        },
        Row {
            name: "region_map read-write",
            target: Target::Region,
            needs: Rights::MAP.union(Rights::WRITE),
            any_kind: false,
            operation: |f, h| {
                f.system
                    .ipc
                    .region_map(f.a, h, None, Access::ReadWrite, &mut f.system.machine)
                    .map(drop)
            },
        },
        Row {
            name: "region_pages",
            target: Target::Region,
            needs: Rights::empty(),
            any_kind: false,
            operation: |f, h| f.system.ipc.region_pages(f.a, h).map(drop),
        },
        Row {
            name: "semaphore_wait",
            target: Target::Semaphore,
            needs: Rights::WAIT,
            any_kind: false,
            operation: |f, h| {
                done(f.system.ipc.semaphore_wait(
                    f.a,
                    h,
                    Blocking::NonBlocking,
                    &mut f.system.machine,
                ))
            },
        },
        Row {
            name: "semaphore_post",
            target: Target::Semaphore,
            needs: Rights::SIGNAL,
            any_kind: false,
            operation: |f, h| f.system.ipc.semaphore_post(f.a, h, &mut f.system.machine),
        },
        Row {
            name: "semaphore_count",
            target: Target::Semaphore,
            needs: Rights::empty(),
            any_kind: false,
            operation: |f, h| f.system.ipc.semaphore_count(f.a, h).map(drop),
        },
        Row {
            name: "notification_signal",
            target: Target::Notification,
            needs: Rights::SIGNAL,
            any_kind: false,
            operation: |f, h| {
                f.system
                    .ipc
                    .notification_signal(f.a, h, 0b1, &mut f.system.machine)
            },
        },
        Row {
            name: "notification_wait",
            target: Target::Notification,
            needs: Rights::WAIT,
            any_kind: false,
            operation: |f, h| {
                done(f.system.ipc.notification_wait(
                    f.a,
                    h,
                    Blocking::NonBlocking,
                    &mut f.system.machine,
                ))
            },
        },
        Row {
            name: "handle_duplicate",
            target: Target::Semaphore,
            needs: Rights::DUPLICATE,
            any_kind: true,
            operation: |f, h| {
                f.system
                    .ipc
                    .handle_duplicate(f.a, h, Rights::empty())
                    .map(drop)
            },
        },
        Row {
            name: "handle_info",
            target: Target::Region,
            needs: Rights::empty(),
            any_kind: true,
            operation: |f, h| f.system.ipc.handle_info(f.a, h).map(drop),
        },
    ]
}

#[test]
fn every_needed_right_is_checked() {
    let mut checked = 0;
    for row in matrix() {
        // Full rights: the call gets past the check (and, in this fixture, succeeds or at
        // worst reports that it would block).
        let mut f = Fixture::new();
        let full = row.target.handle(&f);
        let result = (row.operation)(&mut f, full);
        assert!(
            matches!(result, Ok(()) | Err(Error::WouldBlock)),
            "{}: full rights gave {result:?}",
            row.name
        );

        // Each needed right missing, everything else kept.
        for right in row.needs.iter() {
            let mut f = Fixture::new();
            let full = row.target.handle(&f);
            let all = f.system.ipc.handle_info(f.a, full).unwrap().rights;
            assert!(all.contains(right), "{}: creator lacks {right:?}", row.name);
            let weak = f
                .system
                .ipc
                .handle_duplicate(f.a, full, all.difference(right))
                .unwrap();
            let usage = f.system.ipc.usage();
            let ledger = f.system.ipc.ledger_snapshot();
            assert_eq!(
                (row.operation)(&mut f, weak),
                Err(Error::PermissionDenied),
                "{} without {right:?}",
                row.name
            );
            assert_eq!(
                f.system.ipc.usage(),
                usage,
                "{}: refused call changed usage",
                row.name
            );
            assert_eq!(
                f.system.ipc.ledger_snapshot(),
                ledger,
                "{}: refused call copied",
                row.name
            );
            assert!(f.system.machine.take_wakes().is_empty());
            checked += 1;
        }

        // Operations that need no right work through a handle with none at all.
        if row.needs.is_empty() {
            let mut f = Fixture::new();
            let full = row.target.handle(&f);
            let bare = f
                .system
                .ipc
                .handle_duplicate(f.a, full, Rights::empty())
                .unwrap();
            assert_eq!(
                (row.operation)(&mut f, bare),
                Ok(()),
                "{} with no rights",
                row.name
            );
        }

        // Wrong kind, closed, never issued, another process's handle.
        let mut f = Fixture::new();
        let other = row.target.other_kind(&f);
        let expected = if row.any_kind {
            Ok(())
        } else {
            Err(Error::WrongObjectKind)
        };
        assert_eq!(
            (row.operation)(&mut f, other),
            expected,
            "{}: wrong kind",
            row.name
        );
        let full = row.target.handle(&f);
        let rights = f.system.ipc.handle_info(f.a, full).unwrap().rights;
        let closed = f.system.ipc.handle_duplicate(f.a, full, rights).unwrap();
        f.system
            .ipc
            .handle_close(f.a, closed, &mut f.system.machine)
            .unwrap();
        assert_eq!(
            (row.operation)(&mut f, closed),
            Err(Error::StaleHandle),
            "{}: closed",
            row.name
        );
        for never in [
            Handle::NONE,
            Handle::from_raw(0x0001_ffff), // index beyond the table
            Handle::from_raw(0x0007_0000 | 40), // a generation not yet reached
        ] {
            assert_eq!(
                (row.operation)(&mut f, never),
                Err(Error::BadHandle),
                "{}: {never:?}",
                row.name
            );
        }
        // `b` owns no handles: `a`'s handle number means nothing in `b`'s table.
        let foreign = row.target.handle(&f);
        std::mem::swap(&mut f.a, &mut f.b);
        let result = (row.operation)(&mut f, foreign);
        assert_eq!(
            result,
            Err(Error::BadHandle),
            "{}: another process's handle",
            row.name
        );
    }
    assert_eq!(checked, 16, "(operation, missing right) pairs checked");
}

#[test]
fn duplicate_and_mint_never_add_rights() {
    let mut f = Fixture::new();
    let ipc = &mut f.system.ipc;
    // A duplicate with fewer rights cannot be widened again, nor can the original be
    // widened beyond what it has.
    let weak = ipc
        .handle_duplicate(f.a, f.pipe_read, Rights::READ | Rights::DUPLICATE)
        .unwrap();
    for more in [Rights::WRITE, Rights::TRANSFER, Rights::READ | Rights::MAP] {
        assert_eq!(
            ipc.handle_duplicate(f.a, weak, Rights::DUPLICATE | more),
            Err(Error::PermissionDenied),
            "{more:?}"
        );
    }
    assert_eq!(
        ipc.handle_duplicate(f.a, f.pipe_read, Rights::WRITE),
        Err(Error::PermissionDenied),
        "a read end never becomes a write end"
    );
    assert_eq!(
        ipc.handle_duplicate(f.a, f.semaphore, Rights::CREATOR),
        Err(Error::PermissionDenied),
        "the creator's rights of a semaphore do not include READ/WRITE/MAP"
    );
    // Minting: only subsets, only from unbadged handles, and needs DUPLICATE.
    assert_eq!(
        ipc.mailbox_mint(f.a, f.mailbox, Rights::MAP, 1),
        Err(Error::PermissionDenied)
    );
    let badged = ipc
        .mailbox_mint(f.a, f.mailbox, Rights::WRITE | Rights::DUPLICATE, 1)
        .unwrap();
    assert_eq!(
        ipc.mailbox_mint(f.a, badged, Rights::WRITE, 2),
        Err(Error::PermissionDenied)
    );
    // The privileged grant narrows too.
    assert_eq!(
        ipc.handle_grant(f.a, weak, f.b, Rights::READ | Rights::WRITE),
        Err(Error::PermissionDenied)
    );
    let granted = ipc.handle_grant(f.a, weak, f.b, Rights::READ).unwrap();
    assert_eq!(ipc.handle_info(f.b, granted).unwrap().rights, Rights::READ);
    assert_eq!(
        ipc.handle_duplicate(f.b, granted, Rights::READ),
        Err(Error::PermissionDenied),
        "no DUPLICATE, no copy"
    );
    assert_eq!(
        ipc.usage().handles,
        10,
        "no refused call left a handle behind"
    );
}

#[test]
fn transfer_needs_the_transfer_right() {
    let mut f = Fixture::new();
    let send = f
        .system
        .ipc
        .handle_grant(f.a, f.mailbox, f.b, Rights::WRITE)
        .unwrap();
    let held = f
        .system
        .ipc
        .handle_grant(f.a, f.semaphore, f.b, Rights::WAIT | Rights::DUPLICATE)
        .unwrap();
    let movable = f
        .system
        .ipc
        .handle_duplicate(f.b, held, Rights::WAIT)
        .unwrap();
    let payload = f.slice(BUFFER, 4);
    let usage = f.system.ipc.usage();
    assert_eq!(
        f.system.ipc.mailbox_send(
            f.b,
            send,
            payload,
            &[held],
            Blocking::NonBlocking,
            &mut f.system.machine
        ),
        Err(Error::PermissionDenied),
        "a handle without TRANSFER cannot be moved"
    );
    assert_eq!(
        f.system.ipc.mailbox_send(
            f.b,
            send,
            payload,
            &[movable],
            Blocking::NonBlocking,
            &mut f.system.machine
        ),
        Err(Error::PermissionDenied),
        "duplicating does not create TRANSFER"
    );
    assert_eq!(f.system.ipc.usage(), usage, "nothing moved, nothing queued");
    assert!(
        f.system.ipc.handle_info(f.b, held).is_ok(),
        "still in the sender's table"
    );

    // The same refusal on the reply path.
    let outcome = f.system.ipc.mailbox_call(
        f.b,
        send,
        payload,
        &[],
        f.system.machine.slice(REPLY_BUFFER, 16),
        Blocking::Forever,
        &mut f.system.machine,
    );
    assert_eq!(outcome, Ok(Outcome::Blocked));
    let request = f
        .system
        .ipc
        .mailbox_receive(
            f.a,
            f.mailbox,
            f.slice(BUFFER, 64),
            Blocking::NonBlocking,
            &mut f.system.machine,
        )
        .unwrap()
        .done()
        .unwrap();
    let reply = request.reply.unwrap();
    let no_transfer = f
        .system
        .ipc
        .handle_duplicate(f.a, f.notification, Rights::SIGNAL)
        .unwrap();
    assert_eq!(
        f.system.ipc.mailbox_reply(
            f.a,
            reply,
            f.slice(BUFFER, 2),
            &[no_transfer],
            &mut f.system.machine
        ),
        Err(Error::PermissionDenied)
    );
    assert!(
        f.system.ipc.is_waiting(f.b),
        "the caller still waits for a real reply"
    );
    // A reply handle is WRITE|TRANSFER only: it cannot be duplicated or granted.
    assert_eq!(
        f.system.ipc.handle_duplicate(f.a, reply, Rights::WRITE),
        Err(Error::PermissionDenied)
    );
    assert_eq!(
        f.system.ipc.handle_grant(f.a, reply, f.b, Rights::WRITE),
        Err(Error::InvalidArgument)
    );
    // The reply needs a Reply handle: a mailbox handle is the wrong kind, and vice versa.
    assert_eq!(
        f.system.ipc.mailbox_reply(
            f.a,
            f.mailbox,
            f.slice(BUFFER, 2),
            &[],
            &mut f.system.machine
        ),
        Err(Error::WrongObjectKind)
    );
    let buffer = f.slice(BUFFER, 8);
    assert_eq!(
        f.system.ipc.mailbox_send(
            f.a,
            reply,
            buffer,
            &[],
            Blocking::NonBlocking,
            &mut f.system.machine
        ),
        Err(Error::WrongObjectKind)
    );
    f.system
        .ipc
        .mailbox_reply(f.a, reply, f.slice(BUFFER, 2), &[], &mut f.system.machine)
        .unwrap();
    assert_eq!(
        f.system
            .ipc
            .mailbox_reply(f.a, reply, f.slice(BUFFER, 2), &[], &mut f.system.machine),
        Err(Error::StaleHandle)
    );
}

#[test]
fn read_only_mapping_cannot_be_written() {
    let mut f = Fixture::new();
    let (a, b) = (f.a, f.b);
    let map_only = f
        .system
        .ipc
        .handle_grant(a, f.region, b, Rights::MAP)
        .unwrap();
    let writer = f
        .system
        .ipc
        .region_map(a, f.region, None, Access::ReadWrite, &mut f.system.machine)
        .unwrap();
    assert_eq!(
        f.system
            .ipc
            .region_map(b, map_only, None, Access::ReadWrite, &mut f.system.machine),
        Err(Error::PermissionDenied)
    );
    let reader = f
        .system
        .ipc
        .region_map(b, map_only, None, Access::ReadOnly, &mut f.system.machine)
        .unwrap();
    let machine = &mut f.system.machine;
    // The page table says read-only, and the simulated MMU enforces it.
    assert_eq!(machine.translate(b, reader).unwrap().1, Access::ReadOnly);
    machine.write(a, writer + 10, b"shared").unwrap();
    assert_eq!(machine.read(b, reader + 10, 6).unwrap(), b"shared");
    assert_eq!(machine.write(b, reader + 10, b"XX"), Err(Fault));
    assert_eq!(
        machine.write(b, reader + PAGE_SIZE as u64 - 1, b"XX"),
        Err(Fault),
        "a store across the page boundary faults too"
    );
    assert_eq!(
        machine.read(a, writer + 10, 6).unwrap(),
        b"shared",
        "unchanged"
    );

    // kipc's copies go through the same page tables: a pipe read into the read-only
    // mapping faults, is not counted, and leaves the bytes in the pipe.
    let r = f
        .system
        .ipc
        .handle_grant(a, f.pipe_read, b, Rights::READ)
        .unwrap();
    f.system.machine.write(a, BUFFER, b"data").unwrap();
    let data = f.slice(BUFFER, 4);
    let written = f.system.ipc.pipe_write(
        a,
        f.pipe_write,
        data,
        Blocking::NonBlocking,
        &mut f.system.machine,
    );
    assert_eq!(written, Ok(Outcome::Done(4)));
    let ledger = f.system.ipc.ledger_snapshot();
    let into_mapping = f.slice(reader, 4);
    assert_eq!(
        f.system.ipc.pipe_read(
            b,
            r,
            into_mapping,
            Blocking::NonBlocking,
            &mut f.system.machine
        ),
        Err(Error::BadAddress)
    );
    assert_eq!(f.system.ipc.ledger_snapshot(), ledger);
    assert_eq!(f.system.ipc.pipe_buffered(b, r), Ok(4));
    assert_eq!(f.system.machine.read(a, writer, 4).unwrap(), [0; 4]);
    // Through the read-write mapping the same read lands, and `b` sees it.
    let into_writer = f.slice(writer, 4);
    assert_eq!(
        f.system.ipc.pipe_read(
            a,
            f.pipe_read,
            into_writer,
            Blocking::NonBlocking,
            &mut f.system.machine
        ),
        Ok(Outcome::Done(4))
    );
    assert_eq!(f.system.machine.read(b, reader, 4).unwrap(), b"data");
}
