//! `notify-peer ROLE`: the other process of init's `notification` test. It
//! gets a notification handle with SIGNAL but not WAIT.
//!
//! * `signal BITS...` — signals each value (hex) in turn, at once, and exits:
//!   init waits afterwards and must see them ORed together.
//! * `late BITS` — sleeps 30 ms, then signals: init is blocked in its wait.

#![no_std]
#![no_main]

use kipc::ErrorCode;
use kipc_user::ipc::{self, Deadline, Handle};
use kipc_user::{check, println};

kipc_user::entry!(main);

fn main(start: kipc_user::Start) -> u32 {
    check!(start.handles.len() == 1, "expected one notification handle");
    let notification = Handle(start.handles[0]);
    let result = ipc::notification_wait(notification, Deadline::NoWait);
    check!(
        result.err() == Some(ErrorCode::PermissionDenied.into()),
        "waiting without the WAIT right gave {result:?}"
    );
    let mut words = start.argument.split_ascii_whitespace();
    let role = words.next().unwrap_or("");
    if role == "late" {
        kipc_user::sleep_ms(30);
    } else if role != "signal" {
        println!("notify-peer: unknown role {role:?}");
        return 2;
    }
    for word in words {
        let Ok(bits) = u64::from_str_radix(word.trim_start_matches("0x"), 16) else {
            println!("notify-peer: bad bits {word:?}");
            return 2;
        };
        check!(
            ipc::notification_signal(notification, bits).is_ok(),
            "signal {bits:#x}"
        );
        println!("notify-peer: signalled {bits:#x}");
    }
    0
}
