//! Host-side fuzzing of the core: random sequences of system calls from several simulated
//! processes over many object kinds, with arbitrary (also stale, forged, wrong-kind)
//! handles and bad user buffers, checked step by step against a reference model.
//!
//! The model predicts the exact result of every call (error or value) and keeps, per
//! object, what the core must hold: the bytes in each pipe, the messages in each mailbox
//! and queue (with the handles they carry), semaphore counts, notification bits, region
//! sizes and mappings. After every step it checks that no byte or message was lost or
//! duplicated (received data is compared with what was sent), that the ledger counts
//! exactly the bytes the model says moved, that `usage()` matches the model's object,
//! handle, waiter, frame and mapping counts, that no live handle value was ever issued
//! twice, and that no waiter stays parked although it could proceed. At the end every
//! process is killed: usage returns to zero and every frame to the simulated allocator.

mod sim;

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};

use kipc::*;
use proptest::prelude::*;
use proptest::test_runner::Config;
use sim::{Machine, PRIVATE_BASE, PRIVATE_PAGES};

/// Small tables so that every limit is hit: 4 processes, 8 handles each, 4 objects per
/// kind, 64-byte messages, 64-byte pipes.
/// No quotas: the reference model knows only the tables.
type FuzzIpc = Ipc<4, 8, 4, 64, 64, 8, 16, 64, 64, kipc::Unlimited>;
const PROCESSES: usize = 4;
const HANDLES: usize = 8;
const OBJECTS: usize = 4;
const PAYLOAD: usize = 64;
const PIPE_CAPACITY: usize = 64;
/// Every process's private memory plus a little: regions run out of frames.
const FRAMES: usize = PROCESSES * PRIVATE_PAGES + 20;
const PRIVATE_END: u64 = PRIVATE_BASE + (PRIVATE_PAGES * PAGE_SIZE) as u64;
/// Receive buffers, send buffers, and the private pages that may be loaned away.
const RECEIVE_AT: u64 = PRIVATE_BASE;
const SEND_AT: u64 = PRIVATE_BASE + 0x2000;
const LOANABLE: std::ops::Range<usize> = 16..31;
const QUEUE_NAMES: [&[u8]; 2] = [b"q0", b"q1"];

const MAILBOX_RIGHTS: Rights = Rights::READ
    .union(Rights::WRITE)
    .union(Rights::TRANSFER)
    .union(Rights::DUPLICATE);
const SYNC_RIGHTS: Rights = Rights::SIGNAL
    .union(Rights::WAIT)
    .union(Rights::TRANSFER)
    .union(Rights::DUPLICATE);
const REGION_RIGHTS: Rights = MAILBOX_RIGHTS.union(Rights::MAP);

// ---------------------------------------------------------------------- operations

/// Which handle an operation passes.
#[derive(Clone, Copy, Debug)]
enum Select {
    /// One of the caller's live handles that suits the operation (by position; any live
    /// handle if none suits), or `Handle::NONE` if it has none.
    Live(usize),
    /// Any of the caller's live handles (usually the wrong kind or rights).
    Any(usize),
    /// Any handle value ever issued to any process (maybe stale, maybe someone else's).
    Issued(usize),
    /// A forged number.
    Raw(u32),
}

/// Where a user buffer is.
#[derive(Clone, Copy, Debug)]
enum Buffer {
    /// In the caller's private memory.
    Good,
    /// Running off the end of private memory.
    Straddle,
    /// In no mapping at all.
    Unmapped,
}

#[derive(Clone, Debug)]
enum Op {
    Spawn,
    Exit(usize),
    Cancel(usize),
    /// A signal for the process in the slot: SIGUSR1 (caught, RESTART), SIGUSR2
    /// (caught), SIGTERM, SIGKILL or SIGCHLD (ignored), by index.
    Kill(usize, u8),
    Create(usize, u8, u8),
    QueueOpen(usize, usize),
    QueueUnlink(usize, usize),
    Close(usize, Select),
    Duplicate(usize, Select, u8),
    Grant(usize, Select, usize, u8),
    PipeWrite(usize, Select, usize, Buffer),
    PipeRead(usize, Select, usize, Buffer, bool),
    QueueSend(usize, Select, usize, u8, Buffer),
    QueueReceive(usize, Select, usize, Buffer, bool),
    MailboxSend(usize, Select, usize, Buffer, Vec<Select>),
    MailboxReceive(usize, Select, usize, Buffer, bool),
    SemaphorePost(usize, Select),
    SemaphoreWait(usize, Select, bool),
    /// Post the first, wait on the second.
    SemaphorePostWait(usize, Select, Select, bool),
    Signal(usize, Select, u64),
    NotificationWait(usize, Select, bool),
    Map(usize, Select, bool),
    Unmap(usize, usize),
    Loan(usize, usize, usize),
}

fn select() -> impl Strategy<Value = Select> {
    prop_oneof![
        12 => (0usize..HANDLES).prop_map(Select::Live),
        1 => (0usize..HANDLES).prop_map(Select::Any),
        2 => any::<usize>().prop_map(Select::Issued),
        1 => any::<u32>().prop_map(Select::Raw),
    ]
}

fn buffer() -> impl Strategy<Value = Buffer> {
    prop_oneof![
        8 => Just(Buffer::Good),
        1 => Just(Buffer::Straddle),
        1 => Just(Buffer::Unmapped),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let p = 0usize..PROCESSES;
    let length = 0usize..=80;
    prop_oneof![
        2 => Just(Op::Spawn),
        1 => p.clone().prop_map(Op::Exit),
        1 => p.clone().prop_map(Op::Cancel),
        2 => (p.clone(), 0u8..5).prop_map(|(p, k)| Op::Kill(p, k)),
        8 => (p.clone(), 0u8..6, any::<u8>()).prop_map(|(p, k, x)| Op::Create(p, k, x)),
        1 => (p.clone(), 0usize..2).prop_map(|(p, n)| Op::QueueOpen(p, n)),
        1 => (p.clone(), 0usize..2).prop_map(|(p, n)| Op::QueueUnlink(p, n)),
        4 => (p.clone(), select()).prop_map(|(p, s)| Op::Close(p, s)),
        2 => (p.clone(), select(), any::<u8>()).prop_map(|(p, s, r)| Op::Duplicate(p, s, r)),
        2 => (p.clone(), select(), p.clone(), any::<u8>())
            .prop_map(|(p, s, q, r)| Op::Grant(p, s, q, r)),
        4 => (p.clone(), select(), length.clone(), buffer())
            .prop_map(|(p, s, n, b)| Op::PipeWrite(p, s, n, b)),
        4 => (p.clone(), select(), length.clone(), buffer(), any::<bool>())
            .prop_map(|(p, s, n, b, k)| Op::PipeRead(p, s, n, b, k)),
        3 => (p.clone(), select(), length.clone(), 0u8..4, buffer())
            .prop_map(|(p, s, n, x, b)| Op::QueueSend(p, s, n, x, b)),
        3 => (p.clone(), select(), length.clone(), buffer(), any::<bool>())
            .prop_map(|(p, s, n, b, k)| Op::QueueReceive(p, s, n, b, k)),
        4 => (p.clone(), select(), length.clone(), buffer(), prop::collection::vec(select(), 0..3))
            .prop_map(|(p, s, n, b, t)| Op::MailboxSend(p, s, n, b, t)),
        4 => (p.clone(), select(), length.clone(), buffer(), any::<bool>())
            .prop_map(|(p, s, n, b, k)| Op::MailboxReceive(p, s, n, b, k)),
        2 => (p.clone(), select()).prop_map(|(p, s)| Op::SemaphorePost(p, s)),
        2 => (p.clone(), select(), any::<bool>()).prop_map(|(p, s, k)| Op::SemaphoreWait(p, s, k)),
        2 => (p.clone(), select(), select(), any::<bool>())
            .prop_map(|(p, post, wait, k)| Op::SemaphorePostWait(p, post, wait, k)),
        2 => (p.clone(), select(), prop_oneof![Just(0u64), 1u64..8])
            .prop_map(|(p, s, b)| Op::Signal(p, s, b)),
        2 => (p.clone(), select(), any::<bool>())
            .prop_map(|(p, s, k)| Op::NotificationWait(p, s, k)),
        2 => (p.clone(), select(), any::<bool>()).prop_map(|(p, s, w)| Op::Map(p, s, w)),
        1 => (p.clone(), 0usize..4).prop_map(|(p, i)| Op::Unmap(p, i)),
        1 => (p, LOANABLE, 1usize..4).prop_map(|(p, i, n)| Op::Loan(p, i, n)),
    ]
}

// ---------------------------------------------------------------------- the model

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Mailbox,
    Pipe,
    Queue,
    Region,
    Semaphore,
    Notification,
}

#[derive(Clone, Copy, Debug)]
struct Cap {
    object: usize,
    rights: Rights,
}

#[derive(Debug)]
struct Message {
    bytes: Vec<u8>,
    caps: Vec<Cap>,
}

#[derive(Debug)]
enum State {
    Mailbox(VecDeque<Message>),
    Pipe(VecDeque<u8>),
    Queue {
        name: usize,
        linked: bool,
        max_messages: usize,
        size: usize,
        /// (priority, sequence, bytes)
        messages: Vec<(u8, u64, Vec<u8>)>,
        sequence: u64,
    },
    Region(usize),
    Semaphore(u32),
    Notification(u64),
}

#[derive(Debug)]
struct Object {
    state: State,
    live: bool,
}

impl Object {
    fn kind(&self) -> Kind {
        match self.state {
            State::Mailbox(_) => Kind::Mailbox,
            State::Pipe(_) => Kind::Pipe,
            State::Queue { .. } => Kind::Queue,
            State::Region(_) => Kind::Region,
            State::Semaphore(_) => Kind::Semaphore,
            State::Notification(_) => Kind::Notification,
        }
    }
}

/// What a parked process waits for.
#[derive(Clone, Copy, Debug)]
enum Park {
    /// A read of an empty pipe, with the buffer a write fills for it.
    PipeRead {
        object: usize,
        into: UserSlice,
    },
    MailboxReceive {
        object: usize,
        at: u64,
        length: usize,
    },
    /// A receive from an empty queue, with the buffer a send fills for it.
    QueueReceive {
        object: usize,
        into: UserSlice,
    },
    Semaphore(usize),
    Notification(usize),
}

