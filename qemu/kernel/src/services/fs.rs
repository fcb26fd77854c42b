//! A RAM file system: named files made of reference-counted frames.
//!
//! It exists so the demo can move a real file from a server to a client and
//! count every copy. Reads and writes copy between a file's frames and user
//! memory through kipc's accounted copies, so the ledger shows them under
//! `Mechanism::File`. Two operations move pages instead of bytes:
//!
//! - [`FileSystem::lend`] maps a file's frames read-only into a process (the
//!   frames gain a reference; the file keeps its own), and
//! - [`FileSystem::append_pages`] makes a process's pages the file's next
//!   pages (the frames gain a reference, nothing is copied).
//!
//! A file page shared with anyone else is copied before `write` changes it
//! (copy on write), and that copy is counted as a kernel-to-kernel `File`
//! copy. Pages appended with `append_pages` stay shared with whoever maps
//! them: a writable mapping of such a page changes the file too.

use kipc::{Direction, Error, Mechanism, ProcessId, UserLimit, UserSlice};
use spin::Mutex;
use x86_64::PhysAddr;

use crate::memory::address_space::{AddressSpace, USER_END, UserAccess};
use crate::memory::{self, FRAME_SIZE, phys_to_virt};
use crate::processes::host::{KernelHost, MAPPING_AREA_END, MAPPING_AREA_START};
use crate::processes::table::{KernelIpc, MAX_PROCESSES};

/// Files the file system holds at once.
pub const MAX_FILES: usize = 8;
/// Largest file: 8 MiB.
pub const MAX_FILE_PAGES: usize = 2048;
/// Largest file in bytes.
pub const MAX_FILE_SIZE: u64 = MAX_FILE_PAGES as u64 * FRAME_SIZE;
/// Files one process may have open.
pub const MAX_OPEN: usize = 8;

/// Open flags.
pub mod flags {
    /// Create the file if it does not exist.
    pub const CREATE: u64 = 1;
    /// Empty the file on open.
    pub const TRUNCATE: u64 = 2;
    /// With CREATE: fail with AlreadyExists if it exists.
    pub const EXCLUSIVE: u64 = 4;
}

struct File {
    live: bool,
    unlinked: bool,
    name: heapless::Vec<u8, { kipc::NAME_MAX }>,
    size: u64,
    /// Physical address of each page's frame; 0 = not yet allocated (zeros).
    pages: [u64; MAX_FILE_PAGES],
    opened: u32,
    generation: u32,
}

impl File {
    const EMPTY: File = File {
        live: false,
        unlinked: false,
        name: heapless::Vec::new(),
        size: 0,
        pages: [0; MAX_FILE_PAGES],
        opened: 0,
        generation: 0,
    };

    fn release_pages(&mut self) {
        for page in self.pages.iter_mut() {
            if *page != 0 {
                // SAFETY: the file held one reference to each of its frames.
                unsafe { memory::free_frame(PhysAddr::new(*page)) };
                *page = 0;
            }
        }
        self.size = 0;
    }
}

/// An open file in a process's table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenFile {
    file: usize,
    generation: u32,
    /// Current position.
    pub offset: u64,
}

/// The open files of one process: descriptors index it.
pub type Descriptors = [Option<OpenFile>; MAX_OPEN];

/// The file system.
pub struct FileSystem {
    files: [File; MAX_FILES],
    /// Each process's open files, by process slot; emptied when the process
    /// ends ([`FileSystem::release`], run from the exit hook).
    descriptors: [Descriptors; MAX_PROCESSES],
    /// Pages of a file being generated, before it replaces the old one.
    scratch: [u64; MAX_FILE_PAGES],
}

/// The one file system, behind its own lock (taken inside the kernel lock).
pub static FILES: Mutex<FileSystem> = Mutex::new(FileSystem {
    files: [const { File::EMPTY }; MAX_FILES],
    descriptors: [[None; MAX_OPEN]; MAX_PROCESSES],
    scratch: [0; MAX_FILE_PAGES],
});

