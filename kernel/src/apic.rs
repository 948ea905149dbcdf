//! The interrupt controllers: the local APIC and the I/O APIC, found through
//! ACPI, with the legacy PICs remapped and masked.
//!
//! Vectors are fixed ([`vectors`]). The local APIC delivers its timer and
//! error interrupts and the spurious vector; the I/O APIC routes ISA IRQs
//! (the PIT's IRQ0, COM1's IRQ4) as the MADT's interrupt source overrides
//! say, each masked until a driver asks for it with [`route_isa_irq`].
//!
//! Both controllers live behind spin locks that are only ever taken with
//! interrupts disabled, so an interrupt handler (which runs with interrupts
//! disabled on this single core) never finds one held.

use crate::acpi::{InterruptTopology, IsaRoute};
use crate::memory;
use spin::mutex::SpinMutex;
use unikit_drivers::pic;
use x2apic::ioapic::{IoApic, IrqFlags, IrqMode};
use x2apic::lapic::{LocalApic, LocalApicBuilder, TimerDivide, TimerMode};
use x86_64::instructions::interrupts::without_interrupts;

/// The interrupt vectors the kernel uses.
pub mod vectors {
    /// The local APIC timer (TSC-deadline or one-shot alarm).
    pub const LAPIC_TIMER: u8 = 0x20;
    /// The PIT's IRQ0 through the I/O APIC (fallback alarm).
    pub const PIT: u8 = 0x21;
    /// COM1's IRQ4 through the I/O APIC.
    pub const SERIAL: u8 = 0x24;
    /// The virtio-net card's PCI INTx line through the I/O APIC.
    pub const NET: u8 = 0x28;
    /// Where the masked legacy PICs are moved (their spurious IRQ7/15 land
    /// at +7 and +15).
    pub const LEGACY_PIC_BASE: u8 = 0xe0;
    /// Local APIC errors.
    pub const APIC_ERROR: u8 = 0xfe;
    /// The local APIC's spurious vector.
    pub const SPURIOUS: u8 = 0xff;
    /// The first vector the I/O APIC's entries default to (all masked).
    pub const IO_APIC_BASE: u8 = 0x30;
}

/// A value used on this CPU only. The kernel runs on one core, and every
/// access goes through a lock taken with interrupts disabled.
struct ThisCpu<T>(T);

// SAFETY: there is one CPU; the wrapped APIC handles are never used from
// another core, which is what their missing Send guards against.
unsafe impl<T> Send for ThisCpu<T> {}

static LOCAL_APIC: SpinMutex<Option<ThisCpu<LocalApic>>> = SpinMutex::new(None);
static IO_APIC: SpinMutex<Option<ThisCpu<IoApic>>> = SpinMutex::new(None);
static TOPOLOGY: spin::Once<InterruptTopology> = spin::Once::new();

/// How the local APIC's timer counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LapicTimerMode {
    /// Fires when the TSC reaches `IA32_TSC_DEADLINE`.
    TscDeadline,
    /// Counts down an initial count once.
    OneShot,
    /// Counts down the initial count again and again.
    Periodic,
}

/// Masks the legacy PICs and enables the local APIC and the first I/O APIC.
pub fn init(topology: InterruptTopology, timer_mode: LapicTimerMode) {
    pic::remap_and_mask(vectors::LEGACY_PIC_BASE);
    let topology = TOPOLOGY.call_once(|| topology);
    let mode = match timer_mode {
        LapicTimerMode::TscDeadline => TimerMode::TscDeadline,
        LapicTimerMode::OneShot => TimerMode::OneShot,
        LapicTimerMode::Periodic => TimerMode::Periodic,
    };
    let mut local = LocalApicBuilder::new()
        .timer_vector(usize::from(vectors::LAPIC_TIMER))
        .error_vector(usize::from(vectors::APIC_ERROR))
        .spurious_vector(usize::from(vectors::SPURIOUS))
        .timer_mode(mode)
        .timer_divide(TimerDivide::Div16)
        .timer_initial(0)
        .set_xapic_base(memory::phys_to_virt(topology.local_apic))
        .build()
        .expect("the local APIC builder has every vector");
    // SAFETY: the I/O APIC's registers are at the address the MADT gives,
    // reached through the physical memory map; nothing else programs it.
    let mut io = unsafe { IoApic::new(memory::phys_to_virt(topology.io_apic)) };
    without_interrupts(|| {
        // SAFETY: the local APIC exists (the MADT lists it) and is this
        // CPU's; enabling it with an initial count of 0 arms no timer. The
        // I/O APIC's entries all start masked.
        unsafe {
            local.enable();
            io.init(vectors::IO_APIC_BASE);
        }
        *LOCAL_APIC.lock() = Some(ThisCpu(local));
        *IO_APIC.lock() = Some(ThisCpu(io));
    });
}

