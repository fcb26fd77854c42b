//! FIFOs (named pipes): a registry of names that lead to pipes.
//!
//! [`Ipc::fifo_create`] registers a name (like `mkfifo`). Opening the name gives a handle to
//! a pipe — the *same* pipe for every process that has it open at the same time — after
//! which [`Ipc::pipe_read`] / [`Ipc::pipe_write`] apply unchanged, with copies counted as
//! [`Mechanism::Fifo`].
//!
//! Open follows POSIX:
//!
//! * A **blocking** open waits until the other side is open too: a reader waits for a
//!   writer and vice versa. Whoever arrives second completes the waiting openers: each
//!   receives its handle with [`Completion::Opened`].
//! * A **non-blocking** open for reading succeeds at once; a non-blocking open for writing
//!   with no reader fails with [`Error::NoReader`] (POSIX `ENXIO`).
//!
//! The pipe exists while any end is open; when the last end closes, unread data is
//! discarded and the next open starts a fresh pipe. [`Ipc::fifo_unlink`] removes the name:
//! open ends keep working, waiting openers fail with [`Error::NotFound`].

use crate::accounting::Mechanism;
use crate::error::Error;
use crate::handle::Handle;
use crate::host::{Host, ProcessId};
use crate::kernel::Ipc;
use crate::name::Name;
use crate::object::{Key, Object};
use crate::pipe::pipe_capability;
use crate::rights::Rights;
use crate::wait::{Blocking, Completion, OpenMode, Outcome, WaitOn, Wakeup};

/// A registered FIFO name and the pipe currently behind it.
pub(crate) struct Fifo {
    name: Name,
    pipe: Option<Key>,
}

impl Object for Fifo {
    const EMPTY: Self = Fifo {
        name: Name::EMPTY,
        pipe: None,
    };
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
    /// Registers FIFO `name`. Fails with [`Error::AlreadyExists`], [`Error::NameTooLong`],
    /// or [`Error::Full`] when the registry is full.
    ///
    /// # Example
    ///
    /// ```
    /// # use kipc::*;
    /// # #[allow(unused)]
    /// # fn example(ipc: &mut DefaultIpc, host: &mut impl Host, caller: ProcessId, peer: ProcessId, handle: Handle, buffer: UserSlice) -> Result<(), Error> {
    /// ipc.fifo_create(caller, b"log")?;
    /// # Ok(()) }
    /// ```
    pub fn fifo_create(&mut self, caller: ProcessId, name: &[u8]) -> Result<(), Error> {
        self.process(caller)?;
        let name = Name::new(name)?;
        if self.fifo_find(&name).is_some() {
            return Err(Error::AlreadyExists);
        }
        // A full registry is `Full` (as POSIX names it); a process at its quota is told so.
        let (_, fifo) = self
            .fifos
            .allocate(caller, L::QUOTAS.objects_per_kind)
            .map_err(|error| match error {
                Error::OutOfObjects => Error::Full,
                other => other,
            })?;
        fifo.name = name;
        fifo.pipe = None;
        Ok(())
    }

    /// Removes FIFO `name`. Open ends keep working; blocked openers fail with `NotFound`.
    ///
    /// # Example
    ///
    /// ```
    /// # use kipc::*;
    /// # #[allow(unused)]
    /// # fn example(ipc: &mut DefaultIpc, host: &mut impl Host, caller: ProcessId, peer: ProcessId, handle: Handle, buffer: UserSlice) -> Result<(), Error> {
    /// ipc.fifo_unlink(caller, b"log", host)?;
    /// # Ok(()) }
    /// ```
    pub fn fifo_unlink<H: Host>(
        &mut self,
        caller: ProcessId,
        name: &[u8],
        host: &mut H,
    ) -> Result<(), Error> {
        self.process(caller)?;
        let key = self.fifo_find(&Name::new(name)?).ok_or(Error::NotFound)?;
        self.fifos.free(key);
        self.wake_all(
            Wakeup::Failed(Error::NotFound),
            host,
            |on| matches!(on, WaitOn::FifoOpen { fifo, .. } if *fifo == key),
        );
        Ok(())
    }

