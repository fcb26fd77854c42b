//! Exhaustion: every bounded resource — handle slots, object tables, the process table,
//! physical frames, the mapping table, queue and pipe space — runs out with its documented
//! error, the failed call changes nothing (usage, ledger, free frames and page tables are
//! identical before and after), and the same call succeeds once something is released.
//! Finally, kernel-wide accounting: after every process exits, usage is back to zero and
//! every frame is back with the simulated allocator.

mod sim;

use kipc::*;
use sim::{Machine, PRIVATE_BASE, PRIVATE_PAGES};

/// Small tables so every limit is reached in a few calls: 4 processes, 8 handles each,
/// 4 objects per kind, 64-byte messages, 64-byte pipes.
/// No quotas: these tests exhaust the tables themselves (quotas: `core_quotas.rs`).
type SmallIpc = Ipc<4, 8, 4, 64, 64, 8, 16, 64, 64, kipc::Unlimited>;
const HANDLES: usize = 8;
const OBJECTS: usize = 4;
const PIPE_CAPACITY: usize = 64;

/// Everything a failed call must leave untouched.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    usage: Usage,
    ledger: Ledger<4>,
    free_frames: usize,
    mapped_pages: usize,
}

struct World {
    ipc: Box<SmallIpc>,
    machine: Machine,
    frames: usize,
}

impl World {
    fn new() -> World {
        World::with_frames(4 * PRIVATE_PAGES + 64)
    }

    fn with_frames(frames: usize) -> World {
        World {
            ipc: Box::new(SmallIpc::new()),
            machine: Machine::new(frames),
            frames,
        }
    }

    fn spawn(&mut self) -> ProcessId {
        let pid = self.ipc.process_create().unwrap();
        self.machine.give_private_memory(pid);
        pid
    }

    fn exit(&mut self, pid: ProcessId) {
        self.ipc.process_exit(pid, &mut self.machine).unwrap();
        self.machine.destroy_address_space(pid);
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot {
            usage: self.ipc.usage(),
            ledger: self.ipc.ledger_snapshot(),
            free_frames: self.machine.free_frames(),
            mapped_pages: self.machine.total_mapped_pages(),
        }
    }

    fn slice(&self, address: u64, length: usize) -> UserSlice {
        self.machine.slice(address, length)
    }

    /// Runs `call`, expects `error`, and checks that nothing changed.
    #[track_caller]
    fn refused<T: std::fmt::Debug>(
        &mut self,
        what: &str,
        error: Error,
        call: impl FnOnce(&mut World) -> Result<T, Error>,
    ) {
        let before = self.snapshot();
        let result = call(self);
        assert!(
            matches!(&result, Err(e) if *e == error),
            "{what}: expected {error:?}, got {result:?}"
        );
        assert!(error.is_exhaustion() || error == Error::WouldBlock || error == Error::Full);
        assert_eq!(
            self.snapshot(),
            before,
            "{what}: the failed call changed something"
        );
        assert!(self.machine.take_wakes().is_empty(), "{what}: woke someone");
    }

    /// Every process exits; then nothing may be left anywhere.
    fn assert_back_to_baseline(mut self, processes: &[ProcessId]) {
        for pid in processes {
            if self.ipc.is_alive(*pid) {
                self.exit(*pid);
            }
        }
        assert_eq!(self.ipc.usage(), Usage::default());
        assert_eq!(
            self.machine.free_frames(),
            self.frames,
            "every frame is back"
        );
        assert_eq!(self.machine.total_mapped_pages(), 0);
    }
}

