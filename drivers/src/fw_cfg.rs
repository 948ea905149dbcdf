//! QEMU's firmware configuration device (fw_cfg), read through I/O ports.
//!
//! The runner passes files to the guest with `-fw_cfg name=opt/...,file=...`;
//! the guest finds them by name in the device's file directory. This is how
//! runtime arguments reach a unikernel without rebuilding its image. The
//! legacy port interface: write a 16-bit selector to 0x510, then read the
//! item's bytes one at a time from 0x511. Multi-byte fields of the directory
//! are big-endian.

use x86_64::instructions::port::Port;

const SELECTOR_PORT: u16 = 0x510;
const DATA_PORT: u16 = 0x511;
const SIGNATURE: u16 = 0x0000;
const FILE_DIRECTORY: u16 = 0x0019;
/// Bytes per file directory entry: size, select, reserved, 56-byte name.
const ENTRY_SIZE: usize = 64;

/// A file in the fw_cfg directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct File {
    /// The selector that reads it.
    pub select: u16,
    /// Its length in bytes.
    pub size: u32,
}

fn select(item: u16) {
    let mut selector: Port<u16> = Port::new(SELECTOR_PORT);
    // SAFETY: 0x510 is fw_cfg's selector port under QEMU; elsewhere the
    // write goes nowhere.
    unsafe { selector.write(item) };
}

fn read_into(buffer: &mut [u8]) {
    let mut data: Port<u8> = Port::new(DATA_PORT);
    for byte in buffer {
        // SAFETY: 0x511 is fw_cfg's data port; reading it advances within
        // the selected item and has no other effect.
        *byte = unsafe { data.read() };
    }
}

/// Whether the device is there (its signature reads "QEMU").
pub fn is_present() -> bool {
    let mut signature = [0u8; 4];
    select(SIGNATURE);
    read_into(&mut signature);
    &signature == b"QEMU"
}

/// Parses one directory entry into its name and file.
pub fn parse_entry(entry: &[u8; ENTRY_SIZE]) -> (&[u8], File) {
    let size = u32::from_be_bytes([entry[0], entry[1], entry[2], entry[3]]);
    let select = u16::from_be_bytes([entry[4], entry[5]]);
    let name = &entry[8..];
    let end = name
        .iter()
        .position(|&byte| byte == 0)
        .unwrap_or(name.len());
    (&name[..end], File { select, size })
}

/// Finds the file called `name`.
pub fn find(name: &str) -> Option<File> {
    if !is_present() {
        return None;
    }
    select(FILE_DIRECTORY);
    let mut count = [0u8; 4];
    read_into(&mut count);
    let mut entry = [0u8; ENTRY_SIZE];
    (0..u32::from_be_bytes(count)).find_map(|_| {
        read_into(&mut entry);
        let (entry_name, file) = parse_entry(&entry);
        (entry_name == name.as_bytes()).then_some(file)
    })
}

/// Reads the start of `file` into `buffer` (as much as fits).
pub fn read(file: File, buffer: &mut [u8]) {
    select(file.select);
    let len = buffer.len().min(file.size as usize);
    read_into(&mut buffer[..len]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_entries_are_big_endian_with_a_nul_padded_name() {
        let mut entry = [0u8; ENTRY_SIZE];
        entry[..4].copy_from_slice(&17u32.to_be_bytes());
        entry[4..6].copy_from_slice(&0x0021u16.to_be_bytes());
        entry[8..8 + 15].copy_from_slice(b"opt/unikit/args");
        let (name, file) = parse_entry(&entry);
        assert_eq!(name, b"opt/unikit/args");
        assert_eq!(
            file,
            File {
                select: 0x21,
                size: 17
            }
        );
    }
}
