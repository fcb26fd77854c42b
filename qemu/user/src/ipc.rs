//! Safe wrappers for the kipc system calls.
//!
//! Handles are plain `u32`s wrapped in [`Handle`]; rights are `kipc::Rights`.
//! Every blocking call takes a [`Deadline`]: [`Deadline::NoWait`] (fail with
//! `WouldBlock`), [`Deadline::Forever`], or [`Deadline::at_ms`] an absolute
//! time since boot (fail with `TimedOut`).

use kipc::Rights;
use kipc_abi::{HandleArray, LedgerRecord, MESSAGE_HANDLES, number};

use crate::{SysError, SysResult, call, call2, call3};

/// A handle value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Handle(pub u32);

impl Handle {
    fn raw(self) -> u64 {
        u64::from(self.0)
    }

    fn from_value(value: u64) -> Handle {
        Handle(value as u32)
    }
}

/// How long a blocking call may wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deadline {
    /// Do not wait: fail with `WouldBlock`.
    NoWait,
    /// Wait as long as it takes.
    Forever,
    /// Wait until this many milliseconds since boot, then fail with `TimedOut`.
    AtMs(u64),
}

impl Deadline {
    /// A deadline `milliseconds` from now.
    pub fn after_ms(milliseconds: u64) -> Deadline {
        Deadline::AtMs(crate::uptime_ms() + milliseconds.max(1))
    }

    /// An absolute deadline.
    pub fn at_ms(milliseconds: u64) -> Deadline {
        Deadline::AtMs(milliseconds.clamp(1, u64::MAX - 1))
    }

    fn raw(self) -> u64 {
        match self {
            Deadline::NoWait => kipc_abi::NO_WAIT,
            Deadline::Forever => kipc_abi::FOREVER,
            Deadline::AtMs(milliseconds) => milliseconds,
        }
    }
}

fn pointer<T>(slice: &[T]) -> u64 {
    slice.as_ptr() as u64
}

fn handle_words(handles: &[Handle]) -> ([u32; MESSAGE_HANDLES], u64) {
    let mut words = [0u32; MESSAGE_HANDLES];
    for (word, handle) in words.iter_mut().zip(handles) {
        *word = handle.0;
    }
    (words, handles.len() as u64)
}

// ----- handles -----

/// Closes a handle.
pub fn close(handle: Handle) -> SysResult<()> {
    call(number::HANDLE_CLOSE, [handle.raw(), 0, 0, 0, 0, 0]).map(|_| ())
}

/// A new handle to the same object with `rights` (a subset of the original's).
pub fn duplicate(handle: Handle, rights: Rights) -> SysResult<Handle> {
    call(
        number::HANDLE_DUPLICATE,
        [handle.raw(), u64::from(rights.bits()), 0, 0, 0, 0],
    )
    .map(Handle::from_value)
}

/// (object kind number, rights, badge) of a handle.
pub fn info(handle: Handle) -> SysResult<(u8, Rights, u64)> {
    let (packed, badge) = call2(number::HANDLE_INFO, [handle.raw(), 0, 0, 0, 0, 0])?;
    Ok((
        packed as u8,
        Rights::from_bits_truncate((packed >> 8) as u32),
        badge,
    ))
}

// ----- mailboxes -----

/// A message delivered by [`receive`] or [`call`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Message {
    /// Payload bytes written to the buffer.
    pub length: usize,
    /// Badge of the sender's handle.
    pub badge: u64,
    /// Reply handle when the message came from [`call`].
    pub reply: Option<Handle>,
    /// Handles that came with the message.
    pub handles: [Handle; MESSAGE_HANDLES],
    /// How many of `handles` are valid.
    pub handle_count: usize,
}

/// Creates a mailbox.
pub fn mailbox_create() -> SysResult<Handle> {
    call(number::MAILBOX_CREATE, [0; 6]).map(Handle::from_value)
}

/// Mints a handle to the same mailbox carrying `badge` and `rights`.
pub fn mailbox_mint(mailbox: Handle, rights: Rights, badge: u64) -> SysResult<Handle> {
    call(
        number::MAILBOX_MINT,
        [mailbox.raw(), u64::from(rights.bits()), badge, 0, 0, 0],
    )
    .map(Handle::from_value)
}

/// Sends `payload` (and `handles`, moved out of this process) to a mailbox.
pub fn send(
    mailbox: Handle,
    payload: &[u8],
    handles: &[Handle],
    deadline: Deadline,
) -> SysResult<()> {
    let (words, count) = handle_words(handles);
    call(
        number::MAILBOX_SEND,
        [
            mailbox.raw(),
            pointer(payload),
            payload.len() as u64,
            pointer(&words),
            count,
            deadline.raw(),
        ],
    )
    .map(|_| ())
}

