//! `rpc-server`: the server of init's `reply-receive` test. It answers each
//! call and waits for the next in one system call (`ipc::reply_receive`):
//!
//! * a request with a handle (a semaphore) — posts it and answers "posted";
//! * `quit` — answers "bye" with a plain reply and exits;
//! * anything else — answers the request in upper case.
//!
//! At the end it prints how many calls it served (the boot test checks it).
//!
//! With the argument `short` it serves short messages in the message
//! registers (`ipc::reply_receive_short`) instead:
//!
//! * `give` — answers "sem" with a plain reply carrying a new semaphore;
//! * `quit` — answers "bye" and exits;
//! * a message too long for the registers (`BufferTooSmall`) — takes it with
//!   a plain receive and answers "long N" (N its length);
//! * anything else — answers it in upper case.
//!
//! After every receive it checks that the register bytes past the message
//! kept their values from before the call.

#![no_std]
#![no_main]

use kipc_user::ipc::{self, Handle};
use kipc_user::{check, println};

kipc_user::entry!(main);

fn main(start: kipc_user::Start) -> u32 {
    check!(start.handles.len() == 1, "expected one mailbox handle");
    let mailbox = Handle(start.handles[0]);
    if start.argument == "short" {
        return short(mailbox);
    }
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

fn short(mailbox: Handle) -> u32 {
    let mut registers: ipc::Registers = [0x5555_5555_5555_5555; 8];
    let mut answer: Option<(Handle, usize)> = None;
    let mut served = 0u32;
    loop {
        let (reply, length) = answer.map_or((None, 0), |(handle, length)| (Some(handle), length));
        let before = ipc::bytes_from_registers(&registers);
        let message = match ipc::reply_receive_short(mailbox, &mut registers, reply, length) {
            Ok(message) => message,
            Err(error) if error.code() == Some(kipc::ErrorCode::BufferTooSmall) => {
                // Kept in the mailbox: take it into memory.
                let mut large = [0u8; 256];
                let message = ipc::receive(mailbox, &mut large, ipc::Deadline::NoWait)
                    .expect("the long message is still there");
                let next = message.reply.expect("a call");
                let text = kipc_user::format_line!("long {}", message.length);
                check!(
                    ipc::reply(next, text.as_str().as_bytes(), &[]).is_ok(),
                    "reply long"
                );
                served += 1;
                answer = None;
                continue;
            }
            Err(error) => {
                println!("rpc-server: reply_receive_short failed: {error:?}");
                return 1;
            }
        };
        let after = ipc::bytes_from_registers(&registers);
        check!(
            after[message.length..] == before[message.length..],
            "register bytes past the message changed"
        );
        let Some(next) = message.reply else {
            println!("rpc-server: a message that is not a call");
            return 1;
        };
        let request = &after[..message.length];
        if request == b"quit" {
            check!(ipc::reply(next, b"bye", &[]).is_ok(), "reply bye");
            println!("rpc-server: served {served} short calls in the message registers");
            return 0;
        }
        served += 1;
        if request == b"give" {
            let semaphore = ipc::semaphore_create(1).expect("semaphore");
            check!(ipc::reply(next, b"sem", &[semaphore]).is_ok(), "reply sem");
            answer = None;
            continue;
        }
        let length = request.len();
        // The answer replaces the request in place; the rest stays as it was.
        let mut bytes = after;
        bytes[..length].make_ascii_uppercase();
        registers = ipc::registers_from_bytes(&bytes);
        answer = Some((next, length));
    }
}
