//! Interrupts and CPU exceptions: the IDT, the entry stubs, and the fault report.
//!
//! Every vector 0..48 has a tiny stub (written in assembly, since
//! `extern "x86-interrupt"` is not stable) that pushes a uniform [`TrapFrame`]
//! and calls `interrupt_dispatch` with a pointer to it. The dispatcher
//! returns the frame to resume, which lets the kernel's scheduler switch
//! stacks.
//!
//! The kernel above this crate is reached only through the [`Handlers`] it
//! installs with [`set_handlers`]: a system call, a timer tick, an exception
//! raised in ring 3. Everything else is handled here: other IRQs are
//! acknowledged and counted, and an exception in the kernel is fatal (the
//! vector, its name, the error code, RIP, CR2 and every register go to
//! serial, then QEMU exits with the failure code).

use core::arch::global_asm;
use core::fmt;
use spin::Once;
use x86_64::VirtAddr;
use x86_64::registers::control::{Cr2, Cr3};
use x86_64::structures::idt::InterruptDescriptorTable;

use crate::gdt::DOUBLE_FAULT_IST_INDEX;
use crate::timer::{PIC_VECTOR_BASE, TIMER_VECTOR};
/// Number of vectors with stubs.
const STUB_COUNT: usize = 48;

/// Registers saved on interrupt entry, lowest address first.
///
/// The stubs push `error_code` (or 0) and `vector`, then the general-purpose
/// registers; the CPU pushed `rip` .. `ss`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
#[allow(missing_docs)]
pub struct TrapFrame {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rbp: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub rbx: u64,
    pub rax: u64,
    pub vector: u64,
    pub error_code: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

impl TrapFrame {
    /// Whether the interrupted code ran in ring 3.
    pub fn came_from_user(&self) -> bool {
        self.cs & 3 == 3
    }
}

global_asm!(
    r#"
    .section .text.interrupts, "ax"
    .global interrupt_common
interrupt_common:
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
    test byte ptr [rsp + 144], 3
    jz 4f
    swapgs
4:
    mov rdi, rsp
    cld
    call interrupt_dispatch
    mov rsp, rax
    .global interrupt_return
interrupt_return:
    test byte ptr [rsp + 144], 3
    jz 5f
    swapgs
5:
    pop r15
    pop r14
    pop r13
    pop r12
    pop r11
    pop r10
    pop r9
    pop r8
    pop rbp
    pop rdi
    pop rsi
    pop rdx
    pop rcx
    pop rbx
    pop rax
    add rsp, 16
    iretq

    .global interrupt_stub_0
interrupt_stub_0:
    push 0
    push 0
    jmp interrupt_common
    .global interrupt_stub_1
interrupt_stub_1:
    push 0
    push 1
    jmp interrupt_common
    .global interrupt_stub_2
interrupt_stub_2:
    push 0
    push 2
    jmp interrupt_common
    .global interrupt_stub_3
interrupt_stub_3:
    push 0
    push 3
    jmp interrupt_common
    .global interrupt_stub_4
interrupt_stub_4:
    push 0
    push 4
    jmp interrupt_common
    .global interrupt_stub_5
interrupt_stub_5:
    push 0
    push 5
    jmp interrupt_common
    .global interrupt_stub_6
interrupt_stub_6:
    push 0
    push 6
    jmp interrupt_common
    .global interrupt_stub_7
interrupt_stub_7:
    push 0
    push 7
    jmp interrupt_common
    .global interrupt_stub_8
interrupt_stub_8:
    push 8
    jmp interrupt_common
    .global interrupt_stub_9
interrupt_stub_9:
    push 0
    push 9
    jmp interrupt_common
    .global interrupt_stub_10
interrupt_stub_10:
    push 10
    jmp interrupt_common
    .global interrupt_stub_11
interrupt_stub_11:
    push 11
    jmp interrupt_common
    .global interrupt_stub_12
interrupt_stub_12:
    push 12
    jmp interrupt_common
    .global interrupt_stub_13
interrupt_stub_13:
    push 13
    jmp interrupt_common
    .global interrupt_stub_14
interrupt_stub_14:
    push 14
    jmp interrupt_common
    .global interrupt_stub_15
interrupt_stub_15:
    push 0
    push 15
    jmp interrupt_common
    .global interrupt_stub_16
interrupt_stub_16:
    push 0
    push 16
    jmp interrupt_common
    .global interrupt_stub_17
interrupt_stub_17:
    push 17
    jmp interrupt_common
    .global interrupt_stub_18
interrupt_stub_18:
    push 0
    push 18
    jmp interrupt_common
    .global interrupt_stub_19
interrupt_stub_19:
    push 0
    push 19
    jmp interrupt_common
    .global interrupt_stub_20
interrupt_stub_20:
    push 0
    push 20
    jmp interrupt_common
    .global interrupt_stub_21
interrupt_stub_21:
    push 21
    jmp interrupt_common
    .global interrupt_stub_22
interrupt_stub_22:
    push 0
    push 22
    jmp interrupt_common
    .global interrupt_stub_23
interrupt_stub_23:
    push 0
    push 23
    jmp interrupt_common
    .global interrupt_stub_24
interrupt_stub_24:
    push 0
    push 24
    jmp interrupt_common
    .global interrupt_stub_25
interrupt_stub_25:
    push 0
    push 25
    jmp interrupt_common
    .global interrupt_stub_26
interrupt_stub_26:
    push 0
    push 26
    jmp interrupt_common
    .global interrupt_stub_27
interrupt_stub_27:
    push 0
    push 27
    jmp interrupt_common
    .global interrupt_stub_28
interrupt_stub_28:
    push 0
    push 28
    jmp interrupt_common
    .global interrupt_stub_29
interrupt_stub_29:
    push 29
    jmp interrupt_common
    .global interrupt_stub_30
interrupt_stub_30:
    push 30
    jmp interrupt_common
    .global interrupt_stub_31
interrupt_stub_31:
    push 0
    push 31
    jmp interrupt_common
    .global interrupt_stub_32
interrupt_stub_32:
    push 0
    push 32
    jmp interrupt_common
    .global interrupt_stub_33
interrupt_stub_33:
    push 0
    push 33
    jmp interrupt_common
    .global interrupt_stub_34
interrupt_stub_34:
    push 0
    push 34
    jmp interrupt_common
    .global interrupt_stub_35
interrupt_stub_35:
    push 0
    push 35
    jmp interrupt_common
    .global interrupt_stub_36
interrupt_stub_36:
    push 0
    push 36
    jmp interrupt_common
    .global interrupt_stub_37
interrupt_stub_37:
    push 0
    push 37
    jmp interrupt_common
    .global interrupt_stub_38
interrupt_stub_38:
    push 0
    push 38
    jmp interrupt_common
    .global interrupt_stub_39
interrupt_stub_39:
    push 0
    push 39
    jmp interrupt_common
    .global interrupt_stub_40
interrupt_stub_40:
    push 0
    push 40
    jmp interrupt_common
    .global interrupt_stub_41
interrupt_stub_41:
    push 0
    push 41
    jmp interrupt_common
    .global interrupt_stub_42
interrupt_stub_42:
    push 0
    push 42
    jmp interrupt_common
    .global interrupt_stub_43
interrupt_stub_43:
    push 0
    push 43
    jmp interrupt_common
    .global interrupt_stub_44
interrupt_stub_44:
    push 0
    push 44
    jmp interrupt_common
    .global interrupt_stub_45
interrupt_stub_45:
    push 0
    push 45
    jmp interrupt_common
    .global interrupt_stub_46
interrupt_stub_46:
    push 0
    push 46
    jmp interrupt_common
    .global interrupt_stub_47
interrupt_stub_47:
    push 0
    push 47
    jmp interrupt_common

    .section .rodata.interrupt_stub_table, "a"
    .p2align 3
    .global interrupt_stub_table
interrupt_stub_table:
    .quad interrupt_stub_0
    .quad interrupt_stub_1
    .quad interrupt_stub_2
    .quad interrupt_stub_3
    .quad interrupt_stub_4
    .quad interrupt_stub_5
    .quad interrupt_stub_6
    .quad interrupt_stub_7
    .quad interrupt_stub_8
    .quad interrupt_stub_9
    .quad interrupt_stub_10
    .quad interrupt_stub_11
    .quad interrupt_stub_12
    .quad interrupt_stub_13
    .quad interrupt_stub_14
    .quad interrupt_stub_15
    .quad interrupt_stub_16
    .quad interrupt_stub_17
    .quad interrupt_stub_18
    .quad interrupt_stub_19
    .quad interrupt_stub_20
    .quad interrupt_stub_21
    .quad interrupt_stub_22
    .quad interrupt_stub_23
    .quad interrupt_stub_24
    .quad interrupt_stub_25
    .quad interrupt_stub_26
    .quad interrupt_stub_27
    .quad interrupt_stub_28
    .quad interrupt_stub_29
    .quad interrupt_stub_30
    .quad interrupt_stub_31
    .quad interrupt_stub_32
    .quad interrupt_stub_33
    .quad interrupt_stub_34
    .quad interrupt_stub_35
    .quad interrupt_stub_36
    .quad interrupt_stub_37
    .quad interrupt_stub_38
    .quad interrupt_stub_39
    .quad interrupt_stub_40
    .quad interrupt_stub_41
    .quad interrupt_stub_42
    .quad interrupt_stub_43
    .quad interrupt_stub_44
    .quad interrupt_stub_45
    .quad interrupt_stub_46
    .quad interrupt_stub_47
    "#
);

unsafe extern "C" {
    static interrupt_stub_table: [u64; STUB_COUNT];
    fn interrupt_return() -> !;
}

/// Vector number the system-call entry stub stores in its frame.
pub const SYSCALL_VECTOR: u64 = 256;

/// Starts executing `frame`: restores its registers and `iretq`s to it.
///
/// # Safety
/// `frame` must be a complete [`TrapFrame`] at the top of a kernel stack that
/// nothing else uses, whose CR3, RSP0 and segment state are already loaded.
pub unsafe fn resume(frame: *mut TrapFrame) -> ! {
    // SAFETY: per the contract, `frame` is a full frame; `interrupt_return`
    // pops it exactly as if an interrupt were returning to it.
    unsafe {
        core::arch::asm!(
            "mov rsp, {frame}",
            "jmp {return}",
            frame = in(reg) frame,
            return = sym interrupt_return,
            options(noreturn)
        )
    }
}

const _: () = assert!(core::mem::offset_of!(TrapFrame, cs) == 144);

/// Names of the CPU exceptions, by vector.
pub fn exception_name(vector: u64) -> &'static str {
    match vector {
        0 => "#DE divide error",
        1 => "#DB debug",
        2 => "NMI",
        3 => "#BP breakpoint",
        4 => "#OF overflow",
        5 => "#BR bound range exceeded",
        6 => "#UD invalid opcode",
        7 => "#NM device not available",
        8 => "#DF double fault",
        10 => "#TS invalid TSS",
        11 => "#NP segment not present",
        12 => "#SS stack-segment fault",
        13 => "#GP general protection fault",
        14 => "#PF page fault",
        16 => "#MF x87 floating-point error",
        17 => "#AC alignment check",
        18 => "#MC machine check",
        19 => "#XM SIMD floating-point error",
        20 => "#VE virtualization exception",
        21 => "#CP control protection",
        28 => "#HV hypervisor injection",
        29 => "#VC VMM communication",
        30 => "#SX security exception",
        _ => "reserved exception",
    }
}

