//! A writer of `newc` cpio archives, the format Linux unpacks an initramfs
//! from (`Documentation/driver-api/early-userspace/buffer-format.rst`).
//!
//! Each entry is a 110-byte ASCII header (`070701`, then thirteen 8-digit
//! hexadecimal fields), the NUL-terminated name padded to a multiple of
//! four bytes, then the data padded the same way; a `TRAILER!!!` entry ends
//! the archive. Entries are kept in memory in the order they are added, so
//! parents must come before their children. Owners are root, times zero:
//! the same inputs always give the same bytes.

/// File type bits of `st_mode`.
const DIRECTORY: u32 = 0o040_000;
const REGULAR: u32 = 0o100_000;
const SYMLINK: u32 = 0o120_000;
const CHARACTER_DEVICE: u32 = 0o020_000;

/// An archive being written.
#[derive(Default)]
pub struct Archive {
    bytes: Vec<u8>,
    next_inode: u32,
}

impl Archive {
    /// A directory with permissions `mode` (e.g. `0o755`).
    pub fn directory(&mut self, name: &str, mode: u32) {
        self.entry(name, DIRECTORY | mode, 2, (0, 0), &[]);
    }

    /// A regular file.
    pub fn file(&mut self, name: &str, mode: u32, data: &[u8]) {
        self.entry(name, REGULAR | mode, 1, (0, 0), data);
    }

    /// A symbolic link to `target`.
    pub fn symlink(&mut self, name: &str, target: &str) {
        self.entry(name, SYMLINK | 0o777, 1, (0, 0), target.as_bytes());
    }

    /// A character device node `major:minor`.
    pub fn character_device(&mut self, name: &str, mode: u32, major: u32, minor: u32) {
        self.entry(name, CHARACTER_DEVICE | mode, 1, (major, minor), &[]);
    }

    /// The archive's bytes, with its trailer.
    pub fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, 1, (0, 0), &[]);
        self.bytes
    }

    fn entry(&mut self, name: &str, mode: u32, links: u32, device: (u32, u32), data: &[u8]) {
        self.next_inode += 1;
        let name_size = u32::try_from(name.len() + 1).expect("a short name");
        let data_size = u32::try_from(data.len()).expect("a file under 4 GiB");
        let fields = [
            self.next_inode,
            mode,
            0, // uid
            0, // gid
            links,
            0, // mtime
            data_size,
            0, // devmajor
            0, // devminor
            device.0,
            device.1,
            name_size,
            0, // check (unused by newc)
        ];
        self.bytes.extend_from_slice(b"070701");
        for field in fields {
            self.bytes
                .extend_from_slice(format!("{field:08x}").as_bytes());
        }
        self.bytes.extend_from_slice(name.as_bytes());
        self.bytes.push(0);
        self.pad();
        self.bytes.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        let padded = self.bytes.len().next_multiple_of(4);
        self.bytes.resize(padded, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One entry as read back.
    #[derive(Debug, PartialEq)]
    struct Entry {
        name: String,
        mode: u32,
        rdev: (u32, u32),
        data: Vec<u8>,
    }

    fn entry(name: &str, mode: u32, rdev: (u32, u32), data: &[u8]) -> Entry {
        Entry {
            name: name.into(),
            mode,
            rdev,
            data: data.to_vec(),
        }
    }

    /// The entries of a newc archive, read back by the format's rules,
    /// independently of the writer.
    fn parse(mut bytes: &[u8]) -> Vec<Entry> {
        let mut entries = Vec::new();
        let mut offset = 0;
        loop {
            assert_eq!(&bytes[..6], b"070701", "magic at offset {offset}");
            let field = |index: usize| {
                let text = std::str::from_utf8(&bytes[6 + 8 * index..14 + 8 * index]).unwrap();
                u32::from_str_radix(text, 16).unwrap()
            };
            let (mode, size, name_size) = (field(1), field(6) as usize, field(11) as usize);
            let rdev = (field(9), field(10));
            let name = std::str::from_utf8(&bytes[110..110 + name_size - 1])
                .unwrap()
                .to_string();
            assert_eq!(bytes[110 + name_size - 1], 0, "NUL after {name}");
            let data_start = (110 + name_size).next_multiple_of(4);
            let data = bytes[data_start..data_start + size].to_vec();
            let next = (data_start + size).next_multiple_of(4);
            offset += next;
            bytes = &bytes[next..];
            if name == "TRAILER!!!" {
                assert!(bytes.is_empty(), "nothing after the trailer");
                return entries;
            }
            entries.push(Entry {
                name,
                mode,
                rdev,
                data,
            });
        }
    }

    #[test]
    fn entries_read_back_with_their_names_modes_and_data() {
        let mut archive = Archive::default();
        archive.directory("bin", 0o755);
        archive.file("bin/busybox", 0o755, b"\x7fELF...");
        archive.symlink("bin/sh", "busybox");
        archive.character_device("dev/console", 0o600, 5, 1);
        archive.file("init", 0o755, b"#!/bin/sh\n");
        let bytes = archive.finish();
        assert_eq!(bytes.len() % 4, 0);
        assert_eq!(
            parse(&bytes),
            [
                entry("bin", 0o040_755, (0, 0), b""),
                entry("bin/busybox", 0o100_755, (0, 0), b"\x7fELF..."),
                entry("bin/sh", 0o120_777, (0, 0), b"busybox"),
                entry("dev/console", 0o020_600, (5, 1), b""),
                entry("init", 0o100_755, (0, 0), b"#!/bin/sh\n"),
            ]
        );
    }

    #[test]
    fn every_name_and_data_length_is_padded_to_four_bytes() {
        // Names of 1..=4 bytes and data of 0..=3 bytes cover every padding.
        let mut archive = Archive::default();
        for length in 1..=4 {
            let name = "n".repeat(length);
            archive.file(&name, 0o644, &b"abc"[..length - 1]);
        }
        let entries = parse(&archive.finish());
        let lengths: Vec<(usize, usize)> = entries
            .iter()
            .map(|entry| (entry.name.len(), entry.data.len()))
            .collect();
        assert_eq!(lengths, [(1, 0), (2, 1), (3, 2), (4, 3)]);
    }

    #[test]
    fn the_same_inputs_give_the_same_bytes() {
        let build = || {
            let mut archive = Archive::default();
            archive.file("www/index.html", 0o644, b"hello mirage world!\n");
            archive.finish()
        };
        assert_eq!(build(), build());
    }
}
