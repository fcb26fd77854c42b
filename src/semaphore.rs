//! Counting semaphores: the classic synchronisation primitive for shared regions.
//!
//! A semaphore holds a count of available units. [`Ipc::semaphore_wait`] takes one unit,
//! or — when the count is zero — blocks (or fails with `WouldBlock`, or times out at a
//! deadline). [`Ipc::semaphore_post`] gives one unit back: if someone is waiting, the unit
//! goes straight to the longest waiter, whose wait completes with
//! [`Completion::Acquired`]; otherwise the count grows. Handing the unit over directly
//! (instead of waking everybody to race for it) keeps waiters served in order.
//!
//! Waiting needs [`Rights::WAIT`], posting [`Rights::SIGNAL`].

use crate::error::Error;
use crate::handle::Handle;
use crate::host::{Host, ProcessId};
use crate::kernel::Ipc;
use crate::object::{Capability, Key, Object, ObjectKind, ObjectRef};
use crate::rights::Rights;
use crate::wait::{Blocking, Completion, Outcome, WaitOn, Wake, Wakeup};

/// A semaphore's count.
pub(crate) struct Semaphore {
    pub(crate) count: u32,
}

impl Object for Semaphore {
    const EMPTY: Self = Semaphore { count: 0 };
}

/// Rights of a new semaphore or notification handle.
pub(crate) const SYNC_RIGHTS: Rights = Rights::SIGNAL
    .union(Rights::WAIT)
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
    /// Creates a semaphore with `initial` units (SIGNAL, WAIT, TRANSFER, DUPLICATE).
    ///
    /// # Example
    ///
    /// ```
    /// # use kipc::*;
    /// # #[allow(unused)]
    /// # fn example(ipc: &mut DefaultIpc, host: &mut impl Host, caller: ProcessId, peer: ProcessId, handle: Handle, buffer: UserSlice) -> Result<(), Error> {
    /// let lock = ipc.semaphore_create(caller, 1)?; // a mutex
    /// # Ok(()) }
    /// ```
    pub fn semaphore_create(&mut self, caller: ProcessId, initial: u32) -> Result<Handle, Error> {
        self.reserve_handles(caller, 1)?;
        let (key, semaphore) = self
            .semaphores
            .allocate(caller, L::QUOTAS.objects_per_kind)?;
        semaphore.count = initial;
        let capability = Capability {
            object: ObjectRef::Semaphore(key),
            rights: SYNC_RIGHTS,
            badge: 0,
        };
        self.install_new(caller, capability)
    }

    /// Takes one unit (needs WAIT); with none available, blocks per `blocking`. The host
    /// resumes a blocked caller on [`Completion::Acquired`] (or `Failed(TimedOut)`).
    ///
    /// # Example
    ///
    /// ```
    /// # use kipc::*;
    /// # #[allow(unused)]
    /// # fn example(ipc: &mut DefaultIpc, host: &mut impl Host, caller: ProcessId, peer: ProcessId, handle: Handle, buffer: UserSlice) -> Result<(), Error> {
    /// match ipc.semaphore_wait(caller, handle, Blocking::Forever, host)? {
    ///     Outcome::Done(()) => {}     // acquired
    ///     Outcome::Blocked => {}      // park: resumed with Completion::Acquired
    /// }
    /// # Ok(()) }
    /// ```
    pub fn semaphore_wait<H: Host>(
        &mut self,
        caller: ProcessId,
        handle: Handle,
        blocking: Blocking,
        host: &mut H,
    ) -> Result<Outcome<()>, Error> {
        let key = self.semaphore_key(caller, handle, Rights::WAIT)?;
        let semaphore = self.semaphores.get_mut(key).ok_or(Error::BadHandle)?;
        if semaphore.count > 0 {
            semaphore.count -= 1;
            return Ok(Outcome::Done(()));
        }
        self.block(caller, WaitOn::Semaphore(key), blocking, host)
    }

    /// Gives one unit back (needs SIGNAL), directly to the longest waiter if there is one.
    /// Fails with [`Error::InvalidArgument`] if the count would overflow.
    ///
    /// # Example
    ///
    /// ```
    /// # use kipc::*;
    /// # #[allow(unused)]
    /// # fn example(ipc: &mut DefaultIpc, host: &mut impl Host, caller: ProcessId, peer: ProcessId, handle: Handle, buffer: UserSlice) -> Result<(), Error> {
    /// ipc.semaphore_post(caller, handle, host)?; // wakes the oldest waiter, if any
    /// # Ok(()) }
    /// ```
    pub fn semaphore_post<H: Host>(
        &mut self,
        caller: ProcessId,
        handle: Handle,
        host: &mut H,
    ) -> Result<(), Error> {
        let key = self.semaphore_key(caller, handle, Rights::SIGNAL)?;
        self.post_key(key, host)
    }

    /// The body of [`Ipc::semaphore_post`] once the handle is checked: the unit goes
    /// to the oldest waiter, or onto the count.
    fn post_key<W: Wake + ?Sized>(&mut self, key: Key, wake: &mut W) -> Result<(), Error> {
        if let Some((waiter, _)) = self.oldest_waiter(|on| *on == WaitOn::Semaphore(key)) {
            self.finish_wait(waiter, Wakeup::Completed(Completion::Acquired), wake);
            return Ok(());
        }
        let semaphore = self.semaphores.get_mut(key).ok_or(Error::BadHandle)?;
        semaphore.count = semaphore
            .count
            .checked_add(1)
            .ok_or(Error::InvalidArgument)?;
        Ok(())
    }

    /// Posts `post` and waits on `wait` in one call, as [`Ipc::semaphore_post`] then
    /// [`Ipc::semaphore_wait`] with nothing in between: the turn handed to a peer and
    /// the wait for it to come back, the shared-memory ping-pong's step (Windows calls
    /// it `SignalObjectAndWait`). Half the system calls of a post and a wait, and the
    /// peer it wakes can run as soon as the caller parks.
    ///
    /// Both handles are checked first (`wait` needs WAIT, `post` needs SIGNAL), and
    /// a failing check changes nothing. After the post, the wait's outcome is
    /// returned with the post done: `Done` if `wait` had a unit, `Blocked` (the host
    /// parks the caller until `Completed(Acquired)`), or `WouldBlock` / `TimedOut`.
    /// A host that may re-run a parked call must re-run only the wait: a second
    /// post would be a unit too many.
    ///
    /// # Example
    ///
    /// ```
    /// # use kipc::*;
    /// # #[allow(unused)]
    /// # fn example(ipc: &mut DefaultIpc, host: &mut impl Host, caller: ProcessId, peer_turn: Handle, my_turn: Handle) -> Result<(), Error> {
    /// // Hand the shared buffer to the peer, then wait until it hands it back.
    /// let outcome = ipc.semaphore_post_wait(caller, peer_turn, my_turn, Blocking::Forever, host)?;
    /// # Ok(()) }
    /// ```
    pub fn semaphore_post_wait<H: Host>(
        &mut self,
        caller: ProcessId,
        post: Handle,
        wait: Handle,
        blocking: Blocking,
        host: &mut H,
    ) -> Result<Outcome<()>, Error> {
        let wait_key = self.semaphore_key(caller, wait, Rights::WAIT)?;
        let post_key = self.semaphore_key(caller, post, Rights::SIGNAL)?;
        self.post_key(post_key, host)?;
        let semaphore = self.semaphores.get_mut(wait_key).ok_or(Error::BadHandle)?;
        if semaphore.count > 0 {
            semaphore.count -= 1;
            return Ok(Outcome::Done(()));
        }
        self.block(caller, WaitOn::Semaphore(wait_key), blocking, host)
    }

    /// The number of available units (any handle to the semaphore).
    ///
    /// # Example
    ///
    /// ```
    /// # use kipc::*;
    /// # #[allow(unused)]
    /// # fn example(ipc: &mut DefaultIpc, host: &mut impl Host, caller: ProcessId, peer: ProcessId, handle: Handle, buffer: UserSlice) -> Result<(), Error> {
    /// let available = ipc.semaphore_count(caller, handle)?;
    /// # Ok(()) }
    /// ```
    pub fn semaphore_count(&self, caller: ProcessId, handle: Handle) -> Result<u32, Error> {
        let key = self.semaphore_key(caller, handle, Rights::empty())?;
        Ok(self.semaphores.get(key).map_or(0, |s| s.count))
    }

    fn semaphore_key(
        &self,
        caller: ProcessId,
        handle: Handle,
        needed: Rights,
    ) -> Result<Key, Error> {
        match self
            .lookup(caller, handle, ObjectKind::Semaphore, needed)?
            .object
        {
            ObjectRef::Semaphore(key) => Ok(key),
            _ => Err(Error::WrongObjectKind),
        }
    }

    pub(crate) fn semaphore_released<W: Wake + ?Sized>(&mut self, key: Key, wake: &mut W) {
        let Some(slot) = self.semaphores.slot_mut(key) else {
            return;
        };
        slot.references -= 1;
        if slot.references == 0 {
            self.wake_all(Wakeup::Failed(Error::PeerClosed), wake, |on| {
                *on == WaitOn::Semaphore(key)
            });
            self.semaphores.free(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::{TestHost, TestIpc};
    use crate::*;

    #[test]
    fn post_hands_units_to_waiters_in_order() {
        let mut ipc = TestIpc::new();
        let mut host = TestHost::new();
        let a = ipc.process_create().unwrap();
        let b = ipc.process_create().unwrap();
        let c = ipc.process_create().unwrap();
        let s = ipc.semaphore_create(a, 1).unwrap();
        let sb = ipc.handle_grant(a, s, b, Rights::WAIT).unwrap();
        let sc = ipc.handle_grant(a, s, c, Rights::WAIT).unwrap();
        assert_eq!(
            ipc.semaphore_wait(a, s, Blocking::NonBlocking, &mut host),
            Ok(Outcome::Done(()))
        );
        assert_eq!(
            ipc.semaphore_wait(a, s, Blocking::NonBlocking, &mut host),
            Err(Error::WouldBlock)
        );
        assert!(
            ipc.semaphore_wait(c, sc, Blocking::Forever, &mut host)
                .unwrap()
                .is_blocked()
        );
        assert!(
            ipc.semaphore_wait(b, sb, Blocking::Forever, &mut host)
                .unwrap()
                .is_blocked()
        );
        ipc.semaphore_post(a, s, &mut host).unwrap();
        ipc.semaphore_post(a, s, &mut host).unwrap();
        ipc.semaphore_post(a, s, &mut host).unwrap();
        let acquired = Wakeup::Completed(Completion::Acquired);
        assert_eq!(
            host.take_wakes(),
            vec![(c, acquired.clone()), (b, acquired)]
        );
        assert_eq!(ipc.semaphore_count(a, s), Ok(1));
        assert_eq!(
            ipc.semaphore_post(b, sb, &mut host),
            Err(Error::PermissionDenied)
        );
    }

    #[test]
    fn post_wait_hands_the_turn_over_and_waits_for_it() {
        let mut ipc = TestIpc::new();
        let mut host = TestHost::new();
        let a = ipc.process_create().unwrap();
        let b = ipc.process_create().unwrap();
        let a_turn = ipc.semaphore_create(a, 0).unwrap();
        let b_turn = ipc.semaphore_create(a, 0).unwrap();
        let b_wait = ipc.handle_grant(a, b_turn, b, Rights::WAIT).unwrap();
        let b_post = ipc.handle_grant(a, a_turn, b, Rights::SIGNAL).unwrap();
        // b waits for its turn; a passes it and waits for its own.
        assert!(
            ipc.semaphore_wait(b, b_wait, Blocking::Forever, &mut host)
                .unwrap()
                .is_blocked()
        );
        let outcome = ipc.semaphore_post_wait(a, b_turn, a_turn, Blocking::Forever, &mut host);
        assert_eq!(outcome, Ok(Outcome::Blocked));
        assert_eq!(
            host.take_wakes(),
            vec![(b, Wakeup::Completed(Completion::Acquired))]
        );
        // b passes the turn back to the parked a, and waits again.
        let outcome = ipc.semaphore_post_wait(b, b_post, b_wait, Blocking::Forever, &mut host);
        assert_eq!(outcome, Ok(Outcome::Blocked));
        assert_eq!(
            host.take_wakes(),
            vec![(a, Wakeup::Completed(Completion::Acquired))]
        );
        assert_eq!(ipc.semaphore_count(a, a_turn), Ok(0));
        assert_eq!(ipc.semaphore_count(a, b_turn), Ok(0));
        assert_eq!(ipc.usage().waiters, 1);
    }

    #[test]
    fn post_wait_checks_both_handles_before_posting() {
        let mut ipc = TestIpc::new();
        let mut host = TestHost::new();
        let a = ipc.process_create().unwrap();
        let s = ipc.semaphore_create(a, 0).unwrap();
        let post_only = ipc.handle_duplicate(a, s, Rights::SIGNAL).unwrap();
        let mailbox = ipc.mailbox_create(a).unwrap();
        // A wait handle without WAIT, of the wrong kind, or bogus: no unit posted.
        for wait in [post_only, mailbox, Handle::from_raw(0x7777)] {
            assert!(
                ipc.semaphore_post_wait(a, s, wait, Blocking::Forever, &mut host)
                    .is_err()
            );
            assert_eq!(ipc.semaphore_count(a, s), Ok(0));
        }
        let wait_only = ipc.handle_duplicate(a, s, Rights::WAIT).unwrap();
        assert_eq!(
            ipc.semaphore_post_wait(a, wait_only, s, Blocking::Forever, &mut host),
            Err(Error::PermissionDenied)
        );
        assert_eq!(ipc.semaphore_count(a, s), Ok(0));
        assert_eq!(ipc.usage().waiters, 0);
    }

    #[test]
    fn post_wait_on_one_semaphore_takes_its_own_unit() {
        let mut ipc = TestIpc::new();
        let mut host = TestHost::new();
        let a = ipc.process_create().unwrap();
        let s = ipc.semaphore_create(a, 0).unwrap();
        assert_eq!(
            ipc.semaphore_post_wait(a, s, s, Blocking::NonBlocking, &mut host),
            Ok(Outcome::Done(()))
        );
        // Without a unit to take, a non-blocking wait fails after its post.
        let other = ipc.semaphore_create(a, 0).unwrap();
        assert_eq!(
            ipc.semaphore_post_wait(a, other, s, Blocking::NonBlocking, &mut host),
            Err(Error::WouldBlock)
        );
        assert_eq!(ipc.semaphore_count(a, other), Ok(1));
        assert_eq!(ipc.semaphore_count(a, s), Ok(0));
    }
}
