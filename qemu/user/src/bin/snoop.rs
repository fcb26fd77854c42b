//! `snoop ADDRESS`: reads ADDRESS (hex) — an address that is valid in
//! *another* process (init maps a region there), but not here. Each process
//! has its own page tables, so the read faults and the kernel kills this
//! process; init's data stays untouched. Exits 0 only if the read worked.

#![no_std]
#![no_main]

use kipc_user::println;

kipc_user::entry!(main);

fn main(start: kipc_user::Start) -> u32 {
    let text = start.argument.trim_start_matches("0x");
    let Ok(address) = u64::from_str_radix(text, 16) else {
        println!("snoop: bad address {:?}", start.argument);
        return 2;
    };
    println!("snoop: reading {address:#x}, which is mapped in my parent");
    // SAFETY: not sound on purpose: nothing is mapped at `address` in this
    // process, so the read faults and the kernel kills this process.
    let value = unsafe { core::ptr::read_volatile(address as *const u64) };
    println!("snoop: read {value:#x} from another process's memory!");
    0
}
