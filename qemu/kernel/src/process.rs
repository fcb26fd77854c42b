//! Processes and the scheduler.
//!
//! A process is an address space, a kernel stack, a kipc identity (its handle
//! table lives in kipc) and a saved [`TrapFrame`]. Every entry into the kernel
//! (system call, interrupt, exception) saves the interrupted user state as a
//! `TrapFrame` at the top of the process's kernel stack; the dispatcher returns
//! the frame to resume, which may belong to another process. Because kernel
//! code never sleeps in the middle of a function, that is the whole context
//! switch: pick a frame, load its CR3 and kernel stack, `iretq`.
//!
//! Blocking: a system call that must wait leaves its frame as it was and marks
//! the process `Blocked`. kipc later reports a [`Wakeup`]: `Retry` rewinds RIP
//! over the 2-byte `syscall` instruction so the call runs again (its number and
//! arguments are still in the saved registers); `Completed` and `Failed` write
//! the result registers. Either way the process becomes `Ready`.
//!
//! Scheduling is round-robin: the timer preempts a process running in user mode
//! every tick, and an idle context (`hlt` with interrupts on) runs when nothing
//! is ready. Nothing busy-waits.
//!
//! Direct switch (seL4's fast path, in [`switch_after_call`]): when a system
//! call parks its caller and the same call woke exactly one process, which is
//! now at the front of the ready queue (nobody was waiting ahead of it: the
//! server's reply woke the client and the server then blocked in receive, or a
//! client's message completed the server's receive and the client then blocked
//! for the reply), the kernel hands the CPU straight to that process without
//! the generic queue walk. Being at the front, it is exactly the process
//! round-robin would pick: nobody is overtaken, so the order of everyone else
//! is unchanged and no one starves. The process handed the CPU runs for the
//! rest of the current timer tick (the time slice is the tick, not the
//! process's own), and the next tick preempts it as usual. In every other case
//! (nobody woken, several woken, others queued ahead) the call falls back to
//! [`schedule`].

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use kipc::{ProcessId, Wakeup};
use spin::Mutex;
use x86_64::VirtAddr;

use crate::address_space::{self, AddressSpace, UserAccess};
use crate::interrupts::TrapFrame;
use crate::memory::{self, FRAME_SIZE};
use crate::{elf, gdt, println, syscall};

/// Process slots.
pub const MAX_PROCESSES: usize = 16;

/// This kernel's kipc configuration: 16 processes, 64 handles each, 16
/// objects of each kind, 4 KiB messages (a page per mailbox or queue
/// message, so file transfers move page-sized chunks), 16 KiB pipes.
pub type KernelIpc = kipc::Ipc<MAX_PROCESSES, 64, 16, 4096, 16384>;
/// Kernel stack per process.
pub const KERNEL_STACK_SIZE: usize = 32 * 1024;
/// Top of every user stack (exclusive).
pub const USER_STACK_TOP: u64 = 0x0000_7fff_ffff_0000;
/// Pages of user stack (a never-mapped guard page sits below them).
pub const USER_STACK_PAGES: u64 = 16;
/// Longest program name.
pub const NAME_LENGTH: usize = 24;

#[repr(C, align(16))]
struct KernelStack([u8; KERNEL_STACK_SIZE]);

static mut KERNEL_STACKS: [KernelStack; MAX_PROCESSES] =
    [const { KernelStack([0; KERNEL_STACK_SIZE]) }; MAX_PROCESSES];

const IDLE_STACK_SIZE: usize = 8 * 1024;
static mut IDLE_STACK: KernelStack = KernelStack([0; KERNEL_STACK_SIZE]);

fn kernel_stack_top(slot: usize) -> u64 {
    // SAFETY: only the address is computed; the stacks are used by the CPU
    // through RSP, never through Rust references.
    let base = unsafe { core::ptr::addr_of_mut!(KERNEL_STACKS[slot]) } as u64;
    base + KERNEL_STACK_SIZE as u64
}

fn idle_stack_top() -> u64 {
    core::ptr::addr_of_mut!(IDLE_STACK) as u64 + IDLE_STACK_SIZE as u64
}

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
    /// Open files.
    pub files: [Option<crate::fs::OpenFile>; crate::fs::MAX_OPEN],
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
}

