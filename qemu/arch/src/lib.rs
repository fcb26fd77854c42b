//! What any x86_64 kernel booted by the kipc runner needs, and nothing more.
//!
//! Both kernels under `qemu/` (the demo kernel and the minimal one) build on
//! this crate, so neither carries its own copy of the machine code:
//!
//! | module | what it owns |
//! | --- | --- |
//! | [`boot`] | the PVH note, the 32-bit to 64-bit trampoline, the boot page tables, the direct map, [`entry_point!`] |
//! | [`pvh`] | reading `hvm_start_info`: memory map, command line, boot modules |
//! | [`serial`] | the COM1 console, [`print!`] and [`println!`] |
//! | [`gdt`] | GDT and TSS (double-fault stack, ring-0 stack for interrupts from ring 3) |
//! | [`interrupts`] | the IDT, the entry stubs, [`interrupts::TrapFrame`], the fault report, the [`interrupts::Handlers`] hooks |
//! | [`syscall`] | `syscall`/`sysret` set-up and the entry stub |
//! | [`timer`] | the 8259 PICs and the PIT, the tick count |
//! | [`cpu`] | optional protections (SMEP, SMAP) and the per-process kernel stack |
//! | [`exit`] | leaving QEMU through the `isa-debug-exit` device |
//! | [`verdict`] | the `KIPC-RESULT: PASS/FAIL` line the runner judges, [`check!`] |
//!
//! A kernel calls up from here only through the hooks it installs with
//! [`interrupts::set_handlers`]: this crate never names a kernel's modules.
//! Boot order: [`serial::init`], [`gdt::init`], [`interrupts::init`],
//! [`pvh::parse`], [`boot::drop_identity_map`], the kernel's memory set-up,
//! [`syscall::init`], [`cpu::enable_protections`], [`timer::init`].

#![no_std]
#![forbid(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

pub mod boot;
pub mod cpu;
pub mod exit;
pub mod gdt;
pub mod interrupts;
pub mod pvh;
pub mod serial;
pub mod syscall;
pub mod timer;
pub mod verdict;
