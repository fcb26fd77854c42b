//! The system-call dispatcher: the kernel's
//! [`Handlers::system_call`](kipc_arch::interrupts::Handlers::system_call).
//!
//! The entry stub (in `kipc_arch::syscall`) saved the caller's registers as a
//! [`TrapFrame`] on its kernel stack. Arguments arrive in `rdi rsi rdx r10 r8
//! r9`, the number in `rax`; the result goes back in `rax` (see
//! `kipc_abi::encode`), a second one in `rdx`. Every pointer is checked by
//! walking the caller's page tables before a byte is copied; no user address
//! is ever dereferenced by the kernel.

use core::sync::atomic::Ordering;

use kipc::ProcessId;
use kipc_abi::number;
use kipc_arch::interrupts::TrapFrame;
use kipc_arch::verdict::fail;

use super::common::{Flow, apply};
use super::{fast_path, file_calls, ipc_calls, process_calls, signal_calls};
use crate::processes::breakdown::{self, Phase, measured};
use crate::processes::table::{COUNTERS, SYSTEM, System};
use crate::processes::{scheduler, signals};

/// Handles one system call; returns the frame to resume. The mailbox calls
/// and reply-receives and the semaphore post-and-wait try the fast path
/// first (see [`fast_path`]).
pub fn dispatch(frame: *mut TrapFrame) -> *mut TrapFrame {
    // SAFETY: the frame the entry stub just pushed on the caller's stack.
    let number = unsafe { (*frame).rax };
    // Both ways are tail calls: the other calls pay one test, no frame.
    if fast_path::candidate(number) {
        return dispatch_fast(frame);
    }
    dispatch_general(frame)
}

/// A mailbox call or reply-receive, or a semaphore post-and-wait: the fast
/// path, or if it declines the general dispatcher.
#[inline(never)]
fn dispatch_fast(frame: *mut TrapFrame) -> *mut TrapFrame {
    fast_path::call(frame).unwrap_or_else(|| dispatch_general(frame))
}

/// Every call the fast path does not take.
#[inline(never)]
fn dispatch_general(frame: *mut TrapFrame) -> *mut TrapFrame {
    COUNTERS.syscalls.fetch_add(1, Ordering::Relaxed);
    let started = breakdown::start();
    let mut guard = SYSTEM.lock();
    let system = &mut *guard;
    scheduler::save_current(&mut system.processes, frame);
    system.processes.begin_call();
    let Some(caller) = system.processes.current_id() else {
        fail(format_args!("system call with no current process"));
    };
    // SAFETY: the frame the entry stub just pushed on the caller's stack.
    let registers = unsafe { &*frame };
    let number = registers.rax;
    let arguments = [
        registers.rdi,
        registers.rsi,
        registers.rdx,
        registers.r10,
        registers.r8,
        registers.r9,
    ];
    let flow = handle(system, caller, number, arguments);
    let next = match flow {
        Flow::Return(..) => {
            // SAFETY: as above; the caller resumes with these results.
            apply(unsafe { &mut *frame }, flow);
            frame
        }
        Flow::Switch => measured!(Scheduler, {
            scheduler::switch_after_call(&mut system.processes, frame)
        }),
    };
    // Last, with the results in place: a handler's frame saves them.
    let next = signals::before_user(system, next);
    breakdown::stop(Phase::Dispatch, started);
    next
}

/// Routes a call by number: the mailbox round trip first (the hot path),
/// then process calls (0..16), file calls, and everything else to kipc.
fn handle(system: &mut System, caller: ProcessId, number: u64, arguments: [u64; 6]) -> Flow {
    match number {
        number::MAILBOX_CALL
        | number::MAILBOX_REPLY_RECEIVE
        | number::MAILBOX_CALL_SHORT
        | number::MAILBOX_REPLY_RECEIVE_SHORT => {
            ipc_calls::mailbox_hot_path(system, caller, number, arguments)
        }
        number::PIPE_READ => ipc_calls::pipe_read(system, caller, arguments),
        number::PIPE_WRITE => ipc_calls::pipe_write(system, caller, arguments),
        number::MQUEUE_SEND => ipc_calls::mqueue_send(system, caller, arguments),
        number::MQUEUE_RECEIVE => ipc_calls::mqueue_receive(system, caller, arguments),
        number::SEMAPHORE_WAIT | number::SEMAPHORE_POST => {
            ipc_calls::semaphore_calls(system, caller, number, arguments)
        }
        number::EXIT..=number::BREAKDOWN => {
            process_calls::handle(system, caller, number, arguments)
        }
        number::FILE_READ | number::FILE_WRITE => {
            file_calls::read_write(system, caller, number, arguments)
        }
        number::FILE_OPEN..=number::FILE_APPEND_PAGES => {
            file_calls::handle(system, caller, number, arguments)
        }
        number::SIGNAL_ACTION..=number::PROCESS_HANDLE => {
            signal_calls::handle(system, caller, number, arguments)
        }
        number::SEMAPHORE_POST_WAIT => ipc_calls::semaphore_post_wait(
            system,
            caller,
            [arguments[0], arguments[1], arguments[2]],
        ),
        _ => ipc_calls::handle(system, caller, number, arguments),
    }
}
