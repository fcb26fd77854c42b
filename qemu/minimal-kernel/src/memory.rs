//! Memory the way most Rust hobby kernels do it: a frame allocator implementing the
//! `x86_64` crate's traits, and one `OffsetPageTable` per address space over the direct
//! map the boot code built.

use kipc_arch::boot::{DIRECT_MAP_BASE, DIRECT_MAP_SIZE, kernel_physical_end, phys_to_virt};
use kipc_arch::pvh::{BootInfo, MEMORY_RAM};
use x86_64::registers::control::Cr3;
use x86_64::structures::paging::{
    FrameAllocator, FrameDeallocator, OffsetPageTable, PageTable, PageTableFlags, PhysFrame,
    Size4KiB,
};
use x86_64::{PhysAddr, VirtAddr};

/// Frames handed back, kept for reuse.
const RECYCLED: usize = 4096;

/// A bump allocator over the largest RAM range above the kernel and the boot modules,
/// with a stack of freed frames.
pub struct Frames {
    next: u64,
    end: u64,
    freed: heapless::Vec<PhysFrame, RECYCLED>,
}

impl Frames {
    /// No memory yet; see [`Frames::init`].
    pub const fn new() -> Frames {
        Frames {
            next: 0,
            end: 0,
            freed: heapless::Vec::new(),
        }
    }

    /// Takes the largest piece of RAM in the PVH memory map that holds nothing boot
    /// left there (the kernel image, the boot modules, the start info).
    pub fn init(&mut self, boot: &BootInfo) {
        let mut taken: heapless::Vec<(u64, u64), 16> = heapless::Vec::new();
        let _ = taken.push((0, kernel_physical_end()));
        for module in &boot.modules {
            let _ = taken.push((module.start, module.start + module.size));
        }
        for &range in &boot.reserved {
            let _ = taken.push(range);
        }
        for range in boot.memory.iter().filter(|range| range.kind == MEMORY_RAM) {
            let mut pieces: heapless::Vec<(u64, u64), 32> = heapless::Vec::new();
            let _ = pieces.push((range.start, range.end.min(DIRECT_MAP_SIZE)));
            for &(hole_start, hole_end) in &taken {
                let mut next: heapless::Vec<(u64, u64), 32> = heapless::Vec::new();
                for &(start, end) in &pieces {
                    for piece in [(start, end.min(hole_start)), (start.max(hole_end), end)] {
                        if piece.0 < piece.1 {
                            let _ = next.push(piece);
                        }
                    }
                }
                pieces = next;
            }
            for (start, end) in pieces {
                let (start, end) = (start.next_multiple_of(4096), end & !4095);
                if end > start && end - start > self.end - self.next {
                    (self.next, self.end) = (start, end);
                }
            }
        }
    }

    /// Frames not handed out.
    pub fn free(&self) -> u64 {
        (self.end - self.next) / 4096 + self.freed.len() as u64
    }
}

// SAFETY: fresh frames come from RAM nothing else uses (above the kernel image and the
// boot modules), each once; recycled ones only after `deallocate_frame` returned them.
unsafe impl FrameAllocator<Size4KiB> for Frames {
    fn allocate_frame(&mut self) -> Option<PhysFrame> {
        if let Some(frame) = self.freed.pop() {
            return Some(frame);
        }
        if self.next >= self.end {
            return None;
        }
        self.next += 4096;
        Some(PhysFrame::containing_address(PhysAddr::new(
            self.next - 4096,
        )))
    }
}

impl FrameDeallocator<Size4KiB> for Frames {
    unsafe fn deallocate_frame(&mut self, frame: PhysFrame) {
        // Past RECYCLED frames in the stack, a frame is lost rather than corrupting state.
        let _ = self.freed.push(frame);
    }
}

/// The 4096 bytes of `frame`, through the direct map.
pub fn frame_bytes(frame: PhysFrame) -> &'static mut [u8; 4096] {
    // SAFETY: the direct map covers all RAM the allocator hands out; callers use the
    // bytes of frames they own, one at a time.
    unsafe { &mut *(phys_to_virt(frame.start_address().as_u64()) as *mut [u8; 4096]) }
}

fn table_at(frame: PhysFrame) -> &'static mut PageTable {
    // SAFETY: `frame` holds a page table reachable through the direct map.
    unsafe { &mut *(phys_to_virt(frame.start_address().as_u64()) as *mut PageTable) }
}

/// A new address space: an empty user half and the kernel half of the boot tables.
pub fn new_space(frames: &mut Frames) -> Option<(PhysFrame, OffsetPageTable<'static>)> {
    let pml4 = frames.allocate_frame()?;
    frame_bytes(pml4).fill(0);
    let (boot, _) = Cr3::read();
    let (boot, table) = (table_at(boot), table_at(pml4));
    for slot in 256..512 {
        table[slot] = boot[slot].clone();
    }
    // SAFETY: the PML4 is ours alone, and the direct map starts at DIRECT_MAP_BASE.
    let mapper = unsafe { OffsetPageTable::new(table, VirtAddr::new(DIRECT_MAP_BASE)) };
    Some((pml4, mapper))
}

/// Frees every page and page table of the user half of `pml4` (what kipc mapped is
/// already unmapped by `process_exit`), then the PML4 itself.
pub fn free_space(pml4: PhysFrame, frames: &mut Frames) {
    fn free_level(table: PhysFrame, level: u8, frames: &mut Frames) {
        let entries = if level == 4 { 256 } else { 512 };
        for entry in table_at(table).iter().take(entries) {
            if !entry.flags().contains(PageTableFlags::PRESENT) {
                continue;
            }
            let Ok(next) = PhysFrame::from_start_address(entry.addr()) else {
                continue;
            };
            if level > 1 {
                free_level(next, level - 1, frames);
            } else {
                // SAFETY: a leaf of a dead address space: the program's own page.
                unsafe { frames.deallocate_frame(next) };
            }
        }
        // SAFETY: the table belonged to this space alone.
        unsafe { frames.deallocate_frame(table) };
    }
    free_level(pml4, 4, frames);
}