const LIMIT: UserLimit = UserLimit::new(USER_END);

fn frame_bytes(frame: u64) -> &'static mut [u8] {
    // SAFETY: `frame` is a frame the file system holds a reference to, in
    // the direct map; callers use the slice only under the file-system lock
    // and only while no other reference writes it (shared frames are copied
    // before writing, see `writable_page`).
    unsafe { core::slice::from_raw_parts_mut(phys_to_virt(frame) as *mut u8, FRAME_SIZE as usize) }
}

static ZERO_PAGE: [u8; FRAME_SIZE as usize] = [0; FRAME_SIZE as usize];

impl FileSystem {
    fn find(&self, name: &[u8]) -> Option<usize> {
        self.files
            .iter()
            .position(|file| file.live && !file.unlinked && file.name == name)
    }

    fn file(&mut self, open: &OpenFile) -> Result<&mut File, Error> {
        let file = self.files.get_mut(open.file).ok_or(Error::BadHandle)?;
        if !file.live || file.generation != open.generation {
            return Err(Error::StaleHandle);
        }
        Ok(file)
    }

    /// Opens (and with `flags::CREATE` creates) a file.
    pub fn open(&mut self, name: &[u8], open_flags: u64) -> Result<OpenFile, Error> {
        if name.is_empty()
            || open_flags & !(flags::CREATE | flags::TRUNCATE | flags::EXCLUSIVE) != 0
        {
            return Err(Error::InvalidArgument);
        }
        let index = match self.find(name) {
            Some(_) if open_flags & flags::CREATE != 0 && open_flags & flags::EXCLUSIVE != 0 => {
                return Err(Error::AlreadyExists);
            }
            Some(index) => index,
            None if open_flags & flags::CREATE == 0 => return Err(Error::NotFound),
            None => {
                let index = self
                    .files
                    .iter()
                    .position(|file| !file.live)
                    .ok_or(Error::OutOfObjects)?;
                let file = &mut self.files[index];
                file.live = true;
                file.unlinked = false;
                file.name = heapless::Vec::from_slice(name).map_err(|_| Error::NameTooLong)?;
                file.size = 0;
                file.opened = 0;
                file.generation = file.generation.wrapping_add(1);
                index
            }
        };
        let file = &mut self.files[index];
        if open_flags & flags::TRUNCATE != 0 {
            file.release_pages();
        }
        file.opened += 1;
        Ok(OpenFile {
            file: index,
            generation: file.generation,
            offset: 0,
        })
    }

    /// Closes an open file; an unlinked file's pages go when its last opener closes.
    pub fn close(&mut self, open: &OpenFile) {
        if let Ok(file) = self.file(open) {
            file.opened = file.opened.saturating_sub(1);
            if file.opened == 0 && file.unlinked {
                file.release_pages();
                file.live = false;
            }
        }
    }

    /// Removes a name; the file lives on while it is open.
    pub fn unlink(&mut self, name: &[u8]) -> Result<(), Error> {
        let index = self.find(name).ok_or(Error::NotFound)?;
        let file = &mut self.files[index];
        file.unlinked = true;
        if file.opened == 0 {
            file.release_pages();
            file.live = false;
        }
        Ok(())
    }

    /// Size in bytes.
    pub fn size(&mut self, open: &OpenFile) -> Result<u64, Error> {
        Ok(self.file(open)?.size)
    }

