//! What every system-call handler shares: the [`Flow`] a handler returns and
//! the checked ways to read arguments from user memory.

use kipc::{Error, ErrorCode, ProcessId};
use kipc_arch::interrupts::TrapFrame;

use crate::memory::address_space::AddressSpace;
use crate::processes::table::System;

/// What a system call handler decided.
pub enum Flow {
    /// Return to the caller with `rax` (and `rdx`, `r8` when `Some`).
    Return(u64, Option<u64>, Option<u64>),
    /// The caller is parked; run someone else.
    Switch,
}

/// An error result.
pub fn error(error: Error) -> Flow {
    Flow::Return(
        kipc_abi::encode(Err(ErrorCode::from(error) as u32)),
        None,
        None,
    )
}

/// A success result.
pub fn value(value: u64) -> Flow {
    Flow::Return(kipc_abi::encode(Ok(value)), None, None)
}

/// Turns a kipc result into a flow.
pub fn result(outcome: Result<u64, Error>) -> Flow {
    match outcome {
        Ok(returned) => value(returned),
        Err(failure) => error(failure),
    }
}

/// Writes a `Flow::Return`'s registers into `frame`.
pub fn apply(frame: &mut TrapFrame, flow: Flow) {
    if let Flow::Return(rax, rdx, r8) = flow {
        frame.rax = rax;
        if let Some(rdx) = rdx {
            frame.rdx = rdx;
        }
        if let Some(r8) = r8 {
            frame.r8 = r8;
        }
    }
}

/// Sets the value a process switched away from will see when it resumes
/// (for calls that always succeed but give up the CPU).
pub fn set_result(system: &mut System, caller: ProcessId, result: u64) {
    if let Some(process) = system.processes.get(caller) {
        // SAFETY: the caller's frame, saved at the top of its kernel stack by
        // this system call's entry; it does not run until it is resumed.
        unsafe { (*process.frame).rax = kipc_abi::encode(Ok(result)) };
    }
}

/// The caller's address space.
pub fn space_of(system: &System, caller: ProcessId) -> &AddressSpace {
    &system
        .processes
        .get(caller)
        .expect("the caller is alive")
        .space
}

/// Copies a short byte string (a name, an argument) from user memory.
pub fn copy_string<const N: usize>(
    space: &AddressSpace,
    address: u64,
    length: u64,
) -> Result<heapless::Vec<u8, N>, Error> {
    if length > N as u64 {
        return Err(Error::InvalidArgument);
    }
    let mut bytes = heapless::Vec::new();
    bytes
        .resize(length as usize, 0)
        .map_err(|_| Error::InvalidArgument)?;
    space
        .copy_from_user(address, &mut bytes)
        .map_err(|_| Error::BadAddress)?;
    Ok(bytes)
}

/// Copies `record` to user memory at `address`; `length` must be its size.
pub fn copy_record_out(
    space: &AddressSpace,
    address: u64,
    length: u64,
    record: &impl kipc_abi::Record,
) -> Result<(), Error> {
    let bytes = record.as_bytes();
    if length != bytes.len() as u64 {
        return Err(Error::InvalidArgument);
    }
    space
        .copy_to_user(address, bytes)
        .map_err(|_| Error::BadAddress)
}
