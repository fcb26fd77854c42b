//! `hostile-kill`: the smallest program that kills a child. The parent must
//! carry on after `kill` returns (a reproduction for the kill system call).

#![no_std]
#![no_main]

use kipc_user::{check, println};

kipc_user::entry!(main);

fn main(_: kipc_user::Start) -> u32 {
    let child = kipc_user::spawn("hello", "victim 0 50", &[]).expect("spawn hello");
    kipc_user::sleep_ms(5);
    let killed = kipc_user::kill(child);
    // Everything from here on runs only if the kernel gave the parent its
    // address space back after tearing the child down.
    check!(killed.is_ok(), "kill: {killed:?}");
    let code = kipc_user::wait(child);
    check!(
        code == Ok(kipc_abi::EXIT_KILLED),
        "killed child's exit code: {code:?}"
    );
    println!("hostile-kill: the parent survived killing its child");
    0
}
