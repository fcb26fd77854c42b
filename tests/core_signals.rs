//! Signals in the portable core: masks, pending sets, actions, delivery order, the
//! capability to signal, alarms, SIGPIPE, and every row of the interruption table
//! (`kipc::signal`'s module documentation, repeated in `docs/mechanisms.md`): each
//! blocking call, interrupted before and after it made progress, with and without
//! `SignalFlags::RESTART`, ends exactly as the table says and loses nothing.

mod sim;

use kipc::*;
use sim::{PRIVATE_BASE, System};

const HANDLER: u64 = 0x40_1000;

fn handler(flags: SignalFlags) -> SignalAction {
    SignalAction {
        disposition: Disposition::Handler(HANDLER),
        mask: SignalSet::EMPTY,
        flags,
    }
}

/// Two processes: `a` (the one that blocks) and `b` (its peer), `b` holding a process
/// handle to `a` with SIGNAL.
struct World {
    system: System,
    a: ProcessId,
    b: ProcessId,
    to_a: Handle,
}

impl World {
    fn new() -> World {
        let mut system = System::new();
        let a = system.spawn();
        let b = system.spawn();
        let to_a = system.ipc.process_handle(b, a, Rights::SIGNAL).unwrap();
        World { system, a, b, to_a }
    }

    fn catch(&mut self, signal: Signal, flags: SignalFlags) {
        self.system
            .ipc
            .signal_action(self.a, signal, Some(handler(flags)))
            .unwrap();
    }

    /// `b` sends `signal` to `a`; returns the wake-ups it caused.
    fn send(&mut self, signal: Signal) -> (Posted, Vec<(ProcessId, Wakeup)>) {
        let posted = self
            .system
            .ipc
            .signal_send(self.b, self.to_a, signal, &mut self.system.machine)
            .unwrap();
        (posted, self.system.machine.take_wakes())
    }

    fn slice(&self, offset: u64, length: usize) -> UserSlice {
        self.system.machine.slice(PRIVATE_BASE + offset, length)
    }

    fn leak_free_after_exit(mut self) {
        let World { a, b, .. } = self;
        self.system.exit(a);
        self.system.exit(b);
        assert_eq!(self.system.ipc.usage(), Usage::default());
    }
}

// ------------------------------------------------------------------ masks and pending

#[test]
fn sigkill_cannot_be_caught_blocked_or_ignored() {
    let mut w = World::new();
    let a = w.a;
    let ipc = &mut w.system.ipc;
    for disposition in [Disposition::Ignore, Disposition::Handler(HANDLER)] {
        let action = SignalAction {
            disposition,
            ..SignalAction::DEFAULT
        };
        assert_eq!(
            ipc.signal_action(a, Signal::SIGKILL, Some(action)),
            Err(Error::InvalidArgument)
        );
    }
    assert_eq!(
        ipc.signal_action(a, Signal::SIGKILL, None),
        Ok(SignalAction::DEFAULT)
    );
    ipc.signal_mask(a, MaskHow::Set, SignalSet::ALL).unwrap();
    let mask = ipc
        .signal_mask(a, MaskHow::Block, SignalSet::EMPTY)
        .unwrap();
    assert!(!mask.contains(Signal::SIGKILL));
    assert!(mask.contains(Signal::SIGTERM));
    // Blocked everything: SIGTERM waits, SIGKILL does not.
    assert_eq!(w.send(Signal::SIGTERM).0, Posted::Blocked);
    assert_eq!(w.send(Signal::SIGKILL).0, Posted::Deliverable);
    assert_eq!(
        w.system.ipc.signal_take(a),
        Ok(Some(Delivery::Terminate(Signal::SIGKILL)))
    );
    // An action's mask never holds SIGKILL either.
    let mut action = handler(SignalFlags::empty());
    action.mask = SignalSet::ALL;
    w.system
        .ipc
        .signal_action(a, Signal::SIGUSR1, Some(action))
        .unwrap();
    let stored = w
        .system
        .ipc
        .signal_action(a, Signal::SIGUSR1, None)
        .unwrap();
    assert!(!stored.mask.contains(Signal::SIGKILL));
}

#[test]
fn masks_block_unblock_and_set() {
    let mut w = World::new();
    let ipc = &mut w.system.ipc;
    let int = SignalSet::of(Signal::SIGINT);
    let both = int.with(Signal::SIGHUP);
    assert_eq!(
        ipc.signal_mask(w.a, MaskHow::Block, both),
        Ok(SignalSet::EMPTY)
    );
    assert_eq!(ipc.signal_mask(w.a, MaskHow::Unblock, int), Ok(both));
    assert_eq!(
        ipc.signal_mask(w.a, MaskHow::Set, SignalSet::EMPTY),
        Ok(SignalSet::of(Signal::SIGHUP))
    );
    assert_eq!(
        ipc.signal_mask(w.a, MaskHow::Block, SignalSet::EMPTY),
        Ok(SignalSet::EMPTY)
    );
}

#[test]
fn a_blocked_signal_stays_pending_until_unblocked() {
    let mut w = World::new();
    w.catch(Signal::SIGUSR1, SignalFlags::empty());
    w.system
        .ipc
        .signal_mask(w.a, MaskHow::Block, SignalSet::of(Signal::SIGUSR1))
        .unwrap();
    assert_eq!(w.send(Signal::SIGUSR1).0, Posted::Blocked);
    assert!(!w.system.ipc.signal_ready(w.a));
    assert_eq!(w.system.ipc.signal_take(w.a), Ok(None));
    assert_eq!(
        w.system.ipc.signal_pending(w.a),
        Ok(SignalSet::of(Signal::SIGUSR1))
    );
    // Posting it again while pending does not queue a second one (POSIX).
    w.send(Signal::SIGUSR1);
    w.system
        .ipc
        .signal_mask(w.a, MaskHow::Unblock, SignalSet::of(Signal::SIGUSR1))
        .unwrap();
    assert!(w.system.ipc.signal_ready(w.a));
    assert!(matches!(
        w.system.ipc.signal_take(w.a),
        Ok(Some(Delivery::Handler {
            signal: Signal::SIGUSR1,
            ..
        }))
    ));
    w.system.ipc.signal_return(w.a, SignalSet::EMPTY).unwrap();
    assert_eq!(w.system.ipc.signal_take(w.a), Ok(None));
}

