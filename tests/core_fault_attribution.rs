//! The faulty party pays: in every two-party copy, the process whose buffer is bad gets
//! the error; the other side loses nothing and is not woken for nothing. Each test is
//! one row of the table in `docs/mechanisms.md` ("Whose fault").

mod sim;

use kipc::*;
use sim::{Machine, PRIVATE_BASE, PRIVATE_PAGES};

type FaultIpc = Ipc<4, 16, 4, 64, 64>;

/// A user address no process has mapped.
const UNMAPPED: u64 = PRIVATE_BASE + (PRIVATE_PAGES as u64 + 16) * PAGE_SIZE as u64;

struct World {
    ipc: Box<FaultIpc>,
    machine: Machine,
}

impl World {
    fn new() -> World {
        World {
            ipc: Box::new(FaultIpc::new()),
            machine: Machine::new(4 * PRIVATE_PAGES + 64),
        }
    }

    fn spawn(&mut self) -> ProcessId {
        let pid = self.ipc.process_create().unwrap();
        self.machine.give_private_memory(pid);
        pid
    }

    fn good(&self, offset: u64, length: usize) -> UserSlice {
        self.machine.slice(PRIVATE_BASE + offset, length)
    }

    fn bad(&self, length: usize) -> UserSlice {
        self.machine.slice(UNMAPPED, length)
    }

    /// A page of a region mapped read-only in `pid` (readable, not writable).
    fn read_only_page(&mut self, pid: ProcessId) -> UserSlice {
        let region = self.ipc.region_create(pid, 1, &mut self.machine).unwrap();
        let at = self
            .ipc
            .region_map(pid, region, None, Access::ReadOnly, &mut self.machine)
            .unwrap();
        self.machine.slice(at, 64)
    }

    /// A client (parked in a call) and a server holding the call's reply handle.
    fn call_in_flight(
        &mut self,
        reply_buffer: Option<UserSlice>,
    ) -> (ProcessId, ProcessId, Handle) {
        let server = self.spawn();
        let client = self.spawn();
        let mailbox = self.ipc.mailbox_create(server).unwrap();
        let send = self
            .ipc
            .handle_grant(server, mailbox, client, Rights::WRITE)
            .unwrap();
        self.machine
            .write(client, PRIVATE_BASE, b"question")
            .unwrap();
        let reply_buffer = reply_buffer.unwrap_or(self.good(0x100, 64));
        let call = self.ipc.mailbox_call(
            client,
            send,
            self.good(0, 8),
            &[],
            reply_buffer,
            Blocking::Forever,
            &mut self.machine,
        );
        assert_eq!(call, Ok(Outcome::Blocked));
        let into = self.good(0x200, 64);
        let Ok(Outcome::Done(message)) = self.ipc.mailbox_receive(
            server,
            mailbox,
            into,
            Blocking::NonBlocking,
            &mut self.machine,
        ) else {
            panic!("the server did not get the call");
        };
        self.machine.take_wakes();
        (
            client,
            server,
            message.reply.expect("a call carries a reply handle"),
        )
    }
}

#[test]
fn reply_into_an_unmapped_reply_buffer_fails_the_caller_not_the_replier() {
    let mut w = World::new();
    let bad = w.bad(64);
    let (client, server, reply) = w.call_in_flight(Some(bad));
    w.machine.write(server, PRIVATE_BASE, b"answer").unwrap();
    let payload = w.good(0, 6);
    assert_eq!(
        w.ipc
            .mailbox_reply(server, reply, payload, &[], &mut w.machine),
        Ok(())
    );
    assert_eq!(
        w.machine.take_wakes(),
        vec![(client, Wakeup::Failed(Error::BadAddress))]
    );
    assert_eq!(
        w.ipc.handle_info(server, reply).err(),
        Some(Error::StaleHandle)
    );
    assert!(!w.ipc.is_waiting(client));
    assert_eq!(
        w.ipc.ledger().global().total_bytes(),
        8 + 8,
        "only the call's two copies"
    );
}

