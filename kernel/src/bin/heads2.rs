//! `heads2` as a boot image: [`unikit_tutorial::heads2`] bound to the
//! kernel's devices.

#![no_std]
#![no_main]

unikit_kernel::unikernel!("heads2", |d| unikit_tutorial::heads2::start(d.time));
