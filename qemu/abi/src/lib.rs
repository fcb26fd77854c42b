//! The demo kernel's system-call ABI, shared by the kernel (`qemu/kernel`) and
//! user space (`qemu/user`), so both sides agree on numbers and layouts.
//!
//! Convention: `syscall` with the number in `rax` and arguments in
//! `rdi, rsi, rdx, r10, r8, r9` (the x86_64 Linux order). The result comes
//! back in `rax`: a kipc error code (0 = success, see `kipc::ErrorCode`) in the
//! low 32 bits for calls that return only a status, or for calls that return a
//! value, [`encode`] packs value and error into one register. A second result
//! (a badge, a sender) comes back in `rdx` where a call documents one.

#![no_std]

/// System-call numbers.
pub mod number {
    /// `exit(code)`: ends the caller. Never returns.
    pub const EXIT: u64 = 0;
    /// `write(ptr, len)`: writes bytes to the console. Returns bytes written.
    pub const CONSOLE_WRITE: u64 = 1;
    /// `spawn(name_ptr, name_len, arg_ptr, arg_len, handles_ptr, handles_count)`:
    /// starts the program `name` from the boot archive with an argument
    /// string, moving the listed handles (which need TRANSFER) into the
    /// child. Returns the child's process id.
    pub const SPAWN: u64 = 2;
    /// `wait(pid)`: blocks until child `pid` exits; returns its exit code
    /// (the low 32 bits of what it passed to `exit`; a killed process
    /// returns [`super::EXIT_KILLED`]).
    pub const WAIT: u64 = 3;
    /// `yield()`: gives the CPU to the next ready process.
    pub const YIELD: u64 = 4;
    /// `sleep(milliseconds)`: blocks for at least that long (timer resolution).
    pub const SLEEP: u64 = 5;
    /// `clock(kind)`: [`super::clock`] kinds.
    pub const CLOCK: u64 = 6;
    /// `process_id()`: the caller's id.
    pub const PROCESS_ID: u64 = 7;
    /// `kernel_stats(ptr, len)`: copies a [`super::KernelStats`] out.
    pub const KERNEL_STATS: u64 = 8;
}

/// Clock kinds for [`number::CLOCK`].
pub mod clock {
    /// Milliseconds since boot (timer-tick resolution).
    pub const UPTIME_MS: u64 = 0;
    /// Raw time-stamp counter (with `-icount shift=0`, guest instructions).
    pub const TSC: u64 = 1;
}

/// Exit code the kernel reports for a process killed by a fault.
pub const EXIT_KILLED: u32 = 0xdead;

/// Packs a value and an error code into one result register: bit 63 set
/// means error, with the code in the low 32 bits; otherwise the value.
pub const fn encode(result: Result<u64, u32>) -> u64 {
    match result {
        Ok(value) => value & !(1 << 63),
        Err(code) => (1 << 63) | code as u64,
    }
}

/// Inverse of [`encode`].
pub const fn decode(raw: u64) -> Result<u64, u32> {
    if raw & (1 << 63) != 0 {
        Err(raw as u32)
    } else {
        Ok(raw)
    }
}

/// Kernel-wide counters (copied out by [`number::KERNEL_STATS`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelStats {
    /// System calls handled since boot.
    pub syscalls: u64,
    /// Context switches between processes since boot.
    pub context_switches: u64,
    /// Timer ticks since boot.
    pub ticks: u64,
    /// Free physical frames.
    pub free_frames: u64,
    /// Live processes.
    pub processes: u64,
    /// Processes killed by faults since boot.
    pub processes_killed: u64,
}
