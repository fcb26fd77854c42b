//! Shared regions and page loans: moving data by mapping pages instead of copying bytes.
//!
//! # Shared regions
//!
//! A region is a set of physical frames taken from the host's [`FrameAllocator`] when it is
//! created ([`Ipc::region_create`], size in pages). [`Ipc::region_map`] maps *the same
//! frames* into an address space — at an address the caller chooses or one the host picks —
//! read-only or read-write. Every mapping sees every other mapping's writes at once: data
//! written by one process is read by another with no copy through the kernel. Processes
//! synchronise with a [`crate::semaphore`] or a [`crate::notification`].
//!
//! Rights: mapping needs [`Rights::MAP`]; mapping read-write also needs [`Rights::WRITE`],
//! so a region can be shared read-only by handing out a duplicate without WRITE.
//!
//! A region is referenced by its handles *and* by its mappings. Its frames return to the
//! allocator only when the last handle is closed and the last mapping removed (a process
//! may close its handle and keep using its mapping). Exiting processes lose their mappings.
//!
//! # Page loans
//!
//! [`Ipc::pages_loan`] *moves* whole pages out of the caller's address space: the frames
//! behind `pages` pages at an address are unmapped from the caller and become a new region,
//! whose handle the caller can send through a mailbox. The receiver maps it and reads the
//! data in place. No byte is copied; the ledger counts the pages loaned and mapped under
//! [`Mechanism::PageLoan`]. (Loans move; the lender no longer sees the pages, so there
//! is never a question of who owns a frame. Lending with a return path is future work.)
//! Pages that are themselves mappings of a region cannot be loaned. If any loaned page was
//! read-only for the lender, the loan's handle lacks [`Rights::WRITE`], so no borrower can
//! map it writable: a loan never grants more than the lender had.

use crate::accounting::Mechanism;
use crate::error::Error;
use crate::handle::Handle;
use crate::host::{Access, Frame, FrameAllocator, Host, PAGE_SIZE, ProcessId};
use crate::kernel::Ipc;
use crate::object::{Capability, Key, Object, ObjectKind, ObjectRef};
use crate::rights::Rights;
use crate::umem::UserSlice;

/// A region: its frames, how many mappings use it, and how it came to be.
pub(crate) struct Region<const REGION_PAGES: usize> {
    pub(crate) frames: heapless::Vec<Frame, REGION_PAGES>,
    mappings: u32,
    mechanism: Mechanism,
}

impl<const REGION_PAGES: usize> Object for Region<REGION_PAGES> {
    const EMPTY: Self = Region {
        frames: heapless::Vec::new(),
        mappings: 0,
        mechanism: Mechanism::SharedRegion,
    };
}

/// One mapping of a region into one address space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Mapping {
    pub(crate) process: ProcessId,
    pub(crate) region: Key,
    pub(crate) address: u64,
    pub(crate) pages: usize,
}

const REGION_RIGHTS: Rights = Rights::READ
    .union(Rights::WRITE)
    .union(Rights::MAP)
    .union(Rights::TRANSFER)
    .union(Rights::DUPLICATE);

impl<
    const PROCESSES: usize,
    const HANDLES: usize,
    const OBJECTS: usize,
    const PAYLOAD: usize,
    const PIPE_CAPACITY: usize,
    const MAILBOX_DEPTH: usize,
    const QUEUE_DEPTH: usize,
    const REGION_PAGES: usize,
    const MAPPINGS: usize,
    L: crate::config::Limits,
