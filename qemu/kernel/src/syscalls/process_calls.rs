//! The process system calls: console output, spawn, wait, kill, yield,
//! sleep, the clock and the kernel's counters.

use core::sync::atomic::Ordering;

use kipc::{Error, ProcessId};
use kipc_abi::number;

use super::common::{
    Flow, copy_record_out, copy_string, error, result, set_result, space_of, value,
};
use crate::processes::lifecycle;
use crate::processes::table::{COUNTERS, NAME_LENGTH, State, System};

/// Handles the process calls (`EXIT..=RESOURCE_USAGE`). Inlined into the
/// dispatcher, so the cheapest calls (the null-call benchmark's
/// `PROCESS_ID`) cost no second call and no `Flow` in memory; the large
/// handlers stay out of line.
#[inline(always)]
pub fn handle(system: &mut System, caller: ProcessId, number: u64, arguments: [u64; 6]) -> Flow {
    match number {
        number::EXIT => {
            lifecycle::exit(system, caller, arguments[0] as u32);
            Flow::Switch
        }
        number::CONSOLE_WRITE => console_write(system, caller, arguments[0], arguments[1]),
        number::SPAWN => spawn(system, caller, arguments),
        number::WAIT => wait(system, caller, arguments[0]),
        number::YIELD => {
            system.processes.make_ready(caller.slot());
            set_result(system, caller, 0);
            Flow::Switch
        }
        number::SLEEP => {
            let ticks = arguments[0].div_ceil(1000 / u64::from(kipc_arch::timer::TICK_HZ));
            let until = kipc_arch::timer::ticks() + ticks.max(1);
            if let Some(process) = system.processes.get_mut(caller) {
                process.state = State::Sleeping(until);
            }
            set_result(system, caller, 0);
            Flow::Switch
        }
        number::CLOCK => match arguments[0] {
            kipc_abi::clock::UPTIME_MS => value(kipc_arch::timer::uptime_ms()),
            // SAFETY: rdtsc only reads the time-stamp counter.
            kipc_abi::clock::TSC => value(unsafe { core::arch::x86_64::_rdtsc() }),
            _ => error(Error::InvalidArgument),
        },
        number::PROCESS_ID => value(caller.into_raw()),
        number::KERNEL_STATS => kernel_stats(system, caller, arguments[0], arguments[1]),
        number::KILL => kill(system, caller, arguments[0]),
        number::RESOURCE_USAGE => resource_usage(system, caller, arguments[0], arguments[1]),
        number::BREAKDOWN => breakdown(system, caller, arguments[0], arguments[1]),
        _ => error(Error::InvalidArgument),
    }
}

#[inline(never)]
fn console_write(system: &mut System, caller: ProcessId, address: u64, length: u64) -> Flow {
    const MAX: u64 = 64 * 1024;
    if length > MAX {
        return error(Error::InvalidArgument);
    }
    let space = space_of(system, caller);
    let mut buffer = [0u8; 256];
    let mut done = 0u64;
    // Check the whole range first so a bad buffer prints nothing.
    if !space.is_readable(address, length as usize) {
        return error(Error::BadAddress);
    }
    while done < length {
        let piece = (length - done).min(buffer.len() as u64) as usize;
        if space
            .copy_from_user(address + done, &mut buffer[..piece])
            .is_err()
        {
            return error(Error::BadAddress);
        }
        kipc_arch::serial::write_bytes(&buffer[..piece]);
        done += piece as u64;
    }
    value(length)
}

/// Most handles passed at spawn.
pub const SPAWN_HANDLES: usize = 8;

#[inline(never)]
fn spawn(system: &mut System, caller: ProcessId, arguments: [u64; 6]) -> Flow {
    let space = space_of(system, caller);
    let name = match copy_string::<{ NAME_LENGTH }>(space, arguments[0], arguments[1]) {
        Ok(name) => name,
        Err(failure) => return error(failure),
    };
    let argument = match copy_string::<256>(space, arguments[2], arguments[3]) {
        Ok(argument) => argument,
        Err(failure) => return error(failure),
    };
    if arguments[5] > SPAWN_HANDLES as u64 {
        return error(Error::InvalidArgument);
    }
    let mut raw = [0u8; SPAWN_HANDLES * 4];
    let handle_bytes = &mut raw[..arguments[5] as usize * 4];
    if space.copy_from_user(arguments[4], handle_bytes).is_err() {
        return error(Error::BadAddress);
    }
    let handles: heapless::Vec<kipc::Handle, SPAWN_HANDLES> = handle_bytes
        .chunks_exact(4)
        .map(|chunk| kipc::Handle::from_raw(u32::from_le_bytes(chunk.try_into().unwrap_or([0; 4]))))
        .collect();
    // Check every handle before creating anything, so a bad list changes nothing.
    for (index, handle) in handles.iter().enumerate() {
        match system.ipc.handle_info(caller, *handle) {
            // A one-shot reply handle belongs to its call: it cannot be copied.
            Ok(info) if info.kind == kipc::ObjectKind::Reply => {
                return error(Error::InvalidArgument);
            }
            Ok(info) if info.rights.contains(kipc::Rights::TRANSFER) => {}
            Ok(_) => return error(Error::PermissionDenied),
            Err(failure) => return error(failure),
        }
        if handles[..index].contains(handle) {
            return error(Error::InvalidArgument);
        }
    }
    // Exit codes wait in a bounded table until collected: refuse children
    // whose codes could not be kept.
    if system.processes.zombies.len() + system.processes.live()
        >= system.processes.zombies.capacity()
    {
        return error(Error::OutOfProcesses);
    }
    let Ok(name) = core::str::from_utf8(&name) else {
        return error(Error::InvalidArgument);
    };
    let child = match lifecycle::spawn(system, name, &argument, Some(caller)) {
        Ok(child) => child,
        Err(lifecycle::SpawnError::NotFound) => return error(Error::NotFound),
        Err(lifecycle::SpawnError::OutOfProcesses) => return error(Error::OutOfProcesses),
        Err(lifecycle::SpawnError::OutOfFrames) => return error(Error::OutOfFrames),
        Err(lifecycle::SpawnError::BadProgram(_)) => return error(Error::InvalidArgument),
    };
    // Give the child copies of the handles and tell it their values: an
    // array below the argument string, address in rdx, count in rcx.
    let mut granted = [0u8; SPAWN_HANDLES * 4];
    for (index, handle) in handles.iter().enumerate() {
        let rights = match system.ipc.handle_info(caller, *handle) {
            Ok(info) => info.rights,
            Err(failure) => return error(failure),
        };
        match system.ipc.handle_grant(caller, *handle, child, rights) {
            Ok(new) => {
                granted[index * 4..index * 4 + 4].copy_from_slice(&new.into_raw().to_le_bytes())
            }
            Err(failure) => {
                lifecycle::discard(system, child);
                return error(failure);
            }
        }
    }
    let process = system.processes.get_mut(child).expect("just spawned");
    // SAFETY: the child's initial frame, written by `process::spawn`; the
    // child has not run yet.
    let frame = unsafe { &mut *process.frame };
    let array = ((frame.rdi - (handles.len() as u64 * 4)) & !15).min(frame.rdi);
    if process
        .space
        .copy_to_user(array, &granted[..handles.len() * 4])
        .is_err()
    {
        lifecycle::discard(system, child);
        return error(Error::OutOfFrames);
    }
    frame.rdx = array;
    frame.rcx = handles.len() as u64;
    frame.rsp = array - 8;
    system.processes.make_ready(child.slot());
    value(child.into_raw())
}

