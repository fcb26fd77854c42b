//! File system calls: arguments checked, then handed to
//! [`crate::services::fs`].

use kipc::{Error, ProcessId};
use kipc_abi::number;

use super::common::{Flow, copy_string, result};
use crate::processes::host::KernelHost;
use crate::processes::table::System;
use crate::services::fs::{self, FILES, MAX_OPEN, user_slice};

/// Handles the `FILE_*` system calls.
pub fn handle(system: &mut System, caller: ProcessId, number: u64, arguments: [u64; 6]) -> Flow {
    result(call(system, caller, number, arguments))
}

fn descriptor(raw: u64) -> Result<usize, Error> {
    usize::try_from(raw)
        .ok()
        .filter(|&index| index < MAX_OPEN)
        .ok_or(Error::BadHandle)
}

fn call(
    system: &mut System,
    caller: ProcessId,
    number: u64,
    [a0, a1, a2, a3, _, _]: [u64; 6],
) -> Result<u64, Error> {
    let System { ipc, processes } = system;
    let mut files = FILES.lock();
    let process = processes.get_mut(caller).ok_or(Error::NoSuchProcess)?;
    match number {
        number::FILE_OPEN => {
            let name =
                copy_string::<{ kipc::NAME_MAX }>(&process.space, a0, a1).map_err(|error| {
                    if a1 > kipc::NAME_MAX as u64 {
                        Error::NameTooLong
                    } else {
                        error
                    }
                })?;
            let slot = files
                .descriptors(caller)
                .iter()
                .position(Option::is_none)
                .ok_or(Error::OutOfHandles)?;
            let open = files.open(&name, a2)?;
            files.descriptors(caller)[slot] = Some(open);
            Ok(slot as u64)
        }
        number::FILE_CLOSE => {
            let open = files.descriptors(caller)[descriptor(a0)?]
                .take()
                .ok_or(Error::BadHandle)?;
            files.close(&open);
            Ok(0)
        }
        number::FILE_SEEK => {
            let open = files.descriptors(caller)[descriptor(a0)?]
                .as_mut()
                .ok_or(Error::BadHandle)?;
            if a1 > fs::MAX_FILE_SIZE {
                return Err(Error::InvalidArgument);
            }
            open.offset = a1;
            Ok(0)
        }
        number::FILE_SIZE => {
            let open = files.descriptors(caller)[descriptor(a0)?].ok_or(Error::BadHandle)?;
            files.size(&open)
        }
        number::FILE_CHECKSUM => {
            let open = files.descriptors(caller)[descriptor(a0)?].ok_or(Error::BadHandle)?;
            files.checksum(&open)
        }
        number::FILE_UNLINK => {
            let name = copy_string::<{ kipc::NAME_MAX }>(&process.space, a0, a1)?;
            files.unlink(&name).map(|()| 0)
        }
        number::FILE_GENERATE => {
            let name = copy_string::<{ kipc::NAME_MAX }>(&process.space, a0, a1)?;
            files.generate(&name, a2, a3)
        }
        number::FILE_LEND => {
            let open = files.descriptors(caller)[descriptor(a0)?].ok_or(Error::BadHandle)?;
            let pages = usize::try_from(a2).map_err(|_| Error::InvalidArgument)?;
            let address = files.lend(&open, a1, pages, &mut process.space)?;
            ipc.account_pages(caller, kipc::Mechanism::File, pages, 0);
            Ok(address)
        }
        number::FILE_APPEND_PAGES => {
            let open = files.descriptors(caller)[descriptor(a0)?].ok_or(Error::BadHandle)?;
            let pages = usize::try_from(a2).map_err(|_| Error::InvalidArgument)?;
            files.append_pages(&open, &process.space, a1, pages, a3)?;
            Ok(0)
        }
        number::FILE_READ | number::FILE_WRITE => {
            drop(files);
            read_or_write(system, caller, number, [a0, a1, a2])
        }
        _ => Err(Error::InvalidArgument),
    }
}

/// `FILE_READ` and `FILE_WRITE`, the calls a file transfer makes once per
/// chunk: routed here straight from the dispatcher (see
/// `syscalls::entry::handle`), so they do not pay for [`handle`]'s match
/// and frame.
#[inline(never)]
pub fn read_write(
    system: &mut System,
    caller: ProcessId,
    number: u64,
    [a0, a1, a2, ..]: [u64; 6],
) -> Flow {
    result(read_or_write(system, caller, number, [a0, a1, a2]))
}

#[inline(always)]
fn read_or_write(
    system: &mut System,
    caller: ProcessId,
    number: u64,
    [a0, a1, a2]: [u64; 3],
) -> Result<u64, Error> {
    let System { ipc, processes } = system;
    let mut files = FILES.lock();
    let index = descriptor(a0)?;
    let mut open = files.descriptors(caller)[index].ok_or(Error::BadHandle)?;
    let slice = user_slice(a1, a2)?;
    let mut host = KernelHost { processes };
    let done = if number == number::FILE_READ {
        files.read(&mut open, slice, ipc, &mut host, caller)?
    } else {
        files.write(&mut open, slice, ipc, &mut host, caller)?
    };
    files.descriptors(caller)[index] = Some(open);
    Ok(done as u64)
}
