//! `prng` as a boot image: [`unikit_tutorial::prng`] bound to the
//! kernel's devices.

#![no_std]
#![no_main]

unikit_kernel::unikernel!("prng", |d| unikit_tutorial::prng::start(d.random));