#[test]
fn a_full_handle_table_refuses_every_call_that_adds_a_handle() {
    let mut w = World::new();
    let a = w.spawn();
    let b = w.spawn();
    let inbox = w.ipc.mailbox_create(a).unwrap();
    let send = w.ipc.handle_grant(a, inbox, b, Rights::WRITE).unwrap();
    // `b` sends `a` a message carrying a handle, and sets up named objects.
    let carried = w.ipc.semaphore_create(b, 0).unwrap();
    let payload = w.slice(PRIVATE_BASE, 3);
    w.ipc
        .mailbox_send(
            b,
            send,
            payload,
            &[carried],
            Blocking::NonBlocking,
            &mut w.machine,
        )
        .unwrap()
        .done()
        .unwrap();
    let queue = w.ipc.mqueue_create(b, b"q", 2, 8).unwrap();
    w.ipc.fifo_create(b, b"f").unwrap();
    // Fill `a`'s table: the inbox plus seven more.
    let mut fillers = Vec::new();
    for _ in 0..3 {
        fillers.push(w.ipc.semaphore_create(a, 0).unwrap());
    }
    for _ in 0..4 {
        fillers.push(w.ipc.notification_create(a).unwrap());
    }
    assert_eq!(w.ipc.usage().handles, HANDLES + 2);

    let lender_page = PRIVATE_BASE + 0x1_0000;
    /// A call that adds handles to `a`; returns the new handles.
    type Call =
        fn(&mut World, ProcessId, ProcessId, Handle, Handle, u64) -> Result<Vec<Handle>, Error>;
    let calls: Vec<(&str, usize, Call)> = vec![
        ("mailbox_create", 1, |w, a, _, _, _, _| {
            w.ipc.mailbox_create(a).map(|h| vec![h])
        }),
        ("pipe_create", 2, |w, a, _, _, _, _| {
            w.ipc.pipe_create(a).map(|(r, w)| vec![r, w])
        }),
        ("mqueue_create", 1, |w, a, _, _, _, _| {
            w.ipc.mqueue_create(a, b"q2", 1, 8).map(|h| vec![h])
        }),
        ("mqueue_open", 1, |w, a, _, _, _, _| {
            w.ipc
                .mqueue_open(a, b"q", QueueOpen::ReadWrite)
                .map(|h| vec![h])
        }),
        ("semaphore_create", 1, |w, a, _, _, _, _| {
            w.ipc.semaphore_create(a, 0).map(|h| vec![h])
        }),
        ("notification_create", 1, |w, a, _, _, _, _| {
            w.ipc.notification_create(a).map(|h| vec![h])
        }),
        ("region_create", 1, |w, a, _, _, _, _| {
            w.ipc.region_create(a, 2, &mut w.machine).map(|h| vec![h])
        }),
        ("pages_loan", 1, |w, a, _, _, _, page| {
            w.ipc
                .pages_loan(a, page, 1, &mut w.machine)
                .map(|h| vec![h])
        }),
        ("fifo_open", 1, |w, a, _, _, _, _| {
            w.ipc
                .fifo_open(
                    a,
                    b"f",
                    OpenMode::Read,
                    Blocking::NonBlocking,
                    &mut w.machine,
                )
                .map(|o| vec![o.done().unwrap()])
        }),
        ("handle_duplicate", 1, |w, a, _, inbox, _, _| {
            w.ipc
                .handle_duplicate(a, inbox, Rights::READ)
                .map(|h| vec![h])
        }),
        ("mailbox_mint", 1, |w, a, _, inbox, _, _| {
            w.ipc
                .mailbox_mint(a, inbox, Rights::WRITE, 5)
                .map(|h| vec![h])
        }),
        ("handle_grant", 1, |w, a, b, _, queue, _| {
            w.ipc
                .handle_grant(b, queue, a, Rights::READ)
                .map(|h| vec![h])
        }),
        (
            "mailbox_receive with a handle",
            1,
            |w, a, _, inbox, _, _| {
                let buffer = w.slice(PRIVATE_BASE, 64);
                w.ipc
                    .mailbox_receive(a, inbox, buffer, Blocking::NonBlocking, &mut w.machine)
                    .map(|o| o.done().unwrap().handles.to_vec())
            },
        ),
    ];
    // Everything is refused while the table is full ...
    for (name, _, call) in &calls {
        w.refused(name, Error::OutOfHandles, |w| {
            call(w, a, b, inbox, queue, lender_page)
        });
    }
    assert_eq!(w.ipc.usage().queued_messages, 1, "the message was kept");
    assert!(
        w.machine.translate(a, lender_page).is_some(),
        "nothing was loaned"
    );

    // ... and works once handles are closed. Each success is undone (its new handles
    // closed, the table refilled) so the next call starts full again.
    for (name, needed, call) in &calls {
        for handle in fillers.drain(..*needed).collect::<Vec<_>>() {
            w.ipc.handle_close(a, handle, &mut w.machine).unwrap();
        }
        let new = call(&mut w, a, b, inbox, queue, lender_page)
            .unwrap_or_else(|e| panic!("{name} after closing {needed}: {e:?}"));
        assert_eq!(new.len(), *needed, "{name}");
        for handle in new {
            w.ipc.handle_info(a, handle).unwrap();
            w.ipc.handle_close(a, handle, &mut w.machine).unwrap();
        }
        for _ in 0..*needed {
            fillers.push(w.ipc.handle_duplicate(a, inbox, Rights::empty()).unwrap());
        }
        assert_eq!(w.ipc.usage().handles, HANDLES + 2, "{name}: full again");
    }
    w.ipc.mqueue_unlink(b, b"q").unwrap();
    w.ipc.mqueue_unlink(b, b"q2").unwrap();
    w.ipc.fifo_unlink(b, b"f", &mut w.machine).unwrap();
    w.assert_back_to_baseline(&[a, b]);
}

