//! `http` as a boot image: the HTTP/1.1 server ([`unikit_tutorial::http`])
//! on the kernel's virtio-net card. With no card (the runner's `--net none`)
//! it exits 1 saying so.

#![no_std]
#![no_main]

unikit_kernel::unikernel!("http", |d| async move {
    unikit_tutorial::http::start(d.net()?, d.args, d.random).await
});
