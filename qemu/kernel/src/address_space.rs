//! User address spaces: one PML4 per process, the kernel half shared.
//!
//! PML4 slots 256..512 (the kernel half: direct map and kernel image) are
//! copied from the boot page tables into every new PML4, so the kernel runs
//! unchanged on any process's CR3. Slots 0..256 are the process's own.
//!
//! The kernel never dereferences a user virtual address. Copies to and from
//! user memory walk the process's page tables, check that every page is
//! present, user-accessible and (for writes) writable, and copy through the
//! direct map. A bad pointer therefore returns [`Fault`] instead of faulting
//! in the kernel, and SMAP can stay on.
//!
//! Leaf entries carry [`OWNED`] when the address space owns the frame (program
//! image, stack, pages it was given for good): teardown frees those. Frames of
//! shared regions are mapped without it; kipc returns them to the allocator.

use x86_64::registers::control::{Cr3, Cr3Flags};
use x86_64::structures::paging::mapper::{MapToError, UnmapError};
use x86_64::structures::paging::page_table::PageTableEntry;
use x86_64::structures::paging::{
    Mapper, OffsetPageTable, Page, PageTable, PageTableFlags, PhysFrame, Size4KiB,
};
use x86_64::{PhysAddr, VirtAddr};

use crate::elf::{self, USER_END};
use crate::memory::{self, DIRECT_MAP_BASE, FRAME_SIZE, phys_to_virt};

/// Page-table flag (an OS-available bit) marking frames this space owns.
pub const OWNED: PageTableFlags = PageTableFlags::BIT_9;

/// A user access hit an absent page or lacked the needed permission.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    /// The first address that could not be accessed.
    pub address: u64,
}

/// Why a mapping could not be made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError {
    /// No frame for a page table.
    OutOfFrames,
    /// A page is already mapped there.
    AlreadyMapped,
    /// The address is not a page-aligned user address.
    BadAddress,
}

/// Permissions of a user page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UserAccess {
    /// Writable by user code.
    pub writable: bool,
    /// Executable by user code.
    pub executable: bool,
}

/// The boot PML4, whose kernel half every address space shares.
static KERNEL_PML4: spin::Once<PhysFrame> = spin::Once::new();

/// PML4 slot of kernel mappings made after boot (0xffff_c000_0000_0000..).
pub const KERNEL_DYNAMIC_SLOT: usize = 384;

/// Records the boot page tables as the kernel's, and makes sure every
/// kernel-half PML4 slot the kernel uses exists before any process copies the
/// kernel half (a slot created later would be missing from older copies).
pub fn init() {
    let (frame, _) = Cr3::read();
    KERNEL_PML4.call_once(|| frame);
    let pml4 = table(frame.start_address().as_u64());
    if pml4[KERNEL_DYNAMIC_SLOT].is_unused() {
        let Some(table_frame) = memory::allocate_frame() else {
            crate::fail(format_args!(
                "no frame for the kernel's dynamic page-table slot"
            ));
        };
        pml4[KERNEL_DYNAMIC_SLOT].set_addr(
            table_frame,
            PageTableFlags::PRESENT | PageTableFlags::WRITABLE,
        );
    }
}

/// The kernel's own PML4.
pub fn kernel_pml4() -> PhysFrame {
    *KERNEL_PML4.get().expect("address_space::init ran")
}

/// Switches to the kernel's page tables (used before tearing a space down).
pub fn activate_kernel() {
    let (current, _) = Cr3::read();
    if current != kernel_pml4() {
        // SAFETY: the kernel PML4 maps the kernel half every kernel address
        // lives in, exactly as the process tables do.
        unsafe { Cr3::write(kernel_pml4(), Cr3Flags::empty()) };
    }
}

fn table(physical: u64) -> &'static mut PageTable {
    // SAFETY: page tables are frames in the direct map that only the kernel
    // edits, with interrupts off and under the kernel lock, so no two live
    // references to one table are used at the same time.
    unsafe { &mut *(phys_to_virt(physical) as *mut PageTable) }
}

