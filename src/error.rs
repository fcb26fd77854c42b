//! Errors: one rich internal enum ([`Error`]) and the stable ABI code ([`ErrorCode`]).
//!
//! Every system call of the façade returns `Result<_, Error>`. The embedding kernel turns
//! an `Error` into an [`ErrorCode`] (a `#[repr(u32)]` value, `0` meaning success) with
//! `ErrorCode::from(error)` and hands that number to user space.
//!
//! Errors fall into three classes ([`ErrorClass`]):
//!
//! * **Recoverable** conditions a correct program expects and handles: the queue is empty
//!   ([`Error::WouldBlock`]), the peer went away ([`Error::PeerClosed`]), a deadline passed
//!   ([`Error::TimedOut`]), a name is unknown, and so on.
//! * **Exhaustion** of a bounded kernel table (handles, objects, frames, mappings). Never a
//!   panic: the call fails and nothing changes, the program may free something and retry.
//! * **Faults**: the program passed something it had no business passing — a bad address,
//!   a handle it does not own, a handle without the needed right. These indicate a bug in
//!   the calling program.

use core::fmt;

/// Everything that can go wrong in a kipc operation.
///
/// The enum is `Copy` so it can travel inside wake-up reports. See the module documentation
/// for the three classes of error and [`ErrorCode`] for the numbers user space sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Error {
    // ----- recoverable -----
    /// A non-blocking operation could not proceed now: a pipe, queue or mailbox is empty
    /// (receive) or full (send; a mailbox is also full for a sender that has its quota of
    /// messages waiting in it, see [`crate::Quotas::buffered_messages`]), or a semaphore
    /// or notification has nothing to take.
    WouldBlock,
    /// The FIFO name registry has no free entry (`fifo_create`, POSIX `ENOSPC`). Message
    /// queues are objects and report [`Error::OutOfObjects`] instead.
    Full,
    /// The other side of the conversation is gone: no receiver is left on a mailbox, the
    /// reply capability was dropped, or the caller waiting for a reply stopped waiting.
    PeerClosed,
    /// A pipe or FIFO write found no reader left; the data could never be read.
    BrokenPipe,
    /// A blocking operation reached its deadline before it could complete.
    TimedOut,
    /// The message is larger than the object accepts.
    MessageTooLarge {
        /// The largest message the object accepts, in bytes.
        limit: usize,
    },
    /// The receive buffer is smaller than the message (or than the queue's message size).
    BufferTooSmall {
        /// The buffer length that would have been enough, in bytes.
        needed: usize,
    },
    /// No FIFO or message queue has this name.
    NotFound,
    /// A FIFO or message queue with this name already exists.
    AlreadyExists,
    /// The name is longer than [`crate::NAME_MAX`] bytes.
    NameTooLong,
    /// A non-blocking open of a FIFO for writing found no reader (POSIX `ENXIO`).
    NoReader,
    /// The wait was cancelled by the host kernel ([`crate::Ipc::cancel_wait`]).
    Cancelled,
    /// A signal interrupted the wait before the call made progress (POSIX `EINTR`); see
    /// the interruption table in [`crate::signal`].
    Interrupted,

    // ----- exhaustion -----
    /// The calling process's handle table is full.
    OutOfHandles,
    /// The kernel's table for this kind of object is full (any create, a FIFO open that
    /// needs a new pipe, a page loan that needs a region).
    OutOfObjects,
    /// The host's frame allocator has no free physical frame.
    OutOfFrames,
    /// The kernel's mapping table is full.
    OutOfMappings,
    /// The process table is full.
    OutOfProcesses,
    /// The calling process has used up one of its [quotas](crate::Quotas): it holds as
    /// many of these as the configuration allows, while the table may still have room
    /// for other processes. Release some and retry.
    QuotaExceeded {
        /// Which quota.
        quota: crate::Quota,
    },

    // ----- faults -----
    /// A user buffer is not valid user memory (wraps, leaves the user half, or faulted).
    BadAddress,
    /// The value was never a handle of this process (malformed or never issued).
    BadHandle,
    /// The handle was valid once but has been closed; its slot has been reused or emptied.
    StaleHandle,
    /// The handle names an object of another kind than the operation expects.
    WrongObjectKind,
    /// The handle lacks a right the operation needs (or asks for rights it may not add).
    PermissionDenied,
    /// An argument is out of range (zero pages, priority too high, unaligned address, ...).
    InvalidArgument,
    /// The process id does not name a live process (it exited, or was never created).
    NoSuchProcess,
    /// The virtual address range is already mapped.
    AddressInUse,
    /// No mapping or page is present at this virtual address.
    NotMapped,
}