#[test]
fn ignored_signals_are_discarded_even_when_pending() {
    let mut w = World::new();
    // SIGCHLD is ignored by default.
    assert_eq!(w.send(Signal::SIGCHLD).0, Posted::Ignored);
    assert_eq!(w.system.ipc.signal_pending(w.a), Ok(SignalSet::EMPTY));
    let ignore = SignalAction {
        disposition: Disposition::Ignore,
        ..SignalAction::DEFAULT
    };
    w.system
        .ipc
        .signal_action(w.a, Signal::SIGTERM, Some(ignore))
        .unwrap();
    assert_eq!(w.send(Signal::SIGTERM).0, Posted::Ignored);
    // Pending and blocked, then ignored: gone.
    w.system
        .ipc
        .signal_mask(w.a, MaskHow::Block, SignalSet::of(Signal::SIGHUP))
        .unwrap();
    assert_eq!(w.send(Signal::SIGHUP).0, Posted::Blocked);
    w.system
        .ipc
        .signal_action(w.a, Signal::SIGHUP, Some(ignore))
        .unwrap();
    assert_eq!(w.system.ipc.signal_pending(w.a), Ok(SignalSet::EMPTY));
}

#[test]
fn default_actions_terminate_except_sigchld() {
    let mut w = World::new();
    for signal in [
        Signal::SIGHUP,
        Signal::SIGINT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGPIPE,
        Signal::SIGALRM,
        Signal::SIGTERM,
    ] {
        assert_eq!(signal.default_action(), DefaultAction::Terminate);
        assert_eq!(w.send(signal).0, Posted::Deliverable);
        assert_eq!(
            w.system.ipc.signal_take(w.a),
            Ok(Some(Delivery::Terminate(signal)))
        );
    }
    assert_eq!(Signal::SIGCHLD.default_action(), DefaultAction::Ignore);
    for (number, signal) in [
        (1, Signal::SIGHUP),
        (2, Signal::SIGINT),
        (9, Signal::SIGKILL),
        (10, Signal::SIGUSR1),
        (12, Signal::SIGUSR2),
        (13, Signal::SIGPIPE),
        (14, Signal::SIGALRM),
        (15, Signal::SIGTERM),
        (17, Signal::SIGCHLD),
    ] {
        assert_eq!(Signal::new(number), Ok(signal));
        assert_eq!(signal.number() as u64, number);
    }
}

#[test]
fn delivery_order_handler_masks_nodefer_and_resethand() {
    let mut w = World::new();
    let mut usr1 = handler(SignalFlags::empty());
    usr1.mask = SignalSet::of(Signal::SIGUSR2);
    w.system
        .ipc
        .signal_action(w.a, Signal::SIGUSR1, Some(usr1))
        .unwrap();
    w.catch(
        Signal::SIGUSR2,
        SignalFlags::NODEFER | SignalFlags::RESETHAND,
    );
    w.system
        .ipc
        .signal_mask(w.a, MaskHow::Set, SignalSet::of(Signal::SIGHUP))
        .unwrap();
    w.send(Signal::SIGUSR2);
    w.send(Signal::SIGUSR1);
    // Lowest number first: SIGUSR1 (10), with SIGUSR1 and its mask blocked on top of
    // the old mask, which the frame saves.
    let Ok(Some(Delivery::Handler {
        signal, saved_mask, ..
    })) = w.system.ipc.signal_take(w.a)
    else {
        panic!("a handler");
    };
    assert_eq!(signal, Signal::SIGUSR1);
    assert_eq!(saved_mask, SignalSet::of(Signal::SIGHUP));
    let inside = w
        .system
        .ipc
        .signal_mask(w.a, MaskHow::Block, SignalSet::EMPTY)
        .unwrap();
    assert_eq!(
        inside,
        SignalSet::of(Signal::SIGHUP)
            .with(Signal::SIGUSR1)
            .with(Signal::SIGUSR2)
    );
    // SIGUSR2 is blocked by SIGUSR1's mask: it waits for the handler to return.
    assert_eq!(w.system.ipc.signal_take(w.a), Ok(None));
    w.system.ipc.signal_return(w.a, saved_mask).unwrap();
    let Ok(Some(Delivery::Handler {
        signal, saved_mask, ..
    })) = w.system.ipc.signal_take(w.a)
    else {
        panic!("the second handler");
    };
    assert_eq!(signal, Signal::SIGUSR2);
    // NODEFER: SIGUSR2 itself is not blocked in its handler; RESETHAND: back to default.
    let inside = w
        .system
        .ipc
        .signal_mask(w.a, MaskHow::Block, SignalSet::EMPTY)
        .unwrap();
    assert!(!inside.contains(Signal::SIGUSR2));
    assert_eq!(
        w.system.ipc.signal_action(w.a, Signal::SIGUSR2, None),
        Ok(SignalAction::DEFAULT)
    );
    w.system.ipc.signal_return(w.a, saved_mask).unwrap();
    // SIGKILL goes before any lower-numbered signal.
    w.send(Signal::SIGHUP);
    w.system
        .ipc
        .signal_mask(w.a, MaskHow::Set, SignalSet::EMPTY)
        .unwrap();
    w.send(Signal::SIGKILL);
    assert_eq!(
        w.system.ipc.signal_take(w.a),
        Ok(Some(Delivery::Terminate(Signal::SIGKILL)))
    );
}

// ------------------------------------------------------------------ the capability

