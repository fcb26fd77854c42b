//! Pipes: one-way byte streams through a fixed ring buffer.
//!
//! A pipe is a ring of `PIPE_CAPACITY` bytes (a power of two) with two *free-running*
//! counters, as in xv6: `read` counts every byte ever read, `written` every byte ever
//! written. They only grow (wrapping), so `written - read` is the number of buffered bytes,
//! the pipe is empty when they are equal and full when `written == read + CAPACITY`; no
//! byte is wasted to tell full from empty. A counter's position in the ring is the counter
//! modulo the capacity.
//!
//! Copies move whole runs: the readable (or writable) part of the ring is at most two
//! contiguous slices — up to the end of the array, then from its start — and each is one
//! call to the host's user-memory trait, never a byte at a time.
//!
//! Semantics (POSIX-like):
//!
//! * `read` returns what is buffered, up to the buffer length. Empty with writers left: it
//!   blocks (or `WouldBlock`). Empty with no writer left: it returns 0, end of file.
//! * `write` needs a reader ([`Error::BrokenPipe`] otherwise). A write of at most
//!   [`crate::Limits::PIPE_ATOMIC`] bytes (default [`crate::PIPE_ATOMIC`]) is atomic: it waits until all of it fits, so it is never
//!   interleaved with another writer's bytes. A blocking write of n bytes delivers n: what
//!   does not fit parks with the writer's buffer recorded, and each read that makes room
//!   carries it on, until it ends with `Completion::Written(n)` (short only if it cannot
//!   go on: deadline, cancelled wait, last reader gone, fault). A non-blocking write
//!   returns what fitted (or `WouldBlock`).
//! * A reader blocked on an empty pipe waits with its buffer recorded: the next write
//!   fills it and completes the read (`Completion::Read(n)`, oldest reader first), so
//!   a woken reader makes no second system call. If the last writer leaves instead,
//!   readers retry into end of file. Parked writers are carried on when space frees,
//!   and end (with what they moved, or retrying into `BrokenPipe`) when the last reader
//!   leaves.
//!
//! A pipe's read handle has [`Rights::READ`], its write handle [`Rights::WRITE`]. FIFOs
//! ([`crate::fifo`]) are pipes reached by name; their copies are counted as
//! [`Mechanism::Fifo`].

use core::ops::Range;

use crate::accounting::Mechanism;
use crate::error::Error;
use crate::handle::Handle;
use crate::host::{Host, ProcessId};
use crate::kernel::{Ipc, WriteProgress, write_ends};
use crate::object::{Capability, Key, Object, ObjectKind, ObjectRef};
use crate::rights::Rights;
use crate::umem::UserSlice;
use crate::wait::{Blocking, Completion, Outcome, WaitOn, Wakeup};

/// The ring buffer and its bookkeeping.
pub(crate) struct Pipe<const CAPACITY: usize> {
    ring: [u8; CAPACITY],
    read: usize,
    written: usize,
    readers: u32,
    writers: u32,
    pub(crate) mechanism: Mechanism,
}

impl<const CAPACITY: usize> Object for Pipe<CAPACITY> {
    const EMPTY: Self = Pipe {
        ring: [0; CAPACITY],
        read: 0,
        written: 0,
        readers: 0,
        writers: 0,
        mechanism: Mechanism::Pipe,
    };
}

impl<const CAPACITY: usize> Pipe<CAPACITY> {
    pub(crate) fn reset(&mut self, mechanism: Mechanism) {
        const {
            assert!(
                CAPACITY.is_power_of_two(),
                "pipe capacity must be a power of two"
            )
        };
        self.read = 0;
        self.written = 0;
        self.readers = 0;
        self.writers = 0;
        self.mechanism = mechanism;
    }

    /// Bytes buffered.
    pub(crate) fn len(&self) -> usize {
        self.written.wrapping_sub(self.read)
    }

    /// Bytes of free space.
    fn space(&self) -> usize {
        CAPACITY - self.len()
    }

    pub(crate) fn readers(&self) -> u32 {
        self.readers
    }

    pub(crate) fn writers(&self) -> u32 {
        self.writers
    }

