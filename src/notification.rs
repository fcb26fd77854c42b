//! Notifications: a word of signal bits, for "something happened" without a payload.
//!
//! A notification holds a 64-bit word of pending bits. [`Ipc::notification_signal`] ORs
//! bits in; it never blocks and never loses a signal (signalling a bit that is already
//! pending merges with it, like an interrupt line). [`Ipc::notification_wait`] returns the
//! pending bits and clears them; with none pending it blocks (or `WouldBlock`, or times
//! out). A signal that finds a waiter hands all pending bits to the longest waiter, whose
//! wait completes with [`Completion::Notified`].
//!
//! Signalling needs [`Rights::SIGNAL`], waiting [`Rights::WAIT`]. Typical use: a producer
//! fills a shared region and signals bit 0; the consumer waits, reads, signals back.

use crate::error::Error;
use crate::handle::Handle;
use crate::host::{Host, ProcessId};
use crate::kernel::Ipc;
use crate::object::{Capability, Key, Object, ObjectKind, ObjectRef};
use crate::rights::Rights;
use crate::semaphore::SYNC_RIGHTS;
use crate::wait::{Blocking, Completion, Outcome, WaitOn, Wake, Wakeup};

/// The pending bits.
pub(crate) struct Notification {
    bits: u64,
}

impl Object for Notification {
    const EMPTY: Self = Notification { bits: 0 };
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
    /// Creates a notification with no bits pending (SIGNAL, WAIT, TRANSFER, DUPLICATE).
    ///
    /// # Example
    ///
    /// ```
    /// # use kipc::*;
    /// # #[allow(unused)]
    /// # fn example(ipc: &mut DefaultIpc, host: &mut impl Host, caller: ProcessId, peer: ProcessId, handle: Handle, buffer: UserSlice) -> Result<(), Error> {
    /// let events = ipc.notification_create(caller)?;
    /// # Ok(()) }
    /// ```
    pub fn notification_create(&mut self, caller: ProcessId) -> Result<Handle, Error> {
        self.reserve_handles(caller, 1)?;
        let (key, notification) = self
            .notifications
            .allocate(caller, L::QUOTAS.objects_per_kind)?;
        notification.bits = 0;
        let capability = Capability {
            object: ObjectRef::Notification(key),
            rights: SYNC_RIGHTS,
            badge: 0,
        };
        self.install_new(caller, capability)
    }

    /// ORs `bits` into the word (needs SIGNAL); a waiter receives all pending bits at once.
    ///
    /// # Example
    ///
    /// ```
    /// # use kipc::*;
    /// # #[allow(unused)]
    /// # fn example(ipc: &mut DefaultIpc, host: &mut impl Host, caller: ProcessId, peer: ProcessId, handle: Handle, buffer: UserSlice) -> Result<(), Error> {
    /// ipc.notification_signal(caller, handle, 0b100, host)?; // sets bit 2
    /// # Ok(()) }
    /// ```
    pub fn notification_signal<H: Host>(
        &mut self,
        caller: ProcessId,
        handle: Handle,
        bits: u64,
        host: &mut H,
    ) -> Result<(), Error> {
        let wake = host;
        let key = self.notification_key(caller, handle, Rights::SIGNAL)?;
        let notification = self.notifications.get_mut(key).ok_or(Error::BadHandle)?;
        notification.bits |= bits;
        if notification.bits == 0 {
            return Ok(());
        }
        if let Some((waiter, _)) = self.oldest_waiter(|on| *on == WaitOn::Notification(key)) {
            let notification = self.notifications.get_mut(key).ok_or(Error::BadHandle)?;
            let bits = core::mem::take(&mut notification.bits);
            self.finish_wait(waiter, Wakeup::Completed(Completion::Notified(bits)), wake);
        }
        Ok(())
    }

    /// Returns and clears the pending bits (needs WAIT); with none pending, blocks per
    /// `blocking`, completing later with [`Completion::Notified`].
    ///
    /// # Example
    ///
    /// ```
    /// # use kipc::*;
    /// # #[allow(unused)]
    /// # fn example(ipc: &mut DefaultIpc, host: &mut impl Host, caller: ProcessId, peer: ProcessId, handle: Handle, buffer: UserSlice) -> Result<(), Error> {
    /// if let Outcome::Done(bits) = ipc.notification_wait(caller, handle, Blocking::Forever, host)? {
    ///     // `bits` were set (and are now cleared)
    /// }
    /// # Ok(()) }
    /// ```
    pub fn notification_wait<H: Host>(
        &mut self,
        caller: ProcessId,
        handle: Handle,
        blocking: Blocking,
        host: &mut H,
    ) -> Result<Outcome<u64>, Error> {
        let key = self.notification_key(caller, handle, Rights::WAIT)?;
        let notification = self.notifications.get_mut(key).ok_or(Error::BadHandle)?;
        if notification.bits != 0 {
            return Ok(Outcome::Done(core::mem::take(&mut notification.bits)));
        }
        self.block(caller, WaitOn::Notification(key), blocking, host)
    }

    fn notification_key(
        &self,
        caller: ProcessId,
        handle: Handle,
        needed: Rights,
    ) -> Result<Key, Error> {
        match self
            .lookup(caller, handle, ObjectKind::Notification, needed)?
            .object
        {
            ObjectRef::Notification(key) => Ok(key),
            _ => Err(Error::WrongObjectKind),
        }
    }

    pub(crate) fn notification_released<W: Wake + ?Sized>(&mut self, key: Key, wake: &mut W) {
        let Some(slot) = self.notifications.slot_mut(key) else {
            return;
        };
        slot.references -= 1;
        if slot.references == 0 {
            self.wake_all(Wakeup::Failed(Error::PeerClosed), wake, |on| {
                *on == WaitOn::Notification(key)
            });
            self.notifications.free(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::{TestHost, TestIpc};
    use crate::*;

    #[test]
    fn bits_accumulate_and_clear() {
        let mut ipc = TestIpc::new();
        let mut host = TestHost::new();
        let a = ipc.process_create().unwrap();
        let n = ipc.notification_create(a).unwrap();
        assert_eq!(
            ipc.notification_wait(a, n, Blocking::NonBlocking, &mut host),
            Err(Error::WouldBlock)
        );
        ipc.notification_signal(a, n, 0b01, &mut host).unwrap();
        ipc.notification_signal(a, n, 0b10, &mut host).unwrap();
        assert_eq!(
            ipc.notification_wait(a, n, Blocking::NonBlocking, &mut host),
            Ok(Outcome::Done(0b11))
        );
        assert!(
            ipc.notification_wait(a, n, Blocking::Forever, &mut host)
                .unwrap()
                .is_blocked()
        );
        ipc.notification_signal(a, n, 0, &mut host).unwrap();
        assert!(host.wakes.is_empty(), "no bits, no wake");
        ipc.notification_signal(a, n, 0b100, &mut host).unwrap();
        assert_eq!(
            host.take_wakes(),
            vec![(a, Wakeup::Completed(Completion::Notified(0b100)))]
        );
        assert_eq!(
            ipc.notification_wait(a, n, Blocking::NonBlocking, &mut host),
            Err(Error::WouldBlock)
        );
    }
}
