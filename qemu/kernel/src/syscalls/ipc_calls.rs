//! The kipc system calls: decode registers into validated allegations, call
//! the kipc façade, and turn its answer into registers or a parked process.
//!
//! Nothing here touches user memory directly: buffers become
//! `kipc::UserSlice`s (range-checked against the user half) and kipc copies
//! through [`KernelHost`], whose page-table walk reports faults as errors.
//! Small fixed-size arguments (names, handle arrays) are copied with
//! [`AddressSpace`]'s checked copy.

use kipc::{
    Access, Blocking, Error, Handle, Mechanism, OpenMode, Outcome, ProcessId, Rights, UserLimit,
    UserSlice,
};
use kipc_abi::{
    HandleArray, LedgerRecord, MESSAGE_HANDLES, MESSAGE_REGISTER_BYTES, MESSAGE_REGISTERS_ADDRESS,
    number,
};

use kipc_arch::interrupts::TrapFrame;

use super::common::{Flow, copy_record_out, copy_string, result, space_of};
use crate::memory::address_space::{AddressSpace, USER_END};
use crate::processes::breakdown::measured;
use crate::processes::host::{KernelHost, ShortHost};
use crate::processes::resume::{deliver_short, write_handle_array};
use crate::processes::table::{State, System};

const LIMIT: UserLimit = UserLimit::new(USER_END);

pub(super) fn slice(address: u64, length: u64) -> Result<UserSlice, Error> {
    let length = usize::try_from(length).map_err(|_| Error::BadAddress)?;
    UserSlice::new(address, length, LIMIT)
}

pub(super) fn handle_from(raw: u64) -> Result<Handle, Error> {
    u32::try_from(raw)
        .map(Handle::from_raw)
        .map_err(|_| Error::BadHandle)
}

/// Converts a user deadline (ms since boot, or NO_WAIT / FOREVER) to kipc's
/// blocking mode in timer ticks.
pub(super) fn blocking(deadline: u64) -> Blocking {
    match deadline {
        kipc_abi::NO_WAIT => Blocking::NonBlocking,
        kipc_abi::FOREVER => Blocking::Forever,
        milliseconds => {
            Blocking::Until(milliseconds.div_ceil(1000 / u64::from(kipc_arch::timer::TICK_HZ)))
        }
    }
}

fn name(space: &AddressSpace, address: u64, length: u64) -> Result<heapless::Vec<u8, 64>, Error> {
    if length > kipc::NAME_MAX as u64 {
        return Err(Error::NameTooLong);
    }
    copy_string::<64>(space, address, length)
}

/// Reads `count` raw handles from user memory.
fn read_handles(
    space: &AddressSpace,
    address: u64,
    count: u64,
) -> Result<heapless::Vec<Handle, MESSAGE_HANDLES>, Error> {
    if count > MESSAGE_HANDLES as u64 {
        return Err(Error::InvalidArgument);
    }
    if count == 0 {
        // What the empty copy below would check, without the walk.
        return if address <= USER_END {
            Ok(heapless::Vec::new())
        } else {
            Err(Error::BadAddress)
        };
    }
    let mut raw = [0u8; MESSAGE_HANDLES * 4];
    let bytes = &mut raw[..count as usize * 4];
    space
        .copy_from_user(address, bytes)
        .map_err(|_| Error::BadAddress)?;
    Ok(bytes
        .chunks_exact(4)
        .map(|chunk| Handle::from_raw(u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]])))
        .collect())
}

/// Reads a call's handle array and checks that it can be written back (the
/// reply's handles land there; see [`probe_handle_array`]). The common case
/// takes one walk; a fault falls back to the separate read and probe so the
/// error is the one they give.
#[inline(always)]
fn read_writable_handle_array(space: &AddressSpace, address: u64) -> Result<HandleArray, Error> {
    // Most calls send no handles: when the whole array is in one writable
    // page and its count word is 0, that word is all there is to read.
    if space.read_word_in_writable_page(address, size_of::<HandleArray>()) == Some(0) {
        return Ok(HandleArray {
            count: 0,
            handles: [0; MESSAGE_HANDLES],
        });
    }
    read_whole_writable_handle_array(space, address)
}

