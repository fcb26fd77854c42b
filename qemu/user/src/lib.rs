//! User-space runtime for kipc programs: safe wrappers for every system call,
//! the program entry point, console printing and the panic handler.
//!
//! System-call convention (the x86_64 Linux order, so tools read it
//! naturally): number in `rax`, arguments in `rdi rsi rdx r10 r8 r9`, result in
//! `rax` (value or error, see `kipc_abi::encode`), a second result in `rdx`;
//! `rcx` and `r11` are clobbered by the instruction itself.

#![no_std]

use core::arch::asm;
use core::fmt::{self, Write};

pub use kipc_abi::{KernelStats, number};

pub mod file;
pub mod ipc;
pub mod shared;
pub mod signal;

/// A system call failed; the number is a `kipc::ErrorCode`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SysError(pub u32);

impl SysError {
    /// The `kipc::ErrorCode` this number stands for, if it is known.
    pub fn code(self) -> Option<kipc::ErrorCode> {
        kipc::ErrorCode::from_u32(self.0)
    }
}

impl fmt::Debug for SysError {
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.code() {
            Some(code) => write!(out, "{code:?}({})", self.0),
            None => write!(out, "UnknownError({})", self.0),
        }
    }
}

impl From<kipc::ErrorCode> for SysError {
    fn from(code: kipc::ErrorCode) -> SysError {
        SysError(code as u32)
    }
}

impl PartialEq<kipc::ErrorCode> for SysError {
    fn eq(&self, other: &kipc::ErrorCode) -> bool {
        self.0 == *other as u32
    }
}

/// Result of a system call.
pub type SysResult<T> = Result<T, SysError>;

/// Issues system call `number` with six arguments; returns `(rax, rdx, r8)`.
///
/// # Safety
/// The arguments must satisfy the kernel's contract for `number`: memory the
/// kernel writes through must not be relied on by the program meanwhile.
/// (The kernel validates every pointer, so a wrong one yields an error, not
/// memory corruption of the kernel; this is `unsafe` for the program's sake.)
#[inline(always)]
pub unsafe fn syscall(number: u64, arguments: [u64; 6]) -> (u64, u64, u64) {
    let rax: u64;
    let rdx: u64;
    let r8: u64;
    // SAFETY: the `syscall` instruction transfers to the kernel, which
    // preserves every register except rax, rdx, r8 (results), rcx and r11
    // (clobbered by the instruction), as declared here.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") number => rax,
            in("rdi") arguments[0],
            in("rsi") arguments[1],
            inlateout("rdx") arguments[2] => rdx,
            in("r10") arguments[3],
            inlateout("r8") arguments[4] => r8,
            in("r9") arguments[5],
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    (rax, rdx, r8)
}

/// A system call whose arguments carry no pointers the kernel writes through,
/// decoded into a value or an error.
pub fn call(number: u64, arguments: [u64; 6]) -> SysResult<u64> {
    // SAFETY: callers only pass pointers to memory they own for the call.
    let (rax, _, _) = unsafe { syscall(number, arguments) };
    kipc_abi::decode(rax).map_err(SysError)
}

/// Like [`call`], also returning `rdx`.
pub fn call2(number: u64, arguments: [u64; 6]) -> SysResult<(u64, u64)> {
    // SAFETY: as in `call`.
    let (rax, rdx, _) = unsafe { syscall(number, arguments) };
    kipc_abi::decode(rax)
        .map(|value| (value, rdx))
        .map_err(SysError)
}

/// Like [`call`], also returning `rdx` and `r8`.
pub fn call3(number: u64, arguments: [u64; 6]) -> SysResult<(u64, u64, u64)> {
    // SAFETY: as in `call`.
    let (rax, rdx, r8) = unsafe { syscall(number, arguments) };
    kipc_abi::decode(rax)
        .map(|value| (value, rdx, r8))
        .map_err(SysError)
}

/// What a program receives at start.
pub struct Start {
    /// The argument string its parent passed.
    pub argument: &'static str,
    /// Handles its parent passed (copies; raw values).
    pub handles: &'static [u32],
}

