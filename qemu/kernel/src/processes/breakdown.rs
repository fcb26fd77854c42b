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
#[cfg_attr(not(feature = "breakdown"), allow(dead_code))]
pub enum Phase {
    /// The whole system-call dispatcher, from taking the lock to returning.
    Dispatch = 0,
    /// Inside kipc: a façade call on the hot paths (pipe read/write,
    /// mailbox call, reply-receive, semaphore wait/post), copies and
    /// wake-ups included.
    Kipc = 1,
    /// Copies between user memory and the kernel or another process.
    Copy = 2,
    /// Applying a wake-up to a parked process and queueing it.
    Wake = 3,
    /// Picking the next process after a call parked its caller.
    Scheduler = 4,
    /// Putting a process on the CPU: its page tables and kernel stack.
    Switch = 5,
    /// Copies the kernel's own services make (the file system), outside kipc.
    HostCopy = 6,
}

/// Number of phases.
pub const PHASES: usize = 7;

/// `measured!(Phase, expression)`: the expression, counted as that phase in a
/// `breakdown` build and exactly the expression otherwise (a macro rather
/// than a closure, so the hot paths compile to the same code without the
/// feature).
macro_rules! measured {
    ($phase:ident, $body:expr) => {{
        #[cfg(feature = "breakdown")]
        {
            $crate::processes::breakdown::measure(
                $crate::processes::breakdown::Phase::$phase,
                || $body,
            )
        }
        #[cfg(not(feature = "breakdown"))]
        {
            $body
        }
    }};
}

/// `measured_copy!(expression)`: a user-memory copy, counted as kipc's or
/// the host's (see [`copy`]) in a `breakdown` build.
macro_rules! measured_copy {
    ($body:expr) => {{
        #[cfg(feature = "breakdown")]
        {
            $crate::processes::breakdown::copy(|| $body)
        }
        #[cfg(not(feature = "breakdown"))]
        {
            $body
        }
    }};
}

pub(crate) use {measured, measured_copy};

/// Whether a kipc call is being measured (copies then belong to it).
#[cfg(feature = "breakdown")]
static IN_KIPC: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

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
#[cfg(feature = "breakdown")]
#[inline(always)]
pub fn measure<T>(phase: Phase, work: impl FnOnce() -> T) -> T {
    if phase == Phase::Kipc {
        IN_KIPC.store(true, core::sync::atomic::Ordering::Relaxed);
    }
    let since = start();
    let result = work();
    stop(phase, since);
    if phase == Phase::Kipc {
        IN_KIPC.store(false, core::sync::atomic::Ordering::Relaxed);
    }
    result
}

/// Runs a user-memory copy: part of kipc's call if one is measured, else
/// of the kernel's own services.
#[cfg(feature = "breakdown")]
#[inline(always)]
pub fn copy<T>(work: impl FnOnce() -> T) -> T {
    let inside = IN_KIPC.load(core::sync::atomic::Ordering::Relaxed);
    measure(if inside { Phase::Copy } else { Phase::HostCopy }, work)
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