fn message(length: u64, badge: u64, reply: u64, array: &HandleArray) -> Message {
    let mut handles = [Handle(0); MESSAGE_HANDLES];
    for (slot, &raw) in handles.iter_mut().zip(array.handles.iter()) {
        *slot = Handle(raw);
    }
    Message {
        length: length as usize,
        badge,
        reply: (reply != 0).then_some(Handle(reply as u32)),
        handles,
        handle_count: array.count as usize,
    }
}

/// Receives a message into `buffer`.
pub fn receive(mailbox: Handle, buffer: &mut [u8], deadline: Deadline) -> SysResult<Message> {
    let mut array = HandleArray::default();
    let (length, badge, reply) = call3(
        number::MAILBOX_RECEIVE,
        [
            mailbox.raw(),
            buffer.as_mut_ptr() as u64,
            buffer.len() as u64,
            (&raw mut array) as u64,
            deadline.raw(),
            0,
        ],
    )?;
    Ok(message(length, badge, reply, &array))
}

/// Sends `payload` (with `handles`) and waits for the reply in `reply`.
pub fn call_mailbox(
    mailbox: Handle,
    payload: &[u8],
    handles: &[Handle],
    reply: &mut [u8],
) -> SysResult<Message> {
    let (words, count) = handle_words(handles);
    let mut array = HandleArray {
        count: count as u32,
        handles: words,
    };
    let (length, badge, received) = call3(
        number::MAILBOX_CALL,
        [
            mailbox.raw(),
            pointer(payload),
            payload.len() as u64,
            reply.as_mut_ptr() as u64,
            reply.len() as u64,
            (&raw mut array) as u64,
        ],
    )?;
    // The kernel rewrote the array only if the reply carried handles.
    array.count = received as u32;
    Ok(message(length, badge, 0, &array))
}

/// Answers a call through its one-shot reply handle.
pub fn reply(reply: Handle, payload: &[u8], handles: &[Handle]) -> SysResult<()> {
    let (words, count) = handle_words(handles);
    call(
        number::MAILBOX_REPLY,
        [
            reply.raw(),
            pointer(payload),
            payload.len() as u64,
            pointer(&words),
            count,
            0,
        ],
    )
    .map(|_| ())
}

/// A server's answer-and-wait in one system call: answers `reply` (if any)
/// with `buffer[..reply_length]` (no handles), then receives the next message
/// into `buffer`, waiting as long as it takes. If the reply fails (for
/// instance `PeerClosed`: its caller is gone) nothing is received; call again
/// with `None`.
pub fn reply_receive(
    mailbox: Handle,
    buffer: &mut [u8],
    reply: Option<Handle>,
    reply_length: usize,
) -> SysResult<Message> {
    let mut array = HandleArray::default();
    let (length, badge, reply) = call3(
        number::MAILBOX_REPLY_RECEIVE,
        [
            mailbox.raw(),
            buffer.as_mut_ptr() as u64,
            buffer.len() as u64,
            (&raw mut array) as u64,
            reply.map_or(0, Handle::raw),
            reply_length as u64,
        ],
    )?;
    Ok(message(length, badge, reply, &array))
}

// ----- short messages, in the message registers -----

/// The eight message registers (`kipc_abi::MESSAGE_REGISTERS`): a short
/// message of up to 64 bytes, little-endian, word 0 first.
pub type Registers = [u64; kipc_abi::MESSAGE_REGISTERS];

/// Packs `bytes` (at most 64) into message registers, little-endian; the
/// bytes past them are 0.
pub fn registers_from_bytes(bytes: &[u8]) -> Registers {
    let mut words = [0u64; kipc_abi::MESSAGE_REGISTERS];
    for (word, chunk) in words.iter_mut().zip(bytes.chunks(8)) {
        let mut eight = [0u8; 8];
        eight[..chunk.len()].copy_from_slice(chunk);
        *word = u64::from_le_bytes(eight);
    }
    words
}

/// The bytes of message registers, `MR0` first.
pub fn bytes_from_registers(registers: &Registers) -> [u8; kipc_abi::MESSAGE_REGISTER_BYTES] {
    let mut bytes = [0u8; kipc_abi::MESSAGE_REGISTER_BYTES];
    for (chunk, word) in bytes.chunks_mut(8).zip(registers) {
        chunk.copy_from_slice(&word.to_le_bytes());
    }
    bytes
}

