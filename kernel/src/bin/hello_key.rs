//! `hello_key` as a boot image: [`unikit_tutorial::hello_key`] bound to the
//! kernel's devices.

#![no_std]
#![no_main]

unikit_kernel::unikernel!("hello_key", |d| unikit_tutorial::hello_key::start(
    d.time, d.args
));
