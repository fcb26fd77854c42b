//! Physical memory: the frame allocator.
//!
//! The boot trampoline (in `kipc_arch::boot`) maps physical 0..4 GiB at
//! `DIRECT_MAP_BASE`, so the kernel reaches any frame at
//! `DIRECT_MAP_BASE + physical` ([`phys_to_virt`]). Frames come from
//! the PVH memory map: RAM above the kernel image, minus the boot modules and
//! the start info. The allocator hands out never-used frames in address order
//! and recycles freed frames through a free list threaded through the frames
//! themselves (each free frame's first word holds the next one's address).
//!
//! Frames are reference counted, so one frame can belong to a file and to
//! the address spaces and regions it is lent to at once (zero-copy file
//! transfer). [`allocate_frame`] returns a frame with one reference,
//! [`share_frames`] adds one to each of a batch, [`free_frame`] drops one
//! ([`free_frames`] one from each of a batch) and frees the frame
//! when none is left.

use spin::Mutex;
use x86_64::structures::paging::{FrameAllocator, OffsetPageTable, PageTable, PhysFrame, Size4KiB};
use x86_64::{PhysAddr, VirtAddr, registers::control::Cr3};

use kipc_arch::boot::{DIRECT_MAP_BASE, DIRECT_MAP_SIZE, kernel_physical_end, phys_to_virt};
use kipc_arch::pvh::{BootInfo, MEMORY_RAM};
use kipc_arch::verdict::fail;

/// Size of a frame and of a page.
pub const FRAME_SIZE: u64 = 4096;

const MAX_RANGES: usize = 32;
const MAX_HOLES: usize = 12;

/// Frames the reference counts cover: all of the direct map.
const COUNTED_FRAMES: usize = (DIRECT_MAP_SIZE / FRAME_SIZE) as usize;

/// Physical frame allocator over the PVH memory map.
pub struct Frames {
    references: [u16; COUNTED_FRAMES],
    ranges: heapless::Vec<(u64, u64), MAX_RANGES>,
    holes: heapless::Vec<(u64, u64), MAX_HOLES>,
    range_index: usize,
    next_fresh: u64,
    free_list: u64,
    total: u64,
    free: u64,
}

/// Counts the frame allocator reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameStats {
    /// Usable frames in all.
    pub total: u64,
    /// Frames not allocated right now.
    pub free: u64,
}

impl Frames {
    const fn empty() -> Self {
        Self {
            references: [0; COUNTED_FRAMES],
            ranges: heapless::Vec::new(),
            holes: heapless::Vec::new(),
            range_index: 0,
            next_fresh: 0,
            free_list: 0,
            total: 0,
            free: 0,
        }
    }

    fn in_hole(&self, frame: u64) -> Option<u64> {
        self.holes
            .iter()
            .find(|(start, end)| frame + FRAME_SIZE > *start && frame < *end)
            .map(|(_, end)| end.next_multiple_of(FRAME_SIZE))
    }

    fn allocate(&mut self) -> Option<u64> {
        let frame = self.take()?;
        self.references[(frame / FRAME_SIZE) as usize] = 1;
        Some(frame)
    }

    fn take(&mut self) -> Option<u64> {
        if self.free_list != 0 {
            let frame = self.free_list;
            // SAFETY: every frame on the free list is unused RAM inside the
            // direct map whose first word `free` wrote.
            self.free_list = unsafe { (phys_to_virt(frame) as *const u64).read() };
            self.free -= 1;
            return Some(frame);
        }
        while let Some(&(_, end)) = self.ranges.get(self.range_index) {
            let frame = self.next_fresh;
            if frame + FRAME_SIZE > end {
                self.range_index += 1;
                if let Some(&(start, _)) = self.ranges.get(self.range_index) {
                    self.next_fresh = start;
                }
                continue;
            }
            if let Some(skip_to) = self.in_hole(frame) {
                self.next_fresh = skip_to;
                continue;
            }
            self.next_fresh = frame + FRAME_SIZE;
            self.free -= 1;
            return Some(frame);
        }
        None
    }

