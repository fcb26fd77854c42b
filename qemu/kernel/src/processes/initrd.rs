//! The boot archive: user programs packed by the runner as a ustar file and
//! handed to the kernel as a PVH boot module (`-initrd`).
//!
//! QEMU's PVH loader passes one module, so several programs travel in one
//! archive. The format is POSIX ustar: 512-byte headers, sizes in octal, data
//! padded to 512 bytes, two zero blocks at the end.

use kipc_arch::pvh::Module;

use crate::memory::phys_to_virt;

const BLOCK: usize = 512;

/// One file of the archive.
#[derive(Clone, Copy)]
pub struct File<'a> {
    /// Path inside the archive.
    pub name: &'a str,
    /// Contents.
    pub data: &'a [u8],
}

/// The bytes of a boot module.
pub fn module_bytes(module: &Module) -> &'static [u8] {
    // SAFETY: QEMU loaded the module into RAM below 4 GiB (inside the direct
    // map) before boot; the frame allocator keeps those frames out of use, so
    // the bytes stay unchanged for the kernel's lifetime and are only read.
    unsafe {
        core::slice::from_raw_parts(
            phys_to_virt(module.start) as *const u8,
            module.size as usize,
        )
    }
}

fn octal(field: &[u8]) -> Option<usize> {
    let mut value: usize = 0;
    for &byte in field {
        match byte {
            b'0'..=b'7' => {
                value = value
                    .checked_mul(8)?
                    .checked_add(usize::from(byte - b'0'))?
            }
            b' ' | 0 => {}
            _ => return None,
        }
    }
    Some(value)
}

/// Iterates over the regular files of a ustar archive. Stops at the end
/// marker or at the first malformed header.
pub fn files(archive: &[u8]) -> impl Iterator<Item = File<'_>> {
    let mut offset = 0usize;
    core::iter::from_fn(move || {
        loop {
            let header = archive.get(offset..offset + BLOCK)?;
            if header.iter().all(|&byte| byte == 0) || &header[257..262] != b"ustar" {
                return None;
            }
            let size = octal(&header[124..136])?;
            let name_length = header[..100]
                .iter()
                .position(|&byte| byte == 0)
                .unwrap_or(100);
            let name = core::str::from_utf8(&header[..name_length]).ok()?;
            let data_start = offset + BLOCK;
            let data = archive.get(data_start..data_start.checked_add(size)?)?;
            offset = data_start + size.next_multiple_of(BLOCK);
            if header[156] == b'0' || header[156] == 0 {
                return Some(File { name, data });
            }
        }
    })
}