#[derive(Debug)]
struct Process {
    pid: ProcessId,
    handles: BTreeMap<Handle, Cap>,
    /// Every handle value this process was ever given.
    issued: HashSet<Handle>,
    parked: Option<(u64, Park)>,
    loaned: BTreeSet<usize>,
    /// (address, region object, pages)
    mappings: Vec<(u64, usize, usize)>,
}

/// What the model expects a call to return.
#[derive(Debug, PartialEq, Eq)]
enum Expect<T> {
    Is(Result<T, Error>),
    /// A handle that is not live: `BadHandle` or `StaleHandle` (a forged number may look
    /// like an old generation).
    BadOrStale,
}

impl Expect<()> {
    /// The same failure, expected of a call with another result type.
    fn failure<U>(self) -> Expect<U> {
        match self {
            Expect::Is(Err(error)) => Expect::Is(Err(error)),
            Expect::Is(Ok(())) => unreachable!("not a failure"),
            Expect::BadOrStale => Expect::BadOrStale,
        }
    }
}

struct Fuzz {
    ipc: Box<FuzzIpc>,
    machine: Machine,
    objects: Vec<Object>,
    processes: [Option<Process>; PROCESSES],
    dead: Vec<ProcessId>,
    all_issued: Vec<Handle>,
    /// Bytes ever read from each pipe (where its read position is in the ring).
    pipe_read_total: BTreeMap<usize, usize>,
    /// Bytes the ledger must have counted.
    moved: u64,
    park_sequence: u64,
    tag: u8,
}

impl Fuzz {
    fn new() -> Fuzz {
        Fuzz {
            ipc: Box::new(FuzzIpc::new()),
            machine: Machine::new(FRAMES),
            objects: Vec::new(),
            processes: [const { None }; PROCESSES],
            dead: Vec::new(),
            all_issued: Vec::new(),
            pipe_read_total: BTreeMap::new(),
            moved: 0,
            park_sequence: 0,
            tag: 0,
        }
    }

    /// The caller in slot `slot`, if it exists and may run (is not parked).
    fn runnable(&self, slot: usize) -> Option<ProcessId> {
        self.processes[slot]
            .as_ref()
            .filter(|p| p.parked.is_none())
            .map(|p| p.pid)
    }

    fn process(&mut self, pid: ProcessId) -> &mut Process {
        self.processes[pid.slot()].as_mut().unwrap()
    }

    /// The handle an operation on `kind` needing `right` passes.
    fn pick(&self, pid: ProcessId, select: Select, kind: Option<Kind>, right: Rights) -> Handle {
        let handles = &self.processes[pid.slot()].as_ref().unwrap().handles;
        let nth = |candidates: Vec<Handle>, i: usize| {
            candidates
                .get(i % candidates.len().max(1))
                .copied()
                .unwrap_or(Handle::NONE)
        };
        match select {
            Select::Live(i) => {
                let of_kind =
                    |h: &(&Handle, &Cap)| kind.is_none_or(|k| self.objects[h.1.object].kind() == k);
                let suitable: Vec<Handle> = handles
                    .iter()
                    .filter(of_kind)
                    .filter(|(_, c)| c.rights.contains(right))
                    .map(|(h, _)| *h)
                    .collect();
                if !suitable.is_empty() {
                    return nth(suitable, i);
                }
                let same_kind: Vec<Handle> =
                    handles.iter().filter(of_kind).map(|(h, _)| *h).collect();
                if !same_kind.is_empty() {
                    return nth(same_kind, i);
                }
                nth(handles.keys().copied().collect(), i)
            }
            Select::Any(i) => nth(handles.keys().copied().collect(), i),
            Select::Issued(i) if !self.all_issued.is_empty() => {
                self.all_issued[i % self.all_issued.len()]
            }
            Select::Issued(_) => Handle::NONE,
            Select::Raw(raw) => Handle::from_raw(raw),
        }
    }

    /// The model's view of `handle` in `pid`'s table, checked like `Ipc::lookup`.
    fn resolve(
        &self,
        pid: ProcessId,
        handle: Handle,
        kind: Option<Kind>,
        needed: Rights,
    ) -> Result<Cap, Expect<()>> {
        let process = self.processes[pid.slot()].as_ref().unwrap();
        let Some(cap) = process.handles.get(&handle) else {
            return Err(if process.issued.contains(&handle) {
                Expect::Is(Err(Error::StaleHandle))
            } else {
                Expect::BadOrStale
            });
        };
        if kind.is_some_and(|k| k != self.objects[cap.object].kind()) {
            return Err(Expect::Is(Err(Error::WrongObjectKind)));
        }
        if !cap.rights.contains(needed) {
            return Err(Expect::Is(Err(Error::PermissionDenied)));
        }
        Ok(*cap)
    }

    /// Rights to ask for when duplicating or granting `handle`: usually a subset of what
    /// it has (`bits` as a mask), sometimes (top bit set) whatever `bits` say.
    fn rights_for(&self, pid: ProcessId, handle: Handle, bits: u8) -> Rights {
        let asked = Rights::from_bits_truncate(u32::from(bits));
        let held = self.processes[pid.slot()]
            .as_ref()
            .unwrap()
            .handles
            .get(&handle);
        match held {
            Some(cap) if bits & 0x80 == 0 => cap.rights.intersection(asked),
            _ => asked,
        }
    }

    fn free_handles(&self, pid: ProcessId) -> usize {
        HANDLES - self.processes[pid.slot()].as_ref().unwrap().handles.len()
    }

    fn live_objects(&self, kind: Kind) -> usize {
        self.objects
            .iter()
            .filter(|o| o.live && o.kind() == kind)
            .count()
    }

    /// Every capability in the system: held by live processes and in flight.
    fn all_caps(&self) -> Vec<Cap> {
        let mut caps: Vec<Cap> = self
            .processes
            .iter()
            .flatten()
            .flat_map(|p| p.handles.values().copied())
            .collect();
        for object in self.objects.iter().filter(|o| o.live) {
            if let State::Mailbox(messages) = &object.state {
                caps.extend(messages.iter().flat_map(|m| m.caps.iter().copied()));
            }
        }
        caps
    }

    fn count_caps(&self, object: usize, right: Rights) -> usize {
        self.all_caps()
            .iter()
            .filter(|c| c.object == object && c.rights.contains(right))
            .count()
    }

    /// Mailboxes someone can still receive from: a receive handle to them is in a live
    /// process's table, or travels in a message of a mailbox someone can receive from.
    fn receivable(&self) -> Vec<bool> {
        let mut receivable = vec![false; self.objects.len()];
        let mut pending: Vec<usize> = self
            .processes
            .iter()
            .flatten()
            .flat_map(|p| p.handles.values())
            .filter(|c| c.rights.contains(Rights::READ))
            .map(|c| c.object)
            .collect();
        while let Some(object) = pending.pop() {
            if receivable[object] || !self.objects[object].live {
                continue;
            }
            receivable[object] = true;
            if let State::Mailbox(messages) = &self.objects[object].state {
                pending.extend(
                    messages
                        .iter()
                        .flat_map(|m| m.caps.iter())
                        .filter(|c| c.rights.contains(Rights::READ))
                        .map(|c| c.object),
                );
            }
        }
        receivable
    }

    /// Applies the reference-counting rules until nothing changes: a mailbox nobody can
    /// receive from any more (no receive handle, or receive handles only inside messages
    /// nobody can receive) drops its messages (and the handles in them), an object without
    /// references (handles, in-flight handles, mappings, a linked name) is destroyed.
    fn collect(&mut self) {
        loop {
            let receivable = self.receivable();
            let caps = self.all_caps();
            let mappings: Vec<usize> = self
                .processes
                .iter()
                .flatten()
                .flat_map(|p| p.mappings.iter().map(|m| m.1))
                .collect();
            let mut changed = false;
            for (index, object) in self.objects.iter_mut().enumerate() {
                if !object.live {
                    continue;
                }
                let references = caps.iter().filter(|c| c.object == index).count()
                    + mappings.iter().filter(|m| **m == index).count()
                    + usize::from(matches!(object.state, State::Queue { linked: true, .. }));
                if let State::Mailbox(messages) = &mut object.state
                    && !receivable[index]
                    && !messages.is_empty()
                {
                    messages.clear();
                    changed = true;
                }
                if references == 0 {
                    object.live = false;
                    if let State::Mailbox(messages) = &mut object.state {
                        messages.clear();
                    }
                    changed = true;
                }
            }
            if !changed {
                return;
            }
        }
    }

    fn install(&mut self, pid: ProcessId, handle: Handle, cap: Cap) -> Result<(), TestCaseError> {
        let process = self.process(pid);
        prop_assert!(
            !process.handles.contains_key(&handle),
            "handle {handle:?} issued twice while live"
        );
        prop_assert!(
            !process.issued.contains(&handle),
            "handle {handle:?} reissued to the same process"
        );
        process.handles.insert(handle, cap);
        process.issued.insert(handle);
        self.all_issued.push(handle);
        Ok(())
    }

    fn new_object(&mut self, state: State) -> usize {
        self.objects.push(Object { state, live: true });
        self.objects.len() - 1
    }

    fn state(&mut self, object: usize) -> &mut State {
        &mut self.objects[object].state
    }

    fn park(&mut self, pid: ProcessId, park: Park) {
        self.park_sequence += 1;
        let sequence = self.park_sequence;
        self.process(pid).parked = Some((sequence, park));
    }

    /// The longest-parked process whose wait matches.
    fn oldest_parked(&self, matches: impl Fn(&Park) -> bool) -> Option<(ProcessId, Park)> {
        self.processes
            .iter()
            .flatten()
            .filter_map(|p| p.parked.map(|(s, park)| (s, p.pid, park)))
            .filter(|(_, _, park)| matches(park))
            .min_by_key(|(s, _, _)| *s)
            .map(|(_, pid, park)| (pid, park))
    }

    /// A user buffer of `length` bytes of kind `kind` in the caller's memory (`at` is
    /// where good buffers go).
    fn slice(&self, kind: Buffer, at: u64, length: usize) -> UserSlice {
        let address = match kind {
            Buffer::Good => at,
            Buffer::Straddle => PRIVATE_END - (length as u64 / 2),
            Buffer::Unmapped => 0x1000,
        };
        self.machine.slice(address, length)
    }

    /// Whether the whole buffer is mapped (and writable, for `write`).
    fn valid(&self, pid: ProcessId, slice: UserSlice, write: bool) -> bool {
        valid(&self.machine, pid, slice, write)
    }
}

