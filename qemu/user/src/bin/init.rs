//! `init`: the first user program. Its argument names a test or tour to run;
//! it spawns the other programs, checks what they did, and exits with 0 only
//! if every check held. The kernel judges the boot scenario by that code.

#![no_std]
#![no_main]

use kipc::ErrorCode;
use kipc_user::{check, println, spawn, wait};

kipc_user::entry!(main);

/// The tests init knows (the kernel passes the scenario name).
const TESTS: &[&str] = &["processes", "isolation", "bad-arguments", "smoke"];

fn main(start: kipc_user::Start) -> u32 {
    match start.argument {
        "processes" => processes(),
        "isolation" => isolation(),
        "bad-arguments" => bad_arguments(),
        "smoke" => smoke(),
        other => {
            let mut list = kipc_user::Line::new();
            for (index, test) in TESTS.iter().enumerate() {
                let separator = if index == 0 { "" } else { ", " };
                let _ = core::fmt::Write::write_fmt(&mut list, format_args!("{separator}{test}"));
            }
            let list = core::str::from_utf8(list.as_bytes()).unwrap_or("?");
            println!("init: unknown test {other:?}; init knows: {list}");
            2
        }
    }
}

/// Two children run side by side; their exit codes come back through wait.
fn processes() -> u32 {
    let one = spawn("hello", "one 7 3", &[]).expect("spawn hello one");
    let two = spawn("hello", "two 9 3", &[]).expect("spawn hello two");
    check!(one != two, "two children got the same id");
    check!(wait(one) == Ok(7), "child one's exit code");
    check!(wait(two) == Ok(9), "child two's exit code");
    check!(
        wait(one).err() == Some(ErrorCode::NoSuchProcess.into()),
        "a child can be waited for only once"
    );
    check!(
        spawn("no-such-program", "", &[]).err() == Some(ErrorCode::NotFound.into()),
        "spawning an unknown program"
    );
    let stats = kipc_user::kernel_stats().expect("kernel stats");
    check!(
        stats.context_switches >= 4,
        "expected switches between processes, saw {}",
        stats.context_switches
    );
    println!(
        "init: processes ok ({} system calls, {} context switches so far)",
        stats.syscalls, stats.context_switches
    );
    0
}

/// Each faulting child is killed; a well-behaved child runs on undisturbed.
fn isolation() -> u32 {
    let bystander = spawn("hello", "bystander 5 6", &[]).expect("spawn bystander");
    let kinds = [
        "read-kernel",
        "read-direct-map",
        "null",
        "write-rodata",
        "write-text",
        "execute-stack",
        "non-canonical",
        "invalid-opcode",
        "divide",
        "privileged",
        "stack-overflow",
    ];
    for kind in kinds {
        let child = spawn("fault", kind, &[]).expect("spawn fault");
        let code = wait(child).expect("wait fault");
        check!(
            code == kipc_abi::EXIT_KILLED,
            "fault {kind}: child exited with {code} instead of being killed"
        );
    }
    check!(wait(bystander) == Ok(5), "the bystander was disturbed");
    let stats = kipc_user::kernel_stats().expect("kernel stats");
    check!(
        stats.processes_killed >= kinds.len() as u64,
        "kill count {}",
        stats.processes_killed
    );
    println!(
        "init: isolation ok ({} faulting processes killed, bystander unharmed)",
        kinds.len()
    );
    0
}

