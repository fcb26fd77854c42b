//! kipc: inter-process communication for small microkernels.
#![cfg_attr(not(test), no_std)]