#[test]
fn sending_needs_a_process_handle_with_the_signal_right() {
    let mut w = World::new();
    let ipc = &mut w.system.ipc;
    let host = &mut w.system.machine;
    // No right: refused.
    let weak = ipc
        .process_handle(w.b, w.a, Rights::TRANSFER | Rights::DUPLICATE)
        .unwrap();
    assert_eq!(
        ipc.signal_send(w.b, weak, Signal::SIGTERM, host),
        Err(Error::PermissionDenied)
    );
    assert_eq!(
        ipc.handle_info(w.b, weak).unwrap().kind,
        ObjectKind::Process
    );
    // Rights only shrink.
    assert_eq!(
        ipc.handle_duplicate(w.b, weak, Rights::SIGNAL),
        Err(Error::PermissionDenied)
    );
    // Another kind of handle: refused.
    let semaphore = ipc.semaphore_create(w.b, 0).unwrap();
    assert_eq!(
        ipc.signal_send(w.b, semaphore, Signal::SIGTERM, host),
        Err(Error::WrongObjectKind)
    );
    // `a` has no handle to `b` at all.
    assert_eq!(
        ipc.signal_send(w.a, w.to_a, Signal::SIGTERM, host),
        Err(Error::BadHandle)
    );
    // It travels through a mailbox like any handle, and works at the other end.
    let c = w.system.spawn();
    let ipc = &mut w.system.ipc;
    let host = &mut w.system.machine;
    let strong = ipc
        .process_handle(w.b, w.a, Rights::SIGNAL | Rights::TRANSFER)
        .unwrap();
    let mailbox = ipc.mailbox_create(c).unwrap();
    let send = ipc.handle_grant(c, mailbox, w.b, Rights::WRITE).unwrap();
    let empty = host.slice(PRIVATE_BASE, 0);
    let sent = ipc.mailbox_send(w.b, send, empty, &[strong], Blocking::NonBlocking, host);
    assert_eq!(sent, Ok(Outcome::Done(())));
    let got = ipc
        .mailbox_receive(
            c,
            mailbox,
            host.slice(PRIVATE_BASE, 16),
            Blocking::NonBlocking,
            host,
        )
        .unwrap()
        .done()
        .unwrap();
    let theirs = got.handles[0];
    assert_eq!(
        ipc.signal_send(c, theirs, Signal::SIGTERM, host),
        Ok(Posted::Deliverable)
    );
    // The target exits: the handle is a dead end.
    let a = w.a;
    w.system.exit(a);
    let ipc = &mut w.system.ipc;
    let host = &mut w.system.machine;
    assert_eq!(
        ipc.signal_send(c, theirs, Signal::SIGTERM, host),
        Err(Error::NoSuchProcess)
    );
    // A new process in the same slot is not reachable through it.
    let again = w.system.spawn();
    assert_eq!(again.slot(), a.slot());
    assert_eq!(
        w.system
            .ipc
            .signal_send(c, theirs, Signal::SIGTERM, &mut w.system.machine),
        Err(Error::NoSuchProcess)
    );
    assert_eq!(w.system.ipc.signal_pending(again), Ok(SignalSet::EMPTY));
}

// ------------------------------------------------------------------ the interruption table

/// A blocking call `a` parks in, with the check that nothing was taken or delivered.
struct Row {
    name: &'static str,
    /// Parks `a`; returns what `check` needs.
    park: fn(&mut World) -> Vec<Handle>,
    /// After the interruption: nothing lost (the data, message or unit is still there
    /// for whoever comes next, or was never sent).
    check: fn(&mut World, &[Handle]),
}

fn park_pipe_read(w: &mut World) -> Vec<Handle> {
    let (read, write) = w.system.ipc.pipe_create(w.a).unwrap();
    let into = w.slice(0, 16);
    let outcome = w
        .system
        .ipc
        .pipe_read(w.a, read, into, Blocking::Forever, &mut w.system.machine)
        .unwrap();
    assert!(outcome.is_blocked());
    vec![read, write]
}

fn check_pipe_read(w: &mut World, handles: &[Handle]) {
    // Data written after the interruption is all there for the next read.
    w.system
        .machine
        .write(w.a, PRIVATE_BASE + 100, b"later")
        .unwrap();
    let from = w.slice(100, 5);
    let ipc = &mut w.system.ipc;
    let host = &mut w.system.machine;
    assert_eq!(
        ipc.pipe_write(w.a, handles[1], from, Blocking::NonBlocking, host),
        Ok(Outcome::Done(5))
    );
    let into = host.slice(PRIVATE_BASE + 200, 16);
    assert_eq!(
        ipc.pipe_read(w.a, handles[0], into, Blocking::NonBlocking, host),
        Ok(Outcome::Done(5))
    );
}

fn park_pipe_write_full(w: &mut World) -> Vec<Handle> {
    let (read, write) = w.system.ipc.pipe_create(w.a).unwrap();
    let reader = w
        .system
        .ipc
        .handle_grant(w.a, read, w.b, Rights::READ)
        .unwrap();
    w.system
        .ipc
        .handle_close(w.a, read, &mut w.system.machine)
        .unwrap();
    // Fill it without waiting, then park a write that moves nothing.
    let fill = w.slice(0, 4096);
    let ipc = &mut w.system.ipc;
    let host = &mut w.system.machine;
    assert_eq!(
        ipc.pipe_write(w.a, write, fill, Blocking::NonBlocking, host),
        Ok(Outcome::Done(4096))
    );
    let more = host.slice(PRIVATE_BASE, 10);
    assert!(
        ipc.pipe_write(w.a, write, more, Blocking::Forever, host)
            .unwrap()
            .is_blocked()
    );
    vec![reader, write]
}

