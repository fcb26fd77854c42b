//! An adapter for kernels that manage memory with the [`x86_64`] crate (cargo feature
//! `x86_64`).
//!
//! Most Rust hobby kernels keep one [`OffsetPageTable`] per address space and a frame
//! allocator implementing the crate's [`FrameAllocator`](X86FrameAllocator) and
//! [`FrameDeallocator`] traits. [`X86_64Host`] turns exactly that into kipc's
//! [`UserMemory`], [`AddressSpace`] and [`FrameAllocator`]: the
//! kernel implements the small [`PageTables`] trait (where each process's page table is,
//! how to reach a physical frame's bytes, how to flush the TLB) plus [`Clock`] and
//! [`Wake`], and wraps itself in `X86_64Host` when it calls kipc.
//!
//! ```ignore
//! let mut host = X86_64Host(&mut my_kernel);
//! ipc.pipe_write(caller, handle, slice, Blocking::Forever, &mut host)?;
//! ```
//!
//! What it guarantees:
//!
//! * user copies walk the process's page table page by page and copy only through
//!   present, `USER_ACCESSIBLE` pages (and `WRITABLE` ones for writes), so a bad pointer
//!   is a [`Fault`], never a kernel page fault;
//! * mappings are `PRESENT | USER_ACCESSIBLE | NO_EXECUTE`, plus `WRITABLE` for
//!   [`Access::ReadWrite`]; page-table frames come from the kernel's allocator;
//! * frames kipc allocates are zeroed before use;
//! * free ranges are searched inside the window [`PageTables::mapping_window`] returns.
//!
//! It reaches physical memory only through [`PageTables::frame_bytes`], which the kernel
//! implements over its direct map. Its only `unsafe` code is the two calls the `x86_64`
//! crate marks unsafe (mapping a page, returning a frame), justified by the contract of
//! the `unsafe trait` [`PageTables`] and by kipc's own frame ownership; it is the only
//! `unsafe` in kipc, and it exists only with the `x86_64` feature.

use x86_64::structures::paging::mapper::{MapToError, MappedFrame, TranslateResult, UnmapError};
use x86_64::structures::paging::{
    FrameAllocator as X86FrameAllocator, FrameDeallocator, Mapper, OffsetPageTable, Page,
    PageTableFlags, PhysFrame, Size4KiB, Translate,
};
use x86_64::{PhysAddr, VirtAddr};

use crate::error::Error;
use crate::host::{
    Access, AddressSpace, Clock, Fault, Frame, FrameAllocator, PAGE_SIZE, ProcessId, UserMemory,
};
use crate::umem::{UserLimit, UserSlice};
use crate::wait::{Wake, Wakeup};

/// What the adapter needs from a kernel built on the `x86_64` crate.
///
/// # Safety
///
/// The implementer vouches that:
/// 1. each process's page table maps only that process's user half and the kernel
///    half, and [`PageTables::flush`] really removes stale translations;
/// 2. `Frames` hands out each frame at most once until it is deallocated, and frames it
///    hands out are used by nobody else (kipc maps them into user space and frees them
///    once nothing maps them);
/// 3. [`PageTables::frame_bytes`] returns the bytes of exactly that physical frame (for
///    example through a direct map) and nothing in the kernel holds a reference to a
///    user frame's bytes across a kipc call;
/// 4. every 4 KiB user page of a process is that process's alone and came from
///    `Frames` (or from kipc): `pages_loan` moves such pages into a region and kipc
///    later returns their frames to `Frames`. A kernel that maps shared frames into
///    user space (copy-on-write, file-cache pages, device memory) must reference-count
///    them in `Frames` (as the demo kernel does) or keep them out of `pages_loan`'s
///    reach;
/// 5. the upper-level entries of the user half allow user access and writing, so the
///    leaf entry alone decides a page's access (the adapter checks only the leaf).
pub unsafe trait PageTables {
    /// The kernel's frame allocator (page-table frames and kipc's frames come from it).
    type Frames: X86FrameAllocator<Size4KiB> + FrameDeallocator<Size4KiB>;

