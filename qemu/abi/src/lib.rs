//! The demo kernel's system-call ABI, shared by the kernel (`qemu/kernel`) and
//! user space (`qemu/user`), so both sides agree on numbers and layouts.
//!
//! Convention: `syscall` with the number in `rax` and arguments in
//! `rdi, rsi, rdx, r10, r8, r9` (the x86_64 Linux order). The result comes
//! back in `rax`, always packed by [`encode`]: bit 63 set means an error whose
//! `kipc::ErrorCode` is in the low 32 bits, otherwise the value (0 for calls
//! that return only a status). Further results (a badge, a second handle, a
//! count) come back in `rdx` and `r8` where a call documents them.

#![no_std]

/// System-call numbers.
pub mod number {
    /// `exit(code)`: ends the caller. Never returns.
    pub const EXIT: u64 = 0;
    /// `write(ptr, len)`: writes bytes to the console. Returns bytes written.
    pub const CONSOLE_WRITE: u64 = 1;
    /// `spawn(name_ptr, name_len, arg_ptr, arg_len, handles_ptr, handles_count)`:
    /// starts the program `name` from the boot archive with an argument
    /// string, giving the child copies of the listed handles (each needs
    /// TRANSFER; reply handles cannot be copied; the caller keeps its own).
    /// Returns the child's process id. Fails with `OutOfProcesses` also when
    /// too many exit codes wait to be collected with `wait`.
    pub const SPAWN: u64 = 2;
    /// `wait(pid)`: blocks until child `pid` exits; returns its exit code
    /// (the low 32 bits of what it passed to `exit`; a killed process
    /// returns [`super::EXIT_KILLED`]).
    pub const WAIT: u64 = 3;
    /// `yield()`: gives the CPU to the next ready process. Returns 0.
    pub const YIELD: u64 = 4;
    /// `sleep(milliseconds)`: blocks for at least that long (timer
    /// resolution). Returns 0.
    pub const SLEEP: u64 = 5;
    /// `clock(kind)`: [`super::clock`] kinds.
    pub const CLOCK: u64 = 6;
    /// `process_id()`: the caller's id.
    pub const PROCESS_ID: u64 = 7;
    /// `kernel_stats(ptr, len)`: copies a [`super::KernelStats`] out.
    pub const KERNEL_STATS: u64 = 8;
    /// `kill(pid)`: ends child `pid` as if it had faulted (exit code
    /// [`super::EXIT_KILLED`]); its peers see the usual errors.
    pub const KILL: u64 = 9;
    /// `resource_usage(ptr, len)`: copies a [`super::ResourceUsage`] out.
    pub const RESOURCE_USAGE: u64 = 10;
    /// `breakdown(ptr, len)`: copies a [`super::Breakdown`] (the phase
    /// totals since the last call, which it zeroes). Only a kernel built
    /// with the `breakdown` feature has it (`cargo run -- bench
    /// --breakdown`); others return `InvalidArgument`.
    pub const BREAKDOWN: u64 = 11;

    // ----- handles -----
    /// `handle_close(handle)`.
    pub const HANDLE_CLOSE: u64 = 16;
    /// `handle_duplicate(handle, rights)` -> new handle with a subset of rights.
    pub const HANDLE_DUPLICATE: u64 = 17;
    /// `handle_info(handle)` -> `rax` = kind | rights << 8, `rdx` = badge.
    pub const HANDLE_INFO: u64 = 18;

