//! kipc: inter-process communication for small microkernels, with copy accounting.
//!
//! kipc is the portable IPC core of a microkernel: mailboxes, pipes, FIFOs, message queues,
//! shared regions and page loans, semaphores and notifications, per-process handle tables
//! with rights — and a ledger that counts every byte each mechanism copies. It is `no_std`,
//! needs no allocator (every table is bounded, sized by const generics), contains no
//! `unsafe` outside two places (the field-by-field writes of [`Ipc::init_in_place`], and
//! the two calls of the optional `x86_64_adapter` module that the `x86_64` crate marks
//! unsafe), and talks to the kernel that embeds it only through a few traits.
//!
//! # Where things are
//!
//! One file per mechanism, each opening with a chapter on its semantics:
//! [`mailbox`], [`pipe`], [`fifo`], [`mqueue`], [`shm`] (regions and page loans),
//! [`semaphore`], [`notification`]. Around them: [`handle`] and [`rights`] (capabilities),
//! [`umem`] (validated user buffers), [`host`] (the traits the kernel implements),
//! [`wait`] (the blocking model), [`accounting`] (the ledger), [`error`] (errors and ABI
//! codes), [`object`] (object tables) and [`kernel`] (the façade, [`Ipc`]). With the
//! `x86_64` cargo feature, `x86_64_adapter` implements the memory traits over the
//! `x86_64` crate's page tables.
//!
//! # The host-kernel contract
//!
//! The embedding kernel implements [`UserMemory`] (copy in, copy out and user-to-user
//! through [`UserSlice`] allegations, returning a [`Fault`] instead of touching bad
//! memory), [`AddressSpace`] (map/unmap/translate pages, pick a free range, flush),
//! [`FrameAllocator`], [`Clock`] and [`Wake`]. Any type implementing all five is a
//! [`Host`]. The kernel keeps one [`Ipc`] (for example `static IPC:
//! spin::Mutex<DefaultIpc>`; [`Ipc::new`] is `const`), registers each process with
//! [`Ipc::process_create`], and turns each IPC system call into one façade method,
//! passing the caller's [`ProcessId`] and itself as the host. Errors become stable numbers
//! with [`ErrorCode::from`]; `0` is success.
//!
//! # The blocking model
//!
//! kipc never sleeps. A call that cannot proceed returns `Err(Error::WouldBlock)` in its
//! non-blocking form; in its blocking form it records the caller as a waiter and returns
//! [`Outcome::Blocked`], and the kernel parks the process. Calls that make progress report
//! every waiter they release through [`Wake::wake`], saying how to resume it:
//! [`Wakeup::Retry`] (re-issue the same call), [`Wakeup::Completed`] (the call was done on
//! its behalf — e.g. a mailbox receive satisfied by a direct hand-off; deliver the
//! [`Completion`]) or [`Wakeup::Failed`] (return the error). Deadlines: pass
//! [`Blocking::Until`] and call [`Ipc::expire`] from the timer (the next deadline is
//! [`Ipc::next_deadline`]). [`Ipc::cancel_wait`] withdraws a wait; [`Ipc::process_exit`]
//! cleans up everything a process held.
//!
//! # The accounting model
//!
//! Every copy goes through the [`Ledger`]'s accounted wrappers, which count it (after it
//! succeeded) by [`Mechanism`], [`Direction`] and process; mapped and loaned pages are
//! counted apart. [`Ipc::ledger_snapshot`] returns the ledger, [`Ipc::ledger_reset`]
//! starts a new experiment, and the kernel's own services count their copies in the same
//! ledger with [`Ipc::copy_to_user_accounted`] / [`Ipc::copy_from_user_accounted`]. A file
//! sent through a pipe, a FIFO, a message queue or a buffered mailbox costs 4 copies per
//! byte (file→server, server→kernel, kernel→client, client→file); through a mailbox to a
//! waiting receiver 3; through a shared region 2; by page loan 0.
//!
//! # Example: embedding kipc
//!
//! A complete (if tiny) host: flat memory per process, a page table in a map, a bump frame
//! allocator, a clock and a wake log. Two processes talk through a pipe.
//!
//! ```
//! use std::collections::BTreeMap;
//! use kipc::*;
//!
//! /// The kernel's single IPC instance, built at compile time.
//! static IPC: spin::Mutex<DefaultIpc> = spin::Mutex::new(DefaultIpc::new());
//!
//! struct Kernel {
//!     memory: BTreeMap<usize, Vec<u8>>,               // per-process RAM, address = offset
//!     pages: BTreeMap<(usize, u64), (Frame, Access)>, // toy page tables
//!     next_frame: u64,
//!     ticks: u64,
//!     woken: Vec<(ProcessId, Wakeup)>,                 // the scheduler's run queue
//! }
//!
//! impl UserMemory for Kernel {
//!     fn user_limit(&self) -> UserLimit { UserLimit::new(0x1_0000) }
//!     fn copy_from_user(&mut self, p: ProcessId, src: UserSlice, dst: &mut [u8]) -> Result<(), Fault> {
//!         let ram = self.memory.get(&p.slot()).ok_or(Fault)?;
//!         let a = src.address() as usize;
//!         dst.copy_from_slice(ram.get(a..a + src.len()).ok_or(Fault)?);
//!         Ok(())
//!     }
//!     fn copy_to_user(&mut self, p: ProcessId, dst: UserSlice, src: &[u8]) -> Result<(), Fault> {
//!         let ram = self.memory.get_mut(&p.slot()).ok_or(Fault)?;
//!         let a = dst.address() as usize;
//!         ram.get_mut(a..a + dst.len()).ok_or(Fault)?.copy_from_slice(src);
//!         Ok(())
//!     }
//!     fn copy_user_to_user(&mut self, from: ProcessId, src: UserSlice, to: ProcessId, dst: UserSlice) -> Result<(), Fault> {
//!         let mut bytes = vec![0; src.len()];
//!         self.copy_from_user(from, src, &mut bytes)?;
//!         self.copy_to_user(to, dst, &bytes)
//!     }
//! }
//!
//! impl AddressSpace for Kernel {
//!     fn map_page(&mut self, p: ProcessId, at: u64, frame: Frame, access: Access) -> Result<(), Error> {
//!         if self.pages.insert((p.slot(), at), (frame, access)).is_some() { return Err(Error::AddressInUse); }
//!         Ok(())
//!     }
//!     fn unmap_page(&mut self, p: ProcessId, at: u64) -> Result<Frame, Error> {
//!         self.pages.remove(&(p.slot(), at)).map(|(f, _)| f).ok_or(Error::NotMapped)
//!     }
//!     fn translate(&self, p: ProcessId, at: u64) -> Option<(Frame, Access)> {
//!         self.pages.get(&(p.slot(), at)).copied()
//!     }
//!     fn find_free_range(&mut self, _: ProcessId, _: usize) -> Option<u64> { Some(0x8000) }
//!     fn flush(&mut self, _: ProcessId, _: u64, _: usize) {}
//! }
//!
//! impl FrameAllocator for Kernel {
//!     fn allocate_frame(&mut self) -> Option<Frame> {
//!         self.next_frame += PAGE_SIZE as u64;
//!         Frame::new(self.next_frame)
//!     }
//!     fn free_frame(&mut self, _: Frame) {}
//! }
//!
//! impl Clock for Kernel {
//!     fn now(&self) -> u64 { self.ticks }
//! }
//!
//! impl Wake for Kernel {
//!     fn wake(&mut self, p: ProcessId, how: Wakeup) { self.woken.push((p, how)); }
//! }
//!
//! let mut kernel = Kernel {
//!     memory: BTreeMap::new(), pages: BTreeMap::new(), next_frame: 0, ticks: 0, woken: Vec::new(),
//! };
//! let mut ipc = IPC.lock();
//! let producer = ipc.process_create().unwrap();
//! let consumer = ipc.process_create().unwrap();
//! kernel.memory.insert(producer.slot(), vec![0; 0x1_0000]);
//! kernel.memory.insert(consumer.slot(), vec![0; 0x1_0000]);
//!
//! // The kernel starts the consumer with the read end of a pipe.
//! let (read, write) = ipc.pipe_create(producer).unwrap();
//! let read_end = ipc.handle_grant(producer, read, consumer, Rights::READ).unwrap();
//! ipc.handle_close(producer, read, &mut kernel).unwrap();
//!
//! // System call from the consumer: read(read_end, 0x100, 64). Nothing there yet: it blocks.
//! let buffer = UserSlice::new(0x100, 64, kernel.user_limit()).unwrap();
//! let outcome = ipc.pipe_read(consumer, read_end, buffer, Blocking::Forever, &mut kernel);
//! assert_eq!(outcome, Ok(Outcome::Blocked)); // the scheduler parks the consumer
//!
//! // System call from the producer: write(write, 0x200, 5).
//! kernel.memory.get_mut(&producer.slot()).unwrap()[0x200..0x205].copy_from_slice(b"hello");
//! let data = UserSlice::new(0x200, 5, kernel.user_limit()).unwrap();
//! assert_eq!(ipc.pipe_write(producer, write, data, Blocking::Forever, &mut kernel), Ok(Outcome::Done(5)));
//!
//! // kipc filled the consumer's parked read and asks the kernel to wake it with the
//! // result: its read returns 5, the bytes already in its buffer.
//! assert_eq!(kernel.woken.pop(), Some((consumer, Wakeup::Completed(Completion::Read(5)))));
//! assert_eq!(&kernel.memory[&consumer.slot()][0x100..0x105], b"hello");
//!
//! // The producer exits: its write end closes, and the consumer sees end of file.
//! ipc.process_exit(producer, &mut kernel).unwrap();
//! assert_eq!(ipc.pipe_read(consumer, read_end, buffer, Blocking::Forever, &mut kernel), Ok(Outcome::Done(0)));
//!
//! // Errors reach user space as stable numbers.
//! let stale = ipc.pipe_read(consumer, write, buffer, Blocking::NonBlocking, &mut kernel);
//! assert_eq!(ErrorCode::of(&stale), ErrorCode::BadHandle);
//!
//! // The ledger: 5 bytes in, 5 bytes out, both counted under Pipe.
//! let ledger = ipc.ledger_snapshot();
//! assert_eq!(ledger.global().copies(Mechanism::Pipe, Direction::UserToKernel).bytes, 5);
//! assert_eq!(ledger.global().copies(Mechanism::Pipe, Direction::KernelToUser).bytes, 5);
//! assert_eq!(ledger.process(consumer).unwrap().total_bytes(), 5);
//! ```
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_op_in_unsafe_fn)]
#![deny(missing_docs)]

