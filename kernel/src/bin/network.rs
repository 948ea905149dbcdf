//! `network` as a boot image: MirageOS's TCP echo example ([`unikit_tutorial::network`])
//! on the kernel's virtio-net card. With no card (the runner's `--net none`)
//! it exits 1 saying so.

#![no_std]
#![no_main]

unikit_kernel::unikernel!("network", |d| async move {
    unikit_tutorial::network::start(d.net()?, d.args, d.random).await
});
