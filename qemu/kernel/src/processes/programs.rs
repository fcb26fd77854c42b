//! The user programs the kernel can start: files of the boot archive, and
//! loading one into an address space.

use spin::Once;

use super::{elf, initrd};
use crate::memory::address_space::{AddressSpace, MapError, UserAccess};
use crate::memory::{self, FRAME_SIZE, phys_to_virt};

static ARCHIVE: Once<&'static [u8]> = Once::new();

/// Records the boot archive (the first boot module).
pub fn init(archive: &'static [u8]) {
    ARCHIVE.call_once(|| archive);
}

/// The ELF file of program `name`.
pub fn find(name: &str) -> Option<&'static [u8]> {
    let archive = *ARCHIVE.get()?;
    initrd::files(archive)
        .find(|file| file.name == name)
        .map(|file| file.data)
}

/// Loads `program` into `space`: every segment on its own fresh, owned pages,
/// with exactly its permissions (W^X, NX on data).
pub fn load(space: &mut AddressSpace, program: &elf::Program) -> Result<(), MapError> {
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