#[test]
fn reply_into_a_read_only_reply_buffer_fails_the_caller_not_the_replier() {
    let mut w = World::new();
    let server = w.spawn();
    let client = w.spawn();
    let read_only = w.read_only_page(client);
    let mailbox = w.ipc.mailbox_create(server).unwrap();
    let send = w
        .ipc
        .handle_grant(server, mailbox, client, Rights::WRITE)
        .unwrap();
    let call = w.ipc.mailbox_call(
        client,
        send,
        w.good(0, 4),
        &[],
        read_only,
        Blocking::Forever,
        &mut w.machine,
    );
    assert_eq!(call, Ok(Outcome::Blocked));
    let Ok(Outcome::Done(message)) = w.ipc.mailbox_receive(
        server,
        mailbox,
        w.good(0x200, 64),
        Blocking::NonBlocking,
        &mut w.machine,
    ) else {
        panic!("no call");
    };
    w.machine.take_wakes();
    let reply = message.reply.unwrap();
    assert_eq!(
        w.ipc
            .mailbox_reply(server, reply, w.good(0, 4), &[], &mut w.machine),
        Ok(())
    );
    assert_eq!(
        w.machine.take_wakes(),
        vec![(client, Wakeup::Failed(Error::BadAddress))]
    );
}

#[test]
fn a_reply_from_an_unmapped_buffer_fails_the_replier_and_the_caller_keeps_waiting() {
    let mut w = World::new();
    let (client, server, reply) = w.call_in_flight(None);
    let bad = w.bad(6);
    assert_eq!(
        w.ipc.mailbox_reply(server, reply, bad, &[], &mut w.machine),
        Err(Error::BadAddress)
    );
    assert!(
        w.machine.take_wakes().is_empty(),
        "the caller was woken for nothing"
    );
    assert!(w.ipc.is_waiting(client));
    // The reply handle is kept: the replier fixes its buffer and answers.
    w.machine.write(server, PRIVATE_BASE, b"answer").unwrap();
    assert_eq!(
        w.ipc
            .mailbox_reply(server, reply, w.good(0, 6), &[], &mut w.machine),
        Ok(())
    );
    let wakes = w.machine.take_wakes();
    assert!(
        matches!(&wakes[..], [(pid, Wakeup::Completed(Completion::Received(r)))] if *pid == client && r.length == 6)
    );
    assert_eq!(
        w.machine.read(client, PRIVATE_BASE + 0x100, 6).unwrap(),
        b"answer"
    );
}

/// A receiver parked on a mailbox, and a sender with a send handle to it.
fn waiting_receiver(w: &mut World, buffer: UserSlice) -> (ProcessId, ProcessId, Handle, Handle) {
    let receiver = w.spawn();
    let sender = w.spawn();
    let mailbox = w.ipc.mailbox_create(receiver).unwrap();
    let send = w
        .ipc
        .handle_grant(receiver, mailbox, sender, Rights::WRITE | Rights::TRANSFER)
        .unwrap();
    let parked =
        w.ipc
            .mailbox_receive(receiver, mailbox, buffer, Blocking::Forever, &mut w.machine);
    assert_eq!(parked, Ok(Outcome::Blocked));
    (receiver, sender, mailbox, send)
}

#[test]
fn a_send_from_a_bad_buffer_fails_the_sender_and_wakes_nobody() {
    let mut w = World::new();
    let into = w.good(0x100, 64);
    let (receiver, sender, _, send) = waiting_receiver(&mut w, into);
    let semaphore = w.ipc.semaphore_create(sender, 0).unwrap();
    let bad = w.bad(8);
    assert_eq!(
        w.ipc.mailbox_send(
            sender,
            send,
            bad,
            &[semaphore],
            Blocking::NonBlocking,
            &mut w.machine
        ),
        Err(Error::BadAddress)
    );
    assert!(
        w.machine.take_wakes().is_empty(),
        "the receiver was woken for nothing"
    );
    assert!(w.ipc.is_waiting(receiver));
    assert!(
        w.ipc.handle_info(sender, semaphore).is_ok(),
        "the handle to transfer was taken"
    );
    assert_eq!(w.ipc.usage().queued_messages, 0);
}

