//! `fault KIND`: does one forbidden thing; the kernel must kill this process
//! (and only this process). Exits 0 only if the fault did not happen.

#![no_std]
#![no_main]

use kipc_user::println;

kipc_user::entry!(main);

static READ_ONLY: [u8; 8] = *b"readonly";

fn main(start: kipc_user::Start) -> u32 {
    let kind = start.argument;
    println!("fault: about to do {kind}");
    // SAFETY: none of this is sound; each arm faults on purpose so the kernel
    // can show that a user fault kills only the faulting process.
    unsafe {
        match kind {
            "read-kernel" => {
                let value = core::ptr::read_volatile(0xffff_ffff_8010_0000 as *const u64);
                println!("fault: read kernel memory {value:#x}");
            }
            "read-direct-map" => {
                let value = core::ptr::read_volatile(0xffff_8000_0010_0000 as *const u64);
                println!("fault: read the direct map {value:#x}");
            }
            "null" => {
                let value = core::ptr::read_volatile(core::ptr::null::<u64>());
                println!("fault: read address 0: {value:#x}");
            }
            "write-rodata" => {
                core::ptr::write_volatile(READ_ONLY.as_ptr() as *mut u8, 0);
                println!("fault: wrote read-only data");
            }
            "write-text" => {
                core::ptr::write_volatile(main as *const () as *mut u8, 0xc3);
                println!("fault: wrote program text");
            }
            "execute-stack" => {
                let code = [0xc3u8; 16];
                let function: extern "C" fn() = core::mem::transmute(code.as_ptr());
                function();
                println!("fault: executed the stack");
            }
            "non-canonical" => {
                let value = core::ptr::read_volatile(0x8000_0000_0000_0000 as *const u64);
                println!("fault: read a non-canonical address {value:#x}");
            }
            "invalid-opcode" => core::arch::asm!("ud2"),
            "divide" => {
                core::arch::asm!("xor edx, edx", "xor ecx, ecx", "div ecx", out("eax") _, out("edx") _, out("ecx") _);
            }
            "privileged" => core::arch::asm!("cli"),
            "stack-overflow" => {
                fn recurse(depth: u64) -> u64 {
                    let padding = [depth; 64];
                    core::hint::black_box(&padding);
                    if depth == u64::MAX {
                        return 0;
                    }
                    recurse(depth + 1) + padding[7]
                }
                println!("fault: recursion returned {}", recurse(0));
            }
            other => {
                println!("fault: unknown kind {other}");
                return 2;
            }
        }
    }
    0
}
