//! `udp_echo` as a boot image: the UDP echo server ([`unikit_tutorial::udp_echo`])
//! on the kernel's virtio-net card. With no card (the runner's `--net none`)
//! it exits 1 saying so.

#![no_std]
#![no_main]

unikit_kernel::unikernel!("udp_echo", |d| async move {
    unikit_tutorial::udp_echo::start(d.net()?, d.args, d.random).await
});
