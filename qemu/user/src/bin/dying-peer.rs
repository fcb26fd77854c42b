//! `dying-peer ROLE`: a process that dies in the middle of a conversation, for
//! init's `peer-death` test. Each role does part of its job and is then
//! killed by a fault (a read of address 0) — it never closes anything itself;
//! the kernel's clean-up must tell the peer.
//!
//! * `pipe-writer` — handle: a pipe write end. Writes 1000 bytes, dies.
//!   The reader gets the 1000 bytes, then end of file.
//! * `pipe-reader` — handle: a pipe read end. Reads 100 bytes, dies.
//!   The writer, blocked on the full pipe, gets `BrokenPipe`.
//! * `mail-receiver` — handle: a mailbox's only receiving handle. Receives
//!   one message, waits 30 ms (the sender fills the mailbox and blocks), dies.
//!   The blocked sender gets `PeerClosed`.
//! * `server` — handle: a mailbox's only receiving handle. Receives a call
//!   (taking the reply handle with it) and dies without replying. The caller
//!   gets `PeerClosed`.
//! * `quitter` — handle: as for `server`, but exits with code 3 at once,
//!   maybe before the call even arrives. The caller gets `PeerClosed` too.

#![no_std]
#![no_main]

use kipc_user::ipc::{self, Deadline, Handle};
use kipc_user::{check, println};

kipc_user::entry!(main);

/// Byte `index` of what `pipe-writer` writes (init checks it).
fn pattern(index: usize) -> u8 {
    ((index as u32).wrapping_mul(2_654_435_761) >> 24) as u8
}

fn die(role: &str) -> ! {
    println!("dying-peer: {role}: dying now");
    // SAFETY: not sound on purpose: address 0 is never mapped, so this read
    // faults and the kernel kills this process.
    let value = unsafe { core::ptr::read_volatile(core::ptr::null::<u64>()) };
    println!("dying-peer: survived a read of address 0 ({value:#x})");
    kipc_user::exit(1)
}

fn main(start: kipc_user::Start) -> u32 {
    check!(start.handles.len() == 1, "expected one handle");
    let handle = Handle(start.handles[0]);
    let role = start.argument;
    match role {
        "pipe-writer" => {
            let mut data = [0u8; 1000];
            for (index, byte) in data.iter_mut().enumerate() {
                *byte = pattern(index);
            }
            check!(ipc::write_all(handle, &data).is_ok(), "write");
        }
        "pipe-reader" => {
            let mut data = [0u8; 100];
            check!(
                ipc::read_full(handle, &mut data) == Ok(100),
                "read 100 bytes"
            );
        }
        "mail-receiver" => {
            let mut buffer = [0u8; 32];
            check!(
                ipc::receive(handle, &mut buffer, Deadline::Forever).is_ok(),
                "receive"
            );
            kipc_user::sleep_ms(30);
        }
        "server" => {
            let mut buffer = [0u8; 32];
            let message = ipc::receive(handle, &mut buffer, Deadline::Forever).expect("receive");
            check!(message.reply.is_some(), "expected a call");
            println!("dying-peer: server: got a call, holding its reply handle");
        }
        "quitter" => return 3,
        other => {
            println!("dying-peer: unknown role {other:?}");
            return 2;
        }
    }
    die(role)
}
