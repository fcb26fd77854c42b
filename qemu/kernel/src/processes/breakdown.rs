//! Where a system call's instructions go (`cargo run -- bench --breakdown`).
//!
//! Built only with the kernel feature `breakdown` (the runner builds a
//! separate release kernel for it); otherwise every function here is empty
//! and compiles to nothing. Under QEMU's `-icount shift=0` the time-stamp
//! counter counts guest instructions, so `rdtsc` at phase boundaries splits
//! a system call exactly (the `rdtsc`s and the adds themselves, a few
//! instructions each, land in the phase they close).
//!
//! Phases, accumulated over all processes until read (and reset) by the
//! `BREAKDOWN` system call: the whole dispatcher, the kipc call of the hot
//! IPC paths, the user-memory copies and wake-ups inside it, the scheduler
//! and, inside that, the context switch proper. The bench derives the rest
//! (entry and exit stubs, argument decoding and validation, user code).

/// A measured phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub enum Phase {
    /// The whole system-call dispatcher, from taking the lock to returning.
    Dispatch = 0,
    /// Inside kipc: a façade call on the hot paths (pipe read/write,
    /// mailbox call, reply-receive), copies and wake-ups included.
    Kipc = 1,
    /// Copies between user memory and the kernel or another process.
    Copy = 2,
    /// Applying a wake-up to a parked process and queueing it.
    Wake = 3,
    /// Picking the next process after a call parked its caller.
    Scheduler = 4,
    /// Putting a process on the CPU: its page tables and kernel stack.
    Switch = 5,
}

/// Number of phases.
pub const PHASES: usize = 6;

#[cfg(feature = "breakdown")]
static TOTALS: [core::sync::atomic::AtomicU64; PHASES] =
    [const { core::sync::atomic::AtomicU64::new(0) }; PHASES];

/// The instruction count now (0 without the feature).
#[inline(always)]
pub fn start() -> u64 {
    #[cfg(feature = "breakdown")]
    {
        // SAFETY: rdtsc only reads the time-stamp counter.
        unsafe { core::arch::x86_64::_rdtsc() }
    }
    #[cfg(not(feature = "breakdown"))]
    {
        0
    }
}

/// Adds the instructions since `since` to `phase`.
#[inline(always)]
pub fn stop(phase: Phase, since: u64) {
    #[cfg(feature = "breakdown")]
    {
        // SAFETY: as above.
        let now = unsafe { core::arch::x86_64::_rdtsc() };
        TOTALS[phase as usize].fetch_add(
            now.wrapping_sub(since),
            core::sync::atomic::Ordering::Relaxed,
        );
    }
    #[cfg(not(feature = "breakdown"))]
    {
        let _ = (phase, since);
    }
}

/// Runs `work` as part of `phase`.
#[inline(always)]
pub fn measure<T>(phase: Phase, work: impl FnOnce() -> T) -> T {
    let since = start();
    let result = work();
    stop(phase, since);
    result
}

/// The totals since the last call, then zeroes them; `None` without the
/// feature.
pub fn take() -> Option<[u64; PHASES]> {
    #[cfg(feature = "breakdown")]
    {
        let mut totals = [0; PHASES];
        for (total, slot) in totals.iter_mut().zip(TOTALS.iter()) {
            *total = slot.swap(0, core::sync::atomic::Ordering::Relaxed);
        }
        Some(totals)
    }
    #[cfg(not(feature = "breakdown"))]
    {
        None
    }
}