/// The rest of [`read_writable_handle_array`]: a call that sends handles, or
/// an array that is not in one writable page.
#[inline(never)]
fn read_whole_writable_handle_array(
    space: &AddressSpace,
    address: u64,
) -> Result<HandleArray, Error> {
    let mut bytes = [0u8; size_of::<HandleArray>()];
    if space.copy_from_writable_user(address, &mut bytes).is_ok() {
        return handle_array_from(&bytes);
    }
    let array = read_handle_array(space, address)?;
    probe_handle_array(space, address)?;
    Ok(array)
}

fn read_handle_array(space: &AddressSpace, address: u64) -> Result<HandleArray, Error> {
    let mut bytes = [0u8; size_of::<HandleArray>()];
    space
        .copy_from_user(address, &mut bytes)
        .map_err(|_| Error::BadAddress)?;
    handle_array_from(&bytes)
}

fn handle_array_from(bytes: &[u8; size_of::<HandleArray>()]) -> Result<HandleArray, Error> {
    let word = |index: usize| {
        u32::from_le_bytes([
            bytes[index * 4],
            bytes[index * 4 + 1],
            bytes[index * 4 + 2],
            bytes[index * 4 + 3],
        ])
    };
    let mut array = HandleArray {
        count: word(0),
        handles: [0; MESSAGE_HANDLES],
    };
    for (index, slot) in array.handles.iter_mut().enumerate() {
        *slot = word(index + 1);
    }
    if array.count as usize > MESSAGE_HANDLES {
        return Err(Error::InvalidArgument);
    }
    Ok(array)
}

/// Checks that a handle array can be written before kipc installs handles
/// the caller could otherwise never learn about (a page-table check, no copy).
pub(super) fn probe_handle_array(space: &AddressSpace, address: u64) -> Result<(), Error> {
    if address == 0 {
        return Err(Error::InvalidArgument);
    }
    if space.is_writable(address, size_of::<HandleArray>()) {
        Ok(())
    } else {
        Err(Error::BadAddress)
    }
}

pub(super) fn park(system: &mut System, caller: ProcessId) -> Flow {
    if let Some(process) = system.processes.get_mut(caller) {
        process.state = State::BlockedIpc;
    }
    Flow::Switch
}

/// Parks a `mailbox_reply_receive` whose reply is done as the plain
/// `mailbox_receive` it has become (same argument registers; the number and
/// the deadline go in `rax` and `r8`, which the call's results overwrite
/// anyway). A `Retry` then receives again without replying twice, and a
/// completion sets a receive's registers.
fn park_as_receive(system: &mut System, caller: ProcessId) -> Flow {
    if let Some(process) = system.processes.get_mut(caller) {
        // SAFETY: the caller's frame, saved by the system-call entry at the
        // top of its kernel stack; it stays untouched until the process runs
        // again, and we hold the kernel lock (no other reference to it lives).
        become_receive(unsafe { &mut *process.frame });
    }
    park(system, caller)
}

/// Rewrites a parked `mailbox_reply_receive` as the `mailbox_receive` it has
/// become (see [`park_as_receive`]; the fast path parks the same way).
#[inline(always)]
pub(super) fn become_receive(frame: &mut TrapFrame) {
    frame.rax = number::MAILBOX_RECEIVE;
    frame.r8 = kipc_abi::FOREVER;
}

/// Rewrites a parked `mailbox_reply_receive_short` as the short receive it
/// has become (no reply handle): a retry does not reply twice.
#[inline(always)]
pub(super) fn become_short_receive(frame: &mut TrapFrame) {
    frame.rsi = 0;
}

/// Rewrites a parked `semaphore_post_wait` as the `semaphore_wait` it has
/// become (see [`park_as_wait`]; the fast path parks the same way).
#[inline(always)]
pub(super) fn become_wait(frame: &mut TrapFrame, semaphore: u64, deadline: u64) {
    frame.rax = number::SEMAPHORE_WAIT;
    frame.rdi = semaphore;
    frame.rsi = deadline;
}

