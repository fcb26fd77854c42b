//! Boot scenarios: what the kernel does after boot, picked on the command line
//! with `scenario=NAME`.
//!
//! Layer 5, the top: each scenario ends in [`pass`] or [`fail`]. The `fault-*`
//! scenarios go wrong on purpose; the test suite checks that the runner
//! reports them as failures with the right message.
//!
//! Any other scenario name runs user space: the program of that name if the
//! boot archive has one, otherwise `init` with the name as its argument.
//! Either way the first process is the scenario's root: when it exits,
//! [`root_exited`] judges the scenario (exit code 0, no process left, no
//! kipc object, frame or mapping leaked).
//!
//! To add a kernel scenario: write a `fn(&Kernel) -> !` below, add it to
//! [`ALL`], and add a test in `tests/boot.rs` that boots it.

use x86_64::VirtAddr;
use x86_64::structures::paging::{Mapper, Page, PageTableFlags, Size4KiB};

use kipc_arch::verdict::{fail, pass};
use kipc_arch::{check, interrupts, println, pvh, timer};

use crate::memory::{self, FRAME_SIZE, phys_to_virt};
use crate::processes::initrd;
use crate::processes::lifecycle::{self, FRAMES_BEFORE_ROOT, SystemView};
use crate::processes::table::COUNTERS;
use crate::services::fs::FILES;

/// Everything boot learned, for the scenarios.
pub struct Kernel {
    /// Parsed PVH start info.
    pub boot: pvh::BootInfo,
    /// Frame counts right after the allocator was built.
    pub frames_at_boot: memory::FrameStats,
}

/// A named boot scenario.
pub struct Scenario {
    /// Name given on the command line.
    pub name: &'static str,
    /// One line on what it shows.
    pub about: &'static str,
    /// The code to run.
    pub run: fn(&Kernel) -> !,
}

/// Every scenario the kernel knows.
pub static ALL: &[Scenario] = &[
    Scenario {
        name: "demo",
        about: "kernel self-checks, then a tour of every mechanism and the file-transfer experiment",
        run: demo,
    },
    Scenario {
        name: "boot",
        about: "boot to the banner and stop",
        run: boot_only,
    },
    Scenario {
        name: "timer",
        about: "timer interrupts arrive and the tick counter advances",
        run: timer_ticks,
    },
    Scenario {
        name: "memory",
        about: "frames allocate zeroed and distinct, free again, and map at a new page",
        run: memory_check,
    },
    Scenario {
        name: "modules",
        about: "the boot archive of user programs arrives intact",
        run: modules,
    },
    Scenario {
        name: "fault-page",
        about: "MUST FAIL: the kernel reads an unmapped address",
        run: fault_page,
    },
    Scenario {
        name: "fault-panic",
        about: "MUST FAIL: the kernel panics",
        run: fault_panic,
    },
    Scenario {
        name: "fault-double",
        about: "MUST FAIL: a page fault with no handler escalates to a double fault",
        run: fault_double,
    },
    Scenario {
        name: "fault-triple",
        about: "MUST FAIL: a triple fault resets the machine (QEMU exits 0)",
        run: fault_triple,
    },
    Scenario {
        name: "fault-hang",
        about: "MUST FAIL: the kernel hangs with interrupts off (runner timeout)",
        run: fault_hang,
    },
    Scenario {
        name: "fault-no-verdict",
        about: "MUST FAIL: QEMU exits with the success code but no PASS line",
        run: fault_no_verdict,
    },
];

/// Called when the scenario's root process exits: judges the scenario.
pub fn root_exited(view: SystemView, name: &str, code: u32) -> ! {
    println!("kernel: {name} exited with code {code}");
    check!(code == 0, "{name} exited with code {code}");
    let live = view.processes.live();
    check!(
        live == 0,
        "{live} processes still running after {name} exited"
    );
    let zombies = view.processes.zombies.len();
    check!(
        zombies == 0,
        "{zombies} exit codes still held after {name} exited"
    );
    let usage = view.ipc.usage();
    check!(
        usage == kipc::Usage::default(),
        "kipc objects leaked: {usage:?}"
    );
    let before = FRAMES_BEFORE_ROOT.load(core::sync::atomic::Ordering::Relaxed);
    let after = memory::frame_stats().free;
    check!(
        after == before,
        "frames leaked: {before} free before the scenario, {after} after (files still hold {})",
        FILES.lock().frames_held()
    );
    let counters = &COUNTERS;
    let (smep, smap) = kipc_arch::cpu::protections();
    println!(
        "kernel: no leaks ({after} frames free, no kipc objects); {} system calls, {} context switches, {} processes killed; SMEP {}, SMAP {}",
        counters
            .syscalls
            .load(core::sync::atomic::Ordering::Relaxed),
        counters
            .context_switches
            .load(core::sync::atomic::Ordering::Relaxed),
        counters.killed.load(core::sync::atomic::Ordering::Relaxed),
        if smep { "on" } else { "off" },
        if smap { "on" } else { "off" },
    );
    pass()
}

