//! Signals: POSIX-style asynchronous notifications with user handlers.
//!
//! kipc keeps, per process, the set of **pending** signals, the set of **blocked** ones
//! (the signal mask), one **action** per signal and an optional **alarm**. It decides
//! *what* happens; the host decides *how*: it builds the handler's frame on the user
//! stack, terminates the process, restores the context on return. Nothing here touches
//! registers or stacks.
//!
//! # Sending needs a capability
//!
//! There is no global process-id space to aim at. A process signals another through a
//! **process handle** with [`Rights::SIGNAL`](crate::Rights::SIGNAL)
//! ([`Ipc::signal_send`]); the host mints such handles by its own policy
//! ([`Ipc::process_handle`], e.g. a parent for its children) and they travel, shrink and
//! close like any other handle. The host itself raises signals without a handle
//! ([`Ipc::signal_post`]: `SIGCHLD` to a parent, `SIGALRM` from an alarm, a signal a
//! process sends itself). kipc raises `SIGPIPE` on its own, on the writer of a pipe or
//! FIFO that has no reader left, and `SIGALRM` from [`Ipc::expire`].
//!
//! # Life of a signal
//!
//! ```text
//!  post ─► ignored? ─► discarded (SIGCHLD by default, anything set to Ignore)
//!        └► pending ─► blocked? ─► stays pending until unblocked
//!                    └► deliverable: a parked kipc call is interrupted now (see below)
//!  host, before returning to user mode: signal_take(p)
//!        ├─ None                       ─► return normally
//!        ├─ Terminate(sig)             ─► end the process (SIGKILL, default actions)
//!        └─ Handler { entry, saved .. } ─► build a frame, run entry(sig) in user mode;
//!                                          its return calls sigreturn ─► signal_return
//! ```
//!
//! While a handler runs, its signal and the action's mask are blocked (unless
//! [`SignalFlags::NODEFER`]); [`Ipc::signal_return`] puts the mask saved in the frame
//! back. `SIGKILL` can be neither caught, blocked nor ignored.
//!
//! # Interrupting a blocked call
//!
//! A signal that becomes deliverable to a process parked in any kipc call ends that wait
//! at once, reported through [`Wake`] like any wake-up, and nothing is lost:
//!
//! | parked in | before progress | after progress |
//! |---|---|---|
//! | pipe / FIFO read, queue send or receive, mailbox send or receive, semaphore or notification wait, FIFO open | `Failed(Interrupted)`, or `Retry` under [`SignalFlags::RESTART`]; nothing was taken or delivered | — (these calls complete or take nothing) |
//! | blocking pipe / FIFO write | as above, nothing written | `Completed(Written(n))`: the `n` bytes already in the pipe, restart or not |
//! | mailbox call | waiting for room in a full mailbox: as above, the message was not sent | waiting for the reply: `Failed(Interrupted)`, never restarted (the server has the message, exactly once); the server's later reply fails with `PeerClosed` and its handles stay with it |
//! | [`Ipc::signal_suspend`] | `Failed(Interrupted)`, always | — |
//!
//! A signal whose default action ends the process interrupts the wait the same way; the
//! host then terminates it at [`Ipc::signal_take`]. A blocked or ignored signal
//! interrupts nothing.

use crate::error::Error;
use crate::handle::Handle;
use crate::host::ProcessId;
use crate::kernel::Ipc;
use crate::object::{Capability, ObjectKind, ObjectRef};
use crate::rights::Rights;
use crate::wait::{Completion, Outcome, WaitOn, Wake, Wakeup};

/// A signal number, `1..=31` (the classic Unix numbers where they exist).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Signal(u8);

impl Signal {
    /// Hang-up (default: terminate).
    pub const SIGHUP: Signal = Signal(1);
    /// Interrupt from the keyboard (default: terminate).
    pub const SIGINT: Signal = Signal(2);
    /// Kill: cannot be caught, blocked or ignored.
    pub const SIGKILL: Signal = Signal(9);
    /// User-defined signal 1 (default: terminate).
    pub const SIGUSR1: Signal = Signal(10);
    /// User-defined signal 2 (default: terminate).
    pub const SIGUSR2: Signal = Signal(12);
    /// Write to a pipe with no reader (default: terminate).
    pub const SIGPIPE: Signal = Signal(13);
    /// An alarm went off (default: terminate).
    pub const SIGALRM: Signal = Signal(14);
    /// Polite request to terminate (default: terminate).
    pub const SIGTERM: Signal = Signal(15);
    /// A child process ended (default: ignore).
    pub const SIGCHLD: Signal = Signal(17);

