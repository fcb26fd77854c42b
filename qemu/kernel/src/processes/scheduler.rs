//! The scheduler: kernel stacks, the ready queue, the timer tick.
//!
//! Because kernel code never sleeps in the middle of a function, a context
//! switch is: pick a frame, load its CR3 and kernel stack, `iretq` (the
//! dispatcher returns the frame to resume, which may belong to another
//! process).
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

use core::sync::atomic::{AtomicBool, Ordering};

use kipc_arch::interrupts::TrapFrame;

use super::breakdown::measured;
use super::host::KernelHost;
use super::table::{COUNTERS, MAX_PROCESSES, Processes, SYSTEM, State, System, Woken};
use crate::memory::address_space;

/// Kernel stack per process.
pub const KERNEL_STACK_SIZE: usize = 32 * 1024;

#[repr(C, align(16))]
struct KernelStack([u8; KERNEL_STACK_SIZE]);

static mut KERNEL_STACKS: [KernelStack; MAX_PROCESSES] =
    [const { KernelStack([0; KERNEL_STACK_SIZE]) }; MAX_PROCESSES];

const IDLE_STACK_SIZE: usize = 8 * 1024;
static mut IDLE_STACK: KernelStack = KernelStack([0; KERNEL_STACK_SIZE]);

pub fn kernel_stack_top(slot: usize) -> u64 {
    // SAFETY: only the address is computed; the stacks are used by the CPU
    // through RSP, never through Rust references.
    let base = unsafe { core::ptr::addr_of_mut!(KERNEL_STACKS[slot]) } as u64;
    base + KERNEL_STACK_SIZE as u64
}

fn idle_stack_top() -> u64 {
    core::ptr::addr_of_mut!(IDLE_STACK) as u64 + IDLE_STACK_SIZE as u64
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
    measured!(Switch, run_inner(processes, slot))
}

/// [`run`]'s work.
#[inline(always)]
fn run_inner(processes: &mut Processes, slot: usize) -> Option<*mut TrapFrame> {
    let process = processes.table[slot].as_mut()?;
    if process.state != State::Ready {
        return None;
    }
    process.state = State::Running;
    process.space.activate();
    let top = kernel_stack_top(slot);
    kipc_arch::cpu::set_kernel_stack(top);
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
/// line, otherwise [`schedule`]. (Inlined into the dispatcher, its one caller.)
#[inline(always)]
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

/// After the mailbox fast path parked its caller and readied the process in
/// `slot` (see `syscalls::fast_path`): straight to it when nobody else is
/// ready, which is the process round-robin would pick, being alone in line;
/// otherwise it joins the back of the queue and [`schedule`] picks, as for
/// any woken process.
#[inline(always)]
pub fn hand_to(
    processes: &mut Processes,
    slot: usize,
    interrupted: *mut TrapFrame,
) -> *mut TrapFrame {
    if processes.ready.is_empty()
        && let Some(frame) = run(processes, slot)
    {
        return frame;
    }
    processes.make_ready(slot);
    schedule(processes, interrupted)
}

fn idle_frame() -> *mut TrapFrame {
    let frame = (idle_stack_top() - size_of::<TrapFrame>() as u64) as *mut TrapFrame;
    let selectors = kipc_arch::gdt::selectors();
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

/// Idle with nothing ready: if no process sleeps and no kipc wait has a
/// deadline, nothing can ever wake anyone (ticks only wake sleepers and expire
/// deadlines). That is a deadlock among the processes: report every process
/// and its state, and fail the run instead of idling forever.
fn report_deadlock(processes: &Processes, deadline_pending: bool) {
    let live = processes.table.iter().flatten();
    let sleeper = live
        .clone()
        .any(|process| matches!(process.state, State::Sleeping(_)));
    if deadline_pending || sleeper || live.clone().next().is_none() {
        return;
    }
    kipc_arch::println!("kernel: deadlock: every process waits and nothing can wake one:");
    for process in live {
        // SAFETY: a parked process's frame sits untouched at the top of its stack.
        let number = unsafe { (*process.frame).rax };
        kipc_arch::println!(
            "kernel:   process {} ({}) {:?}, in system call {number}",
            process.id.slot(),
            process.name,
            process.state
        );
    }
    kipc_arch::verdict::fail(format_args!(
        "deadlock: every process waits and nothing can wake one"
    ));
}

/// Turns preemption and wake-ups on the timer tick on (once the first
/// process exists).
pub fn start() {
    RUNNING.store(true, Ordering::Relaxed);
}

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
    let now = kipc_arch::timer::ticks();
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
        let mut host = KernelHost { processes };
        ipc.expire(now, &mut host);
        // An alarm may have gone off for a process in one of our own waits.
        processes.interrupt_host_waits(ipc);
    }
    if processes.current.is_none() && processes.ready.is_empty() {
        report_deadlock(processes, ipc.next_deadline().is_some());
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
