//! The CPU: optional protections, enabled where the CPU has them, and the
//! kernel stack ring-0 entries switch to.
//!
//! SMEP stops the kernel from executing user pages; SMAP stops it from reading
//! or writing them. The kernel reaches user memory only through the direct
//! map after a page-table walk, so both can be on. QEMU's default CPU lacks
//! them; the runner uses `-cpu max`, which has them.

use core::arch::x86_64::__cpuid_count;
use core::sync::atomic::{AtomicBool, Ordering};
use x86_64::registers::control::{Cr4, Cr4Flags};

static SMEP: AtomicBool = AtomicBool::new(false);
static SMAP: AtomicBool = AtomicBool::new(false);

/// Turns on SMEP and SMAP if CPUID reports them.
pub fn enable_protections() {
    let features = __cpuid_count(7, 0).ebx;
    let smep = features & (1 << 7) != 0;
    let smap = features & (1 << 20) != 0;
    // SAFETY: setting CR4.SMEP/SMAP only restricts what ring 0 may do with
    // user pages, which this kernel never touches directly.
    unsafe {
        Cr4::update(|flags| {
            flags.set(Cr4Flags::SUPERVISOR_MODE_EXECUTION_PROTECTION, smep);
            flags.set(Cr4Flags::SUPERVISOR_MODE_ACCESS_PREVENTION, smap);
        });
    }
    SMEP.store(smep, Ordering::Relaxed);
    SMAP.store(smap, Ordering::Relaxed);
}

/// (SMEP, SMAP) as enabled.
pub fn protections() -> (bool, bool) {
    (SMEP.load(Ordering::Relaxed), SMAP.load(Ordering::Relaxed))
}

/// Sets the kernel stack for the next entry from ring 3: RSP0 in the TSS (for
/// interrupts and exceptions) and the `syscall` entry stub's stack.
pub fn set_kernel_stack(top: u64) {
    crate::gdt::set_kernel_stack(x86_64::VirtAddr::new(top));
    crate::syscall::set_kernel_stack(top);
}
