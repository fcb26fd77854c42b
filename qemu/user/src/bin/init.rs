//! `init`: the first user program the kernel starts.

#![no_std]
#![no_main]

kipc_user::entry!(main);

fn main() -> u64 {
    0
}
