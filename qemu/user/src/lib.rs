//! User-space runtime for kipc programs: the raw `syscall` instruction, the
//! program entry point and the panic handler.
//!
//! System-call convention (the same as the x86_64 Linux one, so tools read it
//! naturally): number in `rax`, arguments in `rdi rsi rdx r10 r8 r9`, result in
//! `rax`; `rcx` and `r11` are clobbered by the instruction itself.

#![no_std]

use core::arch::asm;

/// Issues system call `number` with up to six arguments.
///
/// # Safety
/// The arguments must satisfy the kernel's contract for `number`: pointers
/// the kernel writes through must point at memory the program does not
/// otherwise rely on while the call runs.
#[inline(always)]
pub unsafe fn syscall6(number: u64, arguments: [u64; 6]) -> u64 {
    let result: u64;
    // SAFETY: the `syscall` instruction transfers to the kernel, which
    // preserves every register except rax (result), rcx and r11 (clobbered by
    // the instruction), as declared here.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") number => result,
            in("rdi") arguments[0],
            in("rsi") arguments[1],
            in("rdx") arguments[2],
            in("r10") arguments[3],
            in("r8") arguments[4],
            in("r9") arguments[5],
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    result
}

/// Defines the program's `_start`, which calls `main` and then exits with its
/// return value.
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        #[unsafe(no_mangle)]
        #[unsafe(link_section = ".text._start")]
        extern "C" fn _start() -> ! {
            let code: u64 = $main();
            $crate::exit(code)
        }
    };
}

/// System-call number of `exit`.
pub const SYS_EXIT: u64 = 0;

/// Ends the calling process with `code`.
pub fn exit(code: u64) -> ! {
    // SAFETY: `exit` takes no pointers.
    unsafe { syscall6(SYS_EXIT, [code, 0, 0, 0, 0, 0]) };
    loop {
        core::hint::spin_loop();
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    exit(u64::MAX)
}
