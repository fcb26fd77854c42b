//! `handle-hog`: fills its own handle table (64 slots) for init's
//! `handle-exhaustion` test, and shows that a full table is an ordinary,
//! recoverable error:
//!
//! 1. creates a few objects of each kind, then duplicates a handle until the
//!    kernel answers `OutOfHandles` — with exactly 64 handles held;
//! 2. every call that would add a handle then fails with `OutOfHandles`
//!    (creating any object, minting, receiving a message that carries a
//!    handle — the message stays queued), and a failed named create leaves
//!    no name behind;
//! 3. the handles it holds still work;
//! 4. with one slot free, a pipe (two handles) is still refused, but the
//!    queued message now arrives with its handle;
//! 5. after closing everything it can create objects again.

#![no_std]
#![no_main]

use kipc::{ErrorCode, Rights};
use kipc_user::ipc::{self, Deadline, Handle};
use kipc_user::{SysResult, check, println};

kipc_user::entry!(main);

/// Handle slots per process (the kernel's kipc configuration).
const HANDLE_SLOTS: usize = 64;

/// The handles this program holds.
struct Held {
    handles: [Handle; HANDLE_SLOTS],
    count: usize,
}

impl Held {
    fn keep(&mut self, handle: SysResult<Handle>, what: &str) -> Handle {
        let Ok(handle) = handle else {
            println!(
                "handle-hog: {what} failed with {handle:?} at {} handles",
                self.count
            );
            kipc_user::exit(1);
        };
        check!(
            self.count < HANDLE_SLOTS,
            "more than {HANDLE_SLOTS} handles"
        );
        self.handles[self.count] = handle;
        self.count += 1;
        handle
    }
}

/// True if `result` is the error `OutOfHandles`.
fn out_of_handles<T>(result: SysResult<T>) -> bool {
    result.err() == Some(ErrorCode::OutOfHandles.into())
}

fn main(_start: kipc_user::Start) -> u32 {
    let mut held = Held {
        handles: [Handle(0); HANDLE_SLOTS],
        count: 0,
    };

    // A message carrying a handle waits in a mailbox for step 4.
    let carrier = held.keep(ipc::mailbox_create(), "mailbox");
    let passenger = ipc::notification_create().expect("notification");
    check!(
        ipc::send(carrier, b"carry", &[passenger], Deadline::NoWait).is_ok(),
        "send a handle"
    );
    check!(ipc::info(passenger).is_err(), "the sent handle stayed");

    // 1. Objects of each kind, then duplicates until the table is full.
    let mut pipe = (Handle(0), Handle(0));
    let mut semaphore = Handle(0);
    for _ in 0..3 {
        let (read, write) = ipc::pipe().expect("pipe");
        pipe = (held.keep(Ok(read), "pipe"), held.keep(Ok(write), "pipe"));
        semaphore = held.keep(ipc::semaphore_create(0), "semaphore");
        held.keep(ipc::notification_create(), "notification");
        held.keep(ipc::region_create(1), "region");
    }
    let error = loop {
        match ipc::duplicate(semaphore, Rights::WAIT | Rights::SIGNAL) {
            Ok(handle) => {
                held.keep(Ok(handle), "duplicate");
            }
            Err(error) => break error,
        }
    };
    check!(
        error == ErrorCode::OutOfHandles,
        "duplicating gave {error:?} at {} handles",
        held.count
    );
    check!(
        held.count == HANDLE_SLOTS,
        "OutOfHandles came at {} handles, not {HANDLE_SLOTS}",
        held.count
    );

    // 2. Every way to get one more handle is refused the same way.
    check!(out_of_handles(ipc::semaphore_create(1)), "semaphore_create");
    check!(
        out_of_handles(ipc::notification_create()),
        "notification_create"
    );
    check!(out_of_handles(ipc::mailbox_create()), "mailbox_create");
    check!(out_of_handles(ipc::pipe()), "pipe");
    check!(out_of_handles(ipc::region_create(1)), "region_create");
    check!(
        out_of_handles(ipc::mailbox_mint(carrier, Rights::WRITE, 9)),
        "mailbox_mint"
    );
    check!(
        out_of_handles(ipc::mqueue_create("hog-queue", 2, 8)),
        "mqueue_create"
    );
    let result = ipc::mqueue_open("hog-queue");
    check!(
        result.err() == Some(ErrorCode::NotFound.into()),
        "a refused mqueue_create left its name behind: open gave {result:?}"
    );
    let mut buffer = [0u8; 16];
    check!(
        out_of_handles(ipc::receive(carrier, &mut buffer, Deadline::NoWait)),
        "receiving a message that carries a handle"
    );
    println!(
        "handle-hog: {} handles held; every create, mint and handle-carrying receive says OutOfHandles",
        held.count
    );

    // 3. What it holds still works.
    check!(ipc::semaphore_post(semaphore).is_ok(), "post");
    check!(
        ipc::semaphore_wait(semaphore, Deadline::NoWait).is_ok(),
        "wait"
    );
    check!(
        ipc::write(pipe.1, b"still works", Deadline::NoWait) == Ok(11),
        "pipe write"
    );
    check!(
        ipc::read(pipe.0, &mut buffer, Deadline::NoWait) == Ok(11)
            && &buffer[..11] == b"still works",
        "pipe read"
    );

    // 4. One free slot: not enough for a pipe, enough for the queued message.
    held.count -= 1;
    check!(ipc::close(held.handles[held.count]).is_ok(), "close one");
    check!(out_of_handles(ipc::pipe()), "a pipe needs two free slots");
    let message = ipc::receive(carrier, &mut buffer, Deadline::NoWait).expect("receive");
    check!(
        message.handle_count == 1 && &buffer[..message.length] == b"carry",
        "the kept message"
    );
    let passenger = held.keep(Ok(message.handles[0]), "received handle");
    check!(
        ipc::notification_signal(passenger, 0b10).is_ok()
            && ipc::notification_wait(passenger, Deadline::NoWait) == Ok(0b10),
        "the notification that travelled works"
    );

    // 5. Close everything; creating works again.
    for &handle in &held.handles[..held.count] {
        check!(ipc::close(handle).is_ok(), "close {handle:?}");
    }
    let (read, write) = ipc::pipe().expect("pipe after closing everything");
    let semaphore = ipc::semaphore_create(0).expect("semaphore after closing everything");
    for handle in [read, write, semaphore] {
        check!(ipc::close(handle).is_ok(), "close");
    }
    println!(
        "handle-hog: closed all {} handles; creating works again",
        held.count
    );
    0
}
