//! `quota-hog ROLE`: the two sides of init's `quotas` test. Handles at start: a
//! badged send handle to init's inbox, and a notification.
//!
//! * `hog`: takes everything its quotas let it take — objects of every kind, region
//!   mappings, slots of init's inbox — checks that each refusal names the quota (or,
//!   for the inbox, that it is full for this sender), signals the notification and then
//!   waits to be killed, holding all of it.
//! * `polite`: started while the hog holds everything, it creates one object of every
//!   kind, maps a region, moves bytes through a pipe and sends init a message. It
//!   exits 0 only if all of that worked.

#![no_std]
#![no_main]

use kipc::ErrorCode;
use kipc_user::ipc::{self, Deadline, Handle};
use kipc_user::shared::{Access, Shared};
use kipc_user::{check, println};

kipc_user::entry!(main);

fn main(start: kipc_user::Start) -> u32 {
    let &[inbox, ready] = start.handles else {
        println!("quota-hog: expected 2 handles");
        return 2;
    };
    let (inbox, ready) = (Handle(inbox), Handle(ready));
    match start.argument {
        "hog" => hog(inbox, ready),
        "polite" => polite(inbox),
        other => {
            println!("quota-hog: unknown role {other:?}");
            2
        }
    }
}

/// Calls `create` until it fails; requires the failure to be QuotaExceeded; returns
/// how many succeeded.
fn fill<T>(what: &str, mut create: impl FnMut(usize) -> kipc_user::SysResult<T>) -> usize {
    let mut made = 0;
    loop {
        match create(made) {
            Ok(_) => made += 1,
            Err(error) => {
                check!(
                    error == ErrorCode::QuotaExceeded,
                    "{what}: refused with {error:?} after {made}, not QuotaExceeded"
                );
                return made;
            }
        }
        check!(made <= 64, "{what}: no quota stopped the hog");
    }
}

fn name(prefix: &str, index: usize) -> kipc_user::Line {
    kipc_user::Line::format(format_args!("{prefix}-{index}"))
}

fn hog(inbox: Handle, ready: Handle) -> u32 {
    let mailboxes = fill("mailboxes", |_| ipc::mailbox_create());
    let pipes = fill("pipes", |_| ipc::pipe());
    let semaphores = fill("semaphores", |_| ipc::semaphore_create(0));
    let notifications = fill("notifications", |_| ipc::notification_create());
    let queues = fill("queues", |index| {
        ipc::mqueue_create(name("hog-queue", index).as_str(), 2, 16)
    });
    let fifos = fill("FIFOs", |index| {
        ipc::fifo_create(name("hog-fifo", index).as_str())
    });
    let region = ipc::region_create(1).expect("one region for the mappings");
    let mappings = fill("mappings", |_| ipc::region_map(region, None, true));
    let regions = 1 + fill("regions", |_| ipc::region_create(1));
    let mut sent = 0;
    let full = loop {
        match ipc::send(inbox, b"hog", &[], Deadline::NoWait) {
            Ok(()) => sent += 1,
            Err(error) => break error,
        }
        check!(sent <= 8, "init's inbox took more than 8 from the hog");
    };
    check!(
        full == ErrorCode::WouldBlock,
        "the inbox refused the hog with {full:?}"
    );
    println!(
        "quota-hog: holding {mailboxes} mailboxes, {pipes} pipes, {semaphores} semaphores, {notifications} notifications, {queues} queues, {fifos} FIFOs, {regions} regions, {mappings} mappings, {sent} messages in init's inbox; every further one refused"
    );
    ipc::notification_signal(ready, 1).expect("tell init");
    // Hold everything until init kills this process.
    loop {
        kipc_user::sleep_ms(1000);
    }
}

fn polite(inbox: Handle) -> u32 {
    let mailbox = ipc::mailbox_create().expect("mailbox");
    let (read, write) = ipc::pipe().expect("pipe");
    let semaphore = ipc::semaphore_create(1).expect("semaphore");
    let notification = ipc::notification_create().expect("notification");
    let queue = ipc::mqueue_create("polite-queue", 2, 16).expect("queue");
    ipc::fifo_create("polite-fifo").expect("FIFO");
    let region = ipc::region_create(1).expect("region");
    let shared = Shared::map(region, Access::ReadWrite).expect("map");
    shared.set_word(0, 42);
    check!(shared.word(0) == 42, "the mapping works");
    check!(
        ipc::write(write, b"polite", Deadline::NoWait) == Ok(6),
        "pipe write"
    );
    let mut bytes = [0u8; 16];
    check!(
        ipc::read(read, &mut bytes, Deadline::NoWait) == Ok(6) && &bytes[..6] == b"polite",
        "pipe read"
    );
    ipc::send(inbox, b"polite", &[], Deadline::NoWait).expect("send to init");
    shared.unmap().expect("unmap");
    ipc::mqueue_unlink("polite-queue").expect("unlink queue");
    ipc::fifo_unlink("polite-fifo").expect("unlink FIFO");
    for handle in [mailbox, read, write, semaphore, notification, queue, region] {
        ipc::close(handle).expect("close");
    }
    println!(
        "quota-polite: started after the hog, it created one object of every kind, mapped a region, used a pipe and sent to init"
    );
    0
}