/// How to make and release one object of a kind.
struct Kind {
    name: &'static str,
    error: Error,
    create: fn(&mut World, ProcessId, usize) -> Result<Vec<Handle>, Error>,
    /// Names must be dropped as well as handles for these.
    unlink: Option<fn(&mut World, ProcessId, usize)>,
}

fn name(i: usize) -> [u8; 2] {
    [b'n', b'0' + i as u8]
}

#[test]
fn full_object_tables_refuse_and_recover() {
    let kinds = [
        Kind {
            name: "mailbox",
            error: Error::OutOfObjects,
            create: |w, p, _| w.ipc.mailbox_create(p).map(|h| vec![h]),
            unlink: None,
        },
        Kind {
            name: "pipe",
            error: Error::OutOfObjects,
            create: |w, p, _| w.ipc.pipe_create(p).map(|(r, w)| vec![r, w]),
            unlink: None,
        },
        Kind {
            name: "message queue",
            error: Error::OutOfObjects,
            create: |w, p, i| w.ipc.mqueue_create(p, &name(i), 2, 8).map(|h| vec![h]),
            unlink: Some(|w, p, i| w.ipc.mqueue_unlink(p, &name(i)).unwrap()),
        },
        Kind {
            name: "region",
            error: Error::OutOfObjects,
            create: |w, p, _| w.ipc.region_create(p, 1, &mut w.machine).map(|h| vec![h]),
            unlink: None,
        },
        Kind {
            name: "page loan",
            error: Error::OutOfObjects,
            create: |w, p, i| {
                let page = PRIVATE_BASE + ((8 + i) * PAGE_SIZE) as u64;
                w.ipc
                    .pages_loan(p, page, 1, &mut w.machine)
                    .map(|h| vec![h])
            },
            unlink: None,
        },
        Kind {
            name: "semaphore",
            error: Error::OutOfObjects,
            create: |w, p, _| w.ipc.semaphore_create(p, 0).map(|h| vec![h]),
            unlink: None,
        },
        Kind {
            name: "notification",
            error: Error::OutOfObjects,
            create: |w, p, _| w.ipc.notification_create(p).map(|h| vec![h]),
            unlink: None,
        },
        Kind {
            name: "FIFO name",
            error: Error::Full,
            create: |w, p, i| w.ipc.fifo_create(p, &name(i)).map(|()| vec![]),
            unlink: Some(|w, p, i| w.ipc.fifo_unlink(p, &name(i), &mut w.machine).unwrap()),
        },
        Kind {
            name: "opened FIFO (its pipe)",
            error: Error::OutOfObjects,
            // Plain pipes fill the pipe table; the fifth is the first open of a FIFO.
            create: |w, p, i| {
                if i < OBJECTS {
                    return w.ipc.pipe_create(p).map(|(r, w)| vec![r, w]);
                }
                w.ipc
                    .fifo_open(
                        p,
                        b"x",
                        OpenMode::Read,
                        Blocking::NonBlocking,
                        &mut w.machine,
                    )
                    .map(|o| vec![o.done().unwrap()])
            },
            unlink: None,
        },
    ];
    for kind in kinds {
        let mut w = World::new();
        let owners = [w.spawn(), w.spawn(), w.spawn()];
        let opens_fifo = kind.name.starts_with("opened FIFO");
        if opens_fifo {
            w.ipc.fifo_create(owners[2], b"x").unwrap();
        }
        let mut made = Vec::new();
        for i in 0..OBJECTS {
            let owner = owners[i % 2];
            made.push((
                owner,
                (kind.create)(&mut w, owner, i).unwrap_or_else(|e| panic!("{}: {e:?}", kind.name)),
            ));
        }
        // The fifth, from a process with an empty handle table.
        let third = owners[2];
        w.refused(kind.name, kind.error, |w| (kind.create)(w, third, OBJECTS));
        // Release object 0 (handles and, for named objects, the name) and retry.
        let (owner, handles) = made.swap_remove(0);
        for handle in handles {
            w.ipc.handle_close(owner, handle, &mut w.machine).unwrap();
        }
        if let Some(unlink) = kind.unlink {
            unlink(&mut w, owner, 0);
        }
        (kind.create)(&mut w, third, OBJECTS)
            .unwrap_or_else(|e| panic!("{} after a release: {e:?}", kind.name));
        for i in 1..=OBJECTS {
            if let Some(unlink) = kind.unlink {
                unlink(&mut w, third, i);
            }
        }
        if opens_fifo {
            w.ipc.fifo_unlink(third, b"x", &mut w.machine).unwrap();
        }
        w.assert_back_to_baseline(&owners);
    }
}