/// Whether the whole buffer is mapped in `pid` (and writable, for `write`).
fn valid(machine: &Machine, pid: ProcessId, slice: UserSlice, write: bool) -> bool {
    if slice.is_empty() {
        return true;
    }
    let first = slice.address() & !(PAGE_SIZE as u64 - 1);
    let last = (slice.address() + slice.len() as u64 - 1) & !(PAGE_SIZE as u64 - 1);
    (first..=last).step_by(PAGE_SIZE).all(|page| {
        machine
            .translate(pid, page)
            .is_some_and(|(_, access)| !write || access == Access::ReadWrite)
    })
}

impl Fuzz {
    /// Fills a send buffer with fresh, recognisable bytes, as far as it is valid memory.
    fn fill(&mut self, pid: ProcessId, slice: UserSlice) -> Vec<u8> {
        self.tag = self.tag.wrapping_add(1);
        let bytes: Vec<u8> = (0..slice.len())
            .map(|i| self.tag.wrapping_mul(37).wrapping_add(i as u8))
            .collect();
        for (i, byte) in bytes.iter().enumerate() {
            let _ = self
                .machine
                .write(pid, slice.address() + i as u64, &[*byte]);
        }
        bytes
    }
}

/// The result of a pipe copy of `count` bytes whose first ring run is `first` bytes long:
/// a fault in the first run fails the call, one in the second makes it a short copy.
fn copied(
    count: usize,
    first: usize,
    valid: impl Fn(usize) -> bool,
) -> Result<Outcome<usize>, Error> {
    if !valid(first) {
        Err(Error::BadAddress)
    } else if !valid(count) {
        Ok(Outcome::Done(first))
    } else {
        Ok(Outcome::Done(count))
    }
}

/// Compares a call's result with the model's expectation.
fn check<T: std::fmt::Debug + PartialEq>(
    what: &str,
    actual: &Result<T, Error>,
    expected: &Expect<T>,
) -> Result<(), TestCaseError> {
    match expected {
        Expect::Is(expected) => prop_assert_eq!(actual, expected, "{}", what),
        Expect::BadOrStale => prop_assert!(
            matches!(actual, Err(Error::BadHandle | Error::StaleHandle)),
            "{}: expected BadHandle or StaleHandle, got {:?}",
            what,
            actual
        ),
    }
    Ok(())
}

/// Shorthand: resolve a handle or return the expected failure of the whole call.
macro_rules! resolve {
    ($fuzz:expr, $what:expr, $actual:expr, $pid:expr, $handle:expr, $kind:expr, $needed:expr) => {
        match $fuzz.resolve($pid, $handle, $kind, $needed) {
            Ok(cap) => cap,
            Err(Expect::Is(Err(error))) => {
                prop_assert_eq!($actual.as_ref().err(), Some(&error), "{}", $what);
                return Ok(());
            }
            Err(_) => {
                prop_assert!(
                    matches!($actual, Err(Error::BadHandle | Error::StaleHandle)),
                    "{}: expected a bad handle error, got {:?}",
                    $what,
                    $actual
                );
                return Ok(());
            }
        }
    };
}

impl Fuzz {
    fn run(&mut self, op: &Op) -> Result<(), TestCaseError> {
        let slot = match op {
            Op::Spawn => return self.spawn(),
            Op::Exit(slot) => return self.exit_slot(*slot),
            Op::Cancel(slot) => return self.cancel(*slot),
            Op::Kill(slot, which) => return self.kill(*slot, *which),
            Op::Create(slot, ..)
            | Op::QueueOpen(slot, _)
            | Op::QueueUnlink(slot, _)
            | Op::Close(slot, _)
            | Op::Duplicate(slot, ..)
            | Op::Grant(slot, ..)
            | Op::PipeWrite(slot, ..)
            | Op::PipeRead(slot, ..)
            | Op::QueueSend(slot, ..)
            | Op::QueueReceive(slot, ..)
            | Op::MailboxSend(slot, ..)
            | Op::MailboxReceive(slot, ..)
            | Op::SemaphorePost(slot, _)
            | Op::SemaphoreWait(slot, ..)
            | Op::SemaphorePostWait(slot, ..)
            | Op::Signal(slot, ..)
            | Op::NotificationWait(slot, ..)
            | Op::Map(slot, ..)
            | Op::Unmap(slot, _)
            | Op::Loan(slot, ..) => *slot,
        };
        let Some(me) = self.caller(op, slot) else {
            return Ok(());
        };
        self.call(op, me)
    }

    /// Who makes the call: for an operation on a "live" handle, one of the runnable
    /// processes that holds a suitable handle (so that most calls get past the checks);
    /// otherwise the process in `slot`, if it may run.
    fn caller(&self, op: &Op, slot: usize) -> Option<ProcessId> {
        let wants = match op {
            Op::PipeWrite(_, Select::Live(_), ..) => Some((Kind::Pipe, Rights::WRITE)),
            Op::PipeRead(_, Select::Live(_), ..) => Some((Kind::Pipe, Rights::READ)),
            Op::QueueSend(_, Select::Live(_), ..) => Some((Kind::Queue, Rights::WRITE)),
            Op::QueueReceive(_, Select::Live(_), ..) => Some((Kind::Queue, Rights::READ)),
            Op::MailboxSend(_, Select::Live(_), ..) => Some((Kind::Mailbox, Rights::WRITE)),
            Op::MailboxReceive(_, Select::Live(_), ..) => Some((Kind::Mailbox, Rights::READ)),
            Op::SemaphorePost(_, Select::Live(_)) => Some((Kind::Semaphore, Rights::SIGNAL)),
            Op::SemaphoreWait(_, Select::Live(_), _) => Some((Kind::Semaphore, Rights::WAIT)),
            Op::SemaphorePostWait(_, _, Select::Live(_), _) => {
                Some((Kind::Semaphore, Rights::WAIT))
            }
            Op::Signal(_, Select::Live(_), _) => Some((Kind::Notification, Rights::SIGNAL)),
            Op::NotificationWait(_, Select::Live(_), _) => Some((Kind::Notification, Rights::WAIT)),
            Op::Map(_, Select::Live(_), _) => Some((Kind::Region, Rights::MAP)),
            _ => None,
        };
        if let Some((kind, right)) = wants {
            let holders: Vec<ProcessId> = self
                .processes
                .iter()
                .flatten()
                .filter(|p| p.parked.is_none())
                .filter(|p| {
                    p.handles
                        .values()
                        .any(|c| self.objects[c.object].kind() == kind && c.rights.contains(right))
                })
                .map(|p| p.pid)
                .collect();
            if !holders.is_empty() {
                return Some(holders[slot % holders.len()]);
            }
        }
        self.runnable(slot)
    }

    fn call(&mut self, op: &Op, me: ProcessId) -> Result<(), TestCaseError> {
        match op {
            Op::Create(_, kind, parameter) => self.create(me, *kind, *parameter),
            Op::QueueOpen(_, name) => self.queue_open(me, *name),
            Op::QueueUnlink(_, name) => self.queue_unlink(me, *name),
            Op::Close(_, s) => self.close(me, self.pick(me, *s, None, Rights::empty())),
            Op::Duplicate(_, s, r) => {
                self.duplicate(me, self.pick(me, *s, None, Rights::DUPLICATE), *r)
            }
            Op::Grant(_, s, to, r) => {
                self.grant(me, self.pick(me, *s, None, Rights::empty()), *to, *r)
            }
            Op::PipeWrite(_, s, n, b) => self.pipe_write(
                me,
                self.pick(me, *s, Some(Kind::Pipe), Rights::WRITE),
                *n,
                *b,
            ),
            Op::PipeRead(_, s, n, b, k) => self.pipe_read(
                me,
                self.pick(me, *s, Some(Kind::Pipe), Rights::READ),
                *n,
                *b,
                *k,
            ),
            Op::QueueSend(_, s, n, x, b) => self.queue_send(
                me,
                self.pick(me, *s, Some(Kind::Queue), Rights::WRITE),
                *n,
                *x,
                *b,
            ),
            Op::QueueReceive(_, s, n, b, k) => self.queue_receive(
                me,
                self.pick(me, *s, Some(Kind::Queue), Rights::READ),
                *n,
                *b,
                *k,
            ),
            Op::MailboxSend(_, s, n, b, t) => {
                let transfers: Vec<Handle> = t
                    .iter()
                    .map(|t| self.pick(me, *t, None, Rights::TRANSFER))
                    .collect();
                self.mailbox_send(
                    me,
                    self.pick(me, *s, Some(Kind::Mailbox), Rights::WRITE),
                    *n,
                    *b,
                    &transfers,
                )
            }
            Op::MailboxReceive(_, s, n, b, k) => self.mailbox_receive(
                me,
                self.pick(me, *s, Some(Kind::Mailbox), Rights::READ),
                *n,
                *b,
                *k,
            ),
            Op::SemaphorePost(_, s) => {
                self.semaphore_post(me, self.pick(me, *s, Some(Kind::Semaphore), Rights::SIGNAL))
            }
            Op::SemaphoreWait(_, s, k) => self.semaphore_wait(
                me,
                self.pick(me, *s, Some(Kind::Semaphore), Rights::WAIT),
                *k,
            ),
            Op::SemaphorePostWait(_, post, wait, k) => self.semaphore_post_wait(
                me,
                self.pick(me, *post, Some(Kind::Semaphore), Rights::SIGNAL),
                self.pick(me, *wait, Some(Kind::Semaphore), Rights::WAIT),
                *k,
            ),
            Op::Signal(_, s, bits) => self.signal(
                me,
                self.pick(me, *s, Some(Kind::Notification), Rights::SIGNAL),
                *bits,
            ),
            Op::NotificationWait(_, s, k) => self.notification_wait(
                me,
                self.pick(me, *s, Some(Kind::Notification), Rights::WAIT),
                *k,
            ),
            Op::Map(_, s, write) => self.map(
                me,
                self.pick(me, *s, Some(Kind::Region), Rights::MAP),
                *write,
            ),
            Op::Unmap(_, i) => self.unmap(me, *i),
            Op::Loan(_, page, pages) => self.loan(me, *page, *pages),
            Op::Spawn | Op::Exit(_) | Op::Cancel(_) | Op::Kill(..) => unreachable!(),
        }
    }

    // ------------------------------------------------------------ processes