pub mod accounting;
pub mod config;
pub mod error;
pub mod fastpath;
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
pub mod signal;
pub mod umem;
pub mod wait;
#[cfg(any(feature = "x86_64", test))]
pub mod x86_64_adapter;

#[cfg(test)]
mod testing;

pub use accounting::{Counter, Counters, Direction, Ledger, Mechanism};
pub use config::{
    DefaultLimits, Limits, MinimalIpc, MinimalLimits, Quota, Quotas, Unlimited, footprint,
};
pub use error::{Error, ErrorClass, ErrorCode};
pub use fastpath::Handoff;
pub use handle::{Handle, HandleTable};
pub use host::{
    Access, AddressSpace, Clock, Fault, Frame, FrameAllocator, Host, PAGE_SIZE, ProcessId,
    UserMemory,
};
pub use kernel::{DefaultIpc, HandleInfo, Ipc, Usage};
pub use mqueue::{QueueAttributes, QueueOpen, QueuedMessage};
pub use name::Name;
pub use object::ObjectKind;
pub use rights::Rights;
pub use signal::{
    DefaultAction, Delivery, Disposition, MaskHow, Posted, Signal, SignalAction, SignalFlags,
    SignalSet,
};
pub use umem::{UserLimit, UserSlice};
pub use wait::{Blocking, Completion, OpenMode, Outcome, Received, Wake, Wakeup};

