//! The host-kernel contract: the traits an embedding kernel implements.
//!
//! kipc never touches hardware, page tables or user memory itself. It asks the host:
//!
//! * [`UserMemory`] — copy bytes in from and out to a process's memory, and between two
//!   processes, through validated [`UserSlice`] allegations, reporting a [`Fault`] instead
//!   of touching bad memory;
//! * [`AddressSpace`] — map and unmap physical frames at user virtual addresses, look up the
//!   frame behind a page, pick a free range, flush translations;
//! * [`FrameAllocator`] — allocate and free physical frames;
//! * [`Clock`] — the current time, for deadlines;
//! * [`crate::Wake`] — be told which blocked process to wake and how.
//!
//! [`Host`] bundles them; it is implemented automatically for any type that implements all
//! five. Task identity is a [`ProcessId`] issued by [`crate::Ipc::process_create`]; the host
//! passes the caller's id to every system call.

use crate::error::Error;
use crate::umem::{UserLimit, UserSlice};
use crate::wait::Wake;

/// The size of a page and of a physical frame: 4 KiB.
pub const PAGE_SIZE: usize = 4096;

/// Identity of a process: a slot in the process table plus the slot's generation.
///
/// A process that exits and whose slot is reused gets a new generation, so an old id is
/// detected ([`Error::NoSuchProcess`]) instead of naming the newcomer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProcessId {
    slot: u16,
    generation: u32,
}

impl ProcessId {
    pub(crate) const fn new(slot: usize, generation: u32) -> ProcessId {
        ProcessId {
            slot: slot as u16,
            generation,
        }
    }

    /// Index of the process in the process table (`0..PROCESSES`); hosts may use it to index
    /// their own per-process arrays.
    pub const fn slot(self) -> usize {
        self.slot as usize
    }

    /// Generation of the slot when this process was created.
    pub const fn generation(self) -> u32 {
        self.generation
    }

    /// Packs the id into 64 bits (generation high, slot low), e.g. for a register.
    pub const fn into_raw(self) -> u64 {
        ((self.generation as u64) << 16) | self.slot as u64
    }

    /// Unpacks an id produced by [`ProcessId::into_raw`]; validity is checked on use.
    pub const fn from_raw(raw: u64) -> ProcessId {
        ProcessId {
            slot: (raw & 0xffff) as u16,
            generation: (raw >> 16) as u32,
        }
    }
}

/// A 4 KiB physical frame, named by its physical address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Frame(u64);

impl Frame {
    /// The frame starting at `physical_address` (must be 4 KiB aligned; checked).
    pub const fn new(physical_address: u64) -> Option<Frame> {
        if physical_address.is_multiple_of(PAGE_SIZE as u64) {
            Some(Frame(physical_address))
        } else {
            None
        }
    }

    /// The physical start address.
    pub const fn address(self) -> u64 {
        self.0
    }

    /// A placeholder for buffers that [`AddressSpace::unmap_pages`] fills.
    pub(crate) const PLACEHOLDER: Frame = Frame(0);
}

/// How a page may be accessed by user code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    /// Read (and execute, if the host allows) only.
    ReadOnly,
    /// Read and write.
    ReadWrite,
}

/// A user-memory access failed: the page is absent, or the access is not allowed.
///
/// The core turns it into [`Error::BadAddress`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Fault;

impl From<Fault> for Error {
    fn from(_: Fault) -> Error {
        Error::BadAddress
    }
}

/// Copying through user-buffer allegations.
///
/// The core guarantees that the slice lengths passed to each method are equal and that
/// every [`UserSlice`] was validated against [`UserMemory::user_limit`]. The implementation
/// must check that the pages are present in the named process with the needed access and
/// return `Err(Fault)` (having copied nothing or a prefix — the core treats the whole call as
/// failed) instead of touching bad memory.
pub trait UserMemory {
    /// The end of user space, used to validate [`UserSlice`]s.
    fn user_limit(&self) -> UserLimit;

    /// Copies `destination.len()` bytes from `source` in `process` into kernel memory.
    fn copy_from_user(
        &mut self,
        process: ProcessId,
        source: UserSlice,
        destination: &mut [u8],
    ) -> Result<(), Fault>;

    /// Copies `source` from kernel memory into `destination` in `process`.
    fn copy_to_user(
        &mut self,
        process: ProcessId,
        destination: UserSlice,
        source: &[u8],
    ) -> Result<(), Fault>;

    /// Copies between two processes' memories in one step (no kernel bounce buffer).
    fn copy_user_to_user(
        &mut self,
        from: ProcessId,
        source: UserSlice,
        to: ProcessId,
        destination: UserSlice,
    ) -> Result<(), Fault>;
}

/// Per-process page tables, as far as kipc needs them.
///
/// Addresses are page-aligned user virtual addresses; the core validates them against the
/// user limit before calling.
pub trait AddressSpace {
    /// Maps `frame` at `address` in `process` with `access`. Must fail with
    /// [`Error::AddressInUse`] if a page is already mapped there (or [`Error::OutOfFrames`]
    /// if a page-table frame could not be allocated).
    fn map_page(
        &mut self,
        process: ProcessId,
        address: u64,
        frame: Frame,
        access: Access,
    ) -> Result<(), Error>;

