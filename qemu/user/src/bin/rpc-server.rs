//! `rpc-server`: the server of init's `reply-receive` test. It answers each
//! call and waits for the next in one system call (`ipc::reply_receive`):
//!
//! * a request with a handle (a semaphore) — posts it and answers "posted";
//! * `quit` — answers "bye" with a plain reply and exits;
//! * anything else — answers the request in upper case.
//!
//! At the end it prints how many calls it served (the boot test checks it).

#![no_std]
#![no_main]

use kipc_user::ipc::{self, Handle};
use kipc_user::{check, println};

kipc_user::entry!(main);

fn main(start: kipc_user::Start) -> u32 {
    check!(start.handles.len() == 1, "expected one mailbox handle");
    let mailbox = Handle(start.handles[0]);
    let mut buffer = [0u8; 64];
    let mut answer: Option<(Handle, usize)> = None;
    let mut served = 0u32;
    loop {
        let (reply, length) = answer.map_or((None, 0), |(handle, length)| (Some(handle), length));
        let message = match ipc::reply_receive(mailbox, &mut buffer, reply, length) {
            Ok(message) => message,
            Err(error) => {
                println!("rpc-server: reply_receive failed: {error:?}");
                return 1;
            }
        };
        let Some(next) = message.reply else {
            println!("rpc-server: a message that is not a call");
            return 1;
        };
        let request = &mut buffer[..message.length];
        if request == b"quit" {
            check!(ipc::reply(next, b"bye", &[]).is_ok(), "reply bye");
            println!("rpc-server: served {served} calls with reply_receive");
            return 0;
        }
        served += 1;
        let length = if message.handle_count == 1 {
            let semaphore = message.handles[0];
            check!(ipc::semaphore_post(semaphore).is_ok(), "post");
            check!(ipc::close(semaphore).is_ok(), "close");
            buffer[..6].copy_from_slice(b"posted");
            6
        } else {
            request.make_ascii_uppercase();
            request.len()
        };
        answer = Some((next, length));
    }
}