/// `SEMAPHORE_POST_WAIT`, the shared-memory ping-pong's one call per turn:
/// routed here straight from the dispatcher (see `syscalls::entry::handle`),
/// not through [`handle`]'s large frame.
#[inline(never)]
pub fn semaphore_post_wait(system: &mut System, caller: ProcessId, [a0, a1, a2]: [u64; 3]) -> Flow {
    let (post, wait) = match (handle_from(a0), handle_from(a1)) {
        (Ok(post), Ok(wait)) => (post, wait),
        (Err(error), _) | (_, Err(error)) => return result(Err(error)),
    };
    let System { ipc, processes } = &mut *system;
    let mut host = KernelHost { processes };
    let answer = measured!(Kipc, {
        ipc.semaphore_post_wait(caller, post, wait, blocking(a2), &mut host)
    });
    match answer {
        Ok(Outcome::Blocked) => park_as_wait(system, caller, a1, a2),
        answer => outcome(system, caller, answer, |()| value(0)),
    }
}

/// Parks a `semaphore_post_wait` whose post is done as the plain
/// `semaphore_wait` it has become (`rax` = the number, `rdi` = the semaphore,
/// `rsi` = the deadline): a re-run call waits without posting again.
fn park_as_wait(system: &mut System, caller: ProcessId, semaphore: u64, deadline: u64) -> Flow {
    if let Some(process) = system.processes.get_mut(caller) {
        // SAFETY: as in `park_as_receive`: the caller's frame, untouched
        // until it runs again, under the kernel lock.
        become_wait(unsafe { &mut *process.frame }, semaphore, deadline);
    }
    park(system, caller)
}

fn outcome<T>(
    system: &mut System,
    caller: ProcessId,
    answer: Result<Outcome<T>, Error>,
    registers: impl FnOnce(T) -> Flow,
) -> Flow {
    match answer {
        Ok(Outcome::Done(done)) => registers(done),
        Ok(Outcome::Blocked) => park(system, caller),
        Err(error) => result(Err(error)),
    }
}

fn value(value: u64) -> Flow {
    result(Ok(value))
}

/// The mailbox calls and reply-receives the fast path declined (see
/// `syscalls::fast_path`): routed here straight from the dispatcher (see
/// `syscalls::entry::handle`), so they do not go through [`handle`]'s large
/// frame and second dispatch. Out of line, so the dispatcher's frame stays
/// small for every other call.
#[inline(never)]
pub fn mailbox_hot_path(
    system: &mut System,
    caller: ProcessId,
    number: u64,
    arguments: [u64; 6],
) -> Flow {
    let answer = match number {
        number::MAILBOX_CALL => mailbox_call(system, caller, arguments),
        number::MAILBOX_REPLY_RECEIVE => mailbox_reply_receive(system, caller, arguments),
        _ => return mailbox_short(system, caller, number, arguments),
    };
    answer.unwrap_or_else(|error| result(Err(error)))
}

/// `MAILBOX_CALL_SHORT` and `MAILBOX_REPLY_RECEIVE_SHORT`: the round trip
/// with its messages in the message registers. Out of line, so the other
/// calls' dispatch does not carry its code.
#[inline(never)]
fn mailbox_short(system: &mut System, caller: ProcessId, number: u64, arguments: [u64; 6]) -> Flow {
    let answer = if number == number::MAILBOX_CALL_SHORT {
        mailbox_call_short(system, caller, arguments)
    } else {
        mailbox_reply_receive_short(system, caller, arguments)
    };
    answer.unwrap_or_else(|error| result(Err(error)))
}

/// The caller's message registers as a kipc buffer of `length` bytes (at
/// most 64; see `processes::message_registers`).
fn message_registers(length: u64) -> Result<UserSlice, Error> {
    if length > MESSAGE_REGISTER_BYTES as u64 {
        return Err(Error::MessageTooLarge {
            limit: MESSAGE_REGISTER_BYTES,
        });
    }
    slice(MESSAGE_REGISTERS_ADDRESS, length)
}