    fn spawn(&mut self) -> Result<(), TestCaseError> {
        let live = self.processes.iter().flatten().count();
        if live == PROCESSES {
            prop_assert_eq!(self.ipc.process_create(), Err(Error::OutOfProcesses));
            return Ok(());
        }
        if self.machine.free_frames() < PRIVATE_PAGES {
            return Ok(()); // the host would not start a process without memory
        }
        let pid = self.ipc.process_create().unwrap();
        prop_assert!(self.processes[pid.slot()].is_none());
        prop_assert!(!self.dead.contains(&pid), "a process id came back");
        self.machine.give_private_memory(pid);
        // Every process catches SIGUSR1 (restarting calls) and SIGUSR2 (not).
        for (signal, flags) in [
            (Signal::SIGUSR1, SignalFlags::RESTART),
            (Signal::SIGUSR2, SignalFlags::empty()),
        ] {
            let action = SignalAction {
                disposition: Disposition::Handler(0x40_1000),
                mask: SignalSet::EMPTY,
                flags,
            };
            prop_assert!(self.ipc.signal_action(pid, signal, Some(action)).is_ok());
        }
        // Writes to a pipe without reader then only fail with BrokenPipe (the model
        // checks that error; tests/core_signals.rs checks SIGPIPE).
        let ignore = SignalAction {
            disposition: Disposition::Ignore,
            ..SignalAction::DEFAULT
        };
        prop_assert!(
            self.ipc
                .signal_action(pid, Signal::SIGPIPE, Some(ignore))
                .is_ok()
        );
        self.processes[pid.slot()] = Some(Process {
            pid,
            handles: BTreeMap::new(),
            issued: HashSet::new(),
            parked: None,
            loaned: BTreeSet::new(),
            mappings: Vec::new(),
        });
        Ok(())
    }

    fn exit_slot(&mut self, slot: usize) -> Result<(), TestCaseError> {
        let Some(process) = self.processes[slot].as_ref() else {
            if let Some(dead) = self.dead.last() {
                prop_assert_eq!(
                    self.ipc.process_exit(*dead, &mut self.machine),
                    Err(Error::NoSuchProcess)
                );
            }
            return Ok(());
        };
        let pid = process.pid;
        prop_assert_eq!(self.ipc.process_exit(pid, &mut self.machine), Ok(()));
        self.machine.destroy_address_space(pid);
        self.processes[slot] = None;
        self.dead.push(pid);
        self.collect();
        self.wakes(None)
    }

    /// A signal arrives for the process in `slot`, and the host delivers it at once (as
    /// it would on the way back to user mode): a parked call ends as the interruption
    /// table says; a handler runs and returns; SIGTERM and SIGKILL end the process.
    fn kill(&mut self, slot: usize, which: u8) -> Result<(), TestCaseError> {
        let Some(process) = self.processes[slot].as_ref() else {
            return Ok(());
        };
        let pid = process.pid;
        let parked = process.parked.is_some();
        let signal = [
            Signal::SIGUSR1,
            Signal::SIGUSR2,
            Signal::SIGTERM,
            Signal::SIGKILL,
            Signal::SIGCHLD,
        ][usize::from(which) % 5];
        let posted = self.ipc.signal_post(pid, signal, &mut self.machine);
        let wakes = self.machine.take_wakes();
        if signal == Signal::SIGCHLD {
            prop_assert_eq!(posted, Ok(Posted::Ignored));
            prop_assert!(wakes.is_empty(), "an ignored signal woke {:?}", wakes);
            return Ok(());
        }
        prop_assert_eq!(posted, Ok(Posted::Deliverable));
        if parked {
            let expected = if signal == Signal::SIGUSR1 {
                Wakeup::Retry
            } else {
                Wakeup::Failed(Error::Interrupted)
            };
            prop_assert_eq!(wakes, vec![(pid, expected)]);
            self.process(pid).parked = None;
        } else {
            prop_assert!(
                wakes.is_empty(),
                "woke a process that did not wait: {:?}",
                wakes
            );
        }
        prop_assert!(!self.ipc.is_waiting(pid));
        match self.ipc.signal_take(pid) {
            Ok(Some(Delivery::Handler {
                signal: taken,
                saved_mask,
                ..
            })) => {
                prop_assert_eq!(taken, signal);
                prop_assert_eq!(self.ipc.signal_return(pid, saved_mask), Ok(()));
                prop_assert_eq!(self.ipc.signal_take(pid), Ok(None));
                Ok(())
            }
            Ok(Some(Delivery::Terminate(taken))) => {
                prop_assert_eq!(taken, signal);
                self.exit_slot(slot)
            }
            other => {
                prop_assert!(false, "{:?} took {:?}", signal, other);
                Ok(())
            }
        }
    }

    fn cancel(&mut self, slot: usize) -> Result<(), TestCaseError> {
        let Some(process) = self.processes[slot].as_mut() else {
            return Ok(());
        };
        let was = process.parked.take().is_some();
        let pid = process.pid;
        prop_assert_eq!(
            self.ipc.cancel_wait(pid).map(|wakeup| wakeup.is_some()),
            Ok(was)
        );
        Ok(())
    }

    // ------------------------------------------------------------ handles

    fn create(&mut self, me: ProcessId, kind: u8, parameter: u8) -> Result<(), TestCaseError> {
        let free = self.free_handles(me);
        let (kind, needed_handles) = match kind {
            0 => (Kind::Mailbox, 1),
            1 => (Kind::Pipe, 2),
            2 => (Kind::Queue, 1),
            3 => (Kind::Region, 1),
            4 => (Kind::Semaphore, 1),
            _ => (Kind::Notification, 1),
        };
        let table_full = self.live_objects(kind) == OBJECTS;
        let ipc = &mut self.ipc;
        let result: Result<Vec<Handle>, Error> = match kind {
            Kind::Mailbox => ipc.mailbox_create(me).map(|h| vec![h]),
            Kind::Pipe => ipc.pipe_create(me).map(|(r, w)| vec![r, w]),
            Kind::Queue => {
                let name = usize::from(parameter) % 2;
                let max = usize::from(parameter / 2 % 4) + 1;
                let size = usize::from(parameter / 8 % 16) * 4 + 1;
                let exists = self.objects.iter().any(|o| {
                    o.live && matches!(o.state, State::Queue { name: n, linked: true, .. } if n == name)
                });
                let result = ipc
                    .mqueue_create(me, QUEUE_NAMES[name], max, size)
                    .map(|h| vec![h]);
                let expected = if free < 1 {
                    Err(Error::OutOfHandles)
                } else if exists {
                    Err(Error::AlreadyExists)
                } else if table_full {
                    Err(Error::OutOfObjects)
                } else {
                    Ok(())
                };
                prop_assert_eq!(
                    result.as_ref().map(|_| ()).map_err(|e| *e),
                    expected,
                    "mqueue_create"
                );
                if let Ok(handles) = result {
                    let object = self.new_object(State::Queue {
                        name,
                        linked: true,
                        max_messages: max,
                        size,
                        messages: Vec::new(),
                        sequence: 0,
                    });
                    let rights = MAILBOX_RIGHTS;
                    self.install(me, handles[0], Cap { object, rights })?;
                }
                return Ok(());
            }
            Kind::Region => {
                let pages = usize::from(parameter % 8) + 1;
                let frames = self.machine.free_frames();
                let result = ipc
                    .region_create(me, pages, &mut self.machine)
                    .map(|h| vec![h]);
                let expected = if free < 1 {
                    Err(Error::OutOfHandles)
                } else if table_full {
                    Err(Error::OutOfObjects)
                } else if frames < pages {
                    Err(Error::OutOfFrames)
                } else {
                    Ok(())
                };
                prop_assert_eq!(
                    result.as_ref().map(|_| ()).map_err(|e| *e),
                    expected,
                    "region_create"
                );
                let taken = if result.is_ok() { pages } else { 0 };
                prop_assert_eq!(self.machine.free_frames(), frames - taken, "frames taken");
                if let Ok(handles) = result {
                    let object = self.new_object(State::Region(pages));
                    self.install(
                        me,
                        handles[0],
                        Cap {
                            object,
                            rights: REGION_RIGHTS,
                        },
                    )?;
                }
                return Ok(());
            }
            Kind::Semaphore => ipc
                .semaphore_create(me, u32::from(parameter % 3))
                .map(|h| vec![h]),
            Kind::Notification => ipc.notification_create(me).map(|h| vec![h]),
        };
        let expected = if free < needed_handles {
            Err(Error::OutOfHandles)
        } else if table_full {
            Err(Error::OutOfObjects)
        } else {
            Ok(())
        };
        prop_assert_eq!(
            result.as_ref().map(|_| ()).map_err(|e| *e),
            expected,
            "create {:?}",
            kind
        );
        let Ok(handles) = result else { return Ok(()) };
        let (state, rights) = match kind {
            Kind::Mailbox => (State::Mailbox(VecDeque::new()), MAILBOX_RIGHTS),
            Kind::Pipe => (State::Pipe(VecDeque::new()), Rights::empty()),
            Kind::Semaphore => (State::Semaphore(u32::from(parameter % 3)), SYNC_RIGHTS),
            _ => (State::Notification(0), SYNC_RIGHTS),
        };
        let object = self.new_object(state);
        if kind == Kind::Pipe {
            let end = Rights::TRANSFER | Rights::DUPLICATE;
            self.install(
                me,
                handles[0],
                Cap {
                    object,
                    rights: end | Rights::READ,
                },
            )?;
            self.install(
                me,
                handles[1],
                Cap {
                    object,
                    rights: end | Rights::WRITE,
                },
            )?;
        } else {
            self.install(me, handles[0], Cap { object, rights })?;
        }
        Ok(())
    }

    fn queue_open(&mut self, me: ProcessId, name: usize) -> Result<(), TestCaseError> {
        let found = self.objects.iter().position(|o| {
            o.live && matches!(o.state, State::Queue { name: n, linked: true, .. } if n == name)
        });
        let result = self
            .ipc
            .mqueue_open(me, QUEUE_NAMES[name], QueueOpen::ReadWrite);
        match found {
            None => prop_assert_eq!(result, Err(Error::NotFound)),
            Some(_) if self.free_handles(me) == 0 => {
                prop_assert_eq!(result, Err(Error::OutOfHandles))
            }
            Some(object) => {
                let handle = result.unwrap();
                self.install(
                    me,
                    handle,
                    Cap {
                        object,
                        rights: MAILBOX_RIGHTS,
                    },
                )?;
            }
        }
        Ok(())
    }

    fn queue_unlink(&mut self, me: ProcessId, name: usize) -> Result<(), TestCaseError> {
        let found = self.objects.iter().position(|o| {
            o.live && matches!(o.state, State::Queue { name: n, linked: true, .. } if n == name)
        });
        let result = self.ipc.mqueue_unlink(me, QUEUE_NAMES[name]);
        match found {
            None => prop_assert_eq!(result, Err(Error::NotFound)),
            Some(object) => {
                prop_assert_eq!(result, Ok(()));
                if let State::Queue { linked, .. } = self.state(object) {
                    *linked = false;
                }
                self.collect();
            }
        }
        Ok(())
    }

