//! `timeout2` as a boot image: [`unikit_tutorial::timeout2`] bound to the
//! kernel's devices.

#![no_std]
#![no_main]

unikit_kernel::unikernel!("timeout2", |d| unikit_tutorial::timeout2::start(
    d.time, d.random
));
