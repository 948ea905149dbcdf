//! PCI configuration space through the legacy port-I/O mechanism.
//!
//! Writing `0x8000_0000 | bus << 16 | device << 11 | function << 8 |
//! offset` to port 0xcf8 selects a 32-bit configuration register, which is
//! then read or written at port 0xcfc ([`PortIo`]). Every PC and QEMU
//! machine has this mechanism for segment 0; the structures behind it
//! (headers, the command register) are `pci_types`'s. [`enumerate`]
//! probes every bus, device and function and reports the ones present;
//! [`find`] stops at the first match, so a driver looking for one device
//! (the network card, at 00:03.0 under QEMU) reads a handful of slots, and
//! only when it is asked for: images that never use a device pay nothing.
//!
//! For a driver, a function offers its base address registers ([`Bar`],
//! decoded from the register and its size probe: 32- or 64-bit memory, or
//! I/O ports), its capability list ([`capabilities`]), its INTx pin and the
//! IRQ line the firmware routed it to ([`interrupt`]), and the command bits
//! that let it decode memory and master the bus ([`enable`]). Mapping a
//! memory BAR is the kernel's business (uncached, possibly above 4 GiB).
//! The same port access also serves `virtio-drivers`' PCI transport
//! through its [`ConfigurationAccess`] trait.

use pci_types::{CommandRegister, ConfigRegionAccess, PciAddress, PciHeader};
use virtio_drivers::transport::pci::bus::{ConfigurationAccess, DeviceFunction};
use x86_64::instructions::port::Port;

const CONFIG_ADDRESS: u16 = 0xcf8;
const CONFIG_DATA: u16 = 0xcfc;
/// A vendor ID that no device has: what an empty slot reads.
const NO_DEVICE: u16 = 0xffff;

/// Configuration access through ports 0xcf8/0xcfc (segment 0 only).
///
/// The two-step select-then-access is not atomic: callers keep interrupts
/// disabled around an access, or make sure no interrupt handler touches
/// PCI configuration space (none does in this kernel).
#[derive(Clone, Copy, Debug, Default)]
pub struct PortIo;

/// The value written to 0xcf8 to select `offset` of `address`.
pub fn config_address(address: PciAddress, offset: u16) -> u32 {
    0x8000_0000
        | u32::from(address.bus()) << 16
        | u32::from(address.device()) << 11
        | u32::from(address.function()) << 8
        | u32::from(offset & 0xfc)
}

impl ConfigRegionAccess for PortIo {
    unsafe fn read(&self, address: PciAddress, offset: u16) -> u32 {
        let mut select: Port<u32> = Port::new(CONFIG_ADDRESS);
        let mut data: Port<u32> = Port::new(CONFIG_DATA);
        // SAFETY: 0xcf8/0xcfc are the PCI configuration mechanism's ports;
        // the caller guarantees the register may be read.
        unsafe {
            select.write(config_address(address, offset));
            data.read()
        }
    }

    unsafe fn write(&self, address: PciAddress, offset: u16, value: u32) {
        let mut select: Port<u32> = Port::new(CONFIG_ADDRESS);
        let mut data: Port<u32> = Port::new(CONFIG_DATA);
        // SAFETY: as for `read`; the caller guarantees the write is valid.
        unsafe {
            select.write(config_address(address, offset));
            data.write(value);
        }
    }
}

/// A function found on the bus.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Function {
    /// Where it is.
    pub address: PciAddress,
    /// Vendor ID.
    pub vendor: u16,
    /// Device ID.
    pub device: u16,
    /// Base class.
    pub class: u8,
    /// Subclass.
    pub subclass: u8,
}

impl ConfigurationAccess for PortIo {
    fn read_word(&self, function: DeviceFunction, offset: u8) -> u32 {
        read(to_address(function), u16::from(offset))
    }

    fn write_word(&mut self, function: DeviceFunction, offset: u8, data: u32) {
        // SAFETY: `virtio-drivers` writes the registers a driver owns (the
        // command register, BARs while sizing them) of the function it was
        // handed, which this kernel's driver owns.
        unsafe { ConfigRegionAccess::write(self, to_address(function), u16::from(offset), data) }
    }

    unsafe fn unsafe_clone(&self) -> Self {
        PortIo
    }
}

/// The `pci_types` address of a `virtio-drivers` function (segment 0).
pub fn to_address(function: DeviceFunction) -> PciAddress {
    PciAddress::new(0, function.bus, function.device, function.function)
}

/// The `virtio-drivers` name of a function.
pub fn to_device_function(address: PciAddress) -> DeviceFunction {
    DeviceFunction {
        bus: address.bus(),
        device: address.device(),
        function: address.function(),
    }
}

/// Reads a configuration register. Reading never changes a function's
/// state (PCI has no read-to-clear configuration registers).
pub fn read(address: PciAddress, offset: u16) -> u32 {
    // SAFETY: a configuration read has no side effects.
    unsafe { ConfigRegionAccess::read(&PortIo, address, offset) }
}

