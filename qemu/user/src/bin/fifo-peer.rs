//! `fifo-peer ROLE NAME`: the other program of init's `fifo` test. It gets no
//! handles: it reaches the FIFO by its name alone.
//!
//! * `writer NAME` — opens NAME for writing *before* any reader is there, so
//!   the blocking open waits (it measures how long), then writes the lines
//!   and a 40 000-byte block (more than the pipe holds, so it waits for the
//!   reader) and exits.
//! * `late-writer NAME` — sleeps 50 ms, then opens for writing (init's
//!   blocking read open has been waiting for it) and writes one line.

#![no_std]
#![no_main]

use kipc::ErrorCode;
use kipc_user::ipc::{self, Deadline};
use kipc_user::{check, println};

kipc_user::entry!(main);

/// What `writer` sends, in order (init expects the same).
const LINES: [&[u8]; 3] = [
    b"hello through a named pipe\n",
    b"second line\n",
    b"third and last line\n",
];
/// Size of the block after the lines.
const BLOCK: usize = 40_000;

fn main(start: kipc_user::Start) -> u32 {
    let mut words = start.argument.split_ascii_whitespace();
    let role = words.next().unwrap_or("");
    let name = words.next().unwrap_or("");
    match role {
        "writer" => writer(name),
        "late-writer" => late_writer(name),
        other => {
            println!("fifo-peer: unknown role {other:?}");
            2
        }
    }
}

fn writer(name: &str) -> u32 {
    // Nobody reads yet: a non-blocking open for writing is refused ...
    let refused = ipc::fifo_open(name, true, Deadline::NoWait);
    check!(
        refused.err() == Some(ErrorCode::NoReader.into()),
        "non-blocking write open without a reader gave {refused:?}"
    );
    // ... and a blocking one waits until init opens the other end.
    let before = kipc_user::uptime_ms();
    let fifo = ipc::fifo_open(name, true, Deadline::Forever).expect("blocking write open");
    let waited = kipc_user::uptime_ms() - before;
    check!(
        waited >= 20,
        "the blocking open returned after {waited} ms, before the reader came"
    );
    println!("fifo-peer: open for writing waited {waited} ms for the reader");
    for line in LINES {
        check!(ipc::write_all(fifo, line).is_ok(), "line write");
    }
    let mut chunk = [0u8; 1000];
    for start in (0..BLOCK).step_by(chunk.len()) {
        let length = chunk.len().min(BLOCK - start);
        for (index, byte) in chunk[..length].iter_mut().enumerate() {
            *byte = ((start + index) % 251) as u8;
        }
        check!(
            ipc::write_all(fifo, &chunk[..length]).is_ok(),
            "block write"
        );
    }
    check!(ipc::close(fifo).is_ok(), "close");
    0
}

fn late_writer(name: &str) -> u32 {
    kipc_user::sleep_ms(50);
    let fifo = ipc::fifo_open(name, true, Deadline::Forever).expect("write open");
    check!(ipc::write_all(fifo, b"late but here").is_ok(), "write");
    0
}