    /// Opens FIFO `name` for reading or writing; see the module documentation for when
    /// this waits. The handle has READ (or WRITE), TRANSFER and DUPLICATE.
    ///
    /// # Example
    ///
    /// ```
    /// # use kipc::*;
    /// # #[allow(unused)]
    /// # fn example(ipc: &mut DefaultIpc, host: &mut impl Host, caller: ProcessId, peer: ProcessId, handle: Handle, buffer: UserSlice) -> Result<(), Error> {
    /// // Blocks until a writer opens it too (POSIX), unless NonBlocking:
    /// let outcome = ipc.fifo_open(caller, b"log", OpenMode::Read, Blocking::Forever, host)?;
    /// # Ok(()) }
    /// ```
    pub fn fifo_open<H: Host>(
        &mut self,
        caller: ProcessId,
        name: &[u8],
        mode: OpenMode,
        blocking: Blocking,
        host: &mut H,
    ) -> Result<Outcome<Handle>, Error> {
        let key = self.fifo_find(&Name::new(name)?).ok_or(Error::NotFound)?;
        self.reserve_handles(caller, 1)?;
        let pipe = self
            .fifos
            .get(key)
            .and_then(|f| f.pipe)
            .filter(|p| self.pipes.get(*p).is_some());
        let (readers, writers) = pipe
            .and_then(|p| self.pipes.get(p))
            .map_or((0, 0), |p| (p.readers(), p.writers()));
        let opposite = match mode {
            OpenMode::Read => OpenMode::Write,
            OpenMode::Write => OpenMode::Read,
        };
        let peer_waiting = self
            .oldest_waiter(|on| {
                *on == WaitOn::FifoOpen {
                    fifo: key,
                    mode: opposite,
                }
            })
            .is_some();
        let peer_open = match mode {
            OpenMode::Read => writers > 0,
            OpenMode::Write => readers > 0,
        };
        if !peer_open && !peer_waiting {
            match (mode, blocking) {
                (OpenMode::Read, Blocking::NonBlocking) => {}
                (OpenMode::Write, Blocking::NonBlocking) => return Err(Error::NoReader),
                _ => {
                    return self.block(
                        caller,
                        WaitOn::FifoOpen { fifo: key, mode },
                        blocking,
                        host,
                    );
                }
            }
        }

        let pipe = match pipe {
            Some(pipe) => pipe,
            None => {
                let (pipe, state) = self.pipes.allocate(caller, L::QUOTAS.objects_per_kind)?;
                state.reset(Mechanism::Fifo);
                if let Some(fifo) = self.fifos.get_mut(key) {
                    fifo.pipe = Some(pipe);
                }
                pipe
            }
        };
        let handle = self.install_new(caller, pipe_capability(pipe, end_rights(mode)))?;

        // Complete everyone who was waiting for this side to appear.
        while let Some((peer, _)) = self.oldest_waiter(|on| {
            *on == WaitOn::FifoOpen {
                fifo: key,
                mode: opposite,
            }
        }) {
            let wakeup = match self.install_new(peer, pipe_capability(pipe, end_rights(opposite))) {
                Ok(handle) => Wakeup::Completed(Completion::Opened(handle)),
                Err(error) => Wakeup::Failed(error),
            };
            self.finish_wait(peer, wakeup, host);
        }
        Ok(Outcome::Done(handle))
    }

    fn fifo_find(&self, name: &Name) -> Option<Key> {
        self.fifos
            .iter_live()
            .find(|(_, f)| f.name == *name)
            .map(|(key, _)| key)
    }
}

