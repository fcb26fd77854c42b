//! Message queues: named, bounded, priority-ordered queues of whole messages (POSIX
//! `mq_*`-like).
//!
//! A queue is created under a name with two limits fixed for its lifetime:
//! `max_messages` (at most the configuration's `QUEUE_DEPTH`, by default
//! [`crate::MESSAGE_QUEUE_DEPTH`]) and `max_message_size` (at most the configuration's
//! `PAYLOAD`). Each message has a priority in `0..PRIORITY_LEVELS`
//! (higher is more urgent). Receive always takes the most urgent message, and among equal
//! priorities the oldest: every message gets a sequence number when sent and the queue
//! picks the largest priority, then the smallest sequence.
//!
//! * A message longer than `max_message_size` fails with [`Error::MessageTooLarge`].
//! * A receive buffer shorter than `max_message_size` fails with [`Error::BufferTooSmall`]
//!   — even if the next message would fit, as in POSIX, so a program cannot be surprised
//!   later.
//! * A full queue blocks senders, an empty one receivers — or `WouldBlock`, or, with
//!   [`Blocking::Until`], [`Error::TimedOut`] at the deadline. Blocked parties are woken to
//!   retry when the other side makes progress.
//! * Every message is copied twice: user→kernel on send, kernel→user on receive.
//! * [`Ipc::mqueue_unlink`] removes the name at once; the queue itself lives on until its
//!   last handle closes. A queue that was never unlinked lives on while linked, even with
//!   no handle open (POSIX persistence).

use crate::PRIORITY_LEVELS;
use crate::accounting::Mechanism;
use crate::error::Error;
use crate::handle::Handle;
use crate::host::{Host, ProcessId};
use crate::kernel::Ipc;
use crate::name::Name;
use crate::object::{Capability, Key, Object, ObjectKind, ObjectRef};
use crate::rights::Rights;
use crate::umem::UserSlice;
use crate::wait::{Blocking, Completion, Outcome, WaitOn, Wakeup};

/// A received message's length and priority.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueuedMessage {
    /// Bytes written to the receive buffer.
    pub length: usize,
    /// The priority it was sent with.
    pub priority: u8,
}

/// How [`Ipc::mqueue_open`] opens a queue (POSIX `O_RDONLY`, `O_WRONLY`, `O_RDWR`): the
/// handle gets READ, WRITE or both (plus TRANSFER and DUPLICATE).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QueueOpen {
    /// Receive only.
    ReadOnly,
    /// Send only.
    WriteOnly,
    /// Send and receive.
    ReadWrite,
}

/// The limits of a queue (see [`Ipc::mqueue_attributes`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueAttributes {
    /// Capacity in messages.
    pub max_messages: usize,
    /// Largest message in bytes.
    pub max_message_size: usize,
    /// Messages currently queued.
    pub queued: usize,
}

struct QueueSlot<const PAYLOAD: usize> {
    used: bool,
    priority: u8,
    sequence: u64,
    length: usize,
    data: [u8; PAYLOAD],
}

/// A message queue: fixed slots, each free or holding one message.
pub(crate) struct MessageQueue<const PAYLOAD: usize, const QUEUE_DEPTH: usize> {
    name: Name,
    linked: bool,
    max_messages: usize,
    max_message_size: usize,
    count: usize,
    next_sequence: u64,
    slots: [QueueSlot<PAYLOAD>; QUEUE_DEPTH],
}

impl<const PAYLOAD: usize, const QUEUE_DEPTH: usize> Object for MessageQueue<PAYLOAD, QUEUE_DEPTH> {
    const EMPTY: Self = MessageQueue {
        name: Name::EMPTY,
        linked: false,
        max_messages: 0,
        max_message_size: 0,
        count: 0,
        next_sequence: 0,
        slots: [const {
            QueueSlot {
                used: false,
                priority: 0,
                sequence: 0,
                length: 0,
                data: [0; PAYLOAD],
            }
        }; QUEUE_DEPTH],
    };
}