/// The raw short call: number, two arguments, the message registers in and
/// out; returns `rax`, `rdi`, `rsi`, `rcx`, `r11`.
fn short_call(number: u64, a0: u64, a1: u64, registers: &mut Registers) -> [u64; 5] {
    let [rax, rdi, rsi, rcx, r11]: [u64; 5];
    // SAFETY: the short calls take no pointers; the kernel writes only the
    // registers declared here (results in rax, rdi, rsi, rcx, r11, the
    // message registers rdx r8 r9 r10 r12 r13 r14 r15) and preserves the rest.
    unsafe {
        core::arch::asm!(
            "syscall",
            inlateout("rax") number => rax,
            inlateout("rdi") a0 => rdi,
            inlateout("rsi") a1 => rsi,
            inlateout("rdx") registers[0] => registers[0],
            inlateout("r8") registers[1] => registers[1],
            inlateout("r9") registers[2] => registers[2],
            inlateout("r10") registers[3] => registers[3],
            inlateout("r12") registers[4] => registers[4],
            inlateout("r13") registers[5] => registers[5],
            inlateout("r14") registers[6] => registers[6],
            inlateout("r15") registers[7] => registers[7],
            lateout("rcx") rcx,
            lateout("r11") r11,
            options(nostack),
        );
    }
    [rax, rdi, rsi, rcx, r11]
}

/// Handles a short call reports in `rcx` and `r11` (two per register, 0 =
/// none) as a [`Message`]'s array.
fn short_message(length: u64, badge: u64, reply: u64, rcx: u64, r11: u64) -> Message {
    let mut array = HandleArray::default();
    for raw in [
        rcx as u32,
        (rcx >> 32) as u32,
        r11 as u32,
        (r11 >> 32) as u32,
    ] {
        if raw != 0 {
            array.handles[array.count as usize] = raw;
            array.count += 1;
        }
    }
    message(length, badge, reply, &array)
}

/// [`call_mailbox`] for a short message: sends the first `length` bytes of
/// `registers` (at most 64) without touching memory and waits for the reply,
/// which comes back in `registers` (`Message::length` bytes of it).
pub fn call_short(mailbox: Handle, registers: &mut Registers, length: usize) -> SysResult<Message> {
    let [rax, _, _, rcx, r11] = short_call(
        number::MAILBOX_CALL_SHORT,
        mailbox.raw(),
        length as u64,
        registers,
    );
    let length = kipc_abi::decode(rax).map_err(SysError)?;
    Ok(short_message(length, 0, 0, rcx, r11))
}

/// [`reply_receive`] for short messages: answers `reply` (if any) with the
/// first `reply_length` bytes of `registers`, then waits for the next
/// message, which arrives in `registers`.
pub fn reply_receive_short(
    mailbox: Handle,
    registers: &mut Registers,
    reply: Option<Handle>,
    reply_length: usize,
) -> SysResult<Message> {
    let [rax, reply, badge, rcx, r11] = short_call(
        number::MAILBOX_REPLY_RECEIVE_SHORT,
        mailbox.raw(),
        reply.map_or(0, Handle::raw) | (reply_length as u64) << 32,
        registers,
    );
    let length = kipc_abi::decode(rax).map_err(SysError)?;
    Ok(short_message(length, badge, reply, rcx, r11))
}

// ----- pipes and FIFOs -----

/// Creates a pipe: (read end, write end).
pub fn pipe() -> SysResult<(Handle, Handle)> {
    let (read, write) = call2(number::PIPE_CREATE, [0; 6])?;
    Ok((Handle::from_value(read), Handle::from_value(write)))
}

/// Reads up to `buffer.len()` bytes; 0 means end of file.
pub fn read(pipe: Handle, buffer: &mut [u8], deadline: Deadline) -> SysResult<usize> {
    call(
        number::PIPE_READ,
        [
            pipe.raw(),
            buffer.as_mut_ptr() as u64,
            buffer.len() as u64,
            deadline.raw(),
            0,
            0,
        ],
    )
    .map(|length| length as usize)
}

/// Writes some of `data`; returns how much.
pub fn write(pipe: Handle, data: &[u8], deadline: Deadline) -> SysResult<usize> {
    call(
        number::PIPE_WRITE,
        [
            pipe.raw(),
            pointer(data),
            data.len() as u64,
            deadline.raw(),
            0,
            0,
        ],
    )
    .map(|length| length as usize)
}

