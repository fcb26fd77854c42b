//! Process lifecycle: starting a program, ending a process (by exit, by its
//! parent, or by a fault), and starting the first process.
//!
//! Ending a process reaches two things above this layer, through the
//! [`ExitHooks`] the kernel installs at boot: services release what they keep
//! for the process (its open files), and when the scenario's root process
//! ends, the scenario layer judges the run.

use core::sync::atomic::{AtomicU64, Ordering};

use kipc::ProcessId;
use kipc_arch::interrupts::{TrapFrame, UserException};
use kipc_arch::println;
use kipc_arch::verdict::fail;
use spin::Once;

use super::host::KernelHost;
use super::scheduler::{self, kernel_stack_top, save_current, schedule};
use super::table::{
    COUNTERS, KernelIpc, NAME_LENGTH, Process, Processes, SYSTEM, State, System, Zombie,
};
use super::{elf, programs};
use crate::memory::address_space::{self, AddressSpace, UserAccess};
use crate::memory::{self, FRAME_SIZE};

/// Top of every user stack (exclusive).
pub const USER_STACK_TOP: u64 = 0x0000_7fff_ffff_0000;
/// Pages of user stack (a never-mapped guard page sits below them).
pub const USER_STACK_PAGES: u64 = 16;

/// Free frames just before the root process was created.
pub static FRAMES_BEFORE_ROOT: AtomicU64 = AtomicU64::new(0);

/// What the layers above do when a process ends. Installed once at boot
/// with [`set_exit_hooks`]; both run under the kernel lock.
#[derive(Clone, Copy)]
pub struct ExitHooks {
    /// Releases what the layers above keep for the process (its open files).
    pub release: fn(ProcessId),
    /// The scenario's root process exited with this code: judge the run.
    pub root_exited: fn(SystemView, &str, u32) -> !,
}

static EXIT_HOOKS: Once<ExitHooks> = Once::new();

/// Installs the exit hooks (once; later calls are ignored).
pub fn set_exit_hooks(hooks: ExitHooks) {
    EXIT_HOOKS.call_once(|| hooks);
}

fn exit_hooks() -> ExitHooks {
    match EXIT_HOOKS.get() {
        Some(hooks) => *hooks,
        None => fail(format_args!(
            "a process ended before the exit hooks were installed"
        )),
    }
}

/// Why a program could not be started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpawnError {
    /// No program by that name in the boot archive.
    NotFound,
    /// The ELF file was refused.
    BadProgram(elf::ElfError),
    /// No process slot left.
    OutOfProcesses,
    /// No memory for its pages.
    OutOfFrames,
}

/// Starts `name` from the boot archive as a new process with argument string
/// `argument`. The caller moves handles in afterwards (through kipc) and then
/// calls [`Processes::make_ready`].
pub fn spawn(
    system: &mut System,
    name: &str,
    argument: &[u8],
    parent: Option<ProcessId>,
) -> Result<ProcessId, SpawnError> {
    let file = programs::find(name).ok_or(SpawnError::NotFound)?;
    let program = elf::parse(file).map_err(SpawnError::BadProgram)?;
    let id = system
        .ipc
        .process_create()
        .map_err(|_| SpawnError::OutOfProcesses)?;
    let slot = id.slot();
    let mut space = match AddressSpace::new() {
        Ok(space) => space,
        Err(_) => {
            discard_ipc_process(system, id);
            return Err(SpawnError::OutOfFrames);
        }
    };
    let built = programs::load(&mut space, &program)
        .and_then(|()| map_stack(&mut space))
        .map_err(|_| SpawnError::OutOfFrames)
        .and_then(|()| write_arguments(&space, argument).map_err(|_| SpawnError::OutOfFrames));
    let user_stack = match built {
        Ok(stack) => stack,
        Err(error) => {
            space.destroy();
            discard_ipc_process(system, id);
            return Err(error);
        }
    };
    let frame_address = kernel_stack_top(slot) - size_of::<TrapFrame>() as u64;
    let frame = frame_address as *mut TrapFrame;
    let selectors = kipc_arch::gdt::selectors();
    // SAFETY: the slot's kernel stack is unused (its previous owner, if any,
    // has exited), and the frame fits at its top.
    unsafe {
        frame.write(TrapFrame {
            rip: program.entry,
            cs: u64::from(selectors.user_code.0),
            rflags: 0x202,
            rsp: user_stack.stack_pointer,
            ss: u64::from(selectors.user_data.0),
            rdi: user_stack.argument,
            rsi: argument.len() as u64,
            ..TrapFrame::default()
        })
    };
    let mut process_name = heapless::String::new();
    for character in name.chars().take(NAME_LENGTH) {
        let _ = process_name.push(character);
    }
    system.processes.table[slot] = Some(Process {
        id,
        name: process_name,
        state: State::Ready,
        space,
        frame,
        parent,
        restorer: 0,
        handler_depth: 0,
    });
    Ok(id)
}