/// The broad class of an [`Error`]; see the module documentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// A condition a correct program expects and handles.
    Recoverable,
    /// A bounded kernel resource is exhausted.
    Exhausted,
    /// The caller passed an invalid address, handle or argument.
    Fault,
}

impl Error {
    /// The class this error belongs to.
    pub const fn class(self) -> ErrorClass {
        match self {
            Error::WouldBlock
            | Error::Full
            | Error::PeerClosed
            | Error::BrokenPipe
            | Error::TimedOut
            | Error::MessageTooLarge { .. }
            | Error::BufferTooSmall { .. }
            | Error::NotFound
            | Error::AlreadyExists
            | Error::NameTooLong
            | Error::NoReader
            | Error::Cancelled
            | Error::Interrupted => ErrorClass::Recoverable,
            Error::OutOfHandles
            | Error::OutOfObjects
            | Error::OutOfFrames
            | Error::OutOfMappings
            | Error::OutOfProcesses
            | Error::QuotaExceeded { .. } => ErrorClass::Exhausted,
            Error::BadAddress
            | Error::BadHandle
            | Error::StaleHandle
            | Error::WrongObjectKind
            | Error::PermissionDenied
            | Error::InvalidArgument
            | Error::NoSuchProcess
            | Error::AddressInUse
            | Error::NotMapped => ErrorClass::Fault,
        }
    }

    /// True for conditions a correct program expects (class [`ErrorClass::Recoverable`]).
    pub const fn is_recoverable(self) -> bool {
        matches!(self.class(), ErrorClass::Recoverable)
    }

    /// True when a bounded kernel resource ran out (class [`ErrorClass::Exhausted`]).
    pub const fn is_exhaustion(self) -> bool {
        matches!(self.class(), ErrorClass::Exhausted)
    }

    /// True when the caller passed something invalid (class [`ErrorClass::Fault`]).
    pub const fn is_fault(self) -> bool {
        matches!(self.class(), ErrorClass::Fault)
    }

