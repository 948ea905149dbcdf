//! `heads1` as a boot image: [`unikit_tutorial::heads1`] bound to the
//! kernel's devices.

#![no_std]
#![no_main]

unikit_kernel::unikernel!("heads1", |d| unikit_tutorial::heads1::start(d.time));
