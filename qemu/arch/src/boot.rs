//! PVH entry and the trampoline from 32-bit protected mode to 64-bit long mode.
//!
//! QEMU loads the kernel ELF at its physical addresses and, because of the Xen
//! PVH note below, jumps to `pvh_start32` in 32-bit protected mode with paging
//! off and `EBX` holding the physical address of `hvm_start_info`.
//!
//! The trampoline builds the boot page tables (2 MiB pages):
//! - PML4[0]   -> physical 0..4 GiB, identity (only needed until we run high);
//! - PML4[256] -> physical 0..4 GiB at `DIRECT_MAP_BASE` (the direct map);
//! - PML4[511] -> physical 0..2 GiB at 0xffffffff80000000 (the kernel image).
//!
//! then enables PAE, long mode and no-execute, turns paging on, and jumps to
//! `kernel_entry` in the higher half on the boot stack, passing the start-info
//! address in `RDI`. The kernel defines `kernel_entry` with [`entry_point!`]
//! and drops the identity mapping soon after ([`drop_identity_map`]).
//!
//! The linker script (`targets/kernel.ld`) places the `.boot*` sections at
//! their physical addresses and names `pvh_start32` as the entry; it also
//! marks the symbol `EXTERN`, so the linker keeps this object even though no
//! Rust code calls it.

use core::arch::global_asm;

use x86_64::registers::control::Cr3;
use x86_64::structures::paging::PageTable;
use x86_64::structures::paging::page_table::PageTableEntry;

/// Virtual address where all physical memory (up to 4 GiB) is mapped.
pub const DIRECT_MAP_BASE: u64 = 0xffff_8000_0000_0000;
/// Physical memory the direct map covers.
pub const DIRECT_MAP_SIZE: u64 = 4 << 30;

unsafe extern "C" {
    static __kernel_phys_end: u8;
}

/// The kernel-virtual address of physical address `physical`.
#[inline(always)]
pub fn phys_to_virt(physical: u64) -> u64 {
    debug_assert!(physical < DIRECT_MAP_SIZE);
    DIRECT_MAP_BASE + physical
}

/// First physical address past the kernel image (including its .bss).
pub fn kernel_physical_end() -> u64 {
    // The linker script defines the symbol; only its address is used.
    &raw const __kernel_phys_end as u64
}

/// Removes the boot identity mapping of low memory, so the lower half of
/// every address space belongs to user space alone.
pub fn drop_identity_map() {
    let (pml4_frame, flags) = Cr3::read();
    let pml4 = phys_to_virt(pml4_frame.start_address().as_u64()) as *mut PageTable;
    // SAFETY: CR3 points at the boot PML4, reachable through the direct map;
    // we run in the higher half on a higher-half stack, so nothing uses slot 0
    // any more. Reloading CR3 flushes the stale translations.
    unsafe {
        (&mut *pml4)[0] = PageTableEntry::new();
        Cr3::write(pml4_frame, flags);
    }
}

/// Defines the kernel's Rust entry point, `kernel_entry`, which the boot
/// trampoline calls on the boot stack with interrupts off. `$main` is a
/// `fn(u64) -> !` that receives the physical address of `hvm_start_info`
/// (hand it to [`crate::pvh::parse`]).
///
/// ```ignore
/// kipc_arch::entry_point!(main);
/// fn main(start_info: u64) -> ! { /* ... */ }
/// ```
#[macro_export]
macro_rules! entry_point {
    ($main:path) => {
        #[unsafe(no_mangle)]
        extern "C" fn kernel_entry(start_info: u32) -> ! {
            let main: fn(u64) -> ! = $main;
            main(u64::from(start_info))
        }
    };
}

/// Size of the boot stack (also the kernel stack of the boot CPU).
pub const BOOT_STACK_SIZE: usize = 64 * 1024;