fn check_pipe_write_full(w: &mut World, handles: &[Handle]) {
    // Exactly the 4096 bytes that went in before; the parked 10 never did.
    let into = w.slice(8192, 8192);
    let ipc = &mut w.system.ipc;
    let host = &mut w.system.machine;
    assert_eq!(
        ipc.pipe_read(w.b, handles[0], into, Blocking::NonBlocking, host),
        Ok(Outcome::Done(4096))
    );
    assert_eq!(
        ipc.pipe_read(w.b, handles[0], into, Blocking::NonBlocking, host),
        Err(Error::WouldBlock)
    );
}

fn park_queue_send(w: &mut World) -> Vec<Handle> {
    let ipc = &mut w.system.ipc;
    let host = &mut w.system.machine;
    let queue = ipc.mqueue_create(w.a, b"/q", 1, 16).unwrap();
    host.write(w.a, PRIVATE_BASE, b"first").unwrap();
    host.write(w.a, PRIVATE_BASE + 16, b"second").unwrap();
    let first = host.slice(PRIVATE_BASE, 5);
    let second = host.slice(PRIVATE_BASE + 16, 6);
    assert_eq!(
        ipc.mqueue_send(w.a, queue, first, 0, Blocking::Forever, host),
        Ok(Outcome::Done(()))
    );
    assert!(
        ipc.mqueue_send(w.a, queue, second, 0, Blocking::Forever, host)
            .unwrap()
            .is_blocked()
    );
    vec![queue]
}

fn check_queue_send(w: &mut World, handles: &[Handle]) {
    // Only the first message is queued: the interrupted one was not taken.
    let into = w.slice(1024, 16);
    let ipc = &mut w.system.ipc;
    let host = &mut w.system.machine;
    let got = ipc
        .mqueue_receive(w.a, handles[0], into, Blocking::NonBlocking, host)
        .unwrap()
        .done()
        .unwrap();
    assert_eq!(
        host.read(w.a, PRIVATE_BASE + 1024, got.length).unwrap(),
        b"first"
    );
    assert_eq!(
        ipc.mqueue_receive(w.a, handles[0], into, Blocking::NonBlocking, host),
        Err(Error::WouldBlock)
    );
    ipc.mqueue_unlink(w.a, b"/q").unwrap();
}

fn park_queue_receive(w: &mut World) -> Vec<Handle> {
    let ipc = &mut w.system.ipc;
    let host = &mut w.system.machine;
    let queue = ipc.mqueue_create(w.a, b"/r", 2, 16).unwrap();
    let into = host.slice(PRIVATE_BASE, 16);
    assert!(
        ipc.mqueue_receive(w.a, queue, into, Blocking::Forever, host)
            .unwrap()
            .is_blocked()
    );
    vec![queue]
}

fn check_queue_receive(w: &mut World, handles: &[Handle]) {
    // A message sent afterwards is queued whole for the next receive.
    w.system
        .machine
        .write(w.a, PRIVATE_BASE + 64, b"kept")
        .unwrap();
    let message = w.slice(64, 4);
    let ipc = &mut w.system.ipc;
    let host = &mut w.system.machine;
    let sent = ipc.mqueue_send(w.a, handles[0], message, 1, Blocking::NonBlocking, host);
    assert_eq!(sent, Ok(Outcome::Done(())));
    let into = host.slice(PRIVATE_BASE + 128, 16);
    let got = ipc
        .mqueue_receive(w.a, handles[0], into, Blocking::NonBlocking, host)
        .unwrap()
        .done()
        .unwrap();
    assert_eq!((got.length, got.priority), (4, 1));
    ipc.mqueue_unlink(w.a, b"/r").unwrap();
}

fn park_mailbox_send(w: &mut World) -> Vec<Handle> {
    let ipc = &mut w.system.ipc;
    let host = &mut w.system.machine;
    let mailbox = ipc.mailbox_create(w.b).unwrap();
    let send = ipc.handle_grant(w.b, mailbox, w.a, Rights::WRITE).unwrap();
    let message = host.slice(PRIVATE_BASE, 8);
    // Fill the sender's share of the mailbox, then park one more.
    while let Outcome::Done(()) = ipc
        .mailbox_send(w.a, send, message, &[], Blocking::Forever, host)
        .unwrap()
    {}
    vec![mailbox, send]
}

fn queued(w: &World) -> usize {
    w.system.ipc.usage().queued_messages
}

fn check_mailbox_send(w: &mut World, handles: &[Handle]) {
    // The parked message never went in: exactly the sender's share is queued.
    let before = queued(w);
    let into = w.slice(512, 64);
    let ipc = &mut w.system.ipc;
    let host = &mut w.system.machine;
    let mut received = 0;
    while let Ok(Outcome::Done(_)) =
        ipc.mailbox_receive(w.b, handles[0], into, Blocking::NonBlocking, host)
    {
        received += 1;
    }
    assert_eq!(received, before);
}

fn park_mailbox_receive(w: &mut World) -> Vec<Handle> {
    let ipc = &mut w.system.ipc;
    let host = &mut w.system.machine;
    let mailbox = ipc.mailbox_create(w.a).unwrap();
    let send = ipc.handle_grant(w.a, mailbox, w.b, Rights::WRITE).unwrap();
    let into = host.slice(PRIVATE_BASE, 64);
    assert!(
        ipc.mailbox_receive(w.a, mailbox, into, Blocking::Forever, host)
            .unwrap()
            .is_blocked()
    );
    vec![mailbox, send]
}

fn check_mailbox_receive(w: &mut World, handles: &[Handle]) {
    // A message sent now is not handed to the interrupted receive: it is buffered, and
    // the next receive gets it.
    let message = w.slice(300, 8);
    let ipc = &mut w.system.ipc;
    let host = &mut w.system.machine;
    let sent = ipc.mailbox_send(w.b, handles[1], message, &[], Blocking::NonBlocking, host);
    assert_eq!(sent, Ok(Outcome::Done(())));
    assert!(host.take_wakes().is_empty());
    assert_eq!(ipc.usage().queued_messages, 1);
    let into = host.slice(PRIVATE_BASE, 64);
    assert_eq!(
        ipc.mailbox_receive(w.a, handles[0], into, Blocking::NonBlocking, host)
            .unwrap()
            .done()
            .map(|r| r.length),
        Some(8)
    );
}