#[test]
fn a_full_process_table_refuses_and_recovers() {
    let mut w = World::new();
    let processes: Vec<ProcessId> = (0..4).map(|_| w.spawn()).collect();
    w.refused("process_create", Error::OutOfProcesses, |w| {
        w.ipc.process_create()
    });
    w.exit(processes[3]);
    let again = w.spawn();
    assert_eq!(again.slot(), processes[3].slot());
    assert!(!w.ipc.is_alive(processes[3]), "the old id stays dead");
    w.assert_back_to_baseline(&[processes[0], processes[1], processes[2], again]);
}

#[test]
fn out_of_frames_returns_every_frame_it_took() {
    // One process's private memory plus 5 spare frames.
    let mut w = World::with_frames(PRIVATE_PAGES + 5);
    let a = w.spawn();
    assert_eq!(w.machine.free_frames(), 5);
    let first = w.ipc.region_create(a, 3, &mut w.machine).unwrap();
    assert_eq!(w.machine.free_frames(), 2);
    // Asks for 4 with 2 free: takes 2, fails, gives both back.
    w.refused("region_create(4)", Error::OutOfFrames, |w| {
        w.ipc.region_create(a, 4, &mut w.machine)
    });
    w.refused("region_create(3)", Error::OutOfFrames, |w| {
        w.ipc.region_create(a, 3, &mut w.machine)
    });
    let second = w.ipc.region_create(a, 2, &mut w.machine).unwrap();
    w.refused("region_create(1) with none free", Error::OutOfFrames, |w| {
        w.ipc.region_create(a, 1, &mut w.machine)
    });
    // A mapped region keeps its frames after its handle closes, until unmapped.
    let at = w
        .ipc
        .region_map(a, first, None, Access::ReadWrite, &mut w.machine)
        .unwrap();
    w.ipc.handle_close(a, first, &mut w.machine).unwrap();
    assert_eq!(w.machine.free_frames(), 0);
    w.refused("region_create while mapped", Error::OutOfFrames, |w| {
        w.ipc.region_create(a, 3, &mut w.machine)
    });
    w.ipc.region_unmap(a, at, &mut w.machine).unwrap();
    assert_eq!(w.machine.free_frames(), 3);
    let third = w.ipc.region_create(a, 3, &mut w.machine).unwrap();
    assert_eq!(w.ipc.region_pages(a, third), Ok(3));
    w.ipc.handle_close(a, second, &mut w.machine).unwrap();
    w.assert_back_to_baseline(&[a]);
}

