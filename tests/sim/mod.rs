//! A simulated host kernel for kipc: physical memory made of host-allocated frames, one
//! page table per process, a frame allocator, a clock, a wake log, a RAM file system that
//! counts its copies in kipc's ledger, and a toy round-robin scheduler that parks blocked
//! processes and resumes them as kipc reports.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, VecDeque};

use kipc::*;

/// The demo kernel's configuration.
pub type SimIpc = DefaultIpc;

/// Where every simulated process has its private memory.
pub const PRIVATE_BASE: u64 = 0x40_0000;
/// Private pages per process.
pub const PRIVATE_PAGES: usize = 32;
/// Physical frames of the simulated machine.
pub const MACHINE_FRAMES: usize = 1024;
/// First address the host picks for region mappings.
const PICK_BASE: u64 = 0x1000_0000;

/// Fake physical memory, page tables, clock and wake log.
pub struct Machine {
    /// Frame `i` has physical address `(i + 1) * PAGE_SIZE`.
    frames: Vec<Box<[u8; PAGE_SIZE]>>,
    free: Vec<usize>,
    /// Page tables: process slot -> virtual page -> (frame, access).
    tables: HashMap<usize, BTreeMap<u64, (Frame, Access)>>,
    pub now: u64,
    pub wakes: Vec<(ProcessId, Wakeup)>,
    pub flushes: usize,
    /// Bytes kipc actually wrote into user memory through the `UserMemory` trait,
    /// counted here, independently of any length kipc reports.
    pub bytes_written_to_users: u64,
}

impl Machine {
    pub fn new(frames: usize) -> Machine {
        Machine {
            frames: (0..frames).map(|_| Box::new([0u8; PAGE_SIZE])).collect(),
            free: (0..frames).rev().collect(),
            tables: HashMap::new(),
            now: 0,
            wakes: Vec::new(),
            flushes: 0,
            bytes_written_to_users: 0,
        }
    }

    pub fn free_frames(&self) -> usize {
        self.free.len()
    }

    /// Pages mapped in `process`'s page table (private memory and region mappings).
    pub fn mapped_pages(&self, process: ProcessId) -> usize {
        self.tables.get(&process.slot()).map_or(0, BTreeMap::len)
    }

    /// Pages mapped in all page tables.
    pub fn total_mapped_pages(&self) -> usize {
        self.tables.values().map(BTreeMap::len).sum()
    }

    fn frame_index(frame: Frame) -> usize {
        (frame.address() as usize / PAGE_SIZE) - 1
    }

    /// Gives a new process its private memory: `PRIVATE_PAGES` read-write pages.
    pub fn give_private_memory(&mut self, process: ProcessId) {
        self.tables.remove(&process.slot());
        for i in 0..PRIVATE_PAGES {
            let frame = self
                .allocate_frame()
                .expect("machine has frames for private memory");
            self.map_page(
                process,
                PRIVATE_BASE + (i * PAGE_SIZE) as u64,
                frame,
                Access::ReadWrite,
            )
            .unwrap();
        }
    }

    /// Releases whatever is still mapped in `process` (after kipc removed its mappings).
    pub fn destroy_address_space(&mut self, process: ProcessId) {
        if let Some(table) = self.tables.remove(&process.slot()) {
            for (_, (frame, _)) in table {
                self.free_frame(frame);
            }
        }
    }

    /// Translates one byte's page, checking access.
    fn locate(
        &self,
        process: ProcessId,
        address: u64,
        write: bool,
    ) -> Result<(usize, usize), Fault> {
        let page = address & !(PAGE_SIZE as u64 - 1);
        let (frame, access) = self
            .tables
            .get(&process.slot())
            .and_then(|t| t.get(&page))
            .ok_or(Fault)?;
        if write && *access == Access::ReadOnly {
            return Err(Fault);
        }
        Ok((Self::frame_index(*frame), (address - page) as usize))
    }

    /// Raw read of user memory (what the process itself would see); no accounting.
    pub fn read(&self, process: ProcessId, address: u64, length: usize) -> Result<Vec<u8>, Fault> {
        let mut out = vec![0; length];
        self.walk(
            process,
            address,
            length,
            false,
            |frame, offset, range, machine| {
                out[range.clone()]
                    .copy_from_slice(&machine.frames[frame][offset..offset + range.len()]);
            },
        )?;
        Ok(out)
    }

    /// Raw write of user memory (the process storing to its own memory); no accounting.
    pub fn write(&mut self, process: ProcessId, address: u64, bytes: &[u8]) -> Result<(), Fault> {
        let mut runs = Vec::new();
        self.walk(
            process,
            address,
            bytes.len(),
            true,
            |frame, offset, range, _| runs.push((frame, offset, range)),
        )?;
        for (frame, offset, range) in runs {
            self.frames[frame][offset..offset + range.len()].copy_from_slice(&bytes[range]);
        }
        Ok(())
    }

