//! Handles: per-process, generation-tagged references to kernel objects.
//!
//! A process never sees kernel pointers. It sees a [`Handle`], a 32-bit number that packs
//! the index of a slot in the process's [`HandleTable`] (low 16 bits) and the generation of
//! that slot (high 16 bits). Closing a handle bumps the slot's generation, so the old number
//! no longer matches: a stale handle is *detected* ([`Error::StaleHandle`]) instead of
//! silently naming whatever object later reuses the slot. A number that was never issued is
//! [`Error::BadHandle`]. The value `0` is never a valid handle (generation 0 is never used),
//! so user space can use it as "no handle".
//!
//! The table is generic over what it stores; the kernel stores a capability (object
//! reference, rights, badge) in each slot.

use crate::error::Error;

/// A process-local handle value: slot index and slot generation packed into 32 bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Handle(u32);

impl Handle {
    /// The value user space uses for "no handle"; never issued.
    pub const NONE: Handle = Handle(0);

    /// Rebuilds a handle from the raw number user space passed in a register.
    ///
    /// Any number is accepted here; validity is checked when the handle is used.
    pub const fn from_raw(raw: u32) -> Handle {
        Handle(raw)
    }

    /// The raw number to hand to user space.
    pub const fn into_raw(self) -> u32 {
        self.0
    }

    const fn new(index: usize, generation: u16) -> Handle {
        Handle(((generation as u32) << 16) | index as u32)
    }

    /// The slot index part.
    pub const fn index(self) -> usize {
        (self.0 & 0xffff) as usize
    }

    /// The generation part.
    pub const fn generation(self) -> u16 {
        (self.0 >> 16) as u16
    }
}

#[derive(Clone, Copy, Debug)]
struct Slot<T> {
    generation: u16,
    entry: Option<T>,
}

/// A fixed-capacity table of `N` handle slots holding values of type `T`.
///
/// `N` may be at most 65 536 (16 index bits).
#[derive(Debug)]
pub struct HandleTable<T, const N: usize> {
    slots: [Slot<T>; N],
    used: usize,
}

impl<T: Copy, const N: usize> Default for HandleTable<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Copy, const N: usize> HandleTable<T, N> {
    /// An empty table.
    pub const fn new() -> Self {
        const { assert!(N <= 1 << 16, "a handle table has at most 65536 slots") };
        HandleTable {
            slots: [Slot {
                generation: 1,
                entry: None,
            }; N],
            used: 0,
        }
    }

    /// Number of occupied slots.
    pub const fn len(&self) -> usize {
        self.used
    }

    /// Whether no slot is occupied.
    pub const fn is_empty(&self) -> bool {
        self.used == 0
    }

    /// Number of free slots.
    pub const fn free(&self) -> usize {
        N - self.used
    }

    /// Stores `value` in a free slot and returns its handle, or fails with
    /// [`Error::OutOfHandles`] when the table is full.
    pub fn insert(&mut self, value: T) -> Result<Handle, Error> {
        let index = self
            .slots
            .iter()
            .position(|slot| slot.entry.is_none())
            .ok_or(Error::OutOfHandles)?;
        let slot = &mut self.slots[index];
        slot.entry = Some(value);
        self.used += 1;
        Ok(Handle::new(index, slot.generation))
    }

    fn slot_index(&self, handle: Handle) -> Result<usize, Error> {
        let index = handle.index();
        let slot = self.slots.get(index).ok_or(Error::BadHandle)?;
        if handle.generation() == 0 {
            return Err(Error::BadHandle);
        }
        if slot.generation == handle.generation() {
            return if slot.entry.is_some() {
                Ok(index)
            } else {
                Err(Error::BadHandle)
            };
        }
        // A generation older than the slot's was issued once and has since been closed.
        // Generations wrap, so "older" is judged modulo 2^16 within half the range.
        let age = slot.generation.wrapping_sub(handle.generation());
        if age != 0 && age < 0x8000 {
            Err(Error::StaleHandle)
        } else {
            Err(Error::BadHandle)
        }
    }

    /// The value behind `handle`.
    pub fn get(&self, handle: Handle) -> Result<&T, Error> {
        let index = self.slot_index(handle)?;
        self.slots[index].entry.as_ref().ok_or(Error::BadHandle)
    }

    /// Mutable access to the value behind `handle`.
    pub fn get_mut(&mut self, handle: Handle) -> Result<&mut T, Error> {
        let index = self.slot_index(handle)?;
        self.slots[index].entry.as_mut().ok_or(Error::BadHandle)
    }

    /// Removes the value behind `handle` and retires the handle number.
    #[inline(always)]
    pub fn remove(&mut self, handle: Handle) -> Result<T, Error> {
        let index = self.slot_index(handle)?;
        let slot = &mut self.slots[index];
        let value = slot.entry.take().ok_or(Error::BadHandle)?;
        slot.generation = match slot.generation.wrapping_add(1) {
            0 => 1,
            g => g,
        };
        self.used -= 1;
        Ok(value)
    }

    /// Removes every value, calling `f` on each (used when a process exits).
    pub fn drain(&mut self, mut f: impl FnMut(T)) {
        for index in 0..N {
            if self.slots[index].entry.is_some() {
                let handle = Handle::new(index, self.slots[index].generation);
                if let Ok(value) = self.remove(handle) {
                    f(value);
                }
            }
        }
    }

    /// Removes and returns the value of some occupied slot, if any.
    pub fn take_any(&mut self) -> Option<T> {
        let index = self.slots.iter().position(|slot| slot.entry.is_some())?;
        let handle = Handle::new(index, self.slots[index].generation);
        self.remove(handle).ok()
    }

    /// Iterates over the live handles and their values.
    pub fn iter(&self) -> impl Iterator<Item = (Handle, &T)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.entry.as_ref().map(|v| (Handle::new(i, s.generation), v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_get_remove_and_staleness() {
        let mut t: HandleTable<u32, 4> = HandleTable::new();
        let a = t.insert(10).unwrap();
        let b = t.insert(20).unwrap();
        assert_ne!(a, Handle::NONE);
        assert_eq!(*t.get(a).unwrap(), 10);
        assert_eq!(t.remove(a).unwrap(), 10);
        assert_eq!(t.get(a), Err(Error::StaleHandle));
        let c = t.insert(30).unwrap();
        assert_eq!(c.index(), a.index(), "slot reused");
        assert_ne!(c, a, "but with a new generation");
        assert_eq!(t.get(a), Err(Error::StaleHandle));
        assert_eq!(*t.get(b).unwrap(), 20);
        assert_eq!(t.get(Handle::NONE), Err(Error::BadHandle));
        assert_eq!(t.get(Handle::from_raw(0x0001_0009)), Err(Error::BadHandle));
        assert_eq!(t.get(Handle::from_raw(0x0005_0003)), Err(Error::BadHandle));
    }

    #[test]
    fn capacity_is_an_error() {
        let mut t: HandleTable<u8, 2> = HandleTable::new();
        t.insert(1).unwrap();
        t.insert(2).unwrap();
        assert_eq!(t.insert(3), Err(Error::OutOfHandles));
        assert_eq!(t.len(), 2);
        assert_eq!(t.free(), 0);
    }
}