    /// The stable ABI number of this error.
    pub const fn code(self) -> ErrorCode {
        match self {
            Error::WouldBlock => ErrorCode::WouldBlock,
            Error::Full => ErrorCode::Full,
            Error::PeerClosed => ErrorCode::PeerClosed,
            Error::BrokenPipe => ErrorCode::BrokenPipe,
            Error::TimedOut => ErrorCode::TimedOut,
            Error::MessageTooLarge { .. } => ErrorCode::MessageTooLarge,
            Error::BufferTooSmall { .. } => ErrorCode::BufferTooSmall,
            Error::NotFound => ErrorCode::NotFound,
            Error::AlreadyExists => ErrorCode::AlreadyExists,
            Error::NameTooLong => ErrorCode::NameTooLong,
            Error::NoReader => ErrorCode::NoReader,
            Error::Cancelled => ErrorCode::Cancelled,
            Error::Interrupted => ErrorCode::Interrupted,
            Error::OutOfHandles => ErrorCode::OutOfHandles,
            Error::OutOfObjects => ErrorCode::OutOfObjects,
            Error::OutOfFrames => ErrorCode::OutOfFrames,
            Error::OutOfMappings => ErrorCode::OutOfMappings,
            Error::OutOfProcesses => ErrorCode::OutOfProcesses,
            Error::QuotaExceeded { .. } => ErrorCode::QuotaExceeded,
            Error::BadAddress => ErrorCode::BadAddress,
            Error::BadHandle => ErrorCode::BadHandle,
            Error::StaleHandle => ErrorCode::StaleHandle,
            Error::WrongObjectKind => ErrorCode::WrongObjectKind,
            Error::PermissionDenied => ErrorCode::PermissionDenied,
            Error::InvalidArgument => ErrorCode::InvalidArgument,
            Error::NoSuchProcess => ErrorCode::NoSuchProcess,
            Error::AddressInUse => ErrorCode::AddressInUse,
            Error::NotMapped => ErrorCode::NotMapped,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::WouldBlock => f.write_str(
                "the operation would block: retry later, or use the blocking form to wait",
            ),
            Error::Full => f.write_str(
                "the name registry is full: unlink an unused FIFO or message queue first",
            ),
            Error::PeerClosed => f.write_str(
                "the peer has gone (no receiver left, or the reply was abandoned): \
                 stop talking to this object and close the handle",
            ),
            Error::BrokenPipe => f.write_str(
                "write to a pipe with no reader left: the data can never be read, close the handle",
            ),
            Error::TimedOut => f.write_str(
                "the deadline passed before the operation could complete: retry with a later deadline",
            ),
            Error::MessageTooLarge { limit } => write!(
                f,
                "the message is too large: this object accepts at most {limit} bytes, split it"
            ),
            Error::BufferTooSmall { needed } => write!(
                f,
                "the receive buffer is too small: pass a buffer of at least {needed} bytes"
            ),
            Error::NotFound => f.write_str("no object has this name: create it first, or check the spelling"),
            Error::AlreadyExists => f.write_str(
                "an object with this name already exists: open it instead, or unlink it first",
            ),
            Error::NameTooLong => write!(
                f,
                "the name is too long: names are at most {} bytes",
                crate::NAME_MAX
            ),
            Error::NoReader => f.write_str(
                "no process has the FIFO open for reading: open it blocking to wait for one",
            ),
            Error::Cancelled => f.write_str("the wait was cancelled by the kernel: retry the call if still wanted"),
            Error::Interrupted => f.write_str(
                "a signal interrupted the call before it made progress: retry it if still wanted",
            ),
            Error::OutOfHandles => f.write_str(
                "the handle table of the process is full: close handles you no longer need",
            ),
            Error::OutOfObjects => f.write_str(
                "the kernel table for this kind of object is full: close unused objects and retry",
            ),
            Error::OutOfFrames => f.write_str(
                "no physical frame is free: release shared regions or ask for fewer pages",
            ),
            Error::OutOfMappings => f.write_str(
                "the kernel mapping table is full: unmap regions you no longer use",
            ),
            Error::OutOfProcesses => f.write_str("the process table is full: wait for a process to exit"),
            Error::QuotaExceeded { quota } => write!(
                f,
                "this process has used up its quota of {}: release some before asking for more",
                match quota {
                    crate::Quota::Objects => "objects of this kind",
                    crate::Quota::Mappings => "region mappings",
                    crate::Quota::RegionFrames => "frames held by its regions",
                    crate::Quota::HandlesInFlight => "handles in flight",
                }
            ),
            Error::BadAddress => f.write_str(
                "a user buffer is not valid user memory (wraps, leaves user space, or is unmapped): \
                 fix the pointer or length",
            ),
            Error::BadHandle => f.write_str(
                "this value is not a handle of the calling process: pass a handle you were given",
            ),
            Error::StaleHandle => f.write_str(
                "this handle was closed; its slot no longer refers to the object: do not reuse closed handles",
            ),
            Error::WrongObjectKind => f.write_str(
                "the handle refers to another kind of object than this operation works on",
            ),
            Error::PermissionDenied => f.write_str(
                "the handle lacks a right this operation needs (or you asked to add rights): \
                 get a handle with the right, rights can only be reduced",
            ),
            Error::InvalidArgument => f.write_str(
                "an argument is out of range (size, priority, alignment, flags): check the documented limits",
            ),
            Error::NoSuchProcess => f.write_str(
                "the process id names no live process: it exited, or was never created",
            ),
            Error::AddressInUse => f.write_str(
                "the address range is already mapped: pick another address or let the kernel choose",
            ),
            Error::NotMapped => f.write_str("nothing is mapped at this address: pass the address a map call returned"),
        }
    }
}