/// Looks a scenario up by name.
pub fn find(name: &str) -> Option<&'static Scenario> {
    ALL.iter().find(|scenario| scenario.name == name)
}

fn demo(kernel: &Kernel) -> ! {
    check_timer();
    check_memory(kernel);
    check_modules(kernel);
    // init starts the demo program, passing it the kernel command line.
    let mut argument = heapless::String::<600>::new();
    let _ = argument.push_str("demo ");
    let _ = argument.push_str(&kernel.boot.cmdline);
    lifecycle::run_root("init", &argument)
}

fn boot_only(_: &Kernel) -> ! {
    pass()
}

fn timer_ticks(_: &Kernel) -> ! {
    check_timer();
    pass()
}

fn memory_check(kernel: &Kernel) -> ! {
    check_memory(kernel);
    pass()
}

fn modules(kernel: &Kernel) -> ! {
    check_modules(kernel);
    pass()
}

/// Waits (halting, not spinning) for ten timer ticks.
fn check_timer() {
    let start = timer::ticks();
    while timer::ticks() < start + 10 {
        x86_64::instructions::hlt();
    }
    println!(
        "  timer: {} ticks at {} Hz since boot ({} ms)",
        timer::ticks(),
        timer::TICK_HZ,
        timer::uptime_ms()
    );
}

fn check_memory(kernel: &Kernel) {
    const BATCH: usize = 256;
    let before = memory::frame_stats();
    check!(
        before == kernel.frames_at_boot,
        "frames leaked during boot: {before:?} vs {:?}",
        kernel.frames_at_boot
    );
    let mut frames = [0u64; BATCH];
    for (index, slot) in frames.iter_mut().enumerate() {
        let Some(frame) = memory::allocate_frame() else {
            fail(format_args!("out of frames after {index}"));
        };
        let bytes = phys_to_virt(frame.as_u64()) as *mut u64;
        // SAFETY: the frame was just allocated to us and is in the direct map.
        let first = unsafe { bytes.read() };
        check!(first == 0, "frame {:#x} not zeroed", frame.as_u64());
        // SAFETY: as above; the frame is ours until freed below.
        unsafe { bytes.write(frame.as_u64() ^ 0x5a5a) };
        *slot = frame.as_u64();
    }
    for (index, &frame) in frames.iter().enumerate() {
        check!(
            frame.is_multiple_of(FRAME_SIZE),
            "frame {frame:#x} not aligned"
        );
        check!(
            frame >= memory::kernel_physical_end(),
            "frame {frame:#x} inside the kernel image"
        );
        check!(
            !frames[..index].contains(&frame),
            "frame {frame:#x} handed out twice"
        );
        // SAFETY: still allocated to us.
        let tag = unsafe { (phys_to_virt(frame) as *const u64).read() };
        check!(tag == frame ^ 0x5a5a, "frame {frame:#x} lost its contents");
    }
    let during = memory::frame_stats();
    check!(
        during.free + BATCH as u64 == before.free,
        "free count wrong: {} then {}",
        before.free,
        during.free
    );

    // Map one of the frames at a fresh kernel page and see the same bytes.
    let page: Page<Size4KiB> = Page::containing_address(VirtAddr::new(0xffff_c000_0000_0000));
    let frame =
        x86_64::structures::paging::PhysFrame::containing_address(x86_64::PhysAddr::new(frames[0]));
    let flags = PageTableFlags::PRESENT | PageTableFlags::WRITABLE | PageTableFlags::NO_EXECUTE;
    x86_64::instructions::interrupts::without_interrupts(|| {
        // SAFETY: interrupts are off and no other page-table walker exists;
        // the page is unused kernel space and the frame is ours.
        let mut tables = unsafe { memory::active_page_table() };
        // SAFETY: mapping an otherwise unused page to a frame we own creates no alias
        // that Rust code relies on.
        match unsafe { tables.map_to(page, frame, flags, &mut memory::KernelFrameAllocator) } {
            Ok(flush) => flush.flush(),
            Err(error) => fail(format_args!("map_to failed: {error:?}")),
        }
    });
    let mapped = page.start_address().as_u64() as *mut u64;
    // SAFETY: the page was mapped just above.
    let seen = unsafe { mapped.read_volatile() };
    check!(seen == frames[0] ^ 0x5a5a, "mapping shows {seen:#x}");
    // SAFETY: as above.
    unsafe { mapped.write_volatile(0x1234_5678) };
    // SAFETY: the frame is still ours.
    let through_direct_map = unsafe { (phys_to_virt(frames[0]) as *const u64).read_volatile() };
    check!(
        through_direct_map == 0x1234_5678,
        "write through the mapping not seen in the frame"
    );
    x86_64::instructions::interrupts::without_interrupts(|| {
        // SAFETY: as for the map above.
        let mut tables = unsafe { memory::active_page_table() };
        match tables.unmap(page) {
            Ok((_, flush)) => flush.flush(),
            Err(error) => fail(format_args!("unmap failed: {error:?}")),
        }
    });
    let page_tables_used = before.free - memory::frame_stats().free - BATCH as u64;
    for &frame in frames.iter() {
        // SAFETY: each frame came from allocate_frame above, is no longer
        // mapped, and is freed once.
        unsafe { memory::free_frame(x86_64::PhysAddr::new(frame)) };
    }
    let after = memory::frame_stats();
    check!(
        after.free + page_tables_used == before.free,
        "frames not returned: {} free before, {} after ({} page-table frames kept)",
        before.free,
        after.free,
        page_tables_used
    );
    println!(
        "  memory: {BATCH} frames allocated zeroed and distinct, mapped, unmapped and freed; {} of {} frames free",
        after.free, after.total
    );
}

