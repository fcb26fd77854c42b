//! Quotas: no process can take a shared table from the others.
//!
//! A hog fills every quota it can; each call past a quota fails with the error that
//! names it (or, for a mailbox, finds the mailbox full for that sender alone) and
//! changes nothing; a well-behaved process started after the hog still creates, maps,
//! sends and receives; and releasing anything makes room again.

mod sim;

use kipc::*;
use sim::{Machine, PRIVATE_BASE, PRIVATE_PAGES};

/// Small quotas so every one is reached in a few calls.
struct SmallQuotas;

impl Limits for SmallQuotas {
    const QUOTAS: Quotas = Quotas {
        objects_per_kind: 2,
        mappings: 3,
        region_frames: 6,
        buffered_messages: 2,
        handles_in_flight: 3,
    };
}

/// 4 processes, 32 handles, 4 objects per kind, 64-byte messages, 64-byte pipes,
/// 4-message mailboxes, 8-message queues, 8-page regions, 16 mappings.
type QuotaIpc = Ipc<4, 32, 4, 64, 64, 4, 8, 8, 16, SmallQuotas>;

fn quota(kind: Quota) -> Error {
    Error::QuotaExceeded { quota: kind }
}

struct World {
    ipc: Box<QuotaIpc>,
    machine: Machine,
}