/// The stable `#[repr(u32)]` error number user space sees; `0` means success.
///
/// The numbers never change once published; new errors get new numbers. Values 1–15 are
/// recoverable conditions, 32–47 exhaustion of a kernel resource, 64–95 faults.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The operation succeeded.
    Success = 0,
    /// See [`Error::WouldBlock`]: retry later or block.
    WouldBlock = 1,
    /// See [`Error::Full`]: the name registry is full.
    Full = 2,
    /// See [`Error::PeerClosed`]: the other side has gone.
    PeerClosed = 3,
    /// See [`Error::BrokenPipe`]: no reader is left on the pipe.
    BrokenPipe = 4,
    /// See [`Error::TimedOut`]: the deadline passed.
    TimedOut = 5,
    /// See [`Error::MessageTooLarge`]: the message exceeds the object's limit.
    MessageTooLarge = 6,
    /// See [`Error::BufferTooSmall`]: the receive buffer is too small.
    BufferTooSmall = 7,
    /// See [`Error::NotFound`]: no object has this name.
    NotFound = 8,
    /// See [`Error::AlreadyExists`]: the name is taken.
    AlreadyExists = 9,
    /// See [`Error::NameTooLong`]: the name exceeds [`crate::NAME_MAX`].
    NameTooLong = 10,
    /// See [`Error::NoReader`]: no reader for a non-blocking FIFO write open.
    NoReader = 11,
    /// See [`Error::Cancelled`]: the kernel cancelled the wait.
    Cancelled = 12,
    /// See [`Error::Interrupted`]: a signal interrupted the wait (`EINTR`).
    Interrupted = 13,
    /// See [`Error::OutOfHandles`]: the handle table is full.
    OutOfHandles = 32,
    /// See [`Error::OutOfObjects`]: the object table is full.
    OutOfObjects = 33,
    /// See [`Error::OutOfFrames`]: no free physical frame.
    OutOfFrames = 34,
    /// See [`Error::OutOfMappings`]: the mapping table is full.
    OutOfMappings = 35,
    /// See [`Error::OutOfProcesses`]: the process table is full.
    OutOfProcesses = 36,
    /// See [`Error::QuotaExceeded`]: the process used up one of its quotas.
    QuotaExceeded = 37,
    /// See [`Error::BadAddress`]: invalid user memory.
    BadAddress = 64,
    /// See [`Error::BadHandle`]: not a handle of this process.
    BadHandle = 65,
    /// See [`Error::StaleHandle`]: the handle was closed.
    StaleHandle = 66,
    /// See [`Error::WrongObjectKind`]: the handle names another kind of object.
    WrongObjectKind = 67,
    /// See [`Error::PermissionDenied`]: a right is missing.
    PermissionDenied = 68,
    /// See [`Error::InvalidArgument`]: an argument is out of range.
    InvalidArgument = 69,
    /// See [`Error::NoSuchProcess`]: no such live process.
    NoSuchProcess = 70,
    /// See [`Error::AddressInUse`]: the range is already mapped.
    AddressInUse = 71,
    /// See [`Error::NotMapped`]: nothing mapped there.
    NotMapped = 72,
}

impl From<Error> for ErrorCode {
    fn from(error: Error) -> Self {
        error.code()
    }
}

