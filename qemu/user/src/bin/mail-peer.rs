//! `mail-peer ROLE`: the other process of init's `mailbox` test.
//!
//! * `badge NAME` — gets a *minted* send handle and sends "from NAME". The
//!   badge init sees comes from the handle, not from anything NAME writes.
//! * `server` — gets the receiving handle of a mailbox and answers calls:
//!   `write-pipe` (the call carries a pipe write end: the server writes a
//!   line through it and closes it), `make-region` (the reply carries a new
//!   region holding a line), `quit`.
//! * `stream COUNT` — sends COUNT 200-byte numbered messages; the mailbox
//!   holds 8, and init starts late, so this sender must wait (it counts).

#![no_std]
#![no_main]

use kipc::ErrorCode;
use kipc_user::ipc::{self, Deadline, Handle};
use kipc_user::{check, println};

kipc_user::entry!(main);

/// What the server writes through the transferred pipe end.
const PIPE_LINE: &[u8] = b"written by the server through a pipe end that came in a message";
/// What the server leaves in the region it replies with.
const REGION_LINE: &[u8] = b"a region made by the server, handed over in its reply";
/// Bytes per stream message.
const STREAM_SIZE: usize = 200;

fn main(start: kipc_user::Start) -> u32 {
    let mut words = start.argument.split_ascii_whitespace();
    let role = words.next().unwrap_or("");
    let word = words.next().unwrap_or("");
    check!(start.handles.len() == 1, "expected one mailbox handle");
    let mailbox = Handle(start.handles[0]);
    match role {
        "badge" => badge(mailbox, word),
        "server" => server(mailbox),
        "stream" => stream(mailbox, word.parse().unwrap_or(0)),
        other => {
            println!("mail-peer: unknown role {other:?}");
            2
        }
    }
}

fn badge(mailbox: Handle, name: &str) -> u32 {
    // A send handle cannot receive.
    let mut buffer = [0u8; 8];
    let result = ipc::receive(mailbox, &mut buffer, Deadline::NoWait);
    check!(
        result.err() == Some(ErrorCode::PermissionDenied.into()),
        "receive through a send handle gave {result:?}"
    );
    let text = kipc_user::format_line!("from {name}");
    check!(
        ipc::send(mailbox, text.as_bytes(), &[], Deadline::Forever).is_ok(),
        "send"
    );
    0
}

fn server(mailbox: Handle) -> u32 {
    let mut request = [0u8; 64];
    loop {
        let message = match ipc::receive(mailbox, &mut request, Deadline::Forever) {
            Ok(message) => message,
            Err(error) => {
                println!("mail-peer: receive failed: {error:?}");
                return 1;
            }
        };
        let Some(reply) = message.reply else {
            println!("mail-peer: a message that is not a call");
            return 1;
        };
        match &request[..message.length] {
            b"write-pipe" => {
                check!(
                    message.handle_count == 1,
                    "write-pipe came with {} handles",
                    message.handle_count
                );
                let pipe = message.handles[0];
                check!(
                    ipc::write_all(pipe, PIPE_LINE).is_ok(),
                    "write through the transferred pipe end"
                );
                check!(ipc::close(pipe).is_ok(), "close the pipe end");
                check!(ipc::reply(reply, b"done", &[]).is_ok(), "reply");
            }
            b"make-region" => {
                let region = ipc::region_create(1).expect("region");
                let address = ipc::region_map(region, None, true).expect("map");
                // SAFETY: one page mapped read-write at `address`.
                let page = unsafe { core::slice::from_raw_parts_mut(address as *mut u8, 4096) };
                page[..REGION_LINE.len()].copy_from_slice(REGION_LINE);
                check!(ipc::region_unmap(address).is_ok(), "unmap");
                // The handle moves to the caller with the reply.
                check!(
                    ipc::reply(reply, b"region", &[region]).is_ok(),
                    "reply with a region"
                );
                check!(
                    ipc::info(region).is_err(),
                    "the region handle stayed here after the reply moved it"
                );
            }
            b"quit" => {
                check!(ipc::reply(reply, b"bye", &[]).is_ok(), "reply bye");
                return 0;
            }
            other => {
                println!("mail-peer: unknown request {other:?}");
                return 1;
            }
        }
    }
}

/// Message `sequence` of the stream: its number, then a pattern.
fn stream_message(sequence: u32) -> [u8; STREAM_SIZE] {
    let mut message = [0u8; STREAM_SIZE];
    message[..4].copy_from_slice(&sequence.to_le_bytes());
    for (index, byte) in message[4..].iter_mut().enumerate() {
        *byte = (sequence as usize * 7 + index * 3) as u8;
    }
    message
}

fn stream(mailbox: Handle, count: u32) -> u32 {
    let mut full_waits = 0;
    for sequence in 0..count {
        let message = stream_message(sequence);
        let sent = match ipc::send(mailbox, &message, &[], Deadline::NoWait) {
            Err(error) if error == ErrorCode::WouldBlock => {
                full_waits += 1;
                ipc::send(mailbox, &message, &[], Deadline::Forever)
            }
            other => other,
        };
        check!(sent.is_ok(), "send {sequence}: {sent:?}");
    }
    check!(full_waits > 0, "the 8-deep mailbox never filled");
    println!("mail-peer: sent {count} messages, waited for room {full_waits} times");
    0
}