impl World {
    fn new() -> World {
        World {
            ipc: Box::new(QuotaIpc::new()),
            machine: Machine::new(4 * PRIVATE_PAGES + 128),
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

    fn buffer(&self, length: usize) -> UserSlice {
        self.machine.slice(PRIVATE_BASE, length)
    }

    fn send(
        &mut self,
        from: ProcessId,
        mailbox: Handle,
        handles: &[Handle],
    ) -> Result<Outcome<()>, Error> {
        let payload = self.buffer(8);
        self.ipc.mailbox_send(
            from,
            mailbox,
            payload,
            handles,
            Blocking::NonBlocking,
            &mut self.machine,
        )
    }

    /// Creates objects of one kind with `create` until it fails; returns what it made
    /// and the error.
    fn fill(
        &mut self,
        mut create: impl FnMut(&mut World) -> Result<Handle, Error>,
    ) -> (Vec<Handle>, Error) {
        let mut made = Vec::new();
        loop {
            match create(self) {
                Ok(handle) => made.push(handle),
                Err(error) => return (made, error),
            }
            assert!(made.len() <= 16, "no quota stopped the hog");
        }
    }
}

#[test]
fn a_hog_fills_every_quota_and_a_later_process_still_gets_everything() {
    let mut w = World::new();
    let server = w.spawn();
    let hog = w.spawn();
    // The server's mailbox, which both clients may send to.
    let inbox = w.ipc.mailbox_create(server).unwrap();
    let hog_inbox = w
        .ipc
        .handle_grant(server, inbox, hog, Rights::WRITE)
        .unwrap();

    // Objects, kind by kind: the hog stops at 2 of the table's 4.
    let (mailboxes, error) = w.fill(|w| w.ipc.mailbox_create(hog));
    assert_eq!((mailboxes.len(), error), (2, quota(Quota::Objects)));
    let (pipes, error) = w.fill(|w| w.ipc.pipe_create(hog).map(|(read, _)| read));
    assert_eq!((pipes.len(), error), (2, quota(Quota::Objects)));
    let (semaphores, error) = w.fill(|w| w.ipc.semaphore_create(hog, 0));
    assert_eq!((semaphores.len(), error), (2, quota(Quota::Objects)));
    let (notifications, error) = w.fill(|w| w.ipc.notification_create(hog));
    assert_eq!((notifications.len(), error), (2, quota(Quota::Objects)));
    let mut names = ["q0", "q1", "q2", "q3"].into_iter();
    let (queues, error) = w.fill(|w| {
        w.ipc
            .mqueue_create(hog, names.next().unwrap().as_bytes(), 2, 8)
    });
    assert_eq!((queues.len(), error), (2, quota(Quota::Objects)));
    assert_eq!(w.ipc.fifo_create(hog, b"f0"), Ok(()));
    assert_eq!(w.ipc.fifo_create(hog, b"f1"), Ok(()));
    assert_eq!(w.ipc.fifo_create(hog, b"f2"), Err(quota(Quota::Objects)));

    // Region frames: 6 frames in all, whatever the number of regions.
    let big = w.ipc.region_create(hog, 5, &mut w.machine).unwrap();
    let frames_before = w.machine.free_frames();
    assert_eq!(
        w.ipc.region_create(hog, 2, &mut w.machine),
        Err(quota(Quota::RegionFrames))
    );
    assert_eq!(
        w.machine.free_frames(),
        frames_before,
        "a refused region took frames"
    );
    let small = w.ipc.region_create(hog, 1, &mut w.machine).unwrap();

    // Mappings: 3 of the table's 16.
    for _ in 0..3 {
        w.ipc
            .region_map(hog, small, None, Access::ReadWrite, &mut w.machine)
            .unwrap();
    }
    let usage = w.ipc.usage();
    assert_eq!(
        w.ipc
            .region_map(hog, big, None, Access::ReadOnly, &mut w.machine),
        Err(quota(Quota::Mappings))
    );
    assert_eq!(w.ipc.usage(), usage, "a refused mapping changed something");

    // Buffered messages: the server's 4-slot mailbox is full for the hog after 2.
    assert_eq!(w.send(hog, hog_inbox, &[]), Ok(Outcome::Done(())));
    assert_eq!(w.send(hog, hog_inbox, &[]), Ok(Outcome::Done(())));
    assert_eq!(w.send(hog, hog_inbox, &[]), Err(Error::WouldBlock));

    // Handles in flight: 3, counted across mailboxes. The hog's own mailbox takes them.
    let own = mailboxes[0];
    let sem = semaphores[0];
    let rights = w.ipc.handle_info(hog, sem).unwrap().rights;
    let extra: Vec<Handle> = (0..4)
        .map(|_| w.ipc.handle_duplicate(hog, sem, rights).unwrap())
        .collect();
    assert_eq!(w.send(hog, own, &extra[..3]), Ok(Outcome::Done(())));
    let usage = w.ipc.usage();
    assert_eq!(
        w.send(hog, own, &extra[3..]),
        Err(quota(Quota::HandlesInFlight))
    );
    assert_eq!(w.ipc.usage(), usage, "a refused send changed something");
    assert!(
        w.ipc.handle_info(hog, extra[3]).is_ok(),
        "the refused handle was taken"
    );

    // A process started after the hog gets every kind of object, maps, sends, receives.
    let polite = w.spawn();
    let polite_inbox = w
        .ipc
        .handle_grant(server, inbox, polite, Rights::WRITE)
        .unwrap();
    w.ipc.mailbox_create(polite).unwrap();
    let (read, write) = w.ipc.pipe_create(polite).unwrap();
    w.ipc.semaphore_create(polite, 1).unwrap();
    w.ipc.notification_create(polite).unwrap();
    w.ipc.mqueue_create(polite, b"polite", 2, 8).unwrap();
    w.ipc.fifo_create(polite, b"polite-fifo").unwrap();
    let region = w.ipc.region_create(polite, 2, &mut w.machine).unwrap();
    w.ipc
        .region_map(polite, region, None, Access::ReadWrite, &mut w.machine)
        .unwrap();
    assert_eq!(w.send(polite, polite_inbox, &[]), Ok(Outcome::Done(())));
    w.machine.write(polite, PRIVATE_BASE, b"pipe").unwrap();
    let data = w.buffer(4);
    assert_eq!(
        w.ipc
            .pipe_write(polite, write, data, Blocking::NonBlocking, &mut w.machine),
        Ok(Outcome::Done(4))
    );
    let into = w.machine.slice(PRIVATE_BASE + 0x100, 16);
    assert_eq!(
        w.ipc
            .pipe_read(polite, read, into, Blocking::NonBlocking, &mut w.machine),
        Ok(Outcome::Done(4))
    );
    // The server receives all three messages: the hog's two, then the polite one.
    let into = w.machine.slice(PRIVATE_BASE, 64);
    for _ in 0..3 {
        let got = w
            .ipc
            .mailbox_receive(server, inbox, into, Blocking::NonBlocking, &mut w.machine)
            .unwrap();
        assert!(matches!(got, Outcome::Done(Received { length: 8, .. })));
    }

    // Everything the hog held goes when it exits; at the end nothing is left.
    for pid in [hog, polite, server] {
        w.exit(pid);
    }
    // Names stay registered until unlinked (POSIX); unlinking frees the last objects.
    let cleaner = w.spawn();
    for name in ["q0", "q1", "polite"] {
        w.ipc.mqueue_unlink(cleaner, name.as_bytes()).unwrap();
    }
    for name in ["f0", "f1", "polite-fifo"] {
        w.ipc
            .fifo_unlink(cleaner, name.as_bytes(), &mut w.machine)
            .unwrap();
    }
    w.exit(cleaner);
    assert_eq!(w.ipc.usage(), Usage::default());
}

#[test]
fn receiving_and_closing_give_quota_back() {
    let mut w = World::new();
    let hog = w.spawn();
    let mailbox = w.ipc.mailbox_create(hog).unwrap();
    let second = w.ipc.mailbox_create(hog).unwrap();
    assert_eq!(w.ipc.mailbox_create(hog), Err(quota(Quota::Objects)));
    w.ipc.handle_close(hog, second, &mut w.machine).unwrap();
    let second = w.ipc.mailbox_create(hog).unwrap();

    assert_eq!(w.send(hog, mailbox, &[]), Ok(Outcome::Done(())));
    assert_eq!(w.send(hog, mailbox, &[]), Ok(Outcome::Done(())));
    assert_eq!(w.send(hog, mailbox, &[]), Err(Error::WouldBlock));
    let into = w.machine.slice(PRIVATE_BASE + 0x200, 64);
    let got = w
        .ipc
        .mailbox_receive(hog, mailbox, into, Blocking::NonBlocking, &mut w.machine);
    assert!(matches!(got, Ok(Outcome::Done(_))));
    assert_eq!(
        w.send(hog, mailbox, &[]),
        Ok(Outcome::Done(())),
        "a received message frees a slot"
    );

    // Handles in flight come back when the message carrying them is received.
    let sems: Vec<Handle> = (0..2)
        .map(|_| w.ipc.semaphore_create(hog, 0).unwrap())
        .collect();
    let rights = w.ipc.handle_info(hog, sems[0]).unwrap().rights;
    let dups: Vec<Handle> = (0..2)
        .map(|i| w.ipc.handle_duplicate(hog, sems[i], rights).unwrap())
        .collect();
    let own_more = w.ipc.handle_duplicate(hog, sems[0], rights).unwrap();
    assert_eq!(
        w.send(hog, second, &[sems[0], sems[1], dups[0]]),
        Ok(Outcome::Done(()))
    );
    assert_eq!(
        w.send(hog, second, &[dups[1]]),
        Err(quota(Quota::HandlesInFlight))
    );
    let got = w
        .ipc
        .mailbox_receive(hog, second, into, Blocking::NonBlocking, &mut w.machine);
    assert!(matches!(got, Ok(Outcome::Done(Received { .. }))));
    assert_eq!(
        w.send(hog, second, &[dups[1], own_more]),
        Ok(Outcome::Done(()))
    );
    w.exit(hog);
    assert_eq!(w.ipc.usage(), Usage::default());
}

#[test]
fn with_processes_times_quota_within_capacity_nobody_can_be_denied() {
    // 4 processes × 1 object ≤ 4 slots: every process gets its object, whatever the others do.
    struct OnePerProcess;
    impl Limits for OnePerProcess {
        const QUOTAS: Quotas = Quotas {
            objects_per_kind: 1,
            ..Quotas::UNLIMITED
        };
    }
    let mut ipc = Box::new(Ipc::<4, 8, 4, 64, 64, 4, 8, 8, 16, OnePerProcess>::new());
    let pids: Vec<ProcessId> = (0..4).map(|_| ipc.process_create().unwrap()).collect();
    for &pid in &pids[..3] {
        ipc.pipe_create(pid).unwrap();
        assert_eq!(ipc.pipe_create(pid), Err(quota(Quota::Objects)));
    }
    assert!(
        ipc.pipe_create(pids[3]).is_ok(),
        "the last process was denied its pipe"
    );
}

#[test]
fn a_loan_past_the_frame_quota_unmaps_nothing() {
    let mut w = World::new();
    let lender = w.spawn();
    let mapped = w.machine.mapped_pages(lender);
    assert_eq!(
        w.ipc.pages_loan(lender, PRIVATE_BASE, 7, &mut w.machine),
        Err(quota(Quota::RegionFrames))
    );
    assert_eq!(
        w.machine.mapped_pages(lender),
        mapped,
        "the refused loan unmapped pages"
    );
    let loan = w
        .ipc
        .pages_loan(lender, PRIVATE_BASE, 6, &mut w.machine)
        .unwrap();
    assert_eq!(w.ipc.region_pages(lender, loan), Ok(6));
    w.exit(lender);
    assert_eq!(w.ipc.usage(), Usage::default());
}

#[test]
fn quota_errors_have_a_stable_code_and_say_which_quota() {
    let error = quota(Quota::Mappings);
    assert_eq!(ErrorCode::from(error), ErrorCode::QuotaExceeded);
    assert_eq!(ErrorCode::QuotaExceeded as u32, 37);
    assert!(error.is_exhaustion());
    assert!(error.to_string().contains("region mappings"), "{error}");
    assert_eq!(Quotas::UNLIMITED.limit(Quota::Objects), usize::MAX);
}