/// Writes a configuration register of a function the caller drives.
fn write(address: PciAddress, offset: u16, value: u32) {
    // SAFETY: callers only write the command register and BARs (to size
    // them, restoring them at once) of the function they drive.
    unsafe { ConfigRegionAccess::write(&PortIo, address, offset, value) }
}

const COMMAND: u16 = 0x04;
const STATUS_HAS_CAPABILITIES: u32 = 1 << (16 + 4);
const BAR0: u16 = 0x10;
const CAPABILITIES_POINTER: u16 = 0x34;
const INTERRUPT: u16 = 0x3c;
/// More capabilities than fit in configuration space: a looping list.
const MAX_CAPABILITIES: usize = 48;

/// A decoded base address register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bar {
    /// Memory-mapped registers.
    Memory {
        /// Physical address (may lie above 4 GiB for a 64-bit BAR).
        address: u64,
        /// Length in bytes (a power of two).
        size: u64,
        /// Whether the BAR takes two slots (the next holds the high half).
        wide: bool,
        /// Whether reads have no side effects.
        prefetchable: bool,
    },
    /// I/O ports.
    Io {
        /// The first port.
        port: u32,
        /// Number of ports.
        size: u32,
    },
}

impl Bar {
    /// Decodes a BAR from its value (`low`, and `high`, the next slot, for
    /// a 64-bit memory BAR) and what the slots read after all ones were
    /// written to them (`low_mask`, `high_mask`). `None` for an
    /// unimplemented BAR (no writable address bits).
    pub fn decode(low: u32, high: u32, low_mask: u32, high_mask: u32) -> Option<Bar> {
        if low & 1 == 1 {
            let mask = low_mask & !0x3 | 0xffff_0000;
            let size = (!mask).wrapping_add(1);
            return (low_mask & !0x3 != 0).then_some(Bar::Io {
                port: low & !0x3,
                size,
            });
        }
        let wide = (low >> 1) & 0x3 == 0x2;
        let (address, mask) = if wide {
            (
                u64::from(high) << 32 | u64::from(low & !0xf),
                u64::from(high_mask) << 32 | u64::from(low_mask & !0xf),
            )
        } else {
            (
                u64::from(low & !0xf),
                0xffff_ffff_0000_0000 | u64::from(low_mask & !0xf),
            )
        };
        let implemented = low_mask & !0xf != 0 || wide && high_mask != 0;
        implemented.then_some(Bar::Memory {
            address,
            size: (!mask).wrapping_add(1),
            wide,
            prefetchable: low & 0x8 != 0,
        })
    }
}

/// Reads and sizes BAR `index` (0 to 5) of `address`, with its decoding
/// turned off meanwhile so the all-ones probe never claims bus addresses.
pub fn bar(address: PciAddress, index: u8) -> Option<Bar> {
    if index > 5 {
        return None;
    }
    let offset = BAR0 + 4 * u16::from(index);
    // The status half reads back its write-one-to-clear bits: write zeros.
    let command = read(address, COMMAND) & 0xffff;
    write(address, COMMAND, command & !0x3);
    let low = read(address, offset);
    write(address, offset, u32::MAX);
    let low_mask = read(address, offset);
    write(address, offset, low);
    let (high, high_mask) = if low & 0x7 == 0x4 && index < 5 {
        let high = read(address, offset + 4);
        write(address, offset + 4, u32::MAX);
        let high_mask = read(address, offset + 4);
        write(address, offset + 4, high);
        (high, high_mask)
    } else {
        (0, 0)
    };
    write(address, COMMAND, command);
    Bar::decode(low, high, low_mask, high_mask)
}

/// Lets `address` decode its memory and I/O BARs and master the bus (DMA).
pub fn enable(address: PciAddress) {
    let command = read(address, COMMAND) as u16;
    let enabled = CommandRegister::IO_ENABLE
        | CommandRegister::MEMORY_ENABLE
        | CommandRegister::BUS_MASTER_ENABLE;
    // Zeros in the status half leave its write-one-to-clear bits alone.
    write(address, COMMAND, u32::from(command | enabled.bits()));
}

/// A function's legacy interrupt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interrupt {
    /// The pin: 1 to 4 for INTA# to INTD#.
    pub pin: u8,
    /// The (ISA) IRQ line the firmware routed the pin to.
    pub line: u8,
}

/// The INTx pin and line of `address`, if it has a pin the firmware routed.
pub fn interrupt(address: PciAddress) -> Option<Interrupt> {
    decode_interrupt(read(address, INTERRUPT))
}

/// Decodes the interrupt register (line in bits 0-7, pin in bits 8-15);
/// pin 0 is "none", line 0xff "not connected".
pub fn decode_interrupt(register: u32) -> Option<Interrupt> {
    let line = register as u8;
    let pin = (register >> 8) as u8;
    ((1..=4).contains(&pin) && line != 0xff).then_some(Interrupt { pin, line })
}