#[test]
fn a_full_mapping_table_refuses_and_recovers() {
    let mut w = World::new();
    let a = w.spawn();
    let region = w.ipc.region_create(a, 1, &mut w.machine).unwrap();
    let mut addresses = Vec::new();
    for _ in 0..MAX_MAPPINGS {
        addresses.push(
            w.ipc
                .region_map(a, region, None, Access::ReadOnly, &mut w.machine)
                .unwrap(),
        );
    }
    assert_eq!(w.ipc.usage().mappings, MAX_MAPPINGS);
    w.refused("region_map", Error::OutOfMappings, |w| {
        w.ipc
            .region_map(a, region, None, Access::ReadOnly, &mut w.machine)
    });
    w.refused("region_map at an address", Error::OutOfMappings, |w| {
        w.ipc.region_map(
            a,
            region,
            Some(0x7000_0000),
            Access::ReadOnly,
            &mut w.machine,
        )
    });
    w.ipc
        .region_unmap(a, addresses[10], &mut w.machine)
        .unwrap();
    w.ipc
        .region_map(
            a,
            region,
            Some(0x7000_0000),
            Access::ReadOnly,
            &mut w.machine,
        )
        .unwrap();
    w.assert_back_to_baseline(&[a]);
}

#[test]
fn full_queues_and_pipes_refuse_non_blocking_writers() {
    let mut w = World::new();
    let a = w.spawn();
    let b = w.spawn();
    let data: Vec<u8> = (0..=255).collect();
    w.machine.write(a, PRIVATE_BASE, &data).unwrap();

    // Message queue of 2.
    let queue = w.ipc.mqueue_create(a, b"q", 2, 8).unwrap();
    for i in 0..2 {
        let message = w.slice(PRIVATE_BASE + i * 8, 8);
        w.ipc
            .mqueue_send(a, queue, message, 1, Blocking::NonBlocking, &mut w.machine)
            .unwrap()
            .done()
            .unwrap();
    }
    let message = w.slice(PRIVATE_BASE + 16, 8);
    w.refused("mqueue_send", Error::WouldBlock, |w| {
        w.ipc
            .mqueue_send(a, queue, message, 31, Blocking::NonBlocking, &mut w.machine)
    });
    w.machine.now = 50;
    let before = w.snapshot();
    assert_eq!(
        w.ipc
            .mqueue_send(a, queue, message, 31, Blocking::Until(50), &mut w.machine),
        Err(Error::TimedOut)
    );
    assert_eq!(w.snapshot(), before);
    let buffer = w.slice(PRIVATE_BASE + 0x1000, 8);
    let got = w
        .ipc
        .mqueue_receive(a, queue, buffer, Blocking::NonBlocking, &mut w.machine)
        .unwrap()
        .done()
        .unwrap();
    assert_eq!(got.length, 8);
    assert_eq!(
        w.machine.read(a, PRIVATE_BASE + 0x1000, 8).unwrap(),
        &data[0..8]
    );
    w.ipc
        .mqueue_send(a, queue, message, 31, Blocking::NonBlocking, &mut w.machine)
        .unwrap()
        .done()
        .unwrap();
    for expected in [16..24, 8..16] {
        w.ipc
            .mqueue_receive(a, queue, buffer, Blocking::NonBlocking, &mut w.machine)
            .unwrap()
            .done()
            .unwrap();
        assert_eq!(
            w.machine.read(a, PRIVATE_BASE + 0x1000, 8).unwrap(),
            &data[expected]
        );
    }

    // Pipe of 64 bytes: fill it in two writes, then every further write is refused.
    let (read, write) = w.ipc.pipe_create(a).unwrap();
    let reader = w.ipc.handle_grant(a, read, b, Rights::READ).unwrap();
    w.ipc.handle_close(a, read, &mut w.machine).unwrap();
    let first = w.slice(PRIVATE_BASE, 60);
    assert_eq!(
        w.ipc
            .pipe_write(a, write, first, Blocking::NonBlocking, &mut w.machine),
        Ok(Outcome::Done(60))
    );
    let atomic = w.slice(PRIVATE_BASE + 60, 10);
    w.refused(
        "atomic pipe_write that does not fit",
        Error::WouldBlock,
        |w| {
            w.ipc
                .pipe_write(a, write, atomic, Blocking::NonBlocking, &mut w.machine)
        },
    );
    let rest = w.slice(PRIVATE_BASE + 60, 4);
    assert_eq!(
        w.ipc
            .pipe_write(a, write, rest, Blocking::NonBlocking, &mut w.machine),
        Ok(Outcome::Done(4))
    );
    for length in [1, PIPE_CAPACITY, 200] {
        let more = w.slice(PRIVATE_BASE + 64, length);
        w.refused("pipe_write into a full pipe", Error::WouldBlock, |w| {
            w.ipc
                .pipe_write(a, write, more, Blocking::NonBlocking, &mut w.machine)
        });
    }
    assert_eq!(w.ipc.pipe_buffered(a, write), Ok(PIPE_CAPACITY));
    let into = w.slice(PRIVATE_BASE, 10);
    assert_eq!(
        w.ipc
            .pipe_read(b, reader, into, Blocking::NonBlocking, &mut w.machine),
        Ok(Outcome::Done(10))
    );
    assert_eq!(w.machine.read(b, PRIVATE_BASE, 10).unwrap(), &data[0..10]);
    assert_eq!(
        w.ipc
            .pipe_write(a, write, atomic, Blocking::NonBlocking, &mut w.machine),
        Ok(Outcome::Done(10))
    );
    let all = w.slice(PRIVATE_BASE, 64);
    assert_eq!(
        w.ipc
            .pipe_read(b, reader, all, Blocking::NonBlocking, &mut w.machine),
        Ok(Outcome::Done(64))
    );
    let expected: Vec<u8> = data[10..64].iter().chain(&data[60..70]).copied().collect();
    assert_eq!(w.machine.read(b, PRIVATE_BASE, 64).unwrap(), expected);

    // Mailbox of MAILBOX_DEPTH messages.
    let inbox = w.ipc.mailbox_create(b).unwrap();
    let send = w.ipc.handle_grant(b, inbox, a, Rights::WRITE).unwrap();
    let payload = w.slice(PRIVATE_BASE, 5);
    for _ in 0..MAILBOX_DEPTH {
        w.ipc
            .mailbox_send(a, send, payload, &[], Blocking::NonBlocking, &mut w.machine)
            .unwrap()
            .done()
            .unwrap();
    }
    let semaphore = w.ipc.semaphore_create(a, 0).unwrap();
    w.refused("mailbox_send", Error::WouldBlock, |w| {
        w.ipc.mailbox_send(
            a,
            send,
            payload,
            &[semaphore],
            Blocking::NonBlocking,
            &mut w.machine,
        )
    });
    assert!(
        w.ipc.handle_info(a, semaphore).is_ok(),
        "the handle did not move"
    );
    let buffer = w.slice(PRIVATE_BASE, 64);
    w.ipc
        .mailbox_receive(b, inbox, buffer, Blocking::NonBlocking, &mut w.machine)
        .unwrap()
        .done()
        .unwrap();
    w.ipc
        .mailbox_send(
            a,
            send,
            payload,
            &[semaphore],
            Blocking::NonBlocking,
            &mut w.machine,
        )
        .unwrap()
        .done()
        .unwrap();
    assert_eq!(w.ipc.usage().handles_in_flight, 1);
    w.ipc.mqueue_unlink(a, b"q").unwrap();
    w.assert_back_to_baseline(&[a, b]);
}

