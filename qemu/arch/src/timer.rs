//! The timer: the PIT at [`TICK_HZ`] through the legacy 8259 PICs.
//!
//! The PICs are remapped to vectors 32..48 so IRQs never collide with CPU
//! exceptions; only IRQ 0 (the PIT) is unmasked. Every tick increments a
//! counter and is acknowledged here; the kernel's scheduler hears of it
//! through [`crate::interrupts::Handlers::timer`].

use core::sync::atomic::{AtomicU64, Ordering};
use x86_64::instructions::port::Port;

/// First vector the remapped legacy PIC uses (IRQ 0, the PIT timer).
pub const PIC_VECTOR_BASE: u8 = 32;
/// Vector of the timer interrupt.
pub const TIMER_VECTOR: u8 = PIC_VECTOR_BASE;

/// Timer interrupts per second.
pub const TICK_HZ: u32 = 100;

const PIT_FREQUENCY_HZ: u32 = 1_193_182;

static TICKS: AtomicU64 = AtomicU64::new(0);
static SPURIOUS: AtomicU64 = AtomicU64::new(0);

/// Remaps and masks the PICs, programs the PIT, unmasks IRQ 0.
/// Interrupts stay disabled until the caller enables them.
pub fn init() {
    // SAFETY: the 8259 PIC (0x20/0x21, 0xa0/0xa1) and PIT (0x40, 0x43) ports
    // belong to this driver; the sequence is the documented ICW1..ICW4
    // initialisation followed by PIT channel 0 in rate-generator mode.
    unsafe {
        let mut master_command = Port::<u8>::new(0x20);
        let mut master_data = Port::<u8>::new(0x21);
        let mut slave_command = Port::<u8>::new(0xa0);
        let mut slave_data = Port::<u8>::new(0xa1);
        master_command.write(0x11); // ICW1: initialise, expect ICW4
        slave_command.write(0x11);
        master_data.write(PIC_VECTOR_BASE); // ICW2: vector offsets
        slave_data.write(PIC_VECTOR_BASE + 8);
        master_data.write(0x04); // ICW3: slave on IRQ 2
        slave_data.write(0x02);
        master_data.write(0x01); // ICW4: 8086 mode
        slave_data.write(0x01);
        master_data.write(0xfe); // mask all but IRQ 0
        slave_data.write(0xff);

        let divisor = PIT_FREQUENCY_HZ / TICK_HZ;
        Port::<u8>::new(0x43).write(0x34); // channel 0, lobyte/hibyte, mode 2
        let mut channel0 = Port::<u8>::new(0x40);
        channel0.write(divisor as u8);
        channel0.write((divisor >> 8) as u8);
    }
}

fn end_of_interrupt(irq: u8) {
    // SAFETY: writing the non-specific EOI command to the PICs only
    // acknowledges the interrupt being handled.
    unsafe {
        if irq >= 8 {
            Port::<u8>::new(0xa0).write(0x20);
        }
        Port::<u8>::new(0x20).write(0x20);
    }
}

/// Timer interrupt: counts the tick and acknowledges it.
pub(crate) fn on_tick() {
    TICKS.fetch_add(1, Ordering::Relaxed);
    end_of_interrupt(0);
}

/// Any other legacy IRQ: spurious IRQ 7/15 are counted and not acknowledged
/// (the PIC did not raise them), others are acknowledged and counted.
pub(crate) fn on_other_irq(vector: u8) {
    let irq = vector - PIC_VECTOR_BASE;
    SPURIOUS.fetch_add(1, Ordering::Relaxed);
    if irq != 7 && irq != 15 {
        end_of_interrupt(irq);
    } else if irq == 15 {
        end_of_interrupt(0);
    }
}

/// Timer ticks since boot.
pub fn ticks() -> u64 {
    TICKS.load(Ordering::Relaxed)
}

/// Milliseconds since the timer started, at tick resolution.
pub fn uptime_ms() -> u64 {
    ticks() * 1000 / u64::from(TICK_HZ)
}

/// Spurious or unexpected IRQs seen since boot.
pub fn other_irqs() -> u64 {
    SPURIOUS.load(Ordering::Relaxed)
}
