//! The global descriptor table and the task-state segment.
//!
//! Long mode ignores segmentation, but the CPU still needs a code segment, a
//! data segment for SS, and a TSS for one thing that matters: the interrupt
//! stack table. The double-fault and NMI handlers run on stacks of their own
//! (IST entries), so a kernel stack overflow, which page-faults on the guard
//! page and then cannot push the page-fault frame, still reaches a handler
//! that can report it.

use spin::Once;
use x86_64::VirtAddr;
use x86_64::instructions::segmentation::{CS, DS, ES, SS, Segment};
use x86_64::instructions::tables::load_tss;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable};
use x86_64::structures::tss::TaskStateSegment;

/// IST slot of the double-fault handler's stack.
pub const DOUBLE_FAULT_IST_INDEX: u16 = 0;
/// IST slot of the NMI handler's stack.
pub const NMI_IST_INDEX: u16 = 1;

const IST_STACK_SIZE: usize = 16 * 1024;

#[repr(C, align(16))]
struct IstStack([u8; IST_STACK_SIZE]);

static mut DOUBLE_FAULT_STACK: IstStack = IstStack([0; IST_STACK_SIZE]);
static mut NMI_STACK: IstStack = IstStack([0; IST_STACK_SIZE]);

static TSS: Once<TaskStateSegment> = Once::new();
static GDT: Once<GlobalDescriptorTable> = Once::new();

/// The top of an IST stack (stacks grow down).
fn stack_top(stack: *mut IstStack) -> VirtAddr {
    VirtAddr::from_ptr(stack) + IST_STACK_SIZE as u64
}

/// Loads the GDT and TSS and reloads the segment registers. Call once at
/// boot, before loading the IDT.
pub fn init() {
    let tss = TSS.call_once(|| {
        let mut tss = TaskStateSegment::new();
        tss.interrupt_stack_table[usize::from(DOUBLE_FAULT_IST_INDEX)] =
            stack_top(&raw mut DOUBLE_FAULT_STACK);
        tss.interrupt_stack_table[usize::from(NMI_IST_INDEX)] = stack_top(&raw mut NMI_STACK);
        tss
    });
    let mut code = None;
    let mut data = None;
    let mut task = None;
    let gdt = GDT.call_once(|| {
        let mut gdt = GlobalDescriptorTable::new();
        code = Some(gdt.append(Descriptor::kernel_code_segment()));
        data = Some(gdt.append(Descriptor::kernel_data_segment()));
        task = Some(gdt.append(Descriptor::tss_segment(tss)));
        gdt
    });
    let (Some(code), Some(data), Some(task)) = (code, data, task) else {
        return;
    };
    gdt.load();
    // SAFETY: the selectors index the descriptors just appended to the GDT
    // that is now loaded: a 64-bit ring-0 code segment, a ring-0 data
    // segment, and a TSS whose IST stacks are statics that live forever and
    // are used by no other code.
    unsafe {
        CS::set_reg(code);
        SS::set_reg(data);
        DS::set_reg(data);
        ES::set_reg(data);
        load_tss(task);
    }
}