fn park_mailbox_call_full(w: &mut World) -> Vec<Handle> {
    let handles = park_mailbox_send(w);
    let ipc = &mut w.system.ipc;
    let host = &mut w.system.machine;
    // The earlier sends stay; a call now has no room and waits to send.
    let message = host.slice(PRIVATE_BASE, 8);
    let reply = host.slice(PRIVATE_BASE + 64, 64);
    ipc.cancel_wait(w.a).unwrap();
    assert!(
        ipc.mailbox_call(
            w.a,
            handles[1],
            message,
            &[],
            reply,
            Blocking::Forever,
            host
        )
        .unwrap()
        .is_blocked()
    );
    assert!(!ipc.is_waiting(w.b));
    handles
}

fn check_mailbox_call_full(w: &mut World, handles: &[Handle]) {
    // No call message was queued: every buffered message is a plain send.
    let into = w.slice(512, 64);
    let ipc = &mut w.system.ipc;
    let host = &mut w.system.machine;
    while let Ok(Outcome::Done(received)) =
        ipc.mailbox_receive(w.b, handles[0], into, Blocking::NonBlocking, host)
    {
        assert_eq!(received.reply, None);
    }
}

fn park_semaphore(w: &mut World) -> Vec<Handle> {
    let ipc = &mut w.system.ipc;
    let host = &mut w.system.machine;
    let semaphore = ipc.semaphore_create(w.a, 0).unwrap();
    assert!(
        ipc.semaphore_wait(w.a, semaphore, Blocking::Forever, host)
            .unwrap()
            .is_blocked()
    );
    vec![semaphore]
}

fn check_semaphore(w: &mut World, handles: &[Handle]) {
    // A post afterwards is kept for the next wait, not lost on the interrupted one.
    let ipc = &mut w.system.ipc;
    let host = &mut w.system.machine;
    ipc.semaphore_post(w.a, handles[0], host).unwrap();
    assert!(host.take_wakes().is_empty());
    assert_eq!(
        ipc.semaphore_wait(w.a, handles[0], Blocking::NonBlocking, host),
        Ok(Outcome::Done(()))
    );
}

fn park_notification(w: &mut World) -> Vec<Handle> {
    let ipc = &mut w.system.ipc;
    let host = &mut w.system.machine;
    let notification = ipc.notification_create(w.a).unwrap();
    assert!(
        ipc.notification_wait(w.a, notification, Blocking::Forever, host)
            .unwrap()
            .is_blocked()
    );
    vec![notification]
}

fn check_notification(w: &mut World, handles: &[Handle]) {
    let ipc = &mut w.system.ipc;
    let host = &mut w.system.machine;
    ipc.notification_signal(w.a, handles[0], 0b101, host)
        .unwrap();
    assert!(host.take_wakes().is_empty());
    assert_eq!(
        ipc.notification_wait(w.a, handles[0], Blocking::NonBlocking, host),
        Ok(Outcome::Done(0b101))
    );
}

fn park_fifo_open(w: &mut World) -> Vec<Handle> {
    let ipc = &mut w.system.ipc;
    let host = &mut w.system.machine;
    ipc.fifo_create(w.a, b"/fifo").unwrap();
    assert!(
        ipc.fifo_open(w.a, b"/fifo", OpenMode::Read, Blocking::Forever, host)
            .unwrap()
            .is_blocked()
    );
    vec![]
}

fn check_fifo_open(w: &mut World, _: &[Handle]) {
    // The interrupted open holds no end: a writer's non-blocking open finds no reader.
    let ipc = &mut w.system.ipc;
    let host = &mut w.system.machine;
    assert_eq!(
        ipc.fifo_open(w.b, b"/fifo", OpenMode::Write, Blocking::NonBlocking, host),
        Err(Error::NoReader)
    );
    assert_eq!(ipc.usage().handles, 1); // b's process handle only
    ipc.fifo_unlink(w.a, b"/fifo", host).unwrap();
}

const ROWS: [Row; 9] = [
    Row {
        name: "pipe read",
        park: park_pipe_read,
        check: check_pipe_read,
    },
    Row {
        name: "pipe write, nothing moved",
        park: park_pipe_write_full,
        check: check_pipe_write_full,
    },
    Row {
        name: "queue send",
        park: park_queue_send,
        check: check_queue_send,
    },
    Row {
        name: "queue receive",
        park: park_queue_receive,
        check: check_queue_receive,
    },
    Row {
        name: "mailbox send",
        park: park_mailbox_send,
        check: check_mailbox_send,
    },
    Row {
        name: "mailbox receive",
        park: park_mailbox_receive,
        check: check_mailbox_receive,
    },
    Row {
        name: "mailbox call, waiting to send",
        park: park_mailbox_call_full,
        check: check_mailbox_call_full,
    },
    Row {
        name: "semaphore wait",
        park: park_semaphore,
        check: check_semaphore,
    },
    Row {
        name: "notification wait",
        park: park_notification,
        check: check_notification,
    },
];

/// FIFO open sits in the table too; kept apart because its `check` needs the name.
const FIFO_ROW: Row = Row {
    name: "fifo open",
    park: park_fifo_open,
    check: check_fifo_open,
};

