//! `echo_console` as a boot image: [`unikit_tutorial::echo_console`] bound to the
//! kernel's devices.

#![no_std]
#![no_main]

unikit_kernel::unikernel!("echo_console", |d| unikit_tutorial::echo_console::start(
    d.console
));
