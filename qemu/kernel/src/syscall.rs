//! System calls: the `syscall` entry, the dispatcher, and the process calls.
//!
//! Entry: `syscall` jumps to `syscall_entry` with interrupts masked (SFMASK
//! clears IF, TF, DF, AC). The stub swaps to the kernel GS (per-CPU data:
//! the kernel stack top and a scratch slot for the user RSP), switches to the
//! process's kernel stack, and pushes the same [`TrapFrame`] an interrupt would
//! (vector [`SYSCALL_VECTOR`]), so both share one return path (`iretq`).
//!
//! Arguments arrive in `rdi rsi rdx r10 r8 r9`, the number in `rax`; the
//! result goes back in `rax` (see `kipc_abi::encode`), a second one in `rdx`.
//! Every pointer is checked by walking the caller's page tables before a byte
//! is copied; no user address is ever dereferenced by the kernel.

use core::arch::global_asm;
use core::sync::atomic::Ordering;

use kipc::{Error, ErrorCode, ProcessId, Wakeup};
use kipc_abi::number;
use x86_64::VirtAddr;
use x86_64::registers::model_specific::{Efer, EferFlags, GsBase, KernelGsBase, LStar, Msr};

use crate::address_space::AddressSpace;
use crate::interrupts::{SYSCALL_VECTOR, TrapFrame};
use crate::process::{self, COUNTERS, SYSTEM, State, System};

/// Per-CPU data reached through GS in the entry stub.
#[repr(C)]
struct PerCpu {
    /// Top of the running process's kernel stack (offset 0).
    kernel_stack: u64,
    /// The user RSP while the entry stub builds the frame (offset 8).
    user_stack: u64,
}

static mut PER_CPU: PerCpu = PerCpu {
    kernel_stack: 0,
    user_stack: 0,
};

global_asm!(
    r#"
    .section .text.syscall, "ax"
    .global syscall_entry
syscall_entry:
    swapgs
    mov gs:[8], rsp
    mov rsp, gs:[0]
    push {user_data}
    push qword ptr gs:[8]
    push r11
    push {user_code}
    push rcx
    push 0
    push {vector}
    push rax
    push rbx
    push rcx
    push rdx
    push rsi
    push rdi
    push rbp
    push r8
    push r9
    push r10
    push r11
    push r12
    push r13
    push r14
    push r15
    mov rdi, rsp
    cld
    call interrupt_dispatch
    mov rsp, rax
    jmp interrupt_return
    "#,
    user_data = const 0x1b,
    user_code = const 0x23,
    vector = const SYSCALL_VECTOR,
);

unsafe extern "C" {
    fn syscall_entry();
}

/// Enables `syscall`/`sysret` and points the CPU at the entry stub.
pub fn init() {
    let selectors = crate::gdt::selectors();
    debug_assert_eq!(selectors.user_data.0, 0x1b);
    debug_assert_eq!(selectors.user_code.0, 0x23);
    // SAFETY: the MSR values follow the GDT layout (kernel code 0x08, data
    // 0x10; user data 0x18, code 0x20); LSTAR points at the entry stub above;
    // GS base is our per-CPU block while in the kernel, and the user's (0)
    // is parked in KERNEL_GS_BASE until the first `swapgs` on the way out.
    unsafe {
        Efer::update(|flags| *flags |= EferFlags::SYSTEM_CALL_EXTENSIONS);
        Msr::new(0xc000_0081).write((0x10u64 << 48) | (0x08u64 << 32)); // STAR
        LStar::write(VirtAddr::new(syscall_entry as *const () as u64));
        Msr::new(0xc000_0084).write(0x4_0700); // SFMASK: AC | DF | IF | TF
        GsBase::write(VirtAddr::from_ptr(core::ptr::addr_of!(PER_CPU)));
        KernelGsBase::write(VirtAddr::zero());
    }
}

/// Sets the kernel stack the entry stub switches to.
pub fn set_kernel_stack(top: u64) {
    // SAFETY: one aligned store, with interrupts off, on the only CPU; the
    // entry stub reads it only on the next `syscall`.
    unsafe { (*core::ptr::addr_of_mut!(PER_CPU)).kernel_stack = top };
}

/// What a system call handler decided.
pub enum Flow {
    /// Return to the caller with `rax` (and `rdx`, `r8` when `Some`).
    Return(u64, Option<u64>, Option<u64>),
    /// The caller is parked; run someone else.
    Switch,
}

fn error(error: Error) -> Flow {
    Flow::Return(
        kipc_abi::encode(Err(ErrorCode::from(error) as u32)),
        None,
        None,
    )
}

fn value(value: u64) -> Flow {
    Flow::Return(kipc_abi::encode(Ok(value)), None, None)
}

/// Turns a kipc result into a flow.
pub fn result(outcome: Result<u64, Error>) -> Flow {
    match outcome {
        Ok(returned) => value(returned),
        Err(failure) => error(failure),
    }
}