    /// The highest signal number.
    pub const MAX: u32 = 31;

    /// The signal numbered `number`, or [`Error::InvalidArgument`] outside `1..=31`.
    ///
    /// ```
    /// use kipc::Signal;
    /// assert_eq!(Signal::new(9), Ok(Signal::SIGKILL));
    /// assert!(Signal::new(0).is_err() && Signal::new(32).is_err());
    /// ```
    pub const fn new(number: u64) -> Result<Signal, Error> {
        if number >= 1 && number <= Self::MAX as u64 {
            Ok(Signal(number as u8))
        } else {
            Err(Error::InvalidArgument)
        }
    }

    /// Its number.
    pub const fn number(self) -> u32 {
        self.0 as u32
    }

    /// What happens when the action is [`Disposition::Default`].
    pub const fn default_action(self) -> DefaultAction {
        match self.0 {
            17 | 18 | 23 | 28 => DefaultAction::Ignore, // CHLD, CONT, URG, WINCH
            _ => DefaultAction::Terminate,
        }
    }

    const fn bit(self) -> u32 {
        1 << self.0
    }
}

/// What a signal's default action is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DefaultAction {
    /// The process ends.
    Terminate,
    /// The signal is discarded.
    Ignore,
}

/// A set of signals (bit `n` is signal `n`; bit 0 is never set).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct SignalSet(u32);

impl SignalSet {
    /// No signal.
    pub const EMPTY: SignalSet = SignalSet(0);
    /// Every signal `1..=31`.
    pub const ALL: SignalSet = SignalSet(!1);

    /// The set with the bits of `raw` (bit `n` = signal `n`); bit 0 and bits above 31
    /// are dropped.
    pub const fn from_bits(raw: u64) -> SignalSet {
        SignalSet(raw as u32 & !1)
    }

    /// The raw bits.
    pub const fn bits(self) -> u64 {
        self.0 as u64
    }

    /// The set holding just `signal`.
    pub const fn of(signal: Signal) -> SignalSet {
        SignalSet(signal.bit())
    }

    /// Whether `signal` is in the set.
    pub const fn contains(self, signal: Signal) -> bool {
        self.0 & signal.bit() != 0
    }

    /// The set with `signal` added.
    pub const fn with(self, signal: Signal) -> SignalSet {
        SignalSet(self.0 | signal.bit())
    }

    /// The set with `signal` removed.
    pub const fn without(self, signal: Signal) -> SignalSet {
        SignalSet(self.0 & !signal.bit())
    }

    /// Both sets together.
    pub const fn union(self, other: SignalSet) -> SignalSet {
        SignalSet(self.0 | other.0)
    }

    /// The signals of `self` not in `other`.
    pub const fn difference(self, other: SignalSet) -> SignalSet {
        SignalSet(self.0 & !other.0)
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The lowest-numbered signal in the set.
    pub const fn lowest(self) -> Option<Signal> {
        if self.0 == 0 {
            None
        } else {
            Some(Signal(self.0.trailing_zeros() as u8))
        }
    }

    /// A mask with `SIGKILL` taken out (it can never be blocked).
    const fn maskable(self) -> SignalSet {
        self.without(Signal::SIGKILL)
    }
}

/// What a process wants done with a signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Disposition {
    /// The signal's [`DefaultAction`].
    #[default]
    Default,
    /// Discard it (also discards it while pending).
    Ignore,
    /// Run the user handler at this address.
    Handler(u64),
}

bitflags::bitflags! {
    /// How a handler runs (POSIX `SA_*`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
    pub struct SignalFlags: u32 {
        /// A call this signal interrupts before it made progress is re-issued after the
        /// handler instead of failing with [`Error::Interrupted`] (`SA_RESTART`).
        const RESTART = 1 << 0;
        /// Do not block the signal while its handler runs (`SA_NODEFER`).
        const NODEFER = 1 << 1;
        /// Reset the action to the default once the handler is entered (`SA_RESETHAND`).
        const RESETHAND = 1 << 2;
    }
}