fn stub_address(vector: usize) -> VirtAddr {
    // SAFETY: the table is a read-only array the assembly above defines with
    // exactly STUB_COUNT entries.
    VirtAddr::new(unsafe { interrupt_stub_table[vector] })
}

/// Builds an IDT whose exception vectors and the 16 legacy IRQ vectors point
/// at the stubs.
fn build_idt(idt: &mut InterruptDescriptorTable) {
    // SAFETY (for every `set_handler_addr` below): each address is one of the
    // stubs above, which save all registers, keep the stack layout the CPU
    // built (popping the error code it pushed) and return with `iretq`.
    unsafe {
        idt.divide_error.set_handler_addr(stub_address(0));
        idt.debug.set_handler_addr(stub_address(1));
        idt.non_maskable_interrupt.set_handler_addr(stub_address(2));
        idt.breakpoint.set_handler_addr(stub_address(3));
        idt.overflow.set_handler_addr(stub_address(4));
        idt.bound_range_exceeded.set_handler_addr(stub_address(5));
        idt.invalid_opcode.set_handler_addr(stub_address(6));
        idt.device_not_available.set_handler_addr(stub_address(7));
        idt.double_fault
            .set_handler_addr(stub_address(8))
            .set_stack_index(DOUBLE_FAULT_IST_INDEX);
        idt.invalid_tss.set_handler_addr(stub_address(10));
        idt.segment_not_present.set_handler_addr(stub_address(11));
        idt.stack_segment_fault.set_handler_addr(stub_address(12));
        idt.general_protection_fault
            .set_handler_addr(stub_address(13));
        idt.page_fault.set_handler_addr(stub_address(14));
        idt.x87_floating_point.set_handler_addr(stub_address(16));
        idt.alignment_check.set_handler_addr(stub_address(17));
        idt.machine_check.set_handler_addr(stub_address(18));
        idt.simd_floating_point.set_handler_addr(stub_address(19));
        idt.virtualization.set_handler_addr(stub_address(20));
        idt.cp_protection_exception
            .set_handler_addr(stub_address(21));
        idt.hv_injection_exception
            .set_handler_addr(stub_address(28));
        idt.vmm_communication_exception
            .set_handler_addr(stub_address(29));
        idt.security_exception.set_handler_addr(stub_address(30));
        for vector in 32..STUB_COUNT {
            idt[vector as u8].set_handler_addr(stub_address(vector));
        }
    }
}

