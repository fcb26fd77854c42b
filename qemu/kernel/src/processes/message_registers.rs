//! Message registers: short messages that travel in the saved registers of
//! the two processes instead of their memory.
//!
//! A user buffer that lies inside the window
//! `[MESSAGE_REGISTERS_ADDRESS, + 64)` (in the first page, which is never
//! mapped) names the owner's eight message registers (`rdx r8 r9 r10 r12 r13
//! r14 r15`, see `kipc_abi::MESSAGE_REGISTERS`) in its saved frame. The
//! kernel's [`kipc::UserMemory`] (in [`super::host`]) reads and writes them
//! there without a page-table walk: `ShortHost` in every copy of a short call,
//! `KernelHost` in user-to-user copies (a message or reply handed straight to
//! a parked short caller or receiver). kipc does not know: it copies and
//! counts exactly as for memory, so the short mailbox calls run the same kipc
//! code, with the same checks and ledger counts, as the long ones.
//!
//! Whose frame: kipc copies only for the caller of the current system call
//! (its frame was saved at this call's entry) or for a process parked in a
//! kipc wait (its frame sits at the top of its kernel stack until it runs).

use kipc_abi::{MESSAGE_REGISTER_BYTES, MESSAGE_REGISTERS_ADDRESS};
use kipc_arch::interrupts::TrapFrame;

/// Whether a buffer at `address` starts inside the window (one comparison:
/// the copy paths test this first and [`in_window`] on the rare way in).
#[inline(always)]
pub fn starts_in_window(address: u64) -> bool {
    address.wrapping_sub(MESSAGE_REGISTERS_ADDRESS) < MESSAGE_REGISTER_BYTES as u64
}

/// Whether `length` bytes at `address` lie inside the window (an empty
/// buffer at its start counts: a short message may be empty).
#[inline(always)]
pub fn in_window(address: u64, length: usize) -> bool {
    address.wrapping_sub(MESSAGE_REGISTERS_ADDRESS) < MESSAGE_REGISTER_BYTES as u64
        && address - MESSAGE_REGISTERS_ADDRESS + length as u64 <= MESSAGE_REGISTER_BYTES as u64
}

/// The message registers of `frame`, `MR0` first.
#[inline(always)]
pub fn get(frame: &TrapFrame) -> [u64; 8] {
    [
        frame.rdx, frame.r8, frame.r9, frame.r10, frame.r12, frame.r13, frame.r14, frame.r15,
    ]
}

/// Sets the message registers of `frame`.
#[inline(always)]
pub fn set(frame: &mut TrapFrame, words: [u64; 8]) {
    [
        frame.rdx, frame.r8, frame.r9, frame.r10, frame.r12, frame.r13, frame.r14, frame.r15,
    ] = words;
}

/// Sets the first `length` bytes (at most 64) of `frame`'s message registers
/// from `words`, keeping the bytes past them: whole words are stored as they
/// are, a last partial one is merged under a mask, and registers past the
/// message are not touched.
#[inline(always)]
pub fn set_prefix(frame: &mut TrapFrame, words: &[u64; 8], length: usize) {
    if length == MESSAGE_REGISTER_BYTES {
        set(frame, *words);
        return;
    }
    let whole = length / 8;
    for (index, &word) in words.iter().enumerate().take(whole) {
        *register(frame, index) = word;
    }
    let tail = length % 8;
    if tail != 0 {
        let mask = (1u64 << (tail * 8)) - 1;
        let last = register(frame, whole);
        *last = (*last & !mask) | (words[whole] & mask);
    }
}

/// Message register `index` (0 to 7) of `frame`.
#[inline(always)]
fn register(frame: &mut TrapFrame, index: usize) -> &mut u64 {
    match index {
        0 => &mut frame.rdx,
        1 => &mut frame.r8,
        2 => &mut frame.r9,
        3 => &mut frame.r10,
        4 => &mut frame.r12,
        5 => &mut frame.r13,
        6 => &mut frame.r14,
        _ => &mut frame.r15,
    }
}

/// Copies `destination.len()` bytes out of `frame`'s registers, from the
/// window address `address` on (checked with [`in_window`]).
#[inline(always)]
pub fn read(frame: &TrapFrame, address: u64, destination: &mut [u8]) {
    let offset = (address - MESSAGE_REGISTERS_ADDRESS) as usize;
    let bytes = to_bytes(get(frame));
    destination.copy_from_slice(&bytes[offset..offset + destination.len()]);
}

/// Copies `source` into `frame`'s registers at the window address `address`
/// (checked with [`in_window`]); the other bytes keep their values.
#[inline(always)]
pub fn write(frame: &mut TrapFrame, address: u64, source: &[u8]) {
    let offset = (address - MESSAGE_REGISTERS_ADDRESS) as usize;
    let mut bytes = to_bytes(get(frame));
    bytes[offset..offset + source.len()].copy_from_slice(source);
    set(frame, from_bytes(&bytes));
}

fn to_bytes(words: [u64; 8]) -> [u8; MESSAGE_REGISTER_BYTES] {
    let mut bytes = [0u8; MESSAGE_REGISTER_BYTES];
    for (chunk, word) in bytes.chunks_exact_mut(8).zip(words) {
        chunk.copy_from_slice(&word.to_le_bytes());
    }
    bytes
}

fn from_bytes(bytes: &[u8; MESSAGE_REGISTER_BYTES]) -> [u64; 8] {
    let mut words = [0u64; 8];
    for (word, chunk) in words.iter_mut().zip(bytes.chunks_exact(8)) {
        let mut eight = [0u8; 8];
        eight.copy_from_slice(chunk);
        *word = u64::from_le_bytes(eight);
    }
    words
}
