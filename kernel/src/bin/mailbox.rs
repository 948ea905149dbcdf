//! `mailbox` as a boot image: [`unikit_tutorial::mailbox`] bound to the
//! kernel's devices.

#![no_std]
#![no_main]

unikit_kernel::unikernel!("mailbox", |d| unikit_tutorial::mailbox::start(d.time));
