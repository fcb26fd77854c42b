//! Object storage: fixed-capacity, generation-tagged tables with reference counts.
//!
//! Every kind of kernel object lives in its own `Table` of `N` slots. A slot holds the
//! object, a liveness flag, the slot's generation and a reference count. Objects are named
//! inside the kernel by a `Key` (slot index + generation): once an object is destroyed
//! its slot's generation moves on and every old key stops matching, exactly like handles.
//!
//! References are counted by the kernel façade: each capability (in a handle table or in
//! an undelivered message) and each mapping holds one. When the last reference goes, the
//! object is destroyed and its resources (frames, queued handles) are released.
//!
//! Large objects (pipe rings, message buffers) are reset in place rather than rebuilt, so
//! creating an object never moves kilobytes through the stack.

use crate::error::Error;
use crate::host::ProcessId;
use crate::rights::Rights;

/// The kind of object a handle refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ObjectKind {
    /// A mailbox (endpoint).
    Mailbox,
    /// A pipe or an opened FIFO.
    Pipe,
    /// A priority message queue.
    MessageQueue,
    /// A shared memory region (also the result of a page loan).
    Region,
    /// A counting semaphore.
    Semaphore,
    /// A notification word.
    Notification,
    /// A one-shot reply capability created by a mailbox call.
    Reply,
    /// A process, to send it signals (see [`crate::Ipc::process_handle`]).
    Process,
}

/// Internal name of an object: slot index and the slot's generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    pub(crate) index: u16,
    pub(crate) generation: u32,
}

/// What a capability points at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ObjectRef {
    Mailbox(Key),
    Pipe(Key),
    MessageQueue(Key),
    Region(Key),
    Semaphore(Key),
    Notification(Key),
    /// The right to answer one call: the caller and the token of its call.
    Reply {
        caller: ProcessId,
        token: u64,
    },
    /// A process (for signals); keeps nothing alive.
    Process(ProcessId),
}

impl ObjectRef {
    pub(crate) const fn kind(self) -> ObjectKind {
        match self {
            ObjectRef::Mailbox(_) => ObjectKind::Mailbox,
            ObjectRef::Pipe(_) => ObjectKind::Pipe,
            ObjectRef::MessageQueue(_) => ObjectKind::MessageQueue,
            ObjectRef::Region(_) => ObjectKind::Region,
            ObjectRef::Semaphore(_) => ObjectKind::Semaphore,
            ObjectRef::Notification(_) => ObjectKind::Notification,
            ObjectRef::Reply { .. } => ObjectKind::Reply,
            ObjectRef::Process(_) => ObjectKind::Process,
        }
    }
}

/// A capability: what a handle slot (or an in-flight message) holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Capability {
    pub(crate) object: ObjectRef,
    pub(crate) rights: Rights,
    pub(crate) badge: u64,
}

/// An object type that can live in a [`Table`]: it has an inert empty value.
pub(crate) trait Object {
    /// The value of a free slot.
    const EMPTY: Self;
}

pub(crate) struct Slot<T> {
    generation: u32,
    live: bool,
    pub(crate) references: u32,
    pub(crate) value: T,
}

/// A fixed table of `N` objects.
pub(crate) struct Table<T, const N: usize> {
    slots: [Slot<T>; N],
    /// The process that created each live object, charged against its quota while the
    /// object lives. (Apart from the slots, which the hot paths walk.)
    owners: [Option<ProcessId>; N],
}

impl<T: Object, const N: usize> Table<T, N> {
    pub(crate) const fn new() -> Self {
        const {
            assert!(
                N <= u16::MAX as usize,
                "object tables have at most 65535 slots"
            )
        };
        Table {
            slots: [const {
                Slot {
                    generation: 0,
                    live: false,
                    references: 0,
                    value: T::EMPTY,
                }
            }; N],
            owners: [None; N],
        }
    }

    /// Initialises an empty table at `table` one slot at a time, so no temporary larger
    /// than one object passes through the stack.
    ///
    /// # Safety
    /// `table` must be valid for writes of a `Self` and properly aligned; whatever it
    /// held is overwritten without being dropped.
    pub(crate) unsafe fn init_in_place(table: *mut Self) {
        // SAFETY: the caller guarantees `table` is writable and aligned; every slot and
        // owner entry lies inside it, and each is written exactly once, whole.
        unsafe {
            let slots = core::ptr::addr_of_mut!((*table).slots).cast::<Slot<T>>();
            for index in 0..N {
                slots.add(index).write(Slot {
                    generation: 0,
                    live: false,
                    references: 0,
                    value: T::EMPTY,
                });
            }
            core::ptr::addr_of_mut!((*table).owners).write([None; N]);
        }
    }