fn discard_ipc_process(system: &mut System, id: ProcessId) {
    let System { ipc, processes } = system;
    let mut host = KernelHost { processes };
    let _ = ipc.process_exit(id, &mut host);
}

fn map_stack(space: &mut AddressSpace) -> Result<(), address_space::MapError> {
    let access = UserAccess {
        writable: true,
        executable: false,
    };
    for page in 0..USER_STACK_PAGES {
        let address = USER_STACK_TOP - (page + 1) * FRAME_SIZE;
        let frame = memory::allocate_frame().ok_or(address_space::MapError::OutOfFrames)?;
        if let Err(error) = space.map(address, frame, access, true) {
            // SAFETY: the frame was never mapped; it is still only ours.
            unsafe { memory::free_frame(frame) };
            return Err(error);
        }
    }
    Ok(())
}

struct UserStack {
    stack_pointer: u64,
    argument: u64,
}

/// Copies the argument string to the top of the new stack; returns the
/// initial stack pointer (16-byte aligned, minus 8 as after a call) and the
/// argument's address.
fn write_arguments(
    space: &AddressSpace,
    argument: &[u8],
) -> Result<UserStack, address_space::Fault> {
    let argument_address = (USER_STACK_TOP - argument.len() as u64) & !15;
    space.copy_to_user(argument_address, argument)?;
    Ok(UserStack {
        stack_pointer: argument_address - 8,
        argument: argument_address,
    })
}

/// Ends process `id` with `code`: kipc closes its handles (waking peers) and
/// removes its region mappings, its address space is freed, its parent is
/// told. Returns nothing; the caller schedules.
pub fn exit(system: &mut System, id: ProcessId, code: u32) {
    let System { ipc, processes } = system;
    {
        let mut host = KernelHost { processes };
        if let Err(error) = ipc.process_exit(id, &mut host) {
            println!("kernel: kipc refused to tear down {id:?}: {error}");
        }
    }
    let Some(process) = processes.table[id.slot()].take() else {
        return;
    };
    let hooks = exit_hooks();
    (hooks.release)(id);
    if processes.current == Some(id.slot()) {
        processes.current = None;
    }
    // The dying space must not be active while its tables are freed; if
    // another process is running (a parent killing a child), it continues
    // on its own tables.
    address_space::activate_kernel();
    process.space.destroy();
    if let Some(running) = processes
        .current
        .and_then(|slot| processes.table[slot].as_ref())
    {
        running.space.activate();
    }
    // Orphans: children of the dead process lose their parent.
    for slot in processes.table.iter_mut().flatten() {
        if slot.parent == Some(id) {
            slot.parent = None;
        }
    }
    processes.zombies.retain(|zombie| zombie.parent != Some(id));
    let parent_waiting = process.parent.and_then(|parent| {
        let waiting = processes.get(parent)?.state == State::WaitingForChild(id);
        waiting.then_some(parent)
    });
    if let Some(parent) = parent_waiting {
        let parent_process = processes.get_mut(parent).expect("checked above");
        // SAFETY: the waiting parent's frame is parked at the top of its stack.
        let frame = unsafe { &mut *parent_process.frame };
        frame.rax = kipc_abi::encode(Ok(u64::from(code)));
        processes.make_ready(parent.slot());
    } else if process.parent.is_some() {
        let _ = processes.zombies.push(Zombie {
            id,
            parent: process.parent,
            code,
        });
    }
    // SIGCHLD (ignored unless the parent caught it): a parent waiting for
    // another child, or sleeping, is interrupted.
    if let Some(parent) = process.parent {
        let mut host = KernelHost { processes };
        if let Ok(kipc::Posted::Deliverable) =
            ipc.signal_post(parent, kipc::Signal::SIGCHLD, &mut host)
        {
            processes.interrupt_host_waits(ipc);
        }
    }
    if processes.root == Some(id) {
        (hooks.root_exited)(SystemView { ipc, processes }, &process.name, code);
    }
}

