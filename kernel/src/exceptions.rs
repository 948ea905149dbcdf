//! CPU exceptions: the interrupt descriptor table and its handlers.
//!
//! Every one of the CPU's exception vectors has a handler. A unikernel has
//! no process to kill and no user to return to, so every exception except
//! the breakpoint is fatal: the handler prints one report line (which
//! exception, the faulting instruction and stack pointer, the error code,
//! and for a page fault the address and the kind of access) and exits with
//! `CpuException` (4), or `DoubleFault` (5) for a double fault. A
//! breakpoint (`int3`) is counted and logged, and execution continues,
//! so a debugger-less developer can mark a spot.
//!
//! The double-fault and NMI handlers run on their own IST stacks (see
//! [`crate::gdt`]); the double-fault handler recognises a kernel stack
//! overflow by its faulting address lying just below the boot stack.

use crate::{fatal::report_and_exit, gdt, stack};
use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};
use spin::Once;
use unikit_drivers::qemu_exit::ExitStatus;
use x86_64::registers::control::Cr2;
use x86_64::structures::idt::{InterruptDescriptorTable, InterruptStackFrame, PageFaultErrorCode};

static IDT: Once<InterruptDescriptorTable> = Once::new();
static BREAKPOINTS: AtomicU64 = AtomicU64::new(0);

/// How many breakpoint exceptions have been handled since boot.
pub fn breakpoints_handled() -> u64 {
    BREAKPOINTS.load(Ordering::Relaxed)
}

/// Builds and loads the IDT, with the device handlers of
/// [`crate::interrupts`]. Call after [`gdt::init`].
pub fn init() {
    IDT.call_once(|| {
        let mut idt = InterruptDescriptorTable::new();
        idt.divide_error.set_handler_fn(divide_error);
        idt.debug.set_handler_fn(debug);
        idt.breakpoint.set_handler_fn(breakpoint);
        idt.overflow.set_handler_fn(overflow);
        idt.bound_range_exceeded
            .set_handler_fn(bound_range_exceeded);
        idt.invalid_opcode.set_handler_fn(invalid_opcode);
        idt.device_not_available
            .set_handler_fn(device_not_available);
        idt.invalid_tss.set_handler_fn(invalid_tss);
        idt.segment_not_present.set_handler_fn(segment_not_present);
        idt.stack_segment_fault.set_handler_fn(stack_segment_fault);
        idt.general_protection_fault
            .set_handler_fn(general_protection_fault);
        idt.page_fault.set_handler_fn(page_fault);
        idt.x87_floating_point.set_handler_fn(x87_floating_point);
        idt.alignment_check.set_handler_fn(alignment_check);
        idt.machine_check.set_handler_fn(machine_check);
        idt.simd_floating_point.set_handler_fn(simd_floating_point);
        idt.virtualization.set_handler_fn(virtualization);
        idt.cp_protection_exception
            .set_handler_fn(control_protection);
        idt.hv_injection_exception
            .set_handler_fn(hypervisor_injection);
        idt.vmm_communication_exception
            .set_handler_fn(vmm_communication);
        idt.security_exception.set_handler_fn(security_exception);
        crate::interrupts::install(&mut idt);
        // SAFETY: the IST indices name stacks that `gdt::init` placed in the
        // TSS, used by no other handler.
        unsafe {
            idt.double_fault
                .set_handler_fn(double_fault)
                .set_stack_index(gdt::DOUBLE_FAULT_IST_INDEX);
            idt.non_maskable_interrupt
                .set_handler_fn(non_maskable_interrupt)
                .set_stack_index(gdt::NMI_IST_INDEX);
        }
        idt
    })
    .load();
}

/// The "where" of a report: instruction and stack pointers.
struct At<'a>(&'a InterruptStackFrame);

impl fmt::Display for At<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "at instruction {:#x}, stack pointer {:#x}",
            self.0.instruction_pointer.as_u64(),
            self.0.stack_pointer.as_u64()
        )
    }
}

macro_rules! fatal_handlers {
    ($($handler:ident => $what:literal),* $(,)?) => {$(
        extern "x86-interrupt" fn $handler(frame: InterruptStackFrame) {
            report_and_exit(
                ExitStatus::CpuException,
                format_args!(concat!("CPU exception: ", $what, " {}"), At(&frame)),
            )
        }
    )*};
}