    /// Claims a free slot for an object `owner` creates, if `owner` has fewer than
    /// `quota` live objects in this table; the caller must initialise the value in place.
    /// Fails with [`Error::QuotaExceeded`] (quota `Objects`) or [`Error::OutOfObjects`].
    pub(crate) fn allocate(
        &mut self,
        owner: ProcessId,
        quota: usize,
    ) -> Result<(Key, &mut T), Error> {
        let owned = self.owned_by(owner);
        crate::config::charge(quota, crate::Quota::Objects, owned, 1)?;
        let index = self
            .slots
            .iter()
            .position(|s| !s.live)
            .ok_or(Error::OutOfObjects)?;
        self.owners[index] = Some(owner);
        let slot = &mut self.slots[index];
        slot.generation = slot.generation.wrapping_add(1);
        slot.live = true;
        slot.references = 0;
        Ok((
            Key {
                index: index as u16,
                generation: slot.generation,
            },
            &mut slot.value,
        ))
    }

    /// The live objects `owner` created.
    pub(crate) fn iter_owned(&self, owner: ProcessId) -> impl Iterator<Item = &T> {
        self.slots
            .iter()
            .zip(&self.owners)
            .filter(move |(s, o)| s.live && **o == Some(owner))
            .map(|(s, _)| &s.value)
    }

    /// Live objects `owner` created.
    pub(crate) fn owned_by(&self, owner: ProcessId) -> usize {
        self.iter_owned(owner).count()
    }

    /// Whether every slot is live (so [`Table::allocate`] would fail).
    pub(crate) fn is_full(&self) -> bool {
        self.slots.iter().all(|s| s.live)
    }

    pub(crate) fn slot(&self, key: Key) -> Option<&Slot<T>> {
        self.slots
            .get(key.index as usize)
            .filter(|s| s.live && s.generation == key.generation)
    }

    pub(crate) fn slot_mut(&mut self, key: Key) -> Option<&mut Slot<T>> {
        self.slots
            .get_mut(key.index as usize)
            .filter(|s| s.live && s.generation == key.generation)
    }

    pub(crate) fn get(&self, key: Key) -> Option<&T> {
        self.slot(key).map(|s| &s.value)
    }

    pub(crate) fn get_mut(&mut self, key: Key) -> Option<&mut T> {
        self.slot_mut(key).map(|s| &mut s.value)
    }

    /// Marks the slot free. The value stays in place (inert) until reused.
    pub(crate) fn free(&mut self, key: Key) {
        if let Some(slot) = self.slot_mut(key) {
            slot.live = false;
            slot.references = 0;
            self.owners[key.index as usize] = None;
        }
    }

    pub(crate) fn live_count(&self) -> usize {
        self.slots.iter().filter(|s| s.live).count()
    }

    pub(crate) fn iter_live(&self) -> impl Iterator<Item = (Key, &T)> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.live)
            .map(|(i, s)| {
                (
                    Key {
                        index: i as u16,
                        generation: s.generation,
                    },
                    &s.value,
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Thing(u8);
    impl Object for Thing {
        const EMPTY: Self = Thing(0);
    }

    #[test]
    fn keys_go_stale_when_freed() {
        let mut table: Table<Thing, 2> = Table::new();
        let owner = ProcessId::new(0, 1);
        let (a, value) = table.allocate(owner, 2).unwrap();
        value.0 = 7;
        let (_b, _) = table.allocate(ProcessId::new(1, 1), 2).unwrap();
        assert!(matches!(table.allocate(owner, 2), Err(Error::OutOfObjects)));
        assert_eq!(table.get(a).unwrap().0, 7);
        table.free(a);
        assert!(table.get(a).is_none());
        let (c, _) = table.allocate(owner, 2).unwrap();
        assert_eq!(c.index, a.index);
        assert!(table.get(a).is_none());
        assert!(table.get(c).is_some());
        assert_eq!(table.live_count(), 2);
    }

    #[test]
    fn an_owner_at_its_quota_is_refused_while_others_still_get_slots() {
        let mut table: Table<Thing, 4> = Table::new();
        let (hog, other) = (ProcessId::new(0, 1), ProcessId::new(1, 1));
        let (first, _) = table.allocate(hog, 2).unwrap();
        table.allocate(hog, 2).unwrap();
        assert_eq!(
            table.allocate(hog, 2).err(),
            Some(Error::QuotaExceeded {
                quota: crate::Quota::Objects
            })
        );
        assert_eq!(table.owned_by(hog), 2);
        table.allocate(other, 2).unwrap();
        table.free(first);
        table.allocate(hog, 2).unwrap();
        // A later process in the same slot (new generation) owns nothing.
        assert_eq!(table.owned_by(ProcessId::new(0, 2)), 0);
    }
}
