//! Signals, this kernel's half: kipc decides which signal is delivered and
//! what it means (see `kipc::signal`); this file does what kipc leaves to the
//! host — terminate the process, or build a handler's frame on its user stack
//! and later restore the context from it.
//!
//! Every way back to user mode passes through [`before_user`]: the system
//! call dispatcher calls it last, and `main.rs` installs [`on_tick`] and
//! [`after_fault`] as the timer and exception handlers (they run the
//! scheduler's and lifecycle's handlers, then this). When no process has a
//! pending signal, the check is one load and a branch.
//!
//! The frame (`kipc_abi::SignalFrame`) goes below the interrupted stack's
//! 128-byte red zone, 16-byte aligned, with the restorer's address just
//! under it as the handler's return address:
//!
//! ```text
//!   interrupted rsp ->  ...
//!                       128-byte red zone (left alone)
//!   rsi (16-aligned) -> SignalFrame { signal, mask, rax .. r15, rip, rflags, rsp }
//!   rsp at entry    ->  restorer address      (handler's `ret` jumps there)
//! ```
//!
//! The handler runs as `handler(signal, &mut SignalFrame)`; when it returns,
//! the restorer issues `signal_return` with `rsp` at the frame, and
//! [`signal_return`] checks the frame before resuming it: `rip` and `rsp` in
//! the user half, interrupts on, no I/O privilege, nested-task, trap or
//! virtual-8086 flags. A frame that fails is a forgery, and the process is
//! killed. Both copies are counted in the ledger as `Mechanism::Signal`.

use kipc::{Delivery, Mechanism, ProcessId, Signal, SignalSet, UserLimit, UserSlice};
use kipc_abi::{Record, SignalFrame};
use kipc_arch::interrupts::{TrapFrame, UserException};

use super::host::KernelHost;
use super::lifecycle;
use super::scheduler;
use super::table::{SYSTEM, System};
use crate::memory::address_space::{USER_END, USER_START};

/// Bytes under the interrupted stack pointer that the frame leaves alone
/// (the System V red zone).
const RED_ZONE: u64 = 128;

/// The restorer's address plus the frame.
const PUSHED: usize = 8 + size_of::<SignalFrame>();

/// Flags a frame may carry back: the arithmetic flags and DF, plus IF and the
/// always-one bit 1, which it must.
const USER_FLAGS: u64 = 0b1100_1101_0101; // CF PF AF ZF SF DF OF
const IF: u64 = 1 << 9;
const ALWAYS_ONE: u64 = 1 << 1;

/// Delivers the signals of the process about to run in user mode (the one
/// `frame` belongs to), if it has any: returns the frame to resume, which is
/// another process's if this one was terminated.
#[inline(always)]
pub fn before_user(system: &mut System, frame: *mut TrapFrame) -> *mut TrapFrame {
    // One load when no process anywhere has a pending signal (the usual case).
    if !system.ipc.signal_attention() {
        return frame;
    }
    deliver_pending(system, frame)
}

/// [`before_user`] when some process has a pending signal: delivers those of
/// the process about to run, if it is one of them.
#[inline(never)]
fn deliver_pending(system: &mut System, mut frame: *mut TrapFrame) -> *mut TrapFrame {
    loop {
        let Some(slot) = system.processes.current else {
            return frame;
        };
        let Some(id) = system.processes.table[slot].as_ref().map(|p| p.id) else {
            return frame;
        };
        if !system.ipc.signal_ready(id) {
            return frame;
        }
        frame = deliver(system, id, frame);
    }
}

/// The timer handler: the scheduler's tick, then signals (an alarm may just
/// have gone off, or the next process may have some waiting).
pub fn on_tick(frame: *mut TrapFrame) -> *mut TrapFrame {
    let frame = scheduler::on_tick(frame);
    let mut guard = SYSTEM.lock();
    before_user(&mut guard, frame)
}

/// The user-exception handler: the faulting process is killed, then the next
/// one gets its signals.
pub fn after_fault(frame: *mut TrapFrame, exception: UserException) -> *mut TrapFrame {
    let frame = lifecycle::kill_current(frame, exception);
    let mut guard = SYSTEM.lock();
    before_user(&mut guard, frame)
}

/// Takes one signal of `id` and acts on it.
#[inline(never)]
fn deliver(system: &mut System, id: ProcessId, frame: *mut TrapFrame) -> *mut TrapFrame {
    match system.ipc.signal_take(id) {
        Ok(Some(Delivery::Terminate(signal))) => {
            lifecycle::kill(
                system,
                id,
                format_args!("{} (its default action)", SignalName(signal)),
                kipc_abi::signal::EXIT_BASE + signal.number(),
            );
            scheduler::schedule(&mut system.processes, frame)
        }
        Ok(Some(Delivery::Handler {
            signal,
            entry,
            saved_mask,
            ..
        })) => match push_frame(system, id, signal, entry, saved_mask) {
            Ok(()) => frame,
            Err(address) => {
                lifecycle::kill(
                    system,
                    id,
                    format_args!(
                        "no room for a {} frame on its stack (at {address:#x})",
                        SignalName(signal)
                    ),
                    kipc_abi::signal::EXIT_BASE + signal.number(),
                );
                scheduler::schedule(&mut system.processes, frame)
            }
        },
        Ok(None) => {
            // The signal that ended a suspension was discarded after all.
            let _ = system.ipc.signal_suspend_end(id);
            frame
        }
        Err(_) => frame,
    }
}

