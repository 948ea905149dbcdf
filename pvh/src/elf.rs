//! The kernel ELF: what the loader reads from it.
//!
//! unikit kernels are static position-independent executables for
//! x86_64: loadable segments at addresses relative to 0, relocated by
//! `R_X86_64_RELATIVE` entries only, and a `.bootloader-config` section
//! holding the serialized [`BootloaderConfig`]. [`Kernel::parse`] checks
//! exactly that and refuses anything else with a reason, as the
//! `bootloader` crate does (thread-local storage, which the kernels do not
//! use, is refused rather than half supported).

use bootloader_api::BootloaderConfig;

const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const PT_TLS: u32 = 7;
const PF_X: u32 = 1;
const PF_W: u32 = 2;
const DT_NULL: u64 = 0;
const DT_RELA: u64 = 7;
const DT_RELASZ: u64 = 8;
const DT_RELAENT: u64 = 9;
const DT_REL: u64 = 17;
const R_X86_64_RELATIVE: u64 = 8;
const PROGRAM_HEADER_SIZE: usize = 56;
const SECTION_HEADER_SIZE: usize = 64;
const RELA_SIZE: usize = 24;
const CONFIG_SECTION: &[u8] = b".bootloader-config";

/// Why a kernel ELF cannot be loaded.
pub type Error = &'static str;

/// A loadable segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Its address relative to the image base.
    pub vaddr: u64,
    /// Its size in memory (the bytes past `file_size` are zero).
    pub mem_size: u64,
    /// Where its bytes start in the file.
    pub file_offset: u64,
    /// How many bytes the file holds.
    pub file_size: u64,
    /// Whether it is mapped writable.
    pub writable: bool,
    /// Whether it is mapped executable.
    pub executable: bool,
}

/// A parsed kernel ELF.
pub struct Kernel<'a> {
    bytes: &'a [u8],
    /// The entry point, relative to the image base.
    pub entry: u64,
    program_headers: usize,
    program_header_count: usize,
}

fn u16_at(bytes: &[u8], at: usize) -> Result<u16, Error> {
    let field = bytes.get(at..at + 2).ok_or("the ELF is truncated")?;
    Ok(u16::from_le_bytes([field[0], field[1]]))
}

fn u32_at(bytes: &[u8], at: usize) -> Result<u32, Error> {
    let field = bytes.get(at..at + 4).ok_or("the ELF is truncated")?;
    Ok(u32::from_le_bytes(field.try_into().expect("four bytes")))
}

fn u64_at(bytes: &[u8], at: usize) -> Result<u64, Error> {
    let field = bytes.get(at..at + 8).ok_or("the ELF is truncated")?;
    Ok(u64::from_le_bytes(field.try_into().expect("eight bytes")))
}

fn offset(value: u64) -> Result<usize, Error> {
    usize::try_from(value).map_err(|_| "an ELF offset does not fit in memory")
}