>
    Ipc<
        PROCESSES,
        HANDLES,
        OBJECTS,
        PAYLOAD,
        PIPE_CAPACITY,
        MAILBOX_DEPTH,
        QUEUE_DEPTH,
        REGION_PAGES,
        MAPPINGS,
        L,
    >
{
    /// Fails with [`Error::QuotaExceeded`] if `caller`'s regions would hold more than its
    /// quota of frames with `more` added.
    fn charge_region_frames(&self, caller: ProcessId, more: usize) -> Result<(), Error> {
        let held: usize = self
            .regions
            .iter_owned(caller)
            .map(|region| region.frames.len())
            .sum();
        crate::config::charge(
            L::QUOTAS.region_frames,
            crate::Quota::RegionFrames,
            held,
            more,
        )
    }

    /// Creates a region of `pages` fresh frames (`1..=REGION_PAGES`). The handle has
    /// READ, WRITE, MAP, TRANSFER, DUPLICATE. Fails with [`Error::OutOfFrames`] (having
    /// returned any frames it took) when the host runs out.
    ///
    /// # Example
    ///
    /// ```
    /// # use kipc::*;
    /// # #[allow(unused)]
    /// # fn example(ipc: &mut DefaultIpc, host: &mut impl Host, caller: ProcessId, peer: ProcessId, handle: Handle, buffer: UserSlice) -> Result<(), Error> {
    /// let region = ipc.region_create(caller, 4, host)?; // 4 zeroed pages
    /// # Ok(()) }
    /// ```
    pub fn region_create<H: Host>(
        &mut self,
        caller: ProcessId,
        pages: usize,
        host: &mut H,
    ) -> Result<Handle, Error> {
        if !(1..=REGION_PAGES).contains(&pages) {
            return Err(Error::InvalidArgument);
        }
        self.reserve_handles(caller, 1)?;
        self.charge_region_frames(caller, pages)?;
        let (key, region) = self.regions.allocate(caller, L::QUOTAS.objects_per_kind)?;
        region.frames.clear();
        region.mappings = 0;
        region.mechanism = Mechanism::SharedRegion;
        for _ in 0..pages {
            match FrameAllocator::allocate_frame(host) {
                Some(frame) => {
                    let _ = region.frames.push(frame);
                }
                None => {
                    host.free_frames(&region.frames);
                    region.frames.clear();
                    self.regions.free(key);
                    return Err(Error::OutOfFrames);
                }
            }
        }
        self.install_new(caller, region_capability(key))
    }

    /// Size in pages of the region behind `handle` (any region handle).
    ///
    /// # Example
    ///
    /// ```
    /// # use kipc::*;
    /// # #[allow(unused)]
    /// # fn example(ipc: &mut DefaultIpc, host: &mut impl Host, caller: ProcessId, peer: ProcessId, handle: Handle, buffer: UserSlice) -> Result<(), Error> {
    /// let pages = ipc.region_pages(caller, handle)?;
    /// # Ok(()) }
    /// ```
    pub fn region_pages(&self, caller: ProcessId, handle: Handle) -> Result<usize, Error> {
        let key = self.region_key(caller, handle, Rights::empty())?;
        Ok(self.regions.get(key).map_or(0, |r| r.frames.len()))
    }

    /// Maps the whole region into the caller's address space and returns the address.
    ///
    /// `at` is a page-aligned address, or `None` to let the host pick one. Needs MAP, and
    /// WRITE for [`Access::ReadWrite`]. Fails with [`Error::AddressInUse`] if the range is
    /// taken (or the host finds no room), [`Error::OutOfMappings`] if the mapping table is
    /// full; nothing stays mapped on failure.
    ///
    /// # Example
    ///
    /// ```
    /// # use kipc::*;
    /// # #[allow(unused)]
    /// # fn example(ipc: &mut DefaultIpc, host: &mut impl Host, caller: ProcessId, peer: ProcessId, handle: Handle, buffer: UserSlice) -> Result<(), Error> {
    /// // Where the host picks, read-only:
    /// let address = ipc.region_map(caller, handle, None, Access::ReadOnly, host)?;
    /// # Ok(()) }
    /// ```
    pub fn region_map<H: Host>(
        &mut self,
        caller: ProcessId,
        handle: Handle,
        at: Option<u64>,
        access: Access,
        host: &mut H,
    ) -> Result<u64, Error> {
        // LAB shm: begin
        let needed = match access {
            Access::ReadOnly => Rights::MAP,
            Access::ReadWrite => Rights::MAP.union(Rights::WRITE),
        };
        // LAB shm: stub
        // // LAB shm, step 1: which rights must the handle carry for this access?
        // let needed = Rights::empty();
        // LAB shm: end
        let key = self.region_key(caller, handle, needed)?;
        let held = self.mappings.iter().filter(|m| m.process == caller).count();
        crate::config::charge(L::QUOTAS.mappings, crate::Quota::Mappings, held, 1)?;
        if self.mappings.is_full() {
            return Err(Error::OutOfMappings);
        }
        let pages = self.regions.get(key).map_or(0, |r| r.frames.len());
        let address = match at {
            Some(address) => {
                check_range(address, pages, host)?;
                address
            }
            None => {
                let address = host
                    .find_free_range(caller, pages)
                    .ok_or(Error::AddressInUse)?;
                // Trust, but verify: a bad pick must not make the address arithmetic wrap.
                check_range(address, pages, host)?;
                address
            }
        };
        let region = self.regions.get(key).ok_or(Error::BadHandle)?;
        // All or nothing: a failed `map_pages` has unmapped what it mapped.
        if let Err(error) = host.map_pages(caller, address, &region.frames, access) {
            host.flush(caller, address, pages);
            return Err(error);
        }
        let mechanism = region.mechanism;
        let mapping = Mapping {
            process: caller,
            region: key,
            address,
            pages,
        };
        self.mappings
            .push(mapping)
            .map_err(|_| Error::OutOfMappings)?;
        if let Some(region) = self.regions.get_mut(key) {
            region.mappings += 1;
        }
        self.ledger.record_pages_mapped(caller, mechanism, pages);
        Ok(address)
    }

    /// Removes the caller's region mapping that starts at `address`.
    ///
    /// # Example
    ///
    /// ```
    /// # use kipc::*;
    /// # #[allow(unused)]
    /// # fn example(ipc: &mut DefaultIpc, host: &mut impl Host, caller: ProcessId, peer: ProcessId, handle: Handle, buffer: UserSlice) -> Result<(), Error> {
    /// ipc.region_unmap(caller, buffer.address(), host)?;
    /// # Ok(()) }
    /// ```
    pub fn region_unmap<H: Host>(
        &mut self,
        caller: ProcessId,
        address: u64,
        host: &mut H,
    ) -> Result<(), Error> {
        self.process(caller)?;
        let index = self
            .mappings
            .iter()
            .position(|m| m.process == caller && m.address == address)
            .ok_or(Error::NotMapped)?;
        let mapping = self.mappings.swap_remove(index);
        self.remove_mapping(mapping, host);
        Ok(())
    }

    /// Moves `pages` pages at `address` out of the caller's address space into a new region
    /// and returns its handle (a page loan; see the module documentation). Every page must
    /// be mapped ([`Error::NotMapped`]) and must not belong to a region mapping
    /// ([`Error::InvalidArgument`]).
    ///
    /// # Example
    ///
    /// ```
    /// # use kipc::*;
    /// # #[allow(unused)]
    /// # fn example(ipc: &mut DefaultIpc, host: &mut impl Host, caller: ProcessId, peer: ProcessId, handle: Handle, buffer: UserSlice) -> Result<(), Error> {
    /// // Move 2 of the caller's pages (zero copies) into a region another process can map:
    /// let loan = ipc.pages_loan(caller, buffer.address(), 2, host)?;
    /// # Ok(()) }
    /// ```
    pub fn pages_loan<H: Host>(
        &mut self,
        caller: ProcessId,
        address: u64,
        pages: usize,
        host: &mut H,
    ) -> Result<Handle, Error> {
        if !(1..=REGION_PAGES).contains(&pages) {
            return Err(Error::InvalidArgument);
        }
        check_range(address, pages, host)?;
        self.reserve_handles(caller, 1)?;
        let end = address + (pages * PAGE_SIZE) as u64;
        let overlaps_region = self.mappings.iter().any(|m| {
            m.process == caller
                && m.address < end
                && address < m.address + (m.pages * PAGE_SIZE) as u64
        });
        if overlaps_region {
            return Err(Error::InvalidArgument);
        }
        // Quotas first: nothing may be unmapped for a loan that cannot be made.
        crate::config::charge(
            L::QUOTAS.objects_per_kind,
            crate::Quota::Objects,
            self.regions.owned_by(caller),
            1,
        )?;
        self.charge_region_frames(caller, pages)?;
        if self.regions.is_full() {
            // No region to move the pages into: report an unmapped page first, as a
            // check of every page before taking a region would.
            for i in 0..pages {
                host.translate(caller, address + (i * PAGE_SIZE) as u64)
                    .ok_or(Error::NotMapped)?;
            }
            return Err(Error::OutOfObjects);
        }
        // LAB loan: begin
        // One ranged unmap checks every page (changing nothing if one is missing) and
        // reports the narrowest access. A page the lender may only read stays read-only
        // for every borrower: the loan's handle lacks WRITE unless every page was writable.
        let mut frames = [Frame::PLACEHOLDER; REGION_PAGES];
        let frames = &mut frames[..pages];
        let narrowest = host.unmap_pages(caller, address, frames)?;
        let all_writable = narrowest == Access::ReadWrite;
        host.flush(caller, address, pages);
        // Cannot fail: the table had a free slot and the caller was under its quota
        // above, and nothing took either since.
        let (key, region) = self.regions.allocate(caller, L::QUOTAS.objects_per_kind)?;
        region.frames.clear();
        region.mappings = 0;
        region.mechanism = Mechanism::PageLoan;
        let _ = region.frames.extend_from_slice(frames);
        self.ledger
            .record_pages_loaned(caller, Mechanism::PageLoan, pages);
        let mut capability = region_capability(key);
        if !all_writable {
            capability.rights.remove(Rights::WRITE);
        }
        self.install_new(caller, capability)
        // LAB loan: stub
        // let _ = (address, pages, host, Frame::PLACEHOLDER, Access::ReadOnly, region_capability);
        // todo!("LAB loan: move the pages out of the lender into a new region and return its handle")
        // LAB loan: end
    }

    // ------------------------------------------------------------------ internals

    fn region_key(&self, caller: ProcessId, handle: Handle, needed: Rights) -> Result<Key, Error> {
        match self
            .lookup(caller, handle, ObjectKind::Region, needed)?
            .object
        {
            ObjectRef::Region(key) => Ok(key),
            _ => Err(Error::WrongObjectKind),
        }
    }

    /// Unmaps a mapping already taken out of the table and drops its reference.
    pub(crate) fn remove_mapping<H: Host>(&mut self, mapping: Mapping, host: &mut H) {
        // LAB shm: begin
        let mut frames = [Frame::PLACEHOLDER; REGION_PAGES];
        let unmapped = match frames.get_mut(..mapping.pages) {
            Some(frames) => host.unmap_pages(mapping.process, mapping.address, frames),
            None => Err(Error::InvalidArgument),
        };
        if unmapped.is_err() {
            // Some page went missing behind kipc's back (the ranged unmap changed
            // nothing): remove whatever is still there, page by page.
            for i in 0..mapping.pages {
                let _ = host.unmap_page(mapping.process, mapping.address + (i * PAGE_SIZE) as u64);
            }
        }
        host.flush(mapping.process, mapping.address, mapping.pages);
        if let Some(region) = self.regions.get_mut(mapping.region) {
            region.mappings -= 1;
        }
        self.region_destroy_if_unused(mapping.region, host);
        // LAB shm: stub
        // let _ = (mapping, host);
        // todo!("LAB shm, step 2: unmap the mapping's pages, flush, and drop its reference to the region")
        // LAB shm: end
    }

    pub(crate) fn region_released<H: Host>(&mut self, key: Key, host: &mut H) {
        if let Some(slot) = self.regions.slot_mut(key) {
            slot.references -= 1;
        }
        self.region_destroy_if_unused(key, host);
    }

    fn region_destroy_if_unused<H: Host>(&mut self, key: Key, host: &mut H) {
        let Some(slot) = self.regions.slot_mut(key) else {
            return;
        };
        if slot.references == 0 && slot.value.mappings == 0 {
            host.free_frames(&slot.value.frames);
            slot.value.frames.clear();
            self.regions.free(key);
        }
    }
}

