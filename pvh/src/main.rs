//! `pvh-loader`: the ELF QEMU boots with `-kernel` for a direct boot; the
//! unikit kernel ELF comes as `-initrd` (see the library's documentation
//! for why).
//!
//! 1. **32-bit entry** (`pvh_start32`, named by the Xen ELF note QEMU
//!    looks for): protected mode, paging off, `ebx` = the `hvm_start_info`.
//!    It identity-maps the first 4 GiB with 2 MiB pages (tables in `.bss`,
//!    which QEMU zeroes), turns on PAE, long mode, no-execute and paging,
//!    and jumps to 64-bit code, which calls [`loader_main`].
//! 2. **Loading** ([`load`]): reads the memory map, the initrd and the
//!    ACPI RSDP from the start information; parses the kernel ELF; takes
//!    memory from a bump allocator ([`Frames`]) that starts right after the
//!    loader; copies and relocates the kernel; builds the kernel's page
//!    tables: the kernel at [`KERNEL_BASE`], all physical memory (at least
//!    4 GiB, for the APICs) at the offset the kernel's configuration asks
//!    for (or [`PHYSICAL_MEMORY_OFFSET`]), the stack with an unmapped guard
//!    page below it, and the loader's own pages identity-mapped so it keeps
//!    running after the switch (nothing else in the lower half: address 0
//!    faults).
//! 3. **Hand-over**: switches to those tables, writes the
//!    [`BootInfo`] and its memory regions through the physical-memory
//!    mapping (so the kernel receives pointers it can use), and jumps to the
//!    kernel's entry with the boot information in `rdi`, interrupts off.
//!
//! The loader prints nothing when all goes well, so a direct boot's console
//! is the kernel's alone. A failure prints `unikit direct boot: <reason>`
//! on COM1 and exits QEMU with the kernel's error status.

#![no_std]
#![no_main]

#[cfg(not(target_os = "none"))]
extern crate std;

use bootloader_api::BootInfo;
use bootloader_api::config::Mapping;
use bootloader_api::info::{MemoryRegion, MemoryRegions, Optional};
use core::fmt::Write;
use core::mem::{align_of, size_of};
use unikit_pvh::elf::{self, Kernel};
use unikit_pvh::memory_map::{self, FirmwareEntry};
use x86_64::registers::control::{Cr3, Cr3Flags};
use x86_64::structures::paging::{
    FrameAllocator, Mapper, OffsetPageTable, Page, PageSize, PageTable, PageTableFlags, PhysFrame,
    Size1GiB, Size2MiB, Size4KiB,
};
use x86_64::{PhysAddr, VirtAddr};

/// Where the kernel image is mapped: the address the `bootloader` crate
/// picks for these kernels too, so addresses in reports read the same.
const KERNEL_BASE: u64 = 0x0000_0100_0000_0000;
/// The physical-memory mapping, when the kernel asks for a dynamic one.
const PHYSICAL_MEMORY_OFFSET: u64 = 0x0000_6000_0000_0000;
/// The stack's guard page; the stack starts one page above.
const STACK_GUARD_PAGE: u64 = 0x0000_0200_0000_0000;
/// The physical-memory mapping covers at least this much (the local and I/O
/// APICs sit just below 4 GiB).
const MIN_PHYSICAL_MAPPING: u64 = 4 << 30;
const PAGE: u64 = 4096;
/// QEMU's isa-debug-exit port and the value that reports the kernel's
/// error status (1): `unikit_drivers::qemu_exit` tables the encoding. The
/// loader does not link that crate, which needs a heap the loader lacks.
const EXIT_PORT: u16 = 0xf4;
const EXIT_ERROR: u32 = 16 + 1;
/// `hvm_start_info.magic`.
const START_INFO_MAGIC: u32 = 0x336e_c578;

