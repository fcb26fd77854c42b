//! The serial console on COM1: every line the kernel prints goes here.
//!
//! A 16550 UART driven by polling. QEMU connects it to the runner's pipe
//! (`-serial stdio`), which is how tests read what the kernel says.

use core::fmt::{self, Write};
use spin::Mutex;
use x86_64::instructions::interrupts;
use x86_64::instructions::port::Port;

const COM1: u16 = 0x3f8;

/// A 16550 UART at an I/O port base.
pub struct SerialPort {
    base: u16,
}

impl SerialPort {
    const fn new(base: u16) -> Self {
        Self { base }
    }

    fn port(&self, offset: u16) -> Port<u8> {
        Port::new(self.base + offset)
    }

    /// Programs 115200 baud, 8N1, FIFOs on, interrupts off.
    fn init(&mut self) {
        // SAFETY: COM1's registers are standard PC I/O ports owned by this
        // driver; writing them only reconfigures the UART.
        unsafe {
            self.port(1).write(0x00); // interrupts off
            self.port(3).write(0x80); // DLAB on
            self.port(0).write(0x01); // divisor low: 115200 baud
            self.port(1).write(0x00); // divisor high
            self.port(3).write(0x03); // 8 bits, no parity, 1 stop bit, DLAB off
            self.port(2).write(0xc7); // FIFOs on and cleared, 14-byte threshold
            self.port(4).write(0x03); // DTR | RTS
        }
    }

    fn write_byte(&mut self, byte: u8) {
        // SAFETY: reading the line status and writing the transmit register
        // of our own UART has no effect beyond sending the byte.
        unsafe {
            while self.port(5).read() & 0x20 == 0 {
                core::hint::spin_loop();
            }
            self.port(0).write(byte);
        }
    }
}

impl Write for SerialPort {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        for byte in text.bytes() {
            if byte == b'\n' {
                self.write_byte(b'\r');
            }
            self.write_byte(byte);
        }
        Ok(())
    }
}

static CONSOLE: Mutex<SerialPort> = Mutex::new(SerialPort::new(COM1));

/// Initialises COM1. Call once, first thing at boot.
pub fn init() {
    CONSOLE.lock().init();
}

/// Writes formatted text to the console with interrupts off, so an interrupt
/// handler that prints cannot deadlock against the code it interrupted.
pub fn write_fmt(args: fmt::Arguments) {
    interrupts::without_interrupts(|| {
        let _ = CONSOLE.lock().write_fmt(args);
    });
}

/// Writes raw bytes (from a user process) to the console.
pub fn write_bytes(bytes: &[u8]) {
    interrupts::without_interrupts(|| {
        let mut console = CONSOLE.lock();
        for &byte in bytes {
            if byte == b'\n' {
                console.write_byte(b'\r');
            }
            console.write_byte(byte);
        }
    });
}

/// Takes the console even if a crashed context held it: used only on the way
/// to exiting QEMU after a fatal fault or panic.
pub fn emergency_write_fmt(args: fmt::Arguments) {
    // SAFETY: called only on the fatal path, where the holder of the lock can
    // never run again; interleaving with it is better than deadlocking.
    unsafe { CONSOLE.force_unlock() };
    write_fmt(args);
}

/// Prints to the serial console.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => ($crate::serial::write_fmt(format_args!($($arg)*)));
}

/// Prints a line to the serial console.
#[macro_export]
macro_rules! println {
    () => ($crate::print!("\n"));
    ($($arg:tt)*) => ($crate::serial::write_fmt(format_args!("{}\n", format_args!($($arg)*))));
}
