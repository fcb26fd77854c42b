//! `hello NAME CODE [ROUNDS]`: prints a few lines, sleeping between them, and
//! exits with CODE. Used to show that processes run side by side.

#![no_std]
#![no_main]

use kipc_user::println;

kipc_user::entry!(main);

fn main(start: kipc_user::Start) -> u32 {
    let mut words = start.argument.split_ascii_whitespace();
    let name = words.next().unwrap_or("hello");
    let code: u32 = words.next().and_then(|word| word.parse().ok()).unwrap_or(0);
    let rounds: u32 = words.next().and_then(|word| word.parse().ok()).unwrap_or(2);
    for round in 0..rounds {
        println!(
            "hello {name}: round {round} (pid {:#x})",
            kipc_user::process_id().0
        );
        kipc_user::sleep_ms(10);
    }
    code
}