// The 32-bit entry and the switch to long mode (see the module docs). The
// boot stack and tables live in .bss; the GDT holds one 64-bit code and
// one data segment.
core::arch::global_asm!(
    r#"
    .pushsection .note.Xen, "a", @note
    .balign 4
    .long 4, 4, 18          /* name size, description size, PHYS32_ENTRY */
    .asciz "Xen"
    .long pvh_start32
    .balign 4
    .popsection

    .pushsection .text.pvh_start32, "ax"
    .code32
    .global pvh_start32
pvh_start32:
    mov $boot_stack_top, %esp
    mov %ebx, %esi
    /* PML4[0] -> PDPT; PDPT[0..4] -> the four page directories. */
    mov $boot_pdpt, %eax
    or $3, %eax
    mov %eax, boot_pml4
    mov $boot_pd, %eax
    or $3, %eax
    xor %ecx, %ecx
1:  mov %eax, boot_pdpt(,%ecx,8)
    add $0x1000, %eax
    inc %ecx
    cmp $4, %ecx
    jb 1b
    /* 2048 entries of 2 MiB: present, writable, large. */
    xor %ecx, %ecx
2:  mov %ecx, %eax
    shl $21, %eax
    or $0x83, %eax
    mov %eax, boot_pd(,%ecx,8)
    inc %ecx
    cmp $2048, %ecx
    jb 2b
    mov %cr4, %eax
    or $0x20, %eax          /* PAE */
    mov %eax, %cr4
    mov $boot_pml4, %eax
    mov %eax, %cr3
    mov $0xc0000080, %ecx   /* EFER */
    rdmsr
    or $0x900, %eax         /* long mode, no-execute */
    wrmsr
    mov %cr0, %eax
    or $0x80010001, %eax    /* paging, write protect, protected mode */
    mov %eax, %cr0
    lgdt boot_gdt_pointer
    ljmp $0x08, $pvh_start64

    .code64
pvh_start64:
    mov $0x10, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov %ax, %fs
    mov %ax, %gs
    mov %esi, %edi          /* zero-extends the start information's address */
    call loader_main
    ud2
    .popsection

    .pushsection .rodata.boot_gdt, "a"
    .balign 8
boot_gdt:
    .quad 0
    .quad 0x00af9a000000ffff
    .quad 0x00cf92000000ffff
boot_gdt_pointer:
    .word boot_gdt_pointer - boot_gdt - 1
    .long boot_gdt
    .popsection

    .pushsection .bss.boot_tables, "aw", @nobits
    .balign 4096
boot_pml4:
    .skip 4096
boot_pdpt:
    .skip 4096
boot_pd:
    .skip 4 * 4096
boot_stack:
    .skip 64 * 1024
boot_stack_top:
    .popsection
    "#,
    options(att_syntax)
);

unsafe extern "C" {
    /// The first byte of the loader image (linker script).
    static __loader_start: u8;
    /// The first page after the loader image, `.bss` included.
    static __loader_end: u8;
}

/// `hvm_start_info` (version 1), as the PVH protocol defines it.
#[repr(C)]
struct StartInfo {
    magic: u32,
    version: u32,
    flags: u32,
    module_count: u32,
    modules: u64,
    command_line: u64,
    rsdp: u64,
    memory_map: u64,
    memory_map_entries: u32,
    reserved: u32,
}

/// `hvm_modlist_entry`.
#[repr(C)]
struct Module {
    start: u64,
    size: u64,
    command_line: u64,
    reserved: u64,
}

/// `hvm_memmap_table_entry`.
#[repr(C)]
struct MemoryMapEntry {
    start: u64,
    size: u64,
    kind: u32,
    reserved: u32,
}

/// The most firmware memory-map entries the loader takes.
const MAX_FIRMWARE_ENTRIES: usize = 32;

/// Memory for the kernel, its tables and its boot information: a bump
/// allocator over the RAM after the loader, up to the initrd or the end of
/// that RAM. Every frame it hands out is zeroed.
struct Frames {
    next: u64,
    limit: u64,
}

impl Frames {
    fn allocate(&mut self, bytes: u64) -> Result<u64, elf::Error> {
        let start = self.next;
        let end = start + bytes.next_multiple_of(PAGE);
        if end > self.limit {
            return Err("not enough memory after the loader for the kernel (give QEMU more -m)");
        }
        // SAFETY: [start, end) is RAM after the loader that nothing else
        // uses (below the initrd), identity-mapped by the boot tables.
        unsafe { core::ptr::write_bytes(start as *mut u8, 0, (end - start) as usize) };
        self.next = end;
        Ok(start)
    }
}

// SAFETY: each frame is handed out once, zeroed, from RAM no one else uses.
unsafe impl FrameAllocator<Size4KiB> for Frames {
    fn allocate_frame(&mut self) -> Option<PhysFrame> {
        let start = self.allocate(PAGE).ok()?;
        Some(PhysFrame::containing_address(PhysAddr::new(start)))
    }
}

