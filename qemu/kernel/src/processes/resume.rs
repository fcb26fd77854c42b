//! How a process parked in a kipc call gets its result: the contract between
//! the process table (which parks and wakes) and the system-call ABI (which
//! registers a result goes in).
//!
//! A parked call's frame still holds its number (`rax`) and its arguments.
//! kipc reports one of three [`Wakeup`]s:
//! - `Retry`: the call runs again when the process is next scheduled (RIP
//!   goes back over the 2-byte `syscall`, the registers are unchanged);
//! - `Failed`: `rax` gets the error code;
//! - `Completed`: kipc finished the call on the process's behalf (a message
//!   delivered, a semaphore acquired, notification bits, a FIFO opened, a blocking
//!   pipe write carried to its end); the
//!   result registers are written exactly as if the call had completed at once.

use kipc::{Completion, Error, ErrorCode, Handle, Wakeup};
use kipc_abi::{HandleArray, number};
use kipc_arch::interrupts::TrapFrame;

use crate::memory::address_space::AddressSpace;

/// Resumes a process parked in kipc: `Retry` re-runs its system call,
/// `Completed` and `Failed` deliver a result.
#[inline(always)]
pub fn complete_wakeup(space: &AddressSpace, frame: &mut TrapFrame, wakeup: &Wakeup) {
    match wakeup {
        // Back over the 2-byte `syscall`: number and arguments are still in
        // the saved registers, so the call simply runs again.
        Wakeup::Retry => kipc_arch::syscall::restart(frame),
        Wakeup::Failed(failure) => {
            frame.rax = kipc_abi::encode(Err(ErrorCode::from(*failure) as u32));
        }
        Wakeup::Completed(completion) => deliver_completion(space, frame, completion),
    }
}

/// Writes the result of a call kipc completed on a parked process's behalf.
/// The frame still holds the call's number (in `rax`) and its arguments.
#[inline(always)]
pub fn deliver_completion(space: &AddressSpace, frame: &mut TrapFrame, completion: &Completion) {
    let rax = match completion {
        Completion::Received(received) => {
            // Straight into the parked frame: the same registers (and array)
            // as a receive or call that completes at once.
            let (array, r8) = match frame.rax {
                number::MAILBOX_CALL_SHORT | number::MAILBOX_REPLY_RECEIVE_SHORT => {
                    frame.rax = deliver_short(frame, received);
                    return;
                }
                number::MAILBOX_RECEIVE => (
                    frame.r10,
                    received
                        .reply
                        .map_or(0, |reply| u64::from(reply.into_raw())),
                ),
                number::MAILBOX_CALL => (frame.r9, received.handles.len() as u64),
                _ => (
                    0,
                    received
                        .reply
                        .map_or(0, |reply| u64::from(reply.into_raw())),
                ),
            };
            if array != 0 && !received.handles.is_empty() {
                // Checked writable before kipc ran; the process has not run since.
                let _ = write_handle_array(space, array, &received.handles);
            }
            frame.rax = kipc_abi::encode(Ok(received.length as u64));
            frame.rdx = received.badge;
            frame.r8 = r8;
            return;
        }
        Completion::Acquired => kipc_abi::encode(Ok(0)),
        Completion::Dequeued(message) => {
            // As a receive that found the message: length, and priority in rdx.
            frame.rdx = u64::from(message.priority);
            kipc_abi::encode(Ok(message.length as u64))
        }
        Completion::Notified(bits) => {
            frame.rdx = *bits;
            kipc_abi::encode(Ok(0))
        }
        Completion::Opened(handle) => kipc_abi::encode(Ok(u64::from(handle.into_raw()))),
        Completion::Written(bytes) | Completion::Read(bytes) => kipc_abi::encode(Ok(*bytes as u64)),
    };
    frame.rax = rax;
}

/// Writes the result registers of a short mailbox call or receive (the
/// message itself is already in its message registers) and returns `rax`:
/// `rsi` = badge, `rdi` = reply handle, the handles in `rcx` and `r11` (see
/// `kipc_abi::number::MAILBOX_REPLY_RECEIVE_SHORT`).
#[inline(never)]
pub fn deliver_short(frame: &mut TrapFrame, received: &kipc::Received) -> u64 {
    let mut handles = [0u64; 4];
    for (word, handle) in handles.iter_mut().zip(&received.handles) {
        *word = u64::from(handle.into_raw());
    }
    frame.rcx = handles[0] | handles[1] << 32;
    frame.r11 = handles[2] | handles[3] << 32;
    if frame.rax == number::MAILBOX_REPLY_RECEIVE_SHORT {
        frame.rsi = received.badge;
        frame.rdi = received
            .reply
            .map_or(0, |reply| u64::from(reply.into_raw()));
    }
    kipc_abi::encode(Ok(received.length as u64))
}

/// Writes a handle array (count, then the handles) to user memory.
pub fn write_handle_array(
    space: &AddressSpace,
    address: u64,
    handles: &[Handle],
) -> Result<(), Error> {
    let mut bytes = [0u8; size_of::<HandleArray>()];
    bytes[..4].copy_from_slice(&(handles.len() as u32).to_le_bytes());
    for (index, handle) in handles.iter().enumerate() {
        bytes[4 + index * 4..8 + index * 4].copy_from_slice(&handle.into_raw().to_le_bytes());
    }
    space
        .copy_to_user(address, &bytes)
        .map_err(|_| Error::BadAddress)
}
