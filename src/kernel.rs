//! The façade: [`Ipc`] owns every object table and every process's handle table, and
//! exposes one method per system call.
//!
//! This file holds what all mechanisms share — processes, handles, reference counting,
//! waiter bookkeeping, the ledger and the resource-usage snapshot. The system calls of each
//! mechanism live in the file named after it (`pipe.rs`, `mailbox.rs`, ...), as further
//! `impl Ipc` blocks.
//!
//! Every system call has the shape
//!
//! ```text
//! fn operation(&mut self, caller: ProcessId, arguments..., host: &mut H) -> Result<T, Error>
//! ```
//!
//! where calls that may wait return `Result<Outcome<T>, Error>` (see [`crate::wait`]).
//! `Ipc::new` is a `const fn`, so the whole façade can sit in a
//! `static IPC: spin::Mutex<DefaultIpc>` without ever passing through the stack.

use crate::accounting::{Direction, Ledger, Mechanism};
use crate::config::Limits;
use crate::error::Error;
use crate::fifo::Fifo;
use crate::handle::{Handle, HandleTable};
use crate::host::{Clock, Host, ProcessId, UserMemory};
use crate::mailbox::Mailbox;
use crate::mqueue::MessageQueue;
use crate::notification::Notification;
use crate::object::{Capability, ObjectKind, ObjectRef, Table};
use crate::pipe::Pipe;
use crate::rights::Rights;
use crate::semaphore::Semaphore;
use crate::shm::{Mapping, Region};
use crate::umem::UserSlice;
use crate::wait::{Blocking, Completion, Outcome, WaitOn, WaitRecord, Wake, Wakeup};
use crate::{DefaultLimits, MAX_MESSAGE_HANDLES};

/// One process's kernel-side IPC state.
pub(crate) struct Process<const HANDLES: usize> {
    pub(crate) generation: u32,
    pub(crate) live: bool,
    pub(crate) handles: HandleTable<Capability, HANDLES>,
    pub(crate) wait: Option<WaitRecord>,
    /// The blocking pipe or FIFO write this process is parked in (set only while it
    /// waits on `WaitOn::PipeWrite`): its data and how far it got, so readers making
    /// room carry it on.
    pub(crate) writing: Option<WriteProgress>,
    /// Handles it sent that still wait in mailboxes, against its quota (objects,
    /// mappings, region frames and buffered messages are counted from the tables
    /// themselves).
    pub(crate) handles_in_flight: usize,
    /// Pending and blocked signals, actions and the alarm (see [`crate::signal`]).
    pub(crate) signals: crate::signal::SignalState,
}

/// How far a blocking pipe write has got (see `Ipc::pipe_write`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct WriteProgress {
    /// The pipe.
    pub(crate) pipe: crate::object::Key,
    /// The writer's data, as passed (read from its memory as room appears).
    pub(crate) data: UserSlice,
    /// Bytes already in the pipe.
    pub(crate) done: usize,
}

/// How a parked pipe write that cannot go on ends: with the bytes it already moved
/// (`Completed(Written(n))`), or, if none, with `otherwise`.
pub(crate) fn write_ends(moved: usize, otherwise: Wakeup) -> Wakeup {
    if moved > 0 {
        Wakeup::Completed(Completion::Written(moved))
    } else {
        otherwise
    }
}

/// The IPC core: object tables, per-process handle tables, waiters and the copy ledger.
///
/// Every capacity is a const generic and every other limit comes from `L`; see
/// [`crate::config`] for what each sizes, the defaults, and the footprint.
///
/// * `PROCESSES` — process slots;
/// * `HANDLES` — handle slots per process;
/// * `OBJECTS` — slots per object kind (mailboxes, pipes, FIFO names, message queues,
///   regions, semaphores, notifications each get this many);
/// * `PAYLOAD` — the largest mailbox message and the largest message-queue message;
/// * `PIPE_CAPACITY` — bytes buffered per pipe (a power of two);
/// * `MAILBOX_DEPTH` — messages a mailbox buffers (default [`crate::MAILBOX_DEPTH`]);
/// * `QUEUE_DEPTH` — the most messages a queue can hold (default
///   [`crate::MESSAGE_QUEUE_DEPTH`]);
/// * `REGION_PAGES` — the largest region or loan (default [`crate::REGION_PAGES_MAX`]);
/// * `MAPPINGS` — region mappings in all address spaces (default
///   [`crate::MAX_MAPPINGS`]);
/// * `L` — pipe atomicity and per-process quotas ([`DefaultLimits`]).
///
/// [`DefaultIpc`] is the default configuration.
pub struct Ipc<
    const PROCESSES: usize,
    const HANDLES: usize,
    const OBJECTS: usize,
    const PAYLOAD: usize,
    const PIPE_CAPACITY: usize,
    const MAILBOX_DEPTH: usize = { crate::MAILBOX_DEPTH },
    const QUEUE_DEPTH: usize = { crate::MESSAGE_QUEUE_DEPTH },
    const REGION_PAGES: usize = { crate::REGION_PAGES_MAX },
    const MAPPINGS: usize = { crate::MAX_MAPPINGS },
    L: Limits = DefaultLimits,
> {
    pub(crate) processes: [Process<HANDLES>; PROCESSES],
    pub(crate) mailboxes: Table<Mailbox<PAYLOAD, MAILBOX_DEPTH>, OBJECTS>,
    pub(crate) pipes: Table<Pipe<PIPE_CAPACITY>, OBJECTS>,
    pub(crate) fifos: Table<Fifo, OBJECTS>,
    pub(crate) queues: Table<MessageQueue<PAYLOAD, QUEUE_DEPTH>, OBJECTS>,
    pub(crate) regions: Table<Region<REGION_PAGES>, OBJECTS>,
    pub(crate) semaphores: Table<Semaphore, OBJECTS>,
    pub(crate) notifications: Table<Notification, OBJECTS>,
    pub(crate) mappings: heapless::Vec<Mapping, MAPPINGS>,
    pub(crate) ledger: Ledger<PROCESSES>,
    /// Slots of exactly the processes that wait, in the order they started waiting
    /// (oldest first), so the longest waiter is served first and finding it looks only at
    /// waiting processes, not at the whole table. Every place that ends a wait drops its
    /// slot here, so starting one need not search the list.
    pub(crate) waiting: heapless::Vec<u16, PROCESSES>,
    pub(crate) next_token: u64,
    /// Live processes with a non-empty pending signal set (see
    /// [`Ipc::signal_attention`]).
    pub(crate) signalled: usize,
    limits: core::marker::PhantomData<L>,
}

