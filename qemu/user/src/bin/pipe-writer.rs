//! `pipe-writer BYTES`: the far end of init's `pipe` test. It receives the
//! write end of a pipe at spawn and sends, in order:
//!
//! 1. a few small messages (init checks them byte for byte);
//! 2. a stream of BYTES of a known pattern — init picks at least four times
//!    the pipe's ring, so the ring wraps and this writer must wait for room
//!    (it counts how often); halfway it pauses so that the reader, in turn,
//!    finds the pipe empty;
//! 3. an 8-byte checksum of the stream (FNV-1a, little endian).
//!
//! Then it exits, which closes the write end: init's next read is end of file.

#![no_std]
#![no_main]

use kipc::ErrorCode;
use kipc_user::ipc::{self, Deadline, Handle};
use kipc_user::{check, println};

kipc_user::entry!(main);

/// The small messages, in the order init expects them.
const MESSAGES: [&[u8]; 4] = [
    b"ping",
    b"a pipe is a byte stream through a ring buffer",
    b"x",
    b"0123456789abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ",
];

/// Bytes per write: not a divisor of the ring size, so copies straddle its end.
const CHUNK: usize = 1500;

/// Byte `index` of the stream: a multiplicative hash, so offsets one ring
/// apart differ (a misplaced copy shows).
fn pattern(index: usize) -> u8 {
    ((index as u32).wrapping_mul(2_654_435_761) >> 24) as u8
}

/// FNV-1a over `bytes`, continuing from `hash`.
fn fnv1a(mut hash: u64, bytes: &[u8]) -> u64 {
    for &byte in bytes {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;

fn main(start: kipc_user::Start) -> u32 {
    check!(
        start.handles.len() == 1,
        "expected the pipe's write end, got {} handles",
        start.handles.len()
    );
    let pipe = Handle(start.handles[0]);
    let stream_bytes: usize = start.argument.parse().unwrap_or(0);
    check!(stream_bytes > 0, "bad stream size {:?}", start.argument);
    for message in MESSAGES {
        check!(ipc::write_all(pipe, message).is_ok(), "small message write");
    }

    let mut chunk = [0u8; CHUNK];
    let mut sent = 0;
    let mut hash = FNV_START;
    let mut waits_for_room = 0;
    while sent < stream_bytes {
        let length = CHUNK.min(stream_bytes - sent);
        for (offset, byte) in chunk[..length].iter_mut().enumerate() {
            *byte = pattern(sent + offset);
        }
        let mut data = &chunk[..length];
        while !data.is_empty() {
            // Try without waiting first, to count how often the ring was full.
            let written = match ipc::write(pipe, data, Deadline::NoWait) {
                Err(error) if error == ErrorCode::WouldBlock => {
                    waits_for_room += 1;
                    ipc::write(pipe, data, Deadline::Forever)
                }
                other => other,
            };
            let Ok(written) = written else {
                println!("pipe-writer: write failed: {written:?}");
                return 1;
            };
            hash = fnv1a(hash, &data[..written]);
            data = &data[written..];
        }
        sent += length;
        if sent >= stream_bytes / 2 && sent - length < stream_bytes / 2 {
            // Pause halfway: the reader drains the ring and must wait for us.
            kipc_user::sleep_ms(30);
        }
    }
    check!(
        ipc::write_all(pipe, &hash.to_le_bytes()).is_ok(),
        "checksum write"
    );
    check!(
        waits_for_room > 0,
        "the ring never filled during a {stream_bytes}-byte stream"
    );
    println!(
        "pipe-writer: sent {sent} bytes, checksum {hash:#018x}, waited for room {waits_for_room} times"
    );
    0
}
