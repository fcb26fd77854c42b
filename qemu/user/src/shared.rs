//! A typed view of a mapped shared region: memory another process may write
//! at any moment.
//!
//! The compiler may not cache, merge or drop an access to such memory, so
//! every access must be volatile. Instead of scattering raw
//! `read_volatile` / `write_volatile` calls (each an `unsafe` block with its
//! own bounds reasoning), a program maps a region once as a [`Shared`] and
//! then reads and writes words by offset: bounds-checked, volatile (through
//! the `volatile` crate's `VolatilePtr`), and only writable when the mapping
//! is.
//!
//! ```ignore
//! let shared = Shared::map(region, Access::ReadWrite)?;
//! shared.write::<u64>(0, 1);
//! let value: u64 = shared.read(0);
//! shared.unmap()?;
//! ```

use core::ptr::NonNull;

use volatile::VolatilePtr;
use volatile::access::{ReadOnly, ReadWrite};

use crate::SysResult;
use crate::ipc::{self, Handle};

/// How a region is mapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Reads only; a write through the mapping would fault.
    ReadOnly,
    /// Reads and writes.
    ReadWrite,
}

/// Plain integer types that any bit pattern makes valid, so reading memory
/// another process wrote is always sound.
pub trait Word: Copy + sealed::Sealed {}
impl Word for u8 {}
impl Word for u16 {}
impl Word for u32 {}
impl Word for u64 {}

mod sealed {
    pub trait Sealed {}
    impl Sealed for u8 {}
    impl Sealed for u16 {}
    impl Sealed for u32 {}
    impl Sealed for u64 {}
}

/// A region mapped into this process, accessed only through volatile,
/// bounds-checked reads and writes. The mapping lasts until [`Shared::unmap`]
/// or the process exits (dropping a `Shared` leaves it mapped, as the kernel
/// would at exit anyway). Unmapping its address behind its back with
/// `ipc::region_unmap` turns its next access into a page fault that kills
/// this process, never into a kernel fault.
pub struct Shared {
    base: NonNull<u8>,
    bytes: usize,
    access: Access,
}

impl Shared {
    /// Maps all of `region` where the kernel picks.
    pub fn map(region: Handle, access: Access) -> SysResult<Shared> {
        let pages = ipc::region_pages(region)?;
        let address = ipc::region_map(region, None, access == Access::ReadWrite)?;
        let base = NonNull::new(address as *mut u8).ok_or(crate::SysError(0))?;
        Ok(Shared {
            base,
            bytes: pages * 4096,
            access,
        })
    }

    /// The address the region is mapped at.
    pub fn address(&self) -> u64 {
        self.base.as_ptr() as u64
    }

    /// Size of the mapping in bytes.
    pub fn len(&self) -> usize {
        self.bytes
    }

    /// Whether the mapping is empty (never: regions have at least one page).
    pub fn is_empty(&self) -> bool {
        self.bytes == 0
    }

    /// How the region is mapped.
    pub fn access(&self) -> Access {
        self.access
    }

    fn pointer<T: Word>(&self, offset: usize) -> NonNull<T> {
        let fits = offset
            .checked_add(size_of::<T>())
            .is_some_and(|end| end <= self.bytes);
        assert!(
            fits && offset.is_multiple_of(align_of::<T>()),
            "shared access of {} bytes at offset {offset} is outside the {}-byte mapping or misaligned",
            size_of::<T>(),
            self.bytes
        );
        // In bounds (checked above) of a mapping that starts at a non-null,
        // page-aligned address, so the result is non-null and aligned.
        self.base
            .cast::<u8>()
            .map_addr(|base| base.saturating_add(offset))
            .cast()
    }

    /// A read-only volatile pointer to the `T` at byte `offset`.
    ///
    /// Panics if the `T` does not fit inside the mapping or is misaligned.
    pub fn at<T: Word>(&self, offset: usize) -> VolatilePtr<'_, T, ReadOnly> {
        // SAFETY: the pointer is in bounds and aligned (checked), the region
        // stays mapped for as long as `self` lives (unmapping consumes it),
        // and `T` is valid for any bit pattern the other process leaves.
        unsafe { VolatilePtr::new_read_only(self.pointer(offset)) }
    }

    /// A writable volatile pointer to the `T` at byte `offset`.
    ///
    /// Panics if the mapping is read-only, or as [`Shared::at`].
    pub fn at_mut<T: Word>(&self, offset: usize) -> VolatilePtr<'_, T, ReadWrite> {
        assert!(
            self.access == Access::ReadWrite,
            "write to a read-only shared mapping at offset {offset}"
        );
        // SAFETY: as in `at`; the mapping is writable (checked), and other
        // processes reach these bytes only through their own mappings, so a
        // volatile write never races with a Rust reference.
        unsafe { VolatilePtr::new(self.pointer(offset)) }
    }

    /// Reads the `T` at byte `offset` (volatile).
    pub fn read<T: Word>(&self, offset: usize) -> T {
        self.at(offset).read()
    }

    /// Writes the `T` at byte `offset` (volatile).
    pub fn write<T: Word>(&self, offset: usize, value: T) {
        self.at_mut(offset).write(value)
    }

    /// Reads 64-bit word `index` (at byte offset `8 * index`).
    pub fn word(&self, index: usize) -> u64 {
        self.read(index * 8)
    }

    /// Writes 64-bit word `index` (at byte offset `8 * index`).
    pub fn set_word(&self, index: usize, value: u64) {
        self.write(index * 8, value)
    }

    /// Removes the mapping.
    pub fn unmap(self) -> SysResult<()> {
        ipc::region_unmap(self.address())
    }
}