global_asm!(
    r#"
    .section .note.Xen, "a", @note
    .p2align 2
    .long 4                 /* name size: "Xen\0" */
    .long 8                 /* descriptor size */
    .long 18                /* XEN_ELFNOTE_PHYS32_ENTRY */
    .asciz "Xen"
    .p2align 2
    .quad pvh_start32       /* QEMU 7.2 wants 8 bytes here */
    .p2align 2

    .section .boot.bss, "aw", @nobits
    .p2align 12
boot_pml4:        .skip 4096
boot_pdpt_low:    .skip 4096
boot_pdpt_high:   .skip 4096
boot_pd:          .skip 4096 * 4
boot_tables_end:

    .section .boot.data, "aw"
    .p2align 3
boot_gdt:
    .quad 0
    .quad 0x00af9a000000ffff    /* 0x08: 64-bit code, ring 0 */
    .quad 0x00cf92000000ffff    /* 0x10: data, ring 0 */
boot_gdt_end:
boot_gdt_pointer:
    .word boot_gdt_end - boot_gdt - 1
    .long boot_gdt

    .section .boot.text, "ax"
    .code32
    .global pvh_start32
pvh_start32:
    cli
    cld
    mov %ebx, %esi

    /* Zero the boot page tables. */
    mov $boot_pml4, %edi
    mov $(boot_tables_end - boot_pml4) / 4, %ecx
    xor %eax, %eax
    rep stosl

    /* Four page directories: physical 0..4 GiB in 2 MiB pages. */
    mov $boot_pd, %edi
    mov $0x83, %eax             /* present | writable | huge */
    xor %edx, %edx
    mov $2048, %ecx
2:
    mov %eax, (%edi)
    mov %edx, 4(%edi)
    add $0x200000, %eax
    adc $0, %edx
    add $8, %edi
    dec %ecx
    jnz 2b

    /* PDPT (low): four entries, one per GiB. */
    mov $boot_pd + 3, %eax
    mov %eax, boot_pdpt_low
    add $4096, %eax
    mov %eax, boot_pdpt_low + 8
    add $4096, %eax
    mov %eax, boot_pdpt_low + 16
    add $4096, %eax
    mov %eax, boot_pdpt_low + 24

    /* PDPT (high): entries 510 and 511 cover 0xffffffff80000000.. */
    mov $boot_pd + 3, %eax
    mov %eax, boot_pdpt_high + 510 * 8
    add $4096, %eax
    mov %eax, boot_pdpt_high + 511 * 8

    /* PML4: identity, direct map, kernel image. */
    mov $boot_pdpt_low + 3, %eax
    mov %eax, boot_pml4
    mov %eax, boot_pml4 + 256 * 8
    mov $boot_pdpt_high + 3, %eax
    mov %eax, boot_pml4 + 511 * 8

    mov $boot_pml4, %eax
    mov %eax, %cr3

    mov %cr4, %eax
    or $(1 << 5), %eax          /* PAE */
    mov %eax, %cr4

    mov $0xC0000080, %ecx       /* IA32_EFER */
    rdmsr
    or $((1 << 8) | (1 << 11)), %eax    /* LME | NXE */
    wrmsr

    mov %cr0, %eax
    or $((1 << 31) | (1 << 16) | 1), %eax  /* PG | WP | PE */
    mov %eax, %cr0

    lgdt boot_gdt_pointer
    ljmp $0x08, $pvh_long_mode

    .code64
pvh_long_mode:
    mov $0x10, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    xor %ax, %ax
    mov %ax, %fs
    mov %ax, %gs
    movabs $boot_stack_top, %rsp
    xor %ebp, %ebp
    mov %esi, %edi
    movabs $kernel_entry, %rax
    call *%rax
3:
    hlt
    jmp 3b

    .section .bss.boot_stack, "aw", @nobits
    .p2align 12
    .global boot_stack_bottom
boot_stack_bottom:
    .skip {stack_size}
    .global boot_stack_top
boot_stack_top:
    "#,
    stack_size = const BOOT_STACK_SIZE,
    options(att_syntax)
);