    /// The page table of `process` together with the frame allocator (both are needed at
    /// once to map a page), or `None` if the process does not exist.
    fn page_table(
        &mut self,
        process: ProcessId,
    ) -> Option<(&mut OffsetPageTable<'static>, &mut Self::Frames)>;

    /// The page table of `process`, read-only.
    fn page_table_ref(&self, process: ProcessId) -> Option<&OffsetPageTable<'static>>;

    /// The frame allocator alone.
    fn frames(&mut self) -> &mut Self::Frames;

    /// The 4096 bytes of physical frame `frame`, through the kernel's direct map.
    fn frame_bytes(&mut self, frame: PhysFrame) -> &mut [u8; PAGE_SIZE];

    /// The end of user space (exclusive); [`UserLimit::X86_64_LOWER_HALF`] for a kernel
    /// that gives processes the whole lower half.
    fn user_limit(&self) -> UserLimit {
        UserLimit::X86_64_LOWER_HALF
    }

    /// The page-aligned range `[start, end)` in which kipc may place shared regions and
    /// page loans it maps without a caller-chosen address.
    fn mapping_window(&self) -> (u64, u64);

    /// Flushes the TLB entries of `pages` pages from `address` in `process` (for example
    /// `x86_64::instructions::tlb::flush` for each page when the process is active).
    fn flush(&mut self, process: ProcessId, address: u64, pages: usize);
}

// SAFETY: forwards to `T`, which upholds the contract.
unsafe impl<T: PageTables + ?Sized> PageTables for &mut T {
    type Frames = T::Frames;

    fn page_table(
        &mut self,
        process: ProcessId,
    ) -> Option<(&mut OffsetPageTable<'static>, &mut Self::Frames)> {
        (**self).page_table(process)
    }

    fn page_table_ref(&self, process: ProcessId) -> Option<&OffsetPageTable<'static>> {
        (**self).page_table_ref(process)
    }

    fn frames(&mut self) -> &mut Self::Frames {
        (**self).frames()
    }

    fn frame_bytes(&mut self, frame: PhysFrame) -> &mut [u8; PAGE_SIZE] {
        (**self).frame_bytes(frame)
    }

    fn user_limit(&self) -> UserLimit {
        (**self).user_limit()
    }

    fn mapping_window(&self) -> (u64, u64) {
        (**self).mapping_window()
    }

    fn flush(&mut self, process: ProcessId, address: u64, pages: usize) {
        (**self).flush(process, address, pages)
    }
}

/// Wraps a kernel implementing [`PageTables`] (and [`Clock`] and [`Wake`]) into a full
/// kipc [`crate::Host`].
pub struct X86_64Host<T>(pub T);

fn user_flags(access: Access) -> PageTableFlags {
    let flags =
        PageTableFlags::PRESENT | PageTableFlags::USER_ACCESSIBLE | PageTableFlags::NO_EXECUTE;
    match access {
        Access::ReadOnly => flags,
        Access::ReadWrite => flags | PageTableFlags::WRITABLE,
    }
}

fn page_at(address: u64) -> Result<Page<Size4KiB>, Error> {
    let address = VirtAddr::try_new(address).map_err(|_| Error::BadAddress)?;
    Page::from_start_address(address).map_err(|_| Error::BadAddress)
}

impl<T: PageTables> X86_64Host<T> {
    /// The frame and flags behind the user page containing `address`, if it is mapped
    /// user-accessible (and writable, when `write`).
    fn user_frame(
        &mut self,
        process: ProcessId,
        address: u64,
        write: bool,
    ) -> Result<PhysFrame, Fault> {
        let virtual_address = VirtAddr::try_new(address).map_err(|_| Fault)?;
        let (table, _) = self.0.page_table(process).ok_or(Fault)?;
        // Only 4 KiB user pages: kipc maps only those, and a huge page's frame is not
        // the page's own 4 KiB frame.
        let TranslateResult::Mapped {
            frame: MappedFrame::Size4KiB(frame),
            flags,
            ..
        } = table.translate(virtual_address)
        else {
            return Err(Fault);
        };
        let needed = if write {
            PageTableFlags::PRESENT | PageTableFlags::USER_ACCESSIBLE | PageTableFlags::WRITABLE
        } else {
            PageTableFlags::PRESENT | PageTableFlags::USER_ACCESSIBLE
        };
        if !flags.contains(needed) {
            return Err(Fault);
        }
        let start = frame.start_address();
        PhysFrame::from_start_address(start).map_err(|_| Fault)
    }