impl<const PAYLOAD: usize, const QUEUE_DEPTH: usize> MessageQueue<PAYLOAD, QUEUE_DEPTH> {
    pub(crate) fn queued(&self) -> usize {
        self.count
    }

    /// The slot of the next message to receive: highest priority, then oldest.
    /// The scan stops once it has seen all `count` queued messages: a send takes
    /// the first free slot, so that is usually within the first few of the
    /// `QUEUE_DEPTH` slots (each a whole payload wide).
    fn next(&self) -> Option<usize> {
        // A plain loop: an iterator chain here costs the debug build more than
        // the scan it saves.
        let mut best: Option<usize> = None;
        let (mut seen, mut index) = (0, 0);
        while seen < self.count && index < QUEUE_DEPTH {
            let slot = &self.slots[index];
            if slot.used {
                seen += 1;
                let better = match best {
                    None => true,
                    Some(best) => {
                        let best = &self.slots[best];
                        slot.priority > best.priority
                            || (slot.priority == best.priority && slot.sequence < best.sequence)
                    }
                };
                if better {
                    best = Some(index);
                }
            }
            index += 1;
        }
        best
    }
}

const QUEUE_RIGHTS: Rights = Rights::READ
    .union(Rights::WRITE)
    .union(Rights::TRANSFER)
    .union(Rights::DUPLICATE);

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
    /// Creates queue `name` and opens it (READ, WRITE, TRANSFER, DUPLICATE).
    ///
    /// `max_messages` must be in `1..=MESSAGE_QUEUE_DEPTH` and `max_message_size` in
    /// `1..=PAYLOAD` ([`Error::InvalidArgument`]). Fails with [`Error::AlreadyExists`] if
    /// the name is taken.
    ///
    /// # Example
    ///
    /// ```
    /// # use kipc::*;
    /// # #[allow(unused)]
    /// # fn example(ipc: &mut DefaultIpc, host: &mut impl Host, caller: ProcessId, peer: ProcessId, handle: Handle, buffer: UserSlice) -> Result<(), Error> {
    /// // Up to 8 messages of at most 64 bytes:
    /// let queue = ipc.mqueue_create(caller, b"jobs", 8, 64)?;
    /// # Ok(()) }
    /// ```
    pub fn mqueue_create(
        &mut self,
        caller: ProcessId,
        name: &[u8],
        max_messages: usize,
        max_message_size: usize,
    ) -> Result<Handle, Error> {
        let name = Name::new(name)?;
        if !(1..=QUEUE_DEPTH).contains(&max_messages) || !(1..=PAYLOAD).contains(&max_message_size)
        {
            return Err(Error::InvalidArgument);
        }
        self.reserve_handles(caller, 1)?;
        if self.queue_find(&name).is_some() {
            return Err(Error::AlreadyExists);
        }
        let (key, queue) = self.queues.allocate(caller, L::QUOTAS.objects_per_kind)?;
        queue.name = name;
        queue.linked = true;
        queue.max_messages = max_messages;
        queue.max_message_size = max_message_size;
        queue.count = 0;
        queue.next_sequence = 0;
        for slot in queue.slots.iter_mut() {
            slot.used = false;
        }
        self.install_new(caller, queue_capability(key))
    }

    /// Opens existing queue `name`; the handle has TRANSFER, DUPLICATE and, as `mode`
    /// says, READ, WRITE or both. [`Error::NotFound`] if no linked queue has that name.
    ///
    /// # Example
    ///
    /// ```
    /// # use kipc::*;
    /// # #[allow(unused)]
    /// # fn example(ipc: &mut DefaultIpc, host: &mut impl Host, caller: ProcessId, peer: ProcessId, handle: Handle, buffer: UserSlice) -> Result<(), Error> {
    /// let jobs = ipc.mqueue_open(caller, b"jobs", QueueOpen::WriteOnly)?;
    /// # Ok(()) }
    /// ```
    pub fn mqueue_open(
        &mut self,
        caller: ProcessId,
        name: &[u8],
        mode: QueueOpen,
    ) -> Result<Handle, Error> {
        let key = self.queue_find(&Name::new(name)?).ok_or(Error::NotFound)?;
        let mut capability = queue_capability(key);
        capability.rights = match mode {
            QueueOpen::ReadOnly => capability.rights.difference(Rights::WRITE),
            QueueOpen::WriteOnly => capability.rights.difference(Rights::READ),
            QueueOpen::ReadWrite => capability.rights,
        };
        self.install_new(caller, capability)
    }

    /// Removes the name; the queue lives until its last handle closes.
    ///
    /// # Example
    ///
    /// ```
    /// # use kipc::*;
    /// # #[allow(unused)]
    /// # fn example(ipc: &mut DefaultIpc, host: &mut impl Host, caller: ProcessId, peer: ProcessId, handle: Handle, buffer: UserSlice) -> Result<(), Error> {
    /// ipc.mqueue_unlink(caller, b"jobs")?; // the queue lives on until its last handle closes
    /// # Ok(()) }
    /// ```
    pub fn mqueue_unlink(&mut self, caller: ProcessId, name: &[u8]) -> Result<(), Error> {
        self.process(caller)?;
        let key = self.queue_find(&Name::new(name)?).ok_or(Error::NotFound)?;
        if let Some(queue) = self.queues.get_mut(key) {
            queue.linked = false;
        }
        self.queue_destroy_if_unused(key);
        Ok(())
    }

    /// The queue's limits and current length (any handle to it).
    ///
    /// # Example
    ///
    /// ```
    /// # use kipc::*;
    /// # #[allow(unused)]
    /// # fn example(ipc: &mut DefaultIpc, host: &mut impl Host, caller: ProcessId, peer: ProcessId, handle: Handle, buffer: UserSlice) -> Result<(), Error> {
    /// let attributes = ipc.mqueue_attributes(caller, handle)?;
    /// let room = attributes.max_messages - attributes.queued;
    /// # Ok(()) }
    /// ```
    pub fn mqueue_attributes(
        &self,
        caller: ProcessId,
        handle: Handle,
    ) -> Result<QueueAttributes, Error> {
        let key = self.queue_key(caller, handle, Rights::empty())?;
        let queue = self.queues.get(key).ok_or(Error::BadHandle)?;
        Ok(QueueAttributes {
            max_messages: queue.max_messages,
            max_message_size: queue.max_message_size,
            queued: queue.count,
        })
    }

    /// Sends `message` with `priority` (`< PRIORITY_LEVELS`). Needs WRITE. A full queue
    /// blocks per `blocking`; on wake-up, retry.
    ///
    /// # Example
    ///
    /// ```
    /// # use kipc::*;
    /// # #[allow(unused)]
    /// # fn example(ipc: &mut DefaultIpc, host: &mut impl Host, caller: ProcessId, peer: ProcessId, handle: Handle, buffer: UserSlice) -> Result<(), Error> {
    /// // Priority 9 overtakes everything sent with a lower one:
    /// let outcome = ipc.mqueue_send(caller, handle, buffer.prefix(8), 9, Blocking::Forever, host)?;
    /// # Ok(()) }
    /// ```
    pub fn mqueue_send<H: Host>(
        &mut self,
        caller: ProcessId,
        handle: Handle,
        message: UserSlice,
        priority: u8,
        blocking: Blocking,
        host: &mut H,
    ) -> Result<Outcome<()>, Error> {
        let key = self.queue_key(caller, handle, Rights::WRITE)?;
        if priority >= PRIORITY_LEVELS {
            return Err(Error::InvalidArgument);
        }
        let queue = self.queues.get_mut(key).ok_or(Error::BadHandle)?;
        if message.len() > queue.max_message_size {
            return Err(Error::MessageTooLarge {
                limit: queue.max_message_size,
            });
        }
        if queue.count >= queue.max_messages {
            crate::umem::refuse_doomed_wait(host, caller, message, blocking)?;
            return self.block(caller, WaitOn::QueueSend(key), blocking, host);
        }
        let sequence = queue.next_sequence;
        let slot = queue
            .slots
            .iter_mut()
            .find(|s| !s.used)
            .ok_or(Error::WouldBlock)?;
        self.ledger.copy_in(
            host,
            caller,
            Mechanism::MessageQueue,
            message,
            &mut slot.data[..message.len()],
        )?;
        slot.used = true;
        slot.priority = priority;
        slot.sequence = sequence;
        slot.length = message.len();
        queue.next_sequence += 1;
        queue.count += 1;
        self.serve_receivers(key, host);
        Ok(Outcome::Done(()))
    }

    /// Receives the most urgent (then oldest) message into `buffer`, which must hold
    /// `max_message_size` bytes. Needs READ. An empty queue blocks per `blocking`, with
    /// the buffer recorded: the next send fills it and completes the receive
    /// (`Wakeup::Completed(Completion::Dequeued(message))`).
    ///
    /// # Example
    ///
    /// ```
    /// # use kipc::*;
    /// # #[allow(unused)]
    /// # fn example(ipc: &mut DefaultIpc, host: &mut impl Host, caller: ProcessId, peer: ProcessId, handle: Handle, buffer: UserSlice) -> Result<(), Error> {
    /// if let Outcome::Done(message) = ipc.mqueue_receive(caller, handle, buffer, Blocking::NonBlocking, host)? {
    ///     let (length, priority) = (message.length, message.priority);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn mqueue_receive<H: Host>(
        &mut self,
        caller: ProcessId,
        handle: Handle,
        buffer: UserSlice,
        blocking: Blocking,
        host: &mut H,
    ) -> Result<Outcome<QueuedMessage>, Error> {
        let key = self.queue_key(caller, handle, Rights::READ)?;
        let queue = self.queues.get_mut(key).ok_or(Error::BadHandle)?;
        if buffer.len() < queue.max_message_size {
            return Err(Error::BufferTooSmall {
                needed: queue.max_message_size,
            });
        }
        if queue.next().is_none() {
            let wait = WaitOn::QueueReceive { queue: key, buffer };
            return self.block(caller, wait, blocking, host);
        }
        let message = self.take_message(caller, key, buffer, host)?;
        Ok(Outcome::Done(message))
    }

    /// Copies the queue's most urgent message into `receiver`'s `buffer` and removes
    /// it; senders waiting for room retry. The queue must hold a message.
    fn take_message<H: Host>(
        &mut self,
        receiver: ProcessId,
        key: Key,
        buffer: UserSlice,
        host: &mut H,
    ) -> Result<QueuedMessage, Error> {
        let queue = self.queues.get_mut(key).ok_or(Error::BadHandle)?;
        let index = queue.next().ok_or(Error::WouldBlock)?;
        let slot = &mut queue.slots[index];
        let length = slot.length;
        self.ledger.copy_out(
            host,
            receiver,
            Mechanism::MessageQueue,
            buffer.prefix(length),
            &slot.data[..length],
        )?;
        slot.used = false;
        let priority = slot.priority;
        queue.count -= 1;
        self.wake_all(Wakeup::Retry, host, |on| *on == WaitOn::QueueSend(key));
        Ok(QueuedMessage { length, priority })
    }

    /// A message arrived: completes the receives parked on this queue, oldest first,
    /// while it holds messages, each with the most urgent message in its recorded
    /// buffer (`Completion::Dequeued`, the same copies its own receive makes). A
    /// receiver whose buffer faults gets `BadAddress` and the message stays.
    fn serve_receivers<H: Host>(&mut self, key: Key, host: &mut H) {
        while self
            .queues
            .get(key)
            .is_some_and(|queue| queue.next().is_some())
        {
            let waiting = self.oldest_waiter(
                |on| matches!(on, WaitOn::QueueReceive { queue, .. } if *queue == key),
            );
            let Some((receiver, WaitOn::QueueReceive { buffer, .. })) = waiting else {
                break;
            };
            let wakeup = match self.take_message(receiver, key, buffer, host) {
                Ok(message) => Wakeup::Completed(Completion::Dequeued(message)),
                Err(error) => Wakeup::Failed(error),
            };
            self.finish_wait(receiver, wakeup, host);
        }
    }

    // ------------------------------------------------------------------ internals

    fn queue_find(&self, name: &Name) -> Option<Key> {
        self.queues
            .iter_live()
            .find(|(_, q)| q.linked && q.name == *name)
            .map(|(key, _)| key)
    }

    fn queue_key(&self, caller: ProcessId, handle: Handle, needed: Rights) -> Result<Key, Error> {
        match self
            .lookup(caller, handle, ObjectKind::MessageQueue, needed)?
            .object
        {
            ObjectRef::MessageQueue(key) => Ok(key),
            _ => Err(Error::WrongObjectKind),
        }
    }

    fn queue_destroy_if_unused(&mut self, key: Key) {
        if self
            .queues
            .slot(key)
            .is_some_and(|s| s.references == 0 && !s.value.linked)
        {
            self.queues.free(key);
        }
    }

    pub(crate) fn queue_released(&mut self, key: Key) {
        if let Some(slot) = self.queues.slot_mut(key) {
            slot.references -= 1;
        }
        self.queue_destroy_if_unused(key);
    }
}