/// Counters since boot.
pub static COUNTERS: Counters = Counters {
    syscalls: AtomicU64::new(0),
    context_switches: AtomicU64::new(0),
    killed: AtomicU64::new(0),
};

/// The process table and scheduler state.
pub struct Processes {
    /// Slots, indexed by `ProcessId::slot()`.
    pub table: [Option<Process>; MAX_PROCESSES],
    ready: heapless::Deque<usize, MAX_PROCESSES>,
    /// Whether each slot is in `ready` (so queueing needs no scan).
    queued: [bool; MAX_PROCESSES],
    /// Whom the current system call has woken, for the direct switch.
    woken: Woken,
    /// The slot on the CPU, `None` while idle.
    pub current: Option<usize>,
    /// The last process that ran (to count real switches).
    last: Option<ProcessId>,
    /// Exited processes waiting to be collected.
    pub zombies: heapless::Vec<Zombie, 32>,
    /// The scenario's first process; when it exits the scenario is judged.
    pub root: Option<ProcessId>,
}

/// Whom the current system call has woken (see the direct switch above).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Woken {
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

/// Why a program could not be started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpawnError {
    /// No program by that name in the boot archive.
    NotFound,
    /// The ELF file was refused.
    BadProgram(elf::ElfError),
    /// No process slot left.
    OutOfProcesses,
    /// No memory for its pages.
    OutOfFrames,
}

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

    /// Takes the front of the ready queue.
    fn pop_ready(&mut self) -> Option<usize> {
        let slot = self.ready.pop_front()?;
        self.queued[slot] = false;
        Some(slot)
    }

    /// Starts counting the processes a system call wakes (for the direct switch).
    pub fn begin_call(&mut self) {
        self.woken = Woken::Nobody;
    }

    /// Resumes a process parked in kipc as `wakeup` says.
    #[inline(always)]
    pub fn wake(&mut self, id: ProcessId, wakeup: Wakeup) {
        let Some(process) = self.get_mut(id) else {
            return;
        };
        if process.state != State::BlockedIpc {
            return;
        }
        // SAFETY: a blocked process's frame sits untouched at the top of its
        // kernel stack until it runs again, and we hold the kernel lock.
        let frame = unsafe { &mut *process.frame };
        syscall::complete_wakeup(&process.space, frame, &wakeup);
        process.state = State::Ready;
        let slot = id.slot();
        self.enqueue(slot);
        self.woken = match self.woken {
            Woken::Nobody => Woken::One(slot),
            _ => Woken::Several,
        };
    }
}

/// Starts `name` from the boot archive as a new process with argument string
/// `argument`. The caller moves handles in afterwards (through kipc) and then
/// calls [`Processes::make_ready`].
pub fn spawn(
    system: &mut System,
    name: &str,
    argument: &[u8],
    parent: Option<ProcessId>,
) -> Result<ProcessId, SpawnError> {
    let file = crate::programs::find(name).ok_or(SpawnError::NotFound)?;
    let program = elf::parse(file).map_err(SpawnError::BadProgram)?;
    let id = system
        .ipc
        .process_create()
        .map_err(|_| SpawnError::OutOfProcesses)?;
    let slot = id.slot();
    let mut space = match AddressSpace::new() {
        Ok(space) => space,
        Err(_) => {
            discard_ipc_process(system, id);
            return Err(SpawnError::OutOfFrames);
        }
    };
    let built = address_space::load_program(&mut space, &program)
        .and_then(|()| map_stack(&mut space))
        .map_err(|_| SpawnError::OutOfFrames)
        .and_then(|()| write_arguments(&space, argument).map_err(|_| SpawnError::OutOfFrames));
    let user_stack = match built {
        Ok(stack) => stack,
        Err(error) => {
            space.destroy();
            discard_ipc_process(system, id);
            return Err(error);
        }
    };
    let frame_address = kernel_stack_top(slot) - size_of::<TrapFrame>() as u64;
    let frame = frame_address as *mut TrapFrame;
    let selectors = gdt::selectors();
    // SAFETY: the slot's kernel stack is unused (its previous owner, if any,
    // has exited), and the frame fits at its top.
    unsafe {
        frame.write(TrapFrame {
            rip: program.entry,
            cs: u64::from(selectors.user_code.0),
            rflags: 0x202,
            rsp: user_stack.stack_pointer,
            ss: u64::from(selectors.user_data.0),
            rdi: user_stack.argument,
            rsi: argument.len() as u64,
            ..TrapFrame::default()
        })
    };
    let mut process_name = heapless::String::new();
    for character in name.chars().take(NAME_LENGTH) {
        let _ = process_name.push(character);
    }
    system.processes.table[slot] = Some(Process {
        id,
        name: process_name,
        state: State::Ready,
        space,
        frame,
        parent,
        files: [None; crate::fs::MAX_OPEN],
    });
    Ok(id)
}