    /// Visits `[address, address + length)` of `process` one page piece at a time:
    /// `visit(frame, offset in frame, offset in the range, piece length)`. Every page is
    /// checked before any byte is visited, so a fault leaves nothing half-done.
    fn walk(
        &mut self,
        process: ProcessId,
        address: u64,
        length: usize,
        write: bool,
        mut visit: impl FnMut(&mut T, PhysFrame, usize, usize, usize),
    ) -> Result<(), Fault> {
        let mut done = 0;
        while done < length {
            self.user_frame(process, address + done as u64, write)?;
            done += PAGE_SIZE - ((address as usize + done) % PAGE_SIZE);
        }
        let mut done = 0;
        while done < length {
            let at = address + done as u64;
            let in_page = at as usize % PAGE_SIZE;
            let piece = (PAGE_SIZE - in_page).min(length - done);
            let frame = self.user_frame(process, at, write)?;
            visit(&mut self.0, frame, in_page, done, piece);
            done += piece;
        }
        Ok(())
    }
}

impl<T: PageTables> UserMemory for X86_64Host<T> {
    fn user_limit(&self) -> UserLimit {
        self.0.user_limit()
    }

    fn copy_from_user(
        &mut self,
        process: ProcessId,
        source: UserSlice,
        destination: &mut [u8],
    ) -> Result<(), Fault> {
        self.walk(
            process,
            source.address(),
            destination.len(),
            false,
            |host, frame, offset, done, piece| {
                destination[done..done + piece]
                    .copy_from_slice(&host.frame_bytes(frame)[offset..offset + piece]);
            },
        )
    }

    fn copy_to_user(
        &mut self,
        process: ProcessId,
        destination: UserSlice,
        source: &[u8],
    ) -> Result<(), Fault> {
        self.walk(
            process,
            destination.address(),
            source.len(),
            true,
            |host, frame, offset, done, piece| {
                host.frame_bytes(frame)[offset..offset + piece]
                    .copy_from_slice(&source[done..done + piece]);
            },
        )
    }

    fn copy_user_to_user(
        &mut self,
        from: ProcessId,
        source: UserSlice,
        to: ProcessId,
        destination: UserSlice,
    ) -> Result<(), Fault> {
        // Check both ranges first, so a fault on either side copies nothing.
        self.walk(
            from,
            source.address(),
            source.len(),
            false,
            |_, _, _, _, _| {},
        )?;
        self.walk(
            to,
            destination.address(),
            destination.len(),
            true,
            |_, _, _, _, _| {},
        )?;
        // Then copy through a small bounce buffer (safe code cannot hold two frames'
        // bytes at once).
        let mut bounce = [0u8; 512];
        let mut done = 0;
        while done < source.len() {
            let piece = bounce.len().min(source.len() - done);
            let (read, write) = (
                source.address() + done as u64,
                destination.address() + done as u64,
            );
            let read = UserSlice::new(read, piece, self.0.user_limit()).map_err(|_| Fault)?;
            let write = UserSlice::new(write, piece, self.0.user_limit()).map_err(|_| Fault)?;
            self.copy_from_user(from, read, &mut bounce[..piece])?;
            self.copy_to_user(to, write, &bounce[..piece])?;
            done += piece;
        }
        Ok(())
    }
}

impl<T: PageTables> AddressSpace for X86_64Host<T> {
    fn map_page(
        &mut self,
        process: ProcessId,
        address: u64,
        frame: Frame,
        access: Access,
    ) -> Result<(), Error> {
        let page = page_at(address)?;
        let frame = PhysFrame::from_start_address(PhysAddr::new(frame.address()))
            .map_err(|_| Error::InvalidArgument)?;
        let (table, frames) = self.0.page_table(process).ok_or(Error::NoSuchProcess)?;
        let parent =
            PageTableFlags::PRESENT | PageTableFlags::WRITABLE | PageTableFlags::USER_ACCESSIBLE;
        // SAFETY: `map_to` is unsafe because a new mapping could alias memory the kernel
        // uses. kipc maps only frames it owns (region frames from `allocate_frame`, or
        // pages a process loaned), into the user half of `process`, and the kernel never
        // references user frames across a kipc call (`PageTables` contract, items 1-3).
        let mapped = unsafe {
            table.map_to_with_table_flags(page, frame, user_flags(access), parent, frames)
        };
        match mapped {
            Ok(flush) => {
                // A newly present page has no stale translation to flush.
                flush.ignore();
                Ok(())
            }
            Err(MapToError::PageAlreadyMapped(_)) => Err(Error::AddressInUse),
            Err(MapToError::FrameAllocationFailed) => Err(Error::OutOfFrames),
            Err(MapToError::ParentEntryHugePage) => Err(Error::AddressInUse),
        }
    }

