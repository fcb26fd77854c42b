//! Programs: found by name in the boot archive (ustar), loaded from ELF with `xmas-elf`.

use x86_64::VirtAddr;
use x86_64::structures::paging::mapper::MapToError;
use x86_64::structures::paging::{
    FrameAllocator, Mapper, OffsetPageTable, Page, PageTableFlags, Size4KiB,
};
use xmas_elf::ElfFile;
use xmas_elf::program::Type;

use crate::memory::{Frames, frame_bytes};

/// Top of the user stack (exclusive) and its size in pages.
pub const STACK_TOP: u64 = 0x0000_7fff_ffff_0000;
const STACK_PAGES: u64 = 8;

/// The file `name` in a ustar archive.
pub fn find<'a>(archive: &'a [u8], name: &str) -> Option<&'a [u8]> {
    let mut at = 0;
    while at + 512 <= archive.len() && archive[at] != 0 {
        let header = &archive[at..at + 512];
        let field = |range: core::ops::Range<usize>| {
            let bytes = &header[range];
            &bytes[..bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len())]
        };
        let size = field(124..136)
            .iter()
            .filter(|b| b.is_ascii_digit())
            .fold(0usize, |size, b| size * 8 + usize::from(b - b'0'));
        let data = archive.get(at + 512..at + 512 + size)?;
        if field(0..100) == name.as_bytes() {
            return Some(data);
        }
        at += 512 + size.next_multiple_of(512);
    }
    None
}

/// Why a program could not be loaded.
pub enum LoadError {
    /// Not an ELF file `xmas-elf` accepts.
    Elf(&'static str),
    /// A segment outside the user half, or writable and executable.
    BadSegment,
    /// No memory for its pages.
    OutOfFrames,
    /// Two segments claim the same page.
    Overlap,
}

impl core::fmt::Display for LoadError {
    fn fmt(&self, out: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            LoadError::Elf(why) => write!(out, "not a loadable ELF file ({why})"),
            LoadError::BadSegment => write!(
                out,
                "a segment leaves the user half or is writable and executable"
            ),
            LoadError::OutOfFrames => write!(out, "out of memory"),
            LoadError::Overlap => write!(out, "two segments share a page"),
        }
    }
}

fn map_fresh(
    table: &mut OffsetPageTable<'static>,
    frames: &mut Frames,
    page: u64,
    flags: PageTableFlags,
) -> Result<&'static mut [u8; 4096], LoadError> {
    let frame = frames.allocate_frame().ok_or(LoadError::OutOfFrames)?;
    let bytes = frame_bytes(frame);
    bytes.fill(0);
    let page = Page::<Size4KiB>::containing_address(VirtAddr::new(page));
    let parent =
        PageTableFlags::PRESENT | PageTableFlags::WRITABLE | PageTableFlags::USER_ACCESSIBLE;
    // SAFETY: a fresh frame, mapped once into the user half of a space not yet running.
    match unsafe { table.map_to_with_table_flags(page, frame, flags, parent, frames) } {
        Ok(flush) => flush.ignore(),
        Err(MapToError::FrameAllocationFailed) => return Err(LoadError::OutOfFrames),
        Err(_) => return Err(LoadError::Overlap),
    }
    Ok(bytes)
}

/// Loads `file` into `table` with its stack; returns the entry point.
pub fn load(
    file: &[u8],
    table: &mut OffsetPageTable<'static>,
    frames: &mut Frames,
) -> Result<u64, LoadError> {
    let elf = ElfFile::new(file).map_err(LoadError::Elf)?;
    for header in elf.program_iter() {
        if header.get_type() != Ok(Type::Load) {
            continue;
        }
        let (start, memory) = (header.virtual_addr(), header.mem_size());
        let (offset, size) = (header.offset() as usize, header.file_size() as usize);
        let end = start.checked_add(memory).ok_or(LoadError::BadSegment)?;
        let writable = header.flags().is_write();
        if end > STACK_TOP - STACK_PAGES * 4096
            || size as u64 > memory
            || (writable && header.flags().is_execute())
        {
            return Err(LoadError::BadSegment);
        }
        let data = file
            .get(offset..offset + size)
            .ok_or(LoadError::BadSegment)?;
        let mut flags = PageTableFlags::PRESENT | PageTableFlags::USER_ACCESSIBLE;
        if writable {
            flags |= PageTableFlags::WRITABLE;
        }
        if !header.flags().is_execute() {
            flags |= PageTableFlags::NO_EXECUTE;
        }
        let mut page = start & !4095;
        while page < end {
            let bytes = map_fresh(table, frames, page, flags)?;
            for (index, byte) in bytes.iter_mut().enumerate() {
                let address = page + index as u64;
                if address >= start && address < start + size as u64 {
                    *byte = data[(address - start) as usize];
                }
            }
            page += 4096;
        }
    }
    let stack = PageTableFlags::PRESENT
        | PageTableFlags::USER_ACCESSIBLE
        | PageTableFlags::WRITABLE
        | PageTableFlags::NO_EXECUTE;
    for page in 1..=STACK_PAGES {
        map_fresh(table, frames, STACK_TOP - page * 4096, stack)?;
    }
    Ok(elf.header.pt2.entry_point())
}