    /// Reads at `open.offset` into user memory, advancing the offset.
    pub fn read(
        &mut self,
        open: &mut OpenFile,
        buffer: UserSlice,
        ipc: &mut KernelIpc,
        host: &mut KernelHost,
        caller: ProcessId,
    ) -> Result<usize, Error> {
        let file = self.file(open)?;
        let available = file.size.saturating_sub(open.offset);
        let length = (buffer.len() as u64).min(available) as usize;
        let mut done = 0usize;
        while done < length {
            let position = open.offset + done as u64;
            let page = (position / FRAME_SIZE) as usize;
            let within = (position % FRAME_SIZE) as usize;
            let piece = (FRAME_SIZE as usize - within).min(length - done);
            let source: &[u8] = match file.pages[page] {
                0 => &ZERO_PAGE[within..within + piece],
                frame => &frame_bytes(frame)[within..within + piece],
            };
            let destination = buffer.subslice(done, piece).ok_or(Error::BadAddress)?;
            ipc.copy_to_user_accounted(host, caller, Mechanism::File, destination, source)?;
            done += piece;
        }
        open.offset += length as u64;
        Ok(length)
    }

    /// The frame of `page`, allocated if missing and copied first if shared.
    /// The file's page `page`, private to it, for writing; `whole` says the
    /// write covers all of it. Returns the frame, and whether it is a new
    /// frame left unzeroed (because the write will overwrite all of it: the
    /// caller must zero it if that write fails).
    fn writable_page(
        file: &mut File,
        page: usize,
        whole: bool,
        ipc: &mut KernelIpc,
        caller: ProcessId,
    ) -> Result<(u64, bool), Error> {
        let frame = file.pages[page];
        if frame == 0 {
            let fresh = if whole {
                // SAFETY: the write covers the whole page, and `write`
                // zeroes it if the copy fails: no stale byte is ever read.
                unsafe { memory::allocate_frame_unzeroed() }
            } else {
                memory::allocate_frame()
            }
            .ok_or(Error::OutOfFrames)?;
            file.pages[page] = fresh.as_u64();
            return Ok((fresh.as_u64(), whole));
        }
        if memory::frame_references(PhysAddr::new(frame)) > 1 {
            let copy = memory::allocate_frame().ok_or(Error::OutOfFrames)?;
            frame_bytes(copy.as_u64()).copy_from_slice(frame_bytes(frame));
            ipc.account(
                caller,
                Mechanism::File,
                Direction::KernelToKernel,
                FRAME_SIZE as usize,
            );
            // SAFETY: the file drops its own reference to the shared frame;
            // the other holders keep theirs.
            unsafe { memory::free_frame(PhysAddr::new(frame)) };
            file.pages[page] = copy.as_u64();
            return Ok((copy.as_u64(), false));
        }
        Ok((frame, false))
    }

    /// Writes user memory at `open.offset`, growing the file, advancing the offset.
    pub fn write(
        &mut self,
        open: &mut OpenFile,
        data: UserSlice,
        ipc: &mut KernelIpc,
        host: &mut KernelHost,
        caller: ProcessId,
    ) -> Result<usize, Error> {
        let file = self.file(open)?;
        let end = open
            .offset
            .checked_add(data.len() as u64)
            .filter(|&end| end <= MAX_FILE_SIZE)
            .ok_or(Error::InvalidArgument)?;
        let length = (end - open.offset) as usize;
        let mut done = 0usize;
        while done < length {
            let position = open.offset + done as u64;
            let page = (position / FRAME_SIZE) as usize;
            let within = (position % FRAME_SIZE) as usize;
            let piece = (FRAME_SIZE as usize - within).min(length - done);
            let whole = within == 0 && piece == FRAME_SIZE as usize;
            let (frame, unzeroed) = match Self::writable_page(file, page, whole, ipc, caller) {
                Ok(found) => found,
                // Out of frames part-way: keep what was written, like a short write.
                Err(error) if done > 0 => {
                    let _ = error;
                    file.size = file.size.max(position);
                    open.offset = position;
                    return Ok(done);
                }
                Err(error) => return Err(error),
            };
            let source = data.subslice(done, piece).ok_or(Error::BadAddress)?;
            let destination = &mut frame_bytes(frame)[within..within + piece];
            let copied =
                ipc.copy_from_user_accounted(host, caller, Mechanism::File, source, destination);
            if let Err(error) = copied {
                if unzeroed {
                    // The page was to be overwritten whole: it must not keep
                    // its previous owner's bytes.
                    memory::zero_frame(PhysAddr::new(frame));
                }
                // Keep what was written before the fault, like a short write.
                file.size = file.size.max(position);
                open.offset = position;
                return if done == 0 { Err(error) } else { Ok(done) };
            }
            done += piece;
        }
        open.offset = end;
        file.size = file.size.max(end);
        Ok(length)
    }

