//! The kernel's side of the kipc host contract: how kipc reaches user memory,
//! page tables, frames, the clock and the scheduler of this kernel.
//!
//! [`KernelHost`] borrows the process table for the length of one kipc call.
//! User copies go through [`AddressSpace`]'s checked page-table walk, so a bad
//! user pointer becomes `kipc::Fault` and never a kernel page fault.

use kipc::{Access, Fault, Frame, ProcessId, UserLimit, UserSlice, Wakeup};

use kipc_abi::{MESSAGE_REGISTER_BYTES, MESSAGE_REGISTERS_ADDRESS};
use kipc_arch::interrupts::TrapFrame;

use super::breakdown::{measured, measured_copy};
use super::message_registers;
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
        let length = source.len();
        if message_registers::starts_in_window(source.address())
            || message_registers::starts_in_window(destination.address())
        {
            if source.address() == MESSAGE_REGISTERS_ADDRESS
                && destination.address() == MESSAGE_REGISTERS_ADDRESS
                && length <= MESSAGE_REGISTER_BYTES
            {
                // A short call or reply to a short receiver: frame to frame.
                return self.move_registers(from, to, length);
            }
            return self.copy_through_registers(from, source, to, destination);
        }
        let from_space = self.space(from)?;
        let to_space = self.space(to)?;
        measured_copy!({
            AddressSpace::copy_between(
                from_space,
                source.address(),
                to_space,
                destination.address(),
                length,
            )
        })
        .map_err(|_| Fault)
    }
}

impl KernelHost<'_> {
    /// The saved frame of `process`, whose message registers a copy names.
    ///
    /// kipc copies only for the caller of the running system call (its frame
    /// was saved at this call's entry) or for a process parked in a kipc wait
    /// (its frame sits untouched at the top of its kernel stack until it runs
    /// again), and the caller holds the kernel lock: the pointer is valid and
    /// nothing else uses it while the copy runs.
    fn frame(&self, process: ProcessId) -> Result<*mut TrapFrame, Fault> {
        self.processes
            .get(process)
            .map(|process| process.frame)
            .ok_or(Fault)
    }

    /// Copies out of `process`'s message registers if the buffer lies in
    /// their window, else reports the fault (the rest of the window's page is
    /// never mapped).
    #[inline(never)]
    fn registers_out(
        &self,
        process: ProcessId,
        address: u64,
        destination: &mut [u8],
    ) -> Result<(), Fault> {
        if !message_registers::in_window(address, destination.len()) {
            return Err(Fault);
        }
        let frame = self.frame(process)?;
        // SAFETY: see `frame`.
        message_registers::read(unsafe { &*frame }, address, destination);
        Ok(())
    }

    /// Copies into `process`'s message registers if the buffer lies in their
    /// window, else reports the fault (as `registers_out`).
    #[inline(never)]
    fn registers_in(&self, process: ProcessId, address: u64, source: &[u8]) -> Result<(), Fault> {
        if !message_registers::in_window(address, source.len()) {
            return Err(Fault);
        }
        let frame = self.frame(process)?;
        // SAFETY: see `frame`.
        message_registers::write(unsafe { &mut *frame }, address, source);
        Ok(())
    }

    /// The first `length` bytes (at most 64) of `from`'s message registers
    /// into `to`'s: whole words, the bytes past the message kept.
    #[inline(always)]
    fn move_registers(&self, from: ProcessId, to: ProcessId, length: usize) -> Result<(), Fault> {
        let (source, destination) = (self.frame(from)?, self.frame(to)?);
        // SAFETY: see `frame`; the two frames are distinct or the same, and
        // each is only read or written through one reference at a time.
        let words = message_registers::get(unsafe { &*source });
        // SAFETY: as above.
        message_registers::set_prefix(unsafe { &mut *destination }, &words, length);
        Ok(())
    }

    /// A user-to-user copy with message registers on one side (both sides
    /// at the window's start is [`KernelHost::move_registers`]): at most 64
    /// bytes, through a buffer on the kernel stack.
    #[inline(never)]
    fn copy_through_registers(
        &mut self,
        from: ProcessId,
        source: UserSlice,
        to: ProcessId,
        destination: UserSlice,
    ) -> Result<(), Fault> {
        let length = source.len();
        if length > MESSAGE_REGISTER_BYTES {
            // One side is in the window, so the other would overflow it, or is
            // memory in the never-mapped first page.
            return Err(Fault);
        }
        let mut bytes = [0u8; MESSAGE_REGISTER_BYTES];
        let buffer = &mut bytes[..length];
        if message_registers::starts_in_window(source.address()) {
            self.registers_out(from, source.address(), buffer)?;
        } else {
            kipc::UserMemory::copy_from_user(self, from, source, buffer)?;
        }
        if message_registers::starts_in_window(destination.address()) {
            self.registers_in(to, destination.address(), buffer)
        } else {
            kipc::UserMemory::copy_to_user(self, to, destination, buffer)
        }
    }
}

