//! Layer 3, services: what the kernel offers besides IPC. Here, the RAM file
//! system the file-transfer experiment reads from and writes to.
//!
//! [`release_process`] is this layer's exit hook: `main.rs` installs it in
//! [`crate::processes::lifecycle::ExitHooks`].

pub mod fs;

use kipc::ProcessId;

/// Releases what services keep for a process that has ended (its open files).
pub fn release_process(process: ProcessId) {
    fs::FILES.lock().release(process);
}