    // ----- mailboxes -----
    /// `mailbox_create()` -> handle (READ, WRITE, TRANSFER, DUPLICATE).
    pub const MAILBOX_CREATE: u64 = 32;
    /// `mailbox_mint(handle, rights, badge)` -> a send handle carrying `badge`.
    pub const MAILBOX_MINT: u64 = 33;
    /// `mailbox_send(handle, ptr, len, handles_ptr, handle_count, deadline)`.
    pub const MAILBOX_SEND: u64 = 34;
    /// `mailbox_receive(handle, ptr, len, handle_array_ptr, deadline)` ->
    /// `rax` = length, `rdx` = badge, `r8` = reply handle (0 if the message
    /// was not a call). Transferred handles land in the
    /// [`super::HandleArray`], which is required and must be writable (0
    /// gives `InvalidArgument`); the kernel writes it only when handles
    /// arrive, so set its count to 0 before the call.
    pub const MAILBOX_RECEIVE: u64 = 35;
    /// `mailbox_call(handle, ptr, len, reply_ptr, reply_len, handle_array_ptr)`:
    /// sends the handles in the array (required, writable; count 0 sends
    /// none), waits for the reply. `rax` = reply length, `rdx` = badge (0),
    /// `r8` = how many handles the reply carried; when that is non-zero the
    /// kernel wrote them to the array.
    pub const MAILBOX_CALL: u64 = 36;
    /// `mailbox_reply(reply_handle, ptr, len, handles_ptr, handle_count)`.
    pub const MAILBOX_REPLY: u64 = 37;
    /// `mailbox_reply_receive(handle, ptr, len, handle_array_ptr, reply_handle,
    /// reply_len)`: a server's answer-and-wait in one call (seL4's
    /// `ReplyRecv`). Answers through `reply_handle` with the first
    /// `reply_len` bytes of the buffer (no handles; `reply_len` ≤ `len`, else
    /// `InvalidArgument`), then receives into the same buffer exactly like
    /// [`MAILBOX_RECEIVE`] with deadline [`super::FOREVER`] and returns like
    /// it: `rax` = length, `rdx` = badge, `r8` = the new reply handle;
    /// transferred handles land in the [`super::HandleArray`] (0 = none).
    /// `reply_handle` 0 skips the reply (a server's first receive). The
    /// receive half uses `mailbox_receive`'s registers: if the call has to
    /// wait, the kernel turns it into that `mailbox_receive` (`rax` =
    /// [`MAILBOX_RECEIVE`], `r8` = `FOREVER`, both result registers), so a
    /// re-issued call never replies twice. The reply must succeed or nothing
    /// is received (its errors are `mailbox_reply`'s); a bad `handle` fails
    /// before the reply; after the reply, the receive's errors are returned
    /// with the reply delivered.
    pub const MAILBOX_REPLY_RECEIVE: u64 = 38;
    /// `mailbox_call_short(handle, length)`: [`MAILBOX_CALL`] with the
    /// message in the eight [message registers](super::MESSAGE_REGISTERS)
    /// instead of user memory (`length` ≤ 64 bytes, no handles sent). The
    /// reply comes back in the same registers: `rax` = reply length; handles
    /// the reply carried (a server may send some with `mailbox_reply`) in `rcx`
    /// (first and second, low half first) and `r11` (third and fourth), 0 for
    /// none. Same kipc call, copies and ledger counts as [`MAILBOX_CALL`].
    pub const MAILBOX_CALL_SHORT: u64 = 39;
    /// `mailbox_reply_receive_short(handle, reply_handle | reply_length << 32)`:
    /// [`MAILBOX_REPLY_RECEIVE`] with both the reply and the next message in
    /// the [message registers](super::MESSAGE_REGISTERS) (`reply_length` ≤
    /// 64). Returns `rax` = length, `rsi` = badge, `rdi` = the new reply
    /// handle (0 if the message was not a call), the message in the message
    /// registers and its handles in `rcx` and `r11` as
    /// [`MAILBOX_CALL_SHORT`]. `reply_handle` 0 skips the reply. If it has
    /// to wait, the kernel keeps the call as a receive (`rsi` = 0), so a
    /// re-issued call never replies twice.
    pub const MAILBOX_REPLY_RECEIVE_SHORT: u64 = 40;

    // ----- pipes and FIFOs -----
    /// `pipe_create()` -> `rax` = read handle, `rdx` = write handle.
    pub const PIPE_CREATE: u64 = 48;
    /// `pipe_read(handle, ptr, len, deadline)` -> bytes read (0 = end of file).
    pub const PIPE_READ: u64 = 49;
    /// `pipe_write(handle, ptr, len, deadline)` -> bytes written.
    pub const PIPE_WRITE: u64 = 50;
    /// `fifo_create(name_ptr, name_len)`.
    pub const FIFO_CREATE: u64 = 51;
    /// `fifo_open(name_ptr, name_len, mode, deadline)` -> handle; mode 0 reads, 1 writes.
    pub const FIFO_OPEN: u64 = 52;
    /// `fifo_unlink(name_ptr, name_len)`.
    pub const FIFO_UNLINK: u64 = 53;

