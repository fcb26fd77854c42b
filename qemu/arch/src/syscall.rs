//! The `syscall` instruction: MSR set-up and the entry stub.
//!
//! `syscall` jumps to `syscall_entry` with interrupts masked (SFMASK clears
//! IF, TF, DF, AC). The stub swaps to the kernel GS (per-CPU data: the kernel
//! stack top and a scratch slot for the user RSP), switches to the running
//! process's kernel stack (set with [`crate::cpu::set_kernel_stack`]), and
//! pushes the same [`TrapFrame`] an interrupt would (vector
//! [`SYSCALL_VECTOR`]), so both share one return path (`iretq` in
//! `interrupt_return`). It then calls the kernel's
//! [`Handlers::system_call`](crate::interrupts::Handlers::system_call).
//!
//! The number arrives in `rax` and the arguments in `rdi rsi rdx r10 r8 r9`
//! (the frame holds them all); what the kernel writes into the frame's
//! registers is what the caller sees on return.

use core::arch::global_asm;

use x86_64::VirtAddr;
use x86_64::registers::model_specific::{Efer, EferFlags, GsBase, KernelGsBase, LStar, Msr};

use crate::interrupts::{SYSCALL_VECTOR, TrapFrame};

/// Per-CPU data reached through GS in the entry stub.
#[repr(C)]
struct PerCpu {
    /// Top of the running process's kernel stack (offset 0).
    kernel_stack: u64,
    /// The user RSP while the entry stub builds the frame (offset 8).
    user_stack: u64,
}

static mut PER_CPU: PerCpu = PerCpu {
    kernel_stack: 0,
    user_stack: 0,
};

global_asm!(
    r#"
    .section .text.syscall, "ax"
    .global syscall_entry
syscall_entry:
    swapgs
    mov gs:[8], rsp
    mov rsp, gs:[0]
    push {user_data}
    push qword ptr gs:[8]
    push r11
    push {user_code}
    push rcx
    push 0
    push {vector}
    push rax
    push rbx
    push rcx
    push rdx
    push rsi
    push rdi
    push rbp
    push r8
    push r9
    push r10
    push r11
    push r12
    push r13
    push r14
    push r15
    mov rdi, rsp
    cld
    call syscall_dispatch
    mov rsp, rax
    jmp interrupt_return
    "#,
    user_data = const 0x1b,
    user_code = const 0x23,
    vector = const SYSCALL_VECTOR,
);

unsafe extern "C" {
    fn syscall_entry();
}

/// Enables `syscall`/`sysret` and points the CPU at the entry stub.
pub fn init() {
    let selectors = crate::gdt::selectors();
    debug_assert_eq!(selectors.user_data.0, 0x1b);
    debug_assert_eq!(selectors.user_code.0, 0x23);
    // SAFETY: the MSR values follow the GDT layout (kernel code 0x08, data
    // 0x10; user data 0x18, code 0x20); LSTAR points at the entry stub above;
    // GS base is our per-CPU block while in the kernel, and the user's (0)
    // is parked in KERNEL_GS_BASE until the first `swapgs` on the way out.
    unsafe {
        Efer::update(|flags| *flags |= EferFlags::SYSTEM_CALL_EXTENSIONS);
        Msr::new(0xc000_0081).write((0x10u64 << 48) | (0x08u64 << 32)); // STAR
        LStar::write(VirtAddr::new(syscall_entry as *const () as u64));
        Msr::new(0xc000_0084).write(0x4_0700); // SFMASK: AC | DF | IF | TF
        GsBase::write(VirtAddr::from_ptr(core::ptr::addr_of!(PER_CPU)));
        KernelGsBase::write(VirtAddr::zero());
    }
}

/// The address of the entry stub (what LSTAR holds).
pub fn entry_address() -> u64 {
    syscall_entry as *const () as u64
}

/// Sets the kernel stack the entry stub switches to.
pub(crate) fn set_kernel_stack(top: u64) {
    // SAFETY: one aligned store, with interrupts off, on the only CPU; the
    // entry stub reads it only on the next `syscall`.
    unsafe { (*core::ptr::addr_of_mut!(PER_CPU)).kernel_stack = top };
}

/// Rewinds a frame saved by a system call so that, when resumed, the
/// `syscall` instruction (2 bytes) runs again with the registers it holds.
#[inline(always)]
pub fn restart(frame: &mut TrapFrame) {
    frame.rip -= 2;
}