/// Defines the program's `_start`, which calls `main(Start)` and exits with
/// its return value.
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        #[unsafe(no_mangle)]
        #[unsafe(link_section = ".text._start")]
        extern "C" fn _start(
            argument: *const u8,
            argument_length: usize,
            handles: *const u32,
            handle_count: usize,
        ) -> ! {
            // SAFETY: the kernel placed the argument string and the handle
            // array on our stack, where they stay for the whole program.
            let start = unsafe {
                $crate::Start::from_raw(argument, argument_length, handles, handle_count)
            };
            let code: u32 = $main(start);
            $crate::exit(code)
        }
    };
}

impl Start {
    /// Builds the start record from what the kernel passed in registers.
    ///
    /// # Safety
    /// The pointers must be those the kernel passed to `_start`.
    pub unsafe fn from_raw(
        argument: *const u8,
        argument_length: usize,
        handles: *const u32,
        handle_count: usize,
    ) -> Start {
        // SAFETY: the kernel wrote `argument_length` bytes at `argument` and
        // `handle_count` u32s at `handles` (aligned) on our stack.
        let bytes = unsafe { core::slice::from_raw_parts(argument, argument_length) };
        let handles = if handle_count == 0 {
            &[][..]
        } else {
            // SAFETY: as above.
            unsafe { core::slice::from_raw_parts(handles, handle_count) }
        };
        Start {
            argument: core::str::from_utf8(bytes).unwrap_or(""),
            handles,
        }
    }
}

/// Ends the calling process with `code`.
pub fn exit(code: u32) -> ! {
    let _ = call(number::EXIT, [u64::from(code), 0, 0, 0, 0, 0]);
    unreachable!("exit returned")
}

/// Writes bytes to the console.
pub fn console_write(bytes: &[u8]) -> SysResult<usize> {
    call(
        number::CONSOLE_WRITE,
        [bytes.as_ptr() as u64, bytes.len() as u64, 0, 0, 0, 0],
    )
    .map(|written| written as usize)
}

/// A process id (slot and generation packed by the kernel).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcessId(pub u64);

/// Starts program `name` with `argument`, giving it copies of `handles`
/// (each needs the TRANSFER right).
pub fn spawn(name: &str, argument: &str, handles: &[u32]) -> SysResult<ProcessId> {
    call(
        number::SPAWN,
        [
            name.as_ptr() as u64,
            name.len() as u64,
            argument.as_ptr() as u64,
            argument.len() as u64,
            handles.as_ptr() as u64,
            handles.len() as u64,
        ],
    )
    .map(ProcessId)
}

/// Waits for child `child` to exit; returns its exit code.
pub fn wait(child: ProcessId) -> SysResult<u32> {
    call(number::WAIT, [child.0, 0, 0, 0, 0, 0]).map(|code| code as u32)
}

/// Gives the CPU to the next ready process.
pub fn yield_now() {
    let _ = call(number::YIELD, [0; 6]);
}

/// Sleeps at least `milliseconds`.
pub fn sleep_ms(milliseconds: u64) {
    let _ = call(number::SLEEP, [milliseconds, 0, 0, 0, 0, 0]);
}

/// Milliseconds since boot.
pub fn uptime_ms() -> u64 {
    call(number::CLOCK, [kipc_abi::clock::UPTIME_MS, 0, 0, 0, 0, 0]).unwrap_or(0)
}

/// The time-stamp counter: guest instructions under `-icount shift=0`.
pub fn tsc() -> u64 {
    call(number::CLOCK, [kipc_abi::clock::TSC, 0, 0, 0, 0, 0]).unwrap_or(0)
}

/// The caller's process id.
pub fn process_id() -> ProcessId {
    ProcessId(call(number::PROCESS_ID, [0; 6]).unwrap_or(0))
}

/// Kernel-wide counters.
pub fn kernel_stats() -> SysResult<KernelStats> {
    let mut stats = KernelStats::default();
    call(
        number::KERNEL_STATS,
        [
            (&raw mut stats) as u64,
            size_of::<KernelStats>() as u64,
            0,
            0,
            0,
            0,
        ],
    )?;
    Ok(stats)
}

