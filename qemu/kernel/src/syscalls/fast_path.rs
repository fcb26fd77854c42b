//! The fast path: a call handed straight to the server waiting for it, a
//! reply handed straight to the caller waiting for it, and a semaphore unit
//! handed straight to the process waiting for it, each followed by a switch
//! to the process that got it (after seL4's `fastpath_call` and
//! `fastpath_reply_recv`).
//!
//! [`call`] runs before the general dispatcher for the mailbox calls and
//! reply-receives, with their messages in memory (36 and 38) or in the
//! message registers (39 and 40), and for the semaphore post-and-wait (102).
//! It checks the arguments the general call would (the handle array's page, a
//! reply's length) and asks kipc's fast path
//! ([`kipc::Ipc::mailbox_call_fast`],
//! [`kipc::Ipc::mailbox_reply_receive_fast`],
//! [`kipc::Ipc::semaphore_post_wait_fast`]), which either does exactly what
//! the general call would do (same checks, copy, ledger counts, handles,
//! units and waits; `tests/core_fastpath.rs` holds it to that) or declines
//! having changed nothing. On a hand-off the kernel writes the woken
//! process's result registers as any wake-up does
//! ([`crate::processes::resume`]), parks the caller as the general call would
//! (as the receive or the wait it has become), and puts the woken process on
//! the CPU without the ready queue when nobody else is ready
//! ([`scheduler::hand_to`]). What it skips is the general path's machinery:
//! the second decoding, the `Outcome` plumbing, the wake-up through kipc's
//! host and the queue. When kipc declines (no peer waiting, a message queued,
//! a unit to take, handles to send, an error to report, ...) the general
//! dispatcher runs the call from the start, so every error and every slow
//! case is the general path's.

use core::sync::atomic::Ordering;

use kipc::{Blocking, Completion, Handle, Handoff, ProcessId, UserSlice, Wakeup};
use kipc_abi::{HandleArray, MESSAGE_REGISTER_BYTES, MESSAGE_REGISTERS_ADDRESS, number};
use kipc_arch::interrupts::TrapFrame;

use super::ipc_calls::{
    become_receive, become_short_receive, become_wait, blocking, probe_handle_array, slice,
};
use crate::processes::breakdown::{self, Phase, measured};
use crate::processes::host::KernelHost;
use crate::processes::table::{COUNTERS, SYSTEM, State, System};
use crate::processes::{scheduler, signals};

/// Whether `number` may be one of the five calls the fast path takes: the
/// range from `MAILBOX_CALL` to `MAILBOX_REPLY_RECEIVE_SHORT` (it also holds
/// `MAILBOX_REPLY`, which [`call`] declines at once) and
/// `SEMAPHORE_POST_WAIT`.
#[inline(always)]
pub fn candidate(number: u64) -> bool {
    (number::MAILBOX_CALL..=number::MAILBOX_REPLY_RECEIVE_SHORT).contains(&number)
        || number == number::SEMAPHORE_POST_WAIT
}

const _: () = assert!(
    number::MAILBOX_CALL + 2 == number::MAILBOX_REPLY_RECEIVE
        && number::MAILBOX_REPLY_RECEIVE + 1 == number::MAILBOX_CALL_SHORT
        && number::MAILBOX_CALL_SHORT + 1 == number::MAILBOX_REPLY_RECEIVE_SHORT
);

