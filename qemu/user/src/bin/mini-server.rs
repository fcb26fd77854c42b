//! `mini-server`: the other side of the minimal kernel's scenario. Handles at start,
//! in order: the read end of a pipe, a mailbox to receive from, a shared region (map
//! read-only).
//!
//! It reads the pipe to end of file, then answers one call: it reads the note the
//! client left in the shared region and replies with it.

#![no_std]
#![no_main]

use kipc_user::ipc::{self, Deadline, Handle};
use kipc_user::shared::{Access, Shared};
use kipc_user::{check, println};

kipc_user::entry!(main);

fn main(start: kipc_user::Start) -> u32 {
    let &[pipe, mailbox, region] = start.handles else {
        println!(
            "mini-server: expected 3 handles, got {}",
            start.handles.len()
        );
        return 2;
    };
    let (pipe, mailbox, region) = (Handle(pipe), Handle(mailbox), Handle(region));
    let mut text = [0u8; 128];
    let mut length = 0;
    loop {
        let read = ipc::read(pipe, &mut text[length..], Deadline::Forever).expect("pipe read");
        if read == 0 {
            break;
        }
        length += read;
    }
    println!(
        "mini-server: read {length} bytes from the pipe, then end of file: {:?}",
        core::str::from_utf8(&text[..length]).unwrap_or("?")
    );

    let mut request = [0u8; 32];
    let message = ipc::receive(mailbox, &mut request, Deadline::Forever).expect("receive");
    check!(
        &request[..message.length] == b"read the note",
        "unexpected request"
    );
    let Some(reply) = message.reply else {
        println!("mini-server: the message was not a call");
        return 3;
    };
    let shared = Shared::map(region, Access::ReadOnly).expect("map the region read-only");
    let note_length = shared.word(0) as usize;
    check!(note_length <= 64, "note length {note_length}");
    let mut answer = [0u8; 96];
    let prefix = b"the note says: ";
    answer[..prefix.len()].copy_from_slice(prefix);
    for index in 0..note_length {
        answer[prefix.len() + index] = shared.read::<u8>(8 + index);
    }
    ipc::reply(reply, &answer[..prefix.len() + note_length], &[]).expect("reply");
    shared.unmap().expect("unmap");
    println!("mini-server: answered the call from the shared region's note ({note_length} bytes)");
    0
}
