//! The signal system calls (`SIGNAL_ACTION..=PROCESS_HANDLE`): kipc keeps the
//! signal state and decides delivery (`kipc::signal`); these calls validate
//! the user's arguments, and `processes::signals` builds and checks frames.

use kipc::{
    Disposition, Error, MaskHow, Posted, ProcessId, Rights, Signal, SignalAction, SignalFlags,
    SignalSet,
};
use kipc_abi::{Record, SignalActionRecord, number, signal};

use super::common::{Flow, copy_record_out, error, result, space_of};
use super::ipc_calls::{handle_from, park};
use crate::memory::address_space::{USER_END, USER_START};
use crate::processes::host::KernelHost;
use crate::processes::signals;
use crate::processes::table::System;

/// Handles the signal calls (out of line: the dispatcher's hot paths stay
/// small).
#[inline(never)]
pub fn handle(system: &mut System, caller: ProcessId, number: u64, arguments: [u64; 6]) -> Flow {
    let [a0, a1, a2, ..] = arguments;
    match number {
        number::SIGNAL_ACTION => result(action(system, caller, a0, a1, a2).map(|()| 0)),
        number::SIGNAL_MASK => result(mask(system, caller, a0, a1)),
        number::SIGNAL_SEND => result(send(system, caller, a0, a1).map(|()| 0)),
        number::SIGNAL_RAISE => result(raise(system, caller, a0).map(|()| 0)),
        number::SIGNAL_PENDING => result(system.ipc.signal_pending(caller).map(SignalSet::bits)),
        number::ALARM => result(alarm(system, caller, a0)),
        number::SIGNAL_RETURN => match signals::signal_return(system, caller) {
            // The whole context is restored: "return" the registers it holds.
            // (A third kind of `Flow` would cost every system call a few
            // instructions in the dispatcher's match.)
            Ok(()) => restored(system, caller),
            Err(reason) => {
                crate::processes::lifecycle::kill(
                    system,
                    caller,
                    format_args!("{reason}"),
                    kipc_abi::EXIT_KILLED,
                );
                Flow::Switch
            }
        },
        number::SIGNAL_SUSPEND => {
            match system.ipc.signal_suspend(caller, SignalSet::from_bits(a0)) {
                Ok(kipc::Outcome::Blocked) => park(system, caller),
                Ok(kipc::Outcome::Done(())) => result(Ok(0)),
                Err(failure) => error(failure),
            }
        }
        number::PROCESS_HANDLE => result(process_handle(system, caller, a0)),
        _ => error(Error::InvalidArgument),
    }
}

/// The result registers of a context `signal_return` just restored, as a
/// `Flow` that writes them back unchanged.
fn restored(system: &System, caller: ProcessId) -> Flow {
    let Some(process) = system.processes.get(caller) else {
        return Flow::Switch;
    };
    // SAFETY: the caller's saved frame at the top of its kernel stack, just
    // rewritten by `signal_return`; we hold the kernel lock.
    let frame = unsafe { &*process.frame };
    Flow::Return(frame.rax, Some(frame.rdx), Some(frame.r8))
}

/// A user address a handler or restorer may have.
fn code_address(address: u64) -> Result<u64, Error> {
    if (USER_START..USER_END).contains(&address) {
        Ok(address)
    } else {
        Err(Error::InvalidArgument)
    }
}

