//! The verdict the runner judges: one `KIPC-RESULT:` line on serial and the
//! matching QEMU exit status.
//!
//! A scenario passes only if the runner sees `KIPC-RESULT: PASS NAME` *and*
//! exit status 33; anything else (a `FAIL` line, a fault report, a triple
//! fault that exits with 0, a timeout) is a failure.

use core::fmt;

use spin::Once;

use crate::exit::{ExitCode, exit_qemu};

/// The line prefix the runner parses for the verdict.
pub const RESULT_PREFIX: &str = "KIPC-RESULT:";

static SCENARIO: Once<heapless::String<64>> = Once::new();

/// Names the scenario being run (once; the verdict line carries the name).
/// Longer names are cut at 64 bytes, on a character boundary.
pub fn set_scenario(name: &str) {
    SCENARIO.call_once(|| {
        let mut kept = heapless::String::new();
        for character in name.chars() {
            if kept.push(character).is_err() {
                break;
            }
        }
        kept
    });
}

/// The scenario's name (`boot` until one is set).
pub fn scenario() -> &'static str {
    SCENARIO.get().map_or("boot", |name| name.as_str())
}

/// Reports success of the running scenario and exits QEMU (exit status 33).
pub fn pass() -> ! {
    crate::println!("{RESULT_PREFIX} PASS {}", scenario());
    exit_qemu(ExitCode::Success)
}

/// Reports failure of the running scenario and exits QEMU (exit status 35).
/// Safe to call from a fault or panic: it takes the console even if the
/// failed context held it.
pub fn fail(reason: fmt::Arguments) -> ! {
    crate::serial::emergency_write_fmt(format_args!(
        "{RESULT_PREFIX} FAIL {}: {}\n",
        scenario(),
        reason
    ));
    exit_qemu(ExitCode::Failure)
}

/// Checks a condition inside a scenario; on failure reports the scenario
/// failed with the formatted reason.
#[macro_export]
macro_rules! check {
    ($condition:expr, $($reason:tt)+) => {
        if !$condition {
            $crate::verdict::fail(format_args!($($reason)+));
        }
    };
}

/// Reports a kernel panic as a failure (for a kernel's `#[panic_handler]`).
pub fn panic(info: &core::panic::PanicInfo) -> ! {
    x86_64::instructions::interrupts::disable();
    crate::serial::emergency_write_fmt(format_args!("\n!!! KERNEL PANIC: {info}\n"));
    fail(format_args!("kernel panic: {}", info.message()))
}