fn interrupt(row: &Row, flags: SignalFlags) -> Wakeup {
    let mut w = World::new();
    w.catch(Signal::SIGUSR1, flags);
    let handles = (row.park)(&mut w);
    assert!(w.system.ipc.is_waiting(w.a), "{}: parked", row.name);
    w.system.machine.take_wakes();
    let (posted, wakes) = w.send(Signal::SIGUSR1);
    assert_eq!(posted, Posted::Deliverable, "{}", row.name);
    assert_eq!(wakes.len(), 1, "{}: one wake-up: {wakes:?}", row.name);
    assert_eq!(wakes[0].0, w.a, "{}", row.name);
    assert!(!w.system.ipc.is_waiting(w.a), "{}: wait ended", row.name);
    assert!(
        matches!(
            w.system.ipc.signal_take(w.a),
            Ok(Some(Delivery::Handler {
                signal: Signal::SIGUSR1,
                ..
            }))
        ),
        "{}: the handler runs",
        row.name
    );
    w.system.ipc.signal_return(w.a, SignalSet::EMPTY).unwrap();
    (row.check)(&mut w, &handles);
    w.leak_free_after_exit();
    wakes[0].1.clone()
}

#[test]
fn every_blocking_call_before_progress_is_interrupted() {
    for row in ROWS.iter().chain([&FIFO_ROW]) {
        assert_eq!(
            interrupt(row, SignalFlags::empty()),
            Wakeup::Failed(Error::Interrupted),
            "{}",
            row.name
        );
    }
}

#[test]
fn every_blocking_call_before_progress_restarts_under_sa_restart() {
    for row in ROWS.iter().chain([&FIFO_ROW]) {
        assert_eq!(
            interrupt(row, SignalFlags::RESTART),
            Wakeup::Retry,
            "{}",
            row.name
        );
    }
}

#[test]
fn a_pipe_write_interrupted_after_progress_returns_its_count() {
    for flags in [SignalFlags::empty(), SignalFlags::RESTART] {
        let mut w = World::new();
        w.catch(Signal::SIGUSR1, flags);
        let (read, write) = w.system.ipc.pipe_create(w.a).unwrap();
        let reader = w
            .system
            .ipc
            .handle_grant(w.a, read, w.b, Rights::READ)
            .unwrap();
        w.system
            .ipc
            .handle_close(w.a, read, &mut w.system.machine)
            .unwrap();
        let data: Vec<u8> = (0..6000u32).map(|i| (i % 251) as u8).collect();
        w.system.machine.write(w.a, PRIVATE_BASE, &data).unwrap();
        let whole = w.slice(0, 6000);
        assert!(
            w.system
                .ipc
                .pipe_write(w.a, write, whole, Blocking::Forever, &mut w.system.machine)
                .unwrap()
                .is_blocked()
        );
        let (_, wakes) = w.send(Signal::SIGUSR1);
        assert_eq!(
            wakes,
            vec![(w.a, Wakeup::Completed(Completion::Written(4096)))]
        );
        // Exactly those 4096 bytes, in order, and nothing more arrives later.
        let into = w.slice(16384, 8192);
        let got = w
            .system
            .ipc
            .pipe_read(
                w.b,
                reader,
                into,
                Blocking::NonBlocking,
                &mut w.system.machine,
            )
            .unwrap();
        assert_eq!(got, Outcome::Done(4096));
        assert_eq!(
            w.system
                .machine
                .read(w.b, PRIVATE_BASE + 16384, 4096)
                .unwrap(),
            data[..4096]
        );
        assert_eq!(
            w.system.ipc.pipe_read(
                w.b,
                reader,
                into,
                Blocking::NonBlocking,
                &mut w.system.machine
            ),
            Err(Error::WouldBlock)
        );
        w.leak_free_after_exit();
    }
}

#[test]
fn a_call_interrupted_after_the_server_took_it_is_never_restarted_and_the_reply_fails() {
    for flags in [SignalFlags::empty(), SignalFlags::RESTART] {
        let mut w = World::new();
        w.catch(Signal::SIGUSR1, flags);
        let ipc = &mut w.system.ipc;
        let host = &mut w.system.machine;
        let mailbox = ipc.mailbox_create(w.b).unwrap();
        let send = ipc.handle_grant(w.b, mailbox, w.a, Rights::WRITE).unwrap();
        let message = host.slice(PRIVATE_BASE, 8);
        let reply_buffer = host.slice(PRIVATE_BASE + 64, 64);
        assert!(
            ipc.mailbox_call(
                w.a,
                send,
                message,
                &[],
                reply_buffer,
                Blocking::Forever,
                host
            )
            .unwrap()
            .is_blocked()
        );
        let into = host.slice(PRIVATE_BASE + 512, 64);
        let taken = ipc
            .mailbox_receive(w.b, mailbox, into, Blocking::NonBlocking, host)
            .unwrap()
            .done()
            .unwrap();
        let reply = taken.reply.expect("a call");
        let (_, wakes) = w.send(Signal::SIGUSR1);
        assert_eq!(wakes, vec![(w.a, Wakeup::Failed(Error::Interrupted))]);
        // The server answers, with a handle: PeerClosed, and the handle stays its own.
        let ipc = &mut w.system.ipc;
        let host = &mut w.system.machine;
        let gift = ipc.semaphore_create(w.b, 0).unwrap();
        let answer = host.slice(PRIVATE_BASE + 512, 4);
        assert_eq!(
            ipc.mailbox_reply(w.b, reply, answer, &[gift], host),
            Err(Error::PeerClosed)
        );
        assert!(ipc.handle_info(w.b, gift).is_ok());
        assert_eq!(ipc.handle_info(w.b, reply), Err(Error::StaleHandle));
        assert!(host.take_wakes().is_empty());
        w.leak_free_after_exit();
    }
}

