//! kipc: inter-process communication for small microkernels.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_op_in_unsafe_fn)]
#![deny(missing_docs)]

pub mod accounting;
pub mod error;
pub mod fifo;
pub mod handle;
pub mod host;
pub mod kernel;
pub mod mailbox;
pub mod mqueue;
pub mod name;
pub mod notification;
pub mod object;
pub mod pipe;
pub mod rights;
pub mod semaphore;
pub mod shm;
pub mod umem;
pub mod wait;

#[cfg(test)]
mod testing;

pub use accounting::{Counter, Counters, Direction, Ledger, Mechanism};
pub use error::{Error, ErrorClass, ErrorCode};
pub use handle::{Handle, HandleTable};
pub use host::{Access, AddressSpace, Clock, Fault, Frame, FrameAllocator, Host, PAGE_SIZE, ProcessId, UserMemory};
pub use kernel::{DefaultIpc, HandleInfo, Ipc, Usage};
pub use mqueue::{QueueAttributes, QueuedMessage};
pub use name::Name;
pub use object::ObjectKind;
pub use rights::Rights;
pub use umem::{UserLimit, UserSlice};
pub use wait::{Blocking, Completion, OpenMode, Outcome, Received, Wake, Wakeup};

/// Messages a mailbox buffers before senders block.
pub const MAILBOX_DEPTH: usize = 8;
/// Handles one mailbox message can carry.
pub const MAX_MESSAGE_HANDLES: usize = 4;
/// The most messages a message queue can be created to hold.
pub const MESSAGE_QUEUE_DEPTH: usize = 16;
/// Message-queue priorities are `0..PRIORITY_LEVELS`; higher is more urgent.
pub const PRIORITY_LEVELS: u8 = 32;
/// Pipe writes of at most this many bytes are atomic (never interleaved).
pub const PIPE_ATOMIC: usize = 512;
/// The longest FIFO or message-queue name, in bytes.
pub const NAME_MAX: usize = 32;
/// The largest shared region or page loan, in pages.
pub const REGION_PAGES_MAX: usize = 64;
/// Region mappings the kernel tracks across all address spaces.
pub const MAX_MAPPINGS: usize = 64;
