//! The process table: who exists, in what state, and whom a system call woke.
//!
//! A process is an address space, a kernel stack (see [`super::scheduler`]),
//! a kipc identity (its handle table lives in kipc) and a saved
//! [`TrapFrame`]. Every entry into the kernel (system call, interrupt,
//! exception) saves the interrupted user state as a `TrapFrame` at the top of
//! the process's kernel stack.
//!
//! Blocking: a system call that must wait leaves its frame as it was and marks
//! the process `BlockedIpc`. kipc later reports a [`Wakeup`], which
//! [`Processes::wake`] applies to the parked frame (see [`super::resume`]) and
//! the process becomes `Ready`.
//!
//! Everything behind the kernel lock, kipc included, is one [`System`].

use core::sync::atomic::AtomicU64;

use kipc::{ProcessId, Wakeup};
use kipc_arch::interrupts::TrapFrame;
use spin::Mutex;

use super::resume;
use crate::memory::address_space::AddressSpace;

/// Process slots.
pub const MAX_PROCESSES: usize = 16;

/// Bytes buffered per pipe or FIFO: 64 KiB, as Linux, chosen from
/// `cargo run -- bench --pipe-sweep` (docs/benchmarks.md, "Choosing the pipe
/// capacity"): from 16 KiB to 64 KiB a 1 MiB file in 64 KiB chunks went from
/// 777 to 720 instructions per KiB, and 256 KiB pipes gained about 1% more
/// for 3 MiB more kernel memory. A build may set another power of two with the
/// environment variable `KIPC_PIPE_CAPACITY` (the sweep does).
pub const PIPE_CAPACITY: usize = match option_env!("KIPC_PIPE_CAPACITY") {
    Some(text) => parse_capacity(text),
    None => 64 * 1024,
};

/// `text` as a decimal byte count: a power of two from 512 (`PIPE_ATOMIC`)
/// to 1 MiB, or the build stops with a message saying so.
const fn parse_capacity(text: &str) -> usize {
    let bytes = text.as_bytes();
    assert!(!bytes.is_empty(), "KIPC_PIPE_CAPACITY is empty");
    let mut value = 0usize;
    let mut index = 0;
    while index < bytes.len() {
        let digit = bytes[index];
        assert!(
            digit.is_ascii_digit(),
            "KIPC_PIPE_CAPACITY must be a decimal number of bytes"
        );
        assert!(value <= 1 << 20, "KIPC_PIPE_CAPACITY is over 1 MiB");
        value = value * 10 + (digit - b'0') as usize;
        index += 1;
    }
    assert!(
        value.is_power_of_two() && value >= 512 && value <= 1 << 20,
        "KIPC_PIPE_CAPACITY must be a power of two from 512 to 1048576"
    );
    value
}

/// This kernel's kipc configuration, in one place: 16 processes, 64 handles
/// each, 16 objects of each kind, 4 KiB messages (a page per mailbox or queue
/// message, so file transfers move page-sized chunks), [`PIPE_CAPACITY`]-byte
/// pipes, 8-message mailboxes, 16-message queues, 64-page regions, 64
/// mappings, and [`KernelLimits`].
pub type KernelIpc = kipc::Ipc<
    MAX_PROCESSES,
    64,
    16,
    4096,
    PIPE_CAPACITY,
    { kipc_abi::MAILBOX_DEPTH },
    16,
    64,
    64,
    KernelLimits,
>;

/// This kernel's quotas: no process may take more than half of any shared
/// table, so a process started after a hog still gets its share.
pub struct KernelLimits;

impl kipc::Limits for KernelLimits {
    const QUOTAS: kipc::Quotas = kipc::Quotas {
        objects_per_kind: 8,
        mappings: 32,
        // A whole file (8 MiB) may be on loan at once.
        region_frames: 2048,
        buffered_messages: kipc_abi::BUFFERED_PER_SENDER,
        handles_in_flight: 16,
    };
}
/// Longest program name.
pub const NAME_LENGTH: usize = 24;

