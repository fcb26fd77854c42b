//! Mailboxes (endpoints): bounded queues of small messages that can carry handles.
//!
//! A mailbox holds up to [`crate::MAILBOX_DEPTH`] messages. A message is a
//! payload of at most `PAYLOAD` bytes plus up to
//! [`crate::MAX_MESSAGE_HANDLES`] handles, moved (not copied) from
//! the sender's handle table to the receiver's. Handles with [`Rights::READ`] receive,
//! handles with [`Rights::WRITE`] send. A send handle may be *minted* with a badge
//! ([`Ipc::mailbox_mint`]); every message sent through it carries the badge, so a server
//! can tell its clients apart without trusting what they write.
//!
//! # The state machine (after seL4's endpoints)
//!
//! * **Receivers waiting** — a receive found the mailbox empty and recorded its user buffer.
//!   The next send copies the payload *straight* from the sender's buffer into that
//!   buffer: one user→user copy, no kernel buffering, as L4 and seL4 do. The receiver is
//!   woken with [`Wakeup::Completed`]. (If its buffer is too small, its handle table too
//!   full, or the copy faults, every waiting receiver is woken to retry instead and the
//!   message is buffered; a fault in the sender's buffer then fails the send.)
//! * **Messages buffered** — no receiver was waiting: the payload is copied user→kernel
//!   into the mailbox, and later kernel→user by the receive. Two copies.
//! * **Full** — a send blocks (or fails with `WouldBlock`) until a receive frees a slot;
//!   blocked senders are woken to retry.
//!
//! # Call and reply
//!
//! [`Ipc::mailbox_call`] sends a message that carries a fresh one-shot *reply handle* and
//! then waits. The receiver gets the reply handle with the message and answers with
//! [`Ipc::mailbox_reply`], which copies the answer straight into the caller's reply
//! buffer (the caller is always waiting) and consumes the handle. Dropping the reply
//! handle unanswered wakes the caller with [`Error::PeerClosed`]. A server loop answers
//! and waits for its next request in one step with [`Ipc::mailbox_reply_receive`].
//!
//! # Closing
//!
//! When the last receiving handle closes, buffered messages are discarded (the handles
//! inside them are closed, never leaked) and blocked and later senders get
//! [`Error::PeerClosed`]. In-flight handles count as handles while someone can still
//! receive them; but a mailbox whose receive handles travel only inside messages nobody
//! can receive (its own queue, or a loop of mailboxes) is unreachable, and its messages are
//! discarded when that happens (see `collect_unreceivable_mailboxes`), so a cycle can
//! never outlive the processes that built it.

use crate::MAX_MESSAGE_HANDLES;
use crate::accounting::Mechanism;
use crate::config::{Quota, charge};
use crate::error::Error;
use crate::handle::Handle;
use crate::host::{Host, ProcessId};
use crate::kernel::Ipc;
use crate::object::{Capability, Key, Object, ObjectKind, ObjectRef};
use crate::rights::Rights;
use crate::umem::UserSlice;
use crate::wait::{Blocking, Completion, Outcome, Received, WaitOn, Wakeup};

/// One buffered message.
pub(crate) struct Message<const PAYLOAD: usize> {
    length: usize,
    badge: u64,
    capabilities: heapless::Vec<Capability, MAX_MESSAGE_HANDLES>,
    /// For calls: who waits for the reply, and the token of that call.
    reply: Option<(ProcessId, u64)>,
    /// Who sent it (charged for it against its quotas until it leaves the mailbox).
    sender: Option<ProcessId>,
    data: [u8; PAYLOAD],
}

impl<const PAYLOAD: usize> Message<PAYLOAD> {
    const EMPTY: Self = Message {
        length: 0,
        badge: 0,
        capabilities: heapless::Vec::new(),
        reply: None,
        sender: None,
        data: [0; PAYLOAD],
    };
}

/// What is left of a message once its payload has been delivered or discarded.
struct Envelope {
    length: usize,
    badge: u64,
    capabilities: heapless::Vec<Capability, MAX_MESSAGE_HANDLES>,
    reply: Option<(ProcessId, u64)>,
    sender: Option<ProcessId>,
}

/// A mailbox: a ring of message slots plus counts of receive and send handles.
pub(crate) struct Mailbox<const PAYLOAD: usize, const MAILBOX_DEPTH: usize> {
    messages: [Message<PAYLOAD>; MAILBOX_DEPTH],
    head: usize,
    count: usize,
    pub(crate) receivers: u32,
    senders: u32,
}

impl<const PAYLOAD: usize, const MAILBOX_DEPTH: usize> Object for Mailbox<PAYLOAD, MAILBOX_DEPTH> {
    const EMPTY: Self = Mailbox {
        messages: [const { Message::EMPTY }; MAILBOX_DEPTH],
        head: 0,
        count: 0,
        receivers: 0,
        senders: 0,
    };
}

impl<const PAYLOAD: usize, const MAILBOX_DEPTH: usize> Mailbox<PAYLOAD, MAILBOX_DEPTH> {
    fn reset(&mut self) {
        self.head = 0;
        self.count = 0;
        self.receivers = 0;
        self.senders = 0;
    }

    pub(crate) fn queued(&self) -> usize {
        self.count
    }

    pub(crate) fn handles_in_flight(&self) -> usize {
        (0..self.count)
            .map(|i| {
                let m = &self.messages[(self.head + i) % MAILBOX_DEPTH];
                m.capabilities.len() + usize::from(m.reply.is_some())
            })
            .sum()
    }

    /// Messages `sender` has waiting in this mailbox.
    #[inline(always)]
    fn sent_by(&self, sender: ProcessId) -> usize {
        (0..self.count)
            .filter(|i| self.messages[(self.head + i) % MAILBOX_DEPTH].sender == Some(sender))
            .count()
    }

    fn front(&self) -> Option<&Message<PAYLOAD>> {
        (self.count > 0).then(|| &self.messages[self.head])
    }

    /// The free slot at the tail (the caller fills it, then calls `commit_back`).
    fn back_mut(&mut self) -> Option<&mut Message<PAYLOAD>> {
        (self.count < MAILBOX_DEPTH)
            .then(|| &mut self.messages[(self.head + self.count) % MAILBOX_DEPTH])
    }

    fn commit_back(&mut self) {
        self.count += 1;
    }

    fn pop_front(&mut self) -> Option<Envelope> {
        if self.count == 0 {
            return None;
        }
        let message = &mut self.messages[self.head];
        let envelope = Envelope {
            length: message.length,
            badge: message.badge,
            capabilities: core::mem::take(&mut message.capabilities),
            reply: message.reply.take(),
            sender: message.sender.take(),
        };
        self.head = (self.head + 1) % MAILBOX_DEPTH;
        self.count -= 1;
        Some(envelope)
    }
}

/// The rights of a new mailbox's handle.
const MAILBOX_RIGHTS: Rights = Rights::READ
    .union(Rights::WRITE)
    .union(Rights::TRANSFER)
    .union(Rights::DUPLICATE);

/// The rights of a reply handle: answer it, or pass it on.
const REPLY_RIGHTS: Rights = Rights::WRITE.union(Rights::TRANSFER);

impl<
    const PROCESSES: usize,
    const HANDLES: usize,
    const OBJECTS: usize,
    const PAYLOAD: usize,
    const PIPE_CAPACITY: usize,
    const MAILBOX_DEPTH: usize,
    const QUEUE_DEPTH: usize,
    const REGION_PAGES: usize,
    const MAPPINGS: usize,
    L: crate::config::Limits,
