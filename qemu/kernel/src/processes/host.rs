//! The kernel's side of the kipc host contract: how kipc reaches user memory,
//! page tables, frames, the clock and the scheduler of this kernel.
//!
//! [`KernelHost`] borrows the process table for the length of one kipc call.
//! User copies go through [`AddressSpace`]'s checked page-table walk, so a bad
//! user pointer becomes `kipc::Fault` and never a kernel page fault.

use kipc::{Access, Fault, Frame, ProcessId, UserLimit, UserSlice, Wakeup};

use super::breakdown::{measured, measured_copy};
use super::table::Processes;
use crate::memory;
use crate::memory::address_space::{AddressSpace, MapError, USER_END, UserAccess};

/// Lowest address kipc may pick for a mapping (shared regions, loans).
pub const MAPPING_AREA_START: u64 = 0x0000_1000_0000_0000;
/// End of the area kipc may pick addresses in.
pub const MAPPING_AREA_END: u64 = 0x0000_2000_0000_0000;

/// kipc's view of this kernel, for one call.
pub struct KernelHost<'a> {
    /// The process table (address spaces and scheduler).
    pub processes: &'a mut Processes,
}

impl KernelHost<'_> {
    fn space(&self, process: ProcessId) -> Result<&AddressSpace, Fault> {
        self.processes
            .get(process)
            .map(|process| &process.space)
            .ok_or(Fault)
    }
}

impl kipc::UserMemory for KernelHost<'_> {
    fn user_limit(&self) -> UserLimit {
        UserLimit::new(USER_END)
    }

    fn copy_from_user(
        &mut self,
        process: ProcessId,
        source: UserSlice,
        destination: &mut [u8],
    ) -> Result<(), Fault> {
        let space = self.space(process)?;
        measured_copy!(space.copy_from_user(source.address(), destination)).map_err(|_| Fault)
    }

    fn copy_to_user(
        &mut self,
        process: ProcessId,
        destination: UserSlice,
        source: &[u8],
    ) -> Result<(), Fault> {
        let space = self.space(process)?;
        measured_copy!(space.copy_to_user(destination.address(), source)).map_err(|_| Fault)
    }

    #[inline(always)]
    fn copy_user_to_user(
        &mut self,
        from: ProcessId,
        source: UserSlice,
        to: ProcessId,
        destination: UserSlice,
    ) -> Result<(), Fault> {
        let from_space = self.space(from)?;
        let to_space = self.space(to)?;
        measured_copy!({
            AddressSpace::copy_between(
                from_space,
                source.address(),
                to_space,
                destination.address(),
                source.len(),
            )
        })
        .map_err(|_| Fault)
    }
}

impl kipc::AddressSpace for KernelHost<'_> {
    fn map_page(
        &mut self,
        process: ProcessId,
        address: u64,
        frame: Frame,
        access: Access,
    ) -> Result<(), kipc::Error> {
        let space = &mut self
            .processes
            .get_mut(process)
            .ok_or(kipc::Error::NoSuchProcess)?
            .space;
        let access = UserAccess {
            writable: access == Access::ReadWrite,
            executable: false,
        };
        // kipc owns these frames (regions, loans) and frees them itself.
        space
            .map(
                address,
                x86_64::PhysAddr::new(frame.address()),
                access,
                false,
            )
            .map_err(|error| match error {
                MapError::OutOfFrames => kipc::Error::OutOfFrames,
                MapError::AlreadyMapped => kipc::Error::AddressInUse,
                MapError::BadAddress => kipc::Error::BadAddress,
            })
    }

    fn unmap_page(&mut self, process: ProcessId, address: u64) -> Result<Frame, kipc::Error> {
        let space = &mut self
            .processes
            .get_mut(process)
            .ok_or(kipc::Error::NoSuchProcess)?
            .space;
        let (frame, _owned) = space.unmap(address).ok_or(kipc::Error::NotMapped)?;
        Frame::new(frame.as_u64()).ok_or(kipc::Error::NotMapped)
    }

    fn map_pages(
        &mut self,
        process: ProcessId,
        address: u64,
        frames: &[Frame],
        access: Access,
    ) -> Result<(), kipc::Error> {
        let space = &mut self
            .processes
            .get_mut(process)
            .ok_or(kipc::Error::NoSuchProcess)?
            .space;
        let access = UserAccess {
            writable: access == Access::ReadWrite,
            executable: false,
        };
        // kipc owns these frames (regions, loans) and frees them itself.
        space
            .map_range(
                address,
                frames.len(),
                |index| frames[index].address(),
                access,
                false,
            )
            .map_err(|error| match error {
                MapError::OutOfFrames => kipc::Error::OutOfFrames,
                MapError::AlreadyMapped => kipc::Error::AddressInUse,
                MapError::BadAddress => kipc::Error::BadAddress,
            })
    }

    fn unmap_pages(
        &mut self,
        process: ProcessId,
        address: u64,
        frames: &mut [Frame],
    ) -> Result<Access, kipc::Error> {
        let space = &mut self
            .processes
            .get_mut(process)
            .ok_or(kipc::Error::NoSuchProcess)?
            .space;
        let pages = frames.len();
        let writable = space
            .unmap_range(address, pages, |index, frame| {
                // Leaf entries hold page-aligned addresses.
                if let Some(frame) = Frame::new(frame) {
                    frames[index] = frame;
                }
            })
            .ok_or(kipc::Error::NotMapped)?;
        Ok(if writable {
            Access::ReadWrite
        } else {
            Access::ReadOnly
        })
    }

    fn translate(&self, process: ProcessId, address: u64) -> Option<(Frame, Access)> {
        let (frame, flags) = self.processes.get(process)?.space.translate(address)?;
        let access = if flags.contains(x86_64::structures::paging::PageTableFlags::WRITABLE) {
            Access::ReadWrite
        } else {
            Access::ReadOnly
        };
        Some((Frame::new(frame.as_u64())?, access))
    }

    fn find_free_range(&mut self, process: ProcessId, pages: usize) -> Option<u64> {
        self.processes.get(process)?.space.find_free_range(
            pages,
            MAPPING_AREA_START,
            MAPPING_AREA_END,
        )
    }

    fn flush(&mut self, _process: ProcessId, _address: u64, _pages: usize) {
        // `AddressSpace::map`/`unmap` flush the TLB entry of each page as they
        // change it (one CPU), and other spaces' entries die with CR3 reloads.
    }
}

impl kipc::FrameAllocator for KernelHost<'_> {
    fn allocate_frame(&mut self) -> Option<Frame> {
        Frame::new(memory::allocate_frame()?.as_u64())
    }

    fn free_frame(&mut self, frame: Frame) {
        // SAFETY: kipc frees only frames it allocated through
        // `allocate_frame` above or that were loaned to it, and only once
        // nothing maps them.
        unsafe { memory::free_frame(x86_64::PhysAddr::new(frame.address())) };
    }

    fn free_frames(&mut self, frames: &[Frame]) {
        // SAFETY: as in `free_frame`, for each frame.
        unsafe { memory::free_frames(frames.iter().map(|frame| frame.address())) };
    }
}

impl kipc::Clock for KernelHost<'_> {
    fn now(&self) -> u64 {
        kipc_arch::timer::ticks()
    }
}

impl kipc::Wake for KernelHost<'_> {
    #[inline(always)]
    fn wake(&mut self, process: ProcessId, wakeup: Wakeup) {
        measured!(Wake, self.processes.wake(process, wakeup));
    }
}