    fn close(&mut self, me: ProcessId, handle: Handle) -> Result<(), TestCaseError> {
        let result = self.ipc.handle_close(me, handle, &mut self.machine);
        resolve!(
            self,
            "handle_close",
            result,
            me,
            handle,
            None,
            Rights::empty()
        );
        prop_assert_eq!(result, Ok(()));
        self.process(me).handles.remove(&handle);
        self.collect();
        self.wakes(None)
    }

    fn duplicate(&mut self, me: ProcessId, handle: Handle, bits: u8) -> Result<(), TestCaseError> {
        let rights = self.rights_for(me, handle, bits);
        let result = self.ipc.handle_duplicate(me, handle, rights);
        let cap = resolve!(
            self,
            "handle_duplicate",
            result,
            me,
            handle,
            None,
            Rights::empty()
        );
        if !cap.rights.contains(Rights::DUPLICATE) || !cap.rights.contains(rights) {
            prop_assert_eq!(result, Err(Error::PermissionDenied));
        } else if self.free_handles(me) == 0 {
            prop_assert_eq!(result, Err(Error::OutOfHandles));
        } else {
            let new = result.unwrap();
            self.install(
                me,
                new,
                Cap {
                    object: cap.object,
                    rights,
                },
            )?;
        }
        Ok(())
    }

    fn grant(
        &mut self,
        me: ProcessId,
        handle: Handle,
        to: usize,
        bits: u8,
    ) -> Result<(), TestCaseError> {
        let rights = self.rights_for(me, handle, bits);
        let target = match &self.processes[to] {
            Some(p) => Some(p.pid),
            None => self.dead.last().copied(),
        };
        let Some(target) = target else { return Ok(()) };
        let result = self.ipc.handle_grant(me, handle, target, rights);
        let cap = resolve!(
            self,
            "handle_grant",
            result,
            me,
            handle,
            None,
            Rights::empty()
        );
        let alive = self.processes[to].as_ref().is_some_and(|p| p.pid == target);
        if !cap.rights.contains(rights) {
            prop_assert_eq!(result, Err(Error::PermissionDenied));
        } else if !alive {
            prop_assert_eq!(result, Err(Error::NoSuchProcess));
        } else if self.free_handles(target) == 0 {
            prop_assert_eq!(result, Err(Error::OutOfHandles));
        } else {
            let new = result.unwrap();
            self.install(
                target,
                new,
                Cap {
                    object: cap.object,
                    rights,
                },
            )?;
        }
        Ok(())
    }

    // ------------------------------------------------------------ pipes

    fn pipe_write(
        &mut self,
        me: ProcessId,
        handle: Handle,
        length: usize,
        kind: Buffer,
    ) -> Result<(), TestCaseError> {
        let data = self.slice(kind, SEND_AT, length);
        let bytes = self.fill(me, data);
        let result =
            self.ipc
                .pipe_write(me, handle, data, Blocking::NonBlocking, &mut self.machine);
        let cap = resolve!(
            self,
            "pipe_write",
            result,
            me,
            handle,
            Some(Kind::Pipe),
            Rights::WRITE
        );
        let readers = self.count_caps(cap.object, Rights::READ);
        let read_so_far = self.pipe_read_total.get(&cap.object).copied().unwrap_or(0);
        let machine = &self.machine;
        let State::Pipe(buffered) = &mut self.objects[cap.object].state else {
            unreachable!()
        };
        let space = PIPE_CAPACITY - buffered.len();
        let minimum = if length <= PIPE_CAPACITY { length } else { 1 };
        // Zero bytes: 0, reader or not (as Linux does).
        let expected = if length == 0 {
            Ok(Outcome::Done(0))
        } else if readers == 0 {
            Err(Error::BrokenPipe)
        } else if space < minimum {
            Err(Error::WouldBlock)
        } else {
            let count = space.min(length);
            let start = (read_so_far + buffered.len()) % PIPE_CAPACITY;
            let first = count.min(PIPE_CAPACITY - start);
            copied(count, first, |n| valid(machine, me, data.prefix(n), false))
        };
        prop_assert_eq!(&result, &expected, "pipe_write of {} bytes", length);
        if let Ok(Outcome::Done(n)) = result {
            buffered.extend(&bytes[..n]);
            self.moved += n as u64;
            if n > 0 {
                return self.serve_readers(cap.object);
            }
        }
        self.wakes(None)
    }

    /// Data arrived in pipe `object`: its parked reads, oldest first, are completed
    /// from it while it holds data, each exactly as its own read would have gone (a
    /// faulting buffer fails its reader and leaves the bytes).
    fn serve_readers(&mut self, object: usize) -> Result<(), TestCaseError> {
        let mut expected_wakes = Vec::new();
        loop {
            let nonempty = matches!(&self.objects[object].state, State::Pipe(b) if !b.is_empty());
            if !nonempty {
                break;
            }
            let Some((reader, Park::PipeRead { into, .. })) = self.oldest_parked(
                |park| matches!(park, Park::PipeRead { object: o, .. } if *o == object),
            ) else {
                break;
            };
            self.process(reader).parked = None;
            let read_so_far = self.pipe_read_total.entry(object).or_insert(0);
            let machine = &self.machine;
            let State::Pipe(buffered) = &mut self.objects[object].state else {
                unreachable!()
            };
            let count = into.len().min(buffered.len());
            let first = count.min(PIPE_CAPACITY - *read_so_far % PIPE_CAPACITY);
            match copied(count, first, |n| {
                valid(machine, reader, into.prefix(n), true)
            }) {
                Ok(Outcome::Done(n)) => {
                    *read_so_far += n;
                    let expected: Vec<u8> = buffered.drain(..n).collect();
                    self.moved += n as u64;
                    prop_assert_eq!(
                        self.machine.read(reader, into.address(), n).unwrap(),
                        expected
                    );
                    expected_wakes.push((reader, Wakeup::Completed(Completion::Read(n))));
                }
                Ok(Outcome::Blocked) => unreachable!(),
                Err(error) => expected_wakes.push((reader, Wakeup::Failed(error))),
            }
        }
        let wakes = self.machine.take_wakes();
        prop_assert_eq!(wakes, expected_wakes, "parked pipe reads served by a write");
        Ok(())
    }

    fn pipe_read(
        &mut self,
        me: ProcessId,
        handle: Handle,
        length: usize,
        kind: Buffer,
        block: bool,
    ) -> Result<(), TestCaseError> {
        let into = self.slice(kind, RECEIVE_AT, length);
        let blocking = if block {
            Blocking::Forever
        } else {
            Blocking::NonBlocking
        };
        let result = self
            .ipc
            .pipe_read(me, handle, into, blocking, &mut self.machine);
        let cap = resolve!(
            self,
            "pipe_read",
            result,
            me,
            handle,
            Some(Kind::Pipe),
            Rights::READ
        );
        let writers = self.count_caps(cap.object, Rights::WRITE);
        let read_so_far = self.pipe_read_total.entry(cap.object).or_insert(0);
        let machine = &self.machine;
        let State::Pipe(buffered) = &mut self.objects[cap.object].state else {
            unreachable!()
        };
        // An empty buffer reads nothing; an empty pipe without writers is end of file.
        let expected = if length == 0 || (buffered.is_empty() && writers == 0) {
            Ok(Outcome::Done(0))
        } else if buffered.is_empty() && block {
            Ok(Outcome::Blocked)
        } else if buffered.is_empty() {
            Err(Error::WouldBlock)
        } else {
            let count = length.min(buffered.len());
            let first = count.min(PIPE_CAPACITY - *read_so_far % PIPE_CAPACITY);
            copied(count, first, |n| valid(machine, me, into.prefix(n), true))
        };
        if let Ok(Outcome::Done(n)) = expected {
            *read_so_far += n;
        }
        prop_assert_eq!(&result, &expected, "pipe_read of {} bytes", length);
        match result {
            Ok(Outcome::Done(n)) => {
                let expected: Vec<u8> = buffered.drain(..n).collect();
                self.moved += n as u64;
                let machine = &self.machine;
                prop_assert_eq!(machine.read(me, into.address(), n).unwrap(), expected);
            }
            Ok(Outcome::Blocked) => self.park(
                me,
                Park::PipeRead {
                    object: cap.object,
                    into,
                },
            ),
            Err(_) => {}
        }
        self.wakes(None)
    }

    // ------------------------------------------------------------ message queues

    fn queue_send(
        &mut self,
        me: ProcessId,
        handle: Handle,
        length: usize,
        priority: u8,
        kind: Buffer,
    ) -> Result<(), TestCaseError> {
        let message = self.slice(kind, SEND_AT, length);
        let bytes = self.fill(me, message);
        let valid = self.valid(me, message, false);
        let result = self.ipc.mqueue_send(
            me,
            handle,
            message,
            priority,
            Blocking::NonBlocking,
            &mut self.machine,
        );
        let cap = resolve!(
            self,
            "mqueue_send",
            result,
            me,
            handle,
            Some(Kind::Queue),
            Rights::WRITE
        );
        let State::Queue {
            max_messages,
            size,
            messages,
            sequence,
            ..
        } = self.state(cap.object)
        else {
            unreachable!()
        };
        let expected = if length > *size {
            Err(Error::MessageTooLarge { limit: *size })
        } else if messages.len() >= *max_messages {
            Err(Error::WouldBlock)
        } else if !valid {
            Err(Error::BadAddress)
        } else {
            Ok(Outcome::Done(()))
        };
        prop_assert_eq!(&result, &expected, "mqueue_send");
        if result.is_ok() {
            messages.push((priority, *sequence, bytes));
            *sequence += 1;
            self.moved += length as u64;
            return self.serve_receivers(cap.object);
        }
        self.wakes(Some(cap.object))
    }

