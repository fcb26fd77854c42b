//! `init`: the first user program. Its argument names a test or tour to run;
//! it spawns the other programs, checks what they did, and exits with 0 only
//! if every check held. The kernel judges the boot scenario by that code.

#![no_std]
#![no_main]

use kipc::ErrorCode;
use kipc_user::{check, println, spawn, wait};

kipc_user::entry!(main);

fn main(start: kipc_user::Start) -> u32 {
    match start.argument {
        "processes" => processes(),
        "isolation" => isolation(),
        "bad-arguments" => bad_arguments(),
        other => {
            println!("init: unknown test {other:?}");
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
