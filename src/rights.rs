//! Rights: what a handle allows its holder to do with the object behind it.
//!
//! Every handle carries a set of [`Rights`]. Each operation checks for the rights it needs
//! and fails with [`crate::Error::PermissionDenied`] otherwise. Rights can only shrink:
//! duplicating, minting or transferring a handle may drop rights, never add them.
//!
//! | right       | lets the holder ...                                                  |
//! |-------------|----------------------------------------------------------------------|
//! | `READ`      | receive from a mailbox / read a pipe / receive from a message queue  |
//! | `WRITE`     | send to a mailbox / write a pipe / send to a queue / reply / map RW  |
//! | `MAP`       | map a shared region into an address space                            |
//! | `TRANSFER`  | move the handle to another process through a mailbox                 |
//! | `DUPLICATE` | make a copy of the handle (with equal or fewer rights)               |
//! | `SIGNAL`    | post a semaphore / signal a notification                             |
//! | `WAIT`      | wait on a semaphore or notification                                  |

bitflags::bitflags! {
    /// The set of operations a handle permits; see the module documentation.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct Rights: u32 {
        /// Receive / read.
        const READ = 1 << 0;
        /// Send / write / reply / map read-write.
        const WRITE = 1 << 1;
        /// Map a shared region.
        const MAP = 1 << 2;
        /// Move the handle through a mailbox.
        const TRANSFER = 1 << 3;
        /// Duplicate the handle.
        const DUPLICATE = 1 << 4;
        /// Post a semaphore or signal a notification.
        const SIGNAL = 1 << 5;
        /// Wait on a semaphore or notification.
        const WAIT = 1 << 6;
    }
}

impl Rights {
    /// The rights a creator receives on a new object: everything.
    pub const CREATOR: Rights = Rights::all();

    /// Whether `self` holds every right in `needed`.
    pub const fn allows(self, needed: Rights) -> bool {
        self.contains(needed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subset_checks() {
        let r = Rights::READ | Rights::TRANSFER;
        assert!(r.allows(Rights::READ));
        assert!(!r.allows(Rights::READ | Rights::WRITE));
        assert!(Rights::CREATOR.allows(r));
    }
}