    fn unmap_page(&mut self, process: ProcessId, address: u64) -> Result<Frame, Error> {
        let page = page_at(address)?;
        let (table, _) = self.0.page_table(process).ok_or(Error::NoSuchProcess)?;
        match table.unmap(page) {
            Ok((frame, flush)) => {
                // The kernel flushes through `PageTables::flush` when kipc asks.
                flush.ignore();
                Frame::new(frame.start_address().as_u64()).ok_or(Error::NotMapped)
            }
            Err(UnmapError::PageNotMapped) | Err(UnmapError::ParentEntryHugePage) => {
                Err(Error::NotMapped)
            }
            Err(UnmapError::InvalidFrameAddress(_)) => Err(Error::NotMapped),
        }
    }

    fn translate(&self, process: ProcessId, address: u64) -> Option<(Frame, Access)> {
        let table = self.0.page_table_ref(process)?;
        // Only present 4 KiB user pages: a huge page is never lent, loaned or unmapped
        // page by page (its frames are not the pages' own).
        let TranslateResult::Mapped {
            frame: MappedFrame::Size4KiB(frame),
            flags,
            ..
        } = table.translate(VirtAddr::try_new(address).ok()?)
        else {
            return None;
        };
        if !flags.contains(PageTableFlags::PRESENT | PageTableFlags::USER_ACCESSIBLE) {
            return None;
        }
        let access = if flags.contains(PageTableFlags::WRITABLE) {
            Access::ReadWrite
        } else {
            Access::ReadOnly
        };
        Some((Frame::new(frame.start_address().as_u64())?, access))
    }

    fn find_free_range(&mut self, process: ProcessId, pages: usize) -> Option<u64> {
        let (start, end) = self.0.mapping_window();
        let (table, _) = self.0.page_table(process)?;
        let mut candidate = start;
        let mut free = 0usize;
        let mut at = start;
        while at < end && free < pages {
            let address = VirtAddr::try_new(at).ok()?;
            if matches!(table.translate(address), TranslateResult::NotMapped) {
                free += 1;
            } else {
                free = 0;
                candidate = at + PAGE_SIZE as u64;
            }
            at += PAGE_SIZE as u64;
        }
        (free == pages && pages > 0).then_some(candidate)
    }

    fn flush(&mut self, process: ProcessId, address: u64, pages: usize) {
        self.0.flush(process, address, pages);
    }
}

impl<T: PageTables> FrameAllocator for X86_64Host<T> {
    fn allocate_frame(&mut self) -> Option<Frame> {
        let frame = self.0.frames().allocate_frame()?;
        self.0.frame_bytes(frame).fill(0);
        Frame::new(frame.start_address().as_u64())
    }

    fn free_frame(&mut self, frame: Frame) {
        let Ok(frame) = PhysFrame::from_start_address(PhysAddr::new(frame.address())) else {
            return;
        };
        // SAFETY: kipc frees a frame only once no mapping and no object refers to it, and
        // only frames it allocated here or that a process loaned to it (which the kernel
        // gave that process from the same allocator).
        unsafe { self.0.frames().deallocate_frame(frame) };
    }
}

impl<T: Clock> Clock for X86_64Host<T> {
    fn now(&self) -> u64 {
        self.0.now()
    }
}

impl<T: Wake> Wake for X86_64Host<T> {
    fn wake(&mut self, process: ProcessId, wakeup: Wakeup) {
        self.0.wake(process, wakeup);
    }
}

#[cfg(test)]
mod tests {
    //! The adapter over real `x86_64` page tables whose "physical memory" is a heap
    //! buffer: the physical-memory offset is the buffer's address, so the crate's
    //! `OffsetPageTable` walks tables that live in ordinary test memory.