/// Ends child `child` (exit code `kipc_abi::EXIT_KILLED`).
pub fn kill(child: ProcessId) -> SysResult<()> {
    call(number::KILL, [child.0, 0, 0, 0, 0, 0]).map(|_| ())
}

/// The kernel's instruction counts by phase since the last call, which zeroes
/// them; only a kernel built with the `breakdown` feature has them
/// (`cargo run -- bench --breakdown`), others answer `InvalidArgument`.
pub fn breakdown() -> SysResult<kipc_abi::Breakdown> {
    let mut record = kipc_abi::Breakdown::default();
    call(
        number::BREAKDOWN,
        [
            (&raw mut record) as u64,
            size_of::<kipc_abi::Breakdown>() as u64,
            0,
            0,
            0,
            0,
        ],
    )?;
    Ok(record)
}

/// Kernel-wide resources in use, for leak checks.
pub fn resource_usage() -> SysResult<kipc_abi::ResourceUsage> {
    let mut usage = kipc_abi::ResourceUsage::default();
    call(
        number::RESOURCE_USAGE,
        [
            (&raw mut usage) as u64,
            size_of::<kipc_abi::ResourceUsage>() as u64,
            0,
            0,
            0,
            0,
        ],
    )?;
    Ok(usage)
}

/// The console as a `fmt::Write` sink.
pub struct Console;

impl Write for Console {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        console_write(text.as_bytes())
            .map(|_| ())
            .map_err(|_| fmt::Error)
    }
}

/// Formats into a stack buffer and writes it with one system call, so lines
/// from different processes do not interleave.
pub fn print_fmt(arguments: fmt::Arguments) {
    let mut line = Line::new();
    if line.write_fmt(arguments).is_err() {
        let _ = console_write(line.as_bytes());
        let _ = Console.write_fmt(arguments);
        return;
    }
    let _ = console_write(line.as_bytes());
}

/// A fixed buffer for one line of output.
pub struct Line {
    bytes: [u8; 512],
    length: usize,
}

impl Line {
    /// An empty line.
    pub const fn new() -> Line {
        Line {
            bytes: [0; 512],
            length: 0,
        }
    }

    /// What was written.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.length]
    }

    /// What was written, as text (only whole `&str`s are ever written).
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(self.as_bytes()).unwrap_or("")
    }

    /// A line holding `arguments` formatted (cut short if it does not fit).
    pub fn format(arguments: fmt::Arguments) -> Line {
        let mut line = Line::new();
        let _ = line.write_fmt(arguments);
        line
    }
}

impl Default for Line {
    fn default() -> Self {
        Self::new()
    }
}

impl Write for Line {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let bytes = text.as_bytes();
        let room = self.bytes.len() - self.length;
        if bytes.len() > room {
            return Err(fmt::Error);
        }
        self.bytes[self.length..self.length + bytes.len()].copy_from_slice(bytes);
        self.length += bytes.len();
        Ok(())
    }
}

/// Formats into a [`Line`] (a short string without an allocator).
#[macro_export]
macro_rules! format_line {
    ($($arg:tt)*) => ($crate::Line::format(format_args!($($arg)*)));
}

/// Prints to the console.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => ($crate::print_fmt(format_args!($($arg)*)));
}

/// Prints a line to the console.
#[macro_export]
macro_rules! println {
    () => ($crate::print!("\n"));
    ($($arg:tt)*) => ($crate::print_fmt(format_args!("{}\n", format_args!($($arg)*))));
}

/// Checks a condition in a test program; on failure prints where and why and
/// exits with code 1.
#[macro_export]
macro_rules! check {
    ($condition:expr, $($reason:tt)+) => {
        if !$condition {
            $crate::println!("CHECK FAILED at {}:{}: {}", file!(), line!(), format_args!($($reason)+));
            $crate::exit(1);
        }
    };
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    println!("user panic: {info}");
    exit(101)
}