    /// Maps `pages` pages of the file, from page-aligned `offset`, read-only
    /// into `space` at a free address; returns it. Nothing is copied.
    pub fn lend(
        &mut self,
        open: &OpenFile,
        offset: u64,
        pages: usize,
        space: &mut AddressSpace,
    ) -> Result<u64, Error> {
        let file = self.file(open)?;
        let first = offset / FRAME_SIZE;
        if !offset.is_multiple_of(FRAME_SIZE)
            || pages == 0
            || pages > kipc::REGION_PAGES_MAX
            || (first as usize + pages) > MAX_FILE_PAGES
            || offset >= file.size.next_multiple_of(FRAME_SIZE)
        {
            return Err(Error::InvalidArgument);
        }
        let address = space
            .find_free_range(pages, MAPPING_AREA_START, MAPPING_AREA_END)
            .ok_or(Error::OutOfMappings)?;
        let access = UserAccess {
            writable: false,
            executable: false,
        };
        // Fill holes first, so a failure below has only mappings to undo.
        for page in first as usize..first as usize + pages {
            if file.pages[page] == 0 {
                let fresh = memory::allocate_frame().ok_or(Error::OutOfFrames)?;
                file.pages[page] = fresh.as_u64();
            }
        }
        let frames = &file.pages[first as usize..first as usize + pages];
        // Each mapping owns a new reference; teardown or a page loan takes it
        // over. A page lent out too often refuses more lends. Both steps are
        // all or nothing, one lock and one walk per leaf table for the batch.
        memory::share_frames(frames).map_err(|()| Error::OutOfMappings)?;
        if space
            .map_range(address, pages, |index| frames[index], access, true)
            .is_err()
        {
            // SAFETY: the references taken just above; `map_range` undid
            // every mapping it made, so none was handed out.
            unsafe { memory::free_frames(frames.iter().copied()) };
            return Err(Error::OutOfFrames);
        }
        Ok(address)
    }

    /// Appends the frames behind `pages` pages of `space` at `address` to the
    /// file (whose size must be a multiple of the page size), then sets the
    /// size to grow by `length` bytes. Nothing is copied.
    pub fn append_pages(
        &mut self,
        open: &OpenFile,
        space: &AddressSpace,
        address: u64,
        pages: usize,
        length: u64,
    ) -> Result<(), Error> {
        let file = self.file(open)?;
        // `pages` and `length` come from user space: bound them before any
        // arithmetic.
        if !file.size.is_multiple_of(FRAME_SIZE)
            || !address.is_multiple_of(FRAME_SIZE)
            || pages == 0
            || pages > kipc::REGION_PAGES_MAX
            || length > pages as u64 * FRAME_SIZE
            || length + FRAME_SIZE <= pages as u64 * FRAME_SIZE
        {
            return Err(Error::InvalidArgument);
        }
        let first = (file.size / FRAME_SIZE) as usize;
        if first + pages > MAX_FILE_PAGES {
            return Err(Error::InvalidArgument);
        }
        // Resolve every page before changing anything.
        let mut frames = [0u64; kipc::REGION_PAGES_MAX];
        if pages > frames.len() {
            return Err(Error::InvalidArgument);
        }
        let frames = &mut frames[..pages];
        space
            .translate_range(address, pages, |index, frame| frames[index] = frame)
            .ok_or(Error::NotMapped)?;
        // Room for one more reference per occurrence in this call; one lock.
        memory::share_frames_with_room(frames).map_err(|()| Error::OutOfMappings)?;
        for (slot, &frame) in file.pages[first..first + pages]
            .iter_mut()
            .zip(frames.iter())
        {
            // A page past the end can exist already (a write that faulted half-way
            // allocated it): the file drops its reference to it before replacing it.
            let old = core::mem::replace(slot, frame);
            if old != 0 {
                // SAFETY: the file held one reference to its old page.
                unsafe { memory::free_frame(PhysAddr::new(old)) };
            }
        }
        file.size += length;
        Ok(())
    }