/// `MAILBOX_CALL_SHORT`: `MAILBOX_CALL` with no handles sent and the message
/// and the reply in the message registers.
#[inline(always)]
fn mailbox_call_short(
    system: &mut System,
    caller: ProcessId,
    [a0, a1, ..]: [u64; 6],
) -> Result<Flow, Error> {
    let System { ipc, processes } = &mut *system;
    let mut host = ShortHost(KernelHost { processes });
    let (mailbox, payload) = (handle_from(a0)?, message_registers(a1)?);
    let reply = message_registers(MESSAGE_REGISTER_BYTES as u64)?;
    let answer = measured!(Kipc, {
        ipc.mailbox_call(
            caller,
            mailbox,
            payload,
            &[],
            reply,
            Blocking::Forever,
            &mut host,
        )
    });
    Ok(match answer {
        Ok(Outcome::Done(received)) => short_received(system, caller, received),
        Ok(Outcome::Blocked) => park(system, caller),
        Err(error) => result(Err(error)),
    })
}

/// `MAILBOX_REPLY_RECEIVE_SHORT`: `MAILBOX_REPLY_RECEIVE` with the reply and
/// the next message in the message registers.
#[inline(always)]
fn mailbox_reply_receive_short(
    system: &mut System,
    caller: ProcessId,
    [a0, a1, ..]: [u64; 6],
) -> Result<Flow, Error> {
    let System { ipc, processes } = &mut *system;
    let mut host = ShortHost(KernelHost { processes });
    let mailbox = handle_from(a0)?;
    let buffer = message_registers(MESSAGE_REGISTER_BYTES as u64)?;
    let (reply, reply_length) = (a1 as u32, a1 >> 32);
    let answer = if reply == 0 {
        measured!(Kipc, {
            ipc.mailbox_receive(caller, mailbox, buffer, Blocking::Forever, &mut host)
        })
    } else {
        let payload = message_registers(reply_length)?;
        measured!(Kipc, {
            ipc.mailbox_reply_receive(
                caller,
                Handle::from_raw(reply),
                payload,
                &[],
                mailbox,
                buffer,
                Blocking::Forever,
                &mut host,
            )
        })
    };
    Ok(match answer {
        Ok(Outcome::Done(received)) => short_received(system, caller, received),
        Ok(Outcome::Blocked) => {
            if let Some(process) = system.processes.get_mut(caller) {
                // SAFETY: the caller's frame, saved by the system-call entry
                // at the top of its kernel stack; it stays untouched until the
                // process runs again, and we hold the kernel lock.
                become_short_receive(unsafe { &mut *process.frame });
            }
            park(system, caller)
        }
        Err(error) => result(Err(error)),
    })
}

/// The results of a short call or receive that completed at once (the
/// message is already in the caller's message registers).
fn short_received(system: &mut System, caller: ProcessId, received: kipc::Received) -> Flow {
    match system.processes.get_mut(caller) {
        Some(process) => {
            // SAFETY: as in `mailbox_reply_receive_short`: the caller's own
            // frame, saved at this call's entry.
            let rax = deliver_short(unsafe { &mut *process.frame }, &received);
            Flow::Return(rax, None, None)
        }
        None => result(Err(Error::NoSuchProcess)),
    }
}

#[inline(always)]
fn mailbox_call(
    system: &mut System,
    caller: ProcessId,
    [a0, a1, a2, a3, a4, a5]: [u64; 6],
) -> Result<Flow, Error> {
    let System { ipc, processes } = &mut *system;
    let mut host = KernelHost { processes };
    // The array carries the handles to send and receives the reply's:
    // it is required, so no transferred handle goes unreported.
    let array = read_writable_handle_array(host.processes_space(caller), a5)?;
    let handles = array.handles.map(Handle::from_raw);
    let (mailbox, payload, reply) = (handle_from(a0)?, slice(a1, a2)?, slice(a3, a4)?);
    let answer = measured!(Kipc, {
        ipc.mailbox_call(
            caller,
            mailbox,
            payload,
            &handles[..array.count as usize],
            reply,
            Blocking::Forever,
            &mut host,
        )
    });
    Ok(match answer {
        Ok(Outcome::Done(received)) => {
            let space = space_of(system, caller);
            received_registers(space, a5, received, true)
        }
        Ok(Outcome::Blocked) => park(system, caller),
        Err(error) => result(Err(error)),
    })
}