    /// A message arrived in queue `object`: its parked receives, oldest first, each
    /// take the most urgent message into their recorded buffer while there is one (a
    /// faulting buffer fails its receiver and leaves the message). Taking a message
    /// makes room: senders parked for room would retry (the fuzzer's sends never park).
    fn serve_receivers(&mut self, object: usize) -> Result<(), TestCaseError> {
        let mut expected_wakes = Vec::new();
        loop {
            let State::Queue { messages, .. } = &self.objects[object].state else {
                unreachable!()
            };
            if messages.is_empty() {
                break;
            }
            let Some((receiver, Park::QueueReceive { into, .. })) = self.oldest_parked(
                |park| matches!(park, Park::QueueReceive { object: o, .. } if *o == object),
            ) else {
                break;
            };
            self.process(receiver).parked = None;
            let State::Queue { messages, .. } = &self.objects[object].state else {
                unreachable!()
            };
            let (index, priority, length) = messages
                .iter()
                .enumerate()
                .max_by_key(|(_, (p, s, _))| (*p, std::cmp::Reverse(*s)))
                .map(|(i, (p, _, b))| (i, *p, b.len()))
                .expect("not empty");
            if self.valid(receiver, into.prefix(length), true) {
                let State::Queue { messages, .. } = self.state(object) else {
                    unreachable!()
                };
                let (_, _, bytes) = messages.remove(index);
                self.moved += length as u64;
                prop_assert_eq!(
                    self.machine.read(receiver, into.address(), length).unwrap(),
                    bytes
                );
                expected_wakes.push((
                    receiver,
                    Wakeup::Completed(Completion::Dequeued(QueuedMessage { length, priority })),
                ));
            } else {
                expected_wakes.push((receiver, Wakeup::Failed(Error::BadAddress)));
            }
        }
        let wakes = self.machine.take_wakes();
        prop_assert_eq!(
            wakes,
            expected_wakes,
            "parked queue receives served by a send"
        );
        Ok(())
    }

    fn queue_receive(
        &mut self,
        me: ProcessId,
        handle: Handle,
        length: usize,
        kind: Buffer,
        block: bool,
    ) -> Result<(), TestCaseError> {
        let into = self.slice(kind, RECEIVE_AT, length);
        let blocking = if block {
            Blocking::Forever
        } else {
            Blocking::NonBlocking
        };
        let result = self
            .ipc
            .mqueue_receive(me, handle, into, blocking, &mut self.machine);
        let cap = resolve!(
            self,
            "mqueue_receive",
            result,
            me,
            handle,
            Some(Kind::Queue),
            Rights::READ
        );
        let State::Queue { size, messages, .. } = &self.objects[cap.object].state else {
            unreachable!()
        };
        let best = messages
            .iter()
            .enumerate()
            .max_by_key(|(_, (p, s, _))| (*p, std::cmp::Reverse(*s)))
            .map(|(i, (p, _, b))| (i, *p, b.len()));
        let expected = if length < *size {
            Err(Error::BufferTooSmall { needed: *size })
        } else {
            match best {
                None if block => Ok(Outcome::Blocked),
                None => Err(Error::WouldBlock),
                Some((_, priority, n)) => {
                    if self.valid(me, into.prefix(n), true) {
                        Ok(Outcome::Done(QueuedMessage {
                            length: n,
                            priority,
                        }))
                    } else {
                        Err(Error::BadAddress)
                    }
                }
            }
        };
        prop_assert_eq!(&result, &expected, "mqueue_receive");
        match result {
            Ok(Outcome::Done(got)) => {
                let (index, ..) = best.unwrap();
                let State::Queue { messages, .. } = self.state(cap.object) else {
                    unreachable!()
                };
                let (_, _, bytes) = messages.remove(index);
                self.moved += got.length as u64;
                prop_assert_eq!(
                    self.machine.read(me, into.address(), got.length).unwrap(),
                    bytes
                );
            }
            Ok(Outcome::Blocked) => self.park(
                me,
                Park::QueueReceive {
                    object: cap.object,
                    into,
                },
            ),
            Err(_) => {}
        }
        self.wakes(Some(cap.object))
    }

    // ------------------------------------------------------------ mailboxes

    fn mailbox_send(
        &mut self,
        me: ProcessId,
        handle: Handle,
        length: usize,
        kind: Buffer,
        transfers: &[Handle],
    ) -> Result<(), TestCaseError> {
        let payload = self.slice(kind, SEND_AT, length);
        let bytes = self.fill(me, payload);
        let source_valid = self.valid(me, payload, false);
        let result = self.ipc.mailbox_send(
            me,
            handle,
            payload,
            transfers,
            Blocking::NonBlocking,
            &mut self.machine,
        );
        let wakes = self.machine.take_wakes();
        let cap = resolve!(
            self,
            "mailbox_send",
            result,
            me,
            handle,
            Some(Kind::Mailbox),
            Rights::WRITE
        );
        let mailbox = cap.object;
        // The checks of `deliver`, in its order.
        let receivers = self.count_caps(mailbox, Rights::READ);
        let mut expected: Option<Expect<Outcome<()>>> = None;
        if receivers == 0 {
            expected = Some(Expect::Is(Err(Error::PeerClosed)));
        } else if length > PAYLOAD {
            expected = Some(Expect::Is(Err(Error::MessageTooLarge { limit: PAYLOAD })));
        }
        let mut caps = Vec::new();
        if expected.is_none() {
            for (i, t) in transfers.iter().enumerate() {
                if transfers[..i].contains(t) {
                    expected = Some(Expect::Is(Err(Error::InvalidArgument)));
                    break;
                }
                match self.resolve(me, *t, None, Rights::TRANSFER) {
                    Ok(cap) => caps.push(cap),
                    Err(error) => {
                        expected = Some(error.failure());
                        break;
                    }
                }
            }
        }
        if let Some(expected) = expected {
            prop_assert!(wakes.is_empty());
            return check("mailbox_send", &result, &expected);
        }
        // A receiver waiting?
        let waiting = self.oldest_parked(
            |p| matches!(p, Park::MailboxReceive { object, .. } if *object == mailbox),
        );
        let mut direct = None;
        let mut expected_wakes = Vec::new();
        if let Some((
            receiver,
            Park::MailboxReceive {
                at, length: room, ..
            },
        )) = waiting
        {
            let fits = room >= length && self.free_handles(receiver) >= caps.len();
            let destination = self.machine.slice(at, room).prefix(length);
            if fits && source_valid && self.valid(receiver, destination, true) {
                direct = Some((receiver, at));
            } else if fits && !source_valid {
                // The sender's own buffer faulted: it alone gets the error, and the
                // waiting receiver is not woken for nothing.
            } else {
                // Every waiting receiver retries, oldest first; the message is buffered.
                let mut parked: Vec<(u64, ProcessId)> = self
                    .processes
                    .iter()
                    .flatten()
                    .filter_map(|p| match p.parked {
                        Some((sequence, Park::MailboxReceive { object, .. }))
                            if object == mailbox =>
                        {
                            Some((sequence, p.pid))
                        }
                        _ => None,
                    })
                    .collect();
                parked.sort();
                expected_wakes.extend(parked.into_iter().map(|(_, pid)| (pid, Wakeup::Retry)));
            }
        }
        let State::Mailbox(messages) = &self.objects[mailbox].state else {
            unreachable!()
        };
        if direct.is_none() {
            let expected = if messages.len() == MAILBOX_DEPTH {
                Err(Error::WouldBlock)
            } else if !source_valid {
                Err(Error::BadAddress)
            } else {
                Ok(Outcome::Done(()))
            };
            prop_assert_eq!(&result, &expected, "buffered mailbox_send");
        } else {
            prop_assert_eq!(&result, &Ok(Outcome::Done(())), "direct mailbox_send");
        }
        // Apply: whoever was woken to retry is no longer parked.
        for (pid, wakeup) in &expected_wakes {
            prop_assert!(
                wakes.contains(&(*pid, wakeup.clone())),
                "{:?} not woken",
                pid
            );
            self.process(*pid).parked = None;
        }
        if result.is_err() {
            prop_assert_eq!(wakes.len(), expected_wakes.len(), "{:?}", wakes);
            return Ok(());
        }
        for t in transfers {
            self.process(me).handles.remove(t);
        }
        match direct {
            Some((receiver, at)) => {
                prop_assert_eq!(wakes.len(), 1, "{:?}", wakes);
                let (pid, Wakeup::Completed(Completion::Received(received))) = &wakes[0] else {
                    prop_assert!(false, "expected a completed receive, got {:?}", wakes);
                    unreachable!()
                };
                prop_assert_eq!(*pid, receiver);
                prop_assert_eq!(received.length, length);
                prop_assert_eq!(received.badge, 0);
                prop_assert_eq!(received.reply, None);
                prop_assert_eq!(received.handles.len(), caps.len());
                prop_assert_eq!(self.machine.read(receiver, at, length).unwrap(), bytes);
                self.moved += length as u64;
                self.process(receiver).parked = None;
                for (handle, cap) in received.handles.iter().zip(caps) {
                    self.install(receiver, *handle, cap)?;
                }
            }
            None => {
                // Besides the receivers told to retry, sending a mailbox's last reachable
                // receive handle into an unreceivable queue discards its messages, and
                // the handles they carried are released like any other (mailbox.rs,
                // "Closing"): those wake-ups are checked after the model collects.
                let (ours, released): (Vec<_>, Vec<_>) = wakes
                    .iter()
                    .cloned()
                    .partition(|wake| expected_wakes.contains(wake));
                prop_assert_eq!(ours.len(), expected_wakes.len(), "{:?}", wakes);
                self.moved += length as u64;
                let State::Mailbox(messages) = self.state(mailbox) else {
                    unreachable!()
                };
                messages.push_back(Message { bytes, caps });
                self.collect();
                return self.check_wakes(released, None);
            }
        }
        self.collect();
        Ok(())
    }

    fn mailbox_receive(
        &mut self,
        me: ProcessId,
        handle: Handle,
        length: usize,
        kind: Buffer,
        block: bool,
    ) -> Result<(), TestCaseError> {
        let into = self.slice(kind, RECEIVE_AT, length);
        let blocking = if block {
            Blocking::Forever
        } else {
            Blocking::NonBlocking
        };
        let result = self
            .ipc
            .mailbox_receive(me, handle, into, blocking, &mut self.machine);
        let cap = resolve!(
            self,
            "mailbox_receive",
            result,
            me,
            handle,
            Some(Kind::Mailbox),
            Rights::READ
        );
        let free = self.free_handles(me);
        let State::Mailbox(messages) = &self.objects[cap.object].state else {
            unreachable!()
        };
        let Some(front) = messages.front() else {
            let expected = if block {
                Ok(Outcome::Blocked)
            } else {
                Err(Error::WouldBlock)
            };
            prop_assert_eq!(&result, &expected, "mailbox_receive from an empty mailbox");
            if block {
                let (object, at) = (cap.object, into.address());
                self.park(me, Park::MailboxReceive { object, at, length });
            }
            return self.wakes(None);
        };
        let size = front.bytes.len();
        let expected = if length < size {
            Err(Error::BufferTooSmall { needed: size })
        } else if free < front.caps.len() {
            Err(Error::OutOfHandles)
        } else if !self.valid(me, into.prefix(size), true) {
            Err(Error::BadAddress)
        } else {
            Ok(())
        };
        prop_assert_eq!(
            result.as_ref().map(|_| ()).map_err(|e| *e),
            expected,
            "mailbox_receive"
        );
        if let Ok(outcome) = result {
            let Outcome::Done(received) = outcome else {
                unreachable!()
            };
            let State::Mailbox(messages) = self.state(cap.object) else {
                unreachable!()
            };
            let message = messages.pop_front().unwrap();
            prop_assert_eq!(received.length, message.bytes.len());
            prop_assert_eq!(received.handles.len(), message.caps.len());
            prop_assert_eq!(received.reply, None);
            let got = self
                .machine
                .read(me, into.address(), received.length)
                .unwrap();
            prop_assert_eq!(got, message.bytes);
            self.moved += received.length as u64;
            for (handle, cap) in received.handles.iter().zip(message.caps) {
                self.install(me, *handle, cap)?;
            }
        }
        self.wakes(None)
    }

