//! A minimal host for the unit tests: flat per-process memory, a toy page table, a
//! counting frame allocator, a settable clock and a wake log.

use std::collections::BTreeMap;
use std::vec::Vec;

use crate::*;

/// Small capacities so the unit tests reach every limit quickly.
/// Table semantics are tested without quotas (see `tests/core_quotas.rs` for them).
pub type TestIpc = Ipc<4, 8, 4, 64, 64, 8, 16, 64, 64, crate::Unlimited>;

pub const MEMORY: usize = 0x4000;

pub struct TestHost {
    pub memory: BTreeMap<usize, Vec<u8>>,
    pub pages: BTreeMap<(usize, u64), (Frame, Access)>,
    pub frames_free: usize,
    pub next_frame: u64,
    pub freed: Vec<Frame>,
    pub now: u64,
    pub wakes: Vec<(ProcessId, Wakeup)>,
}

impl TestHost {
    pub fn new() -> Self {
        TestHost {
            memory: BTreeMap::new(),
            pages: BTreeMap::new(),
            frames_free: 16,
            next_frame: 0x10_0000,
            freed: Vec::new(),
            now: 0,
            wakes: Vec::new(),
        }
    }

    fn space(&mut self, process: ProcessId) -> &mut Vec<u8> {
        self.memory
            .entry(process.slot())
            .or_insert_with(|| vec![0; MEMORY])
    }

    /// Writes bytes into a process's memory (test set-up, not accounted).
    pub fn poke(&mut self, process: ProcessId, address: u64, bytes: &[u8]) {
        let a = address as usize;
        self.space(process)[a..a + bytes.len()].copy_from_slice(bytes);
    }

    /// Reads bytes from a process's memory.
    pub fn peek(&mut self, process: ProcessId, address: u64, length: usize) -> Vec<u8> {
        let a = address as usize;
        self.space(process)[a..a + length].to_vec()
    }

    pub fn slice(&self, address: u64, length: usize) -> UserSlice {
        UserSlice::new(address, length, self.user_limit()).unwrap()
    }

    pub fn take_wakes(&mut self) -> Vec<(ProcessId, Wakeup)> {
        core::mem::take(&mut self.wakes)
    }
}

impl UserMemory for TestHost {
    fn user_limit(&self) -> UserLimit {
        UserLimit::new(0x10_0000)
    }

    fn copy_from_user(
        &mut self,
        process: ProcessId,
        source: UserSlice,
        destination: &mut [u8],
    ) -> Result<(), Fault> {
        let a = source.address() as usize;
        let space = self.space(process);
        let bytes = space.get(a..a + source.len()).ok_or(Fault)?;
        destination.copy_from_slice(bytes);
        Ok(())
    }

    fn copy_to_user(
        &mut self,
        process: ProcessId,
        destination: UserSlice,
        source: &[u8],
    ) -> Result<(), Fault> {
        let a = destination.address() as usize;
        let space = self.space(process);
        space
            .get_mut(a..a + destination.len())
            .ok_or(Fault)?
            .copy_from_slice(source);
        Ok(())
    }

    fn copy_user_to_user(
        &mut self,
        from: ProcessId,
        source: UserSlice,
        to: ProcessId,
        destination: UserSlice,
    ) -> Result<(), Fault> {
        let mut bounce = vec![0; source.len()];
        self.copy_from_user(from, source, &mut bounce)?;
        self.copy_to_user(to, destination, &bounce)
    }
}

impl AddressSpace for TestHost {
    fn map_page(
        &mut self,
        process: ProcessId,
        address: u64,
        frame: Frame,
        access: Access,
    ) -> Result<(), Error> {
        let key = (process.slot(), address);
        if self.pages.contains_key(&key) {
            return Err(Error::AddressInUse);
        }
        self.pages.insert(key, (frame, access));
        Ok(())
    }

    fn unmap_page(&mut self, process: ProcessId, address: u64) -> Result<Frame, Error> {
        self.pages
            .remove(&(process.slot(), address))
            .map(|(f, _)| f)
            .ok_or(Error::NotMapped)
    }

    fn translate(&self, process: ProcessId, address: u64) -> Option<(Frame, Access)> {
        self.pages.get(&(process.slot(), address)).copied()
    }

    fn find_free_range(&mut self, process: ProcessId, pages: usize) -> Option<u64> {
        let mut address = 0x8_0000;
        loop {
            let free = (0..pages).all(|i| {
                !self
                    .pages
                    .contains_key(&(process.slot(), address + (i * PAGE_SIZE) as u64))
            });
            if free {
                return Some(address);
            }
            address += PAGE_SIZE as u64;
        }
    }

    fn flush(&mut self, _process: ProcessId, _address: u64, _pages: usize) {}
}

impl FrameAllocator for TestHost {
    fn allocate_frame(&mut self) -> Option<Frame> {
        if self.frames_free == 0 {
            return None;
        }
        self.frames_free -= 1;
        self.next_frame += PAGE_SIZE as u64;
        Frame::new(self.next_frame)
    }

    fn free_frame(&mut self, frame: Frame) {
        self.frames_free += 1;
        self.freed.push(frame);
    }
}

impl Clock for TestHost {
    fn now(&self) -> u64 {
        self.now
    }
}

impl Wake for TestHost {
    fn wake(&mut self, process: ProcessId, wakeup: Wakeup) {
        self.wakes.push((process, wakeup));
    }
}