impl<'a> Kernel<'a> {
    /// Checks that `bytes` is an x86_64 ELF executable the loader can load.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, Error> {
        if bytes.get(..4) != Some(b"\x7fELF".as_slice()) {
            return Err("the initrd is not an ELF file (boot a unikit kernel ELF)");
        }
        if bytes.get(4..6) != Some([2, 1].as_slice()) {
            return Err("the kernel ELF is not 64-bit little-endian");
        }
        if u16_at(bytes, 18)? != 62 {
            return Err("the kernel ELF is not for x86_64");
        }
        if !matches!(u16_at(bytes, 16)?, 2 | 3) {
            return Err("the kernel ELF is not an executable");
        }
        if usize::from(u16_at(bytes, 54)?) != PROGRAM_HEADER_SIZE {
            return Err("the kernel ELF has program headers of an unknown size");
        }
        let kernel = Kernel {
            bytes,
            entry: u64_at(bytes, 24)?,
            program_headers: offset(u64_at(bytes, 32)?)?,
            program_header_count: usize::from(u16_at(bytes, 56)?),
        };
        let mut loadable = false;
        for index in 0..kernel.program_header_count {
            match kernel.program_header_type(index)? {
                PT_TLS => {
                    return Err("the kernel uses thread-local storage, which is not supported");
                }
                PT_LOAD => {
                    let segment = kernel.segment(index)?;
                    let end = segment.file_offset.checked_add(segment.file_size);
                    if end.is_none_or(|end| end > bytes.len() as u64)
                        || segment.file_size > segment.mem_size
                    {
                        return Err("a kernel segment lies outside the ELF file");
                    }
                    loadable = true;
                }
                _ => {}
            }
        }
        if !loadable {
            return Err("the kernel ELF has no loadable segment");
        }
        Ok(kernel)
    }

    fn program_header(&self, index: usize) -> usize {
        self.program_headers + index * PROGRAM_HEADER_SIZE
    }

    fn program_header_type(&self, index: usize) -> Result<u32, Error> {
        u32_at(self.bytes, self.program_header(index))
    }

    fn segment(&self, index: usize) -> Result<Segment, Error> {
        let at = self.program_header(index);
        let flags = u32_at(self.bytes, at + 4)?;
        Ok(Segment {
            vaddr: u64_at(self.bytes, at + 16)?,
            mem_size: u64_at(self.bytes, at + 40)?,
            file_offset: u64_at(self.bytes, at + 8)?,
            file_size: u64_at(self.bytes, at + 32)?,
            writable: flags & PF_W != 0,
            executable: flags & PF_X != 0,
        })
    }

    /// The loadable segments.
    pub fn segments(&self) -> impl Iterator<Item = Segment> + '_ {
        (0..self.program_header_count).filter_map(|index| {
            (self.program_header_type(index).ok()? == PT_LOAD)
                .then(|| self.segment(index).ok())
                .flatten()
        })
    }

    /// The addresses the segments span, page-aligned, relative to the base.
    pub fn span(&self) -> (u64, u64) {
        let start = self.segments().map(|s| s.vaddr).min().unwrap_or(0) & !0xfff;
        let end = self
            .segments()
            .map(|s| s.vaddr + s.mem_size)
            .max()
            .unwrap_or(0);
        (start, end.next_multiple_of(0x1000))
    }

    /// Copies the segments into `image`, which holds the span (see
    /// [`Kernel::span`]) and is zeroed, then applies the relocations for a
    /// kernel that runs at `base`.
    pub fn load(&self, image: &mut [u8], base: u64) -> Result<(), Error> {
        let (span_start, span_end) = self.span();
        if (image.len() as u64) < span_end - span_start {
            return Err("the kernel image does not fit its memory");
        }
        for segment in self.segments() {
            let at = offset(segment.vaddr - span_start)?;
            let from = offset(segment.file_offset)?;
            let len = offset(segment.file_size)?;
            image[at..at + len].copy_from_slice(&self.bytes[from..from + len]);
        }
        self.relocate(image, span_start, base)
    }

    fn relocate(&self, image: &mut [u8], span_start: u64, base: u64) -> Result<(), Error> {
        let Some(dynamic) = (0..self.program_header_count)
            .find(|&index| self.program_header_type(index) == Ok(PT_DYNAMIC))
        else {
            return Ok(());
        };
        let at = self.program_header(dynamic);
        let start = offset(u64_at(self.bytes, at + 8)?)?;
        let size = offset(u64_at(self.bytes, at + 32)?)?;
        let (mut rela, mut rela_size, mut rela_entry) = (None, 0, RELA_SIZE as u64);
        for entry in (start..start + size).step_by(16) {
            match u64_at(self.bytes, entry)? {
                DT_NULL => break,
                DT_RELA => rela = Some(u64_at(self.bytes, entry + 8)?),
                DT_RELASZ => rela_size = u64_at(self.bytes, entry + 8)?,
                DT_RELAENT => rela_entry = u64_at(self.bytes, entry + 8)?,
                DT_REL => {
                    return Err("the kernel ELF has REL relocations (only RELA are supported)");
                }
                _ => {}
            }
        }
        let Some(rela) = rela else {
            return Ok(());
        };
        if rela_entry != RELA_SIZE as u64 {
            return Err("the kernel ELF has relocations of an unknown size");
        }
        let table = offset(rela - span_start)?;
        for entry in (table..table + offset(rela_size)?).step_by(RELA_SIZE) {
            let target = u64_at(image, entry)?;
            let kind = u64_at(image, entry + 8)? & 0xffff_ffff;
            let addend = u64_at(image, entry + 16)?;
            if kind != R_X86_64_RELATIVE {
                return Err("the kernel ELF has a relocation other than R_X86_64_RELATIVE");
            }
            let at = offset(target - span_start)?;
            let field = image
                .get_mut(at..at + 8)
                .ok_or("a relocation lies outside the kernel image")?;
            field.copy_from_slice(&base.wrapping_add(addend).to_le_bytes());
        }
        Ok(())
    }

    /// The configuration the kernel was built with (its
    /// `.bootloader-config` section).
    pub fn config(&self) -> Result<BootloaderConfig, Error> {
        let sections = offset(u64_at(self.bytes, 40)?)?;
        let count = usize::from(u16_at(self.bytes, 60)?);
        let names = usize::from(u16_at(self.bytes, 62)?);
        const MISSING: Error =
            "the kernel ELF has no .bootloader-config section (is it a bootloader_api kernel?)";
        if names >= count {
            return Err(MISSING);
        }
        let section = |index: usize| sections + index * SECTION_HEADER_SIZE;
        let names_at = offset(u64_at(self.bytes, section(names) + 24)?)?;
        for index in 0..count {
            let name_at = names_at + offset(u64::from(u32_at(self.bytes, section(index))?))?;
            let name = self.bytes.get(name_at..).unwrap_or_default();
            if name.starts_with(CONFIG_SECTION) && name.get(CONFIG_SECTION.len()) == Some(&0) {
                let at = offset(u64_at(self.bytes, section(index) + 24)?)?;
                let size = offset(u64_at(self.bytes, section(index) + 32)?)?;
                let bytes = self
                    .bytes
                    .get(at..at + size)
                    .ok_or("the kernel's .bootloader-config lies outside the ELF")?;
                return BootloaderConfig::deserialize(bytes);
            }
        }
        Err(MISSING)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF: one loadable segment of `code` at vaddr 0x1000, a
    /// dynamic section with one RELATIVE relocation of the u64 at 0x1008.
    fn elf_with_one_relocation() -> Vec<u8> {
        let mut elf = vec![0u8; 0x400];
        elf[..6].copy_from_slice(b"\x7fELF\x02\x01");
        elf[16..18].copy_from_slice(&3u16.to_le_bytes());
        elf[18..20].copy_from_slice(&62u16.to_le_bytes());
        elf[24..32].copy_from_slice(&0x1000u64.to_le_bytes());
        elf[32..40].copy_from_slice(&64u64.to_le_bytes());
        elf[54..56].copy_from_slice(&56u16.to_le_bytes());
        elf[56..58].copy_from_slice(&2u16.to_le_bytes());
        let header = |elf: &mut Vec<u8>, at: usize, kind: u32, flags: u32, fields: [u64; 5]| {
            elf[at..at + 4].copy_from_slice(&kind.to_le_bytes());
            elf[at + 4..at + 8].copy_from_slice(&flags.to_le_bytes());
            let [offset, vaddr, file_size, mem_size, _] = fields;
            elf[at + 8..at + 16].copy_from_slice(&offset.to_le_bytes());
            elf[at + 16..at + 24].copy_from_slice(&vaddr.to_le_bytes());
            elf[at + 32..at + 40].copy_from_slice(&file_size.to_le_bytes());
            elf[at + 40..at + 48].copy_from_slice(&mem_size.to_le_bytes());
        };
        // The segment: file 0x200..0x300 at vaddr 0x1000, 0x2000 in memory.
        header(
            &mut elf,
            64,
            PT_LOAD,
            PF_X | PF_W,
            [0x200, 0x1000, 0x100, 0x2000, 0],
        );
        // The dynamic section at file 0x300.
        header(
            &mut elf,
            120,
            PT_DYNAMIC,
            PF_W,
            [0x300, 0x1100, 0x40, 0x40, 0],
        );
        elf[0x200..0x208].copy_from_slice(b"\x90\x90\x90\x90\x90\x90\xf4\xf4");
        // The relocation table in the segment, at vaddr 0x1080.
        elf[0x280..0x288].copy_from_slice(&0x1008u64.to_le_bytes());
        elf[0x288..0x290].copy_from_slice(&R_X86_64_RELATIVE.to_le_bytes());
        elf[0x290..0x298].copy_from_slice(&0x1234u64.to_le_bytes());
        for (i, (tag, value)) in [(DT_RELA, 0x1080), (DT_RELASZ, 24), (DT_RELAENT, 24)]
            .into_iter()
            .enumerate()
        {
            elf[0x300 + i * 16..0x308 + i * 16].copy_from_slice(&tag.to_le_bytes());
            elf[0x308 + i * 16..0x310 + i * 16].copy_from_slice(&u64::to_le_bytes(value));
        }
        elf
    }

    #[test]
    fn a_segment_is_copied_its_tail_stays_zero_and_relative_relocations_add_the_base() {
        let elf = elf_with_one_relocation();
        let kernel = Kernel::parse(&elf).expect("a valid ELF");
        assert_eq!(kernel.entry, 0x1000);
        assert_eq!(kernel.span(), (0x1000, 0x3000));
        let mut image = vec![0u8; 0x2000];
        kernel.load(&mut image, 0x100_0000_0000).expect("loads");
        assert_eq!(
            &image[..8],
            b"\x90\x90\x90\x90\x90\x90\xf4\xf4"[..8].as_ref()
        );
        let relocated = u64::from_le_bytes(image[8..16].try_into().unwrap());
        assert_eq!(relocated, 0x100_0000_1234);
        assert!(image[0x100..].iter().all(|&byte| byte == 0));
    }

    #[test]
    fn a_file_that_is_not_an_elf_is_refused_with_the_reason() {
        assert_eq!(
            Kernel::parse(b"hello").err(),
            Some("the initrd is not an ELF file (boot a unikit kernel ELF)")
        );
    }

    #[test]
    fn a_segment_reaching_past_the_file_is_refused() {
        let mut elf = elf_with_one_relocation();
        elf[64 + 32..64 + 40].copy_from_slice(&0x10_000u64.to_le_bytes());
        elf[64 + 40..64 + 48].copy_from_slice(&0x10_000u64.to_le_bytes());
        assert_eq!(
            Kernel::parse(&elf).err(),
            Some("a kernel segment lies outside the ELF file")
        );
    }

    #[test]
    fn relocations_other_than_relative_are_refused() {
        let mut elf = elf_with_one_relocation();
        elf[0x288..0x290].copy_from_slice(&1u64.to_le_bytes());
        let kernel = Kernel::parse(&elf).expect("parses");
        let mut image = vec![0u8; 0x2000];
        assert_eq!(
            kernel.load(&mut image, 0).err(),
            Some("the kernel ELF has a relocation other than R_X86_64_RELATIVE")
        );
    }

    #[test]
    fn a_kernel_without_the_bootloader_config_is_refused() {
        let elf = elf_with_one_relocation();
        let kernel = Kernel::parse(&elf).expect("parses");
        assert!(kernel.config().is_err());
    }
}
