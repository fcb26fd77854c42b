//! `mini-client`: one side of the minimal kernel's scenario (it also runs under the
//! demo kernel's ABI, which is the same). Handles at start, in order: the write end
//! of a pipe, a mailbox to call, a shared region (map and write).
//!
//! It writes a greeting down the pipe and closes it, puts a message into the shared
//! region, then calls the server through the mailbox and checks the reply, which the
//! server builds from what it found in the region.

#![no_std]
#![no_main]

use kipc_user::ipc::{self, Deadline, Handle};
use kipc_user::shared::{Access, Shared};
use kipc_user::{check, println};

kipc_user::entry!(main);

/// What goes down the pipe.
pub const GREETING: &[u8] = b"hello from mini-client, through a pipe";
/// What goes into the shared region (word 0 holds its length).
pub const NOTE: &[u8] = b"a note left in a shared page";

fn main(start: kipc_user::Start) -> u32 {
    let &[pipe, mailbox, region] = start.handles else {
        println!(
            "mini-client: expected 3 handles, got {}",
            start.handles.len()
        );
        return 2;
    };
    let (pipe, mailbox, region) = (Handle(pipe), Handle(mailbox), Handle(region));
    let wrote = ipc::write(pipe, GREETING, Deadline::Forever).expect("pipe write");
    check!(wrote == GREETING.len(), "short pipe write: {wrote}");
    ipc::close(pipe).expect("close the pipe");

    let shared = Shared::map(region, Access::ReadWrite).expect("map the region");
    shared.set_word(0, NOTE.len() as u64);
    for (index, &byte) in NOTE.iter().enumerate() {
        shared.write::<u8>(8 + index, byte);
    }
    let mut reply = [0u8; 96];
    let message = ipc::call_mailbox(mailbox, b"read the note", &[], &mut reply).expect("call");
    let reply = &reply[..message.length];
    let expected_length = b"the note says: ".len() + NOTE.len();
    check!(
        reply.starts_with(b"the note says: ")
            && reply.ends_with(NOTE)
            && reply.len() == expected_length,
        "unexpected reply {:?}",
        core::str::from_utf8(reply)
    );
    println!(
        "mini-client: the server answered {:?}",
        core::str::from_utf8(reply).unwrap_or("?")
    );
    shared.unmap().expect("unmap");
    0
}