/// One process's page tables.
pub struct AddressSpace {
    pml4: PhysFrame,
    owned_pages: usize,
}

impl AddressSpace {
    /// A fresh space: empty user half, shared kernel half.
    pub fn new() -> Result<AddressSpace, MapError> {
        let frame = memory::allocate_frame().ok_or(MapError::OutOfFrames)?;
        let new = table(frame.as_u64());
        let kernel = table(kernel_pml4().start_address().as_u64());
        for slot in 256..512 {
            new[slot] = kernel[slot].clone();
        }
        Ok(AddressSpace {
            pml4: PhysFrame::containing_address(frame),
            owned_pages: 0,
        })
    }

    /// The PML4 frame (what CR3 holds while this space runs).
    pub fn root(&self) -> PhysFrame {
        self.pml4
    }

    /// Number of pages this space owns (image, stack, ...).
    pub fn owned_pages(&self) -> usize {
        self.owned_pages
    }

    /// Loads CR3 with this space (no-op if already active).
    pub fn activate(&self) {
        let (current, _) = Cr3::read();
        if current != self.pml4 {
            // SAFETY: the kernel half of this PML4 is the kernel's, so the
            // code and stack we run on stay mapped across the switch.
            unsafe { Cr3::write(self.pml4, Cr3Flags::empty()) };
        }
    }