    /// Visits the page runs of `[address, address + length)`, failing before any visit if
    /// one page is absent or not writable.
    fn walk(
        &self,
        process: ProcessId,
        address: u64,
        length: usize,
        write: bool,
        mut visit: impl FnMut(usize, usize, std::ops::Range<usize>, &Machine),
    ) -> Result<(), Fault> {
        let mut runs = Vec::new();
        let mut done = 0;
        while done < length {
            let (frame, offset) = self.locate(process, address + done as u64, write)?;
            let run = (PAGE_SIZE - offset).min(length - done);
            runs.push((frame, offset, done..done + run));
            done += run;
        }
        for (frame, offset, range) in runs {
            visit(frame, offset, range, self);
        }
        Ok(())
    }

    pub fn slice(&self, address: u64, length: usize) -> UserSlice {
        UserSlice::new(address, length, self.user_limit()).expect("valid user slice")
    }

    pub fn take_wakes(&mut self) -> Vec<(ProcessId, Wakeup)> {
        std::mem::take(&mut self.wakes)
    }
}

impl UserMemory for Machine {
    fn user_limit(&self) -> UserLimit {
        UserLimit::X86_64_LOWER_HALF
    }

    fn copy_from_user(
        &mut self,
        process: ProcessId,
        source: UserSlice,
        destination: &mut [u8],
    ) -> Result<(), Fault> {
        let bytes = self.read(process, source.address(), source.len())?;
        destination.copy_from_slice(&bytes);
        Ok(())
    }

    fn copy_to_user(
        &mut self,
        process: ProcessId,
        destination: UserSlice,
        source: &[u8],
    ) -> Result<(), Fault> {
        self.write(process, destination.address(), source)?;
        self.bytes_written_to_users += source.len() as u64;
        Ok(())
    }

    fn copy_user_to_user(
        &mut self,
        from: ProcessId,
        source: UserSlice,
        to: ProcessId,
        destination: UserSlice,
    ) -> Result<(), Fault> {
        // Check the destination first so a fault copies nothing.
        self.walk(
            to,
            destination.address(),
            destination.len(),
            true,
            |_, _, _, _| {},
        )?;
        let bytes = self.read(from, source.address(), source.len())?;
        self.write(to, destination.address(), &bytes)?;
        self.bytes_written_to_users += bytes.len() as u64;
        Ok(())
    }
}

impl AddressSpace for Machine {
    fn map_page(
        &mut self,
        process: ProcessId,
        address: u64,
        frame: Frame,
        access: Access,
    ) -> Result<(), Error> {
        let table = self.tables.entry(process.slot()).or_default();
        if table.contains_key(&address) {
            return Err(Error::AddressInUse);
        }
        table.insert(address, (frame, access));
        Ok(())
    }

    fn unmap_page(&mut self, process: ProcessId, address: u64) -> Result<Frame, Error> {
        self.tables
            .get_mut(&process.slot())
            .and_then(|t| t.remove(&address))
            .map(|(frame, _)| frame)
            .ok_or(Error::NotMapped)
    }

    fn translate(&self, process: ProcessId, address: u64) -> Option<(Frame, Access)> {
        self.tables
            .get(&process.slot())
            .and_then(|t| t.get(&address))
            .copied()
    }

    fn find_free_range(&mut self, process: ProcessId, pages: usize) -> Option<u64> {
        let table = self.tables.entry(process.slot()).or_default();
        let mut address = PICK_BASE;
        loop {
            if (0..pages).all(|i| !table.contains_key(&(address + (i * PAGE_SIZE) as u64))) {
                return Some(address);
            }
            address += PAGE_SIZE as u64;
        }
    }

    fn flush(&mut self, _process: ProcessId, _address: u64, _pages: usize) {
        self.flushes += 1;
    }
}

impl FrameAllocator for Machine {
    fn allocate_frame(&mut self) -> Option<Frame> {
        let index = self.free.pop()?;
        self.frames[index].fill(0);
        Frame::new(((index + 1) * PAGE_SIZE) as u64)
    }

    fn free_frame(&mut self, frame: Frame) {
        let index = Self::frame_index(frame);
        assert!(!self.free.contains(&index), "double free of {frame:?}");
        self.free.push(index);
    }
}

impl Clock for Machine {
    fn now(&self) -> u64 {
        self.now
    }
}

impl Wake for Machine {
    fn wake(&mut self, process: ProcessId, wakeup: Wakeup) {
        self.wakes.push((process, wakeup));
    }
}

// ---------------------------------------------------------------------- the system

/// The simulated system: the IPC core (boxed, as a kernel would keep it in a static), the
/// machine and a RAM file system.
pub struct System {
    pub ipc: Box<SimIpc>,
    pub machine: Machine,
    pub files: HashMap<String, Vec<u8>>,
}

impl System {
    pub fn new() -> System {
        System::with_frames(MACHINE_FRAMES)
    }