/// What a process is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Waiting for the CPU.
    Ready,
    /// On the CPU.
    Running,
    /// Parked in a kipc call until kipc reports a wakeup.
    BlockedIpc,
    /// Waiting for a child to exit.
    WaitingForChild(ProcessId),
    /// Sleeping until the tick count reaches this value.
    Sleeping(u64),
}

/// One process.
pub struct Process {
    /// kipc identity (slot + generation).
    pub id: ProcessId,
    /// Program name.
    pub name: heapless::String<NAME_LENGTH>,
    /// Scheduling state.
    pub state: State,
    /// Page tables.
    pub space: AddressSpace,
    /// Saved user state (at the top of this process's kernel stack).
    pub frame: *mut TrapFrame,
    /// The parent, if any.
    pub parent: Option<ProcessId>,
    /// Where signal handlers return to (set with `signal_action`; 0 = none yet).
    pub restorer: u64,
    /// Signal handlers entered and not yet returned from (a `signal_return`
    /// outside any handler is a forgery).
    pub handler_depth: u32,
}

// SAFETY: `frame` points into the kernel stack of this process slot, which is
// only touched under the SYSTEM lock with interrupts off.
unsafe impl Send for Process {}

/// An exited process whose parent has not collected its exit code yet.
#[derive(Clone, Copy, Debug)]
pub struct Zombie {
    /// Who exited.
    pub id: ProcessId,
    /// Its parent.
    pub parent: Option<ProcessId>,
    /// Its exit code.
    pub code: u32,
}

/// Counters for the demo and the tests.
pub struct Counters {
    /// System calls handled.
    pub syscalls: AtomicU64,
    /// Switches from one process to another.
    pub context_switches: AtomicU64,
    /// Processes killed by faults.
    pub killed: AtomicU64,
    /// Calls the mailbox fast path carried (`syscalls::fast_path`).
    pub fast_path_handoffs: AtomicU64,
}

/// Counters since boot.
pub static COUNTERS: Counters = Counters {
    syscalls: AtomicU64::new(0),
    context_switches: AtomicU64::new(0),
    killed: AtomicU64::new(0),
    fast_path_handoffs: AtomicU64::new(0),
};

/// The process table and scheduler state.
pub struct Processes {
    /// Slots, indexed by `ProcessId::slot()`.
    pub table: [Option<Process>; MAX_PROCESSES],
    pub(super) ready: heapless::Deque<usize, MAX_PROCESSES>,
    /// Whether each slot is in `ready` (so queueing needs no scan).
    queued: [bool; MAX_PROCESSES],
    /// Whom the current system call has woken, for the direct switch.
    pub(super) woken: Woken,
    /// The slot on the CPU, `None` while idle.
    pub current: Option<usize>,
    /// The last process that ran (to count real switches).
    pub(super) last: Option<ProcessId>,
    /// Exited processes waiting to be collected.
    pub zombies: heapless::Vec<Zombie, 32>,
    /// The scenario's first process; when it exits the scenario is judged.
    pub root: Option<ProcessId>,
}

/// Whom the current system call has woken (see the direct switch in
/// [`super::scheduler`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Woken {
    /// Nobody yet.
    Nobody,
    /// Exactly this slot.
    One(usize),
    /// More than one process.
    Several,
}

/// Everything behind the kernel lock: kipc and the processes.
pub struct System {
    /// The IPC core.
    pub ipc: KernelIpc,
    /// Processes and scheduling.
    pub processes: Processes,
}

/// The kernel lock. Taken with interrupts off (system calls run with IF
/// clear; interrupt handlers run with IF clear), so it never spins.
pub static SYSTEM: Mutex<System> = Mutex::new(System {
    ipc: KernelIpc::new(),
    processes: Processes {
        table: [const { None }; MAX_PROCESSES],
        ready: heapless::Deque::new(),
        queued: [false; MAX_PROCESSES],
        woken: Woken::Nobody,
        current: None,
        last: None,
        zombies: heapless::Vec::new(),
        root: None,
    },
});