/// Writes all of `data`, blocking as needed.
pub fn write_all(pipe: Handle, mut data: &[u8]) -> SysResult<()> {
    while !data.is_empty() {
        let written = write(pipe, data, Deadline::Forever)?;
        data = &data[written..];
    }
    Ok(())
}

/// The kernel's pipe capacity, measured on a fresh pipe: `PIPE_ATOMIC`-byte
/// writes go in without waiting until it is full (programs must not assume
/// a size: a kernel build may choose it, see `KIPC_PIPE_CAPACITY`).
pub fn pipe_capacity() -> SysResult<usize> {
    let (read, write) = pipe()?;
    let block = [0u8; kipc::PIPE_ATOMIC];
    let mut capacity = 0;
    let result = loop {
        match self::write(write, &block, Deadline::NoWait) {
            Ok(count) => capacity += count,
            Err(error) if error == kipc::ErrorCode::WouldBlock => break Ok(capacity),
            Err(error) => break Err(error),
        }
        if capacity > 1 << 24 {
            break Err(kipc::ErrorCode::InvalidArgument.into());
        }
    };
    let closed = close(read).and(close(write));
    result.and_then(|capacity| closed.map(|()| capacity))
}

/// Reads until `buffer` is full or end of file; returns bytes read.
pub fn read_full(pipe: Handle, buffer: &mut [u8]) -> SysResult<usize> {
    let mut done = 0;
    while done < buffer.len() {
        let got = read(pipe, &mut buffer[done..], Deadline::Forever)?;
        if got == 0 {
            break;
        }
        done += got;
    }
    Ok(done)
}

/// Creates a FIFO name.
pub fn fifo_create(name: &str) -> SysResult<()> {
    call(
        number::FIFO_CREATE,
        [pointer(name.as_bytes()), name.len() as u64, 0, 0, 0, 0],
    )
    .map(|_| ())
}

/// Opens a FIFO for reading (`write == false`) or writing.
pub fn fifo_open(name: &str, write: bool, deadline: Deadline) -> SysResult<Handle> {
    call(
        number::FIFO_OPEN,
        [
            pointer(name.as_bytes()),
            name.len() as u64,
            u64::from(write),
            deadline.raw(),
            0,
            0,
        ],
    )
    .map(Handle::from_value)
}

/// Removes a FIFO name.
pub fn fifo_unlink(name: &str) -> SysResult<()> {
    call(
        number::FIFO_UNLINK,
        [pointer(name.as_bytes()), name.len() as u64, 0, 0, 0, 0],
    )
    .map(|_| ())
}

// ----- message queues -----

/// Creates a named queue.
pub fn mqueue_create(
    name: &str,
    max_messages: usize,
    max_message_size: usize,
) -> SysResult<Handle> {
    call(
        number::MQUEUE_CREATE,
        [
            pointer(name.as_bytes()),
            name.len() as u64,
            max_messages as u64,
            max_message_size as u64,
            0,
            0,
        ],
    )
    .map(Handle::from_value)
}

/// Opens a named queue.
pub fn mqueue_open(name: &str) -> SysResult<Handle> {
    call(
        number::MQUEUE_OPEN,
        [pointer(name.as_bytes()), name.len() as u64, 0, 0, 0, 0],
    )
    .map(Handle::from_value)
}

/// Removes a queue's name (the queue lives on while handles remain).
pub fn mqueue_unlink(name: &str) -> SysResult<()> {
    call(
        number::MQUEUE_UNLINK,
        [pointer(name.as_bytes()), name.len() as u64, 0, 0, 0, 0],
    )
    .map(|_| ())
}

/// Sends a message with a priority (0..32, higher first).
pub fn mqueue_send(
    queue: Handle,
    message: &[u8],
    priority: u8,
    deadline: Deadline,
) -> SysResult<()> {
    call(
        number::MQUEUE_SEND,
        [
            queue.raw(),
            pointer(message),
            message.len() as u64,
            u64::from(priority),
            deadline.raw(),
            0,
        ],
    )
    .map(|_| ())
}

/// Receives the highest-priority message: (length, priority).
pub fn mqueue_receive(
    queue: Handle,
    buffer: &mut [u8],
    deadline: Deadline,
) -> SysResult<(usize, u8)> {
    let (length, priority) = call2(
        number::MQUEUE_RECEIVE,
        [
            queue.raw(),
            buffer.as_mut_ptr() as u64,
            buffer.len() as u64,
            deadline.raw(),
            0,
            0,
        ],
    )?;
    Ok((length as usize, priority as u8))
}

