//! The mailbox fast path: a short call handed straight to the server waiting
//! for it, and a short reply handed straight to the caller waiting for it,
//! each followed by a switch to the process that got the message (after
//! seL4's `fastpath_call` and `fastpath_reply_recv`).
//!
//! [`short_call`] runs before the general dispatcher for the two short mailbox
//! calls (39 and 40). It asks kipc's fast path
//! ([`kipc::Ipc::mailbox_call_fast`], [`kipc::Ipc::mailbox_reply_receive_fast`]),
//! which either does exactly what the general call would do (same checks,
//! copy, ledger counts, handles and waits; `tests/core_fastpath.rs` holds it to
//! that) or declines having changed nothing. On a hand-off the kernel writes
//! the woken process's result registers as any wake-up does
//! ([`crate::processes::resume`]), parks the caller, and puts the woken
//! process on the CPU without the ready queue when nobody else is ready
//! ([`scheduler::hand_to`]). What it skips is the general path's machinery:
//! the second decoding, the `Outcome` plumbing, the wake-up through kipc's
//! host and the queue. When kipc declines (no server waiting, a message
//! queued, an error to report, ...) the general dispatcher runs the call from
//! the start, so every error and every slow case is the general path's.

use core::sync::atomic::Ordering;

use kipc::{Blocking, Handle};
use kipc_abi::{MESSAGE_REGISTER_BYTES, MESSAGE_REGISTERS_ADDRESS, number};
use kipc_arch::interrupts::TrapFrame;

use super::ipc_calls::slice;
use crate::processes::breakdown::{self, Phase, measured};
use crate::processes::host::KernelHost;
use crate::processes::table::{COUNTERS, SYSTEM, State, System};
use crate::processes::{scheduler, signals};

/// Runs the short call or reply-receive in `frame` (its number in `rax`) on
/// the fast path and returns the frame to resume, or `None`, having changed
/// nothing, when the general dispatcher must run it.
#[inline(never)]
pub fn short_call(frame: *mut TrapFrame) -> Option<*mut TrapFrame> {
    let started = breakdown::start();
    let mut guard = SYSTEM.lock();
    let System { ipc, processes } = &mut *guard;
    let slot = processes.current?;
    let caller = processes.table[slot].as_mut()?;
    caller.frame = frame;
    let caller = caller.id;
    // SAFETY: the frame the entry stub just pushed; read by value, so no
    // reference outlives this line while kipc copies through the frame.
    let (number, a0, a1) = unsafe { ((*frame).rax, (*frame).rdi, (*frame).rsi) };
    let mailbox = Handle::from_raw(u32::try_from(a0).ok()?);
    let registers = slice(MESSAGE_REGISTERS_ADDRESS, MESSAGE_REGISTER_BYTES as u64).ok()?;
    let mut host = KernelHost { processes };
    let handoff = if number == number::MAILBOX_CALL_SHORT {
        let payload = slice(MESSAGE_REGISTERS_ADDRESS, a1).ok()?;
        if payload.len() > MESSAGE_REGISTER_BYTES {
            return None;
        }
        measured!(Kipc, {
            ipc.mailbox_call_fast(
                caller,
                mailbox,
                payload,
                registers,
                Blocking::Forever,
                &mut host,
            )
        })?
    } else {
        let (reply, length) = (a1 as u32, a1 >> 32);
        let payload = slice(MESSAGE_REGISTERS_ADDRESS, length).ok()?;
        if reply == 0 || payload.len() > MESSAGE_REGISTER_BYTES {
            return None;
        }
        let handoff = measured!(Kipc, {
            ipc.mailbox_reply_receive_fast(
                caller,
                Handle::from_raw(reply),
                payload,
                mailbox,
                registers,
                Blocking::Forever,
                &mut host,
            )
        })?;
        // SAFETY: the caller's frame, as above; nothing else refers to it now.
        // Parked as the receive it has become: a retry does not reply twice.
        unsafe { (*frame).rsi = 0 };
        handoff
    };
    COUNTERS.syscalls.fetch_add(1, Ordering::Relaxed);
    COUNTERS.fast_path_handoffs.fetch_add(1, Ordering::Relaxed);
    // The woken process's result registers first, then the caller parks (the
    // general path's order: its wake-up happens inside the call).
    let woken = processes.resume(handoff.to, &handoff.wakeup());
    if let Some(process) = processes.table[slot].as_mut() {
        process.state = State::BlockedIpc;
    }
    let next = measured!(Scheduler, {
        match woken {
            Some(to) => scheduler::hand_to(processes, to, frame),
            None => scheduler::schedule(processes, frame),
        }
    });
    let next = signals::before_user(&mut guard, next);
    breakdown::stop(Phase::Dispatch, started);
    Some(next)
}