const fn queue_capability(key: Key) -> Capability {
    Capability {
        object: ObjectRef::MessageQueue(key),
        rights: QUEUE_RIGHTS,
        badge: 0,
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::{TestHost, TestIpc};
    use crate::*;

    #[test]
    fn priority_then_fifo_order() {
        let mut ipc = TestIpc::new();
        let mut host = TestHost::new();
        let a = ipc.process_create().unwrap();
        let q = ipc.mqueue_create(a, b"jobs", 4, 8).unwrap();
        for (i, priority) in [1u8, 5, 1, 5].iter().enumerate() {
            host.poke(a, i as u64 * 8, &[i as u8; 8]);
            assert_eq!(
                ipc.mqueue_send(
                    a,
                    q,
                    host.slice(i as u64 * 8, 8),
                    *priority,
                    Blocking::NonBlocking,
                    &mut host
                ),
                Ok(Outcome::Done(()))
            );
        }
        assert_eq!(
            ipc.mqueue_send(a, q, host.slice(0, 8), 0, Blocking::NonBlocking, &mut host),
            Err(Error::WouldBlock)
        );
        let mut order = Vec::new();
        for _ in 0..4 {
            let m = ipc
                .mqueue_receive(a, q, host.slice(0x100, 8), Blocking::NonBlocking, &mut host)
                .unwrap()
                .done()
                .unwrap();
            order.push((m.priority, host.peek(a, 0x100, 1)[0]));
        }
        assert_eq!(order, [(5, 1), (5, 3), (1, 0), (1, 2)]);
        assert_eq!(
            ipc.mqueue_receive(a, q, host.slice(0x100, 8), Blocking::NonBlocking, &mut host),
            Err(Error::WouldBlock)
        );
    }

    #[test]
    fn limits_and_errors() {
        let mut ipc = TestIpc::new();
        let mut host = TestHost::new();
        let a = ipc.process_create().unwrap();
        assert_eq!(
            ipc.mqueue_create(a, b"q", 0, 8),
            Err(Error::InvalidArgument)
        );
        assert_eq!(
            ipc.mqueue_create(a, b"q", 4, 65),
            Err(Error::InvalidArgument)
        );
        let q = ipc.mqueue_create(a, b"q", 2, 8).unwrap();
        assert_eq!(ipc.mqueue_create(a, b"q", 2, 8), Err(Error::AlreadyExists));
        assert_eq!(
            ipc.mqueue_send(a, q, host.slice(0, 9), 0, Blocking::NonBlocking, &mut host),
            Err(Error::MessageTooLarge { limit: 8 })
        );
        assert_eq!(
            ipc.mqueue_send(
                a,
                q,
                host.slice(0, 1),
                PRIORITY_LEVELS,
                Blocking::NonBlocking,
                &mut host
            ),
            Err(Error::InvalidArgument)
        );
        assert_eq!(
            ipc.mqueue_receive(a, q, host.slice(0, 7), Blocking::NonBlocking, &mut host),
            Err(Error::BufferTooSmall { needed: 8 })
        );
        host.now = 10;
        assert_eq!(
            ipc.mqueue_receive(a, q, host.slice(0, 8), Blocking::Until(10), &mut host),
            Err(Error::TimedOut)
        );
        assert!(
            ipc.mqueue_receive(a, q, host.slice(0, 8), Blocking::Until(20), &mut host)
                .unwrap()
                .is_blocked()
        );
        assert_eq!(ipc.expire(20, &mut host), 1);
        assert_eq!(ipc.mqueue_attributes(a, q).unwrap().max_messages, 2);
    }

    #[test]
    fn open_modes_give_only_the_rights_asked_for() {
        let mut ipc = TestIpc::new();
        let mut host = TestHost::new();
        let a = ipc.process_create().unwrap();
        let q = ipc.mqueue_create(a, b"q", 2, 8).unwrap();
        let reader = ipc.mqueue_open(a, b"q", QueueOpen::ReadOnly).unwrap();
        let writer = ipc.mqueue_open(a, b"q", QueueOpen::WriteOnly).unwrap();
        let both = ipc.mqueue_open(a, b"q", QueueOpen::ReadWrite).unwrap();
        let message = host.slice(0, 4);
        assert_eq!(
            ipc.mqueue_send(a, reader, message, 0, Blocking::NonBlocking, &mut host),
            Err(Error::PermissionDenied)
        );
        assert_eq!(
            ipc.mqueue_send(a, writer, message, 0, Blocking::NonBlocking, &mut host),
            Ok(Outcome::Done(()))
        );
        assert_eq!(
            ipc.mqueue_receive(
                a,
                writer,
                host.slice(8, 8),
                Blocking::NonBlocking,
                &mut host
            ),
            Err(Error::PermissionDenied)
        );
        assert!(matches!(
            ipc.mqueue_receive(
                a,
                reader,
                host.slice(8, 8),
                Blocking::NonBlocking,
                &mut host
            ),
            Ok(Outcome::Done(_))
        ));
        assert_eq!(
            ipc.handle_info(a, both).unwrap().rights,
            ipc.handle_info(a, q).unwrap().rights
        );
    }

    #[test]
    fn unlink_keeps_queue_until_last_handle() {
        let mut ipc = TestIpc::new();
        let mut host = TestHost::new();
        let a = ipc.process_create().unwrap();
        let b = ipc.process_create().unwrap();
        let q = ipc.mqueue_create(a, b"q", 2, 8).unwrap();
        let qb = ipc.mqueue_open(b, b"q", QueueOpen::ReadWrite).unwrap();
        assert!(
            ipc.mqueue_receive(b, qb, host.slice(0, 8), Blocking::Forever, &mut host)
                .unwrap()
                .is_blocked()
        );
        ipc.mqueue_unlink(a, b"q").unwrap();
        assert_eq!(
            ipc.mqueue_open(a, b"q", QueueOpen::ReadWrite),
            Err(Error::NotFound)
        );
        host.poke(a, 0, b"still");
        ipc.mqueue_send(a, q, host.slice(0, 5), 3, Blocking::NonBlocking, &mut host)
            .unwrap()
            .done()
            .unwrap();
        // The parked receive got it, in the buffer it recorded: no retry.
        assert_eq!(
            host.take_wakes(),
            vec![(
                b,
                Wakeup::Completed(Completion::Dequeued(QueuedMessage {
                    length: 5,
                    priority: 3
                }))
            )]
        );
        assert_eq!(host.peek(b, 0, 5), b"still".to_vec());
        ipc.handle_close(a, q, &mut host).unwrap();
        assert_eq!(ipc.usage().message_queues, 1);
        ipc.handle_close(b, qb, &mut host).unwrap();
        assert_eq!(ipc.usage().message_queues, 0);
        // A linked queue persists with no handle open.
        let q2 = ipc.mqueue_create(a, b"q", 2, 8).unwrap();
        ipc.handle_close(a, q2, &mut host).unwrap();
        assert_eq!(ipc.usage().message_queues, 1);
        ipc.mqueue_unlink(a, b"q").unwrap();
        assert_eq!(ipc.usage().message_queues, 0);
    }
}
