//! The user programs the kernel can start: files of the boot archive.

use spin::Once;

use crate::initrd;

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