#[test]
fn exiting_processes_return_every_resource() {
    let mut w = World::new();
    let baseline_frames = w.machine.free_frames();
    let a = w.spawn();
    let b = w.spawn();
    let c = w.spawn();
    // A bit of everything, some of it in flight or blocked.
    let inbox = w.ipc.mailbox_create(b).unwrap();
    let send = w.ipc.handle_grant(b, inbox, a, Rights::WRITE).unwrap();
    let region = w.ipc.region_create(a, 3, &mut w.machine).unwrap();
    w.ipc
        .region_map(a, region, None, Access::ReadWrite, &mut w.machine)
        .unwrap();
    let shared = w.ipc.handle_grant(a, region, c, Rights::MAP).unwrap();
    w.ipc
        .region_map(c, shared, None, Access::ReadOnly, &mut w.machine)
        .unwrap();
    let loan = w
        .ipc
        .pages_loan(a, PRIVATE_BASE + 0x8000, 2, &mut w.machine)
        .unwrap();
    let payload = w.slice(PRIVATE_BASE, 16);
    w.ipc
        .mailbox_send(
            a,
            send,
            payload,
            &[loan, region],
            Blocking::NonBlocking,
            &mut w.machine,
        )
        .unwrap()
        .done()
        .unwrap();
    let (read, write) = w.ipc.pipe_create(a).unwrap();
    w.ipc.handle_grant(a, read, c, Rights::READ).unwrap();
    w.ipc
        .pipe_write(a, write, payload, Blocking::NonBlocking, &mut w.machine)
        .unwrap()
        .done()
        .unwrap();
    let queue = w.ipc.mqueue_create(c, b"persist", 4, 16).unwrap();
    w.ipc
        .mqueue_send(c, queue, payload, 0, Blocking::NonBlocking, &mut w.machine)
        .unwrap()
        .done()
        .unwrap();
    w.ipc.mqueue_unlink(c, b"persist").unwrap();
    let semaphore = w.ipc.semaphore_create(c, 0).unwrap();
    assert!(
        w.ipc
            .semaphore_wait(c, semaphore, Blocking::Forever, &mut w.machine)
            .unwrap()
            .is_blocked()
    );
    let reply_buffer = w.slice(PRIVATE_BASE + 0x100, 16);
    assert!(
        w.ipc
            .mailbox_call(
                a,
                send,
                payload,
                &[],
                reply_buffer,
                Blocking::Forever,
                &mut w.machine
            )
            .unwrap()
            .is_blocked()
    );
    let usage = w.ipc.usage();
    assert!(usage.frames_held == 5 && usage.mappings == 2 && usage.waiters == 2);
    assert_eq!(
        usage.handles_in_flight, 3,
        "two handles and a reply capability"
    );

    w.exit(a);
    w.exit(b);
    let usage = w.ipc.usage();
    assert_eq!(
        (
            usage.mailboxes,
            usage.handles_in_flight,
            usage.queued_messages
        ),
        (0, 0, 1),
        "the inbox and its messages are gone; c's queue still holds its message"
    );
    assert_eq!(usage.regions, 1, "still mapped read-only in c");
    w.exit(c);
    assert_eq!(w.ipc.usage(), Usage::default());
    assert_eq!(w.machine.free_frames(), baseline_frames);
    assert_eq!(w.machine.total_mapped_pages(), 0);
}
