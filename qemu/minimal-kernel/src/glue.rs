//! All of this kernel's kipc glue: the host traits and the system-call dispatch.
//!
//! Memory goes through kipc's `x86_64` adapter, so the host traits reduce to naming
//! each process's page table ([`PageTables`]), a clock and a wake sink. System calls
//! follow `kipc_abi` (the same numbers and registers as the demo kernel, so the same
//! user library works); this kernel offers the subset its programs need. Its size is
//! checked by `tests/minimal_kernel.rs`: at most 200 lines of code.

use kipc::x86_64_adapter::{PageTables, X86_64Host};
use kipc::{Access, Blocking, Completion, Error, ErrorCode, Handle, Outcome, ProcessId};
use kipc::{Received, UserLimit, UserMemory, UserSlice, Wake, Wakeup};
use kipc_abi::number;
use kipc_arch::interrupts::TrapFrame;
use x86_64::structures::paging::{OffsetPageTable, PhysFrame};

use crate::memory::{Frames, frame_bytes};
use crate::{Machine, State};

/// This kernel's kipc: the crate's minimal configuration (4 processes, 16 handles each,
/// 4 objects of each kind, 64-byte messages, 512-byte pipes; under 16 KiB).
pub type MinimalIpc = kipc::MinimalIpc;

type Host<'a> = X86_64Host<&'a mut Machine>;

// SAFETY: every process has its own PML4 (kernel half shared, user half its own);
// `Frames` hands out each frame once; `frame_bytes` is the direct map of exactly that
// frame; kernel code keeps no reference to user frames across kipc calls; `flush`
// invalidates the pages on this (only) CPU.
unsafe impl PageTables for Machine {
    type Frames = Frames;

    fn page_table(
        &mut self,
        id: ProcessId,
    ) -> Option<(&mut OffsetPageTable<'static>, &mut Frames)> {
        let process = self.processes[id.slot()].as_mut().filter(|p| p.id == id)?;
        Some((&mut process.table, &mut self.frames))
    }

    fn page_table_ref(&self, id: ProcessId) -> Option<&OffsetPageTable<'static>> {
        let process = self.processes[id.slot()].as_ref().filter(|p| p.id == id)?;
        Some(&process.table)
    }

    fn frames(&mut self) -> &mut Frames {
        &mut self.frames
    }

    fn frame_bytes(&mut self, frame: PhysFrame) -> &mut [u8; 4096] {
        frame_bytes(frame)
    }

    fn mapping_window(&self) -> (u64, u64) {
        (0x1000_0000_0000, 0x1000_1000_0000)
    }

    fn flush(&mut self, _: ProcessId, address: u64, pages: usize) {
        for page in 0..pages as u64 {
            x86_64::instructions::tlb::flush(x86_64::VirtAddr::new(address + page * 4096));
        }
    }
}

impl kipc::Clock for Machine {
    fn now(&self) -> u64 {
        kipc_arch::timer::ticks()
    }
}

impl Wake for Machine {
    fn wake(&mut self, id: ProcessId, wakeup: Wakeup) {
        let Some(process) = self.processes[id.slot()].as_mut().filter(|p| p.id == id) else {
            return;
        };
        // SAFETY: a parked process's frame sits untouched at the top of its kernel stack.
        let frame = unsafe { &mut *process.frame };
        frame.rax = match wakeup {
            Wakeup::Retry => {
                kipc_arch::syscall::restart(frame);
                frame.rax
            }
            Wakeup::Failed(error) => encode_error(error),
            Wakeup::Completed(Completion::Received(received)) => ok(deliver(frame, received)),
            Wakeup::Completed(Completion::Opened(handle)) => ok(handle.into_raw().into()),
            Wakeup::Completed(Completion::Notified(bits)) => {
                frame.rdx = bits;
                ok(0)
            }
            Wakeup::Completed(Completion::Acquired) => ok(0),
            Wakeup::Completed(Completion::Written(bytes) | Completion::Read(bytes)) => {
                ok(bytes as u64)
            }
            Wakeup::Completed(Completion::Dequeued(message)) => ok(message.length as u64),
        };
        process.state = State::Ready;
        let _ = self.ready.push_back(id.slot());
    }
}

/// A message arrived for the call in `frame`: badge in `rdx`, the reply handle (for a
/// receive) in `r8`; returns the length for `rax`.
fn deliver(frame: &mut TrapFrame, received: Received) -> u64 {
    let reply = received
        .reply
        .map_or(0, |reply| u64::from(reply.into_raw()));
    frame.rdx = received.badge;
    frame.r8 = if frame.rax == number::MAILBOX_CALL {
        0
    } else {
        reply
    };
    received.length as u64
}

fn ok(value: u64) -> u64 {
    kipc_abi::encode(Ok(value))
}