/// Messages a mailbox buffers before senders block: the default of [`Ipc`]'s
/// `MAILBOX_DEPTH` parameter (see [`config`]).
pub const MAILBOX_DEPTH: usize = 8;
/// Handles one mailbox message can carry.
pub const MAX_MESSAGE_HANDLES: usize = 4;
/// The most messages a message queue can be created to hold: the default of [`Ipc`]'s
/// `QUEUE_DEPTH` parameter.
pub const MESSAGE_QUEUE_DEPTH: usize = 16;
/// Message-queue priorities are `0..PRIORITY_LEVELS`; higher is more urgent.
pub const PRIORITY_LEVELS: u8 = 32;
/// Pipe writes of at most this many bytes are atomic (never interleaved): the default of
/// [`Limits::PIPE_ATOMIC`].
pub const PIPE_ATOMIC: usize = 512;
/// The longest FIFO or message-queue name, in bytes.
pub const NAME_MAX: usize = 32;
/// The largest shared region or page loan, in pages: the default of [`Ipc`]'s
/// `REGION_PAGES` parameter.
pub const REGION_PAGES_MAX: usize = 64;
/// Region mappings the kernel tracks across all address spaces: the default of [`Ipc`]'s
/// `MAPPINGS` parameter (each process is further held to [`Quotas::mappings`]).
pub const MAX_MAPPINGS: usize = 64;