/// What the kernel is entered with.
struct HandOver {
    entry: u64,
    stack_top: u64,
    boot_info: u64,
}

/// COM1, written by polling: only for the loader's own failure reports.
struct Serial;

impl Write for Serial {
    fn write_str(&mut self, text: &str) -> core::fmt::Result {
        for byte in text.bytes() {
            let mut status = x86_64::instructions::port::Port::<u8>::new(0x3fd);
            let mut data = x86_64::instructions::port::Port::<u8>::new(0x3f8);
            // SAFETY: COM1's line status and data registers; reading the
            // status and writing a byte have no other effect.
            unsafe {
                while status.read() & 0x20 == 0 {}
                data.write(byte);
            }
        }
        Ok(())
    }
}

fn fail(reason: core::fmt::Arguments) -> ! {
    let _ = writeln!(Serial, "unikit direct boot: {reason}");
    let mut exit = x86_64::instructions::port::Port::<u32>::new(EXIT_PORT);
    // SAFETY: writing to isa-debug-exit stops the machine and does nothing
    // else; without the device the write goes nowhere.
    unsafe { exit.write(EXIT_ERROR) };
    loop {
        x86_64::instructions::hlt();
    }
}

#[cfg(target_os = "none")]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    fail(format_args!("panic: {info}"))
}

/// Called by the 64-bit entry with the start information's address.
#[unsafe(no_mangle)]
extern "C" fn loader_main(start_info: u64) -> ! {
    let hand_over = load(start_info).unwrap_or_else(|reason| fail(format_args!("{reason}")));
    // SAFETY: `load` mapped the stack and the kernel in the tables now in
    // CR3; the kernel's `_start` takes the boot information in rdi and
    // never returns. The pushed zero is its return address, which keeps
    // the stack aligned as after a call.
    unsafe {
        core::arch::asm!(
            "mov rsp, {stack}",
            "xor ebp, ebp",
            "push 0",
            "jmp {entry}",
            stack = in(reg) hand_over.stack_top,
            entry = in(reg) hand_over.entry,
            in("rdi") hand_over.boot_info,
            options(noreturn)
        )
    }
}

/// Reads `T` at physical address `address` through the boot tables'
/// identity mapping.
///
/// # Safety
///
/// `address` must hold a `T` below 4 GiB, before the switch to the kernel's
/// tables.
unsafe fn read_physical<T>(address: u64) -> T {
    // SAFETY: the caller's promise; unaligned reads are fine on x86.
    unsafe { (address as *const T).read_unaligned() }
}

/// The RSDP, from the start information or else from the BIOS area, where
/// SeaBIOS puts it.
fn find_rsdp(from_start_info: u64) -> Option<u64> {
    if from_start_info != 0 {
        return Some(from_start_info);
    }
    (0xe_0000..0x10_0000u64).step_by(16).find(|&address| {
        // SAFETY: the BIOS area below 1 MiB is identity-mapped and readable.
        unsafe { read_physical::<[u8; 8]>(address) == *b"RSD PTR " }
    })
}

