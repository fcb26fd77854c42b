//! Waiting without sleeping: blocking modes, outcomes, waiter records and wake reports.
//!
//! The core never sleeps and never switches tasks. A call that cannot proceed either fails
//! with [`crate::Error::WouldBlock`] (non-blocking form) or *records a waiter* — which
//! process, what it waits on, an optional deadline, and for receives the user buffer to
//! fill — and returns [`Outcome::Blocked`]. The host then parks the process.
//!
//! Any later operation that makes progress for a waiter reports it through
//! [`Wake::wake`] with one of three [`Wakeup`]s:
//!
//! * [`Wakeup::Retry`] — the condition may have changed: make the process re-issue the
//!   *same* system call with the same arguments. (Message-queue and mailbox sends
//!   waiting for room, a pipe read whose last writer left, a pipe write that moved
//!   nothing before its last reader left.)
//! * [`Wakeup::Completed`] — the call has been carried out on the process's behalf; return
//!   the [`Completion`] to it. (Mailbox receive satisfied by a direct hand-off, replies,
//!   semaphores, notifications, FIFO opens, blocking pipe writes, pipe reads a write
//!   filled, queue receives a send filled.)
//! * [`Wakeup::Failed`] — the call ended with this error (deadline passed, peer closed,
//!   cancelled); return the error to the process.
//!
//! The host handles a `Wakeup` the same way whatever the mechanism, without knowing which
//! call was parked:
//!
//! ```text
//!  op ─► Done(v) ─► return v          op ─► Err(e) ─► return e
//!  op ─► Blocked ─► parked ─► Wake::wake(p, wakeup)
//!                                 ├─ Retry        ─► run the same call again
//!                                 ├─ Completed(c) ─► return c (already in its buffer)
//!                                 └─ Failed(e)    ─► return e
//! ```
//!
//! (The porting guide, `docs/embedding.md`, draws it in full and lists which calls
//! complete on the waiter's behalf.)
//!
//! Deadlines: a blocking call may carry [`Blocking::Until`]. The host must call
//! [`crate::Ipc::expire`] when time passes (e.g. from its timer tick, at the latest at
//! [`crate::Ipc::next_deadline`]); it reports each expired waiter as
//! `Wakeup::Failed(Error::TimedOut)` — except a pipe write that had moved bytes, which
//! ends with `Completed(Written(n))`. A retried call whose deadline has already passed
//! fails with `TimedOut` by itself.

use crate::error::Error;
use crate::handle::Handle;
use crate::object::Key;
use crate::umem::UserSlice;
use crate::{MAX_MESSAGE_HANDLES, ProcessId};

/// How a call that cannot proceed immediately behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Blocking {
    /// Fail with [`Error::WouldBlock`] instead of waiting.
    NonBlocking,
    /// Wait as long as it takes.
    Forever,
    /// Wait until the clock reaches this deadline, then fail with [`Error::TimedOut`].
    Until(u64),
}

impl Blocking {
    /// Whether a call that cannot proceed at `now` would wait (rather than fail with
    /// `WouldBlock` or `TimedOut` at once).
    pub const fn would_wait(self, now: u64) -> bool {
        match self {
            Blocking::NonBlocking => false,
            Blocking::Forever => true,
            Blocking::Until(deadline) => now < deadline,
        }
    }

    /// The deadline, if any.
    pub const fn deadline(self) -> Option<u64> {
        match self {
            Blocking::Until(deadline) => Some(deadline),
            _ => None,
        }
    }
}

/// The result of a call that may block: done now, or the caller was recorded as a waiter.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use = "a Blocked outcome means the host must park the calling process"]
pub enum Outcome<T> {
    /// The call completed with this value.
    Done(T),
    /// The caller is now waiting; park it until a [`Wakeup`] names it.
    Blocked,
}

impl<T> Outcome<T> {
    /// Whether the caller was parked.
    pub const fn is_blocked(&self) -> bool {
        matches!(self, Outcome::Blocked)
    }

    /// The value, if the call completed.
    pub fn done(self) -> Option<T> {
        match self {
            Outcome::Done(value) => Some(value),
            Outcome::Blocked => None,
        }
    }

    /// Applies `f` to a completed call's value; a blocked outcome stays blocked.
    ///
    /// ```
    /// use kipc::Outcome;
    /// assert_eq!(Outcome::Done(5usize).map(|n| n as u64 * 2), Outcome::Done(10u64));
    /// assert_eq!(Outcome::<usize>::Blocked.map(|n| n + 1), Outcome::Blocked);
    /// ```
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Outcome<U> {
        match self {
            Outcome::Done(value) => Outcome::Done(f(value)),
            Outcome::Blocked => Outcome::Blocked,
        }
    }
}