#[inline(always)]
fn mailbox_reply_receive(
    system: &mut System,
    caller: ProcessId,
    [a0, a1, a2, a3, a4, a5]: [u64; 6],
) -> Result<Flow, Error> {
    let System { ipc, processes } = &mut *system;
    let mut host = KernelHost { processes };
    // The fast path of a server loop: no handle arrays to read, one
    // probe at most, then straight into kipc.
    probe_handle_array(host.processes_space(caller), a3)?;
    let mailbox = handle_from(a0)?;
    let buffer = slice(a1, a2)?;
    let answer = if a4 == 0 {
        measured!(Kipc, {
            ipc.mailbox_receive(caller, mailbox, buffer, Blocking::Forever, &mut host)
        })
    } else {
        if a5 > a2 {
            return Err(Error::InvalidArgument);
        }
        let reply = handle_from(a4)?;
        measured!(Kipc, {
            ipc.mailbox_reply_receive(
                caller,
                reply,
                buffer.prefix(a5 as usize),
                &[],
                mailbox,
                buffer,
                Blocking::Forever,
                &mut host,
            )
        })
    };
    Ok(match answer {
        Ok(Outcome::Done(received)) => {
            let space = space_of(system, caller);
            received_registers(space, a3, received, false)
        }
        Ok(Outcome::Blocked) => park_as_receive(system, caller),
        Err(error) => result(Err(error)),
    })
}

/// The calls a stream of messages makes over and over (pipe and queue reads
/// and writes, semaphore waits and posts): routed here straight from the
/// dispatcher (see `syscalls::entry::handle`), one small function each, so
/// they do not pay for [`handle`]'s large frame and long match.
#[inline(never)]
pub fn pipe_read(system: &mut System, caller: ProcessId, [a0, a1, a2, a3, ..]: [u64; 6]) -> Flow {
    let (pipe, buffer) = match (handle_from(a0), slice(a1, a2)) {
        (Ok(pipe), Ok(buffer)) => (pipe, buffer),
        (Err(error), _) | (_, Err(error)) => return result(Err(error)),
    };
    let System { ipc, processes } = &mut *system;
    let mut host = KernelHost { processes };
    let answer = measured!(Kipc, {
        ipc.pipe_read(caller, pipe, buffer, blocking(a3), &mut host)
    });
    outcome(system, caller, answer, |length| value(length as u64))
}

/// `PIPE_WRITE`, as [`pipe_read`].
#[inline(never)]
pub fn pipe_write(system: &mut System, caller: ProcessId, [a0, a1, a2, a3, ..]: [u64; 6]) -> Flow {
    let (pipe, data) = match (handle_from(a0), slice(a1, a2)) {
        (Ok(pipe), Ok(data)) => (pipe, data),
        (Err(error), _) | (_, Err(error)) => return result(Err(error)),
    };
    let System { ipc, processes } = &mut *system;
    let mut host = KernelHost { processes };
    let answer = measured!(Kipc, {
        ipc.pipe_write(caller, pipe, data, blocking(a3), &mut host)
    });
    outcome(system, caller, answer, |length| value(length as u64))
}

/// `MQUEUE_SEND`, as [`pipe_read`].
#[inline(never)]
pub fn mqueue_send(
    system: &mut System,
    caller: ProcessId,
    [a0, a1, a2, a3, a4, _]: [u64; 6],
) -> Flow {
    // The priority first, then the handle and the buffer: the order the
    // errors have always come in.
    let Ok(priority) = u8::try_from(a3) else {
        return result(Err(Error::InvalidArgument));
    };
    let (queue, data) = match (handle_from(a0), slice(a1, a2)) {
        (Ok(queue), Ok(data)) => (queue, data),
        (Err(error), _) | (_, Err(error)) => return result(Err(error)),
    };
    let System { ipc, processes } = &mut *system;
    let mut host = KernelHost { processes };
    let answer = ipc.mqueue_send(caller, queue, data, priority, blocking(a4), &mut host);
    outcome(system, caller, answer, |()| value(0))
}

