//! `timeout1` as a boot image: [`unikit_tutorial::timeout1`] bound to the
//! kernel's devices.

#![no_std]
#![no_main]

unikit_kernel::unikernel!("timeout1", |d| unikit_tutorial::timeout1::start(
    d.time, d.random
));