/// The demo kernel's configuration: 16 processes, 64 handles each, 16 objects of each
/// kind, 256-byte messages, 4 KiB pipes.
pub type DefaultIpc = Ipc<16, 64, 16, 256, 4096>;

/// What a handle refers to and what it allows (see [`Ipc::handle_info`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HandleInfo {
    /// The kind of object.
    pub kind: ObjectKind,
    /// The handle's rights.
    pub rights: Rights,
    /// The badge (mailbox send handles; 0 otherwise).
    pub badge: u64,
}

/// A snapshot of resource usage, for leak checks (see [`Ipc::usage`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Live processes.
    pub processes: usize,
    /// Handles in all handle tables.
    pub handles: usize,
    /// Live mailboxes.
    pub mailboxes: usize,
    /// Live pipes (including FIFO pipes).
    pub pipes: usize,
    /// Registered FIFO names.
    pub fifos: usize,
    /// Live message queues (linked or still open).
    pub message_queues: usize,
    /// Live shared regions (including loaned pages).
    pub regions: usize,
    /// Live semaphores.
    pub semaphores: usize,
    /// Live notifications.
    pub notifications: usize,
    /// Physical frames held by regions.
    pub frames_held: usize,
    /// Region mappings in all address spaces.
    pub mappings: usize,
    /// Pages mapped through those mappings.
    pub mapped_pages: usize,
    /// Messages buffered in mailboxes and message queues.
    pub queued_messages: usize,
    /// Handles travelling inside buffered mailbox messages.
    pub handles_in_flight: usize,
    /// Processes currently recorded as waiting.
    pub waiters: usize,
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
    L: Limits,