#[test]
fn a_send_to_a_receiver_with_a_bad_buffer_is_buffered_and_the_receiver_gets_the_error() {
    let mut w = World::new();
    let bad = w.bad(64);
    let (receiver, sender, mailbox, send) = waiting_receiver(&mut w, bad);
    w.machine.write(sender, PRIVATE_BASE, b"message!").unwrap();
    let payload = w.good(0, 8);
    assert_eq!(
        w.ipc.mailbox_send(
            sender,
            send,
            payload,
            &[],
            Blocking::NonBlocking,
            &mut w.machine
        ),
        Ok(Outcome::Done(()))
    );
    assert_eq!(w.machine.take_wakes(), vec![(receiver, Wakeup::Retry)]);
    // The retried receive (same bad buffer) fails for the receiver alone...
    let bad = w.bad(64);
    assert_eq!(
        w.ipc
            .mailbox_receive(receiver, mailbox, bad, Blocking::Forever, &mut w.machine),
        Err(Error::BadAddress)
    );
    // ...and the message waits for a good buffer.
    let good = w.good(0x100, 64);
    let got = w.ipc.mailbox_receive(
        receiver,
        mailbox,
        good,
        Blocking::NonBlocking,
        &mut w.machine,
    );
    assert!(matches!(got, Ok(Outcome::Done(Received { length: 8, .. }))));
    assert_eq!(
        w.machine.read(receiver, PRIVATE_BASE + 0x100, 8).unwrap(),
        b"message!"
    );
}

#[test]
fn pipe_writes_and_reads_from_bad_buffers_fail_their_caller_only() {
    let mut w = World::new();
    let reader = w.spawn();
    let writer = w.spawn();
    let (read, write) = w.ipc.pipe_create(reader).unwrap();
    let write = {
        let given = w
            .ipc
            .handle_grant(reader, write, writer, Rights::WRITE)
            .unwrap();
        w.ipc.handle_close(reader, write, &mut w.machine).unwrap();
        given
    };
    let into = w.good(0x100, 16);
    assert_eq!(
        w.ipc
            .pipe_read(reader, read, into, Blocking::Forever, &mut w.machine),
        Ok(Outcome::Blocked)
    );
    let bad = w.bad(8);
    assert_eq!(
        w.ipc
            .pipe_write(writer, write, bad, Blocking::Forever, &mut w.machine),
        Err(Error::BadAddress)
    );
    assert!(
        w.machine.take_wakes().is_empty(),
        "the reader was woken for nothing"
    );
    assert_eq!(w.ipc.pipe_buffered(reader, read), Ok(0));
    w.machine.write(writer, PRIVATE_BASE, b"bytes").unwrap();
    assert_eq!(
        w.ipc.pipe_write(
            writer,
            write,
            w.good(0, 5),
            Blocking::Forever,
            &mut w.machine
        ),
        Ok(Outcome::Done(5))
    );
    // The parked read got them, in its own buffer.
    assert_eq!(
        w.machine.take_wakes(),
        vec![(reader, Wakeup::Completed(Completion::Read(5)))]
    );
    assert_eq!(
        w.machine.read(reader, PRIVATE_BASE + 0x100, 5).unwrap(),
        b"bytes"
    );
    assert_eq!(
        w.ipc.pipe_write(
            writer,
            write,
            w.good(0, 5),
            Blocking::Forever,
            &mut w.machine
        ),
        Ok(Outcome::Done(5))
    );
    let bad = w.bad(16);
    assert_eq!(
        w.ipc
            .pipe_read(reader, read, bad, Blocking::Forever, &mut w.machine),
        Err(Error::BadAddress)
    );
    assert_eq!(
        w.ipc.pipe_buffered(reader, read),
        Ok(5),
        "the bytes were lost"
    );
}

