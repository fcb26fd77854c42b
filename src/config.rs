//! Configuration: every capacity and limit of an [`Ipc`](crate::Ipc), chosen by the
//! embedder at compile time in one type alias.
//!
//! Capacities that size storage are const generics of [`Ipc`](crate::Ipc) (stable Rust
//! cannot size an array from a trait's associated const); the rest — the pipe atomicity
//! limit and the per-process [`Quotas`] — come from a [`Limits`] type. Every parameter
//! after the first five has a default, so a kernel names only what it changes:
//!
//! ```
//! use kipc::{Ipc, Limits, Quotas};
//!
//! /// Quotas sized so that four processes can never starve each other.
//! struct MyLimits;
//! impl Limits for MyLimits {
//!     const QUOTAS: Quotas = Quotas {
//!         objects_per_kind: 1,
//!         mappings: 4,
//!         region_frames: 4,
//!         buffered_messages: 2,
//!         handles_in_flight: 2,
//!     };
//! }
//!
//! //                 processes, handles, objects, payload, pipe bytes,
//! //                 mailbox depth, queue depth, region pages, mappings, limits
//! type MyIpc = Ipc<4, 16, 4, 64, 512, 2, 2, 4, 16, MyLimits>;
//! assert!(core::mem::size_of::<MyIpc>() < 17 * 1024);
//! ```
//!
//! | parameter | sizes | default ([`DefaultIpc`](crate::DefaultIpc)) |
//! | --- | --- | --- |
//! | `PROCESSES` | process slots, ledger rows | 16 |
//! | `HANDLES` | handle slots per process | 64 |
//! | `OBJECTS` | slots per object kind (mailboxes, pipes, FIFO names, queues, regions, semaphores, notifications) | 16 |
//! | `PAYLOAD` | largest mailbox or queue message; every buffered message slot holds this many bytes | 256 |
//! | `PIPE_CAPACITY` | bytes buffered per pipe (a power of two) | 4096 |
//! | `MAILBOX_DEPTH` | messages a mailbox buffers | [`MAILBOX_DEPTH`](crate::MAILBOX_DEPTH) = 8 |
//! | `QUEUE_DEPTH` | the most messages a queue can be created to hold | [`MESSAGE_QUEUE_DEPTH`](crate::MESSAGE_QUEUE_DEPTH) = 16 |
//! | `REGION_PAGES` | the largest region or page loan, in pages | [`REGION_PAGES_MAX`](crate::REGION_PAGES_MAX) = 64 |
//! | `MAPPINGS` | region mappings across all address spaces | [`MAX_MAPPINGS`](crate::MAX_MAPPINGS) = 64 |
//! | `L:` [`Limits`] | pipe atomicity, per-process quotas | [`DefaultLimits`] |
//!
//! The static size of each table, for sizing a configuration (`P` processes, `O`
//! objects, and so on; every figure is a small multiple of the product shown):
//! handle tables `P × H × 32` bytes; mailboxes `O × MAILBOX_DEPTH × (PAYLOAD + 80)`;
//! message queues `O × QUEUE_DEPTH × (PAYLOAD + 32)`; pipes `O × PIPE_CAPACITY`;
//! regions `O × REGION_PAGES × 8`; mappings `MAPPINGS × 48`; the ledger
//! `(P + 1) × 512`. [`footprint`] gives the exact total of a configuration, and
//! `cargo run -- bench --footprint` prints the demo kernel's and a minimal one.

use crate::error::Error;

/// Per-process limits on what a process can take from the tables all processes share.
///
/// Without them one process could fill a shared table (every mapping, every pipe,
/// a server's whole mailbox) and deny everyone else. A call that would pass a quota
/// fails with [`Error::QuotaExceeded`] naming the quota, and changes nothing. If
/// `PROCESSES × quota ≤ capacity` for a table, no set of processes can exhaust it;
/// otherwise no *single* process can (as long as the quota is below the capacity).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Quotas {
    /// Live objects of each kind (mailboxes, pipes, FIFO names, message queues, regions,
    /// semaphores, notifications) a process may have created. Counted per kind.
    pub objects_per_kind: usize,
    /// Region mappings a process may hold in its address space.
    pub mappings: usize,
    /// Physical frames the regions a process created may hold in total (page loans
    /// included).
    pub region_frames: usize,
    /// Messages a process may have waiting, unreceived, in any one mailbox (whose depth
    /// the configuration fixes for everyone). A sender at this quota finds that mailbox
    /// full: it blocks (or gets [`Error::WouldBlock`]) until one of its messages is
    /// received, while other senders still find room. No error names this quota.
    /// (A message queue's depth is chosen by its creator, as in POSIX, and is not
    /// subject to it.)
    pub buffered_messages: usize,
    /// Handles a process may have sent that still travel inside buffered messages.
    pub handles_in_flight: usize,
}