> Default
    for Ipc<
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
    fn default() -> Self {
        Self::new()
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
    L: Limits,
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
    /// An empty IPC core: no processes, no objects, a zeroed ledger.
    ///
    /// # Example
    ///
    /// ```
    /// # use kipc::*;
    /// # #[allow(unused)]
    /// # fn example(ipc: &mut DefaultIpc, host: &mut impl Host, caller: ProcessId, peer: ProcessId, handle: Handle, buffer: UserSlice) -> Result<(), Error> {
    /// static IPC: spin::Mutex<DefaultIpc> = spin::Mutex::new(DefaultIpc::new());
    /// let first = IPC.lock().process_create()?;
    /// # Ok(()) }
    /// ```
    pub const fn new() -> Self {
        const { assert!(PROCESSES <= u16::MAX as usize, "at most 65535 processes") };
        Ipc {
            processes: [const {
                Process {
                    generation: 0,
                    live: false,
                    handles: HandleTable::new(),
                    wait: None,
                    writing: None,
                    handles_in_flight: 0,
                    signals: crate::signal::SignalState::NEW,
                }
            }; PROCESSES],
            mailboxes: Table::new(),
            pipes: Table::new(),
            fifos: Table::new(),
            queues: Table::new(),
            regions: Table::new(),
            semaphores: Table::new(),
            notifications: Table::new(),
            mappings: heapless::Vec::new(),
            ledger: Ledger::new(),
            waiting: heapless::Vec::new(),
            next_token: 1,
            signalled: 0,
            limits: core::marker::PhantomData,
        }
    }

    /// Initialises an empty IPC core inside memory the kernel already owns (a
    /// `MaybeUninit` in a reserved frame range, a boxed slot), field by field and object
    /// by object: the largest temporary on the stack is one object (a mailbox's message
    /// ring, a pipe's buffer), never the whole core. The result equals [`Ipc::new`].
    ///
    /// ```
    /// use core::mem::MaybeUninit;
    /// # let mut memory = Box::new(MaybeUninit::<kipc::DefaultIpc>::uninit());
    /// // `memory` is any `&mut MaybeUninit<DefaultIpc>` the kernel owns.
    /// let ipc = kipc::DefaultIpc::init_in_place(&mut memory);
    /// assert!(ipc.process_create().is_ok());
    /// ```
    pub fn init_in_place(slot: &mut core::mem::MaybeUninit<Self>) -> &mut Self {
        // Every field must be written below: this pattern stops compiling when a field
        // is added, so the list cannot silently fall behind the struct.
        let _every_field = |ipc: &Self| {
            let Ipc {
                processes: _,
                mailboxes: _,
                pipes: _,
                fifos: _,
                queues: _,
                regions: _,
                semaphores: _,
                notifications: _,
                mappings: _,
                ledger: _,
                waiting: _,
                next_token: _,
                signalled: _,
                limits: _,
            } = ipc;
        };
        let ipc = slot.as_mut_ptr();
        // SAFETY: `ipc` points at memory valid for writes of a `Self` (it comes from a
        // `&mut MaybeUninit<Self>`, so it is aligned and exclusively ours). Every field
        // is written exactly once below, the large ones element by element, before the
        // memory is read as a `Self`.
        unsafe {
            let processes = core::ptr::addr_of_mut!((*ipc).processes).cast::<Process<HANDLES>>();
            for index in 0..PROCESSES {
                processes.add(index).write(Process {
                    generation: 0,
                    live: false,
                    handles: HandleTable::new(),
                    wait: None,
                    writing: None,
                    handles_in_flight: 0,
                    signals: crate::signal::SignalState::NEW,
                });
            }
            Table::init_in_place(core::ptr::addr_of_mut!((*ipc).mailboxes));
            Table::init_in_place(core::ptr::addr_of_mut!((*ipc).pipes));
            Table::init_in_place(core::ptr::addr_of_mut!((*ipc).fifos));
            Table::init_in_place(core::ptr::addr_of_mut!((*ipc).queues));
            Table::init_in_place(core::ptr::addr_of_mut!((*ipc).regions));
            Table::init_in_place(core::ptr::addr_of_mut!((*ipc).semaphores));
            Table::init_in_place(core::ptr::addr_of_mut!((*ipc).notifications));
            core::ptr::addr_of_mut!((*ipc).mappings).write(heapless::Vec::new());
            core::ptr::addr_of_mut!((*ipc).ledger).write(Ledger::new());
            core::ptr::addr_of_mut!((*ipc).waiting).write(heapless::Vec::new());
            core::ptr::addr_of_mut!((*ipc).next_token).write(1);
            core::ptr::addr_of_mut!((*ipc).signalled).write(0);
            core::ptr::addr_of_mut!((*ipc).limits).write(core::marker::PhantomData);
            slot.assume_init_mut()
        }
    }

    // ------------------------------------------------------------------ processes

    /// Registers a new process and returns its id (fails with [`Error::OutOfProcesses`]).
    ///
    /// # Example
    ///
    /// ```
    /// # use kipc::*;
    /// # #[allow(unused)]
    /// # fn example(ipc: &mut DefaultIpc, host: &mut impl Host, caller: ProcessId, peer: ProcessId, handle: Handle, buffer: UserSlice) -> Result<(), Error> {
    /// let id = ipc.process_create()?; // keep it with your process
    /// assert!(ipc.is_alive(id));
    /// # Ok(()) }
    /// ```
    pub fn process_create(&mut self) -> Result<ProcessId, Error> {
        let slot = self
            .processes
            .iter()
            .position(|p| !p.live)
            .ok_or(Error::OutOfProcesses)?;
        let process = &mut self.processes[slot];
        process.generation = process.generation.wrapping_add(1);
        process.live = true;
        process.wait = None;
        process.writing = None;
        process.handles_in_flight = 0;
        process.signals = crate::signal::SignalState::NEW;
        let id = ProcessId::new(slot, process.generation);
        // A dead slot waits for nothing (`process_exit` dropped it); to be safe.
        self.forget_waiting(slot as u16);
        self.ledger.begin_process(id);
        Ok(id)
    }

    /// Whether `process` is a live process.
    ///
    /// # Example
    ///
    /// ```
    /// # use kipc::*;
    /// # #[allow(unused)]
    /// # fn example(ipc: &mut DefaultIpc, host: &mut impl Host, caller: ProcessId, peer: ProcessId, handle: Handle, buffer: UserSlice) -> Result<(), Error> {
    /// if !ipc.is_alive(peer) {
    ///     return Err(Error::NoSuchProcess);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn is_alive(&self, process: ProcessId) -> bool {
        self.process(process).is_ok()
    }

    /// Tears a process down: cancels its wait, closes all its handles (peers see
    /// `PeerClosed`, end of file or `BrokenPipe` and are woken), removes its region mappings
    /// through the host's address-space trait, and frees its slot.
    ///
    /// # Example
    ///
    /// ```
    /// # use kipc::*;
    /// # #[allow(unused)]
    /// # fn example(ipc: &mut DefaultIpc, host: &mut impl Host, caller: ProcessId, peer: ProcessId, handle: Handle, buffer: UserSlice) -> Result<(), Error> {
    /// // Before freeing the process's address space:
    /// ipc.process_exit(caller, host)?;
    /// # Ok(()) }
    /// ```
    pub fn process_exit<H: Host>(&mut self, process: ProcessId, host: &mut H) -> Result<(), Error> {
        let state = self.process_mut(process)?;
        state.wait = None;
        state.writing = None;
        self.forget_waiting(process.slot() as u16);
        while let Some(capability) = self.process_mut(process)?.handles.take_any() {
            self.release(capability, host);
        }
        // LAB shm: begin
        while let Some(index) = self.mappings.iter().position(|m| m.process == process) {
            let mapping = self.mappings.swap_remove(index);
            self.remove_mapping(mapping, host);
        }
        // LAB shm: stub
        // // LAB shm, step 3: remove every region mapping of the exiting process
        // LAB shm: end
        let slot = self.process_mut(process)?;
        slot.live = false;
        slot.wait = None;
        let signalled = !slot.signals.pending.is_empty();
        slot.signals = crate::signal::SignalState::NEW;
        self.signalled -= usize::from(signalled);
        self.forget_waiting(process.slot() as u16);
        // Receive handles that only this process held may now be reachable from no
        // process at all, except through messages: collect such mailboxes.
        self.collect_unreceivable_mailboxes(host);
        Ok(())
    }

    /// Cancels the recorded wait of `process`, if any (e.g. to deliver a signal), and
    /// returns how to resume it, like any other [`Wakeup`] (nothing is reported through
    /// [`Wake`]): `None` if it was not waiting; `Failed(Cancelled)` normally;
    /// `Completed(Written(n))` for a pipe or FIFO write that had already moved `n`
    /// bytes (a short write, as POSIX reports an interrupted one).
    ///
    /// # Example
    ///
    /// ```
    /// # use kipc::*;
    /// # #[allow(unused)]
    /// # fn example(ipc: &mut DefaultIpc, host: &mut impl Host, caller: ProcessId, peer: ProcessId, handle: Handle, buffer: UserSlice) -> Result<(), Error> {
    /// // Interrupt a parked call, e.g. to deliver a signal:
    /// if let Some(wakeup) = ipc.cancel_wait(caller)? {
    ///     // resume `caller` as `wakeup` says, as for any Wake::wake
    /// }
    /// # Ok(()) }
    /// ```
    pub fn cancel_wait(&mut self, process: ProcessId) -> Result<Option<Wakeup>, Error> {
        let state = self.process_mut(process)?;
        if state.wait.take().is_none() {
            return Ok(None);
        }
        let moved = state.writing.take().map_or(0, |progress| progress.done);
        let wakeup = write_ends(moved, Wakeup::Failed(Error::Cancelled));
        self.forget_waiting(process.slot() as u16);
        Ok(Some(wakeup))
    }

    /// Whether `process` is recorded as waiting.
    ///
    /// # Example
    ///
    /// ```
    /// # use kipc::*;
    /// # #[allow(unused)]
    /// # fn example(ipc: &mut DefaultIpc, host: &mut impl Host, caller: ProcessId, peer: ProcessId, handle: Handle, buffer: UserSlice) -> Result<(), Error> {
    /// let parked = ipc.is_waiting(caller);
    /// # Ok(()) }
    /// ```
    pub fn is_waiting(&self, process: ProcessId) -> bool {
        self.process(process)
            .map(|p| p.wait.is_some())
            .unwrap_or(false)
    }

    /// Ends every wait whose deadline is at or before `now`, reporting each as
    /// `Wakeup::Failed(Error::TimedOut)` (a pipe write that had moved `n` bytes as
    /// `Wakeup::Completed(Completion::Written(n))`), and posts `SIGALRM` for every alarm
    /// that is due ([`Ipc::signal_alarm`]). Returns how many waits expired and alarms
    /// went off. The host must call this when time passes (at the latest at
    /// [`Ipc::next_deadline`]).
    ///
    /// # Example
    ///
    /// ```
    /// # use kipc::*;
    /// # #[allow(unused)]
    /// # fn example(ipc: &mut DefaultIpc, host: &mut impl Host, caller: ProcessId, peer: ProcessId, handle: Handle, buffer: UserSlice) -> Result<(), Error> {
    /// // From the timer interrupt:
    /// let now = host.now();
    /// let woken = ipc.expire(now, host);
    /// # Ok(()) }
    /// ```
    pub fn expire<W: Wake + ?Sized>(&mut self, now: u64, wake: &mut W) -> usize {
        let mut expired = 0;
        for slot in 0..PROCESSES {
            let process = &mut self.processes[slot];
            if !process.live {
                continue;
            }
            if let Some(WaitRecord {
                deadline: Some(deadline),
                ..
            }) = process.wait
                && deadline <= now
            {
                process.wait = None;
                let moved = process.writing.take().map_or(0, |progress| progress.done);
                let wakeup = write_ends(moved, Wakeup::Failed(Error::TimedOut));
                let id = ProcessId::new(slot, process.generation);
                self.forget_waiting(slot as u16);
                expired += 1;
                wake.wake(id, wakeup);
            }
        }
        expired += self.fire_alarms(now, wake);
        expired
    }

    /// The earliest deadline of any waiter or alarm, so the host can program its timer.
    ///
    /// # Example
    ///
    /// ```
    /// # use kipc::*;
    /// # #[allow(unused)]
    /// # fn example(ipc: &mut DefaultIpc, host: &mut impl Host, caller: ProcessId, peer: ProcessId, handle: Handle, buffer: UserSlice) -> Result<(), Error> {
    /// if let Some(deadline) = ipc.next_deadline() {
    ///     // program a one-shot timer for `deadline`
    /// }
    /// # Ok(()) }
    /// ```
    pub fn next_deadline(&self) -> Option<u64> {
        self.processes
            .iter()
            .filter(|p| p.live)
            .flat_map(|p| [p.wait.and_then(|w| w.deadline), p.signals.alarm])
            .flatten()
            .min()
    }

    // ------------------------------------------------------------------ handles

    /// Closes `handle`, dropping its reference to the object (which is destroyed when the
    /// last reference goes; peers are woken as needed).
    ///
    /// # Example
    ///
    /// ```
    /// # use kipc::*;
    /// # #[allow(unused)]
    /// # fn example(ipc: &mut DefaultIpc, host: &mut impl Host, caller: ProcessId, peer: ProcessId, handle: Handle, buffer: UserSlice) -> Result<(), Error> {
    /// ipc.handle_close(caller, handle, host)?;
    /// # Ok(()) }
    /// ```
    pub fn handle_close<H: Host>(
        &mut self,
        caller: ProcessId,
        handle: Handle,
        host: &mut H,
    ) -> Result<(), Error> {
        let capability = self.process_mut(caller)?.handles.remove(handle)?;
        self.release(capability, host);
        if matches!(capability.object, ObjectRef::Mailbox(_))
            && capability.rights.contains(Rights::READ)
        {
            // The last receive handle outside messages may just have gone.
            self.collect_unreceivable_mailboxes(host);
        }
        Ok(())
    }

    /// Makes a second handle to the same object with `rights`, which must be a subset of
    /// the original's. Needs [`Rights::DUPLICATE`].
    ///
    /// # Example
    ///
    /// ```
    /// # use kipc::*;
    /// # #[allow(unused)]
    /// # fn example(ipc: &mut DefaultIpc, host: &mut impl Host, caller: ProcessId, peer: ProcessId, handle: Handle, buffer: UserSlice) -> Result<(), Error> {
    /// let read_only = ipc.handle_duplicate(caller, handle, Rights::READ)?;
    /// # Ok(()) }
    /// ```
    pub fn handle_duplicate(
        &mut self,
        caller: ProcessId,
        handle: Handle,
        rights: Rights,
    ) -> Result<Handle, Error> {
        let capability = self.capability(caller, handle)?;
        if !capability.rights.allows(Rights::DUPLICATE) || !capability.rights.allows(rights) {
            return Err(Error::PermissionDenied);
        }
        self.install_new(
            caller,
            Capability {
                rights,
                ..capability
            },
        )
    }

    /// Privileged (not a system call): gives process `to` a new handle to the object behind
    /// `from`'s `handle`, with `rights` (a subset of the original's). Used by the kernel to
    /// hand initial handles to a process it starts. Reply handles cannot be granted.
    ///
    /// # Example
    ///
    /// ```
    /// # use kipc::*;
    /// # #[allow(unused)]
    /// # fn example(ipc: &mut DefaultIpc, host: &mut impl Host, caller: ProcessId, peer: ProcessId, handle: Handle, buffer: UserSlice) -> Result<(), Error> {
    /// // Give a new process its first handle (privileged: not a system call).
    /// let given = ipc.handle_grant(caller, handle, peer, Rights::READ | Rights::TRANSFER)?;
    /// # Ok(()) }
    /// ```
    pub fn handle_grant(
        &mut self,
        from: ProcessId,
        handle: Handle,
        to: ProcessId,
        rights: Rights,
    ) -> Result<Handle, Error> {
        let capability = self.capability(from, handle)?;
        if capability.object.kind() == ObjectKind::Reply {
            return Err(Error::InvalidArgument);
        }
        if !capability.rights.allows(rights) {
            return Err(Error::PermissionDenied);
        }
        self.process(to)?;
        self.install_new(
            to,
            Capability {
                rights,
                ..capability
            },
        )
    }

    /// What `handle` refers to, its rights and badge.
    ///
    /// # Example
    ///
    /// ```
    /// # use kipc::*;
    /// # #[allow(unused)]
    /// # fn example(ipc: &mut DefaultIpc, host: &mut impl Host, caller: ProcessId, peer: ProcessId, handle: Handle, buffer: UserSlice) -> Result<(), Error> {
    /// let info = ipc.handle_info(caller, handle)?;
    /// let can_write = info.rights.contains(Rights::WRITE);
    /// # Ok(()) }
    /// ```
    pub fn handle_info(&self, caller: ProcessId, handle: Handle) -> Result<HandleInfo, Error> {
        let capability = self.capability(caller, handle)?;
        Ok(HandleInfo {
            kind: capability.object.kind(),
            rights: capability.rights,
            badge: capability.badge,
        })
    }

    // ------------------------------------------------------------------ ledger

    /// The copy ledger.
    ///
    /// # Example
    ///
    /// ```
    /// # use kipc::*;
    /// # #[allow(unused)]
    /// # fn example(ipc: &mut DefaultIpc, host: &mut impl Host, caller: ProcessId, peer: ProcessId, handle: Handle, buffer: UserSlice) -> Result<(), Error> {
    /// let pipe_bytes_in = ipc.ledger().global().copies(Mechanism::Pipe, Direction::UserToKernel).bytes;
    /// # Ok(()) }
    /// ```
    pub fn ledger(&self) -> &Ledger<PROCESSES> {
        &self.ledger
    }

    /// A copy of the ledger as it is now.
    ///
    /// # Example
    ///
    /// ```
    /// # use kipc::*;
    /// # #[allow(unused)]
    /// # fn example(ipc: &mut DefaultIpc, host: &mut impl Host, caller: ProcessId, peer: ProcessId, handle: Handle, buffer: UserSlice) -> Result<(), Error> {
    /// let before = ipc.ledger_snapshot();
    /// let copied = before.global().total_bytes();
    /// # Ok(()) }
    /// ```
    pub fn ledger_snapshot(&self) -> Ledger<PROCESSES> {
        self.ledger.clone()
    }

    /// Zeroes the ledger to start a new experiment.
    ///
    /// # Example
    ///
    /// ```
    /// # use kipc::*;
    /// # #[allow(unused)]
    /// # fn example(ipc: &mut DefaultIpc, host: &mut impl Host, caller: ProcessId, peer: ProcessId, handle: Handle, buffer: UserSlice) -> Result<(), Error> {
    /// ipc.ledger_reset(); // start an experiment from zero
    /// # Ok(()) }
    /// ```
    pub fn ledger_reset(&mut self) {
        self.ledger.reset();
    }

    /// Records a copy the host made itself (for example inside its file system).
    ///
    /// # Example
    ///
    /// ```
    /// # use kipc::*;
    /// # #[allow(unused)]
    /// # fn example(ipc: &mut DefaultIpc, host: &mut impl Host, caller: ProcessId, peer: ProcessId, handle: Handle, buffer: UserSlice) -> Result<(), Error> {
    /// // Your file system copied 4096 bytes to the caller itself:
    /// ipc.account(caller, Mechanism::File, Direction::KernelToUser, 4096);
    /// # Ok(()) }
    /// ```
    pub fn account(
        &mut self,
        process: ProcessId,
        mechanism: Mechanism,
        direction: Direction,
        bytes: usize,
    ) {
        self.ledger.record(process, mechanism, direction, bytes);
    }

    /// For the host's own services: counts pages it mapped (`mapped`) or moved (`loaned`)
    /// into `process` instead of copying bytes (e.g. a file system lending a file's pages).
    ///
    /// # Example
    ///
    /// ```
    /// # use kipc::*;
    /// # #[allow(unused)]
    /// # fn example(ipc: &mut DefaultIpc, host: &mut impl Host, caller: ProcessId, peer: ProcessId, handle: Handle, buffer: UserSlice) -> Result<(), Error> {
    /// // Your file system lent the caller 4 pages:
    /// ipc.account_pages(caller, Mechanism::File, 4, 0);
    /// # Ok(()) }
    /// ```
    pub fn account_pages(
        &mut self,
        process: ProcessId,
        mechanism: Mechanism,
        mapped: usize,
        loaned: usize,
    ) {
        self.ledger.record_pages_mapped(process, mechanism, mapped);
        self.ledger.record_pages_loaned(process, mechanism, loaned);
    }

    /// For the host's own services: copies `source` to `destination` in `process` through
    /// the host's user-memory trait and counts it under `mechanism` (e.g.
    /// [`Mechanism::File`] when a file system read fills a user buffer).
    ///
    /// # Example
    ///
    /// ```
    /// # use kipc::*;
    /// # #[allow(unused)]
    /// # fn example(ipc: &mut DefaultIpc, host: &mut impl Host, caller: ProcessId, peer: ProcessId, handle: Handle, buffer: UserSlice) -> Result<(), Error> {
    /// // A service copies into user memory and counts it in the ledger:
    /// ipc.copy_to_user_accounted(host, caller, Mechanism::File, buffer.prefix(5), b"bytes")?;
    /// # Ok(()) }
    /// ```
    pub fn copy_to_user_accounted<M: UserMemory + ?Sized>(
        &mut self,
        memory: &mut M,
        process: ProcessId,
        mechanism: Mechanism,
        destination: UserSlice,
        source: &[u8],
    ) -> Result<(), Error> {
        self.ledger
            .copy_out(memory, process, mechanism, destination, source)
    }

    /// For the host's own services: copies `source` in `process` into `destination` and
    /// counts it under `mechanism` (e.g. a file system write).
    ///
    /// # Example
    ///
    /// ```
    /// # use kipc::*;
    /// # #[allow(unused)]
    /// # fn example(ipc: &mut DefaultIpc, host: &mut impl Host, caller: ProcessId, peer: ProcessId, handle: Handle, buffer: UserSlice) -> Result<(), Error> {
    /// let mut bytes = [0u8; 16];
    /// ipc.copy_from_user_accounted(host, caller, Mechanism::File, buffer.prefix(16), &mut bytes)?;
    /// # Ok(()) }
    /// ```
    pub fn copy_from_user_accounted<M: UserMemory + ?Sized>(
        &mut self,
        memory: &mut M,
        process: ProcessId,
        mechanism: Mechanism,
        source: UserSlice,
        destination: &mut [u8],
    ) -> Result<(), Error> {
        self.ledger
            .copy_in(memory, process, mechanism, source, destination)
    }

    /// Counts live objects, handles, frames and mappings, for leak checks.
    ///
    /// # Example
    ///
    /// ```
    /// # use kipc::*;
    /// # #[allow(unused)]
    /// # fn example(ipc: &mut DefaultIpc, host: &mut impl Host, caller: ProcessId, peer: ProcessId, handle: Handle, buffer: UserSlice) -> Result<(), Error> {
    /// // After every process exited, nothing may be left:
    /// assert_eq!(ipc.usage(), Usage::default());
    /// # Ok(()) }
    /// ```
    pub fn usage(&self) -> Usage {
        let live = self.processes.iter().filter(|p| p.live);
        Usage {
            processes: live.clone().count(),
            handles: live.clone().map(|p| p.handles.len()).sum(),
            waiters: live.filter(|p| p.wait.is_some()).count(),
            mailboxes: self.mailboxes.live_count(),
            pipes: self.pipes.live_count(),
            fifos: self.fifos.live_count(),
            message_queues: self.queues.live_count(),
            regions: self.regions.live_count(),
            semaphores: self.semaphores.live_count(),
            notifications: self.notifications.live_count(),
            frames_held: self.regions.iter_live().map(|(_, r)| r.frames.len()).sum(),
            mappings: self.mappings.len(),
            mapped_pages: self.mappings.iter().map(|m| m.pages).sum(),
            queued_messages: self
                .mailboxes
                .iter_live()
                .map(|(_, m)| m.queued())
                .sum::<usize>()
                + self
                    .queues
                    .iter_live()
                    .map(|(_, q)| q.queued())
                    .sum::<usize>(),
            handles_in_flight: self
                .mailboxes
                .iter_live()
                .map(|(_, m)| m.handles_in_flight())
                .sum(),
        }
    }

    // ------------------------------------------------------------------ internals

    pub(crate) fn process(&self, process: ProcessId) -> Result<&Process<HANDLES>, Error> {
        self.processes
            .get(process.slot())
            .filter(|p| p.live && p.generation == process.generation())
            .ok_or(Error::NoSuchProcess)
    }

    /// Charges `sender` for `handles` handles travelling in a buffered message.
    pub(crate) fn charge_message(&mut self, sender: ProcessId, handles: usize) {
        if let Ok(process) = self.process_mut(sender) {
            process.handles_in_flight += handles;
        }
    }

    /// Releases the charge of a message that left its mailbox. A sender that has exited
    /// since is charged nothing (its counters died with it).
    pub(crate) fn uncharge_message(&mut self, sender: Option<ProcessId>, handles: usize) {
        if let Some(process) = sender.and_then(|sender| self.process_mut(sender).ok()) {
            process.handles_in_flight = process.handles_in_flight.saturating_sub(handles);
        }
    }

    pub(crate) fn process_mut(
        &mut self,
        process: ProcessId,
    ) -> Result<&mut Process<HANDLES>, Error> {
        self.processes
            .get_mut(process.slot())
            .filter(|p| p.live && p.generation == process.generation())
            .ok_or(Error::NoSuchProcess)
    }

    /// The capability behind `handle` in `caller`'s table.
    pub(crate) fn capability(
        &self,
        caller: ProcessId,
        handle: Handle,
    ) -> Result<Capability, Error> {
        Ok(*self.process(caller)?.handles.get(handle)?)
    }

    /// The capability behind `handle`, checked for kind and rights.
    pub(crate) fn lookup(
        &self,
        caller: ProcessId,
        handle: Handle,
        kind: ObjectKind,
        needed: Rights,
    ) -> Result<Capability, Error> {
        let capability = self.capability(caller, handle)?;
        if capability.object.kind() != kind {
            return Err(Error::WrongObjectKind);
        }
        if !capability.rights.allows(needed) {
            return Err(Error::PermissionDenied);
        }
        Ok(capability)
    }

    /// Fails with [`Error::OutOfHandles`] unless `process` has `count` free handle slots.
    pub(crate) fn reserve_handles(&self, process: ProcessId, count: usize) -> Result<(), Error> {
        if self.process(process)?.handles.free() < count {
            return Err(Error::OutOfHandles);
        }
        Ok(())
    }

    /// Installs a capability that is a *new* reference (counted).
    pub(crate) fn install_new(
        &mut self,
        process: ProcessId,
        capability: Capability,
    ) -> Result<Handle, Error> {
        let handle = self.process_mut(process)?.handles.insert(capability)?;
        self.acquire(capability);
        Ok(handle)
    }

    /// Installs a capability that *moves* from elsewhere (its reference travels with it).
    pub(crate) fn install_moved(
        &mut self,
        process: ProcessId,
        capability: Capability,
    ) -> Result<Handle, Error> {
        self.process_mut(process)?.handles.insert(capability)
    }

    /// Checks a list of handles to transfer: each present, with `TRANSFER`, no repeats.
    pub(crate) fn transfers(
        &self,
        caller: ProcessId,
        handles: &[Handle],
    ) -> Result<heapless::Vec<Capability, MAX_MESSAGE_HANDLES>, Error> {
        if handles.len() > MAX_MESSAGE_HANDLES {
            return Err(Error::InvalidArgument);
        }
        let mut capabilities = heapless::Vec::new();
        if handles.is_empty() {
            // The common case: nothing to look up.
            return Ok(capabilities);
        }
        for (i, handle) in handles.iter().enumerate() {
            if handles[..i].contains(handle) {
                return Err(Error::InvalidArgument);
            }
            let capability = self.capability(caller, *handle)?;
            if !capability.rights.allows(Rights::TRANSFER) {
                return Err(Error::PermissionDenied);
            }
            capabilities
                .push(capability)
                .map_err(|_| Error::InvalidArgument)?;
        }
        Ok(capabilities)
    }

    /// Removes already-checked handles from `caller`'s table (their references move on).
    pub(crate) fn take_transfers(&mut self, caller: ProcessId, handles: &[Handle]) {
        if let Ok(process) = self.process_mut(caller) {
            for handle in handles {
                let _ = process.handles.remove(*handle);
            }
        }
    }

    /// Installs moved capabilities into `process` (free slots checked beforehand).
    pub(crate) fn install_transfers(
        &mut self,
        process: ProcessId,
        capabilities: &[Capability],
    ) -> heapless::Vec<Handle, MAX_MESSAGE_HANDLES> {
        let mut handles = heapless::Vec::new();
        for capability in capabilities {
            if let Ok(handle) = self.install_moved(process, *capability) {
                let _ = handles.push(handle);
            }
        }
        handles
    }

    /// Counts a new reference to the object behind `capability`.
    pub(crate) fn acquire(&mut self, capability: Capability) {
        match capability.object {
            ObjectRef::Mailbox(key) => self.mailbox_acquired(key, capability.rights),
            ObjectRef::Pipe(key) => self.pipe_acquired(key, capability.rights),
            ObjectRef::MessageQueue(key) => {
                if let Some(slot) = self.queues.slot_mut(key) {
                    slot.references += 1;
                }
            }
            ObjectRef::Region(key) => {
                if let Some(slot) = self.regions.slot_mut(key) {
                    slot.references += 1;
                }
            }
            ObjectRef::Semaphore(key) => {
                if let Some(slot) = self.semaphores.slot_mut(key) {
                    slot.references += 1;
                }
            }
            ObjectRef::Notification(key) => {
                if let Some(slot) = self.notifications.slot_mut(key) {
                    slot.references += 1;
                }
            }
            ObjectRef::Reply { .. } | ObjectRef::Process(_) => {}
        }
    }

    /// Drops one reference; destroys the object when it was the last.
    pub(crate) fn release<H: Host>(&mut self, capability: Capability, host: &mut H) {
        match capability.object {
            ObjectRef::Mailbox(key) => self.mailbox_released(key, capability.rights, host),
            ObjectRef::Pipe(key) => self.pipe_released(key, capability.rights, host),
            ObjectRef::MessageQueue(key) => self.queue_released(key),
            ObjectRef::Region(key) => self.region_released(key, host),
            ObjectRef::Semaphore(key) => self.semaphore_released(key, host),
            ObjectRef::Notification(key) => self.notification_released(key, host),
            ObjectRef::Reply { caller, token } => self.reply_released(caller, token, host),
            ObjectRef::Process(_) => {}
        }
    }

    /// Records `caller` as waiting on `on`, or fails for non-blocking calls and passed
    /// deadlines.
    pub(crate) fn block<T, C: Clock + ?Sized>(
        &mut self,
        caller: ProcessId,
        on: WaitOn,
        blocking: Blocking,
        clock: &C,
    ) -> Result<Outcome<T>, Error> {
        self.block_inlined(caller, on, blocking, clock)
    }

    /// [`Ipc::block`] kept out of line, for a hot path on which blocking is the exception
    /// (a send to a full mailbox): a copy inlined there would cost the common case.
    #[inline(never)]
    pub(crate) fn block_out_of_line<T, C: Clock + ?Sized>(
        &mut self,
        caller: ProcessId,
        on: WaitOn,
        blocking: Blocking,
        clock: &C,
    ) -> Result<Outcome<T>, Error> {
        self.block_inlined(caller, on, blocking, clock)
    }

    /// [`Ipc::block`], inlined where a round trip blocks on every call (a server loop's
    /// receive): the wait is then written in place, not built and passed to a call.
    #[inline(always)]
    pub(crate) fn block_inlined<T, C: Clock + ?Sized>(
        &mut self,
        caller: ProcessId,
        on: WaitOn,
        blocking: Blocking,
        clock: &C,
    ) -> Result<Outcome<T>, Error> {
        match blocking {
            Blocking::NonBlocking => return Err(Error::WouldBlock),
            Blocking::Until(deadline) if clock.now() >= deadline => return Err(Error::TimedOut),
            _ => {}
        }
        self.record_wait(caller, on, blocking.deadline())?;
        Ok(Outcome::Blocked)
    }

    /// Records `caller` as waiting on `on` until `deadline`, unconditionally. (Inlined:
    /// its callers are [`Ipc::block`] and a call waiting for its reply.)
    #[inline(always)]
    pub(crate) fn record_wait(
        &mut self,
        caller: ProcessId,
        on: WaitOn,
        deadline: Option<u64>,
    ) -> Result<(), Error> {
        let waited = self
            .process_mut(caller)?
            .wait
            .replace(WaitRecord { on, deadline })
            .is_some();
        let slot = caller.slot() as u16;
        if waited {
            // A new wait replaces the old one and goes to the back of the line.
            self.forget_waiting(slot);
        }
        // Each slot appears at most once, so there is always room.
        let _ = self.waiting.push(slot);
        Ok(())
    }

    /// Drops `slot` from the blocking order, keeping the others in order.
    pub(crate) fn forget_waiting(&mut self, slot: u16) {
        if let Some(index) = self.waiting.iter().position(|&waiting| waiting == slot) {
            self.remove_waiting_at(index);
        }
    }

    /// Drops entry `index` of the blocking order, keeping the others in order.
    #[inline(always)]
    pub(crate) fn remove_waiting_at(&mut self, index: usize) {
        // Shift by hand: the list is a few entries long, and `remove`'s
        // memmove call costs more than the shift.
        for next in index + 1..self.waiting.len() {
            self.waiting[next - 1] = self.waiting[next];
        }
        self.waiting.pop();
    }

    /// The longest-waiting process whose wait matches.
    pub(crate) fn oldest_waiter(
        &self,
        matches: impl Fn(&WaitOn) -> bool,
    ) -> Option<(ProcessId, WaitOn)> {
        // `waiting` is in blocking order, so the first match is the oldest.
        self.waiting.iter().find_map(|&slot| {
            let p = &self.processes[usize::from(slot)];
            let wait = p.wait.as_ref().filter(|_| p.live)?;
            matches(&wait.on).then(|| (ProcessId::new(usize::from(slot), p.generation), wait.on))
        })
    }

    /// Clears `process`'s wait and reports `wakeup` for it. (Inlined: the
    /// wake-up is then built where the host reads it, not copied through a call.)
    #[inline(always)]
    pub(crate) fn finish_wait<W: Wake + ?Sized>(
        &mut self,
        process: ProcessId,
        wakeup: Wakeup,
        wake: &mut W,
    ) {
        if self.end_wait(process) {
            wake.wake(process, wakeup);
        }
    }

    /// Clears `process`'s wait, if it has one, and says whether it had.
    #[inline(always)]
    pub(crate) fn end_wait(&mut self, process: ProcessId) -> bool {
        if let Ok(p) = self.process_mut(process)
            && p.wait.take().is_some()
        {
            self.forget_waiting(process.slot() as u16);
            return true;
        }
        false
    }

    /// Ends every matching wait (oldest first) with `wakeup`.
    pub(crate) fn wake_all<W: Wake + ?Sized>(
        &mut self,
        wakeup: Wakeup,
        wake: &mut W,
        matches: impl Fn(&WaitOn) -> bool,
    ) {
        while let Some((process, _)) = self.oldest_waiter(&matches) {
            self.finish_wait(process, wakeup.clone(), wake);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::{TestHost, TestIpc};
    use crate::*;

    #[test]
    fn processes_have_generations() {
        let mut ipc = TestIpc::new();
        let mut host = TestHost::new();
        let a = ipc.process_create().unwrap();
        ipc.process_exit(a, &mut host).unwrap();
        let b = ipc.process_create().unwrap();
        assert_eq!(a.slot(), b.slot());
        assert_ne!(a, b);
        assert!(!ipc.is_alive(a));
        assert_eq!(ipc.semaphore_create(a, 0), Err(Error::NoSuchProcess));
        assert_eq!(ipc.process_exit(a, &mut host), Err(Error::NoSuchProcess));
    }

    #[test]
    fn process_table_exhaustion_is_an_error() {
        let mut ipc = TestIpc::new();
        for _ in 0..4 {
            ipc.process_create().unwrap();
        }
        assert_eq!(ipc.process_create(), Err(Error::OutOfProcesses));
    }

    #[test]
    fn duplicate_only_reduces_rights() {
        let mut ipc = TestIpc::new();
        let mut host = TestHost::new();
        let a = ipc.process_create().unwrap();
        let s = ipc.semaphore_create(a, 0).unwrap();
        let weak = ipc.handle_duplicate(a, s, Rights::WAIT).unwrap();
        assert_eq!(ipc.handle_info(a, weak).unwrap().rights, Rights::WAIT);
        assert_eq!(
            ipc.handle_duplicate(a, weak, Rights::WAIT),
            Err(Error::PermissionDenied)
        );
        assert_eq!(
            ipc.semaphore_post(a, weak, &mut host),
            Err(Error::PermissionDenied)
        );
        let m = ipc.mailbox_create(a).unwrap();
        assert_eq!(
            ipc.semaphore_post(a, m, &mut host),
            Err(Error::WrongObjectKind)
        );
        ipc.handle_close(a, s, &mut host).unwrap();
        assert_eq!(ipc.handle_close(a, s, &mut host), Err(Error::StaleHandle));
        assert_eq!(ipc.usage().semaphores, 1, "the duplicate keeps it alive");
        ipc.handle_close(a, weak, &mut host).unwrap();
        assert_eq!(ipc.usage().semaphores, 0);
    }

    #[test]
    fn handle_table_exhaustion_is_an_error() {
        let mut ipc = TestIpc::new();
        let a = ipc.process_create().unwrap();
        for _ in 0..4 {
            ipc.notification_create(a).unwrap();
        }
        assert_eq!(ipc.notification_create(a), Err(Error::OutOfObjects));
        for _ in 0..4 {
            ipc.semaphore_create(a, 1).unwrap();
        }
        assert_eq!(ipc.mailbox_create(a), Err(Error::OutOfHandles));
        assert_eq!(
            ipc.usage().mailboxes,
            0,
            "the failed create left no object behind"
        );
        assert_eq!(ipc.usage().handles, 8);
    }

    #[test]
    fn expire_reports_timeouts() {
        let mut ipc = TestIpc::new();
        let mut host = TestHost::new();
        let a = ipc.process_create().unwrap();
        let s = ipc.semaphore_create(a, 0).unwrap();
        assert!(
            ipc.semaphore_wait(a, s, Blocking::Until(10), &mut host)
                .unwrap()
                .is_blocked()
        );
        assert_eq!(ipc.next_deadline(), Some(10));
        assert_eq!(ipc.expire(9, &mut host), 0);
        assert_eq!(ipc.expire(10, &mut host), 1);
        assert_eq!(host.wakes, [(a, Wakeup::Failed(Error::TimedOut))]);
        host.now = 11;
        assert_eq!(
            ipc.semaphore_wait(a, s, Blocking::Until(10), &mut host),
            Err(Error::TimedOut)
        );
        assert!(
            ipc.semaphore_wait(a, s, Blocking::Forever, &mut host)
                .unwrap()
                .is_blocked()
        );
        assert_eq!(
            ipc.cancel_wait(a).unwrap(),
            Some(Wakeup::Failed(Error::Cancelled))
        );
        assert_eq!(ipc.cancel_wait(a).unwrap(), None);
    }

    #[test]
    fn init_in_place_needs_no_stack_for_the_whole_core() {
        // 128 KiB of stack for a core of about 270 KiB: building it by value here would
        // overflow the thread's stack and abort the test run.
        let size = core::mem::size_of::<crate::DefaultIpc>();
        assert!(size > 2 * 128 * 1024, "the core is only {size} bytes");
        let worker = std::thread::Builder::new()
            .stack_size(128 * 1024)
            .spawn(|| {
                let mut memory = Box::<crate::DefaultIpc>::new_uninit();
                let ipc = crate::DefaultIpc::init_in_place(&mut memory);
                let mut host = crate::testing::TestHost::new();
                let a = ipc.process_create().unwrap();
                let (read, write) = ipc.pipe_create(a).unwrap();
                host.poke(a, 0, b"in place");
                let wrote =
                    ipc.pipe_write(a, write, host.slice(0, 8), Blocking::NonBlocking, &mut host);
                assert_eq!(wrote, Ok(Outcome::Done(8)));
                let read =
                    ipc.pipe_read(a, read, host.slice(16, 8), Blocking::NonBlocking, &mut host);
                assert_eq!(read, Ok(Outcome::Done(8)));
                ipc.process_exit(a, &mut host).unwrap();
                ipc.usage()
            })
            .unwrap();
        assert_eq!(worker.join().unwrap(), Usage::default());
    }
}
