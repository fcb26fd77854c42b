//! The kipc demo microkernel.
//!
//! Boot path: QEMU's PVH entry (`boot.rs`, 32-bit) -> long mode -> [`kernel_entry`]
//! here, which sets up the console, segments, interrupts, memory and timer,
//! then runs the scenario named on the kernel command line (`scenario=NAME`,
//! default `demo`). Every scenario ends in [`pass`] or [`fail`], which print
//! the verdict line the runner looks for and exit QEMU with a matching code.

#![no_std]
#![no_main]
#![forbid(unsafe_op_in_unsafe_fn)]

mod address_space;
mod boot;
mod cpu_features;
mod elf;
mod exit;
mod file_calls;
mod fs;
mod gdt;
mod host;
mod initrd;
mod interrupts;
mod ipc_calls;
mod memory;
mod process;
mod programs;
mod pvh;
mod scenarios;
mod serial;
mod syscall;
mod timer;

use core::fmt;
use core::panic::PanicInfo;
use spin::Once;

/// The line prefix the runner parses for the verdict.
pub const RESULT_PREFIX: &str = "KIPC-RESULT:";

static SCENARIO: Once<heapless::String<64>> = Once::new();

fn scenario_name() -> &'static str {
    SCENARIO.get().map_or("boot", |name| name.as_str())
}

/// Reports success of the running scenario and exits QEMU (exit status 33).
pub fn pass() -> ! {
    println!("{RESULT_PREFIX} PASS {}", scenario_name());
    exit::exit_qemu(exit::ExitCode::Success)
}

/// Reports failure of the running scenario and exits QEMU (exit status 35).
pub fn fail(reason: fmt::Arguments) -> ! {
    serial::emergency_write_fmt(format_args!(
        "{RESULT_PREFIX} FAIL {}: {}\n",
        scenario_name(),
        reason
    ));
    exit::exit_qemu(exit::ExitCode::Failure)
}

/// Checks a condition inside a scenario; on failure reports the scenario failed.
#[macro_export]
macro_rules! check {
    ($condition:expr, $($reason:tt)+) => {
        if !$condition {
            $crate::fail(format_args!($($reason)+));
        }
    };
}

/// Everything boot learned, for the scenarios.
pub struct Kernel {
    /// Parsed PVH start info.
    pub boot: pvh::BootInfo,
    /// Frame counts right after the allocator was built.
    pub frames_at_boot: memory::FrameStats,
}

/// Rust entry point, called by the boot trampoline on the boot stack with the
/// physical address of `hvm_start_info`.
#[unsafe(no_mangle)]
extern "C" fn kernel_entry(start_info: u32) -> ! {
    serial::init();
    gdt::init();
    interrupts::init();
    let boot = match pvh::parse(u64::from(start_info)) {
        Ok(boot) => boot,
        Err(error) => fail(format_args!("unusable PVH start info: {error}")),
    };
    let mut scenario_argument = heapless::String::<64>::new();
    for character in boot.argument("scenario").unwrap_or("demo").chars().take(64) {
        let _ = scenario_argument.push(character);
    }
    let scenario = scenarios::find(&scenario_argument);
    SCENARIO.call_once(|| scenario_argument.clone());
    memory::drop_identity_map();
    memory::init(&boot);
    address_space::init();
    if let Some(module) = boot.modules.first() {
        programs::init(initrd::module_bytes(module));
    }
    syscall::init();
    cpu_features::enable();
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
            process::run_root(&scenario_argument, &command_line)
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
            process::run_root("init", &scenario_argument)
        }
    }
}

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    x86_64::instructions::interrupts::disable();
    serial::emergency_write_fmt(format_args!("\n!!! KERNEL PANIC: {info}\n"));
    fail(format_args!("kernel panic: {}", info.message()))
}
