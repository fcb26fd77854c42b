//! Wrappers for the kipc system calls.
