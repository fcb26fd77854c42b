//! Layer 1, memory: physical frames and address spaces.
//!
//! Below it is only `kipc_arch` (the direct map the boot trampoline built);
//! above it, processes own address spaces and the file system owns frames.

pub mod address_space;
mod frames;

pub use frames::*;
pub use kipc_arch::boot::{kernel_physical_end, phys_to_virt};
