//! The kipc demo microkernel.
//!
//! Boot path: QEMU's PVH entry (`kipc_arch::boot`, 32-bit) -> long mode ->
//! [`main`] here, which sets up the console, segments, interrupts, memory and
//! timer, installs the hooks by which the lower layers call up, then runs the
//! scenario named on the kernel command line (`scenario=NAME`, default
//! `demo`). Every scenario ends in `kipc_arch::verdict::pass` or `fail`, which
//! print the verdict line the runner looks for and exit QEMU with a matching
//! code.
//!
//! The kernel is built in one-way layers (see `docs/architecture.md`); this
//! file is the only one that names them all:
//!
//! ```text
//! main.rs      wiring: boot order, hooks, panic handler
//! scenarios    kernel self-tests, the scenario table, the verdict on the root process
//! syscalls     dispatcher, process / IPC / file calls
//! services     the RAM file system
//! processes    process table, scheduler, program loading, kipc host glue
//! memory       frames, address spaces
//! kipc_arch    (crate) boot, serial, GDT/TSS, IDT, syscall entry, timer, exit
//! ```

#![no_std]
#![no_main]
#![forbid(unsafe_op_in_unsafe_fn)]

mod memory;
mod processes;
mod scenarios;
mod services;
mod syscalls;

use core::panic::PanicInfo;

use kipc_arch::interrupts::{self, Handlers};
use kipc_arch::verdict::fail;
use kipc_arch::{boot, cpu, gdt, println, pvh, serial, timer, verdict};

use processes::lifecycle::{self, ExitHooks};
use processes::programs;
use scenarios::Kernel;

kipc_arch::entry_point!(main);

/// Rust entry point, called by the boot trampoline on the boot stack with the
/// physical address of `hvm_start_info`.
fn main(start_info: u64) -> ! {
    serial::init();
    gdt::init();
    interrupts::init();
    let boot = match pvh::parse(start_info) {
        Ok(boot) => boot,
        Err(error) => fail(format_args!("unusable PVH start info: {error}")),
    };
    let mut scenario_argument = heapless::String::<64>::new();
    for character in boot.argument("scenario").unwrap_or("demo").chars().take(64) {
        let _ = scenario_argument.push(character);
    }
    let scenario = scenarios::find(&scenario_argument);
    verdict::set_scenario(&scenario_argument);
    boot::drop_identity_map();
    memory::init(&boot);
    memory::address_space::init();
    if let Some(module) = boot.modules.first() {
        programs::init(processes::initrd::module_bytes(module));
    }
    // The hooks by which lower layers call up (see docs/architecture.md).
    interrupts::set_handlers(Handlers {
        system_call: syscalls::entry::dispatch,
        timer: processes::signals::on_tick,
        user_exception: processes::signals::after_fault,
    });
    lifecycle::set_exit_hooks(ExitHooks {
        release: services::release_process,
        root_exited: scenarios::root_exited,
    });
    kipc_arch::syscall::init();
    cpu::enable_protections();
    let frames_at_boot = memory::frame_stats();
    timer::init();
    x86_64::instructions::interrupts::enable();

    println!();
    println!(
        "kipc {} - IPC microkernel demo ({} build)",
        env!("CARGO_PKG_VERSION"),
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    println!(
        "  memory {} MiB usable, {} free frames; kernel image ends at {:#x}; command line \"{}\"",
        boot.usable_bytes() >> 20,
        frames_at_boot.free,
        memory::kernel_physical_end(),
        boot.cmdline
    );
    println!(
        "KIPC-FOOTPRINT kernel={} minimal={}",
        kipc::footprint::<processes::table::KernelIpc>(),
        kipc::footprint::<kipc::MinimalIpc>()
    );
    let kernel = Kernel {
        boot,
        frames_at_boot,
    };
    match scenario {
        Some(scenario) => {
            println!("  scenario {}: {}", scenario.name, scenario.about);
            (scenario.run)(&kernel)
        }
        None if programs::find(&scenario_argument).is_some() => {
            println!(
                "  scenario {scenario_argument}: the user program of that name runs as the first process"
            );
            // It gets the kernel command line as its argument (seeds, sizes).
            let command_line = kernel.boot.cmdline.clone();
            lifecycle::run_root(&scenario_argument, &command_line)
        }
        None => {
            println!(
                "  scenario {scenario_argument}: not a kernel scenario; init runs its test of that name"
            );
            println!("  (kernel scenarios:");
            for scenario in scenarios::ALL {
                println!("    {:<16} {}", scenario.name, scenario.about);
            }
            println!("  )");
            lifecycle::run_root("init", &scenario_argument)
        }
    }
}

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    verdict::panic(info)
}