fn discard_ipc_process(system: &mut System, id: ProcessId) {
    let System { ipc, processes } = system;
    let mut host = crate::host::KernelHost { processes };
    let _ = ipc.process_exit(id, &mut host);
}

fn map_stack(space: &mut AddressSpace) -> Result<(), address_space::MapError> {
    let access = UserAccess {
        writable: true,
        executable: false,
    };
    for page in 0..USER_STACK_PAGES {
        let address = USER_STACK_TOP - (page + 1) * FRAME_SIZE;
        let frame = memory::allocate_frame().ok_or(address_space::MapError::OutOfFrames)?;
        if let Err(error) = space.map(address, frame, access, true) {
            // SAFETY: the frame was never mapped; it is still only ours.
            unsafe { memory::free_frame(frame) };
            return Err(error);
        }
    }
    Ok(())
}

struct UserStack {
    stack_pointer: u64,
    argument: u64,
}

/// Copies the argument string to the top of the new stack; returns the
/// initial stack pointer (16-byte aligned, minus 8 as after a call) and the
/// argument's address.
fn write_arguments(
    space: &AddressSpace,
    argument: &[u8],
) -> Result<UserStack, address_space::Fault> {
    let argument_address = (USER_STACK_TOP - argument.len() as u64) & !15;
    space.copy_to_user(argument_address, argument)?;
    Ok(UserStack {
        stack_pointer: argument_address - 8,
        argument: argument_address,
    })
}

/// Picks the next process to run and prepares the CPU for it (CR3, kernel
/// stack); returns the frame to resume. With nothing ready, returns a fresh
/// idle frame (or `idle_frame` when already idle).
pub fn schedule(processes: &mut Processes, interrupted: *mut TrapFrame) -> *mut TrapFrame {
    while let Some(slot) = processes.pop_ready() {
        if let Some(frame) = run(processes, slot) {
            return frame;
        }
    }
    processes.current = None;
    if interrupted as u64 > idle_stack_top() - IDLE_STACK_SIZE as u64
        && (interrupted as u64) < idle_stack_top()
    {
        return interrupted;
    }
    address_space::activate_kernel();
    idle_frame()
}

/// Puts the ready process in `slot` on the CPU (CR3, kernel stack) and
/// returns its frame; `None` if the slot holds no ready process (a stale
/// queue entry).
#[inline(always)]
fn run(processes: &mut Processes, slot: usize) -> Option<*mut TrapFrame> {
    let process = processes.table[slot].as_mut()?;
    if process.state != State::Ready {
        return None;
    }
    process.state = State::Running;
    process.space.activate();
    let top = kernel_stack_top(slot);
    gdt::set_kernel_stack(VirtAddr::new(top));
    syscall::set_kernel_stack(top);
    if processes.last != Some(process.id) {
        COUNTERS.context_switches.fetch_add(1, Ordering::Relaxed);
        processes.last = Some(process.id);
    }
    let frame = process.frame;
    processes.current = Some(slot);
    Some(frame)
}

