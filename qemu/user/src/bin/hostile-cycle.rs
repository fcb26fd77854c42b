//! `hostile-cycle`: mailboxes that hold handles to themselves or to each
//! other in buffered messages. When their only process exits, the kernel must
//! still destroy the mailboxes, the messages and the handles inside them (the
//! boot's leak check fails otherwise). Children do the damage, so the root
//! can compare resource usage before and after each shape.

#![no_std]
#![no_main]

use kipc::Rights;
use kipc_user::ipc::{self, Deadline, Handle};
use kipc_user::{check, println};

kipc_user::entry!(main);

const SHAPES: &[&str] = &["self", "pair", "chain", "move-self"];

fn sendable(mailbox: Handle) -> Handle {
    ipc::duplicate(mailbox, Rights::WRITE | Rights::TRANSFER).expect("duplicate")
}

fn child(shape: &str) -> u32 {
    let a = ipc::mailbox_create().expect("mailbox a");
    let b = ipc::mailbox_create().expect("mailbox b");
    match shape {
        // a holds a handle to a.
        "self" => ipc::send(a, b"me", &[sendable(a)], Deadline::NoWait).expect("send"),
        // a holds b, b holds a.
        "pair" => {
            ipc::send(a, b"b", &[sendable(b)], Deadline::NoWait).expect("send b into a");
            ipc::send(b, b"a", &[sendable(a)], Deadline::NoWait).expect("send a into b");
        }
        // a holds b, b holds a pipe end; the process keeps only a.
        "chain" => {
            let (read, write) = ipc::pipe().expect("pipe");
            ipc::send(b, b"p", &[read, write], Deadline::NoWait).expect("send pipe into b");
            ipc::send(a, b"b", &[b], Deadline::NoWait).expect("move b into a");
        }
        // a holds its only handle (moved, not duplicated): nothing else refers to it.
        _ => ipc::send(a, b"a", &[a], Deadline::NoWait).expect("move a into a"),
    }
    0
}

fn main(start: kipc_user::Start) -> u32 {
    if let Some(shape) = start.argument.strip_prefix("child ") {
        return child(shape);
    }
    for shape in SHAPES {
        let before = kipc_user::resource_usage().expect("usage");
        let argument = kipc_user::format_line!("child {shape}");
        let argument = argument.as_str();
        let child = kipc_user::spawn("hostile-cycle", argument, &[]).expect("spawn");
        check!(kipc_user::wait(child) == Ok(0), "child {shape} failed");
        let after = kipc_user::resource_usage().expect("usage");
        check!(
            after == before,
            "shape {shape}: mailboxes outlived their process: {} mailboxes, {} pipes, {} queued messages, {} handles in flight (before: {}, {}, {}, {})",
            after.mailboxes,
            after.pipes,
            after.queued_messages,
            after.handles_in_flight,
            before.mailboxes,
            before.pipes,
            before.queued_messages,
            before.handles_in_flight
        );
        println!("hostile-cycle: {shape}: no leak");
    }
    0
}
