//! `hello` as a boot image: [`unikit_tutorial::hello`] bound to the
//! kernel's devices.

#![no_std]
#![no_main]

unikit_kernel::unikernel!("hello", |d| unikit_tutorial::hello::start(d.time));