fn load(start_info_address: u64) -> Result<HandOver, elf::Error> {
    // SAFETY: QEMU's PVH entry passes the start information's address,
    // below 1 MiB.
    let start_info: StartInfo = unsafe { read_physical(start_info_address) };
    if start_info.magic != START_INFO_MAGIC {
        return Err("no PVH start information (boot this loader with QEMU's -kernel)");
    }
    if start_info.version < 1 || start_info.memory_map_entries == 0 {
        return Err("the PVH start information has no memory map (QEMU 4.0 or later gives one)");
    }
    if start_info.module_count == 0 {
        return Err("no kernel: give the unikit kernel ELF as -initrd");
    }
    // SAFETY: module_count > 0, so the list holds at least one entry.
    let module: Module = unsafe { read_physical(start_info.modules) };
    let entries = start_info.memory_map_entries as usize;
    if entries > MAX_FIRMWARE_ENTRIES {
        return Err("the firmware's memory map has more entries than the loader takes (32)");
    }
    let mut firmware = [FirmwareEntry {
        start: 0,
        len: 0,
        kind: 0,
    }; MAX_FIRMWARE_ENTRIES];
    for (index, entry) in firmware[..entries].iter_mut().enumerate() {
        let address = start_info.memory_map + (index * size_of::<MemoryMapEntry>()) as u64;
        // SAFETY: the table holds memory_map_entries entries.
        let raw: MemoryMapEntry = unsafe { read_physical(address) };
        *entry = FirmwareEntry {
            start: raw.start,
            len: raw.size,
            kind: raw.kind,
        };
    }
    let firmware = &firmware[..entries];
    let rsdp = find_rsdp(start_info.rsdp);

    // SAFETY: QEMU placed the initrd's bytes there, in RAM below 4 GiB
    // (identity-mapped), and nothing writes them while the loader runs.
    let elf_bytes =
        unsafe { core::slice::from_raw_parts(module.start as *const u8, module.size as usize) };
    let kernel = Kernel::parse(elf_bytes)?;
    let config = kernel.config()?;
    let physical_memory_offset = match config.mappings.physical_memory {
        Some(Mapping::Dynamic) => PHYSICAL_MEMORY_OFFSET,
        Some(Mapping::FixedAddress(address)) => address,
        None => return Err("the kernel does not ask for the physical-memory mapping"),
    };

    let loader_start = &raw const __loader_start as u64;
    let loader_end = (&raw const __loader_end as u64).next_multiple_of(PAGE);
    let ram_end = firmware
        .iter()
        .find(|entry| {
            entry.kind == memory_map::E820_RAM
                && (entry.start..entry.start + entry.len).contains(&loader_end)
        })
        .map_or(loader_end, |entry| entry.start + entry.len);
    // QEMU puts the initrd at the top of RAM below 4 GiB: above the
    // loader, so the kernel's memory comes from the RAM between them.
    let initrd = (module.start, module.start + module.size);
    if initrd.0 < loader_end {
        return Err("the initrd lies below the end of the loader (QEMU places it higher)");
    }
    let limit = ram_end.min(initrd.0);
    let mut frames = Frames {
        next: loader_end,
        limit,
    };

    let (span_start, span_end) = kernel.span();
    // The image's address 0: the span's first page lands at KERNEL_BASE.
    let base = KERNEL_BASE - span_start;
    let image_size = span_end - span_start;
    let image = frames.allocate(image_size)?;
    // SAFETY: `allocate` just gave out [image, image + image_size), zeroed.
    let image_bytes =
        unsafe { core::slice::from_raw_parts_mut(image as *mut u8, image_size as usize) };
    kernel.load(image_bytes, base)?;
    let stack_size = config.kernel_stack_size.next_multiple_of(PAGE);
    let stack = frames.allocate(stack_size)?;
    // The boot information, then its memory regions (each used range can
    // split a RAM entry in three).
    let region_capacity = firmware.len() + 5;
    let regions_offset = size_of::<BootInfo>().next_multiple_of(align_of::<MemoryRegion>());
    let boot_info_size = (regions_offset + region_capacity * size_of::<MemoryRegion>()) as u64;
    let boot_info = frames.allocate(boot_info_size)?;

    let pml4 = frames.allocate(PAGE)?;
    // SAFETY: `pml4` is a fresh zeroed frame, identity-mapped; the other
    // tables come from `frames` too and are reached the same way (offset 0).
    let mut tables =
        unsafe { OffsetPageTable::new(&mut *(pml4 as *mut PageTable), VirtAddr::new(0)) };
    let writable = PageTableFlags::PRESENT | PageTableFlags::WRITABLE;
    let loader_page = loader_start & !(PAGE - 1);
    let loader = (loader_page, loader_page, loader_end - loader_page);
    map::<Size4KiB>(&mut tables, &mut frames, loader, writable)?;
    let physical_end = firmware
        .iter()
        .map(|entry| entry.start + entry.len)
        .max()
        .unwrap_or(0)
        .max(MIN_PHYSICAL_MAPPING);
    let data = writable | PageTableFlags::NO_EXECUTE;
    let physical = (physical_memory_offset, 0, physical_end);
    if has_gigabyte_pages() {
        map::<Size1GiB>(&mut tables, &mut frames, physical, data)?;
    } else {
        map::<Size2MiB>(&mut tables, &mut frames, physical, data)?;
    }
    for page in (span_start..span_end).step_by(PAGE as usize) {
        // A page two segments share gets the union of their rights; a page
        // no segment covers stays unmapped.
        let mut covering = kernel
            .segments()
            .filter(|segment| {
                segment.vaddr < page + PAGE && page < segment.vaddr + segment.mem_size
            })
            .peekable();
        if covering.peek().is_none() {
            continue;
        }
        let (writable, executable) = covering.fold((false, false), |(w, x), segment| {
            (w || segment.writable, x || segment.executable)
        });
        let mut flags = PageTableFlags::PRESENT;
        if writable {
            flags |= PageTableFlags::WRITABLE;
        }
        if !executable {
            flags |= PageTableFlags::NO_EXECUTE;
        }
        let page = (base + page, image + (page - span_start), PAGE);
        map::<Size4KiB>(&mut tables, &mut frames, page, flags)?;
    }
    let stack_bottom = STACK_GUARD_PAGE + PAGE;
    map::<Size4KiB>(
        &mut tables,
        &mut frames,
        (stack_bottom, stack, stack_size),
        data,
    )?;

    let used = [
        (loader_page, frames.next),
        (initrd.0 & !(PAGE - 1), initrd.1),
    ];
    // SAFETY: the new tables map the loader (code, stack, data) where it
    // runs now, so execution continues; the kernel's memory is mapped too.
    unsafe {
        Cr3::write(
            PhysFrame::containing_address(PhysAddr::new(pml4)),
            Cr3Flags::empty(),
        );
    }
    let boot_info_virtual = physical_memory_offset + boot_info;
    let regions_virtual = boot_info_virtual + regions_offset as u64;
    // SAFETY: the boot information's frames were allocated above (zeroed,
    // for no one else) and are mapped at the physical-memory offset; the
    // kernel receives them as 'static, as from the bootloader.
    let regions = unsafe {
        core::slice::from_raw_parts_mut(regions_virtual as *mut MemoryRegion, region_capacity)
    };
    let count = memory_map::regions(firmware, &used, regions)?;
    let mut info = BootInfo::new(MemoryRegions::from(&mut regions[..count]));
    info.physical_memory_offset = Optional::Some(physical_memory_offset);
    info.rsdp_addr = rsdp.into();
    info.kernel_addr = module.start;
    info.kernel_len = module.size;
    info.kernel_image_offset = base;
    info.kernel_stack_bottom = stack_bottom;
    info.kernel_stack_len = stack_size;
    // SAFETY: as above: the frames at `boot_info` are the boot
    // information's, mapped at `boot_info_virtual`.
    unsafe { (boot_info_virtual as *mut BootInfo).write(info) };
    Ok(HandOver {
        entry: base + kernel.entry,
        stack_top: stack_bottom + stack_size,
        boot_info: boot_info_virtual,
    })
}

