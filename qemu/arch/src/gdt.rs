//! Segments: the GDT, and the TSS with its interrupt stacks.
//!
//! Selector order is fixed by `syscall`/`sysret`: kernel code 0x08, kernel data
//! 0x10, user data 0x18, user code 0x20, then the TSS. The TSS holds RSP0 (the
//! stack the CPU switches to when an interrupt arrives in ring 3) and IST1,
//! a separate stack for double faults, so a kernel stack overflow still gets
//! reported.

use core::ptr::addr_of_mut;
use spin::Once;
use x86_64::VirtAddr;
use x86_64::instructions::segmentation::{CS, DS, ES, FS, GS, SS, Segment};
use x86_64::instructions::tables::load_tss;
use x86_64::registers::segmentation::SegmentSelector;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable};
use x86_64::structures::tss::TaskStateSegment;

/// IST slot (0-based, as the x86_64 crate counts) of the double-fault stack.
pub const DOUBLE_FAULT_IST_INDEX: u16 = 0;

const DOUBLE_FAULT_STACK_SIZE: usize = 16 * 1024;

#[repr(C, align(16))]
struct Stack([u8; DOUBLE_FAULT_STACK_SIZE]);

static mut DOUBLE_FAULT_STACK: Stack = Stack([0; DOUBLE_FAULT_STACK_SIZE]);

static mut TSS: TaskStateSegment = TaskStateSegment::new();

/// The selectors every other module needs.
#[derive(Clone, Copy, Debug)]
pub struct Selectors {
    /// Ring-0 code (0x08).
    pub kernel_code: SegmentSelector,
    /// Ring-0 data (0x10).
    pub kernel_data: SegmentSelector,
    /// Ring-3 data (0x1b with RPL 3).
    pub user_data: SegmentSelector,
    /// Ring-3 code (0x23 with RPL 3).
    pub user_code: SegmentSelector,
    /// The TSS.
    pub tss: SegmentSelector,
}

static GDT: Once<(GlobalDescriptorTable<8>, Selectors)> = Once::new();

/// Builds and loads the GDT and TSS, and reloads every segment register.
pub fn init() {
    // SAFETY: `init` runs once, on the boot CPU, before interrupts are enabled,
    // so nothing else holds a reference to the TSS or the stack while the IST
    // entry is written; afterwards the CPU is the only reader.
    let tss: &'static TaskStateSegment = unsafe {
        let stack_top =
            VirtAddr::from_ptr(addr_of_mut!(DOUBLE_FAULT_STACK)) + DOUBLE_FAULT_STACK_SIZE as u64;
        (*addr_of_mut!(TSS)).interrupt_stack_table[DOUBLE_FAULT_IST_INDEX as usize] = stack_top;
        &*addr_of_mut!(TSS)
    };
    let (gdt, selectors) = GDT.call_once(|| {
        let mut gdt = GlobalDescriptorTable::new();
        let kernel_code = gdt.append(Descriptor::kernel_code_segment());
        let kernel_data = gdt.append(Descriptor::kernel_data_segment());
        let user_data = gdt.append(Descriptor::user_data_segment());
        let user_code = gdt.append(Descriptor::user_code_segment());
        let tss = gdt.append(Descriptor::tss_segment(tss));
        (
            gdt,
            Selectors {
                kernel_code,
                kernel_data,
                user_data,
                user_code,
                tss,
            },
        )
    });
    gdt.load();
    // SAFETY: the selectors index the GDT just loaded, whose descriptors are
    // the flat 64-bit segments the rest of the kernel assumes.
    unsafe {
        CS::set_reg(selectors.kernel_code);
        SS::set_reg(selectors.kernel_data);
        DS::set_reg(SegmentSelector(0));
        ES::set_reg(SegmentSelector(0));
        FS::set_reg(SegmentSelector(0));
        GS::set_reg(SegmentSelector(0));
        load_tss(selectors.tss);
    }
}

/// The selectors of the loaded GDT.
pub fn selectors() -> Selectors {
    GDT.get().expect("gdt::init ran").1
}

/// Sets the stack the CPU switches to on an interrupt or exception from ring 3.
pub(crate) fn set_kernel_stack(top: VirtAddr) {
    // SAFETY: a single aligned 64-bit store into the TSS, done with interrupts
    // off by the scheduler on this (only) CPU; the CPU reads RSP0 only when it
    // delivers an interrupt from ring 3, which cannot happen concurrently.
    unsafe { (*addr_of_mut!(TSS)).privilege_stack_table[0] = top };
}