static IDT: Once<InterruptDescriptorTable> = Once::new();

/// Builds and loads the IDT.
pub fn init() {
    IDT.call_once(|| {
        let mut idt = InterruptDescriptorTable::new();
        build_idt(&mut idt);
        idt
    })
    .load();
}

/// Loads an IDT in which only the double-fault gate is present, to show that
/// a fault whose handler is missing escalates to a reported double fault.
pub fn load_double_fault_only_idt() {
    static BROKEN: Once<InterruptDescriptorTable> = Once::new();
    BROKEN
        .call_once(|| {
            let mut idt = InterruptDescriptorTable::new();
            // SAFETY: as in `build_idt`.
            unsafe {
                idt.double_fault
                    .set_handler_addr(stub_address(8))
                    .set_stack_index(DOUBLE_FAULT_IST_INDEX);
            }
            idt
        })
        .load();
}

/// Loads an empty IDT: the next exception triple-faults the machine.
pub fn load_empty_idt() {
    static EMPTY: InterruptDescriptorTable = InterruptDescriptorTable::new();
    EMPTY.load();
}

/// An exception raised by code running in ring 3.
#[derive(Clone, Copy, Debug)]
pub struct UserException {
    /// The vector (0..32).
    pub vector: u64,
    /// Its name, for the report.
    pub name: &'static str,
    /// The faulting address (CR2) of a page fault.
    pub address: Option<u64>,
}