>
    Ipc<
        PROCESSES,
        HANDLES,
        OBJECTS,
        PAYLOAD,
        PIPE_CAPACITY,
        MAILBOX_DEPTH,
        QUEUE_DEPTH,
        REGION_PAGES,
        MAPPINGS,
        L,
    >
{
    /// Creates a mailbox; the handle has READ, WRITE, TRANSFER and DUPLICATE and no badge.
    ///
    /// # Example
    ///
    /// ```
    /// # use kipc::*;
    /// # #[allow(unused)]
    /// # fn example(ipc: &mut DefaultIpc, host: &mut impl Host, caller: ProcessId, peer: ProcessId, handle: Handle, buffer: UserSlice) -> Result<(), Error> {
    /// let mailbox = ipc.mailbox_create(caller)?; // READ, WRITE, TRANSFER, DUPLICATE
    /// # Ok(()) }
    /// ```
    pub fn mailbox_create(&mut self, caller: ProcessId) -> Result<Handle, Error> {
        self.reserve_handles(caller, 1)?;
        let (key, mailbox) = self
            .mailboxes
            .allocate(caller, L::QUOTAS.objects_per_kind)?;
        mailbox.reset();
        let capability = Capability {
            object: ObjectRef::Mailbox(key),
            rights: MAILBOX_RIGHTS,
            badge: 0,
        };
        self.install_new(caller, capability)
            .inspect_err(|_| self.mailboxes.free(key))
    }

    /// Mints a badged copy of an unbadged mailbox handle, with `rights` (a subset). Needs
    /// DUPLICATE. Messages sent through the new handle carry `badge`.
    ///
    /// # Example
    ///
    /// ```
    /// # use kipc::*;
    /// # #[allow(unused)]
    /// # fn example(ipc: &mut DefaultIpc, host: &mut impl Host, caller: ProcessId, peer: ProcessId, handle: Handle, buffer: UserSlice) -> Result<(), Error> {
    /// // A send-only handle whose messages arrive with badge 42:
    /// let badged = ipc.mailbox_mint(caller, handle, Rights::WRITE | Rights::TRANSFER, 42)?;
    /// # Ok(()) }
    /// ```
    pub fn mailbox_mint(
        &mut self,
        caller: ProcessId,
        handle: Handle,
        rights: Rights,
        badge: u64,
    ) -> Result<Handle, Error> {
        let capability = self.lookup(caller, handle, ObjectKind::Mailbox, Rights::DUPLICATE)?;
        if capability.badge != 0 || !capability.rights.allows(rights) {
            return Err(Error::PermissionDenied);
        }
        self.install_new(
            caller,
            Capability {
                rights,
                badge,
                ..capability
            },
        )
    }

    /// Sends `payload` and moves `handles` (each needing TRANSFER) through the mailbox.
    /// Needs WRITE.
    ///
    /// Hands the message straight to a waiting receiver when there is one (one user→user
    /// copy), otherwise buffers it (one user→kernel copy). Fails with
    /// [`Error::PeerClosed`] when no receiving handle is left, [`Error::MessageTooLarge`]
    /// above `PAYLOAD` bytes; a full mailbox blocks per `blocking`.
    ///
    /// # Example
    ///
    /// ```
    /// # use kipc::*;
    /// # #[allow(unused)]
    /// # fn example(ipc: &mut DefaultIpc, host: &mut impl Host, caller: ProcessId, peer: ProcessId, handle: Handle, buffer: UserSlice) -> Result<(), Error> {
    /// match ipc.mailbox_send(caller, handle, buffer, &[], Blocking::Forever, host)? {
    ///     Outcome::Done(()) => {}     // delivered or buffered
    ///     Outcome::Blocked => {}      // mailbox full: park; retried on Wakeup::Retry
    /// }
    /// # Ok(()) }
    /// ```
    pub fn mailbox_send<H: Host>(
        &mut self,
        caller: ProcessId,
        handle: Handle,
        payload: UserSlice,
        handles: &[Handle],
        blocking: Blocking,
        host: &mut H,
    ) -> Result<Outcome<()>, Error> {
        let capability = self.lookup(caller, handle, ObjectKind::Mailbox, Rights::WRITE)?;
        let ObjectRef::Mailbox(key) = capability.object else {
            return Err(Error::WrongObjectKind);
        };
        let moves_receive_handle = self.moves_receive_handle(caller, handles);
        let outcome = self.deliver(
            caller,
            key,
            capability.badge,
            payload,
            handles,
            None,
            blocking,
            host,
        );
        if moves_receive_handle {
            // A receive handle may have left the last table that held it.
            self.collect_unreceivable_mailboxes(host);
        }
        outcome
    }

    /// Whether `handles` of `caller` (about to be sent) include a mailbox receive handle,
    /// the only kind whose moving can strand a mailbox. A handle that does not resolve
    /// counts as one, to be safe (the send will fail anyway).
    pub(crate) fn moves_receive_handle(&self, caller: ProcessId, handles: &[Handle]) -> bool {
        handles
            .iter()
            .any(|handle| match self.capability(caller, *handle) {
                Ok(capability) => {
                    matches!(capability.object, ObjectRef::Mailbox(_))
                        && capability.rights.contains(Rights::READ)
                }
                Err(_) => true,
            })
    }

    /// Receives the oldest message into `buffer` and its handles into the caller's table.
    /// Needs READ.
    ///
    /// Fails with [`Error::BufferTooSmall`] (message kept) if `buffer` is shorter than the
    /// message and [`Error::OutOfHandles`] if the handles would not fit. An empty mailbox
    /// blocks per `blocking`; the recorded buffer lets a later sender hand its message
    /// over directly, completing this call ([`Completion::Received`]).
    ///
    /// # Example
    ///
    /// ```
    /// # use kipc::*;
    /// # #[allow(unused)]
    /// # fn example(ipc: &mut DefaultIpc, host: &mut impl Host, caller: ProcessId, peer: ProcessId, handle: Handle, buffer: UserSlice) -> Result<(), Error> {
    /// if let Outcome::Done(message) = ipc.mailbox_receive(caller, handle, buffer, Blocking::Forever, host)? {
    ///     let (length, badge, reply) = (message.length, message.badge, message.reply);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn mailbox_receive<H: Host>(
        &mut self,
        caller: ProcessId,
        handle: Handle,
        buffer: UserSlice,
        blocking: Blocking,
        host: &mut H,
    ) -> Result<Outcome<Received>, Error> {
        let key = self.receive_key(caller, handle)?;
        self.receive_from(caller, key, buffer, blocking, host)
    }

    /// Answers a call and waits for the next message in one step, as a server loop does
    /// (seL4's `ReplyRecv`): exactly [`Ipc::mailbox_reply`] through `reply` with
    /// `payload` and `handles`, followed by [`Ipc::mailbox_receive`] on `mailbox` into
    /// `buffer`, with the same copies, wake-ups and ledger counts as the two calls.
    ///
    /// The reply must succeed or nothing is received: every error of `mailbox_reply`
    /// (`PeerClosed` when the caller stopped waiting — the handle is then consumed —,
    /// `MessageTooLarge`, `StaleHandle`, ...) fails the whole call before the mailbox is
    /// touched. `mailbox` is checked first (a handle that cannot receive fails the call
    /// before the reply), and moving it away with the reply fails with
    /// [`Error::InvalidArgument`]. Once the reply is delivered, the receive's own errors
    /// (`BufferTooSmall`, `OutOfHandles`, a fault in `buffer`) are reported as the call's:
    /// the reply stays delivered, and the caller receives again with `mailbox_receive`.
    ///
    /// # Example
    ///
    /// ```
    /// # use kipc::*;
    /// # #[allow(unused)]
    /// # fn example(ipc: &mut DefaultIpc, host: &mut impl Host, caller: ProcessId, peer: ProcessId, handle: Handle, buffer: UserSlice) -> Result<(), Error> {
    /// // A server answers the call it holds and waits for the next one, in one call:
    /// let next = ipc.mailbox_reply_receive(caller, handle, buffer.prefix(8), &[], peer_mailbox(), buffer, Blocking::Forever, host)?;
    /// # fn peer_mailbox() -> Handle { Handle::from_raw(0) }
    /// # Ok(()) }
    /// ```
    #[allow(clippy::too_many_arguments)]
    pub fn mailbox_reply_receive<H: Host>(
        &mut self,
        caller: ProcessId,
        reply: Handle,
        payload: UserSlice,
        handles: &[Handle],
        mailbox: Handle,
        buffer: UserSlice,
        blocking: Blocking,
        host: &mut H,
    ) -> Result<Outcome<Received>, Error> {
        let key = self.receive_key(caller, mailbox)?;
        if handles.contains(&mailbox) {
            return Err(Error::InvalidArgument);
        }
        self.reply_to(caller, reply, payload, handles, host)?;
        self.receive_from(caller, key, buffer, blocking, host)
    }

    /// The mailbox behind a receive handle (needs READ).
    fn receive_key(&self, caller: ProcessId, handle: Handle) -> Result<Key, Error> {
        let capability = self.lookup(caller, handle, ObjectKind::Mailbox, Rights::READ)?;
        match capability.object {
            ObjectRef::Mailbox(key) => Ok(key),
            _ => Err(Error::WrongObjectKind),
        }
    }

    /// The receive half of `mailbox_receive` and `mailbox_reply_receive`.
    #[inline(always)]
    fn receive_from<H: Host>(
        &mut self,
        caller: ProcessId,
        key: Key,
        buffer: UserSlice,
        blocking: Blocking,
        host: &mut H,
    ) -> Result<Outcome<Received>, Error> {
        let mailbox = self.mailboxes.get(key).ok_or(Error::PeerClosed)?;
        let Some(message) = mailbox.front() else {
            return self.block_inlined(
                caller,
                WaitOn::MailboxReceive {
                    mailbox: key,
                    buffer,
                },
                blocking,
                host,
            );
        };
        if buffer.len() < message.length {
            return Err(Error::BufferTooSmall {
                needed: message.length,
            });
        }
        let needed = message.capabilities.len() + usize::from(message.reply.is_some());
        self.reserve_handles(caller, needed)?;

        // Second copy of a buffered message: kernel -> receiver.
        let length = message.length;
        let destination = buffer.prefix(length);
        let mailbox = self.mailboxes.get(key).ok_or(Error::PeerClosed)?;
        self.ledger.copy_out(
            host,
            caller,
            Mechanism::Mailbox,
            destination,
            &mailbox.messages[mailbox.head].data[..length],
        )?;

        let envelope = self.pop_message(key).ok_or(Error::PeerClosed)?;
        let received = self.hand_over(
            caller,
            envelope.length,
            envelope.badge,
            &envelope.capabilities,
            envelope.reply,
        );
        // A slot is free: blocked senders may try again.
        self.wake_all(Wakeup::Retry, host, |on| *on == WaitOn::MailboxSend(key));
        Ok(Outcome::Done(received))
    }

    /// Sends like [`Ipc::mailbox_send`] with a fresh one-shot reply handle attached, then
    /// waits for the answer in `reply_buffer`. Always returns [`Outcome::Blocked`] on
    /// success; the host resumes the caller on [`Completion::Received`] (the reply), or on
    /// `Failed(PeerClosed)` if the reply handle was dropped, or `Failed(TimedOut)` at the
    /// deadline of [`Blocking::Until`]. If the mailbox is full, the caller is woken to
    /// retry the whole call. A call always waits for its reply, so
    /// [`Blocking::NonBlocking`] is refused with [`Error::InvalidArgument`].
    ///
    /// # Example
    ///
    /// ```
    /// # use kipc::*;
    /// # #[allow(unused)]
    /// # fn example(ipc: &mut DefaultIpc, host: &mut impl Host, caller: ProcessId, peer: ProcessId, handle: Handle, buffer: UserSlice) -> Result<(), Error> {
    /// // Always parks: the reply arrives as Wakeup::Completed(Completion::Received(..)).
    /// let outcome = ipc.mailbox_call(caller, handle, buffer.prefix(8), &[], buffer, Blocking::Until(100), host)?;
    /// assert!(outcome.is_blocked());
    /// # Ok(()) }
    /// ```
    #[allow(clippy::too_many_arguments)]
    pub fn mailbox_call<H: Host>(
        &mut self,
        caller: ProcessId,
        handle: Handle,
        payload: UserSlice,
        handles: &[Handle],
        reply_buffer: UserSlice,
        blocking: Blocking,
        host: &mut H,
    ) -> Result<Outcome<Received>, Error> {
        let capability = self.lookup(caller, handle, ObjectKind::Mailbox, Rights::WRITE)?;
        let ObjectRef::Mailbox(key) = capability.object else {
            return Err(Error::WrongObjectKind);
        };
        if blocking == Blocking::NonBlocking {
            return Err(Error::InvalidArgument);
        }
        let token = self.next_token;
        let reply = Some((caller, token));
        let moves_receive_handle = self.moves_receive_handle(caller, handles);
        match self.deliver(
            caller,
            key,
            capability.badge,
            payload,
            handles,
            reply,
            blocking,
            host,
        )? {
            Outcome::Blocked => Ok(Outcome::Blocked),
            Outcome::Done(()) => {
                self.next_token += 1;
                if moves_receive_handle {
                    self.collect_unreceivable_mailboxes(host);
                }
                // The message is out; from now on only the reply wait (and its deadline)
                // remains. A deadline that has already passed is reported by `expire`.
                self.record_wait(
                    caller,
                    WaitOn::Reply {
                        token,
                        buffer: reply_buffer,
                    },
                    blocking.deadline(),
                )?;
                Ok(Outcome::Blocked)
            }
        }
    }

    /// Answers a call through its reply handle (needs WRITE; the handle is consumed).
    ///
    /// The answer is copied straight into the waiting caller's reply buffer (one user→user
    /// copy) together with `handles`. Fails with [`Error::PeerClosed`] (handle consumed) if
    /// the caller no longer waits, and with [`Error::MessageTooLarge`] (handle kept) if
    /// the answer exceeds the caller's buffer or `PAYLOAD`.
    ///
    /// # Example
    ///
    /// ```
    /// # use kipc::*;
    /// # #[allow(unused)]
    /// # fn example(ipc: &mut DefaultIpc, host: &mut impl Host, caller: ProcessId, peer: ProcessId, handle: Handle, buffer: UserSlice) -> Result<(), Error> {
    /// // `handle` is the one-shot reply handle a received call carried:
    /// ipc.mailbox_reply(caller, handle, buffer.prefix(8), &[], host)?;
    /// # Ok(()) }
    /// ```
    pub fn mailbox_reply<H: Host>(
        &mut self,
        caller: ProcessId,
        reply: Handle,
        payload: UserSlice,
        handles: &[Handle],
        host: &mut H,
    ) -> Result<(), Error> {
        self.reply_to(caller, reply, payload, handles, host)
    }

    /// The body of [`Ipc::mailbox_reply`], inlined into `mailbox_reply_receive` too: a
    /// server loop's reply then costs no call of its own (argument shuffling, a frame).
    #[inline(always)]
    fn reply_to<H: Host>(
        &mut self,
        caller: ProcessId,
        reply: Handle,
        payload: UserSlice,
        handles: &[Handle],
        host: &mut H,
    ) -> Result<(), Error> {
        let capability = self.lookup(caller, reply, ObjectKind::Reply, Rights::WRITE)?;
        let ObjectRef::Reply {
            caller: client,
            token,
        } = capability.object
        else {
            return Err(Error::WrongObjectKind);
        };
        let waiting = self
            .process(client)
            .ok()
            .and_then(|p| p.wait.as_ref())
            .and_then(|w| match w.on {
                WaitOn::Reply { token: t, buffer } if t == token => Some(buffer),
                _ => None,
            });
        let Some(buffer) = waiting else {
            self.process_mut(caller)?.handles.remove(reply)?;
            return Err(Error::PeerClosed);
        };
        let limit = buffer.len().min(PAYLOAD);
        if payload.len() > limit {
            return Err(Error::MessageTooLarge { limit });
        }
        if handles.contains(&reply) {
            return Err(Error::InvalidArgument);
        }
        let mut capabilities = heapless::Vec::new();
        if !handles.is_empty() {
            capabilities = self.transfers(caller, handles)?;
            // (With nothing to install there is nothing to reserve: the client
            // is alive, it was just found waiting.)
            self.reserve_handles(client, capabilities.len())?;
        }
        let copied = self.ledger.copy_user_to_user(
            host,
            Mechanism::Mailbox,
            caller,
            payload,
            client,
            buffer.prefix(payload.len()),
        );
        if copied.is_err() {
            if !crate::umem::readable(host, caller, payload) {
                // The replier's own buffer: it gets the error and keeps the reply
                // handle to try again; the caller keeps waiting.
                return Err(Error::BadAddress);
            }
            // The caller's reply buffer faulted: its call fails, the reply is spent,
            // and the replier (which did nothing wrong) succeeds. The handles it sent
            // are gone from it, as on any successful reply, and released: the caller
            // that would have received them never will.
            self.process_mut(caller)?.handles.remove(reply)?;
            if !handles.is_empty() {
                self.take_transfers(caller, handles);
                for capability in capabilities {
                    self.release(capability, host);
                }
            }
            self.finish_wait(client, Wakeup::Failed(Error::BadAddress), host);
            return Ok(());
        }
        self.process_mut(caller)?.handles.remove(reply)?;
        let handles = if handles.is_empty() {
            heapless::Vec::new()
        } else {
            self.take_transfers(caller, handles);
            self.install_transfers(client, &capabilities)
        };
        let received = Received {
            length: payload.len(),
            badge: 0,
            handles,
            reply: None,
        };
        self.finish_wait(
            client,
            Wakeup::Completed(Completion::Received(received)),
            host,
        );
        Ok(())
    }

    // ------------------------------------------------------------------ internals

    /// The common send path of `send` and `call`.
    #[allow(clippy::too_many_arguments)]
    fn deliver<H: Host>(
        &mut self,
        caller: ProcessId,
        key: Key,
        badge: u64,
        payload: UserSlice,
        handles: &[Handle],
        reply: Option<(ProcessId, u64)>,
        blocking: Blocking,
        host: &mut H,
    ) -> Result<Outcome<()>, Error> {
        let mailbox = self.mailboxes.get(key).ok_or(Error::PeerClosed)?;
        if mailbox.receivers == 0 {
            return Err(Error::PeerClosed);
        }
        if payload.len() > PAYLOAD {
            return Err(Error::MessageTooLarge { limit: PAYLOAD });
        }
        // Filled in place (a `Result` of the array by value costs a copy of it).
        let mut capabilities = heapless::Vec::new();
        if !handles.is_empty() {
            capabilities = self.transfers(caller, handles)?;
        }
        let handle_count = capabilities.len() + usize::from(reply.is_some());

        // LAB mailbox: begin
        // Fast path: a receiver is already waiting with a buffer.
        let waiting = self.oldest_waiter(
            |on| matches!(on, WaitOn::MailboxReceive { mailbox, .. } if *mailbox == key),
        );
        if let Some((receiver, WaitOn::MailboxReceive { buffer, .. })) = waiting {
            let fits = buffer.len() >= payload.len()
                && self
                    .process(receiver)
                    .map(|p| p.handles.free() >= handle_count)
                    .unwrap_or(false);
            let copied = fits
                && self
                    .ledger
                    .copy_user_to_user(
                        host,
                        Mechanism::Mailbox,
                        caller,
                        payload,
                        receiver,
                        buffer.prefix(payload.len()),
                    )
                    .is_ok();
            if copied {
                if !handles.is_empty() {
                    self.take_transfers(caller, handles);
                }
                let received = self.hand_over(receiver, payload.len(), badge, &capabilities, reply);
                self.finish_wait(
                    receiver,
                    Wakeup::Completed(Completion::Received(received)),
                    host,
                );
                return Ok(Outcome::Done(()));
            }
            // A fault in the sender's own payload is the sender's alone: it gets the
            // error, and the waiting receiver is not woken for nothing.
            if fits && !crate::umem::readable(host, caller, payload) {
                return Err(Error::BadAddress);
            }
            // It cannot take this message directly (buffer too small, handle table too
            // full, or its own buffer faulted). The message gets buffered, and a
            // receiver must never sleep on a mailbox that holds one: every waiter
            // retries, and the one whose buffer faulted gets `BadAddress` from its own
            // retried receive.
            self.wake_all(
                Wakeup::Retry,
                host,
                |on| matches!(on, WaitOn::MailboxReceive { mailbox, .. } if *mailbox == key),
            );
        }
        // LAB mailbox: stub
        // // LAB mailbox: no direct hand-off yet. Every message is buffered (two
        // // copies), and a receiver that waits retries its receive to take it.
        // let _ = Self::hand_over;
        // self.wake_all(
        //     Wakeup::Retry,
        //     host,
        //     |on| matches!(on, WaitOn::MailboxReceive { mailbox, .. } if *mailbox == key),
        // );
        // LAB mailbox: end

        // Slow path: buffer the message in the kernel. A sender that already has its
        // quota of messages waiting here finds the mailbox full, as if every slot were
        // taken: it waits (or gets `WouldBlock`) until one of them is received, while
        // other senders still find room.
        if handle_count > 0 {
            let in_flight = self.process(caller)?.handles_in_flight;
            charge(
                L::QUOTAS.handles_in_flight,
                Quota::HandlesInFlight,
                in_flight,
                handle_count,
            )?;
        }
        let quota = L::QUOTAS.buffered_messages;
        let Some(slot) = self
            .mailboxes
            .get_mut(key)
            // Fewer messages than the quota in all: nobody can be at it (no scan).
            .filter(|m| m.count < quota || m.sent_by(caller) < quota)
            .and_then(|m| m.back_mut())
        else {
            crate::umem::refuse_doomed_wait(host, caller, payload, blocking)?;
            return self.block_out_of_line(caller, WaitOn::MailboxSend(key), blocking, host);
        };
        self.ledger.copy_in(
            host,
            caller,
            Mechanism::Mailbox,
            payload,
            &mut slot.data[..payload.len()],
        )?;
        slot.length = payload.len();
        slot.badge = badge;
        slot.capabilities = capabilities;
        slot.reply = reply;
        slot.sender = Some(caller);
        if let Some(mailbox) = self.mailboxes.get_mut(key) {
            mailbox.commit_back();
        }
        if handle_count > 0 {
            self.charge_message(caller, handle_count);
        }
        self.take_transfers(caller, handles);
        Ok(Outcome::Done(()))
    }

    /// Installs a delivered message's handles (and reply handle) in `receiver`'s table.
    /// (Takes the envelope's parts by reference: moving a whole envelope costs a copy of
    /// its capability array on every message.)
    #[inline(always)]
    fn hand_over(
        &mut self,
        receiver: ProcessId,
        length: usize,
        badge: u64,
        capabilities: &[Capability],
        reply: Option<(ProcessId, u64)>,
    ) -> Received {
        let handles = if capabilities.is_empty() {
            heapless::Vec::new()
        } else {
            self.install_transfers(receiver, capabilities)
        };
        let reply = reply.and_then(|(client, token)| {
            self.install_moved(receiver, self.reply_capability(client, token))
                .ok()
        });
        Received {
            length,
            badge,
            handles,
            reply,
        }
    }

    /// The one-shot reply handle's capability for `client`'s call number `token`.
    #[inline(always)]
    pub(crate) fn reply_capability(&self, client: ProcessId, token: u64) -> Capability {
        Capability {
            object: ObjectRef::Reply {
                caller: client,
                token,
            },
            rights: REPLY_RIGHTS,
            badge: 0,
        }
    }

    /// Takes the front message out of mailbox `key`, releasing its sender's charge.
    #[inline(always)]
    fn pop_message(&mut self, key: Key) -> Option<Envelope> {
        let envelope = self.mailboxes.get_mut(key)?.pop_front()?;
        let handles = envelope.capabilities.len() + usize::from(envelope.reply.is_some());
        if handles > 0 {
            self.uncharge_message(envelope.sender, handles);
        }
        Some(envelope)
    }

    /// Closes the handles inside undelivered messages.
    fn discard_messages<H: Host>(&mut self, key: Key, host: &mut H) {
        while let Some(envelope) = self.pop_message(key) {
            for capability in envelope.capabilities {
                self.release(capability, host);
            }
            if let Some((client, token)) = envelope.reply {
                self.reply_released(client, token, host);
            }
        }
    }

    pub(crate) fn mailbox_acquired(&mut self, key: Key, rights: Rights) {
        if let Some(slot) = self.mailboxes.slot_mut(key) {
            slot.references += 1;
            if rights.contains(Rights::READ) {
                slot.value.receivers += 1;
            }
            if rights.contains(Rights::WRITE) {
                slot.value.senders += 1;
            }
        }
    }

    pub(crate) fn mailbox_released<H: Host>(&mut self, key: Key, rights: Rights, host: &mut H) {
        let Some(slot) = self.mailboxes.slot_mut(key) else {
            return;
        };
        slot.references -= 1;
        if rights.contains(Rights::WRITE) {
            slot.value.senders -= 1;
        }
        let mut last_receiver = false;
        if rights.contains(Rights::READ) {
            slot.value.receivers -= 1;
            last_receiver = slot.value.receivers == 0;
        }
        let last_reference = slot.references == 0;
        if last_receiver || last_reference {
            // Nobody can ever receive these messages: close what they carry.
            self.discard_messages(key, host);
            self.wake_all(Wakeup::Retry, host, |on| *on == WaitOn::MailboxSend(key));
        }
        if last_reference {
            self.wake_all(
                Wakeup::Failed(Error::PeerClosed),
                host,
                |on| matches!(on, WaitOn::MailboxReceive { mailbox, .. } if *mailbox == key),
            );
            self.mailboxes.free(key);
        }
    }

    /// A reply handle went away unanswered: the caller learns its peer is gone.
    pub(crate) fn reply_released<H: Host>(&mut self, client: ProcessId, token: u64, host: &mut H) {
        let waiting = self
            .process(client)
            .ok()
            .and_then(|p| p.wait)
            .is_some_and(|w| matches!(w.on, WaitOn::Reply { token: t, .. } if t == token));
        if waiting {
            self.finish_wait(client, Wakeup::Failed(Error::PeerClosed), host);
        }
    }

    /// Discards the messages of every mailbox nobody can ever receive from again.
    ///
    /// A receive handle can travel inside a message. If the only receive handles of a
    /// mailbox sit in messages of mailboxes that are themselves unreachable — the simplest
    /// case is a mailbox whose only receive handle was sent into its own queue — reference
    /// counts never reach zero and the cycle would outlive every process, holding its
    /// mailboxes and whatever its messages carry. So, as a tracing collector would: a
    /// mailbox is *receivable* if a live process's table holds a receive handle to it, or if
    /// such a handle travels in a message of a receivable mailbox. Every other mailbox's
    /// messages are discarded (their handles closed), which breaks the cycle and lets the
    /// usual reference counting free what it held.
    ///
    /// Cheap when no handle is in flight; otherwise bounded by the table sizes.
    ///
    /// Every event that can strand a mailbox runs it: closing or exiting with a receive
    /// handle, and sending one (see [`Ipc::moves_receive_handle`]). Moving any other
    /// handle changes no mailbox's receivability, so such sends skip it.
    pub(crate) fn collect_unreceivable_mailboxes<H: Host>(&mut self, host: &mut H) {
        let in_flight = self
            .mailboxes
            .iter_live()
            .any(|(_, mailbox)| mailbox.handles_in_flight() > 0);
        if !in_flight {
            return;
        }
        let mut receivable = [false; OBJECTS];
        let mut pending: heapless::Vec<Key, OBJECTS> = heapless::Vec::new();
        let receive_key = |capability: &Capability| match capability.object {
            ObjectRef::Mailbox(key) if capability.rights.contains(Rights::READ) => Some(key),
            _ => None,
        };
        for process in self.processes.iter().filter(|process| process.live) {
            for (_, capability) in process.handles.iter() {
                if let Some(key) = receive_key(capability)
                    && !receivable[usize::from(key.index)]
                {
                    receivable[usize::from(key.index)] = true;
                    let _ = pending.push(key);
                }
            }
        }
        while let Some(key) = pending.pop() {
            let Some(mailbox) = self.mailboxes.get(key) else {
                continue;
            };
            for offset in 0..mailbox.count {
                let message = &mailbox.messages[(mailbox.head + offset) % MAILBOX_DEPTH];
                for capability in &message.capabilities {
                    if let Some(inner) = receive_key(capability)
                        && !receivable[usize::from(inner.index)]
                    {
                        receivable[usize::from(inner.index)] = true;
                        let _ = pending.push(inner);
                    }
                }
            }
        }
        let mut stranded: heapless::Vec<Key, OBJECTS> = heapless::Vec::new();
        for (key, mailbox) in self.mailboxes.iter_live() {
            if mailbox.count > 0 && !receivable[usize::from(key.index)] {
                let _ = stranded.push(key);
            }
        }
        for key in stranded {
            self.discard_messages(key, host);
            self.wake_all(Wakeup::Retry, host, |on| *on == WaitOn::MailboxSend(key));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::{TestHost, TestIpc};
    use crate::*;

    fn setup() -> (TestIpc, TestHost, ProcessId, ProcessId, Handle, Handle) {
        let mut ipc = TestIpc::new();
        let host = TestHost::new();
        let server = ipc.process_create().unwrap();
        let client = ipc.process_create().unwrap();
        let inbox = ipc.mailbox_create(server).unwrap();
        let send = ipc
            .mailbox_mint(server, inbox, Rights::WRITE | Rights::TRANSFER, 42)
            .unwrap();
        let client_send = ipc
            .handle_grant(server, send, client, Rights::WRITE)
            .unwrap();
        ipc.handle_close(server, send, &mut TestHost::new())
            .unwrap();
        (ipc, host, server, client, inbox, client_send)
    }

    #[test]
    fn buffered_message_costs_two_copies() {
        let (mut ipc, mut host, server, client, inbox, send) = setup();
        host.poke(client, 0, b"hello");
        assert_eq!(
            ipc.mailbox_send(
                client,
                send,
                host.slice(0, 5),
                &[],
                Blocking::NonBlocking,
                &mut host
            ),
            Ok(Outcome::Done(()))
        );
        assert_eq!(ipc.usage().queued_messages, 1);
        let got = ipc
            .mailbox_receive(
                server,
                inbox,
                host.slice(0x100, 64),
                Blocking::NonBlocking,
                &mut host,
            )
            .unwrap()
            .done()
            .unwrap();
        assert_eq!((got.length, got.badge), (5, 42));
        assert_eq!(host.peek(server, 0x100, 5), b"hello");
        let g = *ipc.ledger().global();
        assert_eq!(
            g.copies(Mechanism::Mailbox, Direction::UserToKernel),
            Counter {
                operations: 1,
                bytes: 5
            }
        );
        assert_eq!(
            g.copies(Mechanism::Mailbox, Direction::KernelToUser),
            Counter {
                operations: 1,
                bytes: 5
            }
        );
        assert_eq!(g.copies(Mechanism::Mailbox, Direction::UserToUser).bytes, 0);
    }

    #[test]
    fn waiting_receiver_gets_a_direct_copy() {
        let (mut ipc, mut host, server, client, inbox, send) = setup();
        assert!(
            ipc.mailbox_receive(
                server,
                inbox,
                host.slice(0x100, 64),
                Blocking::Forever,
                &mut host
            )
            .unwrap()
            .is_blocked()
        );
        host.poke(client, 0, b"direct");
        assert_eq!(
            ipc.mailbox_send(
                client,
                send,
                host.slice(0, 6),
                &[],
                Blocking::NonBlocking,
                &mut host
            ),
            Ok(Outcome::Done(()))
        );
        let wakes = host.take_wakes();
        assert_eq!(wakes.len(), 1);
        let (who, Wakeup::Completed(Completion::Received(received))) = &wakes[0] else {
            panic!("{wakes:?}")
        };
        assert_eq!((*who, received.length, received.badge), (server, 6, 42));
        assert_eq!(host.peek(server, 0x100, 6), b"direct");
        let g = *ipc.ledger().global();
        assert_eq!(
            g.copies(Mechanism::Mailbox, Direction::UserToUser),
            Counter {
                operations: 1,
                bytes: 6
            }
        );
        assert_eq!(g.total_bytes(), 6, "exactly one copy");
    }

    #[test]
    fn small_receive_buffer_is_reported_and_message_kept() {
        let (mut ipc, mut host, server, client, inbox, send) = setup();
        assert!(
            ipc.mailbox_receive(
                server,
                inbox,
                host.slice(0x100, 2),
                Blocking::Forever,
                &mut host
            )
            .unwrap()
            .is_blocked()
        );
        ipc.mailbox_send(
            client,
            send,
            host.slice(0, 10),
            &[],
            Blocking::NonBlocking,
            &mut host,
        )
        .unwrap()
        .done()
        .unwrap();
        assert_eq!(host.take_wakes(), vec![(server, Wakeup::Retry)]);
        assert_eq!(
            ipc.mailbox_receive(
                server,
                inbox,
                host.slice(0x100, 2),
                Blocking::Forever,
                &mut host
            ),
            Err(Error::BufferTooSmall { needed: 10 })
        );
        assert!(
            ipc.mailbox_receive(
                server,
                inbox,
                host.slice(0x100, 10),
                Blocking::Forever,
                &mut host
            )
            .unwrap()
            .done()
            .is_some()
        );
        assert_eq!(
            ipc.mailbox_send(
                client,
                send,
                host.slice(0, 65),
                &[],
                Blocking::NonBlocking,
                &mut host
            ),
            Err(Error::MessageTooLarge { limit: 64 })
        );
    }

    #[test]
    fn no_receiver_sleeps_on_a_buffered_message() {
        let (mut ipc, mut host, server, client, inbox, send) = setup();
        let helper = ipc.process_create().unwrap();
        let helper_inbox = ipc
            .handle_grant(server, inbox, helper, Rights::READ)
            .unwrap();
        // The oldest receiver's buffer is too small, the second one's is fine.
        let small = ipc.mailbox_receive(
            server,
            inbox,
            host.slice(0x100, 2),
            Blocking::Forever,
            &mut host,
        );
        assert!(small.unwrap().is_blocked());
        let large = ipc.mailbox_receive(
            helper,
            helper_inbox,
            host.slice(0x100, 16),
            Blocking::Forever,
            &mut host,
        );
        assert!(large.unwrap().is_blocked());
        host.poke(client, 0, b"first");
        ipc.mailbox_send(
            client,
            send,
            host.slice(0, 5),
            &[],
            Blocking::NonBlocking,
            &mut host,
        )
        .unwrap()
        .done()
        .unwrap();
        // Both retry: the message waits in the mailbox, and nobody sleeps beside it.
        assert_eq!(
            host.take_wakes(),
            vec![(server, Wakeup::Retry), (helper, Wakeup::Retry)]
        );
        assert!(!ipc.is_waiting(helper));
        assert_eq!(ipc.usage().queued_messages, 1);
        let got = ipc
            .mailbox_receive(
                helper,
                helper_inbox,
                host.slice(0x100, 16),
                Blocking::Forever,
                &mut host,
            )
            .unwrap()
            .done()
            .unwrap();
        assert_eq!(
            (got.length, host.peek(helper, 0x100, 5)),
            (5, b"first".to_vec())
        );
    }

    #[test]
    fn a_receiver_with_a_bad_buffer_does_not_jam_the_mailbox() {
        let (mut ipc, mut host, server, client, inbox, send) = setup();
        // The test host's memory ends at `MEMORY`: this buffer is valid user space but
        // faults when written.
        let end = crate::testing::MEMORY as u64;
        let bad = UserSlice::new(end, 16, host.user_limit()).unwrap();
        let blocked = ipc.mailbox_receive(server, inbox, bad, Blocking::Forever, &mut host);
        assert!(blocked.unwrap().is_blocked());
        host.poke(client, 0, b"hello");
        // The sender's data is fine, so its send succeeds (the message is buffered) ...
        assert_eq!(
            ipc.mailbox_send(
                client,
                send,
                host.slice(0, 5),
                &[],
                Blocking::NonBlocking,
                &mut host
            ),
            Ok(Outcome::Done(()))
        );
        assert_eq!(host.take_wakes(), vec![(server, Wakeup::Retry)]);
        // ... and the fault is the receiver's to see when it retries.
        assert_eq!(
            ipc.mailbox_receive(server, inbox, bad, Blocking::Forever, &mut host),
            Err(Error::BadAddress)
        );
        let good = host.slice(0x100, 16);
        let got = ipc
            .mailbox_receive(server, inbox, good, Blocking::Forever, &mut host)
            .unwrap()
            .done()
            .unwrap();
        assert_eq!(got.length, 5);
        // A sender's bad buffer is the sender's fault, and counted nowhere.
        let blocked = ipc.mailbox_receive(server, inbox, good, Blocking::Forever, &mut host);
        assert!(blocked.unwrap().is_blocked());
        let before = ipc.ledger().global().total_bytes();
        let bad_payload = UserSlice::new(end - 2, 5, host.user_limit()).unwrap();
        assert_eq!(
            ipc.mailbox_send(
                client,
                send,
                bad_payload,
                &[],
                Blocking::NonBlocking,
                &mut host
            ),
            Err(Error::BadAddress)
        );
        assert_eq!(ipc.ledger().global().total_bytes(), before);
        assert_eq!(ipc.usage().queued_messages, 0);
    }

    #[test]
    fn full_mailbox_blocks_senders_and_wakes_them() {
        let (mut ipc, mut host, server, client, inbox, send) = setup();
        for _ in 0..MAILBOX_DEPTH {
            ipc.mailbox_send(
                client,
                send,
                host.slice(0, 1),
                &[],
                Blocking::NonBlocking,
                &mut host,
            )
            .unwrap()
            .done()
            .unwrap();
        }
        assert_eq!(
            ipc.mailbox_send(
                client,
                send,
                host.slice(0, 1),
                &[],
                Blocking::NonBlocking,
                &mut host
            ),
            Err(Error::WouldBlock)
        );
        assert!(
            ipc.mailbox_send(
                client,
                send,
                host.slice(0, 1),
                &[],
                Blocking::Forever,
                &mut host
            )
            .unwrap()
            .is_blocked()
        );
        ipc.mailbox_receive(
            server,
            inbox,
            host.slice(0, 8),
            Blocking::NonBlocking,
            &mut host,
        )
        .unwrap()
        .done()
        .unwrap();
        assert_eq!(host.take_wakes(), vec![(client, Wakeup::Retry)]);
    }

    #[test]
    fn handles_move_and_undelivered_ones_are_closed() {
        let (mut ipc, mut host, server, client, inbox, send) = setup();
        let semaphore = ipc.semaphore_create(client, 0).unwrap();
        let no_transfer = ipc
            .handle_duplicate(client, semaphore, Rights::WAIT | Rights::DUPLICATE)
            .unwrap();
        assert_eq!(
            ipc.mailbox_send(
                client,
                send,
                UserSlice::EMPTY,
                &[no_transfer],
                Blocking::NonBlocking,
                &mut host
            ),
            Err(Error::PermissionDenied)
        );
        assert_eq!(
            ipc.mailbox_send(
                client,
                send,
                UserSlice::EMPTY,
                &[semaphore, semaphore],
                Blocking::NonBlocking,
                &mut host
            ),
            Err(Error::InvalidArgument)
        );
        ipc.handle_close(client, no_transfer, &mut host).unwrap();
        ipc.mailbox_send(
            client,
            send,
            UserSlice::EMPTY,
            &[semaphore],
            Blocking::NonBlocking,
            &mut host,
        )
        .unwrap()
        .done()
        .unwrap();
        assert_eq!(
            ipc.handle_info(client, semaphore),
            Err(Error::StaleHandle),
            "moved out of the sender"
        );
        assert_eq!(ipc.usage().handles_in_flight, 1);
        assert_eq!(ipc.usage().semaphores, 1);
        // Send a second one and receive the first.
        let s2 = ipc.semaphore_create(client, 0).unwrap();
        ipc.mailbox_send(
            client,
            send,
            UserSlice::EMPTY,
            &[s2],
            Blocking::NonBlocking,
            &mut host,
        )
        .unwrap()
        .done()
        .unwrap();
        let got = ipc
            .mailbox_receive(
                server,
                inbox,
                UserSlice::EMPTY,
                Blocking::NonBlocking,
                &mut host,
            )
            .unwrap()
            .done()
            .unwrap();
        assert_eq!(got.handles.len(), 1);
        assert_eq!(
            ipc.handle_info(server, got.handles[0]).unwrap().kind,
            ObjectKind::Semaphore
        );
        // Closing the only receive handle discards the second message and its handle.
        ipc.handle_close(server, inbox, &mut host).unwrap();
        assert_eq!(ipc.usage().semaphores, 1);
        assert_eq!(ipc.usage().queued_messages, 0);
        assert_eq!(
            ipc.mailbox_send(
                client,
                send,
                UserSlice::EMPTY,
                &[],
                Blocking::NonBlocking,
                &mut host
            ),
            Err(Error::PeerClosed)
        );
    }

    #[test]
    fn last_receiver_closing_wakes_blocked_senders_into_peer_closed() {
        let (mut ipc, mut host, server, client, inbox, send) = setup();
        for _ in 0..MAILBOX_DEPTH {
            ipc.mailbox_send(
                client,
                send,
                host.slice(0, 1),
                &[],
                Blocking::NonBlocking,
                &mut host,
            )
            .unwrap()
            .done()
            .unwrap();
        }
        assert!(
            ipc.mailbox_send(
                client,
                send,
                host.slice(0, 1),
                &[],
                Blocking::Forever,
                &mut host
            )
            .unwrap()
            .is_blocked()
        );
        ipc.process_exit(server, &mut host).unwrap();
        assert_eq!(host.take_wakes(), vec![(client, Wakeup::Retry)]);
        assert_eq!(
            ipc.mailbox_send(
                client,
                send,
                host.slice(0, 1),
                &[],
                Blocking::Forever,
                &mut host
            ),
            Err(Error::PeerClosed)
        );
        let _ = inbox;
    }

    #[test]
    fn call_and_reply() {
        let (mut ipc, mut host, server, client, inbox, send) = setup();
        host.poke(client, 0, b"ping");
        assert!(
            ipc.mailbox_call(
                client,
                send,
                host.slice(0, 4),
                &[],
                host.slice(0x200, 16),
                Blocking::Forever,
                &mut host
            )
            .unwrap()
            .is_blocked()
        );
        let request = ipc
            .mailbox_receive(
                server,
                inbox,
                host.slice(0x100, 16),
                Blocking::NonBlocking,
                &mut host,
            )
            .unwrap()
            .done()
            .unwrap();
        let reply = request.reply.expect("a call carries a reply handle");
        assert_eq!(
            ipc.handle_info(server, reply).unwrap().kind,
            ObjectKind::Reply
        );
        host.poke(server, 0x300, b"pong!");
        assert_eq!(
            ipc.mailbox_reply(server, reply, host.slice(0x300, 17), &[], &mut host),
            Err(Error::MessageTooLarge { limit: 16 })
        );
        ipc.mailbox_reply(server, reply, host.slice(0x300, 5), &[], &mut host)
            .unwrap();
        let wakes = host.take_wakes();
        assert!(
            matches!(&wakes[..], [(c, Wakeup::Completed(Completion::Received(r)))] if *c == client && r.length == 5)
        );
        assert_eq!(host.peek(client, 0x200, 5), b"pong!");
        assert_eq!(
            ipc.mailbox_reply(server, reply, host.slice(0x300, 5), &[], &mut host),
            Err(Error::StaleHandle),
            "one-shot"
        );
        let g = *ipc.ledger().global();
        assert_eq!(g.copies(Mechanism::Mailbox, Direction::UserToUser).bytes, 5);
    }

    #[test]
    fn dropped_reply_handle_wakes_caller_with_peer_closed() {
        let (mut ipc, mut host, server, client, inbox, send) = setup();
        assert!(
            ipc.mailbox_call(
                client,
                send,
                UserSlice::EMPTY,
                &[],
                host.slice(0x200, 16),
                Blocking::Forever,
                &mut host
            )
            .unwrap()
            .is_blocked()
        );
        let request = ipc
            .mailbox_receive(
                server,
                inbox,
                UserSlice::EMPTY,
                Blocking::NonBlocking,
                &mut host,
            )
            .unwrap()
            .done()
            .unwrap();
        ipc.handle_close(server, request.reply.unwrap(), &mut host)
            .unwrap();
        assert_eq!(
            host.take_wakes(),
            vec![(client, Wakeup::Failed(Error::PeerClosed))]
        );
        // A timed-out caller makes the reply fail with PeerClosed.
        assert!(
            ipc.mailbox_call(
                client,
                send,
                UserSlice::EMPTY,
                &[],
                host.slice(0x200, 16),
                Blocking::Until(5),
                &mut host
            )
            .unwrap()
            .is_blocked()
        );
        let request = ipc
            .mailbox_receive(
                server,
                inbox,
                UserSlice::EMPTY,
                Blocking::NonBlocking,
                &mut host,
            )
            .unwrap()
            .done()
            .unwrap();
        assert_eq!(ipc.expire(5, &mut host), 1);
        assert_eq!(
            ipc.mailbox_reply(
                server,
                request.reply.unwrap(),
                UserSlice::EMPTY,
                &[],
                &mut host
            ),
            Err(Error::PeerClosed)
        );
        assert_eq!(ipc.usage().handles, 2, "reply handle consumed");
    }

    /// A client blocked in a call, and the server holding that call's reply handle.
    fn pending_call(
        ipc: &mut TestIpc,
        host: &mut TestHost,
        server: ProcessId,
        client: ProcessId,
        inbox: Handle,
        send: Handle,
    ) -> Handle {
        host.poke(client, 0, b"ping");
        let call = ipc.mailbox_call(
            client,
            send,
            host.slice(0, 4),
            &[],
            host.slice(0x200, 16),
            Blocking::Forever,
            host,
        );
        assert!(call.unwrap().is_blocked());
        let request = ipc
            .mailbox_receive(
                server,
                inbox,
                host.slice(0x100, 16),
                Blocking::NonBlocking,
                host,
            )
            .unwrap()
            .done()
            .unwrap();
        request.reply.expect("a call carries a reply handle")
    }

    #[test]
    fn reply_receive_answers_then_takes_a_buffered_message() {
        let (mut ipc, mut host, server, client, inbox, send) = setup();
        let reply = pending_call(&mut ipc, &mut host, server, client, inbox, send);
        let other = ipc.process_create().unwrap();
        let other_send = ipc
            .handle_grant(client, send, other, Rights::WRITE)
            .unwrap();
        host.poke(other, 0, b"next");
        let sent = ipc.mailbox_send(
            other,
            other_send,
            host.slice(0, 4),
            &[],
            Blocking::NonBlocking,
            &mut host,
        );
        assert_eq!(sent, Ok(Outcome::Done(())));
        ipc.ledger_reset();
        host.poke(server, 0x300, b"pong!");
        let got = ipc
            .mailbox_reply_receive(
                server,
                reply,
                host.slice(0x300, 5),
                &[],
                inbox,
                host.slice(0x100, 16),
                Blocking::Forever,
                &mut host,
            )
            .unwrap()
            .done()
            .expect("a message was waiting");
        assert_eq!((got.length, got.badge, got.reply), (4, 42, None));
        assert_eq!(host.peek(server, 0x100, 4), b"next");
        let wakes = host.take_wakes();
        assert!(
            matches!(&wakes[..], [(c, Wakeup::Completed(Completion::Received(r)))] if *c == client && r.length == 5),
            "{wakes:?}"
        );
        assert_eq!(host.peek(client, 0x200, 5), b"pong!");
        let g = *ipc.ledger().global();
        assert_eq!(
            g.copies(Mechanism::Mailbox, Direction::UserToUser),
            Counter {
                operations: 1,
                bytes: 5
            },
            "the reply: one user-to-user copy"
        );
        assert_eq!(
            g.copies(Mechanism::Mailbox, Direction::KernelToUser),
            Counter {
                operations: 1,
                bytes: 4
            },
            "the buffered message's second copy"
        );
        assert_eq!(ipc.handle_info(server, reply), Err(Error::StaleHandle));
    }

    #[test]
    fn reply_receive_blocks_and_a_later_call_hands_over_directly() {
        let (mut ipc, mut host, server, client, inbox, send) = setup();
        let reply = pending_call(&mut ipc, &mut host, server, client, inbox, send);
        let answer = ipc.mailbox_reply_receive(
            server,
            reply,
            host.slice(0x300, 3),
            &[],
            inbox,
            host.slice(0x100, 16),
            Blocking::Forever,
            &mut host,
        );
        assert!(answer.unwrap().is_blocked());
        assert!(ipc.is_waiting(server));
        let wakes = host.take_wakes();
        assert!(
            matches!(&wakes[..], [(c, Wakeup::Completed(Completion::Received(_)))] if *c == client)
        );
        // The client calls again: its request goes straight into the recorded buffer.
        ipc.ledger_reset();
        host.poke(client, 0, b"again");
        let call = ipc.mailbox_call(
            client,
            send,
            host.slice(0, 5),
            &[],
            host.slice(0x200, 16),
            Blocking::Forever,
            &mut host,
        );
        assert!(call.unwrap().is_blocked());
        let wakes = host.take_wakes();
        let [(who, Wakeup::Completed(Completion::Received(received)))] = &wakes[..] else {
            panic!("{wakes:?}")
        };
        assert_eq!((*who, received.length, received.badge), (server, 5, 42));
        assert!(received.reply.is_some(), "the next reply handle");
        assert_eq!(host.peek(server, 0x100, 5), b"again");
        let g = *ipc.ledger().global();
        assert_eq!(g.copies(Mechanism::Mailbox, Direction::UserToUser).bytes, 5);
        assert_eq!(g.total_bytes(), 5, "exactly one copy");
    }

    #[test]
    fn reply_receive_counts_what_reply_then_receive_count() {
        // The same exchange done both ways leaves identical ledgers and state.
        let run = |combined: bool| {
            let (mut ipc, mut host, server, client, inbox, send) = setup();
            let mut answers = Vec::new();
            let mut reply = pending_call(&mut ipc, &mut host, server, client, inbox, send);
            for round in 0..3u8 {
                host.poke(server, 0x300, &[round; 7]);
                let answer = if combined {
                    ipc.mailbox_reply_receive(
                        server,
                        reply,
                        host.slice(0x300, 7),
                        &[],
                        inbox,
                        host.slice(0x100, 16),
                        Blocking::Forever,
                        &mut host,
                    )
                } else {
                    ipc.mailbox_reply(server, reply, host.slice(0x300, 7), &[], &mut host)
                        .unwrap();
                    ipc.mailbox_receive(
                        server,
                        inbox,
                        host.slice(0x100, 16),
                        Blocking::Forever,
                        &mut host,
                    )
                };
                assert!(answer.unwrap().is_blocked());
                let call = ipc.mailbox_call(
                    client,
                    send,
                    host.slice(0, 9),
                    &[],
                    host.slice(0x200, 16),
                    Blocking::Forever,
                    &mut host,
                );
                assert!(call.unwrap().is_blocked());
                let wakes = host.take_wakes();
                let Some((_, Wakeup::Completed(Completion::Received(request)))) = wakes.last()
                else {
                    panic!("{wakes:?}")
                };
                reply = request.reply.unwrap();
                answers.push(host.peek(client, 0x200, 7));
            }
            (*ipc.ledger().global(), ipc.usage(), answers)
        };
        assert_eq!(run(true), run(false));
    }

    #[test]
    fn reply_receive_fails_whole_when_the_reply_fails() {
        let (mut ipc, mut host, server, client, inbox, send) = setup();
        let reply = pending_call(&mut ipc, &mut host, server, client, inbox, send);
        // A message is waiting: none of the failures below may take it.
        let other = ipc.process_create().unwrap();
        let other_send = ipc
            .handle_grant(client, send, other, Rights::WRITE)
            .unwrap();
        let sent = ipc.mailbox_send(
            other,
            other_send,
            host.slice(0, 4),
            &[],
            Blocking::NonBlocking,
            &mut host,
        );
        assert_eq!(sent, Ok(Outcome::Done(())));
        let attempt = |ipc: &mut TestIpc, host: &mut TestHost, reply, length, mailbox| {
            ipc.mailbox_reply_receive(
                server,
                reply,
                host.slice(0x300, length),
                &[],
                mailbox,
                host.slice(0x100, 16),
                Blocking::NonBlocking,
                host,
            )
        };
        // Too large for the caller's buffer: the handle is kept.
        assert_eq!(
            attempt(&mut ipc, &mut host, reply, 17, inbox),
            Err(Error::MessageTooLarge { limit: 16 })
        );
        // Not a reply handle.
        assert_eq!(
            attempt(&mut ipc, &mut host, inbox, 1, inbox),
            Err(Error::WrongObjectKind)
        );
        // A mailbox handle that cannot receive: checked before the reply goes out.
        let send_only = ipc.mailbox_mint(server, inbox, Rights::WRITE, 0).unwrap();
        assert_eq!(
            attempt(&mut ipc, &mut host, reply, 1, send_only),
            Err(Error::PermissionDenied)
        );
        assert_eq!(
            attempt(&mut ipc, &mut host, reply, 1, Handle::from_raw(0)),
            Err(Error::BadHandle)
        );
        assert!(ipc.is_waiting(client), "no reply was delivered");
        assert_eq!(ipc.usage().queued_messages, 1, "nothing was received");
        // Moving the receive handle away with the reply is refused.
        assert_eq!(
            ipc.mailbox_reply_receive(
                server,
                reply,
                UserSlice::EMPTY,
                &[inbox],
                inbox,
                host.slice(0x100, 16),
                Blocking::NonBlocking,
                &mut host,
            ),
            Err(Error::InvalidArgument)
        );
        // The caller gave up: PeerClosed, the handle is consumed, the message stays.
        ipc.handle_close(client, send, &mut host).unwrap();
        ipc.process_exit(client, &mut host).unwrap();
        assert_eq!(
            attempt(&mut ipc, &mut host, reply, 1, inbox),
            Err(Error::PeerClosed)
        );
        assert_eq!(ipc.handle_info(server, reply), Err(Error::StaleHandle));
        assert_eq!(ipc.usage().queued_messages, 1, "nothing was received");
        assert_eq!(
            attempt(&mut ipc, &mut host, reply, 1, inbox),
            Err(Error::StaleHandle)
        );
    }

    #[test]
    fn mint_requires_unbadged_source() {
        let (mut ipc, _host, server, client, inbox, send) = setup();
        assert_eq!(
            ipc.mailbox_mint(client, send, Rights::WRITE, 7),
            Err(Error::PermissionDenied)
        );
        let b = ipc.mailbox_mint(server, inbox, Rights::WRITE, 7).unwrap();
        assert_eq!(ipc.handle_info(server, b).unwrap().badge, 7);
        assert_eq!(
            ipc.mailbox_mint(server, b, Rights::WRITE, 8),
            Err(Error::PermissionDenied)
        );
    }

    #[test]
    fn a_mailbox_whose_only_receive_handle_is_in_its_own_queue_is_collected() {
        let mut ipc = TestIpc::new();
        let mut host = TestHost::new();
        let a = ipc.process_create().unwrap();
        let inbox = ipc.mailbox_create(a).unwrap();
        let region = ipc.region_create(a, 1, &mut host).unwrap();
        let send = ipc
            .mailbox_mint(a, inbox, Rights::WRITE | Rights::TRANSFER, 0)
            .unwrap();
        // The region travels in the first message, the mailbox's only receive handle in
        // the second: from then on only the mailbox itself could receive either.
        let first = ipc.mailbox_send(
            a,
            send,
            host.slice(0, 0),
            &[region],
            Blocking::NonBlocking,
            &mut host,
        );
        assert_eq!(first, Ok(Outcome::Done(())));
        assert_eq!(ipc.usage().regions, 1);
        let second = ipc.mailbox_send(
            a,
            send,
            host.slice(0, 0),
            &[inbox],
            Blocking::NonBlocking,
            &mut host,
        );
        assert_eq!(second, Ok(Outcome::Done(())));
        let usage = ipc.usage();
        assert_eq!(
            (usage.queued_messages, usage.regions, usage.frames_held),
            (0, 0, 0),
            "{usage:?}"
        );
        // Senders learn nobody will ever receive.
        assert_eq!(
            ipc.mailbox_send(
                a,
                send,
                host.slice(0, 0),
                &[],
                Blocking::NonBlocking,
                &mut host
            ),
            Err(Error::PeerClosed)
        );
        ipc.handle_close(a, send, &mut host).unwrap();
        assert_eq!(ipc.usage().mailboxes, 0);
    }

    #[test]
    fn a_loop_of_mailboxes_is_collected_when_its_last_outside_handle_closes() {
        let mut ipc = TestIpc::new();
        let mut host = TestHost::new();
        let a = ipc.process_create().unwrap();
        let first = ipc.mailbox_create(a).unwrap();
        let second = ipc.mailbox_create(a).unwrap();
        // first's receive handle travels in second, second's in first.
        let to_first = ipc
            .mailbox_mint(a, first, Rights::WRITE | Rights::TRANSFER, 0)
            .unwrap();
        let to_second = ipc
            .mailbox_mint(a, second, Rights::WRITE | Rights::TRANSFER, 0)
            .unwrap();
        assert_eq!(
            ipc.mailbox_send(
                a,
                to_second,
                host.slice(0, 0),
                &[first],
                Blocking::NonBlocking,
                &mut host,
            ),
            Ok(Outcome::Done(()))
        );
        // Still receivable: `a` holds second's receive handle, which can fetch first's.
        assert_eq!(ipc.usage().queued_messages, 1);
        assert_eq!(
            ipc.mailbox_send(
                a,
                to_first,
                host.slice(0, 0),
                &[second],
                Blocking::NonBlocking,
                &mut host,
            ),
            Ok(Outcome::Done(()))
        );
        let usage = ipc.usage();
        assert_eq!(usage.queued_messages, 0, "{usage:?}");
        ipc.process_exit(a, &mut host).unwrap();
        assert_eq!(ipc.usage(), Usage::default());
    }

    #[test]
    fn a_receive_handle_passed_on_stays_deliverable() {
        let (mut ipc, mut host, server, client, inbox, send) = setup();
        // The server hands its receive handle to the client through a second mailbox the
        // client can receive from: nothing may be discarded.
        let courier = ipc.mailbox_create(client).unwrap();
        let to_courier = ipc
            .mailbox_mint(client, courier, Rights::WRITE | Rights::TRANSFER, 0)
            .unwrap();
        let server_to_courier = ipc
            .handle_grant(client, to_courier, server, Rights::WRITE)
            .unwrap();
        assert_eq!(
            ipc.mailbox_send(
                client,
                send,
                host.slice(0, 0),
                &[],
                Blocking::NonBlocking,
                &mut host,
            ),
            Ok(Outcome::Done(()))
        );
        assert_eq!(
            ipc.mailbox_send(
                server,
                server_to_courier,
                host.slice(0, 0),
                &[inbox],
                Blocking::NonBlocking,
                &mut host,
            ),
            Ok(Outcome::Done(()))
        );
        assert_eq!(
            ipc.usage().queued_messages,
            2,
            "both messages wait to be received"
        );
        let got = ipc
            .mailbox_receive(
                client,
                courier,
                host.slice(0, 0),
                Blocking::NonBlocking,
                &mut host,
            )
            .unwrap()
            .done()
            .unwrap();
        let inbox_now = got.handles[0];
        let message = ipc
            .mailbox_receive(
                client,
                inbox_now,
                host.slice(0, 0),
                Blocking::NonBlocking,
                &mut host,
            )
            .unwrap();
        assert!(matches!(message, Outcome::Done(_)), "{message:?}");
    }
}