/// (max messages, max message size, messages queued).
pub fn mqueue_attributes(queue: Handle) -> SysResult<(usize, usize, usize)> {
    let (max_messages, max_size, queued) =
        call3(number::MQUEUE_ATTRIBUTES, [queue.raw(), 0, 0, 0, 0, 0])?;
    Ok((max_messages as usize, max_size as usize, queued as usize))
}

// ----- shared regions and page loans -----

/// Creates a region of `pages` zeroed pages.
pub fn region_create(pages: usize) -> SysResult<Handle> {
    call(number::REGION_CREATE, [pages as u64, 0, 0, 0, 0, 0]).map(Handle::from_value)
}

/// Maps a region (at `address`, or where the kernel picks if `None`).
pub fn region_map(region: Handle, address: Option<u64>, writable: bool) -> SysResult<u64> {
    call(
        number::REGION_MAP,
        [
            region.raw(),
            address.unwrap_or(0),
            u64::from(writable),
            0,
            0,
            0,
        ],
    )
}

/// Removes the region mapping at `address`.
pub fn region_unmap(address: u64) -> SysResult<()> {
    call(number::REGION_UNMAP, [address, 0, 0, 0, 0, 0]).map(|_| ())
}

/// Moves `pages` pages at `address` out of this process into a new region.
pub fn pages_loan(address: u64, pages: usize) -> SysResult<Handle> {
    call(number::PAGES_LOAN, [address, pages as u64, 0, 0, 0, 0]).map(Handle::from_value)
}

/// Size of a region in pages.
pub fn region_pages(region: Handle) -> SysResult<usize> {
    call(number::REGION_PAGES, [region.raw(), 0, 0, 0, 0, 0]).map(|pages| pages as usize)
}

// ----- semaphores and notifications -----

/// Creates a counting semaphore.
pub fn semaphore_create(initial: u32) -> SysResult<Handle> {
    call(
        number::SEMAPHORE_CREATE,
        [u64::from(initial), 0, 0, 0, 0, 0],
    )
    .map(Handle::from_value)
}

/// Takes one unit, waiting as `deadline` allows.
pub fn semaphore_wait(semaphore: Handle, deadline: Deadline) -> SysResult<()> {
    call(
        number::SEMAPHORE_WAIT,
        [semaphore.raw(), deadline.raw(), 0, 0, 0, 0],
    )
    .map(|_| ())
}

/// Adds one unit (waking a waiter).
pub fn semaphore_post(semaphore: Handle) -> SysResult<()> {
    call(number::SEMAPHORE_POST, [semaphore.raw(), 0, 0, 0, 0, 0]).map(|_| ())
}

/// Posts `post` and waits on `wait` in one system call: hands the turn to a
/// peer and waits for it to come back (half the calls of
/// [`semaphore_post`] then [`semaphore_wait`]).
pub fn semaphore_post_wait(post: Handle, wait: Handle, deadline: Deadline) -> SysResult<()> {
    call(
        number::SEMAPHORE_POST_WAIT,
        [post.raw(), wait.raw(), deadline.raw(), 0, 0, 0],
    )
    .map(|_| ())
}

/// Creates a notification word.
pub fn notification_create() -> SysResult<Handle> {
    call(number::NOTIFICATION_CREATE, [0; 6]).map(Handle::from_value)
}

/// ORs `bits` into a notification.
pub fn notification_signal(notification: Handle, bits: u64) -> SysResult<()> {
    call(
        number::NOTIFICATION_SIGNAL,
        [notification.raw(), bits, 0, 0, 0, 0],
    )
    .map(|_| ())
}

/// Waits for bits, returns and clears them.
pub fn notification_wait(notification: Handle, deadline: Deadline) -> SysResult<u64> {
    call2(
        number::NOTIFICATION_WAIT,
        [notification.raw(), deadline.raw(), 0, 0, 0, 0],
    )
    .map(|(_, bits)| bits)
}

// ----- copy accounting -----

/// The global copy ledger.
pub fn ledger() -> SysResult<LedgerRecord> {
    ledger_of(kipc_abi::LEDGER_GLOBAL)
}

/// One process's copy ledger (`process` as returned by spawn / process_id).
pub fn ledger_of(process: u64) -> SysResult<LedgerRecord> {
    let mut record = LedgerRecord::default();
    call(
        number::LEDGER_READ,
        [
            (&raw mut record) as u64,
            size_of::<LedgerRecord>() as u64,
            process,
            0,
            0,
            0,
        ],
    )?;
    Ok(record)
}

/// Zeroes the ledger.
pub fn ledger_reset() -> SysResult<()> {
    call(number::LEDGER_RESET, [0; 6]).map(|_| ())
}