/// One entry of a function's capability list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capability {
    /// The capability ID (0x09: vendor-specific, 0x11: MSI-X, ...).
    pub id: u8,
    /// Its offset in configuration space.
    pub offset: u16,
}

/// The capability list of `address`, in list order. A list that loops
/// or points outside the header's dword-aligned range ends early.
pub fn capabilities(address: PciAddress) -> impl Iterator<Item = Capability> {
    let mut next = if read(address, COMMAND) & STATUS_HAS_CAPABILITIES != 0 {
        (read(address, CAPABILITIES_POINTER) & 0xfc) as u16
    } else {
        0
    };
    core::iter::from_fn(move || {
        if next < 0x40 {
            return None;
        }
        let header = read(address, next);
        let capability = Capability {
            id: header as u8,
            offset: next,
        };
        next = ((header >> 8) & 0xfc) as u16;
        Some(capability)
    })
    .take(MAX_CAPABILITIES)
}

/// Calls `found` for every function present on segment 0, in bus, device,
/// function order (a brute-force probe of every slot: 8,192 reads).
pub fn enumerate(mut found: impl FnMut(Function)) {
    find(|function| {
        found(*function);
        false
    });
}

/// The first function on segment 0, in bus, device, function order, that
/// `matches`. Stops probing there.
pub fn find(mut matches: impl FnMut(&Function) -> bool) -> Option<Function> {
    for bus in 0..=u8::MAX {
        for device in 0..32 {
            let first = PciHeader::new(PciAddress::new(0, bus, device, 0));
            if first.id(PortIo).0 == NO_DEVICE {
                continue;
            }
            let functions = if first.has_multiple_functions(PortIo) {
                8
            } else {
                1
            };
            for function in 0..functions {
                let header = PciHeader::new(PciAddress::new(0, bus, device, function));
                let (vendor, device_id) = header.id(PortIo);
                if vendor == NO_DEVICE {
                    continue;
                }
                let (_, class, subclass, _) = header.revision_and_class(PortIo);
                let function = Function {
                    address: header.address(),
                    vendor,
                    device: device_id,
                    class,
                    subclass,
                };
                if matches(&function) {
                    return Some(function);
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_address_packs_bus_device_function_and_aligned_offset() {
        let address = PciAddress::new(0, 0x12, 0x1f, 0x7);
        assert_eq!(config_address(address, 0x3e), 0x8012_ff3c);
        assert_eq!(config_address(PciAddress::new(0, 0, 0, 0), 0), 0x8000_0000);
    }

    #[test]
    fn decodes_a_32_bit_memory_bar() {
        // QEMU's virtio-net BAR1: 4 KiB at 0xfebd_1000, not prefetchable.
        assert_eq!(
            Bar::decode(0xfebd_1000, 0, 0xffff_f000, 0),
            Some(Bar::Memory {
                address: 0xfebd_1000,
                size: 0x1000,
                wide: false,
                prefetchable: false
            })
        );
    }

    #[test]
    fn decodes_a_64_bit_prefetchable_bar_above_4_gib() {
        // 16 KiB at 0x80_0000_0000 (where OVMF puts 64-bit BARs).
        assert_eq!(
            Bar::decode(0x0000_000c, 0x80, 0xffff_c00c, 0xffff_ffff),
            Some(Bar::Memory {
                address: 0x80_0000_0000,
                size: 0x4000,
                wide: true,
                prefetchable: true
            })
        );
        // A 64-bit BAR larger than 4 GiB: the size comes from the high half.
        assert_eq!(
            Bar::decode(0x4, 0x1, 0x4, 0xffff_fffe),
            Some(Bar::Memory {
                address: 0x1_0000_0000,
                size: 0x2_0000_0000,
                wide: true,
                prefetchable: false
            })
        );
    }

    #[test]
    fn decodes_an_io_bar() {
        // The transitional device's legacy registers: 32 ports at 0xc040.
        assert_eq!(
            Bar::decode(0xc041, 0, 0xffff_ffe1, 0),
            Some(Bar::Io {
                port: 0xc040,
                size: 32
            })
        );
    }

    #[test]
    fn an_unimplemented_bar_decodes_to_none() {
        assert_eq!(Bar::decode(0, 0, 0, 0), None);
        assert_eq!(Bar::decode(1, 0, 1, 0), None);
    }

    #[test]
    fn decodes_the_interrupt_register() {
        assert_eq!(
            decode_interrupt(0x0000_010b),
            Some(Interrupt { pin: 1, line: 11 })
        );
        assert_eq!(decode_interrupt(0x0000_000b), None, "no pin");
        assert_eq!(decode_interrupt(0x0000_01ff), None, "not connected");
    }
}
