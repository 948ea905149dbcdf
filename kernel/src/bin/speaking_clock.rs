//! `speaking_clock` as a boot image: [`unikit_tutorial::speaking_clock`] bound to the
//! kernel's devices.

#![no_std]
#![no_main]

unikit_kernel::unikernel!(
    "speaking_clock",
    |d| unikit_tutorial::speaking_clock::start(d.time, d.mclock, d.pclock, d.args)
);
