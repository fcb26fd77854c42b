//! The mailbox fast path: the two halves of a client–server round trip, done in
//! one step each when both sides are where a round trip usually finds them
//! (after seL4's `fastpath_call` and `fastpath_reply_recv`).
//!
//! * [`Ipc::mailbox_call_fast`]: a call to a mailbox whose server already waits
//!   in a receive. The message goes straight into the server's buffer, the server
//!   gets its reply handle, and the caller waits for the reply.
//! * [`Ipc::mailbox_reply_receive_fast`]: a server answering a caller that waits
//!   for its reply, then waiting for the next call on a mailbox that holds none.
//! * [`Ipc::semaphore_post_wait_fast`]: a post whose unit goes to a waiting peer,
//!   then a wait on a semaphore with no unit (the shared-memory ping-pong's turn).
//!
//! Each either does *exactly* what the general call ([`Ipc::mailbox_call`],
//! [`Ipc::mailbox_reply_receive`], [`Ipc::semaphore_post_wait`]) would do in that
//! case — the same checks, the same copy, the same ledger counts, the same handles,
//! wait records and blocking order — or returns `None` having changed nothing, and
//! the host makes the general call, which stays the reference. The one difference
//! is how the woken process learns its result: instead of reporting it through
//! [`crate::Wake::wake`], the fast path returns it (a [`Handoff`] for a message,
//! the process for a semaphore unit), so a kernel can write the result registers
//! and switch to that process directly, without a ready queue in between.
//! `tests/core_fastpath.rs` checks the equivalence, step by step, against the
//! general path on random sequences of mailbox and semaphore operations.
//!
//! The fast path takes no handles (a message that moves handles takes the general
//! path) and never completes at once (a call always waits; a reply-receive that finds
//! a message queued, or a post-and-wait whose semaphore has a unit, takes the
//! general path).

use crate::accounting::Mechanism;
use crate::handle::Handle;
use crate::host::{Clock, Host, ProcessId};
use crate::kernel::Ipc;
use crate::object::{Capability, ObjectKind, ObjectRef};
use crate::rights::Rights;
use crate::umem::UserSlice;
use crate::wait::{Blocking, Completion, Received, WaitOn, Wakeup};

/// A message the fast path handed straight to a waiting process: `to`'s wait is
/// over, and the host resumes it with `Completed(Received(received))`, exactly the
/// wake-up the general path would have reported for it through
/// [`crate::Wake::wake`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use = "the process in `to` must be resumed with `received`"]
pub struct Handoff {
    /// The process that was waiting: the server for a call, the caller for a reply.
    pub to: ProcessId,
    /// What it received (already in its buffer).
    pub received: Received,
}

