//! Wrappers for the RAM file system calls.

use kipc_abi::{file_flags, number};

use crate::{SysResult, call};

/// An open file descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct File(pub u64);

/// Opens `name` with `kipc_abi::file_flags`.
pub fn open(name: &str, flags: u64) -> SysResult<File> {
    call(
        number::FILE_OPEN,
        [name.as_ptr() as u64, name.len() as u64, flags, 0, 0, 0],
    )
    .map(File)
}

/// Creates (or empties) `name` and opens it.
pub fn create(name: &str) -> SysResult<File> {
    open(name, file_flags::CREATE | file_flags::TRUNCATE)
}

impl File {
    /// Reads at the current offset; 0 at end of file.
    pub fn read(self, buffer: &mut [u8]) -> SysResult<usize> {
        call(
            number::FILE_READ,
            [
                self.0,
                buffer.as_mut_ptr() as u64,
                buffer.len() as u64,
                0,
                0,
                0,
            ],
        )
        .map(|length| length as usize)
    }

    /// Writes at the current offset.
    pub fn write(self, data: &[u8]) -> SysResult<usize> {
        call(
            number::FILE_WRITE,
            [self.0, data.as_ptr() as u64, data.len() as u64, 0, 0, 0],
        )
        .map(|length| length as usize)
    }

    /// Moves the offset.
    pub fn seek(self, offset: u64) -> SysResult<()> {
        call(number::FILE_SEEK, [self.0, offset, 0, 0, 0, 0]).map(|_| ())
    }

    /// Size in bytes.
    pub fn size(self) -> SysResult<u64> {
        call(number::FILE_SIZE, [self.0, 0, 0, 0, 0, 0])
    }

    /// The kernel's checksum (FNV-1a 64) of the contents.
    pub fn checksum(self) -> SysResult<u64> {
        call(number::FILE_CHECKSUM, [self.0, 0, 0, 0, 0, 0])
    }

    /// Maps `pages` pages from page-aligned `offset` read-only into this
    /// process; returns the address. No byte is copied.
    pub fn lend(self, offset: u64, pages: usize) -> SysResult<u64> {
        call(number::FILE_LEND, [self.0, offset, pages as u64, 0, 0, 0])
    }

    /// Appends this process's `pages` pages at `address` to the file,
    /// growing it by `length` bytes. No byte is copied.
    pub fn append_pages(self, address: u64, pages: usize, length: u64) -> SysResult<()> {
        call(
            number::FILE_APPEND_PAGES,
            [self.0, address, pages as u64, length, 0, 0],
        )
        .map(|_| ())
    }

    /// Closes the descriptor.
    pub fn close(self) -> SysResult<()> {
        call(number::FILE_CLOSE, [self.0, 0, 0, 0, 0, 0]).map(|_| ())
    }
}

/// Removes a file name.
pub fn unlink(name: &str) -> SysResult<()> {
    call(
        number::FILE_UNLINK,
        [name.as_ptr() as u64, name.len() as u64, 0, 0, 0, 0],
    )
    .map(|_| ())
}

/// Creates `name` with `size` deterministic bytes from `seed`; returns the checksum.
pub fn generate(name: &str, size: u64, seed: u64) -> SysResult<u64> {
    call(
        number::FILE_GENERATE,
        [name.as_ptr() as u64, name.len() as u64, size, seed, 0, 0],
    )
}