/// After a system call parked its caller: the direct switch (see the module
/// documentation) when the call woke exactly one process and it is first in
/// line, otherwise [`schedule`].
pub fn switch_after_call(processes: &mut Processes, interrupted: *mut TrapFrame) -> *mut TrapFrame {
    if let Woken::One(slot) = processes.woken
        && processes.ready.front() == Some(&slot)
    {
        processes.woken = Woken::Nobody;
        let _ = processes.pop_ready();
        if let Some(frame) = run(processes, slot) {
            return frame;
        }
    }
    schedule(processes, interrupted)
}

fn idle_frame() -> *mut TrapFrame {
    let frame = (idle_stack_top() - size_of::<TrapFrame>() as u64) as *mut TrapFrame;
    let selectors = gdt::selectors();
    // SAFETY: the idle stack is in use only while idle; we are not idle now
    // (we run on a process's kernel stack or the boot stack), so its top is free.
    unsafe {
        frame.write(TrapFrame {
            rip: idle_loop as *const () as u64,
            cs: u64::from(selectors.kernel_code.0),
            rflags: 0x202,
            rsp: idle_stack_top() - size_of::<TrapFrame>() as u64 - 64,
            ss: u64::from(selectors.kernel_data.0),
            ..TrapFrame::default()
        })
    };
    frame
}

extern "C" fn idle_loop() -> ! {
    loop {
        x86_64::instructions::interrupts::enable_and_hlt();
    }
}

/// Saves the running process's frame pointer (called on every entry).
pub fn save_current(processes: &mut Processes, frame: *mut TrapFrame) {
    if let Some(slot) = processes.current
        && let Some(process) = processes.table[slot].as_mut()
    {
        process.frame = frame;
    }
}

/// Whether the scheduler runs (set once the root process starts).
static RUNNING: AtomicBool = AtomicBool::new(false);

/// Free frames just before the root process was created.
pub static FRAMES_BEFORE_ROOT: AtomicU64 = AtomicU64::new(0);

/// Timer tick: wake sleepers and expired kipc waiters, preempt user code.
pub fn on_tick(frame: *mut TrapFrame) -> *mut TrapFrame {
    if !RUNNING.load(Ordering::Relaxed) {
        return frame;
    }
    let mut guard = SYSTEM.lock();
    let System { ipc, processes } = &mut *guard;
    // SAFETY: the frame the interrupt stub just pushed.
    let from_user = unsafe { (*frame).came_from_user() };
    if from_user {
        save_current(processes, frame);
    }
    let now = crate::timer::ticks();
    for slot in 0..MAX_PROCESSES {
        let sleeping_until = match processes.table[slot].as_ref().map(|p| p.state) {
            Some(State::Sleeping(until)) => until,
            _ => continue,
        };
        if sleeping_until <= now {
            processes.make_ready(slot);
        }
    }
    if ipc.next_deadline().is_some_and(|deadline| deadline <= now) {
        let mut host = crate::host::KernelHost { processes };
        ipc.expire(now, &mut host);
    }
    if !from_user && processes.current.is_some() {
        // A kernel-mode interrupt while a process is current cannot happen
        // (system calls run with interrupts off); resume what was interrupted.
        return frame;
    }
    if let Some(slot) = processes.current {
        if processes.ready.is_empty() {
            return frame;
        }
        processes.make_ready(slot);
    }
    schedule(processes, frame)
}