/// `MQUEUE_RECEIVE`, as [`pipe_read`]: the length in `rax`, the priority in
/// `rdx`.
#[inline(never)]
pub fn mqueue_receive(
    system: &mut System,
    caller: ProcessId,
    [a0, a1, a2, a3, ..]: [u64; 6],
) -> Flow {
    let (queue, buffer) = match (handle_from(a0), slice(a1, a2)) {
        (Ok(queue), Ok(buffer)) => (queue, buffer),
        (Err(error), _) | (_, Err(error)) => return result(Err(error)),
    };
    let System { ipc, processes } = &mut *system;
    let mut host = KernelHost { processes };
    let answer = ipc.mqueue_receive(caller, queue, buffer, blocking(a3), &mut host);
    outcome(system, caller, answer, |message| {
        Flow::Return(
            kipc_abi::encode(Ok(message.length as u64)),
            Some(u64::from(message.priority)),
            None,
        )
    })
}

/// Semaphore waits and posts, as [`pipe_read`].
#[inline(never)]
pub fn semaphore_calls(
    system: &mut System,
    caller: ProcessId,
    number: u64,
    [a0, a1, ..]: [u64; 6],
) -> Flow {
    let semaphore = match handle_from(a0) {
        Ok(semaphore) => semaphore,
        Err(error) => return result(Err(error)),
    };
    let System { ipc, processes } = &mut *system;
    let mut host = KernelHost { processes };
    if number == number::SEMAPHORE_POST {
        let posted = measured!(Kipc, ipc.semaphore_post(caller, semaphore, &mut host));
        return result(posted.map(|()| 0));
    }
    let answer = measured!(
        Kipc,
        ipc.semaphore_wait(caller, semaphore, blocking(a1), &mut host)
    );
    outcome(system, caller, answer, |()| value(0))
}

/// Handles every system call number that is not a process call.
pub fn handle(system: &mut System, caller: ProcessId, number: u64, arguments: [u64; 6]) -> Flow {
    match call(system, caller, number, arguments) {
        Ok(flow) => flow,
        Err(error) => result(Err(error)),
    }
}

