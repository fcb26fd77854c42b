//! User memory: validated allegations about user buffers.
//!
//! A pointer and a length received from user space are an *allegation*: the process claims
//! that memory exists there and belongs to it. The core never dereferences such a claim. It
//! wraps it in a [`UserSlice`], which can only be built through [`UserSlice::new`]: the range
//! must not wrap around the address space and must lie entirely below the host's
//! [`UserLimit`] (on x86_64, the end of the canonical lower half). Whether the pages are
//! actually mapped is the host's business: its [`crate::UserMemory`] implementation copies
//! through the allegation and reports a fault instead of touching bad memory.

use crate::error::Error;

/// The first address that is *not* user memory; every user buffer must end at or below it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UserLimit(u64);

impl UserLimit {
    /// The x86_64 canonical lower half with 4-level paging: user addresses are below
    /// `0x0000_8000_0000_0000`.
    pub const X86_64_LOWER_HALF: UserLimit = UserLimit(0x0000_8000_0000_0000);

    /// A custom limit (for example a smaller user window).
    pub const fn new(end: u64) -> UserLimit {
        UserLimit(end)
    }

    /// The limit address.
    pub const fn end(self) -> u64 {
        self.0
    }
}

/// A validated user buffer: `length` bytes starting at `address` in some process.
///
/// Validated means: it does not wrap and it lies below the [`UserLimit`] it was checked
/// against. It says nothing about which process it belongs to; the process is always named
/// next to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UserSlice {
    address: u64,
    length: usize,
}

impl UserSlice {
    /// Checks the allegation "`length` bytes at `address`" against `limit`.
    ///
    /// Fails with [`Error::BadAddress`] if the range wraps or reaches beyond the limit.
    /// An empty slice is valid anywhere below the limit.
    pub const fn new(address: u64, length: usize, limit: UserLimit) -> Result<UserSlice, Error> {
        let end = match address.checked_add(length as u64) {
            Some(end) => end,
            None => return Err(Error::BadAddress),
        };
        if end > limit.0 || (length as u64) as usize != length {
            return Err(Error::BadAddress);
        }
        Ok(UserSlice { address, length })
    }

    /// An empty slice (valid under every limit).
    pub const EMPTY: UserSlice = UserSlice {
        address: 0,
        length: 0,
    };

    /// The start address.
    pub const fn address(self) -> u64 {
        self.address
    }

    /// The length in bytes.
    pub const fn len(self) -> usize {
        self.length
    }

    /// Whether the slice is empty.
    pub const fn is_empty(self) -> bool {
        self.length == 0
    }

    /// The sub-range `[offset, offset + length)` of this slice, if it fits.
    ///
    /// A sub-range of a validated slice is itself valid, so no limit is needed.
    pub const fn subslice(self, offset: usize, length: usize) -> Option<UserSlice> {
        match offset.checked_add(length) {
            Some(end) if end <= self.length => Some(UserSlice {
                address: self.address + offset as u64,
                length,
            }),
            _ => None,
        }
    }

    /// The first `length` bytes (or the whole slice if it is shorter).
    pub const fn prefix(self, length: usize) -> UserSlice {
        let length = if length < self.length {
            length
        } else {
            self.length
        };
        UserSlice {
            address: self.address,
            length,
        }
    }
}

/// Whether all of `slice` can be read in `process`, probed through `memory` one byte
/// per page (a readable byte means a present user page, and every page of the range is
/// probed), counted nowhere. Used after a two-party copy failed, to tell whose buffer
/// faulted, and before parking a sender on a full object, so a buffer that could never
/// be sent fails at once.
#[cold]
#[inline(never)]
pub(crate) fn readable<M: crate::host::UserMemory + ?Sized>(
    memory: &mut M,
    process: crate::host::ProcessId,
    slice: UserSlice,
) -> bool {
    const PAGE: u64 = crate::host::PAGE_SIZE as u64;
    let mut byte = [0u8; 1];
    let mut offset = 0u64;
    while offset < slice.len() as u64 {
        let Some(probe) = slice.subslice(offset as usize, 1) else {
            return false;
        };
        if memory.copy_from_user(process, probe, &mut byte).is_err() {
            return false;
        }
        // On to the first byte of the next page.
        let address = slice.address() + offset;
        offset += PAGE - address % PAGE;
    }
    true
}

/// A sender about to park on a full object (mailbox, queue, pipe) with a buffer it
/// cannot read could never be served: it fails with [`Error::BadAddress`] now instead of
/// waiting, perhaps for ever. A call that would not wait is not probed.
pub(crate) fn refuse_doomed_wait<H: crate::host::Host>(
    host: &mut H,
    sender: crate::host::ProcessId,
    data: UserSlice,
    blocking: crate::wait::Blocking,
) -> Result<(), Error> {
    if blocking.would_wait(host.now()) && !readable(host, sender, data) {
        return Err(Error::BadAddress);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: UserLimit = UserLimit::X86_64_LOWER_HALF;

    #[test]
    fn checked_constructor() {
        assert!(UserSlice::new(0x1000, 0x1000, LIMIT).is_ok());
        assert_eq!(UserSlice::new(u64::MAX, 2, LIMIT), Err(Error::BadAddress));
        assert_eq!(
            UserSlice::new(0x7fff_ffff_f000, 0x1001, LIMIT),
            Err(Error::BadAddress)
        );
        assert!(UserSlice::new(0x7fff_ffff_f000, 0x1000, LIMIT).is_ok());
        assert_eq!(
            UserSlice::new(0xffff_8000_0000_0000, 1, LIMIT),
            Err(Error::BadAddress)
        );
    }

    #[test]
    fn sub_ranges_stay_inside() {
        let s = UserSlice::new(0x1000, 100, LIMIT).unwrap();
        assert_eq!(s.subslice(10, 90).unwrap().address(), 0x100a);
        assert!(s.subslice(10, 91).is_none());
        assert!(s.subslice(usize::MAX, 2).is_none());
        assert_eq!(s.prefix(500).len(), 100);
        assert_eq!(s.prefix(5).len(), 5);
    }
}