/// Ends process `id` with `code`: kipc closes its handles (waking peers) and
/// removes its region mappings, its address space is freed, its parent is
/// told. Returns nothing; the caller schedules.
pub fn exit(system: &mut System, id: ProcessId, code: u32) {
    let System { ipc, processes } = system;
    {
        let mut host = crate::host::KernelHost { processes };
        if let Err(error) = ipc.process_exit(id, &mut host) {
            println!("kernel: kipc refused to tear down {id:?}: {error}");
        }
    }
    let Some(mut process) = processes.table[id.slot()].take() else {
        return;
    };
    crate::fs::FILES.lock().close_all(&mut process.files);
    if processes.current == Some(id.slot()) {
        processes.current = None;
    }
    // The dying space must not be active while its tables are freed; if
    // another process is running (a parent killing a child), it continues
    // on its own tables.
    address_space::activate_kernel();
    process.space.destroy();
    if let Some(running) = processes
        .current
        .and_then(|slot| processes.table[slot].as_ref())
    {
        running.space.activate();
    }
    // Orphans: children of the dead process lose their parent.
    for slot in processes.table.iter_mut().flatten() {
        if slot.parent == Some(id) {
            slot.parent = None;
        }
    }
    processes.zombies.retain(|zombie| zombie.parent != Some(id));
    let parent_waiting = process.parent.and_then(|parent| {
        let waiting = processes.get(parent)?.state == State::WaitingForChild(id);
        waiting.then_some(parent)
    });
    if let Some(parent) = parent_waiting {
        let parent_process = processes.get_mut(parent).expect("checked above");
        // SAFETY: the waiting parent's frame is parked at the top of its stack.
        let frame = unsafe { &mut *parent_process.frame };
        frame.rax = kipc_abi::encode(Ok(u64::from(code)));
        processes.make_ready(parent.slot());
    } else if process.parent.is_some() {
        let _ = processes.zombies.push(Zombie {
            id,
            parent: process.parent,
            code,
        });
    }
    if processes.root == Some(id) {
        crate::scenarios::root_exited(system_view(ipc, processes), &process.name, code);
    }
}

/// Removes a child that never ran (its spawn failed half-way): like `exit`,
/// but no exit code is kept, since its parent never learned its id.
pub fn discard(system: &mut System, id: ProcessId) {
    exit(system, id, kipc_abi::EXIT_KILLED);
    system.processes.zombies.retain(|zombie| zombie.id != id);
}

/// A read-only view for judging a scenario.
pub struct SystemView<'a> {
    /// The IPC core.
    pub ipc: &'a KernelIpc,
    /// The processes.
    pub processes: &'a Processes,
}

fn system_view<'a>(ipc: &'a KernelIpc, processes: &'a Processes) -> SystemView<'a> {
    SystemView { ipc, processes }
}

/// Kills the running process after a fault in user mode, with one line saying
/// what happened, and schedules another.
pub fn kill_current(frame: *mut TrapFrame, what: &str, address: Option<u64>) -> *mut TrapFrame {
    let mut guard = SYSTEM.lock();
    let system = &mut *guard;
    save_current(&mut system.processes, frame);
    let Some(process) = system.processes.current() else {
        crate::fail(format_args!("user fault with no current process"));
    };
    let id = process.id;
    // SAFETY: the frame the exception stub just pushed.
    let rip = unsafe { (*frame).rip };
    let pages = process.space.owned_pages();
    match address {
        Some(address) => println!(
            "kernel: process {} ({}) killed: {what} at address {address:#x} (rip {rip:#x}); its {pages} pages go back",
            id.slot(),
            process.name
        ),
        None => println!(
            "kernel: process {} ({}) killed: {what} (rip {rip:#x}); its {pages} pages go back",
            id.slot(),
            process.name
        ),
    }
    COUNTERS.killed.fetch_add(1, Ordering::Relaxed);
    exit(system, id, kipc_abi::EXIT_KILLED);
    schedule(&mut system.processes, frame)
}

/// Starts the scheduler with `program` as the scenario's root process.
pub fn run_root(program: &str, argument: &str) -> ! {
    // From here on the kernel runs only in interrupt and system-call context,
    // with interrupts off; the first `iretq` turns them back on. (Taking the
    // kernel lock with interrupts on would deadlock against the timer.)
    x86_64::instructions::interrupts::disable();
    FRAMES_BEFORE_ROOT.store(memory::frame_stats().free, Ordering::Relaxed);
    let first = {
        let mut guard = SYSTEM.lock();
        let system = &mut *guard;
        let id = match spawn(system, program, argument.as_bytes(), None) {
            Ok(id) => id,
            Err(error) => crate::fail(format_args!("cannot start {program}: {error:?}")),
        };
        system.processes.root = Some(id);
        system.processes.make_ready(id.slot());
        RUNNING.store(true, Ordering::Relaxed);
        schedule(&mut system.processes, core::ptr::null_mut())
    };
    // SAFETY: `first` is a complete frame at the top of a kernel stack (a
    // process's or the idle one), with the matching CR3 and RSP0 loaded.
    unsafe { crate::interrupts::resume(first) }
}
