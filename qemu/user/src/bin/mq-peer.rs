//! `mq-peer ROLE NAME [COUNT]`: the other process of init's `mqueue` test. It
//! opens the message queue by name (no handle passed at spawn).
//!
//! * `send NAME` — sends six messages at priorities 1, 5, 3, 5, 1, 3 (so the
//!   receiver must reorder them), checks the size limit, and exits before
//!   init starts receiving.
//! * `receive NAME COUNT` — waits 30 ms (init fills the queue and must wait
//!   for room), then receives COUNT messages of one priority and checks they
//!   arrive in order, byte for byte; counts how often the queue was empty.

#![no_std]
#![no_main]

use kipc::ErrorCode;
use kipc_user::ipc::{self, Deadline};
use kipc_user::{check, println};

kipc_user::entry!(main);

/// (priority, text) in sending order; init knows the expected receive order.
const SENT: [(u8, &str); 6] = [
    (1, "low-a"),
    (5, "high-a"),
    (3, "mid-a"),
    (5, "high-b"),
    (1, "low-b"),
    (3, "mid-b"),
];

/// The queue's message size limit (init creates it with this).
const MAX_SIZE: usize = 64;

fn main(start: kipc_user::Start) -> u32 {
    let mut words = start.argument.split_ascii_whitespace();
    let role = words.next().unwrap_or("");
    let name = words.next().unwrap_or("");
    let count: u32 = words.next().and_then(|w| w.parse().ok()).unwrap_or(0);
    match role {
        "send" => send(name),
        "receive" => receive(name, count),
        other => {
            println!("mq-peer: unknown role {other:?}");
            2
        }
    }
}

fn send(name: &str) -> u32 {
    let queue = ipc::mqueue_open(name).expect("open the queue by name");
    for (priority, text) in SENT {
        check!(
            ipc::mqueue_send(queue, text.as_bytes(), priority, Deadline::NoWait).is_ok(),
            "send {text}"
        );
    }
    let too_large = [0u8; MAX_SIZE + 1];
    let result = ipc::mqueue_send(queue, &too_large, 0, Deadline::NoWait);
    check!(
        result.err() == Some(ErrorCode::MessageTooLarge.into()),
        "a {}-byte message gave {result:?}",
        too_large.len()
    );
    let result = ipc::mqueue_send(queue, b"bad", kipc::PRIORITY_LEVELS, Deadline::NoWait);
    check!(
        result.err() == Some(ErrorCode::InvalidArgument.into()),
        "priority {} gave {result:?}",
        kipc::PRIORITY_LEVELS
    );
    println!(
        "mq-peer: sent {} messages at priorities 1 5 3 5 1 3",
        SENT.len()
    );
    0
}

/// Message `sequence` of the stream: its number, then a pattern.
fn stream_message(sequence: u32) -> [u8; MAX_SIZE] {
    let mut message = [0u8; MAX_SIZE];
    message[..4].copy_from_slice(&sequence.to_le_bytes());
    for (index, byte) in message[4..].iter_mut().enumerate() {
        *byte = (sequence as usize * 31 + index) as u8;
    }
    message
}

fn receive(name: &str, count: u32) -> u32 {
    let queue = ipc::mqueue_open(name).expect("open the queue by name");
    kipc_user::sleep_ms(30);
    let mut buffer = [0u8; MAX_SIZE];
    let mut empty_waits = 0;
    for sequence in 0..count {
        let received = match ipc::mqueue_receive(queue, &mut buffer, Deadline::NoWait) {
            Err(error) if error == ErrorCode::WouldBlock => {
                empty_waits += 1;
                ipc::mqueue_receive(queue, &mut buffer, Deadline::Forever)
            }
            other => other,
        };
        let Ok((length, priority)) = received else {
            println!("mq-peer: receive failed: {received:?}");
            return 1;
        };
        check!(
            length == MAX_SIZE && priority == 7,
            "message {sequence}: length {length}, priority {priority}"
        );
        check!(
            buffer == stream_message(sequence),
            "message {sequence} arrived out of order or damaged: {:?}",
            &buffer[..8]
        );
    }
    check!(empty_waits > 0, "the queue was never empty");
    println!(
        "mq-peer: received {count} messages in order, waited on an empty queue {empty_waits} times"
    );
    0
}
