//! A second, independent kernel that embeds kipc the way a hobby-OS author would.
//!
//! It shares only the machine layer (`kipc-arch`: boot, console, interrupts, the
//! system-call entry) with the demo kernel. Everything else is its own and small:
//! memory through the `x86_64` crate's page tables and frame-allocator traits
//! ([`memory`]), programs from the boot archive loaded with `xmas-elf` ([`loader`]), a
//! process table and a run queue (this file), and all of its kipc glue in one file
//! ([`glue`]) that `tests/minimal_kernel.rs` keeps under 200 lines.
//!
//! At boot it starts two user programs, `mini-client` and `mini-server`, and hands them
//! the ends of a pipe, the two sides of a mailbox and a shared region. They talk through
//! all three; when both have exited, the kernel prints kipc's copy ledger, checks that
//! nothing leaked, and reports the verdict.

#![no_std]
#![no_main]
#![forbid(unsafe_op_in_unsafe_fn)]

mod glue;
mod loader;
mod memory;

use kipc::{Mechanism, ProcessId, Rights};
use kipc_arch::interrupts::{Handlers, TrapFrame, UserException};
use kipc_arch::verdict::fail;
use kipc_arch::{check, println};
use spin::Mutex;
use x86_64::registers::control::{Cr3, Cr3Flags};
use x86_64::structures::paging::{OffsetPageTable, PhysFrame};

use glue::{MinimalIpc, Next};
use memory::Frames;

kipc_arch::entry_point!(main);

/// Process slots (the same count as the kipc configuration's).
const MAX: usize = 4;
const STACK: usize = 32 * 1024;

#[repr(C, align(16))]
struct KernelStack([u8; STACK]);
static mut STACKS: [KernelStack; MAX] = [const { KernelStack([0; STACK]) }; MAX];

fn stack_top(slot: usize) -> u64 {
    // SAFETY: only the address is taken; the CPU uses the stack through RSP.
    (unsafe { core::ptr::addr_of_mut!(STACKS[slot]) }) as u64 + STACK as u64
}

/// Whether a process may run.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum State {
    /// In the run queue or running.
    Ready,
    /// Parked in a kipc call.
    Blocked,
}

/// A process: kipc identity, address space, saved registers.
pub struct Process {
    /// Its kipc id; its slot here is `id.slot()`.
    pub id: ProcessId,
    /// Program name.
    pub name: &'static str,
    /// The PML4 frame (for CR3 and teardown).
    pub pml4: PhysFrame,
    /// Its page table, as the `x86_64` crate sees it.
    pub table: OffsetPageTable<'static>,
    /// Saved user registers, at the top of its kernel stack.
    pub frame: *mut TrapFrame,
    /// Ready or blocked.
    pub state: State,
}

/// The machine kipc sees as its host: processes, frames, the run queue.
pub struct Machine {
    /// Processes by slot.
    pub processes: [Option<Process>; MAX],
    /// Physical memory.
    pub frames: Frames,
    /// Slots ready to run, in order.
    pub ready: heapless::Deque<usize, 8>,
}

struct Kernel {
    ipc: MinimalIpc,
    machine: Machine,
    /// The slot on the CPU.
    current: usize,
    /// Exit codes by slot.
    exits: [Option<u32>; MAX],
    frames_at_start: u64,
    /// The boot page table: runs the kernel while no process does.
    boot_pml4: Option<PhysFrame>,
}

impl Kernel {
    /// Empty, and `const`: the kernel state is built in place in its static, never on
    /// the boot stack (kipc's tables alone are larger than a small stack).
    const fn new() -> Kernel {
        Kernel {
            ipc: MinimalIpc::new(),
            machine: Machine {
                processes: [const { None }; MAX],
                frames: Frames::new(),
                ready: heapless::Deque::new(),
            },
            current: 0,
            exits: [None; MAX],
            frames_at_start: 0,
            boot_pml4: None,
        }
    }
}

// SAFETY: the frame pointers point into this kernel's own stacks; everything is touched
// only under the lock, with interrupts off, on one CPU.
unsafe impl Send for Kernel {}

