//! `shm-peer ROLE`: the other process of init's `shm` test.
//!
//! * `turns N` — handles: region, my turn, init's turn, mutex (semaphores).
//!   Maps the region init also maps. Phase 1: N times, waits for its turn,
//!   adds 1 to word 0 (always seeing an odd value: init went first), passes
//!   the turn back. Phase 2: N times, takes the mutex, adds 1 to word 1 with
//!   a yield between read and write, releases it — lost updates would show.
//! * `read-only VALUE` — handle: a duplicate of the region without WRITE.
//!   Cannot map it writable; maps it read-only, sees VALUE, then writes to
//!   it and is killed by the page fault.
//! * `borrower` — handle: a mailbox. Receives a message carrying a loaned
//!   region of 2 pages, maps it and checks every byte in place.

#![no_std]
#![no_main]

use kipc::ErrorCode;
use kipc_user::ipc::{self, Deadline, Handle};
use kipc_user::shared::{Access, Shared};
use kipc_user::{check, println};

kipc_user::entry!(main);

fn main(start: kipc_user::Start) -> u32 {
    let mut words = start.argument.split_ascii_whitespace();
    let role = words.next().unwrap_or("");
    let number: u64 = words.next().and_then(|w| w.parse().ok()).unwrap_or(0);
    let handles: &[u32] = start.handles;
    match (role, handles) {
        ("turns", &[region, mine, theirs, mutex]) => turns(
            Handle(region),
            Handle(mine),
            Handle(theirs),
            Handle(mutex),
            number,
        ),
        ("read-only", &[region]) => read_only(Handle(region), number),
        ("borrower", &[mailbox]) => borrower(Handle(mailbox)),
        ("hold", &[region]) => hold(Handle(region), number),
        (other, handles) => {
            println!(
                "shm-peer: unknown role {other:?} with {} handles",
                handles.len()
            );
            2
        }
    }
}

fn turns(region: Handle, mine: Handle, theirs: Handle, mutex: Handle, rounds: u64) -> u32 {
    let shared = Shared::map(region, Access::ReadWrite).expect("map the shared region");
    for round in 0..rounds {
        check!(
            ipc::semaphore_wait(mine, Deadline::Forever).is_ok(),
            "wait for my turn"
        );
        // The turn semaphores make this process the only writer right now.
        let value = shared.word(0);
        check!(
            value == 2 * round + 1,
            "round {round}: saw {value}, expected {} (turns were not kept)",
            2 * round + 1
        );
        shared.set_word(0, value + 1);
        check!(ipc::semaphore_post(theirs).is_ok(), "pass the turn");
    }
    for _ in 0..rounds {
        check!(
            ipc::semaphore_wait(mutex, Deadline::Forever).is_ok(),
            "take the mutex"
        );
        // Word 1 is guarded by the mutex.
        let value = shared.word(1);
        kipc_user::yield_now();
        shared.set_word(1, value + 1);
        check!(ipc::semaphore_post(mutex).is_ok(), "release the mutex");
    }
    check!(shared.unmap().is_ok(), "unmap");
    0
}

fn read_only(region: Handle, expected: u64) -> u32 {
    let result = ipc::region_map(region, None, true);
    check!(
        result.err() == Some(ErrorCode::PermissionDenied.into()),
        "mapping a handle without WRITE read-write gave {result:?}"
    );
    let shared = Shared::map(region, Access::ReadOnly).expect("map read-only");
    let address = shared.address();
    let value = shared.word(0);
    check!(value == expected, "read-only mapping sees {value}");
    println!("shm-peer: read-only mapping at {address:#x} sees {value}; now writing to it");
    // SAFETY: not sound on purpose (the typed view would refuse): the page is
    // read-only, so this raw write faults and the kernel kills this process.
    unsafe { (address as *mut u64).write_volatile(0xbad) };
    println!("shm-peer: wrote through a read-only mapping!");
    0
}

/// Maps `region` read-only, checks word 0, and exits while still holding the
/// mapping (the kernel must undo it, and the region's owner loses nothing).
fn hold(region: Handle, expected: u64) -> u32 {
    let shared = Shared::map(region, Access::ReadOnly).expect("map read-only");
    let value = shared.word(0);
    check!(value == expected, "the held mapping sees {value}");
    println!(
        "shm-peer: holding a read-only mapping at {:#x} as it exits",
        shared.address()
    );
    0
}

/// Byte `index` of the loaned pages (init fills them with the same).
fn loan_pattern(index: usize) -> u8 {
    ((index as u32).wrapping_mul(2_246_822_519) >> 24) as u8
}

fn borrower(mailbox: Handle) -> u32 {
    let mut buffer = [0u8; 16];
    let message = ipc::receive(mailbox, &mut buffer, Deadline::Forever).expect("receive");
    check!(
        message.handle_count == 1 && &buffer[..message.length] == b"loan",
        "expected a loan message with one handle"
    );
    let region = message.handles[0];
    let pages = ipc::region_pages(region).expect("region pages");
    check!(pages == 2, "the loan holds {pages} pages");
    let address = ipc::region_map(region, None, false).expect("map the loan");
    // SAFETY: `pages` pages mapped read-only at `address`.
    let bytes = unsafe { core::slice::from_raw_parts(address as *const u8, pages * 4096) };
    for (index, &byte) in bytes.iter().enumerate() {
        check!(
            byte == loan_pattern(index),
            "loaned byte {index} is {byte:#x}, expected {:#x}",
            loan_pattern(index)
        );
    }
    println!(
        "shm-peer: borrowed {pages} pages at {address:#x}, {} bytes verified in place",
        bytes.len()
    );
    check!(ipc::region_unmap(address).is_ok(), "unmap");
    check!(ipc::close(region).is_ok(), "close");
    0
}
