//! Layer 2, processes: the process table, the scheduler, program loading,
//! and this kernel's side of the kipc host contract.
//!
//! Files, from the bottom: [`breakdown`] (phase counters for the benchmark's
//! breakdown, empty in normal builds), [`resume`] (how a parked call gets its result),
//! [`table`] (processes and their states, [`table::System`] behind the
//! kernel lock), [`message_registers`] (short messages in saved registers),
//! [`host`] (kipc's host traits over the table), [`elf`],
//! [`initrd`] and [`programs`] (the boot archive and loading), [`scheduler`]
//! (kernel stacks, ready queue, timer tick), [`lifecycle`] (spawn, exit,
//! kill, the first process), [`signals`] (delivering signals on the way back
//! to user mode: handler frames, `signal_return`). Layers above are reached
//! only through [`lifecycle::ExitHooks`].

pub mod breakdown;
pub mod elf;
pub mod host;
pub mod initrd;
pub mod lifecycle;
pub mod message_registers;
pub mod programs;
pub mod resume;
pub mod scheduler;
pub mod signals;
pub mod table;
