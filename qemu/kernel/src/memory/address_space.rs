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

use core::cell::Cell;

use x86_64::registers::control::{Cr3, Cr3Flags};
use x86_64::structures::paging::{PageTable, PageTableFlags, PhysFrame};
use x86_64::{PhysAddr, VirtAddr};

use kipc_arch::verdict::fail;

use crate::memory::{self, FRAME_SIZE, phys_to_virt};

/// Highest user address plus one (the lower canonical half).
pub const USER_END: u64 = 0x0000_8000_0000_0000;
/// Lowest address a program may load at (page 0 stays unmapped).
pub const USER_START: u64 = 0x1000;

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
            fail(format_args!(
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

/// Raw page-table entry bits used by the walks below (the x86_64 crate's
/// checked wrappers cost several times more per level).
const PRESENT: u64 = 1;
const WRITABLE: u64 = 1 << 1;
const USER: u64 = 1 << 2;
const HUGE: u64 = 1 << 7;
const ADDRESS_MASK: u64 = 0x000f_ffff_ffff_f000;

/// The entry at `index` of the page table in frame `table`.
fn entry_pointer(table: u64, index: u64) -> *mut u64 {
    (phys_to_virt(table) + (index & 511) * 8) as *mut u64
}

/// Pages whose frames a checked copy remembers from its validating walk.
const REMEMBERED_FRAMES: usize = 4;

/// Index of the page holding `at` counted from the page holding `start`.
fn page_index(start: u64, at: u64) -> usize {
    ((at >> 12) - (start >> 12)) as usize
}

/// Flushes the TLB entry of one page.
fn flush_page(address: u64) {
    x86_64::instructions::tlb::flush(VirtAddr::new(address));
}

/// Longest run a ranged unmap flushes page by page; a longer one reloads CR3
/// (Linux's `tlb_single_page_flush_ceiling` is 33).
const FLUSH_PAGES_MAX: usize = 32;

/// One process's page tables.
pub struct AddressSpace {
    pml4: PhysFrame,
    owned_pages: usize,
    /// The last leaf table reached: (2 MiB slot of the address + 1, table
    /// frame, whether every upper level allows writing). Upper-level entries
    /// of a space are only ever added to (never removed or narrowed until
    /// `destroy`), so a remembered leaf table stays valid; consecutive pages
    /// (loans, regions, copies) skip three levels of the walk.
    leaf_cache: Cell<(u64, u64, bool)>,
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
            leaf_cache: Cell::new((0, 0, false)),
        })
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

    /// The leaf page table covering user `address` and whether every upper
    /// level allows writing, if every upper level is present, user-accessible
    /// and not a huge page.
    #[inline]
    fn leaf_table(&self, address: u64) -> Option<(u64, bool)> {
        let slot = (address >> 21) + 1;
        let (cached_slot, table, writable) = self.leaf_cache.get();
        if cached_slot == slot {
            return Some((table, writable));
        }
        let mut physical = self.pml4.start_address().as_u64();
        let mut writable = WRITABLE;
        for shift in [39u32, 30, 21] {
            // SAFETY: `physical` is a page-table frame of this space (the
            // PML4, or an address taken from a present entry), inside the
            // direct map; an aligned u64 read of one entry.
            let entry = unsafe { entry_pointer(physical, address >> shift).read() };
            if entry & (PRESENT | USER) != PRESENT | USER || entry & HUGE != 0 {
                return None;
            }
            writable &= entry;
            physical = entry & ADDRESS_MASK;
        }
        self.leaf_cache.set((slot, physical, writable != 0));
        Some((physical, writable != 0))
    }

    /// Like [`AddressSpace::leaf_table`], creating missing tables (and
    /// widening existing upper entries to present, writable, user), as the
    /// x86_64 crate's `map_to_with_table_flags` does.
    fn leaf_table_or_create(&mut self, address: u64) -> Result<u64, MapError> {
        const PARENTS: u64 = PRESENT | WRITABLE | USER;
        if let Some((table, true)) = self.leaf_table(address) {
            return Ok(table);
        }
        let mut physical = self.pml4.start_address().as_u64();
        for shift in [39u32, 30, 21] {
            let pointer = entry_pointer(physical, address >> shift);
            // SAFETY: as in `leaf_table`; we hold the kernel lock, so nobody
            // else edits this table.
            let mut entry = unsafe { pointer.read() };
            if entry == 0 {
                let table = memory::allocate_frame().ok_or(MapError::OutOfFrames)?;
                entry = table.as_u64() | PARENTS;
                // SAFETY: as above; the new table is zeroed and ours.
                unsafe { pointer.write(entry) };
            } else if entry & PARENTS != PARENTS {
                entry |= PARENTS;
                // SAFETY: as above.
                unsafe { pointer.write(entry) };
                // The narrower entry may sit in a paging-structure cache, and
                // `map_range` flushes no page it maps: drop every cached
                // translation (rare: tables made here start wide).
                x86_64::instructions::tlb::flush_all();
            }
            if entry & HUGE != 0 {
                return Err(MapError::AlreadyMapped);
            }
            physical = entry & ADDRESS_MASK;
        }
        self.leaf_cache.set(((address >> 21) + 1, physical, true));
        Ok(physical)
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
        if !address.is_multiple_of(FRAME_SIZE) || address >= USER_END {
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
        let table = self.leaf_table_or_create(address)?;
        let pointer = entry_pointer(table, address >> 12);
        // SAFETY: a leaf entry of this space's user half (so the mapping
        // cannot alias kernel memory), under the kernel lock; what the frame
        // holds is the caller's business (it gave us the frame for exactly
        // this purpose).
        unsafe {
            if pointer.read() != 0 {
                return Err(MapError::AlreadyMapped);
            }
            pointer.write((frame.as_u64() & ADDRESS_MASK) | flags.bits());
        }
        flush_page(address);
        if owned {
            self.owned_pages += 1;
        }
        Ok(())
    }

    /// Unmaps the user page at `address`, returning its frame and whether the
    /// space owned it. The frame is not freed.
    pub fn unmap(&mut self, address: u64) -> Option<(PhysAddr, bool)> {
        if !address.is_multiple_of(FRAME_SIZE) || address >= USER_END {
            return None;
        }
        let (table, _) = self.leaf_table(address)?;
        let pointer = entry_pointer(table, address >> 12);
        // SAFETY: a leaf entry of this space's user half, under the kernel lock.
        let entry = unsafe { pointer.read() };
        if entry & (PRESENT | USER) != PRESENT | USER {
            return None;
        }
        // SAFETY: as above.
        unsafe { pointer.write(0) };
        flush_page(address);
        let owned = entry & OWNED.bits() != 0;
        if owned {
            self.owned_pages -= 1;
        }
        Some((PhysAddr::new(entry & ADDRESS_MASK), owned))
    }

    /// Maps `pages` consecutive user pages from `address`, page `index` to
    /// frame `frame(index)`, all or nothing: on failure the pages this call
    /// mapped are unmapped again. One walk per leaf table, not per page.
    pub fn map_range(
        &mut self,
        address: u64,
        pages: usize,
        frame: impl Fn(usize) -> u64,
        access: UserAccess,
        owned: bool,
    ) -> Result<(), MapError> {
        let end = (pages as u64)
            .checked_mul(FRAME_SIZE)
            .and_then(|length| address.checked_add(length))
            .filter(|&end| end <= USER_END);
        if !address.is_multiple_of(FRAME_SIZE) || end.is_none() {
            return Err(MapError::BadAddress);
        }
        let mut flags = PRESENT | USER;
        if access.writable {
            flags |= WRITABLE;
        }
        if !access.executable {
            flags |= PageTableFlags::NO_EXECUTE.bits();
        }
        if owned {
            flags |= OWNED.bits();
        }
        let mut done = 0usize;
        while done < pages {
            let page = address + done as u64 * FRAME_SIZE;
            let table = match self.leaf_table_or_create(page) {
                Ok(table) => table,
                Err(error) => {
                    self.unmap_first(address, done);
                    return Err(error);
                }
            };
            let first = (page >> 12) & 511;
            let run = (512 - first as usize).min(pages - done);
            let leaf = &mut entries_mut(table)[first as usize..first as usize + run];
            if leaf.iter().fold(0, |any, &entry| any | entry) == 0 {
                // The common case: the whole run is free.
                for (offset, slot) in leaf.iter_mut().enumerate() {
                    *slot = (frame(done + offset) & ADDRESS_MASK) | flags;
                }
                // No TLB flush: the entries were not present, and x86 caches
                // no translation for a non-present page.
                if owned {
                    self.owned_pages += run;
                }
                done += run;
                continue;
            }
            for index in 0..run {
                let pointer = entry_pointer(table, first + index as u64);
                // SAFETY: a leaf entry of this space's user half (the range
                // was checked below USER_END), under the kernel lock, as in
                // `map`.
                unsafe {
                    if pointer.read() != 0 {
                        if owned {
                            self.owned_pages += index;
                        }
                        self.unmap_first(address, done + index);
                        return Err(MapError::AlreadyMapped);
                    }
                    pointer.write((frame(done + index) & ADDRESS_MASK) | flags);
                }
            }
            // No TLB flush: the entries were not present, and x86 caches no
            // translation for a non-present page.
            if owned {
                self.owned_pages += run;
            }
            done += run;
        }
        Ok(())
    }

    /// Undoes the first `pages` pages a failed [`AddressSpace::map_range`] mapped.
    fn unmap_first(&mut self, address: u64, pages: usize) {
        for index in 0..pages {
            let _ = self.unmap(address + index as u64 * FRAME_SIZE);
        }
    }

    /// Unmaps `pages` consecutive user pages from `address`, passing each
    /// page's index and frame to `frame` (the frames are not freed); returns
    /// whether every page was writable at every level. All or nothing: `None`,
    /// changing nothing, if any page is not a present user page. One walk per
    /// leaf table, not per page.
    pub fn unmap_range(
        &mut self,
        address: u64,
        pages: usize,
        mut frame: impl FnMut(usize, u64),
    ) -> Option<bool> {
        let end = (pages as u64)
            .checked_mul(FRAME_SIZE)
            .and_then(|length| address.checked_add(length))
            .filter(|&end| end <= USER_END)?;
        if !address.is_multiple_of(FRAME_SIZE) {
            return None;
        }
        // Check every page first, so a missing one changes nothing.
        let mut all_writable = true;
        let mut page = address;
        while page < end {
            let (table, upper_writable) = self.leaf_table(page)?;
            let first = (page >> 12) & 511;
            let run = (512 - first).min((end - page) >> 12);
            // Present, user and writable only if every entry of the run is.
            let common = entries(table)[first as usize..(first + run) as usize]
                .iter()
                .fold(!0, |common, &entry| common & entry);
            if common & (PRESENT | USER) != PRESENT | USER {
                return None;
            }
            all_writable &= upper_writable && common & WRITABLE != 0;
            page += run * FRAME_SIZE;
        }
        // Stale translations: none if another space is active (its entries
        // went with the CR3 load that left this one; no PCIDs); otherwise one
        // INVLPG per page, or one CR3 reload for a long run, as Linux does
        // past its single-page flush ceiling.
        let active = Cr3::read().0 == self.pml4;
        let flush_each = active && pages <= FLUSH_PAGES_MAX;
        let mut done = 0usize;
        let mut owned = 0usize;
        let mut page = address;
        while page < end {
            let (table, _) = self.leaf_table(page)?;
            let first = (page >> 12) & 511;
            let run = (512 - first).min((end - page) >> 12);
            let leaf = &mut entries_mut(table)[first as usize..(first + run) as usize];
            for (offset, slot) in leaf.iter_mut().enumerate() {
                let entry = core::mem::take(slot);
                if flush_each {
                    flush_page(page + offset as u64 * FRAME_SIZE);
                }
                owned += usize::from(entry & OWNED.bits() != 0);
                frame(done + offset, entry & ADDRESS_MASK);
            }
            done += run as usize;
            page += run * FRAME_SIZE;
        }
        self.owned_pages -= owned;
        if active && !flush_each {
            let (pml4, flags) = Cr3::read();
            // SAFETY: reloading the active PML4 changes no mapping; it only
            // drops this space's cached (non-global) translations.
            unsafe { Cr3::write(pml4, flags) };
        }
        Some(all_writable)
    }

    /// Passes the frame of each of `pages` consecutive user pages from
    /// `address` to `frame`, with its index; `None` if any page is not a
    /// present user page (`frame` may have been called with meaningless
    /// frames by then). One walk per leaf table, not per page.
    pub fn translate_range(
        &self,
        address: u64,
        pages: usize,
        mut frame: impl FnMut(usize, u64),
    ) -> Option<()> {
        let end = (pages as u64)
            .checked_mul(FRAME_SIZE)
            .and_then(|length| address.checked_add(length))
            .filter(|&end| end <= USER_END)?;
        if !address.is_multiple_of(FRAME_SIZE) {
            return None;
        }
        let mut done = 0usize;
        let mut page = address;
        while page < end {
            let (table, _) = self.leaf_table(page)?;
            let first = (page >> 12) & 511;
            let run = (512 - first).min((end - page) >> 12);
            // Frames first, checked for the whole run after: on `None` the
            // caller drops what it was given.
            let mut common = !0;
            for (offset, &entry) in entries(table)[first as usize..(first + run) as usize]
                .iter()
                .enumerate()
            {
                common &= entry;
                frame(done + offset, entry & ADDRESS_MASK);
            }
            if common & (PRESENT | USER) != PRESENT | USER {
                return None;
            }
            done += run as usize;
            page += run * FRAME_SIZE;
        }
        Some(())
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
        if address >= USER_END {
            return None;
        }
        let (table, upper_writable) = self.leaf_table(address)?;
        // SAFETY: a leaf table of this space inside the direct map; an
        // aligned u64 read of one entry.
        let entry = unsafe { entry_pointer(table, address >> 12).read() };
        if entry & (PRESENT | USER) != PRESENT | USER {
            return None;
        }
        Some((
            entry & ADDRESS_MASK,
            upper_writable && entry & WRITABLE != 0,
            entry,
        ))
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
        if (address ^ (end - 1)) < FRAME_SIZE {
            // One page (most system-call arguments): one walk, no frame list.
            let fault = Fault { address };
            let (frame, writable, _) = self.translate_raw(address).ok_or(fault)?;
            if write && !writable {
                return Err(fault);
            }
            each(
                phys_to_virt(frame + (address & (FRAME_SIZE - 1))) as *mut u8,
                0,
                length,
            );
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

    /// Whether `[address, address + length)` is mapped user-readable.
    pub fn is_readable(&self, address: u64, length: usize) -> bool {
        self.check_range(address, length, false).is_ok()
    }

    /// Whether `[address, address + length)` is mapped user-writable.
    pub fn is_writable(&self, address: u64, length: usize) -> bool {
        self.check_range(address, length, true).is_ok()
    }

    /// Checks that a range is mapped for user access (and writable if `write`).
    #[inline(always)]
    fn check_range(&self, address: u64, length: usize, write: bool) -> Result<(), Fault> {
        let end = address
            .checked_add(length as u64)
            .filter(|&end| end <= USER_END)
            .ok_or(Fault { address })?;
        if length != 0 && (address ^ (end - 1)) < FRAME_SIZE {
            // One page (a system call's small argument): one walk, no loop.
            let fault = Fault { address };
            let (_, writable, _) = self.translate_raw(address).ok_or(fault)?;
            return if write && !writable {
                Err(fault)
            } else {
                Ok(())
            };
        }
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

    /// Copies user memory at `address` into `destination` after checking that
    /// the range is also writable (for an in/out argument), in one walk.
    pub fn copy_from_writable_user(
        &self,
        address: u64,
        destination: &mut [u8],
    ) -> Result<(), Fault> {
        let length = destination.len();
        self.walk(address, length, true, |kernel, offset, piece| {
            // SAFETY: as in `copy_from_user`.
            unsafe {
                core::ptr::copy_nonoverlapping(kernel, destination[offset..].as_mut_ptr(), piece)
            }
        })
    }

    /// Reads the little-endian `u32` at `address` when `[address, address +
    /// span)` lies in one present, writable user page (`span` at least 4);
    /// `None` otherwise (the caller falls back to a full checked copy, which
    /// reports the fault). One walk, no copy loop: for the count word of an
    /// in/out argument whose rest is usually not needed.
    #[inline]
    pub fn read_word_in_writable_page(&self, address: u64, span: usize) -> Option<u32> {
        let end = address.checked_add(span as u64)?;
        if span < 4 || (address ^ (end - 1)) >= FRAME_SIZE {
            return None;
        }
        // `translate_raw` checks `address` below USER_END; the page's end is
        // at most USER_END, so the whole span is user memory.
        let (frame, writable, _) = self.translate_raw(address)?;
        if !writable {
            return None;
        }
        // SAFETY: the 4 bytes lie inside a checked, present user page of this
        // space (the span is in one page), reached through the direct map; an
        // unaligned read of plain bytes.
        Some(unsafe {
            (phys_to_virt(frame + (address & (FRAME_SIZE - 1))) as *const u32).read_unaligned()
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
        if length != 0
            && (source ^ source.wrapping_add(length as u64 - 1)) < FRAME_SIZE
            && (destination ^ destination.wrapping_add(length as u64 - 1)) < FRAME_SIZE
        {
            // Each side within one page (small messages): one walk per side.
            // The page's end is at most USER_END, which `translate_raw` checks.
            let (source_frame, _, _) = from
                .translate_raw(source)
                .ok_or(Fault { address: source })?;
            let destination_fault = Fault {
                address: destination,
            };
            let (destination_frame, writable, _) =
                to.translate_raw(destination).ok_or(destination_fault)?;
            if !writable {
                return Err(destination_fault);
            }
            // SAFETY: both ranges lie inside checked, present user pages
            // (the destination writable), reached through the direct map;
            // `copy` tolerates overlap (the same frame may be mapped twice).
            unsafe {
                core::ptr::copy(
                    phys_to_virt(source_frame + (source & (FRAME_SIZE - 1))) as *const u8,
                    phys_to_virt(destination_frame + (destination & (FRAME_SIZE - 1))) as *mut u8,
                    length,
                )
            };
            return Ok(());
        }
        // Validate both ranges before moving a byte, remembering the frames
        // of the first pages so the copy below need not walk again.
        let mut source_frames = [0u64; REMEMBERED_FRAMES];
        let mut destination_frames = [0u64; REMEMBERED_FRAMES];
        let source_known = from.check_frames(source, length, false, &mut source_frames)?;
        let destination_known =
            to.check_frames(destination, length, true, &mut destination_frames)?;
        let source_frames = &source_frames[..source_known];
        let destination_frames = &destination_frames[..destination_known];
        let mut done = 0usize;
        while done < length {
            let source_at = source + done as u64;
            let destination_at = destination + done as u64;
            let source_frame = match source_frames.get(page_index(source, source_at)) {
                Some(&frame) => frame,
                None => {
                    from.translate_raw(source_at)
                        .ok_or(Fault { address: source })?
                        .0
                }
            };
            let destination_frame =
                match destination_frames.get(page_index(destination, destination_at)) {
                    Some(&frame) => frame,
                    None => {
                        to.translate_raw(destination_at)
                            .ok_or(Fault {
                                address: destination,
                            })?
                            .0
                    }
                };
            let source_offset = source_at & (FRAME_SIZE - 1);
            let destination_offset = destination_at & (FRAME_SIZE - 1);
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

    /// Checks a range like [`AddressSpace::check_range`] and returns the
    /// frames of its first pages in `frames` (the rest are walked again when
    /// used); returns how many it stored.
    #[inline(always)]
    fn check_frames(
        &self,
        address: u64,
        length: usize,
        write: bool,
        frames: &mut [u64; REMEMBERED_FRAMES],
    ) -> Result<usize, Fault> {
        let end = address
            .checked_add(length as u64)
            .filter(|&end| end <= USER_END)
            .ok_or(Fault { address })?;
        let mut stored = 0;
        let mut page = address & !(FRAME_SIZE - 1);
        while page < end {
            let fault = Fault {
                address: page.max(address),
            };
            let (frame, writable, _) = self.translate_raw(page).ok_or(fault)?;
            if write && !writable {
                return Err(fault);
            }
            if let Some(slot) = frames.get_mut(stored) {
                *slot = frame;
                stored += 1;
            }
            page += FRAME_SIZE;
        }
        Ok(stored)
    }

    /// Finds `pages` consecutive unmapped pages between `low` and `high`.
    pub fn find_free_range(&self, pages: usize, low: u64, high: u64) -> Option<u64> {
        let needed = (pages as u64).checked_mul(FRAME_SIZE)?;
        let mut start = low;
        let mut cursor = low;
        while cursor < high {
            // Scan no further than the request needs: the answer is the same.
            let free = self.free_run(cursor, (needed - (cursor - start)).max(1));
            if free == 0 {
                cursor += FRAME_SIZE;
                start = cursor;
                continue;
            }
            cursor += free;
            if cursor.min(high) - start >= needed {
                return Some(start);
            }
        }
        None
    }

    /// How many bytes from page `address` on are certainly unmapped (no
    /// mapping, user or not): a whole absent table's span at once, or the run
    /// of empty entries in its leaf table, which stops once it reaches `enough`
    /// bytes. 0 when `address` is mapped.
    fn free_run(&self, address: u64, enough: u64) -> u64 {
        let mut physical = self.pml4.start_address().as_u64();
        for shift in [39u32, 30, 21] {
            // SAFETY: a page-table frame of this space, read through the
            // direct map.
            let entry = unsafe { entry_pointer(physical, address >> shift).read() };
            if entry & PRESENT == 0 {
                let span = 1u64 << shift;
                return span - (address & (span - 1));
            }
            if entry & HUGE != 0 {
                return 0;
            }
            physical = entry & ADDRESS_MASK;
        }
        let mut index = (address >> 12) & 511;
        let mut run = 0;
        let leaf = entries(physical);
        while index < 512 && run < enough {
            // Eight empty entries at a time where aligned (a longer run than
            // `enough` changes no answer of `find_free_range`).
            if index.is_multiple_of(8)
                && leaf[index as usize..index as usize + 8]
                    .iter()
                    .fold(0, |any, &entry| any | entry)
                    & PRESENT
                    == 0
            {
                run += 8 * FRAME_SIZE;
                index += 8;
                continue;
            }
            // SAFETY: as above, for the leaf table.
            let entry = unsafe { entry_pointer(physical, index).read() };
            if entry & PRESENT != 0 {
                break;
            }
            run += FRAME_SIZE;
            index += 1;
        }
        run
    }

    /// Frees every owned frame and every user page-table frame, then the PML4.
    /// The space must not be active.
    pub fn destroy(self) {
        debug_assert!(Cr3::read().0 != self.pml4, "tearing down the active space");
        let pml4 = self.pml4.start_address().as_u64();
        // The entries themselves are left as they are: every frame freed
        // here is zeroed again when it is next allocated.
        for_each_used(&entries(pml4)[..256], |pdpt| {
            let pdpt = pdpt & ADDRESS_MASK;
            for_each_used(entries(pdpt), |pd| {
                let pd = pd & ADDRESS_MASK;
                for_each_used(entries(pd), |pt| {
                    let pt = pt & ADDRESS_MASK;
                    for_each_used(entries(pt), |leaf| {
                        if leaf & (PRESENT | OWNED.bits()) == PRESENT | OWNED.bits() {
                            // SAFETY: owned leaf frames were allocated for this
                            // space alone and nothing maps them any more.
                            unsafe { memory::free_frame(PhysAddr::new(leaf & ADDRESS_MASK)) };
                        }
                    });
                    // SAFETY: page-table frames of the user half belong to this
                    // space alone.
                    unsafe { memory::free_frame(PhysAddr::new(pt)) };
                });
                // SAFETY: as above.
                unsafe { memory::free_frame(PhysAddr::new(pd)) };
            });
            // SAFETY: as above.
            unsafe { memory::free_frame(PhysAddr::new(pdpt)) };
        });
        // SAFETY: the PML4 is not active (checked above) and belongs to us.
        unsafe { memory::free_frame(self.pml4.start_address()) };
    }
}

/// The 512 raw entries of the page table in frame `physical`.
fn entries(physical: u64) -> &'static [u64; 512] {
    // SAFETY: as in `table`: a page-table frame in the direct map, only read
    // here, under the kernel lock.
    unsafe { &*(phys_to_virt(physical) as *const [u64; 512]) }
}

/// The 512 raw entries of the page table in frame `physical`, for editing.
fn entries_mut(physical: u64) -> &'static mut [u64; 512] {
    // SAFETY: as in `table`: a page-table frame in the direct map that only
    // the kernel edits, under the kernel lock; the caller holds no other
    // reference to it while using this one.
    unsafe { &mut *(phys_to_virt(physical) as *mut [u64; 512]) }
}

/// Calls `visit` with every non-zero entry of `entries` (a multiple of 8
/// long), skipping eight empty entries at a time.
fn for_each_used(entries: &[u64], mut visit: impl FnMut(u64)) {
    for chunk in entries.chunks_exact(8) {
        if chunk.iter().fold(0, |any, &entry| any | entry) == 0 {
            continue;
        }
        for &entry in chunk {
            if entry != 0 {
                visit(entry);
            }
        }
    }
}