/// A signal's action: the disposition, the signals blocked while the handler runs, and
/// flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct SignalAction {
    /// Default, ignore or a handler.
    pub disposition: Disposition,
    /// Blocked (on top of the current mask) while the handler runs.
    pub mask: SignalSet,
    /// How the handler runs.
    pub flags: SignalFlags,
}

impl SignalAction {
    /// The default action.
    pub const DEFAULT: SignalAction = SignalAction {
        disposition: Disposition::Default,
        mask: SignalSet::EMPTY,
        flags: SignalFlags::empty(),
    };

    /// Whether posting `signal` under this action discards it.
    const fn ignores(&self, signal: Signal) -> bool {
        match self.disposition {
            Disposition::Ignore => true,
            Disposition::Default => matches!(signal.default_action(), DefaultAction::Ignore),
            Disposition::Handler(_) => false,
        }
    }
}

/// How [`Ipc::signal_mask`] changes the mask (POSIX `SIG_BLOCK`, `SIG_UNBLOCK`,
/// `SIG_SETMASK`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MaskHow {
    /// Add the set to the mask.
    Block,
    /// Remove the set from the mask.
    Unblock,
    /// Replace the mask with the set.
    Set,
}

/// What the host must do before a process returns to user mode
/// ([`Ipc::signal_take`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Delivery {
    /// End the process: `SIGKILL` or a signal whose default action terminates.
    Terminate(Signal),
    /// Run a handler: build a frame on the user stack holding the interrupted context
    /// and `saved_mask`, and enter `entry` with the signal number. When the handler
    /// returns, call [`Ipc::signal_return`] with the mask from the frame.
    Handler {
        /// The signal.
        signal: Signal,
        /// The handler's address.
        entry: u64,
        /// The mask to restore when the handler returns.
        saved_mask: SignalSet,
        /// The action's flags.
        flags: SignalFlags,
    },
}

/// What [`Ipc::signal_post`] did with a signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Posted {
    /// The process ignores it: discarded.
    Ignored,
    /// Pending but blocked: it waits until unblocked.
    Blocked,
    /// Pending and deliverable: a kipc wait of the target was interrupted (reported
    /// through [`Wake`]); if the host parks the process in waits of its own (sleep,
    /// waiting for a child), it must end those now.
    Deliverable,
}

/// One process's signal state. Actions are stored packed (a handler word, a mask and
/// flags per signal: 13 bytes instead of a `SignalAction`'s 24), as a small kernel
/// pays for them in every process slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SignalState {
    pub(crate) pending: SignalSet,
    pub(crate) blocked: SignalSet,
    /// The mask to restore after a handler entered from `signal_suspend`.
    pub(crate) suspended_mask: Option<SignalSet>,
    /// When `SIGALRM` is due.
    pub(crate) alarm: Option<u64>,
    /// Per signal: [`DEFAULT_WORD`], [`IGNORE_WORD`] or the handler's address.
    handlers: [u64; Signal::MAX as usize],
    masks: [u32; Signal::MAX as usize],
    flags: [u8; Signal::MAX as usize],
}

/// `handlers` value of the default disposition (a handler is never at address 0).
const DEFAULT_WORD: u64 = 0;
/// `handlers` value of the ignore disposition (nor at address 1).
const IGNORE_WORD: u64 = 1;

impl SignalState {
    pub(crate) const NEW: SignalState = SignalState {
        pending: SignalSet::EMPTY,
        blocked: SignalSet::EMPTY,
        suspended_mask: None,
        alarm: None,
        handlers: [DEFAULT_WORD; Signal::MAX as usize],
        masks: [0; Signal::MAX as usize],
        flags: [0; Signal::MAX as usize],
    };