    // ------------------------------------------------------------ semaphores, notifications

    fn semaphore_post(&mut self, me: ProcessId, handle: Handle) -> Result<(), TestCaseError> {
        let result = self.ipc.semaphore_post(me, handle, &mut self.machine);
        let wakes = self.machine.take_wakes();
        let cap = resolve!(
            self,
            "semaphore_post",
            result,
            me,
            handle,
            Some(Kind::Semaphore),
            Rights::SIGNAL
        );
        prop_assert_eq!(result, Ok(()));
        self.model_post(cap.object, wakes)
    }

    /// A post on semaphore `object` in the model: the unit goes to the longest
    /// waiter (whose wake-up must be all of `wakes`), or onto the count.
    fn model_post(
        &mut self,
        object: usize,
        wakes: Vec<(ProcessId, Wakeup)>,
    ) -> Result<(), TestCaseError> {
        match self.oldest_parked(|p| matches!(p, Park::Semaphore(o) if *o == object)) {
            Some((waiter, _)) => {
                prop_assert_eq!(
                    wakes,
                    vec![(waiter, Wakeup::Completed(Completion::Acquired))]
                );
                self.process(waiter).parked = None;
            }
            None => {
                prop_assert!(wakes.is_empty());
                let State::Semaphore(count) = self.state(object) else {
                    unreachable!()
                };
                *count += 1;
            }
        }
        Ok(())
    }

    /// A wait by `me` on semaphore `object` in the model, checked against `result`.
    fn model_wait(
        &mut self,
        what: &str,
        me: ProcessId,
        object: usize,
        block: bool,
        result: &Result<Outcome<()>, Error>,
    ) -> Result<(), TestCaseError> {
        let State::Semaphore(count) = self.state(object) else {
            unreachable!()
        };
        let expected = if *count > 0 {
            *count -= 1;
            Ok(Outcome::Done(()))
        } else if block {
            Ok(Outcome::Blocked)
        } else {
            Err(Error::WouldBlock)
        };
        prop_assert_eq!(result, &expected, "{}", what);
        if *result == Ok(Outcome::Blocked) {
            self.park(me, Park::Semaphore(object));
        }
        Ok(())
    }

    fn semaphore_wait(
        &mut self,
        me: ProcessId,
        handle: Handle,
        block: bool,
    ) -> Result<(), TestCaseError> {
        let blocking = if block {
            Blocking::Forever
        } else {
            Blocking::NonBlocking
        };
        let result = self
            .ipc
            .semaphore_wait(me, handle, blocking, &mut self.machine);
        let cap = resolve!(
            self,
            "semaphore_wait",
            result,
            me,
            handle,
            Some(Kind::Semaphore),
            Rights::WAIT
        );
        self.model_wait("semaphore_wait", me, cap.object, block, &result)?;
        self.wakes(None)
    }

    /// The post half as `semaphore_post`, then the wait half as `semaphore_wait`; both
    /// handles are checked (the wait's first) before anything happens.
    fn semaphore_post_wait(
        &mut self,
        me: ProcessId,
        post: Handle,
        wait: Handle,
        block: bool,
    ) -> Result<(), TestCaseError> {
        let blocking = if block {
            Blocking::Forever
        } else {
            Blocking::NonBlocking
        };
        let result = self
            .ipc
            .semaphore_post_wait(me, post, wait, blocking, &mut self.machine);
        let wakes = self.machine.take_wakes();
        let waited = resolve!(
            self,
            "semaphore_post_wait (wait handle)",
            result,
            me,
            wait,
            Some(Kind::Semaphore),
            Rights::WAIT
        );
        let posted = resolve!(
            self,
            "semaphore_post_wait (post handle)",
            result,
            me,
            post,
            Some(Kind::Semaphore),
            Rights::SIGNAL
        );
        self.model_post(posted.object, wakes)?;
        self.model_wait("semaphore_post_wait", me, waited.object, block, &result)
    }

    fn signal(&mut self, me: ProcessId, handle: Handle, bits: u64) -> Result<(), TestCaseError> {
        let result = self
            .ipc
            .notification_signal(me, handle, bits, &mut self.machine);
        let wakes = self.machine.take_wakes();
        let cap = resolve!(
            self,
            "notification_signal",
            result,
            me,
            handle,
            Some(Kind::Notification),
            Rights::SIGNAL
        );
        prop_assert_eq!(result, Ok(()));
        let object = cap.object;
        let waiter = self.oldest_parked(|p| matches!(p, Park::Notification(o) if *o == object));
        let State::Notification(pending) = self.state(object) else {
            unreachable!()
        };
        *pending |= bits;
        match waiter {
            Some((waiter, _)) if *pending != 0 => {
                let all = std::mem::take(pending);
                prop_assert_eq!(
                    wakes,
                    vec![(waiter, Wakeup::Completed(Completion::Notified(all)))]
                );
                self.process(waiter).parked = None;
            }
            _ => prop_assert!(wakes.is_empty()),
        }
        Ok(())
    }

    fn notification_wait(
        &mut self,
        me: ProcessId,
        handle: Handle,
        block: bool,
    ) -> Result<(), TestCaseError> {
        let blocking = if block {
            Blocking::Forever
        } else {
            Blocking::NonBlocking
        };
        let result = self
            .ipc
            .notification_wait(me, handle, blocking, &mut self.machine);
        let cap = resolve!(
            self,
            "notification_wait",
            result,
            me,
            handle,
            Some(Kind::Notification),
            Rights::WAIT
        );
        let State::Notification(pending) = self.state(cap.object) else {
            unreachable!()
        };
        let expected = if *pending != 0 {
            Ok(Outcome::Done(std::mem::take(pending)))
        } else if block {
            Ok(Outcome::Blocked)
        } else {
            Err(Error::WouldBlock)
        };
        prop_assert_eq!(&result, &expected, "notification_wait");
        if result == Ok(Outcome::Blocked) {
            self.park(me, Park::Notification(cap.object));
        }
        self.wakes(None)
    }

    // ------------------------------------------------------------ regions and loans

    fn map(&mut self, me: ProcessId, handle: Handle, write: bool) -> Result<(), TestCaseError> {
        let (access, needed) = if write {
            (Access::ReadWrite, Rights::MAP | Rights::WRITE)
        } else {
            (Access::ReadOnly, Rights::MAP)
        };
        let result = self
            .ipc
            .region_map(me, handle, None, access, &mut self.machine);
        let cap = resolve!(
            self,
            "region_map",
            result,
            me,
            handle,
            Some(Kind::Region),
            needed
        );
        let mappings: usize = self
            .processes
            .iter()
            .flatten()
            .map(|p| p.mappings.len())
            .sum();
        if mappings == MAX_MAPPINGS {
            prop_assert_eq!(result, Err(Error::OutOfMappings));
            return Ok(());
        }
        let address = result.unwrap();
        let State::Region(pages) = self.objects[cap.object].state else {
            unreachable!()
        };
        // Every mapping of a region shows the same frames.
        let other = self
            .processes
            .iter()
            .flatten()
            .flat_map(|p| p.mappings.iter().map(move |m| (p.pid, *m)))
            .find(|(_, m)| m.1 == cap.object);
        for page in 0..pages as u64 {
            let (frame, got) = self
                .machine
                .translate(me, address + page * PAGE_SIZE as u64)
                .unwrap();
            prop_assert_eq!(got, access);
            if let Some((pid, (at, ..))) = other {
                let (theirs, _) = self
                    .machine
                    .translate(pid, at + page * PAGE_SIZE as u64)
                    .unwrap();
                prop_assert_eq!(frame, theirs);
            }
        }
        self.process(me).mappings.push((address, cap.object, pages));
        Ok(())
    }

    fn unmap(&mut self, me: ProcessId, index: usize) -> Result<(), TestCaseError> {
        let process = self.process(me);
        let mapping = process.mappings.get(index).copied();
        let address = mapping.map_or(0x7777_0000, |m| m.0);
        let result = self.ipc.region_unmap(me, address, &mut self.machine);
        match mapping {
            None => prop_assert_eq!(result, Err(Error::NotMapped)),
            Some((address, _, pages)) => {
                prop_assert_eq!(result, Ok(()));
                self.process(me).mappings.remove(index);
                for page in 0..pages as u64 {
                    prop_assert!(
                        self.machine
                            .translate(me, address + page * PAGE_SIZE as u64)
                            .is_none()
                    );
                }
                self.collect();
            }
        }
        Ok(())
    }

    fn loan(&mut self, me: ProcessId, first: usize, pages: usize) -> Result<(), TestCaseError> {
        let pages = pages.min(LOANABLE.end - first);
        let address = PRIVATE_BASE + (first * PAGE_SIZE) as u64;
        let result = self.ipc.pages_loan(me, address, pages, &mut self.machine);
        let loaned = (first..first + pages).any(|p| self.process(me).loaned.contains(&p));
        let expected = if self.free_handles(me) == 0 {
            Err(Error::OutOfHandles)
        } else if loaned {
            Err(Error::NotMapped)
        } else if self.live_objects(Kind::Region) == OBJECTS {
            Err(Error::OutOfObjects)
        } else {
            Ok(())
        };
        prop_assert_eq!(result.map(|_| ()), expected, "pages_loan");
        if let Ok(handle) = result {
            self.process(me).loaned.extend(first..first + pages);
            let object = self.new_object(State::Region(pages));
            self.install(
                me,
                handle,
                Cap {
                    object,
                    rights: REGION_RIGHTS,
                },
            )?;
        }
        Ok(())
    }