    /// The ring positions of `count` bytes starting at free-running counter `from`, as at
    /// most two runs (before and after the wrap).
    fn runs(from: usize, count: usize) -> (Range<usize>, Range<usize>) {
        // LAB pipe: begin
        let start = from % CAPACITY;
        let first = count.min(CAPACITY - start);
        (start..start + first, 0..count - first)
        // LAB pipe: stub
        // let _ = (from, count);
        // todo!("LAB pipe, step 1: split `count` bytes from counter `from` into at most two runs of the ring")
        // LAB pipe: end
    }
}

/// The largest write that is guaranteed not to interleave, for a pipe of `capacity` bytes.
const fn atomic_limit(atomic: usize, capacity: usize) -> usize {
    if atomic < capacity { atomic } else { capacity }
}

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
    /// Creates a pipe and returns `(read handle, write handle)`. The read handle has READ,
    /// the write handle WRITE; both have TRANSFER and DUPLICATE.
    ///
    /// # Example
    ///
    /// ```
    /// # use kipc::*;
    /// # #[allow(unused)]
    /// # fn example(ipc: &mut DefaultIpc, host: &mut impl Host, caller: ProcessId, peer: ProcessId, handle: Handle, buffer: UserSlice) -> Result<(), Error> {
    /// let (read, write) = ipc.pipe_create(caller)?;
    /// let read_end = ipc.handle_grant(caller, read, peer, Rights::READ)?;
    /// ipc.handle_close(caller, read, host)?;
    /// # Ok(()) }
    /// ```
    pub fn pipe_create(&mut self, caller: ProcessId) -> Result<(Handle, Handle), Error> {
        self.reserve_handles(caller, 2)?;
        let (key, pipe) = self.pipes.allocate(caller, L::QUOTAS.objects_per_kind)?;
        pipe.reset(Mechanism::Pipe);
        let read = self.install_new(caller, pipe_capability(key, Rights::READ))?;
        let write = self.install_new(caller, pipe_capability(key, Rights::WRITE))?;
        Ok((read, write))
    }

    /// Reads up to `buffer.len()` bytes. Needs READ. Returns the count; 0 means end of file
    /// (or an empty buffer). An empty pipe with writers blocks per `blocking`, with the
    /// buffer recorded: the next write fills it and completes the read
    /// (`Wakeup::Completed(Completion::Read(n))`, the same copies a read makes); if the
    /// last writer leaves instead, the reader retries into end of file. A buffer that
    /// faults fails with [`Error::BadAddress`] (the bytes stay in the pipe), unless a
    /// first part was already delivered: then that part's count is returned (a short
    /// read).
    ///
    /// # Example
    ///
    /// ```
    /// # use kipc::*;
    /// # #[allow(unused)]
    /// # fn example(ipc: &mut DefaultIpc, host: &mut impl Host, caller: ProcessId, peer: ProcessId, handle: Handle, buffer: UserSlice) -> Result<(), Error> {
    /// match ipc.pipe_read(caller, handle, buffer, Blocking::Forever, host)? {
    ///     Outcome::Done(0) => {}      // end of file: no writer left
    ///     Outcome::Done(n) => {}      // n bytes are in the buffer
    ///     Outcome::Blocked => {}      // empty: park until a write fills the buffer
    /// }
    /// # Ok(()) }
    /// ```
    pub fn pipe_read<H: Host>(
        &mut self,
        caller: ProcessId,
        handle: Handle,
        buffer: UserSlice,
        blocking: Blocking,
        host: &mut H,
    ) -> Result<Outcome<usize>, Error> {
        let key = self.pipe_key(caller, handle, Rights::READ)?;
        let pipe = self.pipes.get_mut(key).ok_or(Error::BrokenPipe)?;
        if buffer.is_empty() {
            return Ok(Outcome::Done(0));
        }
        if pipe.len() == 0
            && self
                .oldest_waiter(|on| *on == WaitOn::PipeWrite(key))
                .is_some()
        {
            // Parked readers took everything while a writer still has data for the pipe:
            // let it go on before this reader decides the pipe is empty.
            self.serve_writers(key, host);
        }
        let pipe = self.pipes.get_mut(key).ok_or(Error::BrokenPipe)?;
        if pipe.len() == 0 {
            // LAB pipe: begin
            if pipe.writers == 0 {
                return Ok(Outcome::Done(0));
            }
            let wait = WaitOn::PipeRead { pipe: key, buffer };
            return self.block(caller, wait, blocking, host);
            // LAB pipe: stub
            // let _ = blocking;
            // todo!("LAB pipe, step 2: an empty pipe is end of file once no writer is left; otherwise the reader waits")
            // LAB pipe: end
        }
        let count = self.read_out(caller, key, buffer, host)?;
        if self
            .oldest_waiter(|on| *on == WaitOn::PipeWrite(key))
            .is_some()
        {
            self.serve_writers(key, host);
        }
        Ok(Outcome::Done(count))
    }

    /// Writes `data`. Needs WRITE. A blocking write delivers all of `data.len()` (POSIX):
    /// it moves what fits and, if that is not all, parks (`Outcome::Blocked`) with its
    /// data recorded; readers making room carry it on, and it ends with
    /// `Wakeup::Completed(Completion::Written(n))`, `n` being all of it — or, if it
    /// could not go on (deadline passed, wait cancelled, last reader gone, its data
    /// faulted part-way), the bytes it had moved. A non-blocking write returns what
    /// fitted (`WouldBlock` if nothing). Writes up to [`crate::Limits::PIPE_ATOMIC`]
    /// bytes are all or nothing, never interleaved. Without a reader:
    /// [`Error::BrokenPipe`]; a buffer that faults before anything moved:
    /// [`Error::BadAddress`]. Zero bytes: `Done(0)`, reader or not.
    ///
    /// # Example
    ///
    /// ```
    /// # use kipc::*;
    /// # #[allow(unused)]
    /// # fn example(ipc: &mut DefaultIpc, host: &mut impl Host, caller: ProcessId, peer: ProcessId, handle: Handle, buffer: UserSlice) -> Result<(), Error> {
    /// let outcome = ipc.pipe_write(caller, handle, buffer, Blocking::NonBlocking, host);
    /// if outcome == Err(Error::BrokenPipe) {
    ///     // no reader left
    /// }
    /// # Ok(()) }
    /// ```
    pub fn pipe_write<H: Host>(
        &mut self,
        caller: ProcessId,
        handle: Handle,
        data: UserSlice,
        blocking: Blocking,
        host: &mut H,
    ) -> Result<Outcome<usize>, Error> {
        let key = self.pipe_key(caller, handle, Rights::WRITE)?;
        // Zero bytes: 0, reader or not (as Linux does).
        if data.is_empty() {
            return Ok(Outcome::Done(0));
        }
        let pipe = self.pipes.get_mut(key).ok_or(Error::BrokenPipe)?;
        if pipe.readers == 0 {
            // LAB pipe: begin
            let _ = self.signal_mark(caller, crate::Signal::SIGPIPE);
            return Err(Error::BrokenPipe);
            // LAB pipe: stub
            // todo!("LAB pipe, step 3: a write with no reader left fails with BrokenPipe and raises SIGPIPE")
            // LAB pipe: end
        }
        let minimum = if data.len() <= atomic_limit(L::PIPE_ATOMIC, PIPE_CAPACITY) {
            data.len()
        } else {
            1
        };
        if pipe.space() < minimum {
            crate::umem::refuse_doomed_wait(host, caller, data, blocking)?;
            return self.write_waits(caller, key, data, 0, blocking, host);
        }
        let count = pipe.space().min(data.len());
        let (mut count, mut faulted) = self.copy_into_pipe(caller, key, data, count, host)?;
        self.serve_readers(key, host);
        // Parked readers may have emptied the pipe again: a blocking write goes on while
        // there is room, so it never waits on a pipe with space (a reader could then
        // wait on it empty, and neither would ever move). A non-blocking write returns
        // what fitted.
        while count < data.len() && !faulted && blocking != Blocking::NonBlocking {
            let space = self.pipes.get(key).map_or(0, Pipe::space);
            if space == 0 {
                break;
            }
            let rest = data
                .subslice(count, data.len() - count)
                .ok_or(Error::BadAddress)?;
            match self.copy_into_pipe(caller, key, rest, space.min(rest.len()), host) {
                Ok((moved, fault)) => {
                    count += moved;
                    faulted = fault;
                }
                // Its own buffer faulted: the bytes already in the pipe are the write.
                Err(_) => faulted = true,
            }
            self.serve_readers(key, host);
        }
        if count < data.len() && !faulted && blocking != Blocking::NonBlocking {
            // POSIX: a blocking write returns only when all of it is in the pipe.
            return self.write_waits(caller, key, data, count, blocking, host);
        }
        Ok(Outcome::Done(count))
    }

    /// Copies the first `count` bytes of `data` from `writer` into the pipe (which has
    /// room for them). Returns how many went in and whether the copy faulted part-way
    /// (then only the first run went in: a short write, as POSIX reports the bytes
    /// moved before a fault, and the ledger never counts bytes the pipe does not
    /// hold). A fault in the first run is an error and moves nothing.
    #[inline(always)]
    fn copy_into_pipe<H: Host>(
        &mut self,
        writer: ProcessId,
        key: Key,
        data: UserSlice,
        count: usize,
        host: &mut H,
    ) -> Result<(usize, bool), Error> {
        let pipe = self.pipes.get_mut(key).ok_or(Error::BrokenPipe)?;
        let (first, second) = Pipe::<PIPE_CAPACITY>::runs(pipe.written, count);
        let mechanism = pipe.mechanism;
        let split = first.len();
        self.ledger.copy_in(
            host,
            writer,
            mechanism,
            data.prefix(split),
            &mut pipe.ring[first],
        )?;
        let mut moved = count;
        let mut faulted = false;
        if !second.is_empty() {
            let tail = data
                .subslice(split, second.len())
                .ok_or(Error::BadAddress)?;
            if self
                .ledger
                .copy_in(host, writer, mechanism, tail, &mut pipe.ring[second])
                .is_err()
            {
                moved = split;
                faulted = true;
            }
        }
        pipe.written = pipe.written.wrapping_add(moved);
        Ok((moved, faulted))
    }

    /// A blocking write that must wait for room, `done` of its bytes already in the
    /// pipe: it parks with its data recorded, so that readers making room carry it on
    /// ([`Ipc::serve_writers`]) and it ends with `Completion::Written`. If it may not
    /// wait, it returns what it moved (`WouldBlock` / `TimedOut` only when that is
    /// nothing).
    #[inline(never)]
    fn write_waits<H: Host>(
        &mut self,
        caller: ProcessId,
        key: Key,
        data: UserSlice,
        done: usize,
        blocking: Blocking,
        host: &mut H,
    ) -> Result<Outcome<usize>, Error> {
        match self.block(caller, WaitOn::PipeWrite(key), blocking, host) {
            Ok(Outcome::Blocked) => {
                self.process_mut(caller)?.writing = Some(WriteProgress {
                    pipe: key,
                    data,
                    done,
                });
                Ok(Outcome::Blocked)
            }
            Err(Error::WouldBlock | Error::TimedOut) if done > 0 => Ok(Outcome::Done(done)),
            other => other,
        }
    }

    /// Copies what the pipe holds, up to `buffer.len()` bytes, to `reader`'s `buffer`
    /// (two runs at most) and consumes it; the count. The pipe must hold something.
    #[inline(always)]
    fn read_out<H: Host>(
        &mut self,
        reader: ProcessId,
        key: Key,
        buffer: UserSlice,
        host: &mut H,
    ) -> Result<usize, Error> {
        let caller = reader;
        let pipe = self.pipes.get_mut(key).ok_or(Error::BrokenPipe)?;
        let mut count = pipe.len().min(buffer.len());
        let (first, second) = Pipe::<PIPE_CAPACITY>::runs(pipe.read, count);
        let mechanism = pipe.mechanism;
        let split = first.len();
        self.ledger.copy_out(
            host,
            caller,
            mechanism,
            buffer.prefix(split),
            &pipe.ring[first],
        )?;
        if !second.is_empty() {
            let rest = buffer
                .subslice(split, second.len())
                .ok_or(Error::BadAddress)?;
            // The first run is delivered and counted: a fault in the second makes this a
            // short read of the first run, so those bytes are neither lost nor read twice.
            if self
                .ledger
                .copy_out(host, caller, mechanism, rest, &pipe.ring[second])
                .is_err()
            {
                count = split;
            }
        }
        pipe.read = pipe.read.wrapping_add(count);
        Ok(count)
    }

    /// Data has arrived: completes the reads parked on this pipe, oldest first, while
    /// it holds data: each gets what it asked for (or what there is) in its recorded
    /// buffer, exactly the copies its own read would have made. A reader whose buffer
    /// faults gets `BadAddress` and the bytes stay for the next.
    fn serve_readers<H: Host>(&mut self, key: Key, host: &mut H) {
        while self.pipes.get(key).is_some_and(|pipe| pipe.len() > 0) {
            let waiting = self
                .oldest_waiter(|on| matches!(on, WaitOn::PipeRead { pipe, .. } if *pipe == key));
            let Some((reader, WaitOn::PipeRead { buffer, .. })) = waiting else {
                break;
            };
            let wakeup = match self.read_out(reader, key, buffer, host) {
                Ok(count) => Wakeup::Completed(Completion::Read(count)),
                Err(error) => Wakeup::Failed(error),
            };
            self.finish_wait(reader, wakeup, host);
        }
    }

    /// Room was made in pipe `key`: carries on the parked writers, oldest first, each as
    /// far as the room allows (an atomic write only when all of it fits; a writer that
    /// cannot go on does not hold up the ones behind it). A writer whose data is all in
    /// ends with `Completion::Written(total)`; one whose data faults ends with what it
    /// had moved (or `BadAddress` if nothing). New writers are not queued behind parked
    /// ones (as on Linux, only atomicity is promised, not order between writers).
    #[inline(never)]
    fn serve_writers<H: Host>(&mut self, key: Key, host: &mut H) {
        // Every writer parked on this pipe, oldest first, with its deadline.
        let mut writers: heapless::Vec<(ProcessId, Option<u64>), PROCESSES> = heapless::Vec::new();
        while let Some((writer, _)) = self.oldest_waiter(|on| *on == WaitOn::PipeWrite(key)) {
            let deadline = self
                .process(writer)
                .ok()
                .and_then(|process| process.wait)
                .and_then(|wait| wait.deadline);
            // (At most one wait per process: the list cannot overflow.)
            if writers.push((writer, deadline)).is_err() {
                break;
            }
            // Out of the queue for now; parked again below (in the same order) if it
            // must go on waiting.
            if let Ok(process) = self.process_mut(writer) {
                process.wait = None;
            }
            self.forget_waiting(writer.slot() as u16);
        }
        let mut moved_any = false;
        for (writer, deadline) in writers {
            let recorded = self
                .process(writer)
                .ok()
                .and_then(|p| p.writing)
                .filter(|progress| progress.pipe == key);
            let (Some(progress), Some(pipe)) = (recorded, self.pipes.get(key)) else {
                // No recorded write on this pipe, or no pipe (neither can happen: the
                // writer's handle keeps the pipe): it retries, and learns the truth.
                if let Ok(process) = self.process_mut(writer) {
                    process.writing = None;
                }
                host.wake(writer, Wakeup::Retry);
                continue;
            };
            let rest_length = progress.data.len() - progress.done;
            let minimum = if progress.data.len() <= atomic_limit(L::PIPE_ATOMIC, PIPE_CAPACITY) {
                rest_length
            } else {
                1
            };
            if pipe.space() < minimum {
                let _ = self.record_wait(writer, WaitOn::PipeWrite(key), deadline);
                continue;
            }
            let count = pipe.space().min(rest_length);
            let rest = progress
                .data
                .subslice(progress.done, rest_length)
                .unwrap_or(progress.data);
            let result = self.copy_into_pipe(writer, key, rest, count, host);
            let (done, finished) = match result {
                Ok((moved, faulted)) => {
                    moved_any |= moved > 0;
                    let done = progress.done + moved;
                    (done, faulted || done == progress.data.len())
                }
                Err(_) => (progress.done, true),
            };
            if finished {
                if let Ok(process) = self.process_mut(writer) {
                    process.writing = None;
                }
                host.wake(writer, write_ends(done, Wakeup::Failed(Error::BadAddress)));
            } else {
                if let Ok(process) = self.process_mut(writer) {
                    process.writing = Some(WriteProgress { done, ..progress });
                }
                let _ = self.record_wait(writer, WaitOn::PipeWrite(key), deadline);
            }
        }
        if moved_any {
            self.serve_readers(key, host);
            // Readers emptied the pipe while writers still wait: carry them on again
            // (each round moves bytes, and a reader is served once per round).
            let room = self.pipes.get(key).is_some_and(|pipe| pipe.len() == 0);
            if room
                && self
                    .oldest_waiter(|on| *on == WaitOn::PipeWrite(key))
                    .is_some()
            {
                self.serve_writers(key, host);
            }
        }
    }

    /// Number of bytes buffered in the pipe behind `handle` (any pipe handle).
    ///
    /// # Example
    ///
    /// ```
    /// # use kipc::*;
    /// # #[allow(unused)]
    /// # fn example(ipc: &mut DefaultIpc, host: &mut impl Host, caller: ProcessId, peer: ProcessId, handle: Handle, buffer: UserSlice) -> Result<(), Error> {
    /// let waiting_bytes = ipc.pipe_buffered(caller, handle)?;
    /// # Ok(()) }
    /// ```
    pub fn pipe_buffered(&self, caller: ProcessId, handle: Handle) -> Result<usize, Error> {
        let key = self.pipe_key(caller, handle, Rights::empty())?;
        Ok(self.pipes.get(key).map_or(0, |p| p.len()))
    }

    // ------------------------------------------------------------------ internals

    fn pipe_key(&self, caller: ProcessId, handle: Handle, needed: Rights) -> Result<Key, Error> {
        match self
            .lookup(caller, handle, ObjectKind::Pipe, needed)?
            .object
        {
            ObjectRef::Pipe(key) => Ok(key),
            _ => Err(Error::WrongObjectKind),
        }
    }

    pub(crate) fn pipe_acquired(&mut self, key: Key, rights: Rights) {
        if let Some(slot) = self.pipes.slot_mut(key) {
            slot.references += 1;
            if rights.contains(Rights::READ) {
                slot.value.readers += 1;
            }
            if rights.contains(Rights::WRITE) {
                slot.value.writers += 1;
            }
        }
    }

    pub(crate) fn pipe_released<H: Host>(&mut self, key: Key, rights: Rights, host: &mut H) {
        let Some(slot) = self.pipes.slot_mut(key) else {
            return;
        };
        slot.references -= 1;
        if rights.contains(Rights::READ) {
            slot.value.readers -= 1;
            if slot.value.readers == 0 {
                // LAB pipe: begin
                // Writers must learn that nobody will read: one that had moved bytes
                // ends with their count, the others retry into BrokenPipe.
                while let Some((writer, _)) = self.oldest_waiter(|on| *on == WaitOn::PipeWrite(key))
                {
                    let moved = self
                        .process_mut(writer)
                        .ok()
                        .and_then(|p| p.writing.take())
                        .map_or(0, |progress| progress.done);
                    self.finish_wait(writer, write_ends(moved, Wakeup::Retry), host);
                    if moved > 0 {
                        // The rest can never be read (a writer with nothing moved
                        // retries into BrokenPipe, which raises it then).
                        let _ = self.signal_mark(writer, crate::Signal::SIGPIPE);
                    }
                }
                // LAB pipe: stub
                // // LAB pipe, step 4: wake every writer parked on this pipe (see the handout)
                // let _ = write_ends;
                // LAB pipe: end
            }
        }
        let Some(slot) = self.pipes.slot_mut(key) else {
            return;
        };
        if rights.contains(Rights::WRITE) {
            slot.value.writers -= 1;
            if slot.value.writers == 0 {
                // Readers of an empty pipe must learn it is over: they retry into EOF.
                self.wake_all(
                    Wakeup::Retry,
                    host,
                    |on| matches!(on, WaitOn::PipeRead { pipe, .. } if *pipe == key),
                );
            }
        }
        if self.pipes.slot(key).is_some_and(|s| s.references == 0) {
            self.pipes.free(key);
        }
    }
}