    const fn action(&self, signal: Signal) -> SignalAction {
        let index = signal.0 as usize - 1;
        SignalAction {
            disposition: match self.handlers[index] {
                DEFAULT_WORD => Disposition::Default,
                IGNORE_WORD => Disposition::Ignore,
                entry => Disposition::Handler(entry),
            },
            mask: SignalSet(self.masks[index]),
            flags: SignalFlags::from_bits_truncate(self.flags[index] as u32),
        }
    }

    fn set_action(&mut self, signal: Signal, action: SignalAction) {
        let index = signal.0 as usize - 1;
        self.handlers[index] = match action.disposition {
            Disposition::Default => DEFAULT_WORD,
            Disposition::Ignore => IGNORE_WORD,
            Disposition::Handler(entry) => entry,
        };
        self.masks[index] = action.mask.0;
        self.flags[index] = action.flags.bits() as u8;
    }

    /// The signals that would be delivered now.
    pub(crate) const fn deliverable(&self) -> SignalSet {
        self.pending.difference(self.blocked)
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
    /// Privileged (not a system call): gives `owner` a handle to process `target` with
    /// `rights` — [`Rights::SIGNAL`] to signal it through [`Ipc::signal_send`], plus
    /// `TRANSFER` / `DUPLICATE` as the host's policy allows. Who may hold a handle to
    /// whom is the host's decision (a parent for its children, a process for itself);
    /// after that the handle travels like any other. It keeps nothing alive: once the
    /// target exits, sending through it fails with [`Error::NoSuchProcess`].
    ///
    /// # Example
    ///
    /// ```
    /// # use kipc::*;
    /// # #[allow(unused)]
    /// # fn example(ipc: &mut DefaultIpc, host: &mut impl Host, caller: ProcessId, peer: ProcessId, handle: Handle, buffer: UserSlice) -> Result<(), Error> {
    /// // The parent `caller` may signal its child `peer`:
    /// let child = ipc.process_handle(caller, peer, Rights::SIGNAL | Rights::TRANSFER)?;
    /// # Ok(()) }
    /// ```
    pub fn process_handle(
        &mut self,
        owner: ProcessId,
        target: ProcessId,
        rights: Rights,
    ) -> Result<Handle, Error> {
        self.process(target)?;
        self.install_new(
            owner,
            Capability {
                object: ObjectRef::Process(target),
                rights,
                badge: 0,
            },
        )
    }

    /// Sends `signal` to the process behind `handle` (needs [`Rights::SIGNAL`] on a
    /// process handle). Fails with [`Error::NoSuchProcess`] if it has exited. Otherwise
    /// as [`Ipc::signal_post`].
    ///
    /// # Example
    ///
    /// ```
    /// # use kipc::*;
    /// # #[allow(unused)]
    /// # fn example(ipc: &mut DefaultIpc, host: &mut impl Host, caller: ProcessId, peer: ProcessId, handle: Handle, buffer: UserSlice) -> Result<(), Error> {
    /// if ipc.signal_send(caller, handle, Signal::SIGTERM, host)? == Posted::Deliverable {
    ///     // end the target's host-side waits (sleep, waiting for a child), if any
    /// }
    /// # Ok(()) }
    /// ```
    pub fn signal_send<W: Wake + ?Sized>(
        &mut self,
        caller: ProcessId,
        handle: Handle,
        signal: Signal,
        wake: &mut W,
    ) -> Result<Posted, Error> {
        let capability = self.lookup(caller, handle, ObjectKind::Process, Rights::SIGNAL)?;
        let ObjectRef::Process(target) = capability.object else {
            return Err(Error::WrongObjectKind);
        };
        self.signal_post(target, signal, wake)
    }

    /// Privileged (not a system call): raises `signal` on `target` — the host's own
    /// signals (`SIGCHLD` to a parent, one a process sends itself). Discarded if the
    /// target ignores it; otherwise pending, and if not blocked, any kipc wait of the
    /// target ends now as the interruption table in [`crate::signal`] says.
    ///
    /// # Example
    ///
    /// ```
    /// # use kipc::*;
    /// # #[allow(unused)]
    /// # fn example(ipc: &mut DefaultIpc, host: &mut impl Host, caller: ProcessId, peer: ProcessId, handle: Handle, buffer: UserSlice) -> Result<(), Error> {
    /// // A child exited: tell its parent.
    /// let _ = ipc.signal_post(peer, Signal::SIGCHLD, host);
    /// # Ok(()) }
    /// ```
    pub fn signal_post<W: Wake + ?Sized>(
        &mut self,
        target: ProcessId,
        signal: Signal,
        wake: &mut W,
    ) -> Result<Posted, Error> {
        let posted = self.signal_mark(target, signal)?;
        if posted == Posted::Deliverable {
            self.interrupt_wait(target, signal, wake);
        }
        Ok(posted)
    }

    /// Sets `signal`'s action to `action` if given, and returns the previous one
    /// (POSIX `sigaction`). `SIGKILL`'s action can be read but not changed
    /// ([`Error::InvalidArgument`], as is a handler at address 0 or 1); `SIGKILL` is
    /// never in an action's mask. Setting a
    /// disposition that ignores the signal discards it if pending.
    ///
    /// # Example
    ///
    /// ```
    /// # use kipc::*;
    /// # #[allow(unused)]
    /// # fn example(ipc: &mut DefaultIpc, host: &mut impl Host, caller: ProcessId, peer: ProcessId, handle: Handle, buffer: UserSlice) -> Result<(), Error> {
    /// let handler = SignalAction {
    ///     disposition: Disposition::Handler(0x40_1000),
    ///     mask: SignalSet::of(Signal::SIGUSR2),
    ///     flags: SignalFlags::RESTART,
    /// };
    /// let previous = ipc.signal_action(caller, Signal::SIGUSR1, Some(handler))?;
    /// # Ok(()) }
    /// ```
    pub fn signal_action(
        &mut self,
        caller: ProcessId,
        signal: Signal,
        action: Option<SignalAction>,
    ) -> Result<SignalAction, Error> {
        let state = &mut self.process_mut(caller)?.signals;
        let previous = state.action(signal);
        if let Some(mut action) = action {
            if signal == Signal::SIGKILL
                || matches!(
                    action.disposition,
                    Disposition::Handler(DEFAULT_WORD | IGNORE_WORD)
                )
            {
                return Err(Error::InvalidArgument);
            }
            action.mask = action.mask.maskable();
            state.set_action(signal, action);
            if action.ignores(signal) && state.pending.contains(signal) {
                state.pending = state.pending.without(signal);
                let emptied = state.pending.is_empty();
                self.signalled -= usize::from(emptied);
            }
        }
        Ok(previous)
    }

    /// Changes the caller's signal mask and returns the old one (POSIX
    /// `sigprocmask`). `SIGKILL` is silently left out. A signal this unblocks is
    /// delivered at the host's next [`Ipc::signal_take`].
    ///
    /// # Example
    ///
    /// ```
    /// # use kipc::*;
    /// # #[allow(unused)]
    /// # fn example(ipc: &mut DefaultIpc, host: &mut impl Host, caller: ProcessId, peer: ProcessId, handle: Handle, buffer: UserSlice) -> Result<(), Error> {
    /// let old = ipc.signal_mask(caller, MaskHow::Block, SignalSet::of(Signal::SIGINT))?;
    /// // ... a critical section SIGINT must not interrupt ...
    /// ipc.signal_mask(caller, MaskHow::Set, old)?;
    /// # Ok(()) }
    /// ```
    pub fn signal_mask(
        &mut self,
        caller: ProcessId,
        how: MaskHow,
        set: SignalSet,
    ) -> Result<SignalSet, Error> {
        let state = &mut self.process_mut(caller)?.signals;
        let old = state.blocked;
        state.blocked = match how {
            MaskHow::Block => old.union(set),
            MaskHow::Unblock => old.difference(set),
            MaskHow::Set => set,
        }
        .maskable();
        Ok(old)
    }

    /// The caller's pending signals (POSIX `sigpending`).
    ///
    /// # Example
    ///
    /// ```
    /// # use kipc::*;
    /// # #[allow(unused)]
    /// # fn example(ipc: &mut DefaultIpc, host: &mut impl Host, caller: ProcessId, peer: ProcessId, handle: Handle, buffer: UserSlice) -> Result<(), Error> {
    /// let waiting = ipc.signal_pending(caller)?.contains(Signal::SIGINT);
    /// # Ok(()) }
    /// ```
    pub fn signal_pending(&self, caller: ProcessId) -> Result<SignalSet, Error> {
        Ok(self.process(caller)?.signals.pending)
    }

    /// Whether any process has a pending signal at all (blocked or not): one load, the
    /// check a host makes on every way back to user mode before the per-process
    /// [`Ipc::signal_ready`].
    ///
    /// # Example
    ///
    /// ```
    /// # use kipc::*;
    /// # #[allow(unused)]
    /// # fn example(ipc: &mut DefaultIpc, host: &mut impl Host, caller: ProcessId, peer: ProcessId, handle: Handle, buffer: UserSlice) -> Result<(), Error> {
    /// if ipc.signal_attention() && ipc.signal_ready(caller) {
    ///     let delivery = ipc.signal_take(caller)?;
    /// }
    /// # Ok(()) }
    /// ```
    #[inline(always)]
    pub fn signal_attention(&self) -> bool {
        self.signalled != 0
    }

    /// Whether `process` has a signal to deliver now: the host's cheap check on the way
    /// back to user mode before it calls [`Ipc::signal_take`]. False for a dead process.
    ///
    /// # Example
    ///
    /// ```
    /// # use kipc::*;
    /// # #[allow(unused)]
    /// # fn example(ipc: &mut DefaultIpc, host: &mut impl Host, caller: ProcessId, peer: ProcessId, handle: Handle, buffer: UserSlice) -> Result<(), Error> {
    /// if ipc.signal_ready(caller) {
    ///     let delivery = ipc.signal_take(caller)?;
    /// }
    /// # Ok(()) }
    /// ```
    #[inline(always)]
    pub fn signal_ready(&self, process: ProcessId) -> bool {
        match self.processes.get(process.slot()) {
            Some(p) => {
                p.live
                    && p.generation == process.generation()
                    && !p.signals.deliverable().is_empty()
            }
            None => false,
        }
    }

    /// Takes the next signal to deliver to `process` (the lowest-numbered pending,
    /// unblocked one; `SIGKILL` first) and says what to do, or `None`. The host calls it
    /// when `process` is about to return to user mode, and acts on the answer:
    /// `Terminate` ends it; `Handler` blocks the handler's mask (done here) and asks for a
    /// frame. Call it again after building a frame to nest further deliverable signals,
    /// or let them come at the next return to user mode.
    ///
    /// # Example
    ///
    /// ```
    /// # use kipc::*;
    /// # #[allow(unused)]
    /// # fn example(ipc: &mut DefaultIpc, host: &mut impl Host, caller: ProcessId, peer: ProcessId, handle: Handle, buffer: UserSlice) -> Result<(), Error> {
    /// match ipc.signal_take(caller)? {
    ///     None => {}
    ///     Some(Delivery::Terminate(signal)) => { /* end the process */ }
    ///     Some(Delivery::Handler { signal, entry, saved_mask, .. }) => {
    ///         // push a frame with the context and saved_mask, enter `entry(signal)`
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn signal_take(&mut self, process: ProcessId) -> Result<Option<Delivery>, Error> {
        let state = &mut self.process_mut(process)?.signals;
        let had = !state.pending.is_empty();
        let delivery = Self::take_from(state);
        let emptied = had && state.pending.is_empty();
        self.signalled -= usize::from(emptied);
        Ok(delivery)
    }

    /// [`Ipc::signal_take`]'s choice, on one process's state.
    fn take_from(state: &mut SignalState) -> Option<Delivery> {
        loop {
            let deliverable = state.deliverable();
            let signal = if deliverable.contains(Signal::SIGKILL) {
                Signal::SIGKILL
            } else {
                deliverable.lowest()?
            };
            state.pending = state.pending.without(signal);
            if signal == Signal::SIGKILL {
                return Some(Delivery::Terminate(signal));
            }
            let action = state.action(signal);
            match action.disposition {
                // Ignored since it was posted: discarded.
                _ if action.ignores(signal) => continue,
                Disposition::Default | Disposition::Ignore => {
                    return Some(Delivery::Terminate(signal));
                }
                Disposition::Handler(entry) => {
                    // LAB signals: begin
                    let saved_mask = state.suspended_mask.take().unwrap_or(state.blocked);
                    let mut blocked = state.blocked.union(action.mask);
                    if !action.flags.contains(SignalFlags::NODEFER) {
                        blocked = blocked.with(signal);
                    }
                    state.blocked = blocked.maskable();
                    if action.flags.contains(SignalFlags::RESETHAND) {
                        state.set_action(signal, SignalAction::DEFAULT);
                    }
                    // LAB signals: stub
                    // // LAB signals, step 2: block the action's mask and the signal itself
                    // // (unless NODEFER) while the handler runs; RESETHAND
                    // let saved_mask = state.suspended_mask.take().unwrap_or(state.blocked);
                    // LAB signals: end
                    return Some(Delivery::Handler {
                        signal,
                        entry,
                        saved_mask,
                        flags: action.flags,
                    });
                }
            }
        }
    }

    /// A handler returned: restores the mask saved in its frame (`SIGKILL` left out).
    /// The host restores the rest of the context from the frame after validating it.
    ///
    /// # Example
    ///
    /// ```
    /// # use kipc::*;
    /// # #[allow(unused)]
    /// # fn example(ipc: &mut DefaultIpc, host: &mut impl Host, caller: ProcessId, peer: ProcessId, handle: Handle, buffer: UserSlice) -> Result<(), Error> {
    /// // `saved` was read back from the (validated) frame on the user stack:
    /// # let saved = SignalSet::EMPTY;
    /// ipc.signal_return(caller, saved)?;
    /// # Ok(()) }
    /// ```
    pub fn signal_return(&mut self, caller: ProcessId, saved_mask: SignalSet) -> Result<(), Error> {
        self.process_mut(caller)?.signals.blocked = saved_mask.maskable();
        Ok(())
    }

    /// Waits for a signal with the mask temporarily set to `mask` (POSIX
    /// `sigsuspend`; `pause` is this with the current mask). Parks the caller until a
    /// signal that `mask` lets through is posted; the wait then ends with
    /// `Failed(Interrupted)`, and the handler's frame must save the mask from before the
    /// call, which [`Ipc::signal_take`] reports. If such a signal is pending already,
    /// fails with [`Error::Interrupted`] at once (after setting the mask, so the host
    /// delivers it). Never restarted.
    ///
    /// # Example
    ///
    /// ```
    /// # use kipc::*;
    /// # #[allow(unused)]
    /// # fn example(ipc: &mut DefaultIpc, host: &mut impl Host, caller: ProcessId, peer: ProcessId, handle: Handle, buffer: UserSlice) -> Result<(), Error> {
    /// // pause(): wait for any signal the current mask lets through.
    /// let mask = ipc.signal_mask(caller, MaskHow::Block, SignalSet::EMPTY)?;
    /// assert!(ipc.signal_suspend(caller, mask)? == Outcome::Blocked);
    /// # Ok(()) }
    /// ```
    pub fn signal_suspend(
        &mut self,
        caller: ProcessId,
        mask: SignalSet,
    ) -> Result<Outcome<()>, Error> {
        let state = &mut self.process_mut(caller)?.signals;
        let old = state.blocked;
        state.blocked = mask.maskable();
        state.suspended_mask = Some(old);
        if !state.deliverable().is_empty() {
            return Err(Error::Interrupted);
        }
        self.record_wait(caller, WaitOn::Signal, None)?;
        Ok(Outcome::Blocked)
    }

    /// Ends a `signal_suspend` that is not going to be delivered through a handler
    /// after all: puts the mask from before it back. The host calls it when
    /// [`Ipc::signal_take`] found nothing to run a handler for (the signal that ended
    /// the suspension was discarded), so the temporary mask does not outlive the call.
    ///
    /// # Example
    ///
    /// ```
    /// # use kipc::*;
    /// # #[allow(unused)]
    /// # fn example(ipc: &mut DefaultIpc, host: &mut impl Host, caller: ProcessId, peer: ProcessId, handle: Handle, buffer: UserSlice) -> Result<(), Error> {
    /// if ipc.signal_take(caller)?.is_none() {
    ///     ipc.signal_suspend_end(caller)?;
    /// }
    /// # Ok(()) }
    /// ```
    pub fn signal_suspend_end(&mut self, caller: ProcessId) -> Result<(), Error> {
        let state = &mut self.process_mut(caller)?.signals;
        if let Some(old) = state.suspended_mask.take() {
            state.blocked = old;
        }
        Ok(())
    }

    /// Sets the caller's alarm to go off at `at` on the host's clock (`None` cancels it)
    /// and returns the one it replaces. [`Ipc::expire`] posts `SIGALRM` when it is due,
    /// and [`Ipc::next_deadline`] includes it.
    ///
    /// # Example
    ///
    /// ```
    /// # use kipc::*;
    /// # #[allow(unused)]
    /// # fn example(ipc: &mut DefaultIpc, host: &mut impl Host, caller: ProcessId, peer: ProcessId, handle: Handle, buffer: UserSlice) -> Result<(), Error> {
    /// let previous = ipc.signal_alarm(caller, Some(host.now() + 100))?;
    /// # Ok(()) }
    /// ```
    pub fn signal_alarm(
        &mut self,
        caller: ProcessId,
        at: Option<u64>,
    ) -> Result<Option<u64>, Error> {
        let state = &mut self.process_mut(caller)?.signals;
        Ok(core::mem::replace(&mut state.alarm, at))
    }

    // ------------------------------------------------------------------ internals

    /// Marks `signal` pending on `process` (unless it ignores it) without interrupting
    /// anything, and says what became of it: [`Ipc::signal_post`]'s first half, and
    /// all of it for a process that is the caller or whose wait has just ended
    /// (`SIGPIPE` on a broken pipe's writer).
    pub(crate) fn signal_mark(
        &mut self,
        process: ProcessId,
        signal: Signal,
    ) -> Result<Posted, Error> {
        let state = &mut self.process_mut(process)?.signals;
        if signal != Signal::SIGKILL && state.action(signal).ignores(signal) {
            return Ok(Posted::Ignored);
        }
        let first = state.pending.is_empty();
        state.pending = state.pending.with(signal);
        let blocked = state.blocked.contains(signal);
        self.signalled += usize::from(first);
        Ok(if blocked {
            Posted::Blocked
        } else {
            Posted::Deliverable
        })
    }

    /// Posts `SIGALRM` to every process whose alarm is due at `now`.
    pub(crate) fn fire_alarms<W: Wake + ?Sized>(&mut self, now: u64, wake: &mut W) -> usize {
        let mut fired = 0;
        for slot in 0..PROCESSES {
            let process = &mut self.processes[slot];
            if process.live && process.signals.alarm.is_some_and(|at| at <= now) {
                process.signals.alarm = None;
                let id = ProcessId::new(slot, process.generation);
                let _ = self.signal_post(id, Signal::SIGALRM, wake);
                fired += 1;
            }
        }
        fired
    }

    /// Ends `target`'s kipc wait, if any, because `signal` became deliverable: see the
    /// interruption table in the module documentation.
    fn interrupt_wait<W: Wake + ?Sized>(
        &mut self,
        target: ProcessId,
        signal: Signal,
        wake: &mut W,
    ) {
        // LAB signals: begin
        let Ok(process) = self.process_mut(target) else {
            return;
        };
        let Some(wait) = process.wait else {
            return;
        };
        let action = process.signals.action(signal);
        let restart = matches!(action.disposition, Disposition::Handler(_))
            && action.flags.contains(SignalFlags::RESTART);
        let moved = process.writing.take().map_or(0, |progress| progress.done);
        let wakeup = match wait.on {
            _ if moved > 0 => Wakeup::Completed(Completion::Written(moved)),
            // The message is with the server: never sent twice.
            WaitOn::Reply { .. } | WaitOn::Signal => Wakeup::Failed(Error::Interrupted),
            _ if restart => Wakeup::Retry,
            _ => Wakeup::Failed(Error::Interrupted),
        };
        self.finish_wait(target, wakeup, wake);
        // LAB signals: stub
        // // LAB signals, step 1: end the target's wait as the interruption table says
        // let _ = (target, signal, wake, Self::finish_wait::<W>);
        // LAB signals: end
    }
}