    /// Drops one reference; frees the frame when it was the last.
    fn release(&mut self, frame: u64) {
        let count = &mut self.references[(frame / FRAME_SIZE) as usize];
        match *count {
            0 => fail(format_args!("frame {frame:#x} freed while free")),
            1 => {
                *count = 0;
                self.deallocate(frame);
            }
            _ => *count -= 1,
        }
    }

    fn deallocate(&mut self, frame: u64) {
        debug_assert!(frame.is_multiple_of(FRAME_SIZE));
        // SAFETY: the caller gives back a frame it owns and no longer uses;
        // it is RAM inside the direct map, so its first word can hold the link.
        unsafe { (phys_to_virt(frame) as *mut u64).write(self.free_list) };
        self.free_list = frame;
        self.free += 1;
    }
}

static FRAMES: Mutex<Frames> = Mutex::new(Frames::empty());

/// Builds the frame allocator from the memory map, keeping the kernel image,
/// the first MiB, the start info and the boot modules out of it.
pub fn init(boot: &BootInfo) -> FrameStats {
    let mut frames = FRAMES.lock();
    let floor = kernel_physical_end().max(1 << 20);
    for range in boot.memory.iter().filter(|range| range.kind == MEMORY_RAM) {
        let start = range.start.max(floor).next_multiple_of(FRAME_SIZE);
        let end = range.end.min(DIRECT_MAP_SIZE) & !(FRAME_SIZE - 1);
        if start < end {
            let _ = frames.ranges.push((start, end));
        }
    }
    for &(start, end) in boot.reserved.iter() {
        let _ = frames.holes.push((start & !(FRAME_SIZE - 1), end));
    }
    for module in boot.modules.iter() {
        let _ = frames
            .holes
            .push((module.start & !(FRAME_SIZE - 1), module.start + module.size));
    }
    let mut total = 0;
    for index in 0..frames.ranges.len() {
        let (start, end) = frames.ranges[index];
        let mut frame = start;
        while frame + FRAME_SIZE <= end {
            match frames.in_hole(frame) {
                Some(skip_to) => frame = skip_to,
                None => {
                    total += 1;
                    frame += FRAME_SIZE;
                }
            }
        }
    }
    frames.total = total;
    frames.free = total;
    frames.range_index = 0;
    frames.next_fresh = frames.ranges.first().map_or(0, |range| range.0);
    FrameStats { total, free: total }
}

/// Allocates one zeroed frame; `None` when memory is exhausted.
pub fn allocate_frame() -> Option<PhysAddr> {
    let frame = x86_64::instructions::interrupts::without_interrupts(|| FRAMES.lock().allocate())?;
    // SAFETY: the frame was just taken off the allocator, so nothing else uses
    // it; it lies inside the direct map.
    unsafe { core::ptr::write_bytes(phys_to_virt(frame) as *mut u8, 0, FRAME_SIZE as usize) };
    Some(PhysAddr::new(frame))
}

/// Allocates one frame without zeroing it, for a caller about to overwrite
/// all of it (a file page written whole): zeroing would cost as much as a
/// copy of the page. `None` when memory is exhausted.
///
/// # Safety
/// The frame holds whatever its previous owner left there. The caller must
/// overwrite every byte, or zero it, before any process can read it.
pub unsafe fn allocate_frame_unzeroed() -> Option<PhysAddr> {
    let frame = x86_64::instructions::interrupts::without_interrupts(|| FRAMES.lock().allocate())?;
    Some(PhysAddr::new(frame))
}

/// Zeroes a frame of the direct map.
pub fn zero_frame(frame: PhysAddr) {
    // SAFETY: the caller holds a reference to the frame, which lies inside
    // the direct map; writing zeros cannot break any invariant of its users
    // beyond what the caller intends.
    unsafe {
        core::ptr::write_bytes(
            phys_to_virt(frame.as_u64()) as *mut u8,
            0,
            FRAME_SIZE as usize,
        )
    };
}

/// Drops one reference to a frame; the last one returns it to the allocator.
///
/// # Safety
/// The caller owns one reference to `frame` (from [`allocate_frame`] or
/// a share) and no longer uses the frame through it.
pub unsafe fn free_frame(frame: PhysAddr) {
    x86_64::instructions::interrupts::without_interrupts(|| FRAMES.lock().release(frame.as_u64()));
}