impl Quotas {
    /// No quota: a single process may fill any table.
    pub const UNLIMITED: Quotas = Quotas {
        objects_per_kind: usize::MAX,
        mappings: usize::MAX,
        region_frames: usize::MAX,
        buffered_messages: usize::MAX,
        handles_in_flight: usize::MAX,
    };

    /// The quota of `kind`.
    pub const fn limit(&self, kind: Quota) -> usize {
        match kind {
            Quota::Objects => self.objects_per_kind,
            Quota::Mappings => self.mappings,
            Quota::RegionFrames => self.region_frames,
            Quota::HandlesInFlight => self.handles_in_flight,
        }
    }
}

/// Which quota a call ran into (carried by [`Error::QuotaExceeded`]).
///
/// Word-sized on purpose: [`Error`]'s other payloads are `usize`s at the same offset, so
/// every `Result<_, Error>` keeps one simple layout (a byte-sized payload here made the
/// compiler pack results oddly and cost every system call a few instructions).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(usize)]
pub enum Quota {
    /// [`Quotas::objects_per_kind`].
    Objects,
    /// [`Quotas::mappings`].
    Mappings,
    /// [`Quotas::region_frames`].
    RegionFrames,
    /// [`Quotas::handles_in_flight`].
    HandlesInFlight,
}

/// The limits of a configuration that do not size storage.
pub trait Limits {
    /// Pipe writes of at most this many bytes are atomic (never interleaved with another
    /// writer's); capped at the pipe's capacity.
    const PIPE_ATOMIC: usize = crate::PIPE_ATOMIC;
    /// Per-process quotas.
    const QUOTAS: Quotas = DefaultLimits::QUOTAS_OF_DEFAULT;
}

/// The default limits: 512-byte atomic pipe writes, and quotas that leave at least half
/// of every default-sized table to the other processes.
#[derive(Clone, Copy, Debug)]
pub struct DefaultLimits;

impl DefaultLimits {
    /// The default quotas: half of each table of [`DefaultIpc`](crate::DefaultIpc)
    /// (8 of 16 objects per kind, 32 of 64 mappings, 256 frames of regions, 4 of a
    /// mailbox's 8 message slots, 16 handles in flight).
    pub const QUOTAS_OF_DEFAULT: Quotas = Quotas {
        objects_per_kind: 8,
        mappings: 32,
        region_frames: 256,
        buffered_messages: 4,
        handles_in_flight: 16,
    };
}

impl Limits for DefaultLimits {}

/// No quotas (a single process may fill any table); for tests of table exhaustion and
/// kernels that trust every process.
#[derive(Clone, Copy, Debug)]
pub struct Unlimited;

impl Limits for Unlimited {
    const QUOTAS: Quotas = Quotas::UNLIMITED;
}

/// The limits of [`MinimalIpc`]: one object of each kind per process (4 processes × 1
/// = the 4 slots of each table, so no process can ever be denied its object), 4
/// mappings, 8 frames of regions, 1 buffered message per sender and mailbox, 2 handles
/// in flight.
#[derive(Clone, Copy, Debug)]
pub struct MinimalLimits;

impl Limits for MinimalLimits {
    const PIPE_ATOMIC: usize = 256;
    const QUOTAS: Quotas = Quotas {
        objects_per_kind: 1,
        mappings: 4,
        region_frames: 8,
        buffered_messages: 1,
        handles_in_flight: 2,
    };
}

/// A useful minimal configuration, under 17 KiB (16.7 KiB, of which signals take 540
/// bytes per process slot): 4 processes with 16 handles each, 4
/// objects of each kind, 64-byte messages, 512-byte pipes, 2-message mailboxes,
/// 4-message queues, 8-page regions, 16 mappings, [`MinimalLimits`]. Every mechanism
/// works; the minimal kernel (`qemu/minimal-kernel`) runs on it.
///
/// ```
/// assert!(kipc::footprint::<kipc::MinimalIpc>() < 17 * 1024);
/// ```
pub type MinimalIpc = crate::Ipc<4, 16, 4, 64, 512, 2, 4, 8, 16, MinimalLimits>;

/// The static size in bytes of an IPC core of type `I` (for example
/// `kipc::footprint::<kipc::DefaultIpc>()`): what a `static` of it occupies.
pub const fn footprint<I>() -> usize {
    core::mem::size_of::<I>()
}

/// Fails with [`Error::QuotaExceeded`] naming `kind` when `used + more` passes `limit`.
pub(crate) const fn charge(
    limit: usize,
    kind: Quota,
    used: usize,
    more: usize,
) -> Result<(), Error> {
    if used.saturating_add(more) > limit {
        Err(Error::QuotaExceeded { quota: kind })
    } else {
        Ok(())
    }
}
