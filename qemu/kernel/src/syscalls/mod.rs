//! Layer 4, system calls: the dispatcher and one file per family of calls.
//!
//! Files, from the bottom: [`common`] (the [`common::Flow`] a handler
//! returns, checked argument copies), [`process_calls`], [`ipc_calls`],
//! [`file_calls`], [`signal_calls`], [`fast_path`] (the mailbox round trip's
//! shortcut), and [`entry`] (the dispatcher, installed by `main.rs` as the
//! system-call handler).

pub mod common;
pub mod entry;
pub mod fast_path;
pub mod file_calls;
pub mod ipc_calls;
pub mod process_calls;
pub mod signal_calls;