/// A capability to pipe `key` for one end.
pub(crate) const fn pipe_capability(key: Key, end: Rights) -> Capability {
    Capability {
        object: ObjectRef::Pipe(key),
        rights: end.union(Rights::TRANSFER).union(Rights::DUPLICATE),
        badge: 0,
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::{self, TestHost, TestIpc};
    use crate::*;

    fn setup() -> (TestIpc, TestHost, ProcessId, ProcessId) {
        let mut ipc = TestIpc::new();
        let host = TestHost::new();
        let a = ipc.process_create().unwrap();
        let b = ipc.process_create().unwrap();
        (ipc, host, a, b)
    }

    #[test]
    fn bytes_flow_and_wrap_in_two_runs() {
        let (mut ipc, mut host, a, _) = setup();
        let (r, w) = ipc.pipe_create(a).unwrap();
        let data: Vec<u8> = (0..200u8).collect();
        host.poke(a, 0, &data);
        let mut out = Vec::new();
        let mut offset = 0;
        while offset < data.len() {
            let n = ipc
                .pipe_write(
                    a,
                    w,
                    host.slice(offset as u64, 40.min(data.len() - offset)),
                    Blocking::NonBlocking,
                    &mut host,
                )
                .unwrap()
                .done()
                .unwrap();
            offset += n;
            let got = ipc
                .pipe_read(
                    a,
                    r,
                    host.slice(0x1000, 64),
                    Blocking::NonBlocking,
                    &mut host,
                )
                .unwrap()
                .done()
                .unwrap();
            out.extend(host.peek(a, 0x1000, got));
        }
        assert_eq!(out, data);
        let g = *ipc.ledger().global();
        assert_eq!(
            g.copies(Mechanism::Pipe, Direction::UserToKernel).bytes,
            200
        );
        assert_eq!(
            g.copies(Mechanism::Pipe, Direction::KernelToUser).bytes,
            200
        );
        assert!(
            g.operations_by(Mechanism::Pipe) > 10,
            "wrapped runs are separate copies"
        );
    }

    #[test]
    fn empty_blocks_then_eof_when_writers_gone() {
        let (mut ipc, mut host, a, b) = setup();
        let (r, w) = ipc.pipe_create(a).unwrap();
        let rb = ipc.handle_grant(a, r, b, Rights::READ).unwrap();
        ipc.handle_close(a, r, &mut host).unwrap();
        assert_eq!(
            ipc.pipe_read(b, rb, host.slice(0, 8), Blocking::NonBlocking, &mut host),
            Err(Error::WouldBlock)
        );
        assert!(
            ipc.pipe_read(b, rb, host.slice(0, 8), Blocking::Forever, &mut host)
                .unwrap()
                .is_blocked()
        );
        ipc.handle_close(a, w, &mut host).unwrap();
        assert_eq!(host.take_wakes(), vec![(b, Wakeup::Retry)]);
        assert_eq!(
            ipc.pipe_read(b, rb, host.slice(0, 8), Blocking::Forever, &mut host),
            Ok(Outcome::Done(0))
        );
    }

    #[test]
    fn broken_pipe_and_writer_woken() {
        let (mut ipc, mut host, a, b) = setup();
        let (r, w) = ipc.pipe_create(a).unwrap();
        let wb = ipc.handle_grant(a, w, b, Rights::WRITE).unwrap();
        // Fill the 64-byte pipe.
        assert_eq!(
            ipc.pipe_write(b, wb, host.slice(0, 64), Blocking::Forever, &mut host),
            Ok(Outcome::Done(64))
        );
        assert!(
            ipc.pipe_write(b, wb, host.slice(0, 1), Blocking::Forever, &mut host)
                .unwrap()
                .is_blocked()
        );
        ipc.handle_close(a, r, &mut host).unwrap();
        assert_eq!(host.take_wakes(), vec![(b, Wakeup::Retry)]);
        assert_eq!(
            ipc.pipe_write(b, wb, host.slice(0, 1), Blocking::Forever, &mut host),
            Err(Error::BrokenPipe)
        );
    }

    #[test]
    fn small_writes_are_atomic_large_ones_short() {
        let (mut ipc, mut host, a, _) = setup();
        let (r, w) = ipc.pipe_create(a).unwrap();
        assert_eq!(
            ipc.pipe_write(a, w, host.slice(0, 60), Blocking::NonBlocking, &mut host),
            Ok(Outcome::Done(60))
        );
        // 10 bytes do not fit in the 4 left: an atomic write must not be split.
        assert_eq!(
            ipc.pipe_write(a, w, host.slice(0, 10), Blocking::NonBlocking, &mut host),
            Err(Error::WouldBlock)
        );
        assert_eq!(ipc.pipe_buffered(a, r), Ok(60));
        assert_eq!(
            ipc.pipe_read(a, r, host.slice(0, 64), Blocking::NonBlocking, &mut host),
            Ok(Outcome::Done(60))
        );
        // Wrong end, wrong rights.
        assert_eq!(
            ipc.pipe_read(a, w, host.slice(0, 1), Blocking::NonBlocking, &mut host),
            Err(Error::PermissionDenied)
        );
        assert_eq!(
            ipc.pipe_write(a, r, host.slice(0, 1), Blocking::NonBlocking, &mut host),
            Err(Error::PermissionDenied)
        );
        // A bad address is a fault, and nothing is counted.
        let before = ipc.ledger().global().total_bytes();
        let bad = UserSlice::new(0xf_0000, 8, host.user_limit()).unwrap();
        assert_eq!(
            ipc.pipe_write(a, w, bad, Blocking::NonBlocking, &mut host),
            Err(Error::BadAddress)
        );
        assert_eq!(ipc.ledger().global().total_bytes(), before);
        assert_eq!(ipc.pipe_buffered(a, r), Ok(0));
    }

    #[test]
    fn a_fault_in_the_second_run_is_a_short_copy_counted_once() {
        let (mut ipc, mut host, a, _) = setup();
        let (r, w) = ipc.pipe_create(a).unwrap();
        // Move both counters to 40, so the next 60 bytes wrap after 24.
        let forty = host.slice(0, 40);
        assert_eq!(
            ipc.pipe_write(a, w, forty, Blocking::NonBlocking, &mut host),
            Ok(Outcome::Done(40))
        );
        assert_eq!(
            ipc.pipe_read(a, r, forty, Blocking::NonBlocking, &mut host),
            Ok(Outcome::Done(40))
        );
        // Data whose last 30 bytes lie beyond the test host's memory: the first run (24
        // bytes) is readable, the second faults.
        let end = testing::MEMORY as u64;
        host.poke(a, end - 30, &[7; 30]);
        let data = UserSlice::new(end - 30, 60, host.user_limit()).unwrap();
        assert_eq!(
            ipc.pipe_write(a, w, data, Blocking::NonBlocking, &mut host),
            Ok(Outcome::Done(24))
        );
        assert_eq!(ipc.pipe_buffered(a, r), Ok(24));
        let g = *ipc.ledger().global();
        assert_eq!(g.copies(Mechanism::Pipe, Direction::UserToKernel).bytes, 64);
        // Wrap again, then read into a buffer whose tail faults: the first run is
        // delivered and consumed, the rest stays in the pipe.
        let more = host.slice(0, 30);
        assert_eq!(
            ipc.pipe_write(a, w, more, Blocking::NonBlocking, &mut host),
            Ok(Outcome::Done(30))
        );
        assert_eq!(
            ipc.pipe_read(a, r, host.slice(0, 20), Blocking::NonBlocking, &mut host),
            Ok(Outcome::Done(20))
        );
        // Counters: read 60, written 94; 34 buffered from ring position 60: 4 then 30.
        let buffer = UserSlice::new(end - 10, 34, host.user_limit()).unwrap();
        assert_eq!(
            ipc.pipe_read(a, r, buffer, Blocking::NonBlocking, &mut host),
            Ok(Outcome::Done(4))
        );
        assert_eq!(ipc.pipe_buffered(a, r), Ok(30));
        let g = *ipc.ledger().global();
        assert_eq!(
            g.copies(Mechanism::Pipe, Direction::KernelToUser).bytes,
            40 + 20 + 4
        );
        assert_eq!(
            g.copies(Mechanism::Pipe, Direction::UserToKernel).bytes,
            40 + 24 + 30
        );
    }

    #[test]
    fn closing_both_ends_destroys_the_pipe() {
        let (mut ipc, mut host, a, _) = setup();
        let (r, w) = ipc.pipe_create(a).unwrap();
        assert_eq!(ipc.usage().pipes, 1);
        ipc.handle_close(a, r, &mut host).unwrap();
        ipc.handle_close(a, w, &mut host).unwrap();
        assert_eq!(ipc.usage().pipes, 0);
        assert_eq!(ipc.usage().handles, 0);
    }
}