#[test]
fn a_call_whose_message_is_buffered_is_delivered_once_after_the_interruption() {
    let mut w = World::new();
    w.catch(Signal::SIGUSR1, SignalFlags::RESTART);
    let ipc = &mut w.system.ipc;
    let host = &mut w.system.machine;
    let mailbox = ipc.mailbox_create(w.b).unwrap();
    let send = ipc.handle_grant(w.b, mailbox, w.a, Rights::WRITE).unwrap();
    let message = host.slice(PRIVATE_BASE, 8);
    let reply_buffer = host.slice(PRIVATE_BASE + 64, 64);
    assert!(
        ipc.mailbox_call(
            w.a,
            send,
            message,
            &[],
            reply_buffer,
            Blocking::Forever,
            host
        )
        .unwrap()
        .is_blocked()
    );
    let (_, wakes) = w.send(Signal::SIGUSR1);
    assert_eq!(wakes, vec![(w.a, Wakeup::Failed(Error::Interrupted))]);
    let ipc = &mut w.system.ipc;
    let host = &mut w.system.machine;
    let into = host.slice(PRIVATE_BASE + 512, 64);
    let taken = ipc
        .mailbox_receive(w.b, mailbox, into, Blocking::NonBlocking, host)
        .unwrap()
        .done()
        .unwrap();
    assert_eq!(
        ipc.mailbox_receive(w.b, mailbox, into, Blocking::NonBlocking, host),
        Err(Error::WouldBlock)
    );
    let answer = host.slice(PRIVATE_BASE + 512, 4);
    assert_eq!(
        ipc.mailbox_reply(w.b, taken.reply.unwrap(), answer, &[], host),
        Err(Error::PeerClosed)
    );
    w.leak_free_after_exit();
}

#[test]
fn blocked_or_ignored_signals_interrupt_nothing() {
    let mut w = World::new();
    w.catch(Signal::SIGUSR1, SignalFlags::empty());
    w.system
        .ipc
        .signal_mask(w.a, MaskHow::Block, SignalSet::of(Signal::SIGUSR1))
        .unwrap();
    let handles = park_semaphore(&mut w);
    assert_eq!(w.send(Signal::SIGUSR1), (Posted::Blocked, vec![]));
    assert_eq!(w.send(Signal::SIGCHLD), (Posted::Ignored, vec![]));
    assert!(w.system.ipc.is_waiting(w.a));
    // The semaphore still wakes it normally.
    assert!(
        w.system
            .ipc
            .semaphore_post(w.b, handles[0], &mut w.system.machine)
            .is_err()
    ); // b holds no handle to it
    let granted = w
        .system
        .ipc
        .handle_grant(w.a, handles[0], w.b, Rights::SIGNAL)
        .unwrap();
    w.system
        .ipc
        .semaphore_post(w.b, granted, &mut w.system.machine)
        .unwrap();
    assert_eq!(
        w.system.machine.take_wakes(),
        vec![(w.a, Wakeup::Completed(Completion::Acquired))]
    );
    w.leak_free_after_exit();
}

#[test]
fn a_terminating_signal_ends_the_wait_and_sigkill_frees_everything() {
    let mut w = World::new();
    let handles = park_pipe_read(&mut w);
    let _ = handles;
    // A mapping and a queued message, to be sure exit frees them too.
    let region = w
        .system
        .ipc
        .region_create(w.a, 2, &mut w.system.machine)
        .unwrap();
    w.system
        .ipc
        .region_map(w.a, region, None, Access::ReadWrite, &mut w.system.machine)
        .unwrap();
    let (posted, wakes) = w.send(Signal::SIGKILL);
    assert_eq!(posted, Posted::Deliverable);
    assert_eq!(wakes, vec![(w.a, Wakeup::Failed(Error::Interrupted))]);
    assert_eq!(
        w.system.ipc.signal_take(w.a),
        Ok(Some(Delivery::Terminate(Signal::SIGKILL)))
    );
    let a = w.a;
    w.system.exit(a);
    assert_eq!(w.system.ipc.usage().regions, 0);
    assert_eq!(w.system.ipc.usage().waiters, 0);
    w.system.machine.take_wakes();
    let b = w.b;
    w.system.exit(b);
    assert_eq!(w.system.ipc.usage(), Usage::default());
}

// ------------------------------------------------------------------ suspend, alarms, SIGPIPE

#[test]
fn suspend_waits_with_a_temporary_mask_and_the_frame_saves_the_old_one() {
    let mut w = World::new();
    w.catch(Signal::SIGUSR1, SignalFlags::RESTART);
    let old = SignalSet::of(Signal::SIGUSR1).with(Signal::SIGHUP);
    w.system.ipc.signal_mask(w.a, MaskHow::Set, old).unwrap();
    // Suspend letting SIGUSR1 through (even under RESTART it is not restarted).
    let temporary = SignalSet::of(Signal::SIGHUP);
    assert_eq!(
        w.system.ipc.signal_suspend(w.a, temporary),
        Ok(Outcome::Blocked)
    );
    assert_eq!(w.send(Signal::SIGHUP), (Posted::Blocked, vec![]));
    let (_, wakes) = w.send(Signal::SIGUSR1);
    assert_eq!(wakes, vec![(w.a, Wakeup::Failed(Error::Interrupted))]);
    let Ok(Some(Delivery::Handler { saved_mask, .. })) = w.system.ipc.signal_take(w.a) else {
        panic!("the handler");
    };
    assert_eq!(saved_mask, old);
    w.system.ipc.signal_return(w.a, saved_mask).unwrap();
    assert_eq!(
        w.system
            .ipc
            .signal_mask(w.a, MaskHow::Block, SignalSet::EMPTY),
        Ok(old)
    );
    // With a deliverable signal already pending: Interrupted at once.
    w.system
        .ipc
        .signal_mask(w.a, MaskHow::Unblock, SignalSet::of(Signal::SIGUSR1))
        .unwrap();
    w.system
        .ipc
        .signal_mask(w.a, MaskHow::Block, SignalSet::of(Signal::SIGUSR1))
        .unwrap();
    w.send(Signal::SIGUSR1);
    assert_eq!(
        w.system
            .ipc
            .signal_suspend(w.a, SignalSet::of(Signal::SIGHUP)),
        Err(Error::Interrupted)
    );
    assert!(w.system.ipc.signal_ready(w.a));
    // Nothing to run a handler for after all: the mask comes back.
    w.system
        .ipc
        .signal_action(
            w.a,
            Signal::SIGUSR1,
            Some(SignalAction {
                disposition: Disposition::Ignore,
                ..SignalAction::DEFAULT
            }),
        )
        .unwrap();
    assert_eq!(w.system.ipc.signal_take(w.a), Ok(None));
    w.system.ipc.signal_suspend_end(w.a).unwrap();
    assert_eq!(
        w.system
            .ipc
            .signal_mask(w.a, MaskHow::Block, SignalSet::EMPTY),
        Ok(old)
    );
    w.leak_free_after_exit();
}