fn action(
    system: &mut System,
    caller: ProcessId,
    number: u64,
    new: u64,
    old: u64,
) -> Result<(), Error> {
    let signal = Signal::new(number)?;
    let space = space_of(system, caller);
    let wanted = if new == 0 {
        None
    } else {
        let mut bytes = [0u8; size_of::<SignalActionRecord>()];
        space
            .copy_from_user(new, &mut bytes)
            .map_err(|_| Error::BadAddress)?;
        let record = SignalActionRecord::from_bytes(&bytes).ok_or(Error::InvalidArgument)?;
        let disposition = match record.handler {
            signal::DEFAULT => Disposition::Default,
            signal::IGNORE => Disposition::Ignore,
            handler => {
                code_address(record.restorer)?;
                Disposition::Handler(code_address(handler)?)
            }
        };
        let flags = u32::try_from(record.flags)
            .ok()
            .and_then(SignalFlags::from_bits)
            .ok_or(Error::InvalidArgument)?;
        Some((
            SignalAction {
                disposition,
                mask: SignalSet::from_bits(record.mask),
                flags,
            },
            record.restorer,
        ))
    };
    if wanted.is_some() && signal == Signal::SIGKILL {
        return Err(Error::InvalidArgument);
    }
    // The old action goes out first: a bad `old` pointer changes nothing.
    let previous = system.ipc.signal_action(caller, signal, None)?;
    let restorer = system
        .processes
        .get(caller)
        .map_or(0, |process| process.restorer);
    if old != 0 {
        let record = SignalActionRecord {
            handler: match previous.disposition {
                Disposition::Default => signal::DEFAULT,
                Disposition::Ignore => signal::IGNORE,
                Disposition::Handler(entry) => entry,
            },
            mask: previous.mask.bits(),
            flags: u64::from(previous.flags.bits()),
            restorer,
        };
        copy_record_out(
            space_of(system, caller),
            old,
            size_of::<SignalActionRecord>() as u64,
            &record,
        )?;
    }
    if let Some((action, restorer)) = wanted {
        system.ipc.signal_action(caller, signal, Some(action))?;
        if let Disposition::Handler(_) = action.disposition
            && let Some(process) = system.processes.get_mut(caller)
        {
            process.restorer = restorer;
        }
    }
    Ok(())
}

fn mask(system: &mut System, caller: ProcessId, how: u64, set: u64) -> Result<u64, Error> {
    let how = match how {
        signal::BLOCK => MaskHow::Block,
        signal::UNBLOCK => MaskHow::Unblock,
        signal::SET_MASK => MaskHow::Set,
        _ => return Err(Error::InvalidArgument),
    };
    let old = system
        .ipc
        .signal_mask(caller, how, SignalSet::from_bits(set))?;
    Ok(old.bits())
}

fn send(system: &mut System, caller: ProcessId, handle: u64, number: u64) -> Result<(), Error> {
    let signal = Signal::new(number)?;
    let System { ipc, processes } = system;
    let posted = ipc.signal_send(
        caller,
        handle_from(handle)?,
        signal,
        &mut KernelHost { processes },
    )?;
    if posted == Posted::Deliverable {
        processes.interrupt_host_waits(ipc);
    }
    Ok(())
}

fn raise(system: &mut System, caller: ProcessId, number: u64) -> Result<(), Error> {
    let signal = Signal::new(number)?;
    let System { ipc, processes } = system;
    ipc.signal_post(caller, signal, &mut KernelHost { processes })?;
    Ok(())
}

fn alarm(system: &mut System, caller: ProcessId, milliseconds: u64) -> Result<u64, Error> {
    let per_tick = 1000 / u64::from(kipc_arch::timer::TICK_HZ);
    let now = kipc_arch::timer::ticks();
    let at = match milliseconds {
        0 => None,
        _ => Some(now.saturating_add(milliseconds.div_ceil(per_tick).max(1))),
    };
    let previous = system.ipc.signal_alarm(caller, at)?;
    Ok(previous.map_or(0, |due| due.saturating_sub(now).saturating_mul(per_tick)))
}

fn process_handle(system: &mut System, caller: ProcessId, raw: u64) -> Result<u64, Error> {
    let target = ProcessId::from_raw(raw);
    let allowed = target == caller
        || system
            .processes
            .get(target)
            .is_some_and(|process| process.parent == Some(caller));
    if !allowed {
        return Err(Error::NoSuchProcess);
    }
    let rights = Rights::SIGNAL | Rights::TRANSFER | Rights::DUPLICATE;
    let handle = system.ipc.process_handle(caller, target, rights)?;
    Ok(u64::from(handle.into_raw()))
}