static KERNEL: Mutex<Kernel> = Mutex::new(Kernel::new());

fn main(start_info: u64) -> ! {
    kipc_arch::serial::init();
    kipc_arch::gdt::init();
    kipc_arch::interrupts::init();
    let boot = kipc_arch::pvh::parse(start_info)
        .unwrap_or_else(|error| fail(format_args!("unusable PVH start info: {error}")));
    kipc_arch::verdict::set_scenario(boot.argument("scenario").unwrap_or("talk"));
    kipc_arch::boot::drop_identity_map();
    let mut guard = KERNEL.lock();
    let kernel = &mut *guard;
    kernel.machine.frames.init(&boot);
    kernel.boot_pml4 = Some(Cr3::read().0);
    kipc_arch::interrupts::set_handlers(Handlers {
        system_call,
        timer: |frame| frame,
        user_exception,
    });
    kipc_arch::syscall::init();
    kipc_arch::cpu::enable_protections();
    kipc_arch::timer::init();
    println!(
        "\nkipc minimal kernel: kipc embedded through the x86_64 adapter; {} free frames; its kipc::MinimalIpc takes {} bytes",
        kernel.machine.frames.free(),
        kipc::footprint::<MinimalIpc>()
    );
    let Some(module) = boot.modules.first() else {
        fail(format_args!(
            "no boot archive (run it with `cargo run -- --kernel minimal`)"
        ))
    };
    // SAFETY: QEMU loaded the archive into RAM below 4 GiB; the frame allocator starts
    // above it, so the bytes stay as loaded.
    let archive = unsafe {
        core::slice::from_raw_parts(
            kipc_arch::boot::phys_to_virt(module.start) as *const u8,
            module.size as usize,
        )
    };
    kernel.frames_at_start = kernel.machine.frames.free();
    let client = start(kernel, archive, "mini-client");
    let server = start(kernel, archive, "mini-server");
    let handles = share(kernel, client, server)
        .unwrap_or_else(|error| fail(format_args!("cannot create the shared objects: {error}")));
    pass_handles(kernel, client, &handles.0);
    pass_handles(kernel, server, &handles.1);
    let first = kernel
        .machine
        .ready
        .pop_front()
        .expect("two processes are ready");
    let frame = switch_to(kernel, first);
    drop(guard);
    // SAFETY: a complete frame at the top of the process's kernel stack, with its CR3
    // and kernel stack loaded by `switch_to`.
    unsafe { kipc_arch::interrupts::resume(frame) }
}

/// Creates the process `name` and queues it; its handles follow with `pass_handles`.
fn start(kernel: &mut Kernel, archive: &[u8], name: &'static str) -> ProcessId {
    let file = loader::find(archive, name)
        .unwrap_or_else(|| fail(format_args!("{name} is not in the boot archive")));
    let id = kernel
        .ipc
        .process_create()
        .unwrap_or_else(|error| fail(format_args!("{error}")));
    let machine = &mut kernel.machine;
    let (pml4, mut table) = memory::new_space(&mut machine.frames)
        .unwrap_or_else(|| fail(format_args!("out of memory")));
    let entry = loader::load(file, &mut table, &mut machine.frames)
        .unwrap_or_else(|error| fail(format_args!("cannot load {name}: {error}")));
    let frame = (stack_top(id.slot()) - size_of::<TrapFrame>() as u64) as *mut TrapFrame;
    let selectors = kipc_arch::gdt::selectors();
    // SAFETY: the slot's kernel stack is unused; the frame fits at its top.
    unsafe {
        frame.write(TrapFrame {
            rip: entry,
            cs: u64::from(selectors.user_code.0),
            ss: u64::from(selectors.user_data.0),
            rflags: 0x202,
            rsp: loader::STACK_TOP - 64,
            ..TrapFrame::default()
        })
    };
    machine.processes[id.slot()] = Some(Process {
        id,
        name,
        pml4,
        table,
        frame,
        state: State::Ready,
    });
    let _ = machine.ready.push_back(id.slot());
    id
}

