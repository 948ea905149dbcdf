//! PCI configuration space through the legacy port-I/O mechanism.
//!
//! Writing `0x8000_0000 | bus << 16 | device << 11 | function << 8 |
//! offset` to port 0xcf8 selects a 32-bit configuration register, which is
//! then read or written at port 0xcfc ([`PortIo`]). Every PC and QEMU
//! machine has this mechanism for segment 0; the structures behind it
//! (headers, BARs, the command register) are `pci_types`'s. [`enumerate`]
//! probes every bus, device and function and reports the ones present.

use pci_types::{ConfigRegionAccess, PciAddress, PciHeader};
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

/// Calls `found` for every function present on segment 0, in bus, device,
/// function order (a brute-force probe of every slot: 8,192 reads).
pub fn enumerate(mut found: impl FnMut(Function)) {
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
                found(Function {
                    address: header.address(),
                    vendor,
                    device: device_id,
                    class,
                    subclass,
                });
            }
        }
    }
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
}