fn call(
    system: &mut System,
    caller: ProcessId,
    number: u64,
    [a0, a1, a2, a3, a4, a5]: [u64; 6],
) -> Result<Flow, Error> {
    let System { ipc, processes } = &mut *system;
    let mut host = KernelHost { processes };
    let flow = match number {
        // ----- handles -----
        number::HANDLE_CLOSE => {
            ipc.handle_close(caller, handle_from(a0)?, &mut host)?;
            value(0)
        }
        number::HANDLE_DUPLICATE => {
            let rights = u32::try_from(a1)
                .ok()
                .and_then(Rights::from_bits)
                .ok_or(Error::InvalidArgument)?;
            let new = ipc.handle_duplicate(caller, handle_from(a0)?, rights)?;
            value(u64::from(new.into_raw()))
        }
        number::HANDLE_INFO => {
            let info = ipc.handle_info(caller, handle_from(a0)?)?;
            let packed = info.kind as u64 | (u64::from(info.rights.bits()) << 8);
            Flow::Return(kipc_abi::encode(Ok(packed)), Some(info.badge), None)
        }

        // ----- mailboxes -----
        number::MAILBOX_CREATE => value(u64::from(ipc.mailbox_create(caller)?.into_raw())),
        number::MAILBOX_MINT => {
            let rights = u32::try_from(a1)
                .ok()
                .and_then(Rights::from_bits)
                .ok_or(Error::InvalidArgument)?;
            let minted = ipc.mailbox_mint(caller, handle_from(a0)?, rights, a2)?;
            value(u64::from(minted.into_raw()))
        }
        number::MAILBOX_SEND => {
            let handles = read_handles(host.processes_space(caller), a3, a4)?;
            let answer = ipc.mailbox_send(
                caller,
                handle_from(a0)?,
                slice(a1, a2)?,
                &handles,
                blocking(a5),
                &mut host,
            );
            return Ok(outcome(system, caller, answer, |()| value(0)));
        }
        number::MAILBOX_RECEIVE => {
            // Handles that arrive must be reported somewhere: the array is required.
            probe_handle_array(host.processes_space(caller), a3)?;
            let answer = ipc.mailbox_receive(
                caller,
                handle_from(a0)?,
                slice(a1, a2)?,
                blocking(a4),
                &mut host,
            );
            return Ok(match answer {
                Ok(Outcome::Done(received)) => {
                    let space = space_of(system, caller);
                    received_registers(space, a3, received, false)
                }
                Ok(Outcome::Blocked) => park(system, caller),
                Err(error) => result(Err(error)),
            });
        }
        number::MAILBOX_CALL => {
            return Ok(mailbox_hot_path(
                system,
                caller,
                number,
                [a0, a1, a2, a3, a4, a5],
            ));
        }
        number::MAILBOX_REPLY => {
            let handles = read_handles(host.processes_space(caller), a3, a4)?;
            ipc.mailbox_reply(
                caller,
                handle_from(a0)?,
                slice(a1, a2)?,
                &handles,
                &mut host,
            )?;
            value(0)
        }

        number::MAILBOX_REPLY_RECEIVE => {
            return Ok(mailbox_hot_path(
                system,
                caller,
                number,
                [a0, a1, a2, a3, a4, a5],
            ));
        }

        // ----- pipes and FIFOs -----
        number::PIPE_CREATE => {
            let (read, write) = ipc.pipe_create(caller)?;
            Flow::Return(
                kipc_abi::encode(Ok(u64::from(read.into_raw()))),
                Some(u64::from(write.into_raw())),
                None,
            )
        }
        number::FIFO_CREATE => {
            let name = name(host.processes_space(caller), a0, a1)?;
            ipc.fifo_create(caller, &name)?;
            value(0)
        }
        number::FIFO_OPEN => {
            let name = name(host.processes_space(caller), a0, a1)?;
            let mode = match a2 {
                0 => OpenMode::Read,
                1 => OpenMode::Write,
                _ => return Err(Error::InvalidArgument),
            };
            let answer = ipc.fifo_open(caller, &name, mode, blocking(a3), &mut host);
            return Ok(outcome(system, caller, answer, |handle| {
                value(u64::from(handle.into_raw()))
            }));
        }
        number::FIFO_UNLINK => {
            let name = name(host.processes_space(caller), a0, a1)?;
            ipc.fifo_unlink(caller, &name, &mut host)?;
            value(0)
        }

        // ----- message queues -----
        number::MQUEUE_CREATE => {
            let name = name(host.processes_space(caller), a0, a1)?;
            let max_messages = usize::try_from(a2).map_err(|_| Error::InvalidArgument)?;
            let max_size = usize::try_from(a3).map_err(|_| Error::InvalidArgument)?;
            value(u64::from(
                ipc.mqueue_create(caller, &name, max_messages, max_size)?
                    .into_raw(),
            ))
        }
        number::MQUEUE_OPEN => {
            let name = name(host.processes_space(caller), a0, a1)?;
            let mode = match a2 {
                kipc_abi::mqueue_open::READ_WRITE => kipc::QueueOpen::ReadWrite,
                kipc_abi::mqueue_open::READ_ONLY => kipc::QueueOpen::ReadOnly,
                kipc_abi::mqueue_open::WRITE_ONLY => kipc::QueueOpen::WriteOnly,
                _ => return Err(Error::InvalidArgument),
            };
            value(u64::from(ipc.mqueue_open(caller, &name, mode)?.into_raw()))
        }
        number::MQUEUE_UNLINK => {
            let name = name(host.processes_space(caller), a0, a1)?;
            ipc.mqueue_unlink(caller, &name)?;
            value(0)
        }
        number::MQUEUE_ATTRIBUTES => {
            let attributes = ipc.mqueue_attributes(caller, handle_from(a0)?)?;
            Flow::Return(
                kipc_abi::encode(Ok(attributes.max_messages as u64)),
                Some(attributes.max_message_size as u64),
                Some(attributes.queued as u64),
            )
        }

        // ----- shared regions and page loans -----
        number::REGION_CREATE => {
            let pages = usize::try_from(a0).map_err(|_| Error::InvalidArgument)?;
            value(u64::from(
                ipc.region_create(caller, pages, &mut host)?.into_raw(),
            ))
        }
        number::REGION_MAP => {
            let access = match a2 {
                0 => Access::ReadOnly,
                1 => Access::ReadWrite,
                _ => return Err(Error::InvalidArgument),
            };
            let at = (a1 != 0).then_some(a1);
            value(ipc.region_map(caller, handle_from(a0)?, at, access, &mut host)?)
        }
        number::REGION_UNMAP => {
            ipc.region_unmap(caller, a0, &mut host)?;
            value(0)
        }
        number::PAGES_LOAN => {
            let pages = usize::try_from(a1).map_err(|_| Error::InvalidArgument)?;
            value(u64::from(
                ipc.pages_loan(caller, a0, pages, &mut host)?.into_raw(),
            ))
        }
        number::REGION_PAGES => value(ipc.region_pages(caller, handle_from(a0)?)? as u64),

        // ----- semaphores and notifications -----
        number::SEMAPHORE_CREATE => {
            let initial = u32::try_from(a0).map_err(|_| Error::InvalidArgument)?;
            value(u64::from(ipc.semaphore_create(caller, initial)?.into_raw()))
        }
        number::SEMAPHORE_POST_WAIT => {
            return Ok(semaphore_post_wait(system, caller, [a0, a1, a2]));
        }
        number::NOTIFICATION_CREATE => {
            value(u64::from(ipc.notification_create(caller)?.into_raw()))
        }
        number::NOTIFICATION_SIGNAL => {
            ipc.notification_signal(caller, handle_from(a0)?, a1, &mut host)?;
            value(0)
        }
        number::NOTIFICATION_WAIT => {
            let answer = ipc.notification_wait(caller, handle_from(a0)?, blocking(a1), &mut host);
            return Ok(outcome(system, caller, answer, |bits| {
                Flow::Return(kipc_abi::encode(Ok(0)), Some(bits), None)
            }));
        }

        // ----- copy accounting -----
        number::LEDGER_READ => {
            // The size is checked before the process, as it always was.
            if a1 != size_of::<LedgerRecord>() as u64 {
                return Err(Error::InvalidArgument);
            }
            let ledger = ipc.ledger();
            let counters = if a2 == kipc_abi::LEDGER_GLOBAL {
                ledger.global()
            } else {
                ledger
                    .process(ProcessId::from_raw(a2))
                    .ok_or(Error::NoSuchProcess)?
            };
            let record = ledger_record(counters);
            copy_record_out(host.processes_space(caller), a0, a1, &record)?;
            value(0)
        }
        number::LEDGER_RESET => {
            ipc.ledger_reset();
            value(0)
        }
        _ => return Err(Error::InvalidArgument),
    };
    Ok(flow)
}