impl ErrorCode {
    /// The number handed to user space.
    pub const fn as_u32(self) -> u32 {
        self as u32
    }

    /// The code with number `value`, if there is one (user space decoding a result).
    pub const fn from_u32(value: u32) -> Option<ErrorCode> {
        use ErrorCode::*;
        const ALL: [ErrorCode; 29] = [
            Success,
            WouldBlock,
            Full,
            PeerClosed,
            BrokenPipe,
            TimedOut,
            MessageTooLarge,
            BufferTooSmall,
            NotFound,
            AlreadyExists,
            NameTooLong,
            NoReader,
            Cancelled,
            Interrupted,
            OutOfHandles,
            OutOfObjects,
            OutOfFrames,
            OutOfMappings,
            OutOfProcesses,
            QuotaExceeded,
            BadAddress,
            BadHandle,
            StaleHandle,
            WrongObjectKind,
            PermissionDenied,
            InvalidArgument,
            NoSuchProcess,
            AddressInUse,
            NotMapped,
        ];
        let mut index = 0;
        while index < ALL.len() {
            if ALL[index] as u32 == value {
                return Some(ALL[index]);
            }
            index += 1;
        }
        None
    }

    /// The code of a `Result`: [`ErrorCode::Success`] for `Ok`, the error's code otherwise.
    pub fn of<T>(result: &Result<T, Error>) -> Self {
        match result {
            Ok(_) => ErrorCode::Success,
            Err(error) => error.code(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Error; 28] = [
        Error::WouldBlock,
        Error::Full,
        Error::PeerClosed,
        Error::BrokenPipe,
        Error::TimedOut,
        Error::MessageTooLarge { limit: 1 },
        Error::BufferTooSmall { needed: 1 },
        Error::NotFound,
        Error::AlreadyExists,
        Error::NameTooLong,
        Error::NoReader,
        Error::Cancelled,
        Error::Interrupted,
        Error::OutOfHandles,
        Error::OutOfObjects,
        Error::OutOfFrames,
        Error::OutOfMappings,
        Error::OutOfProcesses,
        Error::QuotaExceeded {
            quota: crate::Quota::Mappings,
        },
        Error::BadAddress,
        Error::BadHandle,
        Error::StaleHandle,
        Error::WrongObjectKind,
        Error::PermissionDenied,
        Error::InvalidArgument,
        Error::NoSuchProcess,
        Error::AddressInUse,
        Error::NotMapped,
    ];

    #[test]
    fn codes_are_distinct_nonzero_and_grouped_by_class() {
        for (i, a) in ALL.iter().enumerate() {
            let code = ErrorCode::from(*a).as_u32();
            assert_ne!(code, 0);
            match a.class() {
                ErrorClass::Recoverable => assert!((1..16).contains(&code)),
                ErrorClass::Exhausted => assert!((32..48).contains(&code)),
                ErrorClass::Fault => assert!((64..96).contains(&code)),
            }
            for b in &ALL[i + 1..] {
                assert_ne!(code, ErrorCode::from(*b).as_u32(), "{a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn classification_is_exclusive() {
        for e in ALL {
            let n = [e.is_recoverable(), e.is_exhaustion(), e.is_fault()]
                .iter()
                .filter(|x| **x)
                .count();
            assert_eq!(n, 1, "{e:?}");
        }
        assert!(Error::WouldBlock.is_recoverable());
        assert!(Error::BadAddress.is_fault());
        assert!(Error::OutOfFrames.is_exhaustion());
    }

    #[test]
    fn display_teaches() {
        let text = Error::BufferTooSmall { needed: 64 }.to_string();
        assert!(text.contains("64"));
        assert!(ErrorCode::of::<()>(&Ok(())) == ErrorCode::Success);
        assert_eq!(
            ErrorCode::of::<()>(&Err(Error::TimedOut)),
            ErrorCode::TimedOut
        );
    }
}