    // ----- message queues -----
    /// `mqueue_create(name_ptr, name_len, max_messages, max_message_size)` -> handle.
    pub const MQUEUE_CREATE: u64 = 64;
    /// `mqueue_open(name_ptr, name_len)` -> handle.
    pub const MQUEUE_OPEN: u64 = 65;
    /// `mqueue_unlink(name_ptr, name_len)`.
    pub const MQUEUE_UNLINK: u64 = 66;
    /// `mqueue_send(handle, ptr, len, priority, deadline)`.
    pub const MQUEUE_SEND: u64 = 67;
    /// `mqueue_receive(handle, ptr, len, deadline)` -> `rax` = length, `rdx` = priority.
    pub const MQUEUE_RECEIVE: u64 = 68;
    /// `mqueue_attributes(handle)` -> `rax` = max messages, `rdx` = max size,
    /// `r8` = messages queued.
    pub const MQUEUE_ATTRIBUTES: u64 = 69;

    // ----- shared regions and page loans -----
    /// `region_create(pages)` -> handle.
    pub const REGION_CREATE: u64 = 80;
    /// `region_map(handle, address, writable)` -> address (0 = kernel picks).
    pub const REGION_MAP: u64 = 81;
    /// `region_unmap(address)`.
    pub const REGION_UNMAP: u64 = 82;
    /// `pages_loan(address, pages)` -> handle of a region holding those
    /// pages, which leave the caller's address space.
    pub const PAGES_LOAN: u64 = 83;
    /// `region_pages(handle)` -> size in pages.
    pub const REGION_PAGES: u64 = 84;

    // ----- semaphores and notifications -----
    /// `semaphore_create(initial)` -> handle.
    pub const SEMAPHORE_CREATE: u64 = 96;
    /// `semaphore_wait(handle, deadline)`.
    pub const SEMAPHORE_WAIT: u64 = 97;
    /// `semaphore_post(handle)`.
    pub const SEMAPHORE_POST: u64 = 98;
    /// `notification_create()` -> handle.
    pub const NOTIFICATION_CREATE: u64 = 99;
    /// `notification_signal(handle, bits)`.
    pub const NOTIFICATION_SIGNAL: u64 = 100;
    /// `notification_wait(handle, deadline)` -> `rdx` = the bits (cleared).
    pub const NOTIFICATION_WAIT: u64 = 101;
    /// `semaphore_post_wait(post, wait, deadline)`: [`SEMAPHORE_POST`] on
    /// `post`, then [`SEMAPHORE_WAIT`] on `wait` with `deadline`, in one call
    /// (both handles are checked before the post). If the wait has to park,
    /// the kernel turns the call into that `semaphore_wait` (`rax` =
    /// [`SEMAPHORE_WAIT`], `rdi` = `wait`, `rsi` = `deadline`), so a re-run
    /// call (after a signal handler) never posts twice.
    pub const SEMAPHORE_POST_WAIT: u64 = 102;

    // ----- copy accounting -----
    /// `ledger_read(ptr, len, process)` -> copies a [`super::LedgerRecord`]:
    /// the global ledger for `process` = [`super::LEDGER_GLOBAL`], else that
    /// process's column.
    pub const LEDGER_READ: u64 = 112;
    /// `ledger_reset()`: zeroes the ledger (starts a new experiment).
    pub const LEDGER_RESET: u64 = 113;