/// The ledger's counters in the ABI layout.
pub fn ledger_record(counters: &kipc::Counters) -> LedgerRecord {
    let mut record = LedgerRecord::default();
    for mechanism in Mechanism::ALL {
        for direction in kipc::Direction::ALL {
            let counter = counters.copies(mechanism, direction);
            record.operations[mechanism as usize][direction as usize] = counter.operations;
            record.bytes[mechanism as usize][direction as usize] = counter.bytes;
        }
        record.pages_mapped[mechanism as usize] = counters.pages_mapped(mechanism);
        record.pages_loaned[mechanism as usize] = counters.pages_loaned(mechanism);
    }
    record
}

/// Registers (and handle array) for a delivered message: `rax` = length,
/// `rdx` = badge, `r8` = the reply handle for a receive, or the number of
/// handles the reply carried for a call.
fn received_registers(
    space: &AddressSpace,
    array: u64,
    received: kipc::Received,
    call: bool,
) -> Flow {
    if array != 0 && !received.handles.is_empty() {
        // Checked writable before kipc ran; the process has not run since.
        // (With no handles the array is left alone: callers pass it with a
        // count of 0.)
        let _ = write_handle_array(space, array, &received.handles);
    }
    Flow::Return(
        kipc_abi::encode(Ok(received.length as u64)),
        Some(received.badge),
        Some(if call {
            received.handles.len() as u64
        } else {
            received
                .reply
                .map_or(0, |reply| u64::from(reply.into_raw()))
        }),
    )
}

impl KernelHost<'_> {
    /// The address space of `process` (alive: it is the caller).
    fn processes_space(&self, process: ProcessId) -> &AddressSpace {
        &self
            .processes
            .get(process)
            .expect("the caller is alive")
            .space
    }
}
