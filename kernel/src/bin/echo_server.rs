//! `echo_server` as a boot image: [`unikit_tutorial::echo_server`] bound to the
//! kernel's devices.

#![no_std]
#![no_main]

unikit_kernel::unikernel!("echo_server", |d| unikit_tutorial::echo_server::start(
    d.time, d.random
));
