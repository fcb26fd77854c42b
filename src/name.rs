//! Names for FIFOs and message queues: short, bounded byte strings.
//!
//! A name is 1 to [`NAME_MAX`] bytes and contains no NUL byte. It is stored inline (no
//! allocation) and compared byte for byte.

use crate::NAME_MAX;
use crate::error::Error;

/// A validated object name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Name {
    bytes: [u8; NAME_MAX],
    length: u8,
}

impl Name {
    /// The empty placeholder stored in free slots (never matches a valid name).
    pub(crate) const EMPTY: Name = Name {
        bytes: [0; NAME_MAX],
        length: 0,
    };

    /// Validates `bytes` as a name.
    ///
    /// Fails with [`Error::NameTooLong`] above [`NAME_MAX`] bytes and with
    /// [`Error::InvalidArgument`] for an empty name or one containing a NUL byte.
    pub fn new(bytes: &[u8]) -> Result<Name, Error> {
        if bytes.len() > NAME_MAX {
            return Err(Error::NameTooLong);
        }
        if bytes.is_empty() || bytes.contains(&0) {
            return Err(Error::InvalidArgument);
        }
        let mut name = Name::EMPTY;
        name.bytes[..bytes.len()].copy_from_slice(bytes);
        name.length = bytes.len() as u8;
        Ok(name)
    }

    /// The name's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.length as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation() {
        assert_eq!(Name::new(b"queue").unwrap().as_bytes(), b"queue");
        assert_eq!(Name::new(&[b'a'; NAME_MAX + 1]), Err(Error::NameTooLong));
        assert!(Name::new(&[b'a'; NAME_MAX]).is_ok());
        assert_eq!(Name::new(b""), Err(Error::InvalidArgument));
        assert_eq!(Name::new(b"a\0b"), Err(Error::InvalidArgument));
        assert_ne!(Name::new(b"a").unwrap(), Name::EMPTY);
    }
}