macro_rules! fatal_handlers_with_error_code {
    ($($handler:ident => $what:literal),* $(,)?) => {$(
        extern "x86-interrupt" fn $handler(frame: InterruptStackFrame, error_code: u64) {
            report_and_exit(
                ExitStatus::CpuException,
                format_args!(
                    concat!("CPU exception: ", $what, " {}, error code {:#x}"),
                    At(&frame),
                    error_code
                ),
            )
        }
    )*};
}

fatal_handlers! {
    divide_error => "divide error",
    debug => "debug exception",
    non_maskable_interrupt => "non-maskable interrupt",
    overflow => "overflow",
    bound_range_exceeded => "bound range exceeded",
    invalid_opcode => "invalid opcode",
    device_not_available => "device not available (FPU/SSE used)",
    x87_floating_point => "x87 floating-point exception",
    simd_floating_point => "SIMD floating-point exception",
    virtualization => "virtualization exception",
    hypervisor_injection => "hypervisor injection exception",
}

fatal_handlers_with_error_code! {
    invalid_tss => "invalid TSS",
    segment_not_present => "segment not present",
    stack_segment_fault => "stack-segment fault",
    general_protection_fault => "general protection fault",
    alignment_check => "alignment check",
    control_protection => "control protection exception",
    vmm_communication => "VMM communication exception",
    security_exception => "security exception",
}

extern "x86-interrupt" fn breakpoint(frame: InterruptStackFrame) {
    BREAKPOINTS.fetch_add(1, Ordering::Relaxed);
    log::warn!(target: "kernel", "breakpoint {}", At(&frame));
}

extern "x86-interrupt" fn machine_check(frame: InterruptStackFrame) -> ! {
    report_and_exit(
        ExitStatus::CpuException,
        format_args!("CPU exception: machine check {}", At(&frame)),
    )
}

extern "x86-interrupt" fn page_fault(frame: InterruptStackFrame, error_code: PageFaultErrorCode) {
    let address = Cr2::read_raw();
    report_and_exit(
        ExitStatus::CpuException,
        format_args!(
            "CPU exception: page fault: {} {:#x}{} {}, error code {:#x}",
            access_kind(error_code),
            address,
            if address < 0x1000 {
                " (null pointer)"
            } else {
                ""
            },
            At(&frame),
            error_code.bits()
        ),
    )
}

/// "write to unmapped address", "read of protected address", ...
fn access_kind(error_code: PageFaultErrorCode) -> &'static str {
    let present = error_code.contains(PageFaultErrorCode::PROTECTION_VIOLATION);
    if error_code.contains(PageFaultErrorCode::INSTRUCTION_FETCH) {
        if present {
            "instruction fetch from non-executable address"
        } else {
            "instruction fetch from unmapped address"
        }
    } else if error_code.contains(PageFaultErrorCode::CAUSED_BY_WRITE) {
        if present {
            "write to read-only address"
        } else {
            "write to unmapped address"
        }
    } else if present {
        "read of protected address"
    } else {
        "read of unmapped address"
    }
}

extern "x86-interrupt" fn double_fault(frame: InterruptStackFrame, _error_code: u64) -> ! {
    let address = Cr2::read_raw();
    if stack::is_guard_page_address(address) {
        report_and_exit(
            ExitStatus::DoubleFault,
            format_args!(
                "double fault: kernel stack overflow (the {} KiB boot stack is exhausted; guard page hit at {:#x}) {}",
                stack::SIZE / 1024,
                address,
                At(&frame)
            ),
        )
    }
    report_and_exit(
        ExitStatus::DoubleFault,
        format_args!(
            "double fault {}, last page-fault address {:#x}",
            At(&frame),
            address
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_fault_access_kinds_name_the_access_and_the_cause() {
        let write = PageFaultErrorCode::CAUSED_BY_WRITE;
        let present = PageFaultErrorCode::PROTECTION_VIOLATION;
        let fetch = PageFaultErrorCode::INSTRUCTION_FETCH;
        assert_eq!(access_kind(write), "write to unmapped address");
        assert_eq!(access_kind(write | present), "write to read-only address");
        assert_eq!(
            access_kind(PageFaultErrorCode::empty()),
            "read of unmapped address"
        );
        assert_eq!(access_kind(present), "read of protected address");
        assert_eq!(
            access_kind(fetch),
            "instruction fetch from unmapped address"
        );
        assert_eq!(
            access_kind(fetch | present),
            "instruction fetch from non-executable address"
        );
    }
}