    // ----- the RAM file system (copies counted as `File` in the ledger) -----
    /// `file_open(name_ptr, name_len, flags)` -> file descriptor; flags are
    /// [`super::file_flags`].
    pub const FILE_OPEN: u64 = 120;
    /// `file_read(fd, ptr, len)` -> bytes read (0 at end of file).
    pub const FILE_READ: u64 = 121;
    /// `file_write(fd, ptr, len)` -> bytes written.
    pub const FILE_WRITE: u64 = 122;
    /// `file_close(fd)`.
    pub const FILE_CLOSE: u64 = 123;
    /// `file_seek(fd, offset)`.
    pub const FILE_SEEK: u64 = 124;
    /// `file_size(fd)` -> size in bytes.
    pub const FILE_SIZE: u64 = 125;
    /// `file_unlink(name_ptr, name_len)`.
    pub const FILE_UNLINK: u64 = 126;
    /// `file_checksum(fd)` -> FNV-1a 64 of the contents, computed by the kernel.
    pub const FILE_CHECKSUM: u64 = 127;
    /// `file_generate(name_ptr, name_len, size, seed)` -> checksum: creates
    /// a file of deterministic pseudo-random bytes (not counted as copies).
    pub const FILE_GENERATE: u64 = 128;
    /// `file_lend(fd, offset, pages)` -> address: maps the file's pages
    /// read-only into the caller (no copy; `offset` page-aligned).
    pub const FILE_LEND: u64 = 129;
    /// `file_append_pages(fd, address, pages, length)`: the caller's pages
    /// become the file's next pages, the size grows by `length` (no copy).
    pub const FILE_APPEND_PAGES: u64 = 130;

    // ----- signals (see `kipc::signal` and docs/mechanisms.md) -----
    /// `signal_action(signal, new_ptr, old_ptr)`: sets the action of
    /// `signal` from the [`super::SignalActionRecord`] at `new_ptr` (0 =
    /// only read it) and copies the previous one to `old_ptr` (0 = not
    /// wanted). `SIGKILL` cannot be changed (`InvalidArgument`), nor can a
    /// handler or restorer lie outside user memory.
    pub const SIGNAL_ACTION: u64 = 140;
    /// `signal_mask(how, set)` -> the old mask; `how` is one of
    /// [`super::signal::BLOCK`], [`super::signal::UNBLOCK`],
    /// [`super::signal::SET_MASK`]; bit `n` of `set` is signal `n`.
    pub const SIGNAL_MASK: u64 = 141;
    /// `signal_send(process_handle, signal)`: needs the SIGNAL right on a
    /// process handle ([`PROCESS_HANDLE`]).
    pub const SIGNAL_SEND: u64 = 142;
    /// `signal_raise(signal)`: sends `signal` to the caller itself.
    pub const SIGNAL_RAISE: u64 = 143;
    /// `signal_pending()` -> the set of pending signals.
    pub const SIGNAL_PENDING: u64 = 144;
    /// `alarm(milliseconds)` -> milliseconds left on the alarm it replaces
    /// (0 if none): `SIGALRM` comes after that long; 0 cancels.
    pub const ALARM: u64 = 145;
    /// `signal_return()`: only from a handler's restorer, with `rsp` at the
    /// [`super::SignalFrame`] (where the handler's `ret` leaves it).
    /// Resumes the interrupted context; a frame that would leave user mode's
    /// bounds (a kernel `rip`, interrupts off, I/O privilege), a call
    /// outside any handler, or an unreadable frame kills the process.
    pub const SIGNAL_RETURN: u64 = 146;
    /// `signal_suspend(mask)`: waits for a signal with the mask set to
    /// `mask` (`pause` is `signal_suspend(current mask)`). Always ends with
    /// `Interrupted`, after the handler ran.
    pub const SIGNAL_SUSPEND: u64 = 147;
    /// `process_handle(pid)` -> a handle to process `pid`, which must be the
    /// caller or one of its children, with SIGNAL, TRANSFER and DUPLICATE.
    pub const PROCESS_HANDLE: u64 = 148;
}