/// What the kernel does with the events this crate cannot handle alone.
/// Each handler gets the saved frame and returns the frame to resume (the
/// same one, or another process's).
#[derive(Clone, Copy)]
pub struct Handlers {
    /// A `syscall` instruction from ring 3 (the frame's vector is
    /// [`SYSCALL_VECTOR`]).
    pub system_call: fn(*mut TrapFrame) -> *mut TrapFrame,
    /// A timer tick, already counted and acknowledged (see [`crate::timer`]).
    pub timer: fn(*mut TrapFrame) -> *mut TrapFrame,
    /// An exception in ring 3: typically the process dies.
    pub user_exception: fn(*mut TrapFrame, UserException) -> *mut TrapFrame,
}

static HANDLERS: Once<Handlers> = Once::new();

/// Installs the kernel's handlers (once; later calls are ignored). Until
/// then timer ticks only count, and a system call or user exception is a
/// kernel fault.
pub fn set_handlers(handlers: Handlers) {
    HANDLERS.call_once(|| handlers);
}

/// Called by `interrupt_common` with the saved frame; returns the frame to resume.
#[unsafe(no_mangle)]
extern "C" fn interrupt_dispatch(frame: *mut TrapFrame) -> *mut TrapFrame {
    // SAFETY: `interrupt_common` passes a pointer to the frame it just pushed
    // on the current stack; it stays valid and unaliased until we return.
    let trap = unsafe { &mut *frame };
    let handlers = HANDLERS.get();
    match (trap.vector, handlers) {
        (0..=31, Some(handlers)) if trap.came_from_user() => {
            let exception = UserException {
                vector: trap.vector,
                name: exception_name(trap.vector),
                address: (trap.vector == 14).then(Cr2::read_raw),
            };
            (handlers.user_exception)(frame, exception)
        }
        (vector, handlers) if vector == u64::from(TIMER_VECTOR) => {
            crate::timer::on_tick();
            match handlers {
                Some(handlers) => (handlers.timer)(frame),
                None => frame,
            }
        }
        (vector, _) if (u64::from(PIC_VECTOR_BASE)..STUB_COUNT as u64).contains(&vector) => {
            crate::timer::on_other_irq(vector as u8);
            frame
        }
        _ => kernel_fault(trap),
    }
}

