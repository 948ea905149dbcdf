//! Device interrupt handlers. Each does the minimum: acknowledge the
//! device, raise its event bit for the event loop ([`crate::events`]), and
//! signal end-of-interrupt to the local APIC. None allocates, and the only
//! locks they take (the APIC's, the UART's) are held by normal code only
//! with interrupts disabled.

use crate::apic::{self, vectors};
use crate::{events, net, serial_input};
use core::sync::atomic::{AtomicU64, Ordering};
use x86_64::structures::idt::{InterruptDescriptorTable, InterruptStackFrame};

static APIC_ERRORS: AtomicU64 = AtomicU64::new(0);
static SPURIOUS: AtomicU64 = AtomicU64::new(0);

/// Installs the device handlers in the IDT.
pub fn install(idt: &mut InterruptDescriptorTable) {
    idt[vectors::LAPIC_TIMER].set_handler_fn(alarm);
    idt[vectors::PIT].set_handler_fn(alarm);
    idt[vectors::SERIAL].set_handler_fn(serial);
    idt[vectors::NET].set_handler_fn(network);
    idt[vectors::APIC_ERROR].set_handler_fn(apic_error);
    idt[vectors::SPURIOUS].set_handler_fn(spurious);
    idt[vectors::LEGACY_PIC_BASE + 7].set_handler_fn(spurious);
    idt[vectors::LEGACY_PIC_BASE + 15].set_handler_fn(spurious);
}

/// Spurious interrupts and local APIC errors counted since boot.
pub fn anomalies() -> (u64, u64) {
    (
        SPURIOUS.load(Ordering::Relaxed),
        APIC_ERRORS.load(Ordering::Relaxed),
    )
}

extern "x86-interrupt" fn alarm(_frame: InterruptStackFrame) {
    events::ALARM.raise();
    apic::end_of_interrupt();
}

extern "x86-interrupt" fn serial(_frame: InterruptStackFrame) {
    serial_input::on_interrupt();
    events::SERIAL_INPUT.raise();
    apic::end_of_interrupt();
}

/// The card's line is level-triggered: reading its ISR status lowers it,
/// and must come before the end-of-interrupt, or the line still asserted
/// would deliver the interrupt again at once.
extern "x86-interrupt" fn network(_frame: InterruptStackFrame) {
    net::acknowledge_interrupt();
    events::NET.raise();
    apic::end_of_interrupt();
}

extern "x86-interrupt" fn apic_error(_frame: InterruptStackFrame) {
    APIC_ERRORS.fetch_add(1, Ordering::Relaxed);
    apic::end_of_interrupt();
}

/// Spurious interrupts get no end-of-interrupt: none is in service.
extern "x86-interrupt" fn spurious(_frame: InterruptStackFrame) {
    SPURIOUS.fetch_add(1, Ordering::Relaxed);
}