#[test]
fn alarms_post_sigalrm_when_due_and_count_as_deadlines() {
    let mut w = World::new();
    w.catch(Signal::SIGALRM, SignalFlags::empty());
    assert_eq!(w.system.ipc.signal_alarm(w.a, Some(50)), Ok(None));
    assert_eq!(w.system.ipc.signal_alarm(w.a, Some(40)), Ok(Some(50)));
    assert_eq!(w.system.ipc.next_deadline(), Some(40));
    let handles = park_semaphore(&mut w);
    let _ = handles;
    assert_eq!(w.system.ipc.expire(39, &mut w.system.machine), 0);
    assert!(w.system.ipc.is_waiting(w.a));
    assert_eq!(w.system.ipc.expire(40, &mut w.system.machine), 1);
    assert_eq!(
        w.system.machine.take_wakes(),
        vec![(w.a, Wakeup::Failed(Error::Interrupted))]
    );
    assert!(matches!(
        w.system.ipc.signal_take(w.a),
        Ok(Some(Delivery::Handler {
            signal: Signal::SIGALRM,
            ..
        }))
    ));
    assert_eq!(w.system.ipc.next_deadline(), None);
    // Cancelled alarms never fire.
    w.system.ipc.signal_alarm(w.a, Some(60)).unwrap();
    assert_eq!(w.system.ipc.signal_alarm(w.a, None), Ok(Some(60)));
    assert_eq!(w.system.ipc.expire(100, &mut w.system.machine), 0);
    w.leak_free_after_exit();
}

#[test]
fn a_write_without_reader_raises_sigpipe_unless_ignored() {
    let mut w = World::new();
    let (read, write) = w.system.ipc.pipe_create(w.a).unwrap();
    w.system
        .ipc
        .handle_close(w.a, read, &mut w.system.machine)
        .unwrap();
    let data = w.slice(0, 8);
    assert_eq!(
        w.system
            .ipc
            .pipe_write(w.a, write, data, Blocking::Forever, &mut w.system.machine),
        Err(Error::BrokenPipe)
    );
    assert_eq!(
        w.system.ipc.signal_take(w.a),
        Ok(Some(Delivery::Terminate(Signal::SIGPIPE)))
    );
    // Ignored: only EPIPE.
    w.system
        .ipc
        .signal_action(
            w.a,
            Signal::SIGPIPE,
            Some(SignalAction {
                disposition: Disposition::Ignore,
                ..SignalAction::DEFAULT
            }),
        )
        .unwrap();
    assert_eq!(
        w.system
            .ipc
            .pipe_write(w.a, write, data, Blocking::Forever, &mut w.system.machine),
        Err(Error::BrokenPipe)
    );
    assert_eq!(w.system.ipc.signal_pending(w.a), Ok(SignalSet::EMPTY));
    w.leak_free_after_exit();
}

#[test]
fn a_parked_writer_that_moved_bytes_gets_its_count_and_sigpipe_when_the_reader_leaves() {
    let mut w = World::new();
    let (read, write) = w.system.ipc.pipe_create(w.a).unwrap();
    let reader = w
        .system
        .ipc
        .handle_grant(w.a, read, w.b, Rights::READ)
        .unwrap();
    w.system
        .ipc
        .handle_close(w.a, read, &mut w.system.machine)
        .unwrap();
    let whole = w.slice(0, 5000);
    assert!(
        w.system
            .ipc
            .pipe_write(w.a, write, whole, Blocking::Forever, &mut w.system.machine)
            .unwrap()
            .is_blocked()
    );
    w.system
        .ipc
        .handle_close(w.b, reader, &mut w.system.machine)
        .unwrap();
    assert_eq!(
        w.system.machine.take_wakes(),
        vec![(w.a, Wakeup::Completed(Completion::Written(4096)))]
    );
    assert_eq!(
        w.system.ipc.signal_pending(w.a),
        Ok(SignalSet::of(Signal::SIGPIPE))
    );
    w.leak_free_after_exit();
}

#[test]
fn exit_and_a_new_process_in_the_slot_start_from_a_clean_signal_state() {
    let mut w = World::new();
    w.catch(Signal::SIGUSR1, SignalFlags::empty());
    w.system
        .ipc
        .signal_mask(w.a, MaskHow::Block, SignalSet::of(Signal::SIGUSR2))
        .unwrap();
    w.send(Signal::SIGUSR2);
    w.system.ipc.signal_alarm(w.a, Some(10)).unwrap();
    let a = w.a;
    w.system.exit(a);
    let fresh = w.system.spawn();
    assert_eq!(fresh.slot(), a.slot());
    let ipc = &mut w.system.ipc;
    assert_eq!(ipc.signal_pending(fresh), Ok(SignalSet::EMPTY));
    assert_eq!(
        ipc.signal_action(fresh, Signal::SIGUSR1, None),
        Ok(SignalAction::DEFAULT)
    );
    assert_eq!(
        ipc.signal_mask(fresh, MaskHow::Block, SignalSet::EMPTY),
        Ok(SignalSet::EMPTY)
    );
    assert_eq!(ipc.next_deadline(), None);
    assert_eq!(ipc.signal_take(a), Err(Error::NoSuchProcess));
}