/// Runs the call in `frame` (its number in `rax`, a [`candidate`]) on the
/// fast path and returns the frame to resume, or `None`, having changed
/// nothing, when the general dispatcher must run it.
#[inline(always)]
pub fn call(frame: *mut TrapFrame) -> Option<*mut TrapFrame> {
    let started = breakdown::start();
    let mut guard = SYSTEM.lock();
    let System { ipc, processes } = &mut *guard;
    let slot = processes.current?;
    let caller = processes.table[slot].as_mut()?;
    caller.frame = frame;
    let caller = caller.id;
    // SAFETY: the frame the entry stub just pushed; read by value, so no
    // reference outlives this statement while kipc copies through the frame.
    let [number, a0, a1, a2, a3, a4, a5] = unsafe {
        let f = &*frame;
        [f.rax, f.rdi, f.rsi, f.rdx, f.r10, f.r8, f.r9]
    };
    // `rdi`: the mailbox, or the semaphore to post.
    let target = Handle::from_raw(u32::try_from(a0).ok()?);
    let mut host = KernelHost { processes };
    let (to, wakeup) = match number {
        number::SEMAPHORE_POST_WAIT => {
            let (post, wait) = (target, Handle::from_raw(u32::try_from(a1).ok()?));
            let peer = measured!(Kipc, {
                ipc.semaphore_post_wait_fast(caller, post, wait, blocking(a2), &mut host)
            })?;
            // SAFETY: as above; nothing else refers to the caller's frame now.
            become_wait(unsafe { &mut *frame }, a1, a2);
            (peer, Wakeup::Completed(Completion::Acquired))
        }
        number::MAILBOX_CALL_SHORT => {
            let payload = slice(MESSAGE_REGISTERS_ADDRESS, a1).ok()?;
            if payload.len() > MESSAGE_REGISTER_BYTES {
                return None;
            }
            let registers = registers()?;
            measured!(Kipc, {
                ipc.mailbox_call_fast(
                    caller,
                    target,
                    payload,
                    registers,
                    Blocking::Forever,
                    &mut host,
                )
            })
            .map(woken)?
        }
        number::MAILBOX_REPLY_RECEIVE_SHORT => {
            let (reply, length) = (a1 as u32, a1 >> 32);
            let payload = slice(MESSAGE_REGISTERS_ADDRESS, length).ok()?;
            if reply == 0 || payload.len() > MESSAGE_REGISTER_BYTES {
                return None;
            }
            let registers = registers()?;
            let handoff = measured!(Kipc, {
                ipc.mailbox_reply_receive_fast(
                    caller,
                    Handle::from_raw(reply),
                    payload,
                    target,
                    registers,
                    Blocking::Forever,
                    &mut host,
                )
            })?;
            // SAFETY: as above.
            become_short_receive(unsafe { &mut *frame });
            woken(handoff)
        }
        number::MAILBOX_CALL => {
            // What the general call checks of the handle array, and that it
            // sends none.
            let space = &host.processes.table[slot].as_ref()?.space;
            if space.read_word_in_writable_page(a5, size_of::<HandleArray>()) != Some(0) {
                return None;
            }
            let (payload, reply) = (slice(a1, a2).ok()?, slice(a3, a4).ok()?);
            measured!(Kipc, {
                ipc.mailbox_call_fast(caller, target, payload, reply, Blocking::Forever, &mut host)
            })
            .map(woken)?
        }
        number::MAILBOX_REPLY_RECEIVE => {
            let space = &host.processes.table[slot].as_ref()?.space;
            probe_handle_array(space, a3).ok()?;
            if a4 == 0 || a5 > a2 {
                return None;
            }
            let reply = Handle::from_raw(u32::try_from(a4).ok()?);
            let buffer = slice(a1, a2).ok()?;
            let handoff = measured!(Kipc, {
                ipc.mailbox_reply_receive_fast(
                    caller,
                    reply,
                    buffer.prefix(a5 as usize),
                    target,
                    buffer,
                    Blocking::Forever,
                    &mut host,
                )
            })?;
            // SAFETY: as above.
            become_receive(unsafe { &mut *frame });
            woken(handoff)
        }
        _ => return None,
    };
    COUNTERS.syscalls.fetch_add(1, Ordering::Relaxed);
    COUNTERS.fast_path_handoffs.fetch_add(1, Ordering::Relaxed);
    // The woken process's result registers first, then the caller parks (the
    // general path's order: its wake-up happens inside the call).
    let woken = processes.resume(to, &wakeup);
    if let Some(process) = processes.table[slot].as_mut() {
        process.state = State::BlockedIpc;
    }
    let next = measured!(Scheduler, {
        match woken {
            Some(to) => scheduler::hand_to(processes, to, frame),
            // Not parked in kipc (the general wake-up ignores it as well).
            None => scheduler::schedule(processes, frame),
        }
    });
    let next = signals::before_user(&mut guard, next);
    breakdown::stop(Phase::Dispatch, started);
    Some(next)
}

/// The caller's eight message registers as a kipc buffer.
#[inline(always)]
fn registers() -> Option<UserSlice> {
    slice(MESSAGE_REGISTERS_ADDRESS, MESSAGE_REGISTER_BYTES as u64).ok()
}

/// A message hand-off as the process it went to and that process's wake-up.
#[inline(always)]
fn woken(handoff: Handoff) -> (ProcessId, Wakeup) {
    (handoff.to, handoff.wakeup())
}