    fn mapper(&mut self) -> OffsetPageTable<'static> {
        // SAFETY: the PML4 is ours and reachable through the direct map; the
        // mapper lives only for one operation under the kernel lock.
        unsafe {
            OffsetPageTable::new(
                table(self.pml4.start_address().as_u64()),
                VirtAddr::new(DIRECT_MAP_BASE),
            )
        }
    }

    /// Maps `frame` at user page `address`. `owned` frames are freed when the
    /// space is torn down.
    pub fn map(
        &mut self,
        address: u64,
        frame: PhysAddr,
        access: UserAccess,
        owned: bool,
    ) -> Result<(), MapError> {
        if address % FRAME_SIZE != 0 || address >= USER_END {
            return Err(MapError::BadAddress);
        }
        let mut flags = PageTableFlags::PRESENT | PageTableFlags::USER_ACCESSIBLE;
        if access.writable {
            flags |= PageTableFlags::WRITABLE;
        }
        if !access.executable {
            flags |= PageTableFlags::NO_EXECUTE;
        }
        if owned {
            flags |= OWNED;
        }
        let parents =
            PageTableFlags::PRESENT | PageTableFlags::WRITABLE | PageTableFlags::USER_ACCESSIBLE;
        let page = Page::<Size4KiB>::containing_address(VirtAddr::new(address));
        let frame = PhysFrame::containing_address(frame);
        // SAFETY: the page is in the user half of this space, so the mapping
        // cannot alias kernel memory; what the frame holds is the caller's
        // business (it gave us the frame for exactly this purpose).
        let result = unsafe {
            self.mapper().map_to_with_table_flags(
                page,
                frame,
                flags,
                parents,
                &mut memory::KernelFrameAllocator,
            )
        };
        match result {
            Ok(flush) => {
                flush.flush();
                if owned {
                    self.owned_pages += 1;
                }
                Ok(())
            }
            Err(MapToError::FrameAllocationFailed) => Err(MapError::OutOfFrames),
            Err(_) => Err(MapError::AlreadyMapped),
        }
    }

    /// Unmaps the user page at `address`, returning its frame and whether the
    /// space owned it. The frame is not freed.
    pub fn unmap(&mut self, address: u64) -> Option<(PhysAddr, bool)> {
        if address % FRAME_SIZE != 0 || address >= USER_END {
            return None;
        }
        let (_, flags) = self.translate(address)?;
        let page = Page::<Size4KiB>::containing_address(VirtAddr::new(address));
        match self.mapper().unmap(page) {
            Ok((frame, flush)) => {
                flush.flush();
                let owned = flags.contains(OWNED);
                if owned {
                    self.owned_pages -= 1;
                }
                Some((frame.start_address(), owned))
            }
            Err(UnmapError::PageNotMapped) | Err(_) => None,
        }
    }

    /// The frame and flags of the user page containing `address`, if present.
    /// Every level must be present and user-accessible; the returned flags
    /// have WRITABLE only if every level allows writing.
    pub fn translate(&self, address: u64) -> Option<(PhysAddr, PageTableFlags)> {
        let (frame, writable, leaf) = self.translate_raw(address)?;
        let mut flags = PageTableFlags::from_bits_truncate(leaf);
        flags.set(PageTableFlags::WRITABLE, writable);
        Some((PhysAddr::new(frame), flags))
    }

    /// The page walk behind [`AddressSpace::translate`], on raw entry bits:
    /// this runs several times per system call, so it avoids the x86_64
    /// crate's checked wrappers. Returns (frame address, writable at every
    /// level, leaf entry).
    #[inline]
    fn translate_raw(&self, address: u64) -> Option<(u64, bool, u64)> {
        const PRESENT_USER: u64 = 0b101;
        const WRITABLE: u64 = 0b10;
        const HUGE: u64 = 1 << 7;
        const ADDRESS_MASK: u64 = 0x000f_ffff_ffff_f000;
        if address >= USER_END {
            return None;
        }
        let mut physical = self.pml4.start_address().as_u64();
        let mut writable = WRITABLE;
        let mut entry = 0;
        for shift in [39u32, 30, 21, 12] {
            let index = (address >> shift) & 511;
            // SAFETY: `physical` is a page-table frame of this space (the
            // PML4, or an address taken from a present entry), inside the
            // direct map; an aligned u64 read of one entry.
            entry = unsafe { ((phys_to_virt(physical) + index * 8) as *const u64).read() };
            if entry & PRESENT_USER != PRESENT_USER || (shift != 12 && entry & HUGE != 0) {
                return None;
            }
            writable &= entry;
            physical = entry & ADDRESS_MASK;
        }
        Some((physical, writable != 0, entry))
    }

    /// Checks that `[address, address + length)` is mapped for user access
    /// (and writable if `write`), calling `each` with the kernel (direct-map)
    /// address and length of every piece, page by page. Nothing is copied
    /// unless every page passes, so a failing copy changes nothing.
    fn walk(
        &self,
        address: u64,
        length: usize,
        write: bool,
        mut each: impl FnMut(*mut u8, usize, usize),
    ) -> Result<(), Fault> {
        const REMEMBERED: usize = 16;
        let end = address
            .checked_add(length as u64)
            .filter(|&end| end <= USER_END)
            .ok_or(Fault { address })?;
        if length == 0 {
            return Ok(());
        }
        let first_page = address & !(FRAME_SIZE - 1);
        let pages = (((end - 1) & !(FRAME_SIZE - 1)) - first_page) / FRAME_SIZE + 1;
        let mut frames = [0u64; REMEMBERED];
        for index in 0..pages {
            let page = first_page + index * FRAME_SIZE;
            let fault = Fault {
                address: page.max(address),
            };
            let (frame, writable, _) = self.translate_raw(page).ok_or(fault)?;
            if write && !writable {
                return Err(fault);
            }
            if let Some(slot) = frames.get_mut(index as usize) {
                *slot = frame;
            }
        }
        let mut cursor = address;
        let mut done = 0usize;
        let mut index = 0usize;
        while cursor < end {
            let page_end = (cursor | (FRAME_SIZE - 1)) + 1;
            let piece = (page_end.min(end) - cursor) as usize;
            let frame = match frames.get(index) {
                Some(&frame) => frame,
                None => {
                    self.translate_raw(cursor)
                        .ok_or(Fault { address: cursor })?
                        .0
                }
            };
            let kernel = phys_to_virt(frame + (cursor & (FRAME_SIZE - 1))) as *mut u8;
            each(kernel, done, piece);
            done += piece;
            cursor += piece as u64;
            index += 1;
        }
        Ok(())
    }

    /// Whether `[address, address + length)` is mapped user-writable.
    pub fn is_writable(&self, address: u64, length: usize) -> bool {
        self.check_range(address, length, true).is_ok()
    }

    /// Checks that a range is mapped for user access (and writable if `write`).
    fn check_range(&self, address: u64, length: usize, write: bool) -> Result<(), Fault> {
        let end = address
            .checked_add(length as u64)
            .filter(|&end| end <= USER_END)
            .ok_or(Fault { address })?;
        let mut page = address & !(FRAME_SIZE - 1);
        while page < end {
            let fault = Fault {
                address: page.max(address),
            };
            let (_, writable, _) = self.translate_raw(page).ok_or(fault)?;
            if write && !writable {
                return Err(fault);
            }
            page += FRAME_SIZE;
        }
        Ok(())
    }

    /// Copies user memory at `address` into `destination`.
    pub fn copy_from_user(&self, address: u64, destination: &mut [u8]) -> Result<(), Fault> {
        let length = destination.len();
        self.walk(address, length, false, |kernel, offset, piece| {
            // SAFETY: `walk` checked the page is a present user page of this
            // space; `kernel` is its direct-map alias, valid for `piece` bytes,
            // and cannot overlap the kernel buffer `destination`.
            unsafe {
                core::ptr::copy_nonoverlapping(kernel, destination[offset..].as_mut_ptr(), piece)
            }
        })
    }

    /// Copies `source` into user memory at `address` (pages must be writable).
    pub fn copy_to_user(&self, address: u64, source: &[u8]) -> Result<(), Fault> {
        self.walk(address, source.len(), true, |kernel, offset, piece| {
            // SAFETY: as in `copy_from_user`, for a writable user page.
            unsafe { core::ptr::copy_nonoverlapping(source[offset..].as_ptr(), kernel, piece) }
        })
    }

    /// Copies between two address spaces without a kernel bounce buffer.
    pub fn copy_between(
        from: &AddressSpace,
        source: u64,
        to: &AddressSpace,
        destination: u64,
        length: usize,
    ) -> Result<(), Fault> {
        // Validate both ranges before moving a byte.
        from.check_range(source, length, false)?;
        to.check_range(destination, length, true)?;
        let mut done = 0usize;
        while done < length {
            let (source_frame, _, _) = from
                .translate_raw(source + done as u64)
                .ok_or(Fault { address: source })?;
            let (destination_frame, _, _) =
                to.translate_raw(destination + done as u64).ok_or(Fault {
                    address: destination,
                })?;
            let source_offset = (source + done as u64) & (FRAME_SIZE - 1);
            let destination_offset = (destination + done as u64) & (FRAME_SIZE - 1);
            let piece = (FRAME_SIZE - source_offset)
                .min(FRAME_SIZE - destination_offset)
                .min((length - done) as u64) as usize;
            // SAFETY: both pieces lie inside checked, present user pages,
            // reached through the direct map; `copy` tolerates overlap (the
            // same frame may be mapped in both spaces).
            unsafe {
                core::ptr::copy(
                    phys_to_virt(source_frame + source_offset) as *const u8,
                    phys_to_virt(destination_frame + destination_offset) as *mut u8,
                    piece,
                )
            };
            done += piece;
        }
        Ok(())
    }

    /// Finds `pages` consecutive unmapped pages between `low` and `high`.
    pub fn find_free_range(&self, pages: usize, low: u64, high: u64) -> Option<u64> {
        let needed = (pages as u64).checked_mul(FRAME_SIZE)?;
        let mut start = low;
        let mut cursor = low;
        while cursor < high {
            if self.translate_any(cursor) {
                cursor += FRAME_SIZE;
                start = cursor;
                continue;
            }
            cursor += FRAME_SIZE;
            if cursor - start >= needed {
                return Some(start);
            }
        }
        None
    }

    /// Whether any mapping (user or not) exists at `address`.
    fn translate_any(&self, address: u64) -> bool {
        let mut physical = self.pml4.start_address().as_u64();
        for shift in [39u64, 30, 21, 12] {
            let entry = &table(physical)[((address >> shift) & 511) as usize];
            if !entry.flags().contains(PageTableFlags::PRESENT) {
                return false;
            }
            physical = entry.addr().as_u64();
        }
        true
    }

    /// Frees every owned frame and every user page-table frame, then the PML4.
    /// The space must not be active.
    pub fn destroy(self) {
        debug_assert!(Cr3::read().0 != self.pml4, "tearing down the active space");
        let pml4 = self.pml4.start_address().as_u64();
        for pml4_index in 0..256 {
            let pdpt = &mut table(pml4)[pml4_index];
            if pdpt.is_unused() {
                continue;
            }
            let pdpt_address = pdpt.addr();
            for pdpt_index in 0..512 {
                let pd = &mut table(pdpt_address.as_u64())[pdpt_index];
                if pd.is_unused() {
                    continue;
                }
                let pd_address = pd.addr();
                for pd_index in 0..512 {
                    let pt = &mut table(pd_address.as_u64())[pd_index];
                    if pt.is_unused() {
                        continue;
                    }
                    let pt_address = pt.addr();
                    for leaf in table(pt_address.as_u64()).iter_mut() {
                        if leaf.flags().contains(PageTableFlags::PRESENT | OWNED) {
                            // SAFETY: owned leaf frames were allocated for this
                            // space alone and nothing maps them any more.
                            unsafe { memory::free_frame(leaf.addr()) };
                        }
                        *leaf = PageTableEntry::new();
                    }
                    // SAFETY: page-table frames of the user half belong to this
                    // space alone.
                    unsafe { memory::free_frame(pt_address) };
                }
                // SAFETY: as above.
                unsafe { memory::free_frame(pd_address) };
            }
            // SAFETY: as above.
            unsafe { memory::free_frame(pdpt_address) };
        }
        // SAFETY: the PML4 is not active (checked above) and belongs to us.
        unsafe { memory::free_frame(self.pml4.start_address()) };
    }
}