    // ------------------------------------------------------------ wake-ups and invariants

    /// Takes the wake-ups of the last call. Only "retry" wake-ups (and failures) can come
    /// from calls without a dedicated handler; each must name a parked process whose
    /// condition changed. `queue` is the queue the call worked on, whose waiters may be
    /// told to retry.
    fn wakes(&mut self, queue: Option<usize>) -> Result<(), TestCaseError> {
        let wakes = self.machine.take_wakes();
        self.check_wakes(wakes, queue)
    }

    /// Checks wake-ups that releasing handles may cause (a pipe losing its last writer,
    /// a queue...), and unparks the woken.
    fn check_wakes(
        &mut self,
        wakes: Vec<(ProcessId, Wakeup)>,
        queue: Option<usize>,
    ) -> Result<(), TestCaseError> {
        for (pid, wakeup) in wakes {
            let Some((_, park)) = self.processes[pid.slot()]
                .as_ref()
                .filter(|p| p.pid == pid)
                .and_then(|p| p.parked)
            else {
                prop_assert!(false, "woke {:?}, which is not parked ({:?})", pid, wakeup);
                unreachable!()
            };
            prop_assert_eq!(&wakeup, &Wakeup::Retry, "{:?} woken from {:?}", pid, park);
            match park {
                Park::PipeRead { object, .. } => {
                    let writers = self.count_caps(object, Rights::WRITE);
                    let State::Pipe(bytes) = &self.objects[object].state else {
                        unreachable!()
                    };
                    prop_assert!(!bytes.is_empty() || writers == 0, "pointless pipe wake-up");
                }
                Park::QueueReceive { object, .. } => {
                    prop_assert_eq!(Some(object), queue, "queue wake-up from elsewhere");
                }
                other => prop_assert!(false, "{:?} told to retry", other),
            }
            self.process(pid).parked = None;
        }
        Ok(())
    }

    /// The checks after every step.
    fn check_invariants(&self) -> Result<(), TestCaseError> {
        let usage = self.ipc.usage();
        let pending = self.processes.iter().flatten().any(|p| {
            self.ipc
                .signal_pending(p.pid)
                .is_ok_and(|set| !set.is_empty())
        });
        prop_assert_eq!(self.ipc.signal_attention(), pending, "signal_attention");
        let live = |kind| self.live_objects(kind);
        let processes: Vec<&Process> = self.processes.iter().flatten().collect();
        let in_flight = self
            .objects
            .iter()
            .filter(|o| o.live)
            .map(|o| match &o.state {
                State::Mailbox(m) => (m.len(), m.iter().map(|m| m.caps.len()).sum::<usize>()),
                State::Queue { messages, .. } => (messages.len(), 0),
                _ => (0, 0),
            });
        let (queued, carried) = in_flight.fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
        let regions = self
            .objects
            .iter()
            .filter(|o| o.live)
            .filter_map(|o| match o.state {
                State::Region(pages) => Some(pages),
                _ => None,
            });
        let mappings = processes.iter().flat_map(|p| p.mappings.iter());
        let expected = Usage {
            processes: processes.len(),
            handles: processes.iter().map(|p| p.handles.len()).sum(),
            mailboxes: live(Kind::Mailbox),
            pipes: live(Kind::Pipe),
            fifos: 0,
            message_queues: live(Kind::Queue),
            regions: live(Kind::Region),
            semaphores: live(Kind::Semaphore),
            notifications: live(Kind::Notification),
            frames_held: regions.sum(),
            mappings: mappings.clone().count(),
            mapped_pages: mappings.map(|m| m.2).sum(),
            waiters: processes.iter().filter(|p| p.parked.is_some()).count(),
            queued_messages: queued,
            handles_in_flight: carried,
        };
        prop_assert_eq!(usage, expected, "usage");
        prop_assert_eq!(
            self.ipc.ledger().global().total_bytes(),
            self.moved,
            "ledger"
        );
        let per_process: u64 = processes
            .iter()
            .filter_map(|p| self.ipc.ledger().process(p.pid))
            .map(|c| c.total_bytes())
            .sum();
        prop_assert!(per_process <= self.moved);
        // Independently of every length kipc reports: the bytes it counted as delivered
        // to user memory are exactly the bytes the machine saw written there.
        let ledger = self.ipc.ledger().global();
        let delivered: u64 = Mechanism::ALL
            .iter()
            .map(|&m| {
                ledger.copies(m, Direction::KernelToUser).bytes
                    + ledger.copies(m, Direction::UserToUser).bytes
            })
            .sum();
        prop_assert_eq!(
            delivered,
            self.machine.bytes_written_to_users,
            "ledger vs machine"
        );
        // Live handles are exactly the model's, and each names what the model says.
        for process in &processes {
            prop_assert_eq!(self.ipc.is_waiting(process.pid), process.parked.is_some());
            for (handle, cap) in &process.handles {
                let info = self.ipc.handle_info(process.pid, *handle).unwrap();
                prop_assert_eq!(info.rights, cap.rights);
                let kind = match self.objects[cap.object].kind() {
                    Kind::Mailbox => ObjectKind::Mailbox,
                    Kind::Pipe => ObjectKind::Pipe,
                    Kind::Queue => ObjectKind::MessageQueue,
                    Kind::Region => ObjectKind::Region,
                    Kind::Semaphore => ObjectKind::Semaphore,
                    Kind::Notification => ObjectKind::Notification,
                };
                prop_assert_eq!(info.kind, kind);
            }
            // No waiter is left parked although it could proceed.
            if let Some((_, park)) = process.parked {
                let stuck = match park {
                    Park::PipeRead { object: o, .. } => match &self.objects[o].state {
                        State::Pipe(b) => !b.is_empty() || self.count_caps(o, Rights::WRITE) == 0,
                        _ => true,
                    },
                    Park::MailboxReceive { object, .. } => {
                        matches!(&self.objects[object].state, State::Mailbox(m) if !m.is_empty())
                    }
                    Park::QueueReceive { object: o, .. } => {
                        matches!(&self.objects[o].state, State::Queue { messages, .. } if !messages.is_empty())
                    }
                    Park::Semaphore(o) => {
                        matches!(self.objects[o].state, State::Semaphore(c) if c > 0)
                    }
                    Park::Notification(o) => {
                        matches!(self.objects[o].state, State::Notification(b) if b != 0)
                    }
                };
                prop_assert!(
                    !stuck,
                    "{:?} stays parked on {:?} although it could proceed",
                    process.pid,
                    park
                );
            }
        }
        Ok(())
    }

    /// Kills everything, drops the queue names, and checks that nothing is left.
    fn tear_down(&mut self) -> Result<(), TestCaseError> {
        for slot in 0..PROCESSES {
            if self.processes[slot].is_some() {
                self.exit_slot(slot)?;
                self.check_invariants()?;
            }
        }
        let janitor = self.ipc.process_create().unwrap();
        for name in QUEUE_NAMES {
            let _ = self.ipc.mqueue_unlink(janitor, name);
        }
        self.ipc.process_exit(janitor, &mut self.machine).unwrap();
        for object in self.objects.iter_mut() {
            if matches!(object.state, State::Queue { .. }) {
                object.live = false; // unlinked by the janitor, and no handle is left
            }
        }
        self.collect();
        let usage = self.ipc.usage();
        prop_assert_eq!(self.machine.total_mapped_pages(), 0);
        // Nothing outlives its processes, not even mailbox cycles (mailbox.rs, "Closing").
        prop_assert!(
            !self.objects.iter().any(|o| o.live),
            "the model still holds objects: {:?}",
            usage
        );
        prop_assert_eq!(usage, Usage::default());
        prop_assert_eq!(self.machine.free_frames(), FRAMES, "every frame is back");
        Ok(())
    }
}

/// Three processes and one object of each kind, some shared, before the random part.
fn prelude() -> Vec<Op> {
    vec![
        Op::Spawn,
        Op::Spawn,
        Op::Spawn,
        Op::Create(0, 1, 0),                    // a pipe in 0
        Op::Create(1, 0, 0),                    // a mailbox in 1
        Op::Create(2, 2, 0b0111_0110),          // queue "q0" in 2
        Op::Create(0, 4, 1),                    // a semaphore in 0
        Op::Create(1, 5, 0),                    // a notification in 1
        Op::Create(2, 3, 1),                    // a 2-page region in 2
        Op::Grant(0, Select::Live(0), 1, 0x7f), // 0's first handle to 1
        Op::Grant(1, Select::Live(0), 0, 0x7f), // 1's first handle to 0
        Op::Grant(2, Select::Live(1), 0, 0x7f), // 2's second handle to 0
        Op::Grant(0, Select::Live(2), 2, 0x7f), // 0's third handle to 2
    ]
}

proptest! {
    #![proptest_config(Config {
        cases: 400,
        failure_persistence: None,
        ..Config::default()
    })]

    #[test]
    fn random_system_calls_keep_every_invariant(ops in prop::collection::vec(op(), 1..120)) {
        let mut fuzz = Fuzz::new();
        for op in prelude().iter().chain(&ops) {
            fuzz.run(op)?;
            fuzz.check_invariants()?;
        }
        fuzz.tear_down()?;
    }
}

/// A sequence the fuzzer once shrank to: a pipe end travels in a message of a
/// mailbox that becomes unreceivable, so collecting the mailbox releases the end
/// and wakes the pipe's parked reader.
#[test]
fn collecting_a_mailbox_wakes_the_readers_of_pipes_it_carried() {
    let ops = vec![
        Op::Close(0, Select::Issued(2739935760468461925)),
        Op::Create(0, 0, 0),
        Op::MailboxSend(
            2,
            Select::Live(0),
            0,
            Buffer::Good,
            vec![Select::Issued(7480924746779935332)],
        ),
        Op::PipeRead(0, Select::Live(0), 1, Buffer::Good, true),
        Op::MailboxSend(0, Select::Live(0), 0, Buffer::Good, vec![Select::Live(5)]),
        Op::Create(0, 3, 0),
        Op::MailboxSend(
            0,
            Select::Live(0),
            0,
            Buffer::Good,
            vec![Select::Live(4), Select::Live(3)],
        ),
    ];
    let mut fuzz = Fuzz::new();
    for op in prelude().iter().chain(&ops) {
        fuzz.run(op).unwrap();
        fuzz.check_invariants().unwrap();
    }
    fuzz.tear_down().unwrap();
}