impl Handoff {
    /// The wake-up the general path would have reported for [`Handoff::to`].
    pub fn wakeup(self) -> Wakeup {
        Wakeup::Completed(Completion::Received(self.received))
    }
}

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
    /// [`Ipc::mailbox_call`] with no handles, when a receiver already waits on the
    /// mailbox with room for the message and for the reply handle: the message goes
    /// straight to it and the caller waits for the reply (the general call's
    /// `Outcome::Blocked`). `None` (nothing changed) in every other case, including
    /// every error: the general call then runs.
    ///
    /// # Example
    ///
    /// ```
    /// # use kipc::*;
    /// # #[allow(unused)]
    /// # fn example(ipc: &mut DefaultIpc, host: &mut impl Host, caller: ProcessId, handle: Handle, buffer: UserSlice) -> Result<(), Error> {
    /// match ipc.mailbox_call_fast(caller, handle, buffer.prefix(8), buffer, Blocking::Forever, host) {
    ///     // The server has the message; resume it, and run it while the caller waits.
    ///     Some(handoff) => host.wake(handoff.to, handoff.wakeup()),
    ///     None => {
    ///         ipc.mailbox_call(caller, handle, buffer.prefix(8), &[], buffer, Blocking::Forever, host)?;
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    #[inline(always)]
    pub fn mailbox_call_fast<H: Host>(
        &mut self,
        caller: ProcessId,
        handle: Handle,
        payload: UserSlice,
        reply_buffer: UserSlice,
        blocking: Blocking,
        host: &mut H,
    ) -> Option<Handoff> {
        // LAB mailbox: begin
        if blocking == Blocking::NonBlocking || payload.len() > PAYLOAD {
            return None;
        }
        let capability = self.fast_lookup(caller, handle, ObjectKind::Mailbox, Rights::WRITE)?;
        let ObjectRef::Mailbox(key) = capability.object else {
            return None;
        };
        if self.mailboxes.get(key)?.receivers == 0 {
            return None;
        }
        // The longest-waiting receiver on this mailbox (`oldest_waiter`, inlined).
        let (place, receiver, buffer) = self.fast_waiter(|on| match *on {
            WaitOn::MailboxReceive { mailbox, buffer } if mailbox == key => Some(buffer),
            _ => None,
        })?;
        // Room for the message and the reply handle, as the general path checks.
        if buffer.len() < payload.len() || self.process(receiver).ok()?.handles.free() < 1 {
            return None;
        }
        let destination = buffer.prefix(payload.len());
        self.ledger
            .copy_user_to_user(
                host,
                Mechanism::Mailbox,
                caller,
                payload,
                receiver,
                destination,
            )
            .ok()?;
        // From here on nothing can fail: both processes are alive.
        let token = self.next_token;
        self.next_token += 1;
        let reply = self
            .install_moved(receiver, self.reply_capability(caller, token))
            .ok();
        self.end_wait_at(place, receiver);
        let _ = self.record_wait(
            caller,
            WaitOn::Reply {
                token,
                buffer: reply_buffer,
            },
            blocking.deadline(),
        );
        Some(Handoff {
            to: receiver,
            received: Received {
                length: payload.len(),
                badge: capability.badge,
                handles: heapless::Vec::new(),
                reply,
            },
        })
        // LAB mailbox: stub
        // // LAB mailbox: handing a call straight to a waiting server is the lab's
        // // work in `deliver`; until then every call takes the general path.
        // let _ = (caller, handle, payload, reply_buffer, blocking, host);
        // None
        // LAB mailbox: end
    }

    /// [`Ipc::mailbox_reply_receive`] with no handles, when the caller behind `reply`
    /// waits for its reply with room for it and `mailbox` holds no message: the reply
    /// goes straight to the caller, the reply handle is consumed, and the replier
    /// waits on the mailbox (the general call's `Outcome::Blocked`). `None` (nothing
    /// changed) in every other case, including every error: the general call then runs.
    ///
    /// # Example
    ///
    /// ```
    /// # use kipc::*;
    /// # #[allow(unused)]
    /// # fn example(ipc: &mut DefaultIpc, host: &mut impl Host, server: ProcessId, reply: Handle, mailbox: Handle, buffer: UserSlice) -> Result<(), Error> {
    /// match ipc.mailbox_reply_receive_fast(server, reply, buffer.prefix(8), mailbox, buffer, Blocking::Forever, host) {
    ///     // The caller has its answer; run it while the server waits.
    ///     Some(handoff) => host.wake(handoff.to, handoff.wakeup()),
    ///     None => {
    ///         ipc.mailbox_reply_receive(server, reply, buffer.prefix(8), &[], mailbox, buffer, Blocking::Forever, host)?;
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub fn mailbox_reply_receive_fast<H: Host>(
        &mut self,
        caller: ProcessId,
        reply: Handle,
        payload: UserSlice,
        mailbox: Handle,
        buffer: UserSlice,
        blocking: Blocking,
        host: &mut H,
    ) -> Option<Handoff> {
        // The receive half must wait: a deadline still ahead, no message queued.
        if !may_wait(blocking, host) {
            return None;
        }
        let capability = self.fast_lookup(caller, mailbox, ObjectKind::Mailbox, Rights::READ)?;
        let ObjectRef::Mailbox(key) = capability.object else {
            return None;
        };
        if self.mailboxes.get(key)?.queued() != 0 {
            return None;
        }
        let capability = self.fast_lookup(caller, reply, ObjectKind::Reply, Rights::WRITE)?;
        let ObjectRef::Reply {
            caller: client,
            token,
        } = capability.object
        else {
            return None;
        };
        let reply_buffer = match self.process(client).ok()?.wait.as_ref()?.on {
            WaitOn::Reply { token: t, buffer } if t == token => buffer,
            _ => return None,
        };
        if payload.len() > reply_buffer.len().min(PAYLOAD) {
            return None;
        }
        self.ledger
            .copy_user_to_user(
                host,
                Mechanism::Mailbox,
                caller,
                payload,
                client,
                reply_buffer.prefix(payload.len()),
            )
            .ok()?;
        // From here on nothing can fail: the handle was just looked up, and both
        // processes are alive.
        if let Ok(process) = self.process_mut(caller) {
            let _ = process.handles.remove(reply);
        }
        self.end_wait(client);
        let _ = self.record_wait(
            caller,
            WaitOn::MailboxReceive {
                mailbox: key,
                buffer,
            },
            blocking.deadline(),
        );
        Some(Handoff {
            to: client,
            received: Received {
                length: payload.len(),
                badge: 0,
                handles: heapless::Vec::new(),
                reply: None,
            },
        })
    }

    /// [`Ipc::semaphore_post_wait`] when the post's unit goes straight to a process
    /// waiting on `post` and the caller then waits on `wait`, which has no unit:
    /// returns the process that got the unit (resume it with
    /// `Completed(Acquired)`, the wake-up the general call would have reported);
    /// the caller waits (the general call's `Outcome::Blocked`). `None` (nothing
    /// changed) in every other case, including every error: the general call then
    /// runs.
    ///
    /// # Example
    ///
    /// ```
    /// # use kipc::*;
    /// # #[allow(unused)]
    /// # fn example(ipc: &mut DefaultIpc, host: &mut impl Host, caller: ProcessId, peer_turn: Handle, my_turn: Handle) -> Result<(), Error> {
    /// match ipc.semaphore_post_wait_fast(caller, peer_turn, my_turn, Blocking::Forever, host) {
    ///     Some(peer) => host.wake(peer, Wakeup::Completed(Completion::Acquired)),
    ///     None => {
    ///         ipc.semaphore_post_wait(caller, peer_turn, my_turn, Blocking::Forever, host)?;
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    #[inline(always)]
    pub fn semaphore_post_wait_fast<H: Host>(
        &mut self,
        caller: ProcessId,
        post: Handle,
        wait: Handle,
        blocking: Blocking,
        host: &mut H,
    ) -> Option<ProcessId> {
        if !may_wait(blocking, host) {
            return None;
        }
        let ObjectRef::Semaphore(wait_key) = self
            .fast_lookup(caller, wait, ObjectKind::Semaphore, Rights::WAIT)?
            .object
        else {
            return None;
        };
        let ObjectRef::Semaphore(post_key) = self
            .fast_lookup(caller, post, ObjectKind::Semaphore, Rights::SIGNAL)?
            .object
        else {
            return None;
        };
        // The unit goes to the longest waiter on `post`, so no count changes:
        // the caller waits if `wait` has none now.
        if self.semaphores.get(wait_key)?.count != 0 {
            return None;
        }
        let (place, waiter, ()) = self.fast_waiter(|on| match *on {
            WaitOn::Semaphore(key) if key == post_key => Some(()),
            _ => None,
        })?;
        if waiter == caller {
            return None;
        }
        self.end_wait_at(place, waiter);
        let _ = self.record_wait(caller, WaitOn::Semaphore(wait_key), blocking.deadline());
        Some(waiter)
    }

    /// The longest waiter whose wait `matches` accepts (`oldest_waiter`, inlined):
    /// its place in the blocking order, its id, and what `matches` took from its
    /// wait.
    #[inline(always)]
    fn fast_waiter<T>(
        &self,
        matches: impl Fn(&WaitOn) -> Option<T>,
    ) -> Option<(usize, ProcessId, T)> {
        for (place, &slot) in self.waiting.iter().enumerate() {
            let process = &self.processes[usize::from(slot)];
            if let Some(wait) = process.wait.as_ref().filter(|_| process.live)
                && let Some(found) = matches(&wait.on)
            {
                let id = ProcessId::new(usize::from(slot), process.generation);
                return Some((place, id, found));
            }
        }
        None
    }

    /// Ends the wait of `process`, found at `place` in the blocking order by
    /// [`Ipc::fast_waiter`] (`end_wait` without searching for it again).
    #[inline(always)]
    fn end_wait_at(&mut self, place: usize, process: ProcessId) {
        self.processes[process.slot()].wait = None;
        self.remove_waiting_at(place);
    }

    /// [`Ipc::lookup`] inlined, for the fast path: the capability behind `handle`
    /// if it is of `kind` and allows `needed`.
    #[inline(always)]
    fn fast_lookup(
        &self,
        caller: ProcessId,
        handle: Handle,
        kind: ObjectKind,
        needed: Rights,
    ) -> Option<Capability> {
        let capability = *self.process(caller).ok()?.handles.get(handle).ok()?;
        (capability.object.kind() == kind && capability.rights.allows(needed)).then_some(capability)
    }
}

/// Whether a call with `blocking` may wait now (the general path's
/// `WouldBlock` and `TimedOut` cases are left to it).
#[inline(always)]
fn may_wait<C: Clock + ?Sized>(blocking: Blocking, clock: &C) -> bool {
    match blocking {
        Blocking::NonBlocking => false,
        Blocking::Until(deadline) => clock.now() < deadline,
        Blocking::Forever => true,
    }
}