/// Checks that `pages` pages at `address` are page-aligned user memory.
fn check_range<H: Host>(address: u64, pages: usize, host: &H) -> Result<(), Error> {
    if !address.is_multiple_of(PAGE_SIZE as u64) {
        return Err(Error::InvalidArgument);
    }
    let length = pages.checked_mul(PAGE_SIZE).ok_or(Error::InvalidArgument)?;
    UserSlice::new(address, length, host.user_limit()).map(|_| ())
}

const fn region_capability(key: Key) -> Capability {
    Capability {
        object: ObjectRef::Region(key),
        rights: REGION_RIGHTS,
        badge: 0,
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::{TestHost, TestIpc};
    use crate::*;

    #[test]
    fn same_frames_in_every_mapping_and_freed_at_the_end() {
        let mut ipc = TestIpc::new();
        let mut host = TestHost::new();
        let a = ipc.process_create().unwrap();
        let b = ipc.process_create().unwrap();
        let region = ipc.region_create(a, 2, &mut host).unwrap();
        assert_eq!(host.frames_free, 14);
        let read_only = ipc.handle_grant(a, region, b, Rights::MAP).unwrap();
        let at_a = ipc
            .region_map(a, region, Some(0x20_000), Access::ReadWrite, &mut host)
            .unwrap();
        assert_eq!(
            ipc.region_map(b, read_only, None, Access::ReadWrite, &mut host),
            Err(Error::PermissionDenied)
        );
        let at_b = ipc
            .region_map(b, read_only, None, Access::ReadOnly, &mut host)
            .unwrap();
        for page in 0..2u64 {
            let fa = host.translate(a, at_a + page * 4096).unwrap();
            let fb = host.translate(b, at_b + page * 4096).unwrap();
            assert_eq!(fa.0, fb.0);
            assert_eq!((fa.1, fb.1), (Access::ReadWrite, Access::ReadOnly));
        }
        assert_eq!(
            ipc.region_map(a, region, Some(0x20_000), Access::ReadOnly, &mut host),
            Err(Error::AddressInUse)
        );
        assert_eq!(
            ipc.region_map(a, region, Some(0x20_001), Access::ReadOnly, &mut host),
            Err(Error::InvalidArgument)
        );
        assert_eq!(
            ipc.ledger().global().pages_mapped(Mechanism::SharedRegion),
            4
        );
        assert_eq!(ipc.usage().mapped_pages, 4);
        ipc.handle_close(a, region, &mut host).unwrap();
        ipc.handle_close(b, read_only, &mut host).unwrap();
        assert_eq!(ipc.usage().regions, 1, "mappings keep it alive");
        ipc.region_unmap(a, at_a, &mut host).unwrap();
        assert_eq!(ipc.region_unmap(a, at_a, &mut host), Err(Error::NotMapped));
        ipc.process_exit(b, &mut host).unwrap();
        assert_eq!(ipc.usage().regions, 0);
        assert_eq!(host.frames_free, 16);
        assert!(host.pages.is_empty());
    }

    #[test]
    fn out_of_frames_is_an_error_and_returns_partial_frames() {
        let mut ipc = TestIpc::new();
        let mut host = TestHost::new();
        let a = ipc.process_create().unwrap();
        assert_eq!(ipc.region_create(a, 17, &mut host), Err(Error::OutOfFrames));
        assert_eq!(host.frames_free, 16);
        assert_eq!(ipc.usage().regions, 0);
        assert_eq!(
            ipc.region_create(a, 0, &mut host),
            Err(Error::InvalidArgument)
        );
    }

    #[test]
    fn page_loan_moves_frames() {
        let mut ipc = TestIpc::new();
        let mut host = TestHost::new();
        let a = ipc.process_create().unwrap();
        let b = ipc.process_create().unwrap();
        let f1 = FrameAllocator::allocate_frame(&mut host).unwrap();
        let f2 = FrameAllocator::allocate_frame(&mut host).unwrap();
        host.map_page(a, 0x30_000, f1, Access::ReadWrite).unwrap();
        host.map_page(a, 0x31_000, f2, Access::ReadWrite).unwrap();
        assert_eq!(
            ipc.pages_loan(a, 0x30_000, 3, &mut host),
            Err(Error::NotMapped)
        );
        let loan = ipc.pages_loan(a, 0x30_000, 2, &mut host).unwrap();
        assert!(
            host.translate(a, 0x30_000).is_none(),
            "moved away from the lender"
        );
        let lb = ipc.handle_grant(a, loan, b, Rights::MAP).unwrap();
        ipc.handle_close(a, loan, &mut host).unwrap();
        assert_eq!(ipc.region_pages(b, lb), Ok(2));
        let at = ipc
            .region_map(b, lb, None, Access::ReadOnly, &mut host)
            .unwrap();
        assert_eq!(host.translate(b, at).unwrap().0, f1);
        assert_eq!(host.translate(b, at + 4096).unwrap().0, f2);
        let g = *ipc.ledger().global();
        assert_eq!(
            (
                g.pages_loaned(Mechanism::PageLoan),
                g.pages_mapped(Mechanism::PageLoan),
                g.total_bytes()
            ),
            (2, 2, 0)
        );
        // Region mappings cannot be loaned.
        assert_eq!(
            ipc.pages_loan(b, at, 1, &mut host),
            Err(Error::InvalidArgument)
        );
        ipc.process_exit(b, &mut host).unwrap();
        assert_eq!(host.freed, vec![f1, f2]);
    }

    fn frames(count: u64) -> Vec<Frame> {
        (1..=count)
            .map(|i| Frame::new(0x40_0000 + i * 4096).unwrap())
            .collect()
    }

    #[test]
    fn ranged_map_undoes_a_partial_run() {
        let mut ipc = TestIpc::new();
        let mut host = TestHost::new();
        let a = ipc.process_create().unwrap();
        let frames = frames(4);
        let squatter = Frame::new(0x90_0000).unwrap();
        host.map_page(a, 0x32_000, squatter, Access::ReadOnly)
            .unwrap();
        assert_eq!(
            host.map_pages(a, 0x30_000, &frames, Access::ReadWrite),
            Err(Error::AddressInUse)
        );
        assert!(host.translate(a, 0x30_000).is_none());
        assert!(host.translate(a, 0x31_000).is_none());
        assert_eq!(
            host.translate(a, 0x32_000),
            Some((squatter, Access::ReadOnly))
        );
        assert!(host.translate(a, 0x33_000).is_none());
        host.map_pages(a, 0x40_000, &frames, Access::ReadWrite)
            .unwrap();
        for (i, frame) in frames.iter().enumerate() {
            let page = 0x40_000 + (i * PAGE_SIZE) as u64;
            assert_eq!(host.translate(a, page), Some((*frame, Access::ReadWrite)));
        }
    }

    #[test]
    fn ranged_unmap_is_all_or_nothing_and_reports_the_narrowest_access() {
        let mut ipc = TestIpc::new();
        let mut host = TestHost::new();
        let a = ipc.process_create().unwrap();
        let frames = frames(3);
        host.map_page(a, 0x30_000, frames[0], Access::ReadWrite)
            .unwrap();
        host.map_page(a, 0x32_000, frames[2], Access::ReadWrite)
            .unwrap();
        let mut out = [Frame::PLACEHOLDER; 3];
        assert_eq!(
            host.unmap_pages(a, 0x30_000, &mut out),
            Err(Error::NotMapped)
        );
        assert_eq!(host.pages.len(), 2, "a missing page changes nothing");
        host.map_page(a, 0x31_000, frames[1], Access::ReadOnly)
            .unwrap();
        assert_eq!(
            host.unmap_pages(a, 0x30_000, &mut out),
            Ok(Access::ReadOnly)
        );
        assert_eq!(out.to_vec(), frames);
        assert!(host.pages.is_empty());
    }

    #[test]
    fn ranged_free_frees_every_frame_in_order() {
        let mut host = TestHost::new();
        let frames = frames(3);
        host.free_frames(&frames);
        assert_eq!(host.freed, frames);
        assert_eq!(host.frames_free, 19);
    }

    #[test]
    fn a_region_map_that_collides_late_leaves_nothing_mapped() {
        let mut ipc = TestIpc::new();
        let mut host = TestHost::new();
        let a = ipc.process_create().unwrap();
        let region = ipc.region_create(a, 3, &mut host).unwrap();
        let squatter = Frame::new(0x90_0000).unwrap();
        host.map_page(a, 0x22_000, squatter, Access::ReadWrite)
            .unwrap();
        assert_eq!(
            ipc.region_map(a, region, Some(0x20_000), Access::ReadOnly, &mut host),
            Err(Error::AddressInUse)
        );
        assert_eq!(host.pages.len(), 1);
        assert_eq!(ipc.usage().mapped_pages, 0);
        assert_eq!(
            ipc.ledger().global().pages_mapped(Mechanism::SharedRegion),
            0
        );
    }

    #[test]
    fn a_loan_with_no_region_left_reports_missing_pages_first_and_moves_nothing() {
        let mut ipc = TestIpc::new();
        let mut host = TestHost::new();
        let a = ipc.process_create().unwrap();
        while ipc.region_create(a, 1, &mut host).is_ok() {}
        let frames = frames(2);
        host.map_page(a, 0x30_000, frames[0], Access::ReadWrite)
            .unwrap();
        assert_eq!(
            ipc.pages_loan(a, 0x30_000, 2, &mut host),
            Err(Error::NotMapped)
        );
        host.map_page(a, 0x31_000, frames[1], Access::ReadWrite)
            .unwrap();
        assert_eq!(
            ipc.pages_loan(a, 0x30_000, 2, &mut host),
            Err(Error::OutOfObjects)
        );
        assert_eq!(host.translate(a, 0x30_000).unwrap().0, frames[0]);
        assert_eq!(host.translate(a, 0x31_000).unwrap().0, frames[1]);
        assert_eq!(ipc.ledger().global().pages_loaned(Mechanism::PageLoan), 0);
    }

    #[test]
    fn a_loan_of_read_only_pages_cannot_be_mapped_writable() {
        let mut ipc = TestIpc::new();
        let mut host = TestHost::new();
        let a = ipc.process_create().unwrap();
        let b = ipc.process_create().unwrap();
        let f1 = FrameAllocator::allocate_frame(&mut host).unwrap();
        let f2 = FrameAllocator::allocate_frame(&mut host).unwrap();
        host.map_page(a, 0x30_000, f1, Access::ReadWrite).unwrap();
        host.map_page(a, 0x31_000, f2, Access::ReadOnly).unwrap();
        let loan = ipc.pages_loan(a, 0x30_000, 2, &mut host).unwrap();
        let info = ipc.handle_info(a, loan).unwrap();
        assert!(!info.rights.contains(Rights::WRITE), "{:?}", info.rights);
        let lb = ipc
            .handle_grant(a, loan, b, Rights::MAP | Rights::READ)
            .unwrap();
        assert_eq!(
            ipc.region_map(b, lb, None, Access::ReadWrite, &mut host),
            Err(Error::PermissionDenied)
        );
        assert!(
            ipc.region_map(b, lb, None, Access::ReadOnly, &mut host)
                .is_ok()
        );
    }
}