/// Constants of the signal calls.
pub mod signal {
    /// `SignalActionRecord::handler` for the default action.
    pub const DEFAULT: u64 = 0;
    /// `SignalActionRecord::handler` for ignoring the signal.
    pub const IGNORE: u64 = 1;
    /// [`super::number::SIGNAL_MASK`]: add the set to the mask.
    pub const BLOCK: u64 = 0;
    /// [`super::number::SIGNAL_MASK`]: remove the set from the mask.
    pub const UNBLOCK: u64 = 1;
    /// [`super::number::SIGNAL_MASK`]: replace the mask with the set.
    pub const SET_MASK: u64 = 2;
    /// `SignalActionRecord::flags`: restart a call interrupted before it
    /// made progress (kipc's `SignalFlags::RESTART`).
    pub const RESTART: u64 = 1;
    /// Do not block the signal in its own handler.
    pub const NODEFER: u64 = 2;
    /// Back to the default action once the handler is entered.
    pub const RESETHAND: u64 = 4;
    /// Exit code of a process ended by signal `n`: this plus `n`.
    pub const EXIT_BASE: u32 = 0x5160;
}

/// A signal's action as user space passes it to
/// [`number::SIGNAL_ACTION`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SignalActionRecord {
    /// [`signal::DEFAULT`], [`signal::IGNORE`] or the handler's address; the
    /// handler is entered as `handler(signal, &mut SignalFrame)` with the
    /// System V calling convention.
    pub handler: u64,
    /// Signals blocked while the handler runs (bit `n` = signal `n`).
    pub mask: u64,
    /// [`signal::RESTART`], [`signal::NODEFER`], [`signal::RESETHAND`].
    pub flags: u64,
    /// Where the handler returns to: code that issues
    /// [`number::SIGNAL_RETURN`] without touching the stack. One per process
    /// (the last one set wins).
    pub restorer: u64,
}

/// What the kernel pushes on the user stack to run a handler: the
/// interrupted context. It sits just above the handler's return address
/// (the restorer), 16-byte aligned, below the interrupted stack's 128-byte
/// red zone. The handler may read it and change it; `signal_return`
/// restores it after checking it stays in user mode.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SignalFrame {
    /// The signal being handled.
    pub signal: u64,
    /// The signal mask to restore.
    pub mask: u64,
    /// General-purpose registers of the interrupted context, in this order.
    pub rax: u64,
    #[allow(missing_docs)]
    pub rbx: u64,
    #[allow(missing_docs)]
    pub rcx: u64,
    #[allow(missing_docs)]
    pub rdx: u64,
    #[allow(missing_docs)]
    pub rsi: u64,
    #[allow(missing_docs)]
    pub rdi: u64,
    #[allow(missing_docs)]
    pub rbp: u64,
    #[allow(missing_docs)]
    pub r8: u64,
    #[allow(missing_docs)]
    pub r9: u64,
    #[allow(missing_docs)]
    pub r10: u64,
    #[allow(missing_docs)]
    pub r11: u64,
    #[allow(missing_docs)]
    pub r12: u64,
    #[allow(missing_docs)]
    pub r13: u64,
    #[allow(missing_docs)]
    pub r14: u64,
    #[allow(missing_docs)]
    pub r15: u64,
    /// Where the interrupted code resumes.
    pub rip: u64,
    /// Its flags (only the arithmetic flags and DF may differ from what the
    /// kernel saved; IF must stay set).
    pub rflags: u64,
    /// Its stack pointer.
    pub rsp: u64,
}

/// Flags of [`number::FILE_OPEN`].
pub mod file_flags {
    /// Create the file if it does not exist.
    pub const CREATE: u64 = 1;
    /// Empty the file on open.
    pub const TRUNCATE: u64 = 2;
    /// With CREATE: fail with AlreadyExists if it exists.
    pub const EXCLUSIVE: u64 = 4;
}

/// Deadline meaning "fail with WouldBlock instead of waiting".
pub const NO_WAIT: u64 = 0;
/// How `MQUEUE_OPEN` opens a queue (its third argument).
pub mod mqueue_open {
    /// Send and receive (0, the default).
    pub const READ_WRITE: u64 = 0;
    /// Receive only.
    pub const READ_ONLY: u64 = 1;
    /// Send only.
    pub const WRITE_ONLY: u64 = 2;
}

/// Deadline meaning "wait as long as it takes".
pub const FOREVER: u64 = u64::MAX;
// Any other deadline is an absolute time in milliseconds since boot (the
// `clock(UPTIME_MS)` scale); a call still waiting then fails with TimedOut.