/// Bad pointers and lengths get errors, never a crash.
fn bad_arguments() -> u32 {
    use kipc_user::{call, number};
    let bad_pointers: [(u64, u64); 6] = [
        (0, 8),                         // null
        (0xffff_ffff_8010_0000, 8),     // kernel image
        (0xffff_8000_0000_0000, 8),     // direct map
        (0x8000_0000_0000_0000, 8),     // non-canonical
        (0x0000_7fff_ffff_fff0, 0x100), // runs off the end of the stack
        (u64::MAX - 4, 16),             // wraps around
    ];
    for (address, length) in bad_pointers {
        let result = call(number::CONSOLE_WRITE, [address, length, 0, 0, 0, 0]);
        check!(
            result.err() == Some(ErrorCode::BadAddress.into()),
            "console write of {address:#x}+{length} gave {result:?}"
        );
        let result = call(number::SPAWN, [address, length, 0, 0, 0, 0]);
        check!(result.is_err(), "spawn with name at {address:#x} succeeded");
        let result = call(
            number::KERNEL_STATS,
            [
                address,
                size_of::<kipc_abi::KernelStats>() as u64,
                0,
                0,
                0,
                0,
            ],
        );
        check!(
            result.err() == Some(ErrorCode::BadAddress.into()),
            "stats to {address:#x} gave {result:?}"
        );
    }
    // The read-only text page cannot receive kernel output.
    let text = main as *const () as u64;
    let result = call(
        number::KERNEL_STATS,
        [text, size_of::<kipc_abi::KernelStats>() as u64, 0, 0, 0, 0],
    );
    check!(
        result.err() == Some(ErrorCode::BadAddress.into()),
        "stats into program text gave {result:?}"
    );
    let result = call(number::CONSOLE_WRITE, [text, 1 << 40, 0, 0, 0, 0]);
    check!(
        result.err() == Some(ErrorCode::InvalidArgument.into()),
        "huge console write gave {result:?}"
    );
    let result = call(9999, [0; 6]);
    check!(
        result.err() == Some(ErrorCode::InvalidArgument.into()),
        "unknown system call gave {result:?}"
    );
    let result = call(number::SPAWN, [b"hello".as_ptr() as u64, 5, 0, 0, 0, 100]);
    check!(
        result.err() == Some(ErrorCode::InvalidArgument.into()),
        "spawn with 100 handles gave {result:?}"
    );
    let result = call(number::WAIT, [12345, 0, 0, 0, 0, 0]);
    check!(
        result.err() == Some(ErrorCode::NoSuchProcess.into()),
        "wait for a stranger gave {result:?}"
    );
    println!("init: bad arguments ok (every bad pointer and length refused)");
    0
}

/// Every kind of kipc object once, inside one process: the plumbing works.
fn smoke() -> u32 {
    use kipc_user::ipc::{self, Deadline};
    let (read, write) = ipc::pipe().expect("pipe");
    check!(
        ipc::write(write, b"hello", Deadline::Forever) == Ok(5),
        "pipe write"
    );
    let mut buffer = [0u8; 16];
    check!(
        ipc::read(read, &mut buffer, Deadline::Forever) == Ok(5),
        "pipe read"
    );
    check!(&buffer[..5] == b"hello", "pipe data");
    check!(
        ipc::read(read, &mut buffer, Deadline::NoWait).err() == Some(ErrorCode::WouldBlock.into()),
        "empty pipe, no wait"
    );
    let mailbox = ipc::mailbox_create().expect("mailbox");
    ipc::send(mailbox, b"ping", &[write], Deadline::Forever).expect("send");
    let message = ipc::receive(mailbox, &mut buffer, Deadline::Forever).expect("receive");
    check!(
        message.length == 4 && &buffer[..4] == b"ping",
        "mailbox data"
    );
    check!(
        message.handle_count == 1,
        "one handle travelled, got {}",
        message.handle_count
    );
    check!(
        ipc::write(message.handles[0], b"xy", Deadline::Forever) == Ok(2),
        "write through the transferred handle"
    );
    let semaphore = ipc::semaphore_create(1).expect("semaphore");
    check!(
        ipc::semaphore_wait(semaphore, Deadline::NoWait).is_ok(),
        "semaphore take"
    );
    check!(
        ipc::semaphore_wait(semaphore, Deadline::after_ms(30)).err()
            == Some(ErrorCode::TimedOut.into()),
        "semaphore deadline"
    );
    let region = ipc::region_create(2).expect("region");
    let address = ipc::region_map(region, None, true).expect("map");
    // SAFETY: the region was just mapped read-write at `address`, 2 pages.
    unsafe { core::ptr::write_volatile(address as *mut u64, 42) };
    let second = ipc::region_map(region, None, false).expect("map again");
    // SAFETY: the same frames, mapped read-only.
    check!(
        unsafe { core::ptr::read_volatile(second as *const u64) } == 42,
        "two mappings, same frames"
    );
    let ledger = ipc::ledger().expect("ledger");
    println!(
        "init: smoke ok; pipe bytes user->kernel {}, kernel->user {}",
        ledger.bytes[0][0], ledger.bytes[0][1]
    );
    0
}