/// The objects the two programs share, created by the kernel on the client's behalf:
/// (client's handles, server's handles) in the order the programs document.
fn share(
    kernel: &mut Kernel,
    client: ProcessId,
    server: ProcessId,
) -> Result<([u32; 3], [u32; 3]), kipc::Error> {
    let ipc = &mut kernel.ipc;
    let host = &mut kipc::x86_64_adapter::X86_64Host(&mut kernel.machine);
    let (read, write) = ipc.pipe_create(client)?;
    let server_read = ipc.handle_grant(client, read, server, Rights::READ)?;
    ipc.handle_close(client, read, host)?;
    let mailbox = ipc.mailbox_create(client)?;
    let server_mailbox = ipc.handle_grant(client, mailbox, server, Rights::READ)?;
    let region = ipc.region_create(client, 1, host)?;
    let server_region = ipc.handle_grant(client, region, server, Rights::MAP)?;
    let raw = |handle: kipc::Handle| handle.into_raw();
    Ok((
        [raw(write), raw(mailbox), raw(region)],
        [raw(server_read), raw(server_mailbox), raw(server_region)],
    ))
}

/// Writes `handles` at the top of the process's stack and points `_start` at them
/// (rdi, rsi: an empty argument; rdx, rcx: the handle array).
fn pass_handles(kernel: &mut Kernel, id: ProcessId, handles: &[u32; 3]) {
    let array = loader::STACK_TOP - 16;
    let mut bytes = [0u8; 12];
    for (chunk, handle) in bytes.chunks_exact_mut(4).zip(handles) {
        chunk.copy_from_slice(&handle.to_le_bytes());
    }
    let mut host = kipc::x86_64_adapter::X86_64Host(&mut kernel.machine);
    let at = kipc::UserSlice::new(array, 12, kipc::UserLimit::X86_64_LOWER_HALF)
        .expect("in the user half");
    check!(
        kipc::UserMemory::copy_to_user(&mut host, id, at, &bytes).is_ok(),
        "stack not mapped"
    );
    let process = kernel.machine.processes[id.slot()]
        .as_mut()
        .expect("started");
    // SAFETY: the frame `start` wrote; the process has not run yet.
    let frame = unsafe { &mut *process.frame };
    (frame.rdi, frame.rsi, frame.rdx, frame.rcx) = (array, 0, array, 3);
}

/// Puts process `slot` on the CPU: its page table, its kernel stack. Returns its frame.
fn switch_to(kernel: &mut Kernel, slot: usize) -> *mut TrapFrame {
    let process = kernel.machine.processes[slot]
        .as_ref()
        .expect("a queued process exists");
    // SAFETY: the PML4 maps the shared kernel half exactly as the boot tables do.
    unsafe { Cr3::write(process.pml4, Cr3Flags::empty()) };
    kipc_arch::cpu::set_kernel_stack(stack_top(slot));
    kernel.current = slot;
    process.frame
}

fn system_call(frame: *mut TrapFrame) -> *mut TrapFrame {
    let mut guard = KERNEL.lock();
    let kernel = &mut *guard;
    let slot = kernel.current;
    let Some(process) = kernel.machine.processes[slot].as_mut() else {
        fail(format_args!("system call from an empty slot"))
    };
    process.frame = frame;
    let caller = process.id;
    // SAFETY: the frame the entry stub just pushed on this process's kernel stack.
    let registers = unsafe { &mut *frame };
    match glue::system_call(&mut kernel.ipc, &mut kernel.machine, caller, registers) {
        Next::Resume => frame,
        Next::Park => {
            if let Some(process) = kernel.machine.processes[slot].as_mut() {
                process.state = State::Blocked;
            }
            schedule(kernel)
        }
        Next::Exit(code) => {
            end(kernel, slot, code);
            schedule(kernel)
        }
    }
}

