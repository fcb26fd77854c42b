//! Leaving QEMU with a verdict, through the `isa-debug-exit` device.
//!
//! Writing `v` to port 0xf4 makes QEMU exit with status `(v << 1) | 1`, so the
//! runner sees 33 for [`ExitCode::Success`] and 35 for [`ExitCode::Failure`].
//! A triple fault under `-no-reboot` exits with 0, which the runner therefore
//! never counts as success.

use x86_64::instructions::port::Port;

/// Verdicts the kernel hands to the runner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum ExitCode {
    /// Everything the scenario checked held (QEMU exits with 33).
    Success = 0x10,
    /// The kernel found a failure, a fault or a panic (QEMU exits with 35).
    Failure = 0x11,
}

/// Exits QEMU with `code`. Never returns.
pub fn exit_qemu(code: ExitCode) -> ! {
    // SAFETY: port 0xf4 is the isa-debug-exit device the runner always adds;
    // writing it ends the virtual machine and touches no memory.
    unsafe { Port::<u32>::new(0xf4).write(code as u32) };
    // Without the device (a user booting the kernel by hand) stop here.
    loop {
        x86_64::instructions::interrupts::disable();
        x86_64::instructions::hlt();
    }
}