/// Message registers: the eight registers that carry a short message
/// (up to 64 bytes, little-endian, `MR0` first) in
/// [`number::MAILBOX_CALL_SHORT`] and [`number::MAILBOX_REPLY_RECEIVE_SHORT`],
/// in this order: `rdx r8 r9 r10 r12 r13 r14 r15`.
pub const MESSAGE_REGISTERS: usize = 8;

/// Bytes the message registers hold.
pub const MESSAGE_REGISTER_BYTES: usize = MESSAGE_REGISTERS * 8;

/// The user address that names a process's message registers: the short
/// mailbox calls pass kipc a buffer inside
/// `[MESSAGE_REGISTERS_ADDRESS, MESSAGE_REGISTERS_ADDRESS + 64)` (in the
/// first page, which is never mapped), and the kernel copies it from and to
/// the saved registers instead of memory. That happens in the short calls'
/// own copies and in copies straight from one process to another; elsewhere
/// the window is unmapped memory. User code never passes it itself.
pub const MESSAGE_REGISTERS_ADDRESS: u64 = 0x800;

/// Most handles one message carries (kipc's `MAX_MESSAGE_HANDLES`).
pub const MESSAGE_HANDLES: usize = 4;

/// Messages a mailbox buffers (the demo kernel's `MAILBOX_DEPTH`).
pub const MAILBOX_DEPTH: usize = 8;

/// Messages one sender may have waiting in any one mailbox (the demo kernel's
/// quota, `kipc::Quotas::buffered_messages`): past it the mailbox is full for that
/// sender, while others still find room.
pub const BUFFERED_PER_SENDER: usize = 4;

/// Handles travelling with a mailbox message, in user memory.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HandleArray {
    /// How many of `handles` are used.
    pub count: u32,
    /// Raw handle values.
    pub handles: [u32; MESSAGE_HANDLES],
}

/// `process` argument of `ledger_read` selecting the global ledger.
pub const LEDGER_GLOBAL: u64 = u64::MAX;
/// Mechanisms in ledger order (kipc's `Mechanism`).
pub const MECHANISMS: usize = 9;
/// Directions in ledger order (kipc's `Direction`): user->kernel,
/// kernel->user, kernel->kernel, user->user.
pub const DIRECTIONS: usize = 4;

/// The copy ledger as user space sees it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LedgerRecord {
    /// Copy operations, by mechanism and direction.
    pub operations: [[u64; DIRECTIONS]; MECHANISMS],
    /// Bytes copied, by mechanism and direction.
    pub bytes: [[u64; DIRECTIONS]; MECHANISMS],
    /// Pages mapped, by mechanism.
    pub pages_mapped: [u64; MECHANISMS],
    /// Pages loaned, by mechanism.
    pub pages_loaned: [u64; MECHANISMS],
}

/// Clock kinds for [`number::CLOCK`].
pub mod clock {
    /// Milliseconds since boot (timer-tick resolution).
    pub const UPTIME_MS: u64 = 0;
    /// Raw time-stamp counter (with `-icount shift=0`, guest instructions).
    pub const TSC: u64 = 1;
}

/// Exit code the kernel reports for a process killed by a fault.
pub const EXIT_KILLED: u32 = 0xdead;

/// Packs a value and an error code into one result register: bit 63 set
/// means error, with the code in the low 32 bits; otherwise the value.
pub const fn encode(result: Result<u64, u32>) -> u64 {
    match result {
        Ok(value) => value & !(1 << 63),
        Err(code) => (1 << 63) | code as u64,
    }
}

/// Inverse of [`encode`].
pub const fn decode(raw: u64) -> Result<u64, u32> {
    if raw & (1 << 63) != 0 {
        Err(raw as u32)
    } else {
        Ok(raw)
    }
}