/// Most references a frame may have; sharing beyond fails instead of wrapping.
pub const MAX_REFERENCES: u16 = u16::MAX - 1;

/// Drops one reference to each frame in `frames`, in order, under one lock;
/// the last reference to a frame returns it to the allocator.
///
/// # Safety
/// As for [`free_frame`], for every frame (a frame listed twice gives up two
/// references).
pub unsafe fn free_frames(frames: impl IntoIterator<Item = u64>) {
    x86_64::instructions::interrupts::without_interrupts(|| {
        let mut allocator = FRAMES.lock();
        for frame in frames {
            allocator.release(frame);
        }
    });
}

/// Adds a reference to each allocated frame in `frames` (it is now shared),
/// in order, under one lock (a frame listed twice gains two). Fails, changing
/// nothing, if any frame is free or already has [`MAX_REFERENCES`].
pub fn share_frames(frames: &[u64]) -> Result<(), ()> {
    x86_64::instructions::interrupts::without_interrupts(|| {
        let mut allocator = FRAMES.lock();
        for (done, &frame) in frames.iter().enumerate() {
            let count = &mut allocator.references[(frame / FRAME_SIZE) as usize];
            if *count == 0 || *count >= MAX_REFERENCES {
                for &undo in &frames[..done] {
                    allocator.references[(undo / FRAME_SIZE) as usize] -= 1;
                }
                return Err(());
            }
            *count += 1;
        }
        Ok(())
    })
}

/// Adds a reference to each allocated frame in `frames` under one lock, after
/// checking that each has room for one more per entry of `frames`: fails,
/// changing nothing, if any frame already has `MAX_REFERENCES - frames.len()`
/// references or more.
pub fn share_frames_with_room(frames: &[u64]) -> Result<(), ()> {
    let room = u16::try_from(frames.len()).map_err(|_| ())?;
    let limit = MAX_REFERENCES.checked_sub(room).ok_or(())?;
    x86_64::instructions::interrupts::without_interrupts(|| {
        let mut allocator = FRAMES.lock();
        let references = &mut allocator.references;
        if frames
            .iter()
            .any(|&frame| references[(frame / FRAME_SIZE) as usize] >= limit)
        {
            return Err(());
        }
        for &frame in frames {
            let count = &mut references[(frame / FRAME_SIZE) as usize];
            // A free frame gains nothing, as `share_frames` refuses it.
            *count += u16::from(*count != 0);
        }
        Ok(())
    })
}

/// How many references a frame has (0 = free).
pub fn frame_references(frame: PhysAddr) -> u16 {
    x86_64::instructions::interrupts::without_interrupts(|| {
        FRAMES.lock().references[(frame.as_u64() / FRAME_SIZE) as usize]
    })
}

/// Current frame counts.
pub fn frame_stats() -> FrameStats {
    x86_64::instructions::interrupts::without_interrupts(|| {
        let frames = FRAMES.lock();
        FrameStats {
            total: frames.total,
            free: frames.free,
        }
    })
}

/// The x86_64 crate's allocator interface over [`allocate_frame`].
pub struct KernelFrameAllocator;

// SAFETY: `allocate_frame` hands out each frame at most once until it is freed.
unsafe impl FrameAllocator<Size4KiB> for KernelFrameAllocator {
    fn allocate_frame(&mut self) -> Option<PhysFrame<Size4KiB>> {
        allocate_frame().map(PhysFrame::containing_address)
    }
}

/// The active page tables, walked through the direct map.
///
/// # Safety
/// The caller must not create two of these at once (they alias the same
/// tables) and must keep interrupts from modifying the tables meanwhile.
pub unsafe fn active_page_table() -> OffsetPageTable<'static> {
    let (pml4_frame, _) = Cr3::read();
    let pml4 = phys_to_virt(pml4_frame.start_address().as_u64()) as *mut PageTable;
    // SAFETY: the caller guarantees exclusivity; the PML4 and every table it
    // references are in the direct map at DIRECT_MAP_BASE.
    unsafe { OffsetPageTable::new(&mut *pml4, VirtAddr::new(DIRECT_MAP_BASE)) }
}