/// Maps `len` bytes (rounded up to pages of size `S`) at `virtual_start`
/// to the physical memory at `physical_start`, with tables created present
/// and writable (the pages' own flags restrict them).
fn map<'t, S: PageSize>(
    tables: &mut OffsetPageTable<'t>,
    frames: &mut Frames,
    (virtual_start, physical_start, len): (u64, u64, u64),
    flags: PageTableFlags,
) -> Result<(), elf::Error>
where
    OffsetPageTable<'t>: Mapper<S>,
{
    let table_flags = PageTableFlags::PRESENT | PageTableFlags::WRITABLE;
    for offset in (0..len.next_multiple_of(S::SIZE)).step_by(S::SIZE as usize) {
        let page = Page::<S>::from_start_address(VirtAddr::new(virtual_start + offset))
            .map_err(|_| "a mapping is not page-aligned")?;
        let frame = PhysFrame::<S>::from_start_address(PhysAddr::new(physical_start + offset))
            .map_err(|_| "a mapping is not frame-aligned")?;
        // SAFETY: the tables are not in use yet (CR3 still holds the boot
        // tables), and each page is mapped once, to memory meant for it.
        unsafe { tables.map_to_with_table_flags(page, frame, flags, table_flags, frames) }
            .map_err(|_| "the loader could not map a page (out of memory or mapped twice)")?
            .ignore();
    }
    Ok(())
}

/// Whether the CPU has 1 GiB pages (CPUID 0x8000_0001, EDX bit 26).
fn has_gigabyte_pages() -> bool {
    let extended = core::arch::x86_64::__cpuid(0x8000_0000);
    extended.eax >= 0x8000_0001 && core::arch::x86_64::__cpuid(0x8000_0001).edx & (1 << 26) != 0
}