fn user_exception(frame: *mut TrapFrame, exception: UserException) -> *mut TrapFrame {
    let mut guard = KERNEL.lock();
    let kernel = &mut *guard;
    let slot = kernel.current;
    let name = kernel.machine.processes[slot]
        .as_ref()
        .map_or("?", |p| p.name);
    // SAFETY: the frame the exception stub just pushed.
    let rip = unsafe { (*frame).rip };
    println!(
        "kernel: {name} killed: {} at {:#x?} (rip {rip:#x})",
        exception.name, exception.address
    );
    end(kernel, slot, kipc_abi::EXIT_KILLED);
    schedule(kernel)
}

/// Ends process `slot`: kipc releases its handles and mappings, then its memory goes.
fn end(kernel: &mut Kernel, slot: usize, code: u32) {
    let Some(id) = kernel.machine.processes[slot].as_ref().map(|p| p.id) else {
        return;
    };
    let mut host = kipc::x86_64_adapter::X86_64Host(&mut kernel.machine);
    if let Err(error) = kernel.ipc.process_exit(id, &mut host) {
        fail(format_args!("kipc refused to end {id:?}: {error}"));
    }
    let process = kernel.machine.processes[slot]
        .take()
        .expect("checked above");
    // Leave the dying page table before its frames go back.
    // SAFETY: the boot PML4 maps the kernel half, like every process's.
    if let Some(boot) = kernel.boot_pml4 {
        unsafe { Cr3::write(boot, Cr3Flags::empty()) };
    }
    memory::free_space(process.pml4, &mut kernel.machine.frames);
    println!("kernel: {} exited with code {code}", process.name);
    kernel.exits[slot] = Some(code);
}

/// The next ready process, or the verdict when none is left.
fn schedule(kernel: &mut Kernel) -> *mut TrapFrame {
    while let Some(slot) = kernel.machine.ready.pop_front() {
        if kernel.machine.processes[slot]
            .as_ref()
            .is_some_and(|p| p.state == State::Ready)
        {
            return switch_to(kernel, slot);
        }
    }
    if let Some(stuck) = kernel.machine.processes.iter().flatten().next() {
        fail(format_args!(
            "deadlock: {} is blocked and nothing can wake it",
            stuck.name
        ));
    }
    finish(kernel)
}

/// Both programs are gone: print the ledger, check for leaks, report.
fn finish(kernel: &mut Kernel) -> ! {
    let ledger = kernel.ipc.ledger_snapshot();
    println!(
        "kernel: kipc's copy ledger (bytes copied user->kernel / kernel->user / user->user; pages mapped):"
    );
    for (mechanism, name) in [
        (Mechanism::Pipe, "pipe"),
        (Mechanism::Mailbox, "mailbox"),
        (Mechanism::SharedRegion, "shared region"),
    ] {
        let counters = ledger.global();
        let bytes = |direction| counters.copies(mechanism, direction).bytes;
        println!(
            "  {name:<14} {:>5} / {:>5} / {:>5}; {} pages",
            bytes(kipc::Direction::UserToKernel),
            bytes(kipc::Direction::KernelToUser),
            bytes(kipc::Direction::UserToUser),
            counters.pages_mapped(mechanism)
        );
    }
    let counters = ledger.global();
    check!(
        kernel.exits.iter().flatten().all(|&code| code == 0),
        "exit codes {:?}",
        kernel.exits
    );
    let pipe = counters
        .copies(Mechanism::Pipe, kipc::Direction::UserToKernel)
        .bytes;
    check!(
        pipe > 0
            && pipe
                == counters
                    .copies(Mechanism::Pipe, kipc::Direction::KernelToUser)
                    .bytes,
        "pipe bytes in {pipe} != out"
    );
    check!(
        counters.pages_mapped(Mechanism::SharedRegion) == 2,
        "the region was not mapped in both processes"
    );
    check!(
        kernel.ipc.usage() == kipc::Usage::default(),
        "kipc objects leaked: {:?}",
        kernel.ipc.usage()
    );
    let free = kernel.machine.frames.free();
    check!(
        free == kernel.frames_at_start,
        "frames leaked: {} free at start, {free} now",
        kernel.frames_at_start
    );
    println!(
        "kernel: both programs exited 0; no kipc object and no frame leaked ({free} frames free)"
    );
    kipc_arch::verdict::pass()
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    kipc_arch::verdict::panic(info)
}