/// A message delivered to a process by a mailbox receive or a call's reply.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Received {
    /// Number of payload bytes written to the receive buffer.
    pub length: usize,
    /// The badge of the sender's handle (0 for unbadged handles and replies).
    pub badge: u64,
    /// Handles transferred with the message, now in the receiver's table.
    pub handles: heapless::Vec<Handle, MAX_MESSAGE_HANDLES>,
    /// For a message sent with [`crate::Ipc::mailbox_call`]: the one-shot reply handle.
    pub reply: Option<Handle>,
}

/// What a blocked call produced when another process completed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Completion {
    /// A mailbox receive or a call got its message (already in the user buffer).
    Received(Received),
    /// A semaphore wait acquired one unit.
    Acquired,
    /// A notification wait returned these bits (now cleared).
    Notified(u64),
    /// A blocking FIFO open found its peer; this is the new handle.
    Opened(Handle),
    /// A blocking pipe or FIFO write ended with this many bytes in the pipe: all of
    /// them, or fewer if it could not go on (deadline, cancelled wait, last reader gone,
    /// its data faulted part-way).
    Written(usize),
    /// A read of an empty pipe or FIFO got this many bytes from a later write (already
    /// in its buffer).
    Read(usize),
    /// A receive from an empty message queue got this message from a later send
    /// (already in its buffer).
    Dequeued(crate::QueuedMessage),
}

/// How a blocked process must be resumed; see the module documentation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Wakeup {
    /// Re-issue the same system call.
    Retry,
    /// The call completed with this result.
    Completed(Completion),
    /// The call failed with this error.
    Failed(Error),
}

/// The host's wake sink: kipc calls it for every waiter it releases.
pub trait Wake {
    /// Make `process` runnable again, resuming it as `wakeup` says.
    fn wake(&mut self, process: ProcessId, wakeup: Wakeup);
}

impl<T: Wake + ?Sized> Wake for &mut T {
    fn wake(&mut self, process: ProcessId, wakeup: Wakeup) {
        (**self).wake(process, wakeup)
    }
}

/// Which way a FIFO is being opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpenMode {
    /// Open the reading end.
    Read,
    /// Open the writing end.
    Write,
}

/// What a blocked process waits for.
#[derive(Clone, Copy, Debug, Eq)]
pub(crate) enum WaitOn {
    /// A read of an empty pipe, with the buffer a write fills for it.
    PipeRead {
        pipe: Key,
        buffer: UserSlice,
    },
    PipeWrite(Key),
    MailboxSend(Key),
    MailboxReceive {
        mailbox: Key,
        buffer: UserSlice,
    },
    Reply {
        token: u64,
        buffer: UserSlice,
    },
    QueueSend(Key),
    /// A receive from an empty queue, with the buffer a send fills for it.
    QueueReceive {
        queue: Key,
        buffer: UserSlice,
    },
    Semaphore(Key),
    Notification(Key),
    FifoOpen {
        fifo: Key,
        mode: OpenMode,
    },
    /// `signal_suspend`: any deliverable signal ends it.
    Signal,
}

/// Written out (not derived) to be inlined: the wake-up paths compare a waiter
/// with `WaitOn::PipeRead(key)` and the like on every call, and the derived
/// comparison of this many variants became an out-of-line call.
impl PartialEq for WaitOn {
    #[inline(always)]
    fn eq(&self, other: &WaitOn) -> bool {
        use WaitOn::*;
        match (self, other) {
            (
                PipeRead { pipe, buffer },
                PipeRead {
                    pipe: other_pipe,
                    buffer: other_buffer,
                },
            ) => pipe == other_pipe && buffer == other_buffer,
            (PipeWrite(a), PipeWrite(b))
            | (MailboxSend(a), MailboxSend(b))
            | (QueueSend(a), QueueSend(b))
            | (Semaphore(a), Semaphore(b))
            | (Notification(a), Notification(b)) => a == b,
            (
                MailboxReceive { mailbox, buffer },
                MailboxReceive {
                    mailbox: other_mailbox,
                    buffer: other_buffer,
                },
            ) => mailbox == other_mailbox && buffer == other_buffer,
            (
                Reply { token, buffer },
                Reply {
                    token: other_token,
                    buffer: other_buffer,
                },
            ) => token == other_token && buffer == other_buffer,
            (
                QueueReceive { queue, buffer },
                QueueReceive {
                    queue: other_queue,
                    buffer: other_buffer,
                },
            ) => queue == other_queue && buffer == other_buffer,
            (
                FifoOpen { fifo, mode },
                FifoOpen {
                    fifo: other_fifo,
                    mode: other_mode,
                },
            ) => fifo == other_fifo && mode == other_mode,
            (Signal, Signal) => true,
            _ => false,
        }
    }
}

/// A recorded waiter (one per process at most: a process blocks in one call at a time).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct WaitRecord {
    pub(crate) on: WaitOn,
    pub(crate) deadline: Option<u64>,
}