/// Removes a child that never ran (its spawn failed half-way): like `exit`,
/// but no exit code is kept, since its parent never learned its id.
pub fn discard(system: &mut System, id: ProcessId) {
    exit(system, id, kipc_abi::EXIT_KILLED);
    system.processes.zombies.retain(|zombie| zombie.id != id);
}

/// A read-only view for judging a scenario.
pub struct SystemView<'a> {
    /// The IPC core.
    pub ipc: &'a KernelIpc,
    /// The processes.
    pub processes: &'a Processes,
}

/// Kills process `id` for a reason it brought on itself, with one line
/// saying what happened (`kernel: process N (name) killed: reason`).
pub fn kill(system: &mut System, id: ProcessId, reason: core::fmt::Arguments, code: u32) {
    if let Some(process) = system.processes.get(id) {
        println!(
            "kernel: process {} ({}) killed: {reason}",
            id.slot(),
            process.name
        );
    }
    COUNTERS.killed.fetch_add(1, Ordering::Relaxed);
    exit(system, id, code);
}

/// Kills the running process after a fault in user mode, with one line saying
/// what happened, and schedules another.
pub fn kill_current(frame: *mut TrapFrame, exception: UserException) -> *mut TrapFrame {
    let what = exception.name;
    let address = exception.address;
    let mut guard = SYSTEM.lock();
    let system = &mut *guard;
    save_current(&mut system.processes, frame);
    let Some(process) = system.processes.current() else {
        fail(format_args!("user fault with no current process"));
    };
    let id = process.id;
    // SAFETY: the frame the exception stub just pushed.
    let rip = unsafe { (*frame).rip };
    let pages = process.space.owned_pages();
    match address {
        Some(address) => println!(
            "kernel: process {} ({}) killed: {what} at address {address:#x} (rip {rip:#x}); its {pages} pages go back",
            id.slot(),
            process.name
        ),
        None => println!(
            "kernel: process {} ({}) killed: {what} (rip {rip:#x}); its {pages} pages go back",
            id.slot(),
            process.name
        ),
    }
    COUNTERS.killed.fetch_add(1, Ordering::Relaxed);
    exit(system, id, kipc_abi::EXIT_KILLED);
    schedule(&mut system.processes, frame)
}

/// Starts the scheduler with `program` as the scenario's root process.
pub fn run_root(program: &str, argument: &str) -> ! {
    // From here on the kernel runs only in interrupt and system-call context,
    // with interrupts off; the first `iretq` turns them back on. (Taking the
    // kernel lock with interrupts on would deadlock against the timer.)
    x86_64::instructions::interrupts::disable();
    FRAMES_BEFORE_ROOT.store(memory::frame_stats().free, Ordering::Relaxed);
    let first = {
        let mut guard = SYSTEM.lock();
        let system = &mut *guard;
        let id = match spawn(system, program, argument.as_bytes(), None) {
            Ok(id) => id,
            Err(error) => fail(format_args!("cannot start {program}: {error:?}")),
        };
        system.processes.root = Some(id);
        system.processes.make_ready(id.slot());
        scheduler::start();
        schedule(&mut system.processes, core::ptr::null_mut())
    };
    // SAFETY: `first` is a complete frame at the top of a kernel stack (a
    // process's or the idle one), with the matching CR3 and RSP0 loaded.
    unsafe { kipc_arch::interrupts::resume(first) }
}