fn end_rights(mode: OpenMode) -> Rights {
    match mode {
        OpenMode::Read => Rights::READ,
        OpenMode::Write => Rights::WRITE,
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::{TestHost, TestIpc};
    use crate::*;

    #[test]
    fn blocking_open_rendezvous_and_data() {
        let mut ipc = TestIpc::new();
        let mut host = TestHost::new();
        let a = ipc.process_create().unwrap();
        let b = ipc.process_create().unwrap();
        ipc.fifo_create(a, b"log").unwrap();
        assert_eq!(ipc.fifo_create(b, b"log"), Err(Error::AlreadyExists));
        assert_eq!(
            ipc.fifo_open(a, b"nope", OpenMode::Read, Blocking::Forever, &mut host),
            Err(Error::NotFound)
        );
        assert_eq!(
            ipc.fifo_open(b, b"log", OpenMode::Write, Blocking::NonBlocking, &mut host),
            Err(Error::NoReader)
        );
        assert!(
            ipc.fifo_open(a, b"log", OpenMode::Read, Blocking::Forever, &mut host)
                .unwrap()
                .is_blocked()
        );
        let w = ipc
            .fifo_open(b, b"log", OpenMode::Write, Blocking::Forever, &mut host)
            .unwrap()
            .done()
            .unwrap();
        let wakes = host.take_wakes();
        let [(who, Wakeup::Completed(Completion::Opened(r)))] = &wakes[..] else {
            panic!("{wakes:?}")
        };
        assert_eq!(*who, a);
        host.poke(b, 0, b"line");
        assert_eq!(
            ipc.pipe_write(b, w, host.slice(0, 4), Blocking::Forever, &mut host),
            Ok(Outcome::Done(4))
        );
        assert_eq!(
            ipc.pipe_read(a, *r, host.slice(0x40, 8), Blocking::Forever, &mut host),
            Ok(Outcome::Done(4))
        );
        assert_eq!(host.peek(a, 0x40, 4), b"line");
        assert_eq!(ipc.ledger().global().bytes_by(Mechanism::Fifo), 8);
        assert_eq!(ipc.ledger().global().bytes_by(Mechanism::Pipe), 0);
        // Unlink keeps open ends working.
        ipc.fifo_unlink(a, b"log", &mut host).unwrap();
        assert_eq!(
            ipc.pipe_write(b, w, host.slice(0, 4), Blocking::Forever, &mut host),
            Ok(Outcome::Done(4))
        );
        assert_eq!(
            ipc.fifo_open(a, b"log", OpenMode::Read, Blocking::NonBlocking, &mut host),
            Err(Error::NotFound)
        );
        ipc.handle_close(b, w, &mut host).unwrap();
        ipc.handle_close(a, *r, &mut host).unwrap();
        assert_eq!(ipc.usage().pipes, 0);
        assert_eq!(ipc.usage().fifos, 0);
    }

    #[test]
    fn nonblocking_read_open_then_writer_and_unlink_fails_waiters() {
        let mut ipc = TestIpc::new();
        let mut host = TestHost::new();
        let a = ipc.process_create().unwrap();
        ipc.fifo_create(a, b"f").unwrap();
        let r = ipc
            .fifo_open(a, b"f", OpenMode::Read, Blocking::NonBlocking, &mut host)
            .unwrap()
            .done()
            .unwrap();
        let w = ipc
            .fifo_open(a, b"f", OpenMode::Write, Blocking::NonBlocking, &mut host)
            .unwrap()
            .done()
            .unwrap();
        assert_eq!(ipc.usage().pipes, 1, "both ends share one pipe");
        ipc.handle_close(a, r, &mut host).unwrap();
        ipc.handle_close(a, w, &mut host).unwrap();
        assert!(
            ipc.fifo_open(a, b"f", OpenMode::Write, Blocking::Until(100), &mut host)
                .unwrap()
                .is_blocked()
        );
        ipc.fifo_unlink(a, b"f", &mut host).unwrap();
        assert_eq!(
            host.take_wakes(),
            vec![(a, Wakeup::Failed(Error::NotFound))]
        );
        assert_eq!(ipc.fifo_create(a, &[b'x'; 33]), Err(Error::NameTooLong));
    }
}
