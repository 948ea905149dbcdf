//! The boot stack: where the bootloader put it, and its guard page.
//!
//! The bootloader maps [`SIZE`] bytes of stack with one unmapped guard page
//! directly below, and reports the bottom in the boot information. A stack
//! overflow faults on the guard page; the double-fault handler asks
//! [`is_guard_page_address`] to tell that apart from other double faults.

use core::sync::atomic::{AtomicU64, Ordering};

/// The size of the boot stack, as requested from the bootloader.
pub const SIZE: u64 = 128 * 1024;
const GUARD_PAGE_SIZE: u64 = 4096;

static BOTTOM: AtomicU64 = AtomicU64::new(0);

/// Records the lowest mapped address of the boot stack.
pub fn init(bottom: u64) {
    BOTTOM.store(bottom, Ordering::Relaxed);
}

/// Whether `address` lies in the guard page below the boot stack.
pub fn is_guard_page_address(address: u64) -> bool {
    guard_page_contains(BOTTOM.load(Ordering::Relaxed), address)
}

fn guard_page_contains(bottom: u64, address: u64) -> bool {
    bottom != 0 && (bottom.saturating_sub(GUARD_PAGE_SIZE)..bottom).contains(&address)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_page_below_the_stack_is_the_guard_page() {
        let bottom = 0x10_0000;
        assert!(guard_page_contains(bottom, bottom - 8));
        assert!(guard_page_contains(bottom, bottom - 4096));
        assert!(!guard_page_contains(bottom, bottom - 4097));
        assert!(!guard_page_contains(bottom, bottom));
        assert!(!guard_page_contains(0, 0));
    }
}