/// Called from `interrupt_dispatch` for vector [`SYSCALL_VECTOR`].
pub fn dispatch(frame: *mut TrapFrame) -> *mut TrapFrame {
    COUNTERS.syscalls.fetch_add(1, Ordering::Relaxed);
    let mut guard = SYSTEM.lock();
    let system = &mut *guard;
    process::save_current(&mut system.processes, frame);
    system.processes.begin_call();
    let Some(caller) = system.processes.current_id() else {
        crate::fail(format_args!("system call with no current process"));
    };
    // SAFETY: the frame the entry stub just pushed on the caller's stack.
    let registers = unsafe { &*frame };
    let number = registers.rax;
    let arguments = [
        registers.rdi,
        registers.rsi,
        registers.rdx,
        registers.r10,
        registers.r8,
        registers.r9,
    ];
    let flow = handle(system, caller, number, arguments);
    match flow {
        Flow::Return(..) => {
            // SAFETY: as above; the caller resumes with these results.
            apply(unsafe { &mut *frame }, flow);
            frame
        }
        Flow::Switch => process::switch_after_call(&mut system.processes, frame),
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

fn handle(system: &mut System, caller: ProcessId, number: u64, arguments: [u64; 6]) -> Flow {
    match number {
        number::MAILBOX_CALL | number::MAILBOX_REPLY_RECEIVE => {
            crate::ipc_calls::mailbox_fast_path(system, caller, number, arguments)
        }
        number::EXIT => {
            process::exit(system, caller, arguments[0] as u32);
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
            let ticks = arguments[0].div_ceil(1000 / u64::from(crate::timer::TICK_HZ));
            let until = crate::timer::ticks() + ticks.max(1);
            if let Some(process) = system.processes.get_mut(caller) {
                process.state = State::Sleeping(until);
            }
            set_result(system, caller, 0);
            Flow::Switch
        }
        number::CLOCK => match arguments[0] {
            kipc_abi::clock::UPTIME_MS => value(crate::timer::uptime_ms()),
            // SAFETY: rdtsc only reads the time-stamp counter.
            kipc_abi::clock::TSC => value(unsafe { core::arch::x86_64::_rdtsc() }),
            _ => error(Error::InvalidArgument),
        },
        number::PROCESS_ID => value(caller.into_raw()),
        number::KERNEL_STATS => kernel_stats(system, caller, arguments[0], arguments[1]),
        number::KILL => kill(system, caller, arguments[0]),
        number::RESOURCE_USAGE => resource_usage(system, caller, arguments[0], arguments[1]),
        number::FILE_OPEN..=number::FILE_APPEND_PAGES => {
            match crate::file_calls::handle(system, caller, number, arguments) {
                Some(flow) => flow,
                None => crate::ipc_calls::handle(system, caller, number, arguments),
            }
        }
        _ => crate::ipc_calls::handle(system, caller, number, arguments),
    }
}

/// Sets the value a process switched away from will see when it resumes
/// (for calls that always succeed but give up the CPU).
fn set_result(system: &mut System, caller: ProcessId, result: u64) {
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
        crate::serial::write_bytes(&buffer[..piece]);
        done += piece as u64;
    }
    value(length)
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

/// Most handles passed at spawn.
pub const SPAWN_HANDLES: usize = 8;

fn spawn(system: &mut System, caller: ProcessId, arguments: [u64; 6]) -> Flow {
    let space = space_of(system, caller);
    let name = match copy_string::<{ process::NAME_LENGTH }>(space, arguments[0], arguments[1]) {
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
    let child = match process::spawn(system, name, &argument, Some(caller)) {
        Ok(child) => child,
        Err(process::SpawnError::NotFound) => return error(Error::NotFound),
        Err(process::SpawnError::OutOfProcesses) => return error(Error::OutOfProcesses),
        Err(process::SpawnError::OutOfFrames) => return error(Error::OutOfFrames),
        Err(process::SpawnError::BadProgram(_)) => return error(Error::InvalidArgument),
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
                process::discard(system, child);
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
        process::discard(system, child);
        return error(Error::OutOfFrames);
    }
    frame.rdx = array;
    frame.rcx = handles.len() as u64;
    frame.rsp = array - 8;
    system.processes.make_ready(child.slot());
    value(child.into_raw())
}

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

fn kill(system: &mut System, caller: ProcessId, raw_child: u64) -> Flow {
    let child = ProcessId::from_raw(raw_child);
    match system.processes.get(child) {
        Some(process) if process.parent == Some(caller) => {
            crate::println!(
                "kernel: process {} ({}) killed by its parent",
                child.slot(),
                process.name
            );
            COUNTERS.killed.fetch_add(1, Ordering::Relaxed);
            process::exit(system, child, kipc_abi::EXIT_KILLED);
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

fn resource_usage(system: &mut System, caller: ProcessId, address: u64, length: u64) -> Flow {
    let usage = resource_usage_now(system);
    result(copy_record_out(space_of(system, caller), address, length, &usage).map(|()| 0))
}

fn kernel_stats(system: &mut System, caller: ProcessId, address: u64, length: u64) -> Flow {
    let frames = crate::memory::frame_stats();
    let stats = kipc_abi::KernelStats {
        syscalls: COUNTERS.syscalls.load(Ordering::Relaxed),
        context_switches: COUNTERS.context_switches.load(Ordering::Relaxed),
        ticks: crate::timer::ticks(),
        free_frames: frames.free,
        processes: system.processes.live() as u64,
        processes_killed: COUNTERS.killed.load(Ordering::Relaxed),
    };
    result(copy_record_out(space_of(system, caller), address, length, &stats).map(|()| 0))
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

/// Resumes a process parked in kipc: `Retry` re-runs its system call,
/// `Completed` and `Failed` deliver a result.
#[inline(always)]
pub fn complete_wakeup(space: &AddressSpace, frame: &mut TrapFrame, wakeup: &Wakeup) {
    match wakeup {
        // Back over the 2-byte `syscall`: number and arguments are still in
        // the saved registers, so the call simply runs again.
        Wakeup::Retry => frame.rip -= 2,
        Wakeup::Failed(failure) => {
            frame.rax = kipc_abi::encode(Err(ErrorCode::from(*failure) as u32));
        }
        Wakeup::Completed(completion) => {
            crate::ipc_calls::deliver_completion(space, frame, completion)
        }
    }
}