/// Loads `program` into `space`: every segment on its own fresh, owned pages,
/// with exactly its permissions (W^X, NX on data).
pub fn load_program(space: &mut AddressSpace, program: &elf::Program) -> Result<(), MapError> {
    for segment in &program.segments {
        let first = segment.address & !(FRAME_SIZE - 1);
        let end = (segment.address + segment.memory_bytes).next_multiple_of(FRAME_SIZE);
        let access = UserAccess {
            writable: segment.writable,
            executable: segment.executable,
        };
        let mut page = first;
        while page < end {
            let frame = memory::allocate_frame().ok_or(MapError::OutOfFrames)?;
            // Copy the part of the file that lands in this page.
            let data_start = segment.address.max(page);
            let data_end = (segment.address + segment.file_bytes).min(page + FRAME_SIZE);
            if data_start < data_end {
                let file_start = (segment.file_offset + (data_start - segment.address)) as usize;
                let bytes =
                    &program.file[file_start..file_start + (data_end - data_start) as usize];
                let target = phys_to_virt(frame.as_u64() + (data_start - page)) as *mut u8;
                // SAFETY: the frame is freshly allocated and ours; the range
                // stays inside it (data_end <= page + FRAME_SIZE).
                unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), target, bytes.len()) };
            }
            if let Err(error) = space.map(page, frame, access, true) {
                // SAFETY: the frame was not mapped, so it is still only ours.
                unsafe { memory::free_frame(frame) };
                return Err(error);
            }
            page += FRAME_SIZE;
        }
    }
    Ok(())
}