fn check_modules(kernel: &Kernel) {
    let Some(module) = kernel.boot.modules.first() else {
        fail(format_args!(
            "no boot archive: the runner passes user programs with -initrd"
        ));
    };
    let archive = initrd::module_bytes(module);
    let mut count = 0;
    for file in initrd::files(archive) {
        check!(
            file.data.starts_with(b"\x7fELF\x02\x01\x01"),
            "{} is not an ELF64 little-endian file",
            file.name
        );
        let entry = u64::from_le_bytes(file.data[24..32].try_into().unwrap_or([0; 8]));
        println!(
            "  module: {} ({} bytes, ELF64 entry {entry:#x})",
            file.name,
            file.data.len()
        );
        count += 1;
    }
    check!(count > 0, "the boot archive holds no programs");
}

fn fault_page(_: &Kernel) -> ! {
    let unmapped = 0xffff_d000_dead_0000 as *const u64;
    // SAFETY: deliberately unsound: this read faults, which is the point.
    let value = unsafe { unmapped.read_volatile() };
    fail(format_args!(
        "read of an unmapped address returned {value:#x}"
    ))
}

fn fault_panic(_: &Kernel) -> ! {
    panic!("deliberate panic from the fault-panic scenario")
}

fn fault_double(_: &Kernel) -> ! {
    interrupts::load_double_fault_only_idt();
    let unmapped = 0xffff_d000_dead_0000 as *const u64;
    // SAFETY: deliberately faulting, as in fault_page.
    let value = unsafe { unmapped.read_volatile() };
    fail(format_args!(
        "read of an unmapped address returned {value:#x}"
    ))
}

fn fault_triple(_: &Kernel) -> ! {
    x86_64::instructions::interrupts::disable();
    interrupts::load_empty_idt();
    x86_64::instructions::interrupts::int3();
    fail(format_args!("int3 with an empty IDT returned"))
}

fn fault_hang(_: &Kernel) -> ! {
    x86_64::instructions::interrupts::disable();
    loop {
        x86_64::instructions::hlt();
    }
}

fn fault_no_verdict(_: &Kernel) -> ! {
    kipc_arch::exit::exit_qemu(kipc_arch::exit::ExitCode::Success)
}