/// Called by the system-call entry stub (see [`crate::syscall`]).
#[unsafe(no_mangle)]
extern "C" fn syscall_dispatch(frame: *mut TrapFrame) -> *mut TrapFrame {
    match HANDLERS.get() {
        Some(handlers) => (handlers.system_call)(frame),
        // SAFETY: the frame the entry stub just pushed.
        None => kernel_fault(unsafe { &*frame }),
    }
}

/// Reports a fault in the kernel and exits QEMU with the failure code.
pub fn kernel_fault(trap: &TrapFrame) -> ! {
    let cr2 = Cr2::read_raw();
    let (cr3, _) = Cr3::read();
    crate::serial::emergency_write_fmt(format_args!(
        "\n!!! KERNEL FAULT: {} (vector {}) error code {:#x}\n{}    cr2 {:#018x}  cr3 {:#018x}\n",
        exception_name(trap.vector),
        trap.vector,
        trap.error_code,
        RegisterDump(trap),
        cr2,
        cr3.start_address().as_u64(),
    ));
    crate::verdict::fail(format_args!(
        "kernel fault {} at rip {:#x} (cr2 {:#x})",
        exception_name(trap.vector),
        trap.rip,
        cr2
    ))
}

/// Formats every saved register, four to a line.
pub struct RegisterDump<'a>(pub &'a TrapFrame);

impl fmt::Display for RegisterDump<'_> {
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.0;
        let registers = [
            ("rip", t.rip),
            ("cs", t.cs),
            ("rflags", t.rflags),
            ("rsp", t.rsp),
            ("ss", t.ss),
            ("rax", t.rax),
            ("rbx", t.rbx),
            ("rcx", t.rcx),
            ("rdx", t.rdx),
            ("rsi", t.rsi),
            ("rdi", t.rdi),
            ("rbp", t.rbp),
            ("r8", t.r8),
            ("r9", t.r9),
            ("r10", t.r10),
            ("r11", t.r11),
            ("r12", t.r12),
            ("r13", t.r13),
            ("r14", t.r14),
            ("r15", t.r15),
        ];
        for (index, (name, value)) in registers.iter().enumerate() {
            write!(out, "    {name:>6} {value:#018x}")?;
            if index % 4 == 3 {
                writeln!(out)?;
            }
        }
        if !registers.len().is_multiple_of(4) {
            writeln!(out)?;
        }
        Ok(())
    }
}
