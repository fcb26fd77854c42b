//! Signals: actions with handlers, the mask, sending through process
//! handles, alarms, `pause`/`suspend`, and the restorer every handler
//! returns through.
//!
//! A handler is an ordinary `extern "C" fn(signal, &mut SignalFrame)`. The
//! kernel enters it on the process's own stack with the interrupted context
//! in the frame; when it returns, [`kipc_signal_restorer`] asks the kernel to
//! resume that context (`signal_return`). A call the signal interrupted
//! returns `Interrupted`, or runs again if the action has [`RESTART`].

use core::arch::global_asm;

pub use kipc::{Signal, SignalSet};
pub use kipc_abi::SignalFrame;
use kipc_abi::{SignalActionRecord, number, signal};

use crate::ipc::Handle;
use crate::{ProcessId, SysError, SysResult, call};

/// Restart a call the signal interrupted before it made progress.
pub const RESTART: u64 = signal::RESTART;
/// Do not block the signal while its own handler runs.
pub const NODEFER: u64 = signal::NODEFER;
/// Back to the default action once the handler is entered.
pub const RESETHAND: u64 = signal::RESETHAND;

/// A signal handler.
pub type Handler = extern "C" fn(signal: u64, frame: &mut SignalFrame);

/// What to do with a signal.
#[derive(Clone, Copy)]
pub enum Action {
    /// Its default action (terminate; ignore for SIGCHLD).
    Default,
    /// Discard it.
    Ignore,
    /// Run this handler with these signals blocked on top of the mask, and
    /// these flags ([`RESTART`], [`NODEFER`], [`RESETHAND`]).
    Handler(Handler, SignalSet, u64),
}

unsafe extern "C" {
    /// Where every handler returns: issues `signal_return` with `rsp` at the
    /// frame, exactly where the handler's `ret` left it.
    pub fn kipc_signal_restorer();
}

global_asm!(
    ".global kipc_signal_restorer",
    "kipc_signal_restorer:",
    "mov eax, {number}",
    "syscall",
    "ud2",
    number = const number::SIGNAL_RETURN,
);

/// Sets `signal`'s action; returns the previous one as the kernel records it.
pub fn set_action(signal: Signal, action: Action) -> SysResult<SignalActionRecord> {
    let new = match action {
        Action::Default => SignalActionRecord {
            handler: signal::DEFAULT,
            ..SignalActionRecord::default()
        },
        Action::Ignore => SignalActionRecord {
            handler: signal::IGNORE,
            ..SignalActionRecord::default()
        },
        Action::Handler(handler, mask, flags) => SignalActionRecord {
            handler: handler as *const () as u64,
            mask: mask.bits(),
            flags,
            restorer: kipc_signal_restorer as *const () as u64,
        },
    };
    let mut old = SignalActionRecord::default();
    call(
        number::SIGNAL_ACTION,
        [
            u64::from(signal.number()),
            (&raw const new) as u64,
            (&raw mut old) as u64,
            0,
            0,
            0,
        ],
    )?;
    Ok(old)
}

/// Runs `handler` for `signal`, blocking nothing extra, with `flags`.
pub fn catch(signal: Signal, handler: Handler, flags: u64) -> SysResult<()> {
    set_action(signal, Action::Handler(handler, SignalSet::EMPTY, flags)).map(|_| ())
}

fn mask(how: u64, set: SignalSet) -> SysResult<SignalSet> {
    call(number::SIGNAL_MASK, [how, set.bits(), 0, 0, 0, 0]).map(SignalSet::from_bits)
}

/// Adds `set` to the mask; returns the old mask.
pub fn block(set: SignalSet) -> SysResult<SignalSet> {
    mask(signal::BLOCK, set)
}

/// Removes `set` from the mask; returns the old mask.
pub fn unblock(set: SignalSet) -> SysResult<SignalSet> {
    mask(signal::UNBLOCK, set)
}

/// Replaces the mask; returns the old one.
pub fn set_mask(set: SignalSet) -> SysResult<SignalSet> {
    mask(signal::SET_MASK, set)
}

/// Sends `signal` through a process handle (needs its SIGNAL right).
pub fn send(process: Handle, signal: Signal) -> SysResult<()> {
    call(
        number::SIGNAL_SEND,
        [u64::from(process.0), u64::from(signal.number()), 0, 0, 0, 0],
    )
    .map(|_| ())
}

/// Sends `signal` to the caller itself.
pub fn raise(signal: Signal) -> SysResult<()> {
    call(
        number::SIGNAL_RAISE,
        [u64::from(signal.number()), 0, 0, 0, 0, 0],
    )
    .map(|_| ())
}

/// The pending signals.
pub fn pending() -> SysResult<SignalSet> {
    call(number::SIGNAL_PENDING, [0; 6]).map(SignalSet::from_bits)
}

/// `SIGALRM` in `milliseconds` (0 cancels); returns what was left of the
/// alarm it replaces.
pub fn alarm_ms(milliseconds: u64) -> SysResult<u64> {
    call(number::ALARM, [milliseconds, 0, 0, 0, 0, 0])
}

/// Waits for a signal with the mask set to `mask`; returns the error the
/// call ends with (`Interrupted`, after the handler ran).
pub fn suspend(mask: SignalSet) -> SysError {
    match call(number::SIGNAL_SUSPEND, [mask.bits(), 0, 0, 0, 0, 0]) {
        Ok(_) => SysError(0),
        Err(error) => error,
    }
}

/// Waits for any signal the current mask lets through.
pub fn pause() -> SysError {
    match block(SignalSet::EMPTY) {
        Ok(current) => suspend(current),
        Err(error) => error,
    }
}

/// A handle to `process` (the caller or one of its children) with SIGNAL,
/// TRANSFER and DUPLICATE.
pub fn process_handle(process: ProcessId) -> SysResult<Handle> {
    call(number::PROCESS_HANDLE, [process.0, 0, 0, 0, 0, 0]).map(|raw| Handle(raw as u32))
}

/// The exit code of a process ended by `signal`.
pub const fn exit_code(signal: Signal) -> u32 {
    signal::EXIT_BASE + signal.number()
}