fn encode_error(error: Error) -> u64 {
    kipc_abi::encode(Err(ErrorCode::from(error) as u32))
}

/// What the scheduler does after a system call.
pub enum Next {
    /// Resume the caller (its result registers are written).
    Resume,
    /// The caller is parked until a wakeup names it.
    Park,
    /// The caller exited with this code.
    Exit(u32),
}

fn slice(address: u64, length: u64) -> Result<UserSlice, Error> {
    let length = usize::try_from(length).map_err(|_| Error::BadAddress)?;
    UserSlice::new(address, length, UserLimit::X86_64_LOWER_HALF)
}

fn handle(raw: u64) -> Result<Handle, Error> {
    u32::try_from(raw)
        .map(Handle::from_raw)
        .map_err(|_| Error::BadHandle)
}

fn blocking(deadline: u64) -> Result<Blocking, Error> {
    match deadline {
        kipc_abi::NO_WAIT => Ok(Blocking::NonBlocking),
        kipc_abi::FOREVER => Ok(Blocking::Forever),
        // This kernel keeps no timer deadlines: refused, not silently ignored.
        _ => Err(Error::InvalidArgument),
    }
}

/// A handle array in user memory must say "no handles": this kernel does not transfer
/// handles through messages.
fn no_handles(host: &mut Host, caller: ProcessId, array: u64) -> Result<(), Error> {
    let mut count = [0u8; 4];
    if array != 0 {
        host.copy_from_user(caller, slice(array, 4)?, &mut count)?;
    }
    (count == [0; 4])
        .then_some(())
        .ok_or(Error::InvalidArgument)
}

/// Runs system call `frame.rax` for `caller` and writes its result into `frame`.
pub fn system_call(
    ipc: &mut MinimalIpc,
    machine: &mut Machine,
    caller: ProcessId,
    frame: &mut TrapFrame,
) -> Next {
    if frame.rax == number::EXIT {
        return Next::Exit(frame.rdi as u32);
    }
    match dispatch(ipc, &mut X86_64Host(machine), caller, frame) {
        Ok(Outcome::Done(value)) => frame.rax = ok(value),
        Ok(Outcome::Blocked) => return Next::Park,
        Err(error) => frame.rax = encode_error(error),
    }
    Next::Resume
}

fn dispatch(
    ipc: &mut MinimalIpc,
    host: &mut Host,
    caller: ProcessId,
    frame: &mut TrapFrame,
) -> Result<Outcome<u64>, Error> {
    let [a0, a1, a2, a3, a4, a5] = [
        frame.rdi, frame.rsi, frame.rdx, frame.r10, frame.r8, frame.r9,
    ];
    let (target, buffer) = (handle(a0), slice(a1, a2));
    let length = |count: usize| count as u64;
    let access = [Access::ReadOnly, Access::ReadWrite][usize::from(a2 != 0)];
    Ok(match frame.rax {
        number::CONSOLE_WRITE => {
            let mut bytes = [0u8; 4096];
            let text = bytes.get_mut(..a1 as usize).ok_or(Error::InvalidArgument)?;
            host.copy_from_user(caller, slice(a0, a1)?, text)?;
            kipc_arch::serial::write_bytes(text);
            Outcome::Done(a1)
        }
        number::HANDLE_CLOSE => Outcome::Done(ipc.handle_close(caller, target?, host).map(|()| 0)?),
        number::PIPE_READ => ipc
            .pipe_read(caller, target?, buffer?, blocking(a3)?, host)?
            .map(length),
        number::PIPE_WRITE => ipc
            .pipe_write(caller, target?, buffer?, blocking(a3)?, host)?
            .map(length),
        number::MAILBOX_CALL => {
            no_handles(host, caller, a5)?;
            let replies = slice(a3, a4)?;
            let outcome = ipc.mailbox_call(
                caller,
                target?,
                buffer?,
                &[],
                replies,
                Blocking::Forever,
                host,
            )?;
            outcome.map(|received| deliver(frame, received))
        }
        number::MAILBOX_RECEIVE => {
            no_handles(host, caller, a3)?;
            let outcome = ipc.mailbox_receive(caller, target?, buffer?, blocking(a4)?, host)?;
            outcome.map(|received| deliver(frame, received))
        }
        number::MAILBOX_REPLY if a4 == 0 => {
            ipc.mailbox_reply(caller, target?, buffer?, &[], host)?;
            Outcome::Done(0)
        }
        number::REGION_MAP => {
            let at = (a1 != 0).then_some(a1);
            Outcome::Done(ipc.region_map(caller, target?, at, access, host)?)
        }
        number::REGION_PAGES => Outcome::Done(ipc.region_pages(caller, target?)? as u64),
        number::REGION_UNMAP => Outcome::Done(ipc.region_unmap(caller, a0, host).map(|()| 0)?),
        _ => return Err(Error::InvalidArgument),
    })
}