/// Routes ISA IRQ `irq` to `vector` on this CPU and unmasks it, with the
/// polarity and trigger mode of its interrupt source override.
pub fn route_isa_irq(irq: u8, vector: u8) {
    if let Some(topology) = TOPOLOGY.get() {
        program(topology, topology.isa_route(irq), vector);
    }
}

/// Routes the PCI INTx line the firmware wrote into a function's interrupt
/// line register (an ISA IRQ number) to `vector`, and returns the route.
///
/// A PCI interrupt is level-triggered; when the MADT overrides the line,
/// its polarity is the one to follow, since it describes the I/O APIC's
/// input rather than the pin's electrical level (active-low on the bus).
/// QEMU's PC overrides IRQs 5, 9, 10 and 11 as level, active-high: its
/// PIIX inverts the PCI lines before the I/O APIC. A line with no override
/// (or an edge one, which a PCI line cannot be) gets PCI's own defaults,
/// level and active-low.
pub fn route_pci_irq(line: u8, vector: u8) -> Option<IsaRoute> {
    let topology = TOPOLOGY.get()?;
    let mut route = topology.isa_route(line);
    if !route.level_triggered {
        route.level_triggered = true;
        route.active_low = true;
    }
    program(topology, route, vector);
    Some(route)
}

/// Programs and unmasks the I/O APIC entry of `route`.
fn program(topology: &InterruptTopology, route: IsaRoute, vector: u8) {
    let input = (route.gsi - topology.io_apic_gsi_base) as u8;
    without_interrupts(|| {
        let mut io = IO_APIC.lock();
        let Some(ThisCpu(io)) = io.as_mut() else {
            return;
        };
        let local_id = LOCAL_APIC
            .lock()
            .as_ref()
            // SAFETY: reading this CPU's APIC ID has no side effects.
            .map_or(0, |ThisCpu(local)| unsafe { local.id() } as u8);
        let mut flags = IrqFlags::empty();
        if route.active_low {
            flags |= IrqFlags::LOW_ACTIVE;
        }
        if route.level_triggered {
            flags |= IrqFlags::LEVEL_TRIGGERED;
        }
        // SAFETY: `input` is an input of this I/O APIC (the GSI lies in its
        // range), and the entry delivers a fixed vector to this CPU.
        unsafe {
            let mut entry = io.table_entry(input);
            entry.set_vector(vector);
            entry.set_mode(IrqMode::Fixed);
            entry.set_flags(flags);
            entry.set_dest(local_id);
            io.set_table_entry(input, entry);
            io.enable_irq(input);
        }
    });
}

/// Runs `f` on the local APIC, with interrupts disabled.
pub fn with_local_apic<R>(f: impl FnOnce(&mut LocalApic) -> R) -> Option<R> {
    without_interrupts(|| LOCAL_APIC.lock().as_mut().map(|ThisCpu(local)| f(local)))
}

/// Signals the end of the interrupt being handled.
pub fn end_of_interrupt() {
    // SAFETY: called at the end of an APIC-delivered interrupt's handler.
    with_local_apic(|local| unsafe { local.end_of_interrupt() });
}