#[inline(never)]
fn wait(system: &mut System, caller: ProcessId, raw_child: u64) -> Flow {
    let child = ProcessId::from_raw(raw_child);
    let processes = &mut system.processes;
    if let Some(index) = processes
        .zombies
        .iter()
        .position(|zombie| zombie.id == child && zombie.parent == Some(caller))
    {
        let zombie = processes.zombies.swap_remove(index);
        return value(u64::from(zombie.code));
    }
    match processes.get(child) {
        Some(process) if process.parent == Some(caller) => {
            if let Some(me) = processes.get_mut(caller) {
                me.state = State::WaitingForChild(child);
            }
            Flow::Switch
        }
        _ => error(Error::NoSuchProcess),
    }
}

#[inline(never)]
fn kill(system: &mut System, caller: ProcessId, raw_child: u64) -> Flow {
    let child = ProcessId::from_raw(raw_child);
    match system.processes.get(child) {
        Some(process) if process.parent == Some(caller) => {
            kipc_arch::println!(
                "kernel: process {} ({}) killed by its parent",
                child.slot(),
                process.name
            );
            COUNTERS.killed.fetch_add(1, Ordering::Relaxed);
            lifecycle::exit(system, child, kipc_abi::EXIT_KILLED);
            value(0)
        }
        _ => error(Error::NoSuchProcess),
    }
}

/// The kernel-wide resource figures leak checks compare.
pub fn resource_usage_now(system: &System) -> kipc_abi::ResourceUsage {
    let usage = system.ipc.usage();
    kipc_abi::ResourceUsage {
        free_frames: crate::memory::frame_stats().free,
        processes: system.processes.live() as u64,
        handles: usage.handles as u64,
        mailboxes: usage.mailboxes as u64,
        pipes: usage.pipes as u64,
        fifos: usage.fifos as u64,
        message_queues: usage.message_queues as u64,
        regions: usage.regions as u64,
        semaphores: usage.semaphores as u64,
        notifications: usage.notifications as u64,
        region_frames: usage.frames_held as u64,
        mappings: usage.mappings as u64,
        mapped_pages: usage.mapped_pages as u64,
        queued_messages: usage.queued_messages as u64,
        handles_in_flight: usage.handles_in_flight as u64,
        waiters: usage.waiters as u64,
    }
}

#[inline(never)]
fn resource_usage(system: &mut System, caller: ProcessId, address: u64, length: u64) -> Flow {
    let usage = resource_usage_now(system);
    result(copy_record_out(space_of(system, caller), address, length, &usage).map(|()| 0))
}

#[inline(never)]
fn kernel_stats(system: &mut System, caller: ProcessId, address: u64, length: u64) -> Flow {
    let frames = crate::memory::frame_stats();
    let stats = kipc_abi::KernelStats {
        syscalls: COUNTERS.syscalls.load(Ordering::Relaxed),
        context_switches: COUNTERS.context_switches.load(Ordering::Relaxed),
        ticks: kipc_arch::timer::ticks(),
        free_frames: frames.free,
        processes: system.processes.live() as u64,
        processes_killed: COUNTERS.killed.load(Ordering::Relaxed),
        fast_path_handoffs: COUNTERS.fast_path_handoffs.load(Ordering::Relaxed),
    };
    result(copy_record_out(space_of(system, caller), address, length, &stats).map(|()| 0))
}

#[inline(never)]
fn breakdown(system: &mut System, caller: ProcessId, address: u64, length: u64) -> Flow {
    let Some(totals) = crate::processes::breakdown::take() else {
        return error(Error::InvalidArgument);
    };
    let record = kipc_abi::Breakdown {
        dispatch: totals[0],
        kipc: totals[1],
        copy: totals[2],
        wake: totals[3],
        scheduler: totals[4],
        switch: totals[5],
        host_copy: totals[6],
    };
    result(copy_record_out(space_of(system, caller), address, length, &record).map(|()| 0))
}