/// A record the kernel copies out to user memory as its raw bytes.
///
/// # Safety
/// The implementer must be `#[repr(C)]` plain data with no padding and no
/// pointers (here: only `u64` fields and arrays), so that every byte is
/// initialised and any byte pattern is a valid value.
pub unsafe trait Record: Sized {
    /// The record's bytes, as they travel to user space.
    fn as_bytes(&self) -> &[u8] {
        // SAFETY: per the trait's contract, `Self` is padding-free plain data,
        // so all `size_of::<Self>()` bytes behind `self` are initialised.
        unsafe {
            core::slice::from_raw_parts((self as *const Self).cast::<u8>(), size_of::<Self>())
        }
    }

    /// The record whose bytes are `bytes` (exactly `size_of::<Self>()` of
    /// them), as read from user space; `None` for any other length.
    fn from_bytes(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != size_of::<Self>() {
            return None;
        }
        // SAFETY: the length matches, and per the trait's contract any byte
        // pattern is a valid `Self`; the read copes with any alignment.
        Some(unsafe { core::ptr::read_unaligned(bytes.as_ptr().cast::<Self>()) })
    }
}

// SAFETY: repr(C), only u64 fields.
unsafe impl Record for KernelStats {}
// SAFETY: repr(C), only u64 fields.
unsafe impl Record for ResourceUsage {}
// SAFETY: repr(C), only u64 arrays.
unsafe impl Record for LedgerRecord {}
// SAFETY: repr(C), only u64 fields.
unsafe impl Record for SignalActionRecord {}
// SAFETY: repr(C), only u64 fields.
unsafe impl Record for SignalFrame {}

/// Guest instructions by phase of the kernel's work, summed over every
/// system call since the last read (see [`number::BREAKDOWN`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Breakdown {
    /// The whole system-call dispatcher.
    pub dispatch: u64,
    /// Inside kipc on the hot IPC paths: pipe read/write, mailbox call and
    /// reply-receive, semaphore wait/post (copies and wake-ups included).
    pub kipc: u64,
    /// User-memory copies.
    pub copy: u64,
    /// Wake-ups applied to parked processes.
    pub wake: u64,
    /// The scheduler after a call parked its caller (the switch included).
    pub scheduler: u64,
    /// Putting the next process on the CPU.
    pub switch: u64,
    /// Copies the kernel's own services make (the file system).
    pub host_copy: u64,
}

// SAFETY: repr(C), only u64 fields.
unsafe impl Record for Breakdown {}

/// Kernel-wide counters (copied out by [`number::KERNEL_STATS`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelStats {
    /// System calls handled since boot.
    pub syscalls: u64,
    /// Context switches between processes since boot.
    pub context_switches: u64,
    /// Timer ticks since boot.
    pub ticks: u64,
    /// Free physical frames.
    pub free_frames: u64,
    /// Live processes.
    pub processes: u64,
    /// Processes killed since boot, by a fault or by their parent.
    pub processes_killed: u64,
    /// Short mailbox calls and reply-receives the mailbox fast path carried
    /// (a message handed straight to a waiting process, then a switch to it).
    pub fast_path_handoffs: u64,
}

/// Kernel-wide resources in use (copied out by [`number::RESOURCE_USAGE`]),
/// for leak checks: every field returns to its earlier value once the
/// processes that used the resources are gone.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ResourceUsage {
    /// Free physical frames.
    pub free_frames: u64,
    /// Live processes.
    pub processes: u64,
    /// Handles in all handle tables.
    pub handles: u64,
    /// Live mailboxes.
    pub mailboxes: u64,
    /// Live pipes (FIFO pipes included).
    pub pipes: u64,
    /// Registered FIFO names.
    pub fifos: u64,
    /// Live message queues.
    pub message_queues: u64,
    /// Live shared regions (loans included).
    pub regions: u64,
    /// Live semaphores.
    pub semaphores: u64,
    /// Live notifications.
    pub notifications: u64,
    /// Frames held by regions.
    pub region_frames: u64,
    /// Region mappings.
    pub mappings: u64,
    /// Pages mapped through them.
    pub mapped_pages: u64,
    /// Messages buffered in mailboxes and queues.
    pub queued_messages: u64,
    /// Handles inside buffered messages.
    pub handles_in_flight: u64,
    /// Processes blocked in kipc.
    pub waiters: u64,
}
