//! `init`: the first user program. Its argument names a test or tour to run;
//! it spawns the other programs, checks what they did, and exits with 0 only
//! if every check held. The kernel judges the boot scenario by that code.

#![no_std]
#![no_main]

use kipc::{ErrorCode, Rights};
use kipc_user::ipc::{self, Deadline, Handle};
use kipc_user::shared::{Access, Shared};
use kipc_user::{Line, ProcessId, check, println, spawn, wait};

kipc_user::entry!(main);

/// The tests init knows (the kernel passes the scenario name).
const TESTS: &[&str] = &[
    "processes",
    "isolation",
    "bad-arguments",
    "smoke",
    "pipe",
    "fifo",
    "mqueue",
    "mailbox",
    "shm",
    "notification",
    "peer-death",
    "handle-exhaustion",
    "reply-receive",
    "short-messages",
    "quotas",
    "file-loan",
    "out-of-frames",
    "self-deadlock",
];

fn main(start: kipc_user::Start) -> u32 {
    // `demo ...`: what `cargo run` shows; the rest of the argument (the
    // kernel command line) goes to the demo program.
    if let Some(rest) = (start.argument == "demo")
        .then_some("")
        .or_else(|| start.argument.strip_prefix("demo "))
    {
        let demo = spawn("demo", rest, &[]).expect("spawn demo");
        return wait(demo).unwrap_or(1);
    }
    match start.argument {
        "processes" => processes(),
        "isolation" => isolation(),
        "bad-arguments" => bad_arguments(),
        "smoke" => smoke(),
        "pipe" => pipe(),
        "fifo" => fifo(),
        "mqueue" => mqueue(),
        "mailbox" => mailbox(),
        "shm" => shm(),
        "notification" => notification(),
        "peer-death" => peer_death(),
        "handle-exhaustion" => handle_exhaustion(),
        "reply-receive" => reply_receive(),
        "short-messages" => short_messages(),
        "quotas" => quotas(),
        "file-loan" => file_loan(),
        "out-of-frames" => out_of_frames(),
        "self-deadlock" => self_deadlock(),
        other => {
            let mut list = kipc_user::Line::new();
            for (index, test) in TESTS.iter().enumerate() {
                let separator = if index == 0 { "" } else { ", " };
                let _ = core::fmt::Write::write_fmt(&mut list, format_args!("{separator}{test}"));
            }
            let list = list.as_str();
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
    // An address that is valid here is not valid in another process: the
    // snoop reads where init mapped a region and is killed for it.
    let region = ipc::region_create(1).expect("region");
    let address = ipc::region_map(region, None, true).expect("map");
    let secret = address as *mut u64;
    // SAFETY: one page mapped read-write at `address`.
    unsafe { secret.write_volatile(0x5ec2_e7da_7a00_0001) };
    let argument = text(format_args!("{address:#x}"));
    println!("init: isolation: snoop will read {address:#x}, mapped in init only");
    let snoop = launch("snoop", argument.as_str(), &[]);
    check!(
        wait(snoop) == Ok(kipc_abi::EXIT_KILLED),
        "the snoop was not killed reading another process's address"
    );
    // SAFETY: as above.
    let value = unsafe { secret.read_volatile() };
    check!(
        value == 0x5ec2_e7da_7a00_0001,
        "the secret changed: {value:#x}"
    );
    check!(ipc::region_unmap(address).is_ok(), "unmap");
    close(region);
    check!(wait(bystander) == Ok(5), "the bystander was disturbed");
    let stats = kipc_user::kernel_stats().expect("kernel stats");
    let killed = kinds.len() as u64 + 1;
    check!(
        stats.processes_killed >= killed,
        "kill count {}",
        stats.processes_killed
    );
    println!("init: isolation ok ({killed} faulting processes killed, bystander unharmed)");
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
    ipc_and_file_arguments(&bad_pointers);
    println!("init: bad arguments ok (every bad pointer, length and handle refused, nothing lost)");
    0
}

/// Bad pointers and handles on the IPC and file calls: each gets its error, and
/// a failed call changes nothing (data stays where it was).
fn ipc_and_file_arguments(bad_pointers: &[(u64, u64)]) {
    use kipc_user::{call, call2, number};
    let bad_address = Some(ErrorCode::BadAddress.into());
    let (read, write) = ipc::pipe().expect("pipe");
    let mailbox = ipc::mailbox_create().expect("mailbox");
    let queue = ipc::mqueue_create("bad-args", 4, 64).expect("queue");
    let file = kipc_user::file::create("bad-args").expect("file");
    check!(
        ipc::write(write, b"keep", Deadline::NoWait) == Ok(4),
        "pipe write"
    );
    ipc::send(mailbox, b"kept", &[], Deadline::NoWait).expect("send");
    ipc::mqueue_send(queue, b"kept", 1, Deadline::NoWait).expect("queue send");
    let mut array = kipc_abi::HandleArray::default();
    let array_pointer = (&raw mut array) as u64;
    for &(address, length) in bad_pointers {
        let length = length.max(4);
        let checks: [(&str, u64, [u64; 6]); 12] = [
            (
                "pipe_write",
                number::PIPE_WRITE,
                [u64::from(write.0), address, length, 0, 0, 0],
            ),
            (
                "pipe_read",
                number::PIPE_READ,
                [u64::from(read.0), address, length, 0, 0, 0],
            ),
            (
                "mailbox_send",
                number::MAILBOX_SEND,
                [u64::from(mailbox.0), address, length, 0, 0, 0],
            ),
            (
                "mailbox_receive",
                number::MAILBOX_RECEIVE,
                [u64::from(mailbox.0), address, length, array_pointer, 0, 0],
            ),
            (
                "mailbox_receive array",
                number::MAILBOX_RECEIVE,
                [u64::from(mailbox.0), array_pointer, 64, address, 0, 0],
            ),
            (
                "mqueue_send",
                number::MQUEUE_SEND,
                [u64::from(queue.0), address, length, 1, 0, 0],
            ),
            (
                "mqueue_receive",
                number::MQUEUE_RECEIVE,
                [u64::from(queue.0), address, 64, 0, 0, 0],
            ),
            (
                "fifo_create",
                number::FIFO_CREATE,
                [address, length.min(8), 0, 0, 0, 0],
            ),
            (
                "file_open",
                number::FILE_OPEN,
                [address, length.min(8), 1, 0, 0, 0],
            ),
            (
                "file_write",
                number::FILE_WRITE,
                [file.0, address, length, 0, 0, 0],
            ),
            (
                "ledger_read",
                number::LEDGER_READ,
                [
                    address,
                    size_of::<kipc_abi::LedgerRecord>() as u64,
                    kipc_abi::LEDGER_GLOBAL,
                    0,
                    0,
                    0,
                ],
            ),
            (
                "resource_usage",
                number::RESOURCE_USAGE,
                [
                    address,
                    size_of::<kipc_abi::ResourceUsage>() as u64,
                    0,
                    0,
                    0,
                    0,
                ],
            ),
        ];
        for (name, number, arguments) in checks {
            let result = call(number, arguments);
            // A missing handle array (address 0) is refused as an argument.
            let expected = if name.ends_with("array") && address == 0 {
                Some(ErrorCode::InvalidArgument.into())
            } else {
                bad_address
            };
            check!(
                result.err() == expected,
                "{name} with {address:#x}+{length} gave {result:?}"
            );
        }
    }
    // Nothing was lost or half-done by the failed calls.
    let mut buffer = [0u8; 64];
    check!(
        ipc::read(read, &mut buffer, Deadline::NoWait) == Ok(4),
        "pipe lost its bytes"
    );
    check!(&buffer[..4] == b"keep", "pipe bytes changed");
    let message = ipc::receive(mailbox, &mut buffer, Deadline::NoWait).expect("message kept");
    check!(
        message.length == 4 && &buffer[..4] == b"kept",
        "mailbox message changed"
    );
    check!(
        ipc::receive(mailbox, &mut buffer, Deadline::NoWait).err()
            == Some(ErrorCode::WouldBlock.into()),
        "a failed send queued something"
    );
    let mut large = [0u8; 64];
    check!(
        ipc::mqueue_receive(queue, &mut large, Deadline::NoWait) == Ok((4, 1)),
        "queue message lost"
    );
    check!(file.size() == Ok(0), "a failed file write changed the file");
    // Handles: never issued, closed (stale), and of the wrong kind.
    let semaphore = ipc::semaphore_create(0).expect("semaphore");
    ipc::close(semaphore).expect("close");
    for (raw, expected) in [
        (0u64, ErrorCode::BadHandle),
        (u64::from(u32::MAX), ErrorCode::BadHandle),
        (1 << 40, ErrorCode::BadHandle),
        (u64::from(semaphore.0), ErrorCode::StaleHandle),
        (u64::from(mailbox.0), ErrorCode::WrongObjectKind),
    ] {
        let result = call(number::PIPE_WRITE, [raw, b"x".as_ptr() as u64, 1, 0, 0, 0]);
        check!(
            result.err() == Some(expected.into()),
            "pipe_write on handle {raw:#x} gave {result:?}"
        );
    }
    // Rights: the read end cannot write, a duplicate cannot gain rights.
    let result = call(
        number::PIPE_WRITE,
        [u64::from(read.0), b"x".as_ptr() as u64, 1, 0, 0, 0],
    );
    check!(
        result.err() == Some(ErrorCode::PermissionDenied.into()),
        "write on a read end gave {result:?}"
    );
    let result = call2(
        number::HANDLE_DUPLICATE,
        [
            u64::from(read.0),
            u64::from(kipc::Rights::all().bits()),
            0,
            0,
            0,
            0,
        ],
    );
    check!(result.is_err(), "a duplicate gained rights: {result:?}");
    let result = call(
        number::HANDLE_DUPLICATE,
        [u64::from(read.0), 1 << 40, 0, 0, 0, 0],
    );
    check!(
        result.err() == Some(ErrorCode::InvalidArgument.into()),
        "rights beyond 32 bits gave {result:?}"
    );
    for handle in [read, write, mailbox, queue] {
        ipc::close(handle).expect("close");
    }
    ipc::mqueue_unlink("bad-args").expect("unlink queue");
    file.close().expect("close file");
    kipc_user::file::unlink("bad-args").expect("unlink file");
}

/// Every kind of kipc object once, inside one process: the plumbing works.
fn smoke() -> u32 {
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

// ----- helpers for the two-process tests -----

/// Formatted text in a stack buffer (for spawn arguments).
struct Text(Line);

impl Text {
    fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

fn text(arguments: core::fmt::Arguments) -> Text {
    let mut line = Line::new();
    let _ = core::fmt::Write::write_fmt(&mut line, arguments);
    Text(line)
}

/// MUST FAIL: init calls a mailbox only it can receive from, and waits for a
/// reply that can never come. The kernel must report the deadlock, not idle.
fn self_deadlock() -> u32 {
    let mailbox = ipc::mailbox_create().expect("mailbox");
    let mut reply = [0u8; 8];
    let result = ipc::call_mailbox(mailbox, b"anyone?", &[], &mut reply);
    println!("init: self-deadlock: the call returned {result:?}");
    1
}

/// Physical memory runs out (boot with little memory): a region that needs
/// more frames than are left fails with OutOfFrames and takes none; once
/// files give their frames back, the same call works.
fn out_of_frames() -> u32 {
    const REGION: usize = 64;
    let free = || kipc_user::resource_usage().expect("usage").free_frames;
    // Ballast: files that leave fewer free frames than the region needs.
    let mut files = 0;
    while free() > REGION as u64 / 2 && files < 6 {
        let pages = (free() - REGION as u64 / 2).min(2048);
        let name = text(format_args!("ballast-{files}"));
        match kipc_user::file::generate(name.as_str(), pages * 4096, files) {
            Ok(_) => files += 1,
            Err(error) if error == ErrorCode::OutOfFrames => break,
            Err(error) => check!(false, "generate ballast: {error:?}"),
        }
    }
    let before = free();
    check!(
        before < REGION as u64,
        "still {before} frames free after {files} ballast files: boot with less memory"
    );
    let result = ipc::region_create(REGION);
    check!(
        failed_with(&result, ErrorCode::OutOfFrames),
        "a {REGION}-page region with {before} frames free gave {result:?}"
    );
    check!(free() == before, "the failed region kept frames");
    for index in 0..files {
        let name = text(format_args!("ballast-{index}"));
        kipc_user::file::unlink(name.as_str()).expect("unlink ballast");
    }
    let region = ipc::region_create(REGION).expect("a region once frames are back");
    close(region);
    println!(
        "init: out-of-frames: with {before} frames free a {REGION}-page region failed with OutOfFrames and took none; after {files} ballast files went, it worked"
    );
    0
}

/// A file's pages, lent to this process and loaned on to others: nobody they
/// reach can change the file, and borrowers dying mid-loan leave it intact.
fn file_loan() -> u32 {
    const PAGES: usize = 3;
    let size = (PAGES * 4096) as u64;
    let generated = kipc_user::file::generate("loaned", size, 7).expect("generate");
    let file = kipc_user::file::open("loaned", 0).expect("open");
    check!(file.checksum() == Ok(generated), "checksum after generate");
    let address = file.lend(0, PAGES).expect("lend");
    // SAFETY: `lend` mapped PAGES pages read-only at `address`.
    let first = unsafe { (address as *const u64).read_volatile() };
    let loan = ipc::pages_loan(address, PAGES).expect("loan the lent pages on");
    let (_, rights, _) = ipc::info(loan).expect("info");
    check!(
        !rights.contains(Rights::WRITE),
        "a loan of read-only file pages carries WRITE: {rights:?}"
    );
    // A borrower that tries to write is refused a writable mapping, then killed
    // by its write through the read-only one, mid-loan.
    let argument = text(format_args!("read-only {first}"));
    let writer = launch("shm-peer", argument.as_str(), &[loan]);
    expect_exit(
        writer,
        kipc_abi::EXIT_KILLED,
        "shm-peer read-only on file pages",
    );
    // A borrower that exits still holding its mapping.
    let argument = text(format_args!("hold {first}"));
    let holder = launch("shm-peer", argument.as_str(), &[loan]);
    expect_exit(holder, 0, "shm-peer hold");
    check!(
        file.checksum() == Ok(generated),
        "the file changed while its pages were on loan"
    );
    close(loan);
    check!(
        file.checksum() == Ok(generated),
        "the file changed when the loan ended"
    );
    file.close().expect("close");
    kipc_user::file::unlink("loaned").expect("unlink");
    println!(
        "init: file-loan: {PAGES} file pages loaned on read-only; a borrower's write was refused (PermissionDenied) then killed it, another exited holding its mapping; the file's checksum never changed"
    );
    0
}

/// A hog takes everything its quotas allow; a process started after it still
/// gets every kind of object, a mapping and room in a shared mailbox.
fn quotas() -> u32 {
    let inbox = ipc::mailbox_create().expect("inbox");
    let ready = ipc::notification_create().expect("notification");
    let hog_send = ipc::mailbox_mint(inbox, Rights::WRITE | Rights::TRANSFER, 1).expect("mint");
    let polite_send = ipc::mailbox_mint(inbox, Rights::WRITE | Rights::TRANSFER, 2).expect("mint");
    let hog = launch("quota-hog", "hog", &[hog_send, ready]);
    check!(
        ipc::notification_wait(ready, Deadline::Forever) == Ok(1),
        "the hog never said it was done"
    );
    let polite = launch("quota-hog", "polite", &[polite_send, ready]);
    expect_exit(polite, 0, "quota-polite");
    let mut buffer = [0u8; 16];
    let (mut from_hog, mut from_polite) = (0, 0);
    while let Ok(message) = ipc::receive(inbox, &mut buffer, Deadline::NoWait) {
        match (message.badge, &buffer[..message.length]) {
            (1, b"hog") => from_hog += 1,
            (2, b"polite") => from_polite += 1,
            (badge, _) => check!(false, "unexpected message with badge {badge}"),
        }
    }
    check!(
        from_hog == kipc_abi::BUFFERED_PER_SENDER && from_polite == 1,
        "inbox held {from_hog} from the hog, {from_polite} from the polite process"
    );
    check!(kipc_user::kill(hog).is_ok(), "kill the hog");
    check!(
        wait(hog) == Ok(kipc_abi::EXIT_KILLED),
        "the hog's exit code"
    );
    // Its names outlive it (POSIX); unlink them so nothing is left.
    for index in 0..8 {
        let queue = text(format_args!("hog-queue-{index}"));
        let fifo = text(format_args!("hog-fifo-{index}"));
        let _ = ipc::mqueue_unlink(queue.as_str());
        let _ = ipc::fifo_unlink(fifo.as_str());
    }
    for handle in [inbox, ready, hog_send, polite_send] {
        close(handle);
    }
    println!(
        "init: quotas: the inbox held {from_hog} messages from the hog and 1 from the process started after it; the hog was killed holding everything and all of it came back"
    );
    0
}

/// Starts `program`, giving it copies of `handles`, or fails the test.
fn launch(program: &str, argument: &str, handles: &[Handle]) -> ProcessId {
    let mut raw = [0u32; 8];
    for (slot, handle) in raw.iter_mut().zip(handles) {
        *slot = handle.0;
    }
    match spawn(program, argument, &raw[..handles.len()]) {
        Ok(child) => child,
        Err(error) => {
            println!("CHECK FAILED: spawn {program} {argument:?}: {error:?}");
            kipc_user::exit(1)
        }
    }
}

/// Waits for `child` and requires exit code `expected`.
fn expect_exit(child: ProcessId, expected: u32, what: &str) {
    let code = wait(child);
    check!(
        code == Ok(expected),
        "{what}: exit code {code:?}, expected {expected:#x}"
    );
}

/// Closes a handle this test no longer needs.
fn close(handle: Handle) {
    let result = ipc::close(handle);
    check!(result.is_ok(), "close {handle:?}: {result:?}");
}

/// True if `result` failed with `code`.
fn failed_with<T>(result: &kipc_user::SysResult<T>, code: ErrorCode) -> bool {
    matches!(result, Err(error) if *error == code)
}

/// Byte `index` of the test streams (the writers use the same function): a
/// multiplicative hash, so offsets one ring apart differ.
fn pattern(index: usize) -> u8 {
    ((index as u32).wrapping_mul(2_654_435_761) >> 24) as u8
}

const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a over `bytes`, continuing from `hash`.
fn fnv1a(mut hash: u64, bytes: &[u8]) -> u64 {
    for &byte in bytes {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

// ----- pipe -----

/// What `pipe-writer` sends first, in order.
const PIPE_MESSAGES: [&[u8]; 4] = [
    b"ping",
    b"a pipe is a byte stream through a ring buffer",
    b"x",
    b"0123456789abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ",
];
/// Least bytes in `pipe-writer`'s stream (four rings' worth if that is more).
const PIPE_STREAM_BYTES: usize = 64 * 1024;

/// The kernel's pipe capacity (measured: a kernel build may choose it).
fn pipe_capacity() -> usize {
    ipc::pipe_capacity().expect("measure the pipe capacity")
}

/// A pipe between two processes: small messages byte for byte, then a
/// stream of at least four times the ring (both sides wait), a checksum,
/// end of file.
fn pipe() -> u32 {
    let capacity = pipe_capacity();
    let stream_bytes = PIPE_STREAM_BYTES.max(4 * capacity);
    let (read, write) = ipc::pipe().expect("pipe");
    let argument = text(format_args!("{stream_bytes}"));
    let writer = launch("pipe-writer", argument.as_str(), &[write]);
    // The writer has its own copy of the write end. Ours must go, or this
    // process would be a writer too and never see end of file.
    close(write);

    let mut buffer = [0u8; 128];
    for expected in PIPE_MESSAGES {
        let got = ipc::read_full(read, &mut buffer[..expected.len()]);
        check!(
            got == Ok(expected.len()) && &buffer[..expected.len()] == expected,
            "small message {:?}: got {got:?} {:?}",
            core::str::from_utf8(expected),
            core::str::from_utf8(&buffer[..expected.len()])
        );
    }
    println!(
        "init: pipe: {} small messages arrived byte for byte",
        PIPE_MESSAGES.len()
    );

    // Start late, so the writer finds the ring full and has to wait.
    kipc_user::sleep_ms(30);
    let mut chunk = [0u8; 1000];
    let mut offset = 0;
    let mut hash = FNV_START;
    let mut empty_waits = 0;
    while offset < stream_bytes {
        let wanted = chunk.len().min(stream_bytes - offset);
        let got = match ipc::read(read, &mut chunk[..wanted], Deadline::NoWait) {
            Err(error) if error == ErrorCode::WouldBlock => {
                empty_waits += 1;
                ipc::read(read, &mut chunk[..wanted], Deadline::Forever)
            }
            other => other,
        };
        let Ok(got @ 1..) = got else {
            println!("CHECK FAILED: stream read at {offset} gave {got:?}");
            return 1;
        };
        for (index, &byte) in chunk[..got].iter().enumerate() {
            check!(
                byte == pattern(offset + index),
                "stream byte {} is {byte:#x}, expected {:#x}",
                offset + index,
                pattern(offset + index)
            );
        }
        hash = fnv1a(hash, &chunk[..got]);
        offset += got;
    }
    let mut trailer = [0u8; 8];
    check!(
        ipc::read_full(read, &mut trailer) == Ok(8),
        "the checksum after the stream"
    );
    let writers_hash = u64::from_le_bytes(trailer);
    check!(
        writers_hash == hash,
        "checksums differ: writer {writers_hash:#018x}, reader {hash:#018x}"
    );
    check!(
        empty_waits > 0,
        "the reader never found the pipe empty (the writer paused halfway)"
    );
    let end = ipc::read(read, &mut chunk, Deadline::Forever);
    check!(
        end == Ok(0),
        "after the writer exits, read gives {end:?}, not end of file"
    );
    expect_exit(writer, 0, "pipe-writer");
    close(read);
    println!(
        "init: pipe: {stream_bytes} bytes byte-exact through a {capacity}-byte ring, checksum {hash:#018x}; reader found the pipe empty {empty_waits} times; end of file after the writer exited"
    );
    0
}

// ----- FIFO -----

const FIFO_NAME: &str = "lab-fifo";
/// What `fifo-peer writer` sends: these lines, then a block of `i % 251`.
const FIFO_LINES: [&[u8]; 3] = [
    b"hello through a named pipe\n",
    b"second line\n",
    b"third and last line\n",
];
const FIFO_BLOCK: usize = 40_000;

/// Two programs meet at a FIFO by name; each blocking open waits for the
/// other side.
fn fifo() -> u32 {
    check!(ipc::fifo_create(FIFO_NAME).is_ok(), "fifo_create");
    check!(
        failed_with(&ipc::fifo_create(FIFO_NAME), ErrorCode::AlreadyExists),
        "creating the name twice"
    );
    check!(
        failed_with(
            &ipc::fifo_open(FIFO_NAME, true, Deadline::NoWait),
            ErrorCode::NoReader
        ),
        "non-blocking write open with no reader"
    );

    // Round 1: the writer opens first and waits for this reader.
    let writer = launch("fifo-peer", "writer lab-fifo", &[]);
    kipc_user::sleep_ms(50);
    let fifo = ipc::fifo_open(FIFO_NAME, false, Deadline::Forever).expect("read open");
    let mut buffer = [0u8; 64];
    for expected in FIFO_LINES {
        let got = ipc::read_full(fifo, &mut buffer[..expected.len()]);
        check!(
            got == Ok(expected.len()) && &buffer[..expected.len()] == expected,
            "line {:?}: got {:?}",
            core::str::from_utf8(expected),
            core::str::from_utf8(&buffer[..expected.len()])
        );
    }
    let mut received = 0;
    while received < FIFO_BLOCK {
        let wanted = buffer.len().min(FIFO_BLOCK - received);
        let got = ipc::read(fifo, &mut buffer[..wanted], Deadline::Forever);
        let Ok(got @ 1..) = got else {
            println!("CHECK FAILED: block read at {received} gave {got:?}");
            return 1;
        };
        for (index, &byte) in buffer[..got].iter().enumerate() {
            check!(
                byte == ((received + index) % 251) as u8,
                "block byte {} is {byte}",
                received + index
            );
        }
        received += got;
    }
    check!(
        ipc::read(fifo, &mut buffer, Deadline::Forever) == Ok(0),
        "end of file after the writer closed"
    );
    expect_exit(writer, 0, "fifo-peer writer");
    close(fifo);
    println!(
        "init: fifo: {} lines and a {FIFO_BLOCK}-byte block arrived intact by name; end of file",
        FIFO_LINES.len()
    );

    // Round 2: this reader opens first and waits for a late writer.
    let late = launch("fifo-peer", "late-writer lab-fifo", &[]);
    let before = kipc_user::uptime_ms();
    let fifo = ipc::fifo_open(FIFO_NAME, false, Deadline::Forever).expect("read open");
    let waited = kipc_user::uptime_ms() - before;
    check!(
        waited >= 20,
        "the blocking read open returned after {waited} ms, before the writer came"
    );
    let got = ipc::read_full(fifo, &mut buffer);
    check!(
        got == Ok(13) && &buffer[..13] == b"late but here",
        "late writer's data: {got:?}"
    );
    expect_exit(late, 0, "fifo-peer late-writer");
    close(fifo);
    println!("init: fifo: read open waited {waited} ms for the late writer");

    check!(ipc::fifo_unlink(FIFO_NAME).is_ok(), "unlink");
    check!(
        failed_with(
            &ipc::fifo_open(FIFO_NAME, false, Deadline::NoWait),
            ErrorCode::NotFound
        ),
        "open after unlink"
    );
    check!(
        failed_with(&ipc::fifo_unlink(FIFO_NAME), ErrorCode::NotFound),
        "unlink twice"
    );
    println!(
        "init: fifo: write open without a reader gave NoReader; after unlink the name is gone"
    );
    0
}

// ----- message queue -----

const QUEUE_NAME: &str = "lab-queue";
const QUEUE_SIZE: usize = 64;
/// Messages in the stream (six times the queue's depth of 8).
const QUEUE_STREAM: u32 = 48;

/// Message `sequence` of the queue stream (`mq-peer` checks the same).
fn queue_message(sequence: u32) -> [u8; QUEUE_SIZE] {
    let mut message = [0u8; QUEUE_SIZE];
    message[..4].copy_from_slice(&sequence.to_le_bytes());
    for (index, byte) in message[4..].iter_mut().enumerate() {
        *byte = (sequence as usize * 31 + index) as u8;
    }
    message
}

/// A queue created here, opened by name in other processes: priority
/// order, limits, deadlines, and a stream that blocks both sides.
fn mqueue() -> u32 {
    let queue = ipc::mqueue_create(QUEUE_NAME, 8, QUEUE_SIZE).expect("mqueue_create");
    let sender = launch("mq-peer", "send lab-queue", &[]);
    // All six messages are queued before this process receives one.
    expect_exit(sender, 0, "mq-peer send");
    let attributes = ipc::mqueue_attributes(queue);
    check!(
        attributes == Ok((8, QUEUE_SIZE, 6)),
        "attributes {attributes:?}"
    );
    let mut small = [0u8; 16];
    check!(
        failed_with(
            &ipc::mqueue_receive(queue, &mut small, Deadline::NoWait),
            ErrorCode::BufferTooSmall
        ),
        "a buffer shorter than the size limit"
    );

    let expected: [(u8, &str); 6] = [
        (5, "high-a"),
        (5, "high-b"),
        (3, "mid-a"),
        (3, "mid-b"),
        (1, "low-a"),
        (1, "low-b"),
    ];
    let mut buffer = [0u8; QUEUE_SIZE];
    let mut order = Line::new();
    for (priority, message) in expected {
        let got = ipc::mqueue_receive(queue, &mut buffer, Deadline::NoWait);
        let Ok((length, got_priority)) = got else {
            println!("CHECK FAILED: receive gave {got:?}");
            return 1;
        };
        let got_text = core::str::from_utf8(&buffer[..length]).unwrap_or("?");
        check!(
            got_priority == priority && got_text == message,
            "received {got_priority}:{got_text}, expected {priority}:{message}"
        );
        let _ = core::fmt::Write::write_fmt(&mut order, format_args!(" {priority}:{message}"));
    }
    println!("init: mqueue: received in order{}", order.as_str());

    check!(
        failed_with(
            &ipc::mqueue_receive(queue, &mut buffer, Deadline::NoWait),
            ErrorCode::WouldBlock
        ),
        "empty queue, no wait"
    );
    let before = kipc_user::uptime_ms();
    let timed = ipc::mqueue_receive(queue, &mut buffer, Deadline::after_ms(30));
    let waited = kipc_user::uptime_ms() - before;
    check!(
        failed_with(&timed, ErrorCode::TimedOut) && waited >= 20,
        "empty queue with a 30 ms deadline: {timed:?} after {waited} ms"
    );
    println!("init: mqueue: empty queue gave WouldBlock, then TimedOut after {waited} ms");

    // A stream to a receiver that starts late and later finds it empty.
    let receiver = launch("mq-peer", "receive lab-queue 48", &[]);
    let mut full_waits = 0;
    for sequence in 0..QUEUE_STREAM {
        if sequence == QUEUE_STREAM / 2 {
            kipc_user::sleep_ms(30);
        }
        let message = queue_message(sequence);
        let sent = match ipc::mqueue_send(queue, &message, 7, Deadline::NoWait) {
            Err(error) if error == ErrorCode::WouldBlock => {
                full_waits += 1;
                ipc::mqueue_send(queue, &message, 7, Deadline::Forever)
            }
            other => other,
        };
        check!(sent.is_ok(), "stream send {sequence}: {sent:?}");
    }
    expect_exit(receiver, 0, "mq-peer receive");
    check!(full_waits > 0, "the 8-deep queue never filled");
    check!(ipc::mqueue_unlink(QUEUE_NAME).is_ok(), "unlink");
    check!(
        failed_with(&ipc::mqueue_open(QUEUE_NAME), ErrorCode::NotFound),
        "open after unlink"
    );
    close(queue);
    println!(
        "init: mqueue: streamed {QUEUE_STREAM} messages through an 8-deep queue, waited for room {full_waits} times"
    );
    0
}

// ----- mailbox -----

/// What `mail-peer server` writes through the pipe end it is sent.
const SERVER_PIPE_LINE: &[u8] = b"written by the server through a pipe end that came in a message";
/// What `mail-peer server` leaves in the region it replies with.
const SERVER_REGION_LINE: &[u8] = b"a region made by the server, handed over in its reply";
const MAIL_STREAM: u32 = 40;
const MAIL_SIZE: usize = 200;

/// Message `sequence` of the mailbox stream (`mail-peer` sends the same).
fn mail_message(sequence: u32) -> [u8; MAIL_SIZE] {
    let mut message = [0u8; MAIL_SIZE];
    message[..4].copy_from_slice(&sequence.to_le_bytes());
    for (index, byte) in message[4..].iter_mut().enumerate() {
        *byte = (sequence as usize * 7 + index * 3) as u8;
    }
    message
}

/// A server answering and waiting in one system call (`rpc-server`): every
/// call gets its own answer, a call carrying a handle delivers it, and the
/// server's copies are exactly a reply's and a receive's.
fn reply_receive() -> u32 {
    const CALLS: u32 = 20;
    let service = ipc::mailbox_create().expect("mailbox");
    let client = ipc::mailbox_mint(service, Rights::WRITE | Rights::TRANSFER, 0x77).expect("mint");
    let server = launch("rpc-server", "", &[service]);
    close(service);
    let mut answer = [0u8; 64];
    let mut request = *b"call 00 from init";
    for call in 0..CALLS {
        request[5] = b'0' + (call / 10) as u8;
        request[6] = b'0' + (call % 10) as u8;
        let reply = ipc::call_mailbox(client, &request, &[], &mut answer).expect("call");
        let mut expected = request;
        expected.make_ascii_uppercase();
        check!(
            &answer[..reply.length] == expected.as_slice() && reply.handle_count == 0,
            "answer {call}: {:?}",
            core::str::from_utf8(&answer[..reply.length])
        );
    }
    // A call with a handle: it reaches the server through the handle array.
    let semaphore = ipc::semaphore_create(0).expect("semaphore");
    let copy = ipc::duplicate(semaphore, Rights::SIGNAL | Rights::TRANSFER).expect("duplicate");
    let reply = ipc::call_mailbox(client, b"post this", &[copy], &mut answer).expect("call");
    check!(&answer[..reply.length] == b"posted", "posted answer");
    check!(
        ipc::semaphore_wait(semaphore, Deadline::NoWait).is_ok(),
        "the server posted the semaphore it received"
    );
    close(semaphore);
    let reply = ipc::call_mailbox(client, b"quit", &[], &mut answer).expect("call");
    check!(&answer[..reply.length] == b"bye", "quit answer");
    expect_exit(server, 0, "rpc-server");
    close(client);
    println!(
        "init: reply-receive: {} calls answered by reply_receive, one carried a semaphore the server posted",
        CALLS + 1
    );
    0
}

/// Short messages in the message registers (`rpc-server short`): calls of
/// 0 to 64 bytes come back upper-cased with the register bytes past them
/// untouched, a reply carries a handle to a short caller, a message too long
/// for the registers is kept for a plain receive, 65 bytes are refused, and
/// the ledger counts every byte once per hop, as for memory buffers.
fn short_messages() -> u32 {
    const LENGTHS: [usize; 10] = [17, 0, 1, 5, 8, 13, 32, 63, 64, 40];
    const PAD: u8 = 0xee;
    let service = ipc::mailbox_create().expect("mailbox");
    let client = ipc::mailbox_mint(service, Rights::WRITE, 0x77).expect("mint");
    let before = ipc::ledger().expect("ledger");
    let server = launch("rpc-server", "short", &[service]);
    close(service);
    let mut sent = 0u64;
    let stats = kipc_user::kernel_stats().expect("kernel stats");
    for (call, &length) in LENGTHS.iter().enumerate() {
        let mut bytes = [PAD; 64];
        for (index, byte) in bytes[..length].iter_mut().enumerate() {
            *byte = b'a' + ((call + index) % 26) as u8;
        }
        let mut registers = ipc::registers_from_bytes(&bytes);
        let answer = ipc::call_short(client, &mut registers, length).expect("short call");
        let back = ipc::bytes_from_registers(&registers);
        let mut expected = bytes;
        expected[..length].make_ascii_uppercase();
        check!(
            answer.length == length && answer.handle_count == 0 && back == expected,
            "short call {call} ({length} bytes): {answer:?} {back:?}"
        );
        sent += 2 * length as u64;
    }
    // Every call and every answer after the server first waits is a fast
    // path hand-off (the first call may come before the server waits).
    let handoffs = kipc_user::kernel_stats()
        .expect("kernel stats")
        .fast_path_handoffs
        - stats.fast_path_handoffs;
    let most = 2 * LENGTHS.len() as u64;
    check!(
        (most - 1..=most).contains(&handoffs),
        "{handoffs} fast path hand-offs in {} round trips",
        LENGTHS.len()
    );
    // A reply with a handle, to a caller whose message was in registers.
    let mut registers = ipc::registers_from_bytes(b"give");
    let answer = ipc::call_short(client, &mut registers, 4).expect("give");
    check!(
        answer.length == 3
            && answer.handle_count == 1
            && ipc::bytes_from_registers(&registers)[..3] == *b"sem",
        "give: {answer:?}"
    );
    let semaphore = answer.handles[0];
    check!(
        ipc::semaphore_wait(semaphore, Deadline::NoWait).is_ok(),
        "the semaphore in the reply has its count"
    );
    close(semaphore);
    sent += 4 + 3;
    // Too long for the server's registers: kept, and taken by a plain receive.
    let mut answer = [0u8; 64];
    let reply = ipc::call_mailbox(client, &[b'x'; 100], &[], &mut answer).expect("long call");
    check!(&answer[..reply.length] == b"long 100", "long answer");
    sent += 100 + 8;
    // Too long for the caller's registers: refused before anything moves.
    let mut registers = [0u64; 8];
    let refused = ipc::call_short(client, &mut registers, 65);
    check!(
        refused.map_err(|error| error.code()) == Err(Some(ErrorCode::MessageTooLarge)),
        "65 bytes in the registers: {refused:?}"
    );
    let mut registers = ipc::registers_from_bytes(b"quit");
    let answer = ipc::call_short(client, &mut registers, 4).expect("quit");
    check!(
        answer.length == 3 && ipc::bytes_from_registers(&registers)[..3] == *b"bye",
        "quit answer"
    );
    sent += 4 + 3;
    expect_exit(server, 0, "rpc-server");
    close(client);
    // Every byte is counted once per hop: straight across, or into the
    // mailbox and out again when the server was not waiting yet (the long
    // message, and perhaps the first call).
    let after = ipc::ledger().expect("ledger");
    let moved = |direction: usize| {
        after.bytes[MAILBOX_LEDGER][direction] - before.bytes[MAILBOX_LEDGER][direction]
    };
    let (into_kernel, out_of_kernel, across) = (moved(0), moved(1), moved(3));
    check!(
        into_kernel == out_of_kernel && across + into_kernel == sent,
        "ledger: {across} bytes across, {into_kernel} in and {out_of_kernel} out of mailboxes, {sent} sent"
    );
    println!(
        "init: short-messages: {} calls in the message registers, {sent} bytes moved, {across} of them straight across; a reply carried a semaphore; a 100-byte call was kept for a plain receive; 65 bytes refused; {handoffs} of the first {} messages handed over on the fast path",
        LENGTHS.len() + 2,
        2 * LENGTHS.len()
    );
    0
}

/// The ledger's row for mailboxes (`kipc::Mechanism::Mailbox`).
const MAILBOX_LEDGER: usize = 3;

/// Badges, call/reply with handles travelling both ways, and a stream.
fn mailbox() -> u32 {
    // Two senders with minted handles: the badge says who sent what.
    let inbox = ipc::mailbox_create().expect("mailbox");
    let alpha = ipc::mailbox_mint(inbox, Rights::WRITE | Rights::TRANSFER, 0xa1).expect("mint");
    let beta = ipc::mailbox_mint(inbox, Rights::WRITE | Rights::TRANSFER, 0xb2).expect("mint");
    let first = launch("mail-peer", "badge alpha", &[alpha]);
    let second = launch("mail-peer", "badge beta", &[beta]);
    close(alpha);
    close(beta);
    let mut buffer = [0u8; MAIL_SIZE];
    let mut seen = [false; 2];
    for _ in 0..2 {
        let message = ipc::receive(inbox, &mut buffer, Deadline::Forever).expect("receive");
        let (index, badge) = match &buffer[..message.length] {
            b"from alpha" => (0, 0xa1),
            b"from beta" => (1, 0xb2),
            other => {
                println!("CHECK FAILED: unexpected message {other:?}");
                return 1;
            }
        };
        check!(
            message.badge == badge && message.reply.is_none() && message.handle_count == 0,
            "message {:?} came with badge {:#x}, expected {badge:#x}",
            core::str::from_utf8(&buffer[..message.length]),
            message.badge
        );
        seen[index] = true;
    }
    check!(seen == [true, true], "both senders heard");
    expect_exit(first, 0, "mail-peer badge alpha");
    expect_exit(second, 0, "mail-peer badge beta");
    close(inbox);
    println!("init: mailbox: badges 0xa1 and 0xb2 told the two senders apart");

    // A server in another process; this process calls it.
    let service = ipc::mailbox_create().expect("mailbox");
    let server = launch("mail-peer", "server", &[service]);
    let client = ipc::mailbox_mint(service, Rights::WRITE, 0x5e).expect("mint");
    close(service);
    let (read, write) = ipc::pipe().expect("pipe");
    let mut answer = [0u8; 16];
    let reply = ipc::call_mailbox(client, b"write-pipe", &[write], &mut answer).expect("call");
    check!(
        &answer[..reply.length] == b"done" && reply.handle_count == 0,
        "write-pipe answer"
    );
    check!(
        ipc::info(write).is_err(),
        "the pipe end stayed here after the call moved it"
    );
    let got = ipc::read_full(read, &mut buffer[..SERVER_PIPE_LINE.len()]);
    check!(
        got == Ok(SERVER_PIPE_LINE.len()) && &buffer[..SERVER_PIPE_LINE.len()] == SERVER_PIPE_LINE,
        "what the server wrote: {got:?}"
    );
    check!(
        ipc::read(read, &mut buffer, Deadline::Forever) == Ok(0),
        "end of file: the server closed the only write end"
    );
    close(read);

    let reply = ipc::call_mailbox(client, b"make-region", &[], &mut answer).expect("call");
    check!(
        &answer[..reply.length] == b"region" && reply.handle_count == 1,
        "make-region answer with {} handles",
        reply.handle_count
    );
    let region = reply.handles[0];
    check!(ipc::region_pages(region) == Ok(1), "the region's size");
    let address = ipc::region_map(region, None, false).expect("map the region");
    // SAFETY: one page mapped read-only at `address`.
    let page = unsafe { core::slice::from_raw_parts(address as *const u8, 4096) };
    check!(
        &page[..SERVER_REGION_LINE.len()] == SERVER_REGION_LINE,
        "the region's contents"
    );
    check!(ipc::region_unmap(address).is_ok(), "unmap");
    close(region);

    let reply = ipc::call_mailbox(client, b"quit", &[], &mut answer).expect("call");
    check!(&answer[..reply.length] == b"bye", "quit answer");
    expect_exit(server, 0, "mail-peer server");
    close(client);
    println!(
        "init: mailbox: a call carried a pipe end the server wrote through; a reply carried a region the server filled"
    );

    // A stream through the 8-deep mailbox, starting late.
    let stream = ipc::mailbox_create().expect("mailbox");
    let sender = launch("mail-peer", "stream 40", &[stream]);
    kipc_user::sleep_ms(50);
    for sequence in 0..MAIL_STREAM {
        let message = ipc::receive(stream, &mut buffer, Deadline::Forever).expect("receive");
        check!(
            message.length == MAIL_SIZE && buffer == mail_message(sequence),
            "stream message {sequence}: {} bytes, starts {:?}",
            message.length,
            &buffer[..8]
        );
    }
    expect_exit(sender, 0, "mail-peer stream");
    close(stream);
    println!(
        "init: mailbox: {MAIL_STREAM} messages of {MAIL_SIZE} bytes arrived in order through an 8-deep mailbox"
    );
    0
}

// ----- shared memory -----

const SHM_ROUNDS: u64 = 100;

/// Two pages to lend, page-aligned so they are whole pages of their own.
#[repr(C, align(4096))]
struct LoanPages([u8; 8192]);

static mut LOAN_PAGES: LoanPages = LoanPages([0; 8192]);

/// Byte `index` of the loaned pages (`shm-peer borrower` checks the same).
fn loan_pattern(index: usize) -> u8 {
    ((index as u32).wrapping_mul(2_246_822_519) >> 24) as u8
}

/// One region in two processes, semaphores keeping order; a read-only
/// mapping that cannot be written; pages lent to another process.
fn shm() -> u32 {
    let region = ipc::region_create(1).expect("region");
    let shared = Shared::map(region, Access::ReadWrite).expect("map");
    let my_turn = ipc::semaphore_create(1).expect("semaphore");
    let peer_turn = ipc::semaphore_create(0).expect("semaphore");
    let mutex = ipc::semaphore_create(1).expect("semaphore");
    let argument = text(format_args!("turns {SHM_ROUNDS}"));
    let peer = launch(
        "shm-peer",
        argument.as_str(),
        &[region, peer_turn, my_turn, mutex],
    );
    check!(
        ipc::semaphore_wait(my_turn, Deadline::Forever).is_ok(),
        "wait for my turn"
    );
    for round in 0..SHM_ROUNDS {
        // The turn semaphores make this process the only writer right now.
        let value = shared.word(0);
        check!(
            value == 2 * round,
            "round {round}: saw {value}, expected {}",
            2 * round
        );
        shared.set_word(0, value + 1);
        if round + 1 < SHM_ROUNDS {
            // Pass the turn and wait for it to come back, in one call (the
            // peer uses a post and a wait).
            check!(
                ipc::semaphore_post_wait(peer_turn, my_turn, Deadline::Forever).is_ok(),
                "pass the turn and wait for it"
            );
        } else {
            check!(ipc::semaphore_post(peer_turn).is_ok(), "pass the turn");
        }
    }
    for _ in 0..SHM_ROUNDS {
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
    expect_exit(peer, 0, "shm-peer turns");
    let (turns, guarded) = (shared.word(0), shared.word(1));
    check!(
        turns == 2 * SHM_ROUNDS && guarded == 2 * SHM_ROUNDS,
        "counters {turns} and {guarded}, expected {}",
        2 * SHM_ROUNDS
    );
    println!(
        "init: shm: counter {turns} after {SHM_ROUNDS} alternating turns each; mutex-guarded counter {guarded}, no update lost; the turns passed with semaphore_post_wait"
    );

    // A duplicate without WRITE maps read-only; writing kills the writer.
    let read_only = ipc::duplicate(region, Rights::MAP | Rights::TRANSFER).expect("duplicate");
    let argument = text(format_args!("read-only {turns}"));
    let viewer = launch("shm-peer", argument.as_str(), &[read_only]);
    close(read_only);
    expect_exit(viewer, kipc_abi::EXIT_KILLED, "shm-peer read-only");
    let value = shared.word(0);
    check!(value == turns, "the region changed to {value}");
    shared.set_word(0, value + 1);
    check!(
        ipc::region_pages(region) == Ok(1),
        "the region did not survive"
    );
    println!(
        "init: shm: the read-only viewer was killed by its write; the region survives with {value}"
    );
    check!(shared.unmap().is_ok(), "unmap");
    for handle in [region, my_turn, peer_turn, mutex] {
        close(handle);
    }

    // Page loan: two pages of this program's data move to the borrower.
    let loan_address = (&raw mut LOAN_PAGES) as u64;
    let bytes = (&raw mut LOAN_PAGES).cast::<u8>();
    for index in 0..8192 {
        // SAFETY: `index` is inside LOAN_PAGES, which nothing else uses.
        unsafe { bytes.add(index).write_volatile(loan_pattern(index)) };
    }
    check!(ipc::ledger_reset().is_ok(), "ledger reset");
    let loan = ipc::pages_loan(loan_address, 2).expect("pages_loan");
    check!(
        failed_with(&ipc::pages_loan(loan_address, 2), ErrorCode::NotMapped),
        "the loaned pages are still mapped here"
    );
    let mailbox = ipc::mailbox_create().expect("mailbox");
    let borrower = launch("shm-peer", "borrower", &[mailbox]);
    check!(
        ipc::send(mailbox, b"loan", &[loan], Deadline::Forever).is_ok(),
        "send the loan"
    );
    check!(ipc::info(loan).is_err(), "the loan handle stayed here");
    expect_exit(borrower, 0, "shm-peer borrower");
    close(mailbox);
    let ledger = ipc::ledger().expect("ledger");
    let loans = kipc::Mechanism::PageLoan as usize;
    let copied: u64 = ledger.bytes[loans].iter().sum();
    let copies: u64 = ledger.operations[loans].iter().sum();
    check!(
        copied == 0 && copies == 0,
        "the loan copied {copied} bytes in {copies} operations"
    );
    check!(
        ledger.pages_loaned[loans] == 2 && ledger.pages_mapped[loans] == 2,
        "pages loaned {}, mapped {}",
        ledger.pages_loaned[loans],
        ledger.pages_mapped[loans]
    );
    let note: u64 = ledger.bytes[kipc::Mechanism::Mailbox as usize].iter().sum();
    println!(
        "init: shm: page loan of 2 pages; ledger: {copied} payload bytes copied, {} pages loaned, {} pages mapped (the 4-byte note about it: {note} mailbox bytes)",
        ledger.pages_loaned[loans], ledger.pages_mapped[loans]
    );
    0
}

// ----- notification -----

/// Bits from another process OR together; a wait returns and clears them.
fn notification() -> u32 {
    let notification = ipc::notification_create().expect("notification");
    let signal_only =
        ipc::duplicate(notification, Rights::SIGNAL | Rights::TRANSFER).expect("duplicate");
    let peer = launch("notify-peer", "signal 0x1 0x4 0x1 0x10", &[signal_only]);
    expect_exit(peer, 0, "notify-peer signal");
    let bits = ipc::notification_wait(notification, Deadline::NoWait);
    check!(bits == Ok(0x15), "pending bits {bits:?}, expected 0x15");
    check!(
        failed_with(
            &ipc::notification_wait(notification, Deadline::NoWait),
            ErrorCode::WouldBlock
        ),
        "the bits were not cleared"
    );
    println!("init: notification: 0x1, 0x4, 0x1, 0x10 arrived as 0x15, then cleared");

    let late = launch("notify-peer", "late 0x80", &[signal_only]);
    let before = kipc_user::uptime_ms();
    let bits = ipc::notification_wait(notification, Deadline::Forever);
    let waited = kipc_user::uptime_ms() - before;
    check!(
        bits == Ok(0x80) && waited >= 10,
        "blocked wait gave {bits:?} after {waited} ms"
    );
    expect_exit(late, 0, "notify-peer late");
    check!(
        failed_with(
            &ipc::notification_wait(notification, Deadline::after_ms(30)),
            ErrorCode::TimedOut
        ),
        "a wait with a deadline and no signal"
    );
    close(signal_only);
    close(notification);
    println!(
        "init: notification: a blocked wait woke with 0x80 after {waited} ms; a deadline gave TimedOut"
    );
    0
}

// ----- peer death -----

/// A peer dies mid-conversation (killed by a fault); this side gets the
/// right answer instead of waiting forever.
fn peer_death() -> u32 {
    // The writer dies after 1000 bytes: the reader gets them, then EOF.
    let (read, write) = ipc::pipe().expect("pipe");
    let child = launch("dying-peer", "pipe-writer", &[write]);
    close(write);
    let mut buffer = [0u8; 2048];
    let got = ipc::read_full(read, &mut buffer);
    check!(got == Ok(1000), "read {got:?} bytes from the dying writer");
    for (index, &byte) in buffer[..1000].iter().enumerate() {
        check!(byte == pattern(index), "byte {index} is {byte:#x}");
    }
    expect_exit(child, kipc_abi::EXIT_KILLED, "dying-peer pipe-writer");
    close(read);
    println!(
        "init: peer-death: pipe writer killed after 1000 bytes; reader got them all, then end of file"
    );

    // The reader dies after 100 bytes: the blocked writer gets BrokenPipe
    // (with SIGPIPE ignored, as a program that handles the error does).
    let quiet = kipc_user::signal::set_action(
        kipc_user::signal::Signal::SIGPIPE,
        kipc_user::signal::Action::Ignore,
    );
    check!(quiet.is_ok(), "ignore SIGPIPE: {quiet:?}");
    let capacity = pipe_capacity();
    let (read, write) = ipc::pipe().expect("pipe");
    let child = launch("dying-peer", "pipe-reader", &[read]);
    close(read);
    let block = [0x5au8; 1024];
    let mut written = 0;
    let error = loop {
        match ipc::write(write, &block, Deadline::Forever) {
            Ok(count) => written += count,
            Err(error) => break error,
        }
        check!(
            written <= 100 + capacity,
            "wrote {written} bytes into a pipe whose reader read 100"
        );
    };
    check!(
        error == ErrorCode::BrokenPipe,
        "writer got {error:?} after {written} bytes"
    );
    expect_exit(child, kipc_abi::EXIT_KILLED, "dying-peer pipe-reader");
    close(write);
    let _ = kipc_user::signal::set_action(
        kipc_user::signal::Signal::SIGPIPE,
        kipc_user::signal::Action::Default,
    );
    println!(
        "init: peer-death: pipe reader killed; the writer, blocked after {written} bytes, got BrokenPipe"
    );

    // The only receiver dies: the sender blocked on the full mailbox gets PeerClosed.
    let inbox = ipc::mailbox_create().expect("mailbox");
    let sender = ipc::mailbox_mint(inbox, Rights::WRITE, 1).expect("mint");
    let child = launch("dying-peer", "mail-receiver", &[inbox]);
    close(inbox);
    let mut sent = 0;
    let error = loop {
        match ipc::send(sender, b"note", &[], Deadline::Forever) {
            Ok(()) => sent += 1,
            Err(error) => break error,
        }
        check!(
            sent <= 20,
            "{sent} messages sent to a receiver that took one"
        );
    };
    check!(
        error == ErrorCode::PeerClosed && sent == 1 + kipc_abi::BUFFERED_PER_SENDER,
        "sender got {error:?} after {sent} messages (1 received + {} buffered expected: the sender's quota)",
        kipc_abi::BUFFERED_PER_SENDER
    );
    check!(
        failed_with(
            &ipc::send(sender, b"note", &[], Deadline::NoWait),
            ErrorCode::PeerClosed
        ),
        "a later send"
    );
    expect_exit(child, kipc_abi::EXIT_KILLED, "dying-peer mail-receiver");
    close(sender);
    println!(
        "init: peer-death: mailbox receiver killed; the sender, blocked after {sent} messages, got PeerClosed"
    );

    // The server dies holding the call's reply handle: the caller gets PeerClosed.
    for (role, code) in [("server", kipc_abi::EXIT_KILLED), ("quitter", 3)] {
        let service = ipc::mailbox_create().expect("mailbox");
        let client = ipc::mailbox_mint(service, Rights::WRITE, 2).expect("mint");
        let child = launch("dying-peer", role, &[service]);
        close(service);
        let mut answer = [0u8; 16];
        let result = ipc::call_mailbox(client, b"please answer", &[], &mut answer);
        check!(
            failed_with(&result, ErrorCode::PeerClosed),
            "caller of a {role} that died got {result:?}"
        );
        expect_exit(child, code, role);
        close(client);
    }
    println!(
        "init: peer-death: callers got PeerClosed when the server died holding the call or exited before answering"
    );
    0
}

// ----- handle exhaustion -----

/// Two processes fill their own handle tables at once, get OutOfHandles,
/// recover; nobody else is affected.
fn handle_exhaustion() -> u32 {
    let one = launch("handle-hog", "", &[]);
    let two = launch("handle-hog", "", &[]);
    expect_exit(one, 0, "handle-hog one");
    expect_exit(two, 0, "handle-hog two");
    let semaphore = ipc::semaphore_create(0).expect("init's own table is untouched");
    close(semaphore);
    println!(
        "init: handle-exhaustion: both hogs hit OutOfHandles at 64 handles, recovered and exited cleanly"
    );
    0
}