    use super::*;
    use crate::{Blocking, DefaultIpc, Outcome, Rights};
    use x86_64::structures::paging::PageTable;

    const FRAMES: usize = 96;
    const WINDOW: (u64, u64) = (0x4000_0000, 0x4001_0000);

    #[repr(C, align(4096))]
    struct PageBytes([u8; PAGE_SIZE]);

    struct Bump {
        next: u64,
        freed: Vec<PhysFrame>,
    }

    // SAFETY: hands out each frame of the fake memory once (fresh ones in order, freed
    // ones again only after they were returned).
    unsafe impl X86FrameAllocator<Size4KiB> for Bump {
        fn allocate_frame(&mut self) -> Option<PhysFrame> {
            if let Some(frame) = self.freed.pop() {
                return Some(frame);
            }
            if self.next >= FRAMES as u64 {
                return None;
            }
            self.next += 1;
            Some(PhysFrame::containing_address(PhysAddr::new(
                (self.next - 1) * 4096,
            )))
        }
    }

    impl FrameDeallocator<Size4KiB> for Bump {
        unsafe fn deallocate_frame(&mut self, frame: PhysFrame) {
            self.freed.push(frame);
        }
    }

    struct Fake {
        base: *mut PageBytes,
        tables: Vec<OffsetPageTable<'static>>,
        frames: Bump,
        flushed: Vec<(u64, usize)>,
        woken: Vec<(ProcessId, Wakeup)>,
    }

    impl Fake {
        /// `processes` address spaces, each with an empty PML4.
        fn new(processes: usize) -> Fake {
            let memory: Box<[PageBytes]> = (0..FRAMES).map(|_| PageBytes([0; PAGE_SIZE])).collect();
            let base = Box::leak(memory).as_mut_ptr();
            let mut fake = Fake {
                base,
                tables: Vec::new(),
                frames: Bump {
                    next: 1,
                    freed: Vec::new(),
                },
                flushed: Vec::new(),
                woken: Vec::new(),
            };
            for _ in 0..processes {
                let pml4 = fake.frames.allocate_frame().unwrap();
                let address = fake.physical(pml4);
                // SAFETY: a fresh, zeroed frame of the leaked buffer, used only as this
                // page table from now on.
                let table = unsafe { &mut *(address as *mut PageTable) };
                // SAFETY: the offset maps every fake physical address into the buffer.
                let table = unsafe { OffsetPageTable::new(table, VirtAddr::new(base as u64)) };
                fake.tables.push(table);
            }
            fake
        }

        fn physical(&self, frame: PhysFrame) -> u64 {
            self.base as u64 + frame.start_address().as_u64()
        }
    }

    // SAFETY: each process has its own PML4 in the fake memory; `Bump` hands out each
    // frame once; `frame_bytes` returns exactly the frame's bytes in the buffer.
    unsafe impl PageTables for Fake {
        type Frames = Bump;

        fn page_table(
            &mut self,
            process: ProcessId,
        ) -> Option<(&mut OffsetPageTable<'static>, &mut Bump)> {
            Some((self.tables.get_mut(process.slot())?, &mut self.frames))
        }

        fn page_table_ref(&self, process: ProcessId) -> Option<&OffsetPageTable<'static>> {
            self.tables.get(process.slot())
        }

        fn frames(&mut self) -> &mut Bump {
            &mut self.frames
        }

        fn frame_bytes(&mut self, frame: PhysFrame) -> &mut [u8; PAGE_SIZE] {
            let index = (frame.start_address().as_u64() / 4096) as usize;
            assert!(index < FRAMES, "frame outside the fake memory");
            // SAFETY: in bounds of the leaked buffer; tests never hold two of these.
            unsafe { &mut (*self.base.add(index)).0 }
        }

        fn mapping_window(&self) -> (u64, u64) {
            WINDOW
        }