/// Pushes the handler frame for `signal` on `id`'s user stack and points the
/// saved context at the handler. Fails with the address that could not be
/// written (the stack is full or gone).
fn push_frame(
    system: &mut System,
    id: ProcessId,
    signal: Signal,
    entry: u64,
    saved_mask: SignalSet,
) -> Result<(), u64> {
    let Some(process) = system.processes.get(id) else {
        return Ok(());
    };
    // SAFETY: the process's saved user context at the top of its kernel
    // stack; it is not running, and we hold the kernel lock.
    let context = unsafe { *process.frame };
    let restorer = process.restorer;
    let record = SignalFrame {
        signal: u64::from(signal.number()),
        mask: saved_mask.bits(),
        rax: context.rax,
        rbx: context.rbx,
        rcx: context.rcx,
        rdx: context.rdx,
        rsi: context.rsi,
        rdi: context.rdi,
        rbp: context.rbp,
        r8: context.r8,
        r9: context.r9,
        r10: context.r10,
        r11: context.r11,
        r12: context.r12,
        r13: context.r13,
        r14: context.r14,
        r15: context.r15,
        rip: context.rip,
        rflags: context.rflags,
        rsp: context.rsp,
    };
    let frame_address = context
        .rsp
        .checked_sub(RED_ZONE + size_of::<SignalFrame>() as u64)
        .ok_or(context.rsp)?
        & !15;
    let base = frame_address - 8;
    let mut bytes = [0u8; PUSHED];
    bytes[..8].copy_from_slice(&restorer.to_le_bytes());
    bytes[8..].copy_from_slice(record.as_bytes());
    let destination = UserSlice::new(base, PUSHED, UserLimit::new(USER_END)).map_err(|_| base)?;
    let System { ipc, processes } = system;
    ipc.copy_to_user_accounted(
        &mut KernelHost { processes },
        id,
        Mechanism::Signal,
        destination,
        &bytes,
    )
    .map_err(|_| base)?;
    let Some(process) = processes.get_mut(id) else {
        return Ok(());
    };
    // SAFETY: as above.
    let context = unsafe { &mut *process.frame };
    context.rip = entry;
    context.rdi = u64::from(signal.number());
    context.rsi = frame_address;
    context.rsp = base;
    context.rflags = IF | ALWAYS_ONE;
    process.handler_depth += 1;
    Ok(())
}

/// `signal_return`: restores the context saved in the frame at the caller's
/// `rsp`. `Err` says why the frame is refused (the caller must then be
/// killed).
pub fn signal_return(system: &mut System, caller: ProcessId) -> Result<(), &'static str> {
    let Some(process) = system.processes.get(caller) else {
        return Err("gone");
    };
    if process.handler_depth == 0 {
        return Err("signal_return outside a signal handler");
    }
    // SAFETY: the caller's frame, saved by this system call's entry.
    let at = unsafe { (*process.frame).rsp };
    let source = UserSlice::new(at, size_of::<SignalFrame>(), UserLimit::new(USER_END))
        .map_err(|_| "signal frame outside user memory")?;
    let mut bytes = [0u8; size_of::<SignalFrame>()];
    let System { ipc, processes } = system;
    ipc.copy_from_user_accounted(
        &mut KernelHost { processes },
        caller,
        Mechanism::Signal,
        source,
        &mut bytes,
    )
    .map_err(|_| "unreadable signal frame")?;
    let record = SignalFrame::from_bytes(&bytes).ok_or("short signal frame")?;
    check_frame(&record)?;
    ipc.signal_return(caller, SignalSet::from_bits(record.mask))
        .map_err(|_| "gone")?;
    let Some(process) = processes.get_mut(caller) else {
        return Err("gone");
    };
    process.handler_depth -= 1;
    // SAFETY: as above; cs and ss stay the user selectors the entry saved.
    let context = unsafe { &mut *process.frame };
    context.rax = record.rax;
    context.rbx = record.rbx;
    context.rcx = record.rcx;
    context.rdx = record.rdx;
    context.rsi = record.rsi;
    context.rdi = record.rdi;
    context.rbp = record.rbp;
    context.r8 = record.r8;
    context.r9 = record.r9;
    context.r10 = record.r10;
    context.r11 = record.r11;
    context.r12 = record.r12;
    context.r13 = record.r13;
    context.r14 = record.r14;
    context.r15 = record.r15;
    context.rip = record.rip;
    context.rflags = record.rflags;
    context.rsp = record.rsp;
    Ok(())
}

/// Whether a frame coming back from user space stays in user mode's bounds.
fn check_frame(record: &SignalFrame) -> Result<(), &'static str> {
    if !(USER_START..USER_END).contains(&record.rip) {
        return Err("forged signal frame: rip outside user memory");
    }
    if !(USER_START..=USER_END).contains(&record.rsp) {
        return Err("forged signal frame: rsp outside user memory");
    }
    if record.rflags & IF == 0 || record.rflags & ALWAYS_ONE == 0 {
        return Err("forged signal frame: interrupts off");
    }
    if record.rflags & !(USER_FLAGS | IF | ALWAYS_ONE) != 0 {
        return Err("forged signal frame: privileged flags (IOPL, NT, TF, VM, AC, ...)");
    }
    Ok(())
}

/// A signal's name for the console.
pub struct SignalName(pub Signal);

impl core::fmt::Display for SignalName {
    fn fmt(&self, out: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let name = match self.0 {
            Signal::SIGHUP => "SIGHUP",
            Signal::SIGINT => "SIGINT",
            Signal::SIGKILL => "SIGKILL",
            Signal::SIGUSR1 => "SIGUSR1",
            Signal::SIGUSR2 => "SIGUSR2",
            Signal::SIGPIPE => "SIGPIPE",
            Signal::SIGALRM => "SIGALRM",
            Signal::SIGTERM => "SIGTERM",
            Signal::SIGCHLD => "SIGCHLD",
            other => return write!(out, "signal {}", other.number()),
        };
        out.write_str(name)
    }
}
