//! The kipc system calls: decode registers, build allegations, call kipc.

use kipc::{Completion, Error, ProcessId};

use crate::address_space::AddressSpace;
use crate::interrupts::TrapFrame;
use crate::process::System;
use crate::syscall::{Flow, result};

/// Handles every system call number that is not a process call.
pub fn handle(
    _system: &mut System,
    _caller: ProcessId,
    _number: u64,
    _arguments: [u64; 6],
) -> Flow {
    result(Err(Error::InvalidArgument))
}

/// Writes the result of a call kipc completed on a parked process's behalf.
pub fn deliver_completion(_space: &AddressSpace, frame: &mut TrapFrame, completion: Completion) {
    let _ = completion;
    frame.rax = kipc_abi::encode(Ok(0));
}