#[test]
fn queue_sends_and_receives_from_bad_buffers_fail_their_caller_only() {
    let mut w = World::new();
    let receiver = w.spawn();
    let sender = w.spawn();
    let queue = w.ipc.mqueue_create(receiver, b"q", 4, 16).unwrap();
    let send = w
        .ipc
        .mqueue_open(sender, b"q", QueueOpen::WriteOnly)
        .unwrap();
    let into = w.good(0x100, 16);
    assert_eq!(
        w.ipc
            .mqueue_receive(receiver, queue, into, Blocking::Forever, &mut w.machine),
        Ok(Outcome::Blocked)
    );
    let bad = w.bad(8);
    assert_eq!(
        w.ipc
            .mqueue_send(sender, send, bad, 1, Blocking::Forever, &mut w.machine),
        Err(Error::BadAddress)
    );
    assert!(
        w.machine.take_wakes().is_empty(),
        "the receiver was woken for nothing"
    );
    assert_eq!(w.ipc.mqueue_attributes(receiver, queue).unwrap().queued, 0);
    assert_eq!(
        w.ipc.mqueue_send(
            sender,
            send,
            w.good(0, 8),
            1,
            Blocking::Forever,
            &mut w.machine
        ),
        Ok(Outcome::Done(()))
    );
    // The parked receive got that message, in its own buffer.
    assert_eq!(
        w.machine.take_wakes(),
        vec![(
            receiver,
            Wakeup::Completed(Completion::Dequeued(QueuedMessage {
                length: 8,
                priority: 1
            }))
        )]
    );
    assert_eq!(
        w.ipc.mqueue_send(
            sender,
            send,
            w.good(0, 8),
            1,
            Blocking::Forever,
            &mut w.machine
        ),
        Ok(Outcome::Done(()))
    );
    let bad = w.bad(16);
    assert_eq!(
        w.ipc
            .mqueue_receive(receiver, queue, bad, Blocking::Forever, &mut w.machine),
        Err(Error::BadAddress)
    );
    assert_eq!(
        w.ipc.mqueue_attributes(receiver, queue).unwrap().queued,
        1,
        "the message was lost"
    );
}

#[test]
fn a_loan_of_unmapped_pages_moves_nothing() {
    let mut w = World::new();
    let lender = w.spawn();
    let mapped = w.machine.mapped_pages(lender);
    let last = PRIVATE_BASE + (PRIVATE_PAGES as u64 - 1) * PAGE_SIZE as u64;
    assert_eq!(
        w.ipc.pages_loan(lender, last, 2, &mut w.machine),
        Err(Error::NotMapped)
    );
    assert_eq!(w.machine.mapped_pages(lender), mapped);
    assert_eq!(w.ipc.usage().regions, 0);
}

#[test]
fn a_send_from_a_bad_buffer_to_a_full_mailbox_fails_at_once_instead_of_waiting() {
    let mut w = World::new();
    let receiver = w.spawn();
    let sender = w.spawn();
    let mailbox = w.ipc.mailbox_create(receiver).unwrap();
    let send = w
        .ipc
        .handle_grant(receiver, mailbox, sender, Rights::WRITE)
        .unwrap();
    // Fill the sender's share of the mailbox (its quota: 4 messages).
    let payload = w.good(0, 4);
    while let Ok(Outcome::Done(())) = w.ipc.mailbox_send(
        sender,
        send,
        payload,
        &[],
        Blocking::NonBlocking,
        &mut w.machine,
    ) {}
    let bad = w.bad(4);
    assert_eq!(
        w.ipc
            .mailbox_send(sender, send, bad, &[], Blocking::Forever, &mut w.machine),
        Err(Error::BadAddress)
    );
    assert!(
        !w.ipc.is_waiting(sender),
        "a send that can never succeed was parked"
    );
}