        fn flush(&mut self, _: ProcessId, address: u64, pages: usize) {
            self.flushed.push((address, pages));
        }
    }

    impl Clock for Fake {
        fn now(&self) -> u64 {
            0
        }
    }

    impl Wake for Fake {
        fn wake(&mut self, process: ProcessId, wakeup: Wakeup) {
            self.woken.push((process, wakeup));
        }
    }

    fn slice(address: u64, length: usize) -> UserSlice {
        UserSlice::new(address, length, UserLimit::X86_64_LOWER_HALF).unwrap()
    }

    fn process(slot: usize) -> ProcessId {
        ProcessId::new(slot, 1)
    }

    #[test]
    fn a_frame_mapped_in_two_spaces_is_shared_with_per_mapping_rights() {
        let mut host = X86_64Host(Fake::new(2));
        let frame = host.allocate_frame().unwrap();
        let (a, b) = (process(0), process(1));
        host.map_page(a, 0x4000_0000, frame, Access::ReadWrite)
            .unwrap();
        host.map_page(b, 0x4000_2000, frame, Access::ReadOnly)
            .unwrap();
        assert_eq!(
            host.translate(a, 0x4000_0000),
            Some((frame, Access::ReadWrite))
        );
        assert_eq!(
            host.translate(b, 0x4000_2000),
            Some((frame, Access::ReadOnly))
        );
        host.copy_to_user(a, slice(0x4000_0010, 5), b"hello")
            .unwrap();
        let mut seen = [0u8; 5];
        host.copy_from_user(b, slice(0x4000_2010, 5), &mut seen)
            .unwrap();
        assert_eq!(&seen, b"hello");
        assert_eq!(
            host.copy_to_user(b, slice(0x4000_2010, 1), b"x"),
            Err(Fault)
        );
        assert_eq!(
            host.map_page(a, 0x4000_0000, frame, Access::ReadOnly),
            Err(Error::AddressInUse)
        );
        assert_eq!(host.unmap_page(b, 0x4000_2000), Ok(frame));
        assert_eq!(host.translate(b, 0x4000_2000), None);
        assert_eq!(host.unmap_page(b, 0x4000_2000), Err(Error::NotMapped));
        assert_eq!(
            host.copy_from_user(b, slice(0x4000_2010, 5), &mut seen),
            Err(Fault)
        );
    }

    #[test]
    fn a_copy_that_crosses_into_an_unmapped_page_faults_and_writes_nothing() {
        let mut host = X86_64Host(Fake::new(1));
        let p = process(0);
        let frame = host.allocate_frame().unwrap();
        host.map_page(p, 0x4000_0000, frame, Access::ReadWrite)
            .unwrap();
        let bytes = [7u8; 100];
        assert_eq!(
            host.copy_to_user(p, slice(0x4000_0fd0, 100), &bytes),
            Err(Fault)
        );
        let mut page = [1u8; 64];
        host.copy_from_user(p, slice(0x4000_0fc0, 64), &mut page)
            .unwrap();
        assert_eq!(
            page, [0u8; 64],
            "the mapped half was written before the fault"
        );
        // Kernel-half and non-canonical addresses are faults too, never a walk off the end.
        assert_eq!(
            host.copy_from_user(p, slice(0x7fff_ffff_f000, 16), &mut page[..16]),
            Err(Fault)
        );
    }

    #[test]
    fn copies_between_processes_span_pages() {
        let mut host = X86_64Host(Fake::new(2));
        let (a, b) = (process(0), process(1));
        for page in 0..3u64 {
            let frame = host.allocate_frame().unwrap();
            host.map_page(a, 0x4000_0000 + page * 4096, frame, Access::ReadWrite)
                .unwrap();
            let frame = host.allocate_frame().unwrap();
            host.map_page(b, 0x4000_8000 + page * 4096, frame, Access::ReadWrite)
                .unwrap();
        }
        let data: Vec<u8> = (0..9000u32).map(|i| (i * 7 % 251) as u8).collect();
        host.copy_to_user(a, slice(0x4000_0100, data.len()), &data)
            .unwrap();
        host.copy_user_to_user(
            a,
            slice(0x4000_0100, data.len()),
            b,
            slice(0x4000_8333, data.len()),
        )
        .unwrap();
        let mut back = vec![0u8; data.len()];
        host.copy_from_user(b, slice(0x4000_8333, data.len()), &mut back)
            .unwrap();
        assert_eq!(back, data);
        // A destination that runs off its mapping faults before anything is copied.
        let before = back.clone();
        assert_eq!(
            host.copy_user_to_user(a, slice(0x4000_0000, 8000), b, slice(0x4000_a000, 8000)),
            Err(Fault)
        );
        host.copy_from_user(b, slice(0x4000_8333, data.len()), &mut back)
            .unwrap();
        assert_eq!(back, before);
    }

    #[test]
    fn free_ranges_skip_mapped_pages_and_stay_in_the_window() {
        let mut host = X86_64Host(Fake::new(1));
        let p = process(0);
        assert_eq!(host.find_free_range(p, 2), Some(WINDOW.0));
        let frame = host.allocate_frame().unwrap();
        host.map_page(p, WINDOW.0 + 4096, frame, Access::ReadOnly)
            .unwrap();
        assert_eq!(host.find_free_range(p, 2), Some(WINDOW.0 + 2 * 4096));
        assert_eq!(host.find_free_range(p, 1), Some(WINDOW.0));
        assert_eq!(host.find_free_range(p, 100), None, "larger than the window");
    }

    #[test]
    fn frames_come_zeroed_and_go_back_to_the_allocator() {
        let mut host = X86_64Host(Fake::new(1));
        let frame = host.allocate_frame().unwrap();
        let physical = PhysFrame::containing_address(PhysAddr::new(frame.address()));
        host.0.frame_bytes(physical).fill(0xaa);
        host.free_frame(frame);
        assert_eq!(host.0.frames.freed, vec![physical]);
        let again = host.allocate_frame().unwrap();
        assert_eq!(again, frame);
        assert!(host.0.frame_bytes(physical).iter().all(|&byte| byte == 0));
    }

    #[test]
    fn kipc_runs_a_pipe_and_a_shared_region_over_the_adapter() {
        let mut host = X86_64Host(Fake::new(2));
        let mut ipc = Box::new(DefaultIpc::new());
        let writer = ipc.process_create().unwrap();
        let reader = ipc.process_create().unwrap();
        // Each process gets one private page for buffers.
        for (id, address) in [(writer, 0x1000u64), (reader, 0x1000)] {
            let frame = host.allocate_frame().unwrap();
            host.map_page(id, address, frame, Access::ReadWrite)
                .unwrap();
        }
        let (read, write) = ipc.pipe_create(writer).unwrap();
        let read = ipc
            .handle_grant(writer, read, reader, Rights::READ)
            .unwrap();
        host.copy_to_user(writer, slice(0x1000, 4), b"ping")
            .unwrap();
        let wrote = ipc.pipe_write(
            writer,
            write,
            slice(0x1000, 4),
            Blocking::Forever,
            &mut host,
        );
        assert_eq!(wrote, Ok(Outcome::Done(4)));
        let got = ipc.pipe_read(
            reader,
            read,
            slice(0x1100, 16),
            Blocking::Forever,
            &mut host,
        );
        assert_eq!(got, Ok(Outcome::Done(4)));
        let mut seen = [0u8; 4];
        host.copy_from_user(reader, slice(0x1100, 4), &mut seen)
            .unwrap();
        assert_eq!(&seen, b"ping");

        let region = ipc.region_create(writer, 2, &mut host).unwrap();
        let shared = ipc
            .handle_grant(writer, region, reader, Rights::MAP)
            .unwrap();
        let at_writer = ipc
            .region_map(writer, region, None, Access::ReadWrite, &mut host)
            .unwrap();
        let at_reader = ipc
            .region_map(reader, shared, None, Access::ReadOnly, &mut host)
            .unwrap();
        assert!((WINDOW.0..WINDOW.1).contains(&at_writer));
        host.copy_to_user(writer, slice(at_writer + 4096, 6), b"shared")
            .unwrap();
        let mut seen = [0u8; 6];
        host.copy_from_user(reader, slice(at_reader + 4096, 6), &mut seen)
            .unwrap();
        assert_eq!(&seen, b"shared");
        assert_eq!(
            host.copy_to_user(reader, slice(at_reader, 1), b"x"),
            Err(Fault)
        );
        ipc.process_exit(reader, &mut host).unwrap();
        ipc.process_exit(writer, &mut host).unwrap();
        assert_eq!(ipc.usage(), crate::Usage::default());
        assert_eq!(
            host.translate(writer, at_writer),
            None,
            "exit unmapped the region"
        );
        assert_eq!(host.0.frames.freed.len(), 2, "both region frames went back");
    }
}