impl Processes {
    /// The process `id`, if it is alive.
    pub fn get(&self, id: ProcessId) -> Option<&Process> {
        self.table
            .get(id.slot())?
            .as_ref()
            .filter(|process| process.id == id)
    }

    /// The process `id`, mutably, if it is alive.
    pub fn get_mut(&mut self, id: ProcessId) -> Option<&mut Process> {
        self.table
            .get_mut(id.slot())?
            .as_mut()
            .filter(|process| process.id == id)
    }

    /// The running process.
    pub fn current(&self) -> Option<&Process> {
        self.table[self.current?].as_ref()
    }

    /// The running process's id.
    pub fn current_id(&self) -> Option<ProcessId> {
        self.current().map(|process| process.id)
    }

    /// Number of live processes.
    pub fn live(&self) -> usize {
        self.table.iter().filter(|slot| slot.is_some()).count()
    }

    /// Puts `slot` at the back of the ready queue.
    pub fn make_ready(&mut self, slot: usize) {
        if let Some(process) = self.table[slot].as_mut() {
            process.state = State::Ready;
            self.enqueue(slot);
        }
    }

    /// Puts `slot` at the back of the ready queue unless it is already queued.
    #[inline(always)]
    fn enqueue(&mut self, slot: usize) {
        if !self.queued[slot] {
            // Each slot is queued at most once and the capacity equals the
            // slot count, so this cannot fail.
            let _ = self.ready.push_back(slot);
            self.queued[slot] = true;
        }
    }

    /// Applies `wakeup` to a process parked in kipc and marks it ready
    /// without queueing it; returns its slot, or `None` (and does nothing) if
    /// it is not parked in kipc.
    #[inline(always)]
    pub fn resume(&mut self, id: ProcessId, wakeup: &Wakeup) -> Option<usize> {
        let process = self.get_mut(id)?;
        if process.state != State::BlockedIpc {
            return None;
        }
        // SAFETY: a blocked process's frame sits untouched at the top of its
        // kernel stack until it runs again, and we hold the kernel lock.
        let frame = unsafe { &mut *process.frame };
        resume::complete_wakeup(&process.space, frame, wakeup);
        process.state = State::Ready;
        Some(id.slot())
    }

    /// Takes the front of the ready queue.
    pub(super) fn pop_ready(&mut self) -> Option<usize> {
        let slot = self.ready.pop_front()?;
        self.queued[slot] = false;
        Some(slot)
    }

    /// Starts counting the processes a system call wakes (for the direct switch).
    pub fn begin_call(&mut self) {
        self.woken = Woken::Nobody;
    }

    /// Ends the kernel's own waits (sleep, waiting for a child) of every
    /// process that now has a signal to deliver: the call returns
    /// `Interrupted`, and the handler runs before the process sees it. (kipc
    /// ends its own waits itself, through [`Processes::wake`].)
    pub fn interrupt_host_waits(&mut self, ipc: &KernelIpc) {
        for slot in 0..MAX_PROCESSES {
            let Some(process) = self.table[slot].as_mut() else {
                continue;
            };
            if matches!(
                process.state,
                State::Sleeping(_) | State::WaitingForChild(_)
            ) && ipc.signal_ready(process.id)
            {
                let interrupted = kipc::ErrorCode::Interrupted as u32;
                // SAFETY: a waiting process's frame sits untouched at the top
                // of its kernel stack, and we hold the kernel lock.
                unsafe { (*process.frame).rax = kipc_abi::encode(Err(interrupted)) };
                self.make_ready(slot);
            }
        }
    }

    /// Resumes a process parked in kipc as `wakeup` says.
    #[inline(always)]
    pub fn wake(&mut self, id: ProcessId, wakeup: Wakeup) {
        let Some(slot) = self.resume(id, &wakeup) else {
            return;
        };
        self.enqueue(slot);
        self.woken = match self.woken {
            Woken::Nobody => Woken::One(slot),
            _ => Woken::Several,
        };
    }
}