/// [`KernelHost`] for the short mailbox calls: every copy that names the
/// caller's message registers (see [`message_registers`]) goes to its saved
/// frame, including the copies into and out of a mailbox's buffer. The plain
/// host understands the window only in user-to-user copies (a message handed
/// straight to a parked short receiver, or a reply to a parked short caller),
/// so memory copies, and the file system's page copies most of all, pay
/// nothing for it.
pub struct ShortHost<'a>(pub KernelHost<'a>);

impl kipc::UserMemory for ShortHost<'_> {
    fn user_limit(&self) -> UserLimit {
        self.0.user_limit()
    }

    fn copy_from_user(
        &mut self,
        process: ProcessId,
        source: UserSlice,
        destination: &mut [u8],
    ) -> Result<(), Fault> {
        if message_registers::starts_in_window(source.address()) {
            return self.0.registers_out(process, source.address(), destination);
        }
        self.0.copy_from_user(process, source, destination)
    }

    fn copy_to_user(
        &mut self,
        process: ProcessId,
        destination: UserSlice,
        source: &[u8],
    ) -> Result<(), Fault> {
        if message_registers::starts_in_window(destination.address()) {
            return self.0.registers_in(process, destination.address(), source);
        }
        self.0.copy_to_user(process, destination, source)
    }

    fn copy_user_to_user(
        &mut self,
        from: ProcessId,
        source: UserSlice,
        to: ProcessId,
        destination: UserSlice,
    ) -> Result<(), Fault> {
        self.0.copy_user_to_user(from, source, to, destination)
    }
}

impl kipc::AddressSpace for ShortHost<'_> {
    fn map_page(
        &mut self,
        process: ProcessId,
        address: u64,
        frame: Frame,
        access: Access,
    ) -> Result<(), kipc::Error> {
        self.0.map_page(process, address, frame, access)
    }

    fn unmap_page(&mut self, process: ProcessId, address: u64) -> Result<Frame, kipc::Error> {
        self.0.unmap_page(process, address)
    }

    fn map_pages(
        &mut self,
        process: ProcessId,
        address: u64,
        frames: &[Frame],
        access: Access,
    ) -> Result<(), kipc::Error> {
        self.0.map_pages(process, address, frames, access)
    }

    fn unmap_pages(
        &mut self,
        process: ProcessId,
        address: u64,
        frames: &mut [Frame],
    ) -> Result<Access, kipc::Error> {
        self.0.unmap_pages(process, address, frames)
    }

    fn translate(&self, process: ProcessId, address: u64) -> Option<(Frame, Access)> {
        self.0.translate(process, address)
    }

    fn find_free_range(&mut self, process: ProcessId, pages: usize) -> Option<u64> {
        self.0.find_free_range(process, pages)
    }

    fn flush(&mut self, process: ProcessId, address: u64, pages: usize) {
        self.0.flush(process, address, pages);
    }
}

impl kipc::FrameAllocator for ShortHost<'_> {
    fn allocate_frame(&mut self) -> Option<Frame> {
        self.0.allocate_frame()
    }

    fn free_frame(&mut self, frame: Frame) {
        self.0.free_frame(frame);
    }

    fn free_frames(&mut self, frames: &[Frame]) {
        self.0.free_frames(frames);
    }
}

impl kipc::Clock for ShortHost<'_> {
    fn now(&self) -> u64 {
        self.0.now()
    }
}

impl kipc::Wake for ShortHost<'_> {
    #[inline(always)]
    fn wake(&mut self, process: ProcessId, wakeup: Wakeup) {
        self.0.wake(process, wakeup);
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