    /// A system whose machine has only `frames` physical frames (for exhaustion tests;
    /// every spawned process takes `PRIVATE_PAGES` of them).
    pub fn with_frames(frames: usize) -> System {
        System {
            ipc: Box::new(SimIpc::new()),
            machine: Machine::new(frames),
            files: HashMap::new(),
        }
    }

    pub fn spawn(&mut self) -> ProcessId {
        let pid = self.ipc.process_create().unwrap();
        self.machine.give_private_memory(pid);
        pid
    }

    pub fn exit(&mut self, pid: ProcessId) {
        self.ipc.process_exit(pid, &mut self.machine).unwrap();
        self.machine.destroy_address_space(pid);
    }

    /// The file system's `read` system call: file bytes -> user buffer, counted as File.
    pub fn file_read(
        &mut self,
        pid: ProcessId,
        name: &str,
        offset: usize,
        buffer: UserSlice,
    ) -> usize {
        let file = &self.files[name];
        let n = buffer.len().min(file.len().saturating_sub(offset));
        let bytes = file[offset..offset + n].to_vec();
        self.ipc
            .copy_to_user_accounted(
                &mut self.machine,
                pid,
                Mechanism::File,
                buffer.prefix(n),
                &bytes,
            )
            .unwrap();
        n
    }

    /// The file system's `append` system call: user buffer -> file, counted as File.
    pub fn file_append(&mut self, pid: ProcessId, name: &str, buffer: UserSlice) {
        let mut bytes = vec![0; buffer.len()];
        self.ipc
            .copy_from_user_accounted(&mut self.machine, pid, Mechanism::File, buffer, &mut bytes)
            .unwrap();
        self.files
            .entry(name.to_string())
            .or_default()
            .extend_from_slice(&bytes);
    }
}

// ---------------------------------------------------------------------- the scheduler

/// What one step of a program did.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Still runnable.
    Continue,
    /// Parked by kipc (the system call returned `Outcome::Blocked`).
    Blocked,
    /// Finished; the scheduler makes it exit.
    Exit,
}

/// A simulated user program: a state machine advanced one system call at a time. `resumed`
/// carries the wake-up that made it runnable again, if any.
pub trait Program {
    fn step(&mut self, system: &mut System, me: ProcessId, resumed: Option<Wakeup>) -> Step;
}

enum State {
    Ready(Option<Wakeup>),
    Parked,
    Done,
}

struct Task {
    pid: ProcessId,
    program: Box<dyn Program>,
    state: State,
}

/// Round-robin over runnable tasks; parked tasks wait for a wake-up from kipc.
pub struct Scheduler {
    tasks: VecDeque<Task>,
    pub steps: usize,
}

impl Scheduler {
    pub fn new() -> Scheduler {
        Scheduler {
            tasks: VecDeque::new(),
            steps: 0,
        }
    }

    pub fn add(&mut self, pid: ProcessId, program: impl Program + 'static) {
        self.tasks.push_back(Task {
            pid,
            program: Box::new(program),
            state: State::Ready(None),
        });
    }

    /// Runs until every task has exited. Panics on deadlock or after `limit` steps.
    pub fn run(&mut self, system: &mut System, limit: usize) {
        loop {
            if self.tasks.iter().all(|t| matches!(t.state, State::Done)) {
                return;
            }
            let Some(index) = self
                .tasks
                .iter()
                .position(|t| matches!(t.state, State::Ready(_)))
            else {
                panic!("deadlock: every live task is parked");
            };
            // Round robin: rotate the chosen task to the back after its step.
            let mut task = self.tasks.remove(index).unwrap();
            let State::Ready(resumed) = std::mem::replace(&mut task.state, State::Parked) else {
                unreachable!()
            };
            self.steps += 1;
            assert!(self.steps < limit, "step limit reached");
            task.state = match task.program.step(system, task.pid, resumed) {
                Step::Continue => State::Ready(None),
                Step::Blocked => State::Parked,
                Step::Exit => {
                    system.exit(task.pid);
                    State::Done
                }
            };
            self.tasks.push_back(task);
            for (pid, wakeup) in system.machine.take_wakes() {
                let task = self
                    .tasks
                    .iter_mut()
                    .find(|t| t.pid == pid)
                    .expect("wake for a known task");
                assert!(
                    matches!(task.state, State::Parked),
                    "woke a task that was not parked"
                );
                task.state = State::Ready(Some(wakeup));
            }
        }
    }
}

impl Scheduler {
    /// Adds a task that is already parked in kipc (it blocked during set-up), then runs.
    pub fn run_with_parked(
        &mut self,
        system: &mut System,
        pid: ProcessId,
        program: impl Program + 'static,
        limit: usize,
    ) {
        self.tasks.push_back(Task {
            pid,
            program: Box::new(program),
            state: State::Parked,
        });
        self.run(system, limit);
    }
}