    /// FNV-1a (64-bit) of the file's contents.
    pub fn checksum(&mut self, open: &OpenFile) -> Result<u64, Error> {
        let file = self.file(open)?;
        Ok(checksum_pages(&file.pages, file.size))
    }

    /// Creates (or replaces) `name` with `size` deterministic bytes from `seed`.
    pub fn generate(&mut self, name: &[u8], size: u64, seed: u64) -> Result<u64, Error> {
        if size > MAX_FILE_SIZE || name.is_empty() {
            return Err(Error::InvalidArgument);
        }
        // Build the new contents first: an existing file is replaced only
        // once they exist, so running out of frames leaves it untouched.
        let pages = size.div_ceil(FRAME_SIZE) as usize;
        let mut state = seed | 1;
        for page in 0..pages {
            let Some(frame) = memory::allocate_frame() else {
                self.release_scratch(page);
                return Err(Error::OutOfFrames);
            };
            let bytes = frame_bytes(frame.as_u64());
            let valid = (size - page as u64 * FRAME_SIZE).min(FRAME_SIZE) as usize;
            for chunk in bytes[..valid].chunks_mut(8) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
            }
            self.scratch[page] = frame.as_u64();
        }
        let open = match self.open(name, flags::CREATE | flags::TRUNCATE) {
            Ok(open) => open,
            Err(error) => {
                self.release_scratch(pages);
                return Err(error);
            }
        };
        self.file(&open)?;
        let file = &mut self.files[open.file];
        file.pages[..pages].copy_from_slice(&self.scratch[..pages]);
        self.scratch[..pages].fill(0);
        file.size = size;
        let sum = checksum_pages(&file.pages, size);
        self.close(&open);
        Ok(sum)
    }

    fn release_scratch(&mut self, pages: usize) {
        for frame in self.scratch[..pages].iter_mut() {
            // SAFETY: allocated by `generate` above and handed to nobody.
            unsafe { memory::free_frame(PhysAddr::new(*frame)) };
            *frame = 0;
        }
    }

    /// The open files of `process` (the running caller of a file call).
    pub fn descriptors(&mut self, process: ProcessId) -> &mut Descriptors {
        &mut self.descriptors[process.slot()]
    }

    /// Closes every file `process` has open (it has ended).
    pub fn release(&mut self, process: ProcessId) {
        let open_files =
            core::mem::replace(&mut self.descriptors[process.slot()], [None; MAX_OPEN]);
        for open in open_files.iter().flatten() {
            self.close(open);
        }
    }

    /// Frames held by files (for leak checks and the demo).
    pub fn frames_held(&self) -> usize {
        self.files
            .iter()
            .filter(|file| file.live)
            .map(|file| file.pages.iter().filter(|&&page| page != 0).count())
            .sum()
    }
}

fn checksum_pages(pages: &[u64], size: u64) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut remaining = size;
    for &frame in pages {
        if remaining == 0 {
            break;
        }
        let valid = remaining.min(FRAME_SIZE) as usize;
        let bytes: &[u8] = if frame == 0 {
            &ZERO_PAGE[..valid]
        } else {
            &frame_bytes(frame)[..valid]
        };
        for &byte in bytes {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        remaining -= valid as u64;
    }
    hash
}

/// Builds a user slice or fails with BadAddress.
pub fn user_slice(address: u64, length: u64) -> Result<UserSlice, Error> {
    UserSlice::new(
        address,
        usize::try_from(length).map_err(|_| Error::BadAddress)?,
        LIMIT,
    )
}