    /// Removes the mapping at `address` in `process` and returns the frame that was mapped
    /// (the frame itself is not freed). Fails with [`Error::NotMapped`].
    fn unmap_page(&mut self, process: ProcessId, address: u64) -> Result<Frame, Error>;

    /// The frame and access of the page mapped at `address` in `process`, if any.
    fn translate(&self, process: ProcessId, address: u64) -> Option<(Frame, Access)>;

    /// Maps `frames` at consecutive pages from `address` in `process` with `access`, all
    /// or nothing: on failure (the errors of [`AddressSpace::map_page`]) every page this
    /// call mapped is unmapped again. The default maps page by page; a host can do a
    /// whole run with one page-table walk.
    fn map_pages(
        &mut self,
        process: ProcessId,
        address: u64,
        frames: &[Frame],
        access: Access,
    ) -> Result<(), Error> {
        for (index, frame) in frames.iter().enumerate() {
            if let Err(error) = self.map_page(process, page_address(address, index), *frame, access)
            {
                for undo in 0..index {
                    let _ = self.unmap_page(process, page_address(address, undo));
                }
                return Err(error);
            }
        }
        Ok(())
    }

    /// Removes the mappings of `frames.len()` consecutive pages from `address` in
    /// `process`, storing each page's frame in `frames` (the frames are not freed), and
    /// returns the narrowest access among them ([`Access::ReadOnly`] if any page was
    /// read-only). All or nothing: if any page is not mapped, fails with
    /// [`Error::NotMapped`] having changed nothing. The default translates every page,
    /// then unmaps page by page; a host can do a whole run with one page-table walk.
    fn unmap_pages(
        &mut self,
        process: ProcessId,
        address: u64,
        frames: &mut [Frame],
    ) -> Result<Access, Error> {
        let mut narrowest = Access::ReadWrite;
        for (index, slot) in frames.iter_mut().enumerate() {
            let (frame, access) = self
                .translate(process, page_address(address, index))
                .ok_or(Error::NotMapped)?;
            *slot = frame;
            if access == Access::ReadOnly {
                narrowest = Access::ReadOnly;
            }
        }
        for index in 0..frames.len() {
            if let Err(error) = self.unmap_page(process, page_address(address, index)) {
                // A page `translate` reported could not be unmapped: put back what was
                // taken, so the call stays all or nothing.
                for (undo, frame) in frames.iter().enumerate().take(index) {
                    let _ = self.map_page(process, page_address(address, undo), *frame, narrowest);
                }
                return Err(error);
            }
        }
        Ok(narrowest)
    }

    /// A free, page-aligned range of `pages` pages in `process`, chosen by the host.
    fn find_free_range(&mut self, process: ProcessId, pages: usize) -> Option<u64>;

    /// Flushes stale translations for `pages` pages at `address` in `process` (TLB
    /// shootdown). Called after unmapping or remapping.
    fn flush(&mut self, process: ProcessId, address: u64, pages: usize);
}

/// The host's physical frame allocator.
///
/// The implementer vouches that a frame is handed out only once until it is freed. kipc
/// frees exactly the frames it allocated, plus the frames of loaned pages (which the
/// host originally gave to the lending process).
pub trait FrameAllocator {
    /// A free, zeroed frame, or `None` when physical memory is exhausted.
    fn allocate_frame(&mut self) -> Option<Frame>;

    /// Returns `frame` to the allocator.
    fn free_frame(&mut self, frame: Frame);

    /// Returns every frame in `frames` to the allocator, in order. The default frees them
    /// one by one; a host can free a batch under one lock.
    fn free_frames(&mut self, frames: &[Frame]) {
        for frame in frames {
            self.free_frame(*frame);
        }
    }
}

/// The address of page `index` of a run starting at `address` (the core validated the
/// whole run against the user limit, so this does not wrap).
const fn page_address(address: u64, index: usize) -> u64 {
    address + (index * PAGE_SIZE) as u64
}

/// A monotonic clock for deadlines. The unit is the host's choice (ticks, nanoseconds);
/// deadlines passed to kipc use the same unit.
pub trait Clock {
    /// The current time.
    fn now(&self) -> u64;
}

impl<T: Clock + ?Sized> Clock for &mut T {
    fn now(&self) -> u64 {
        (**self).now()
    }
}

/// Everything kipc needs from its host, in one bound. Implemented automatically.
pub trait Host: UserMemory + AddressSpace + FrameAllocator + Clock + Wake {}

impl<T: UserMemory + AddressSpace + FrameAllocator + Clock + Wake> Host for T {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        let p = ProcessId::new(5, 77);
        assert_eq!(ProcessId::from_raw(p.into_raw()), p);
        assert_eq!(p.slot(), 5);
        assert!(Frame::new(4097).is_none());
        assert_eq!(Frame::new(8192).unwrap().address(), 8192);
    }
}
