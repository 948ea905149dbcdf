//! Builds a BIOS and a UEFI disk image for every unikernel.
//!
//! The kernels are artifact dependencies (`-Zbindeps`): Cargo builds every
//! binary of `unikit-kernel` for `x86_64-unknown-none` and tells this script
//! where each one is through `CARGO_BIN_FILE_UNIKIT_KERNEL_<name>`. For each,
//! the `bootloader` crate writes `<name>-bios.img` and `<name>-uefi.img` into
//! `OUT_DIR`, with the bootloader's own serial and framebuffer logging off
//! (slow under TCG, and it would clutter the unikernel's console). The list
//! of images reaches the runner as generated Rust source, `images.rs`, and
//! the path of the direct-boot loader (`unikit-pvh`) as
//! `direct_boot_loader.rs`.

use bootloader::{BiosBoot, BootConfig, UefiBoot};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

const KERNEL_BIN_PREFIX: &str = "CARGO_BIN_FILE_UNIKIT_KERNEL_";
/// The loader for direct boots (`--direct`), an artifact of `unikit-pvh`.
const DIRECT_BOOT_LOADER: &str = "CARGO_BIN_FILE_UNIKIT_PVH_pvh-loader";

fn main() {
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let mut kernels: Vec<(String, PathBuf)> = std::env::vars_os()
        .filter_map(|(key, value)| {
            let name = key.to_str()?.strip_prefix(KERNEL_BIN_PREFIX)?.to_owned();
            Some((name, PathBuf::from(value)))
        })
        .collect();
    kernels.sort();
    assert!(!kernels.is_empty(), "no kernel binaries: is -Zbindeps on?");

    let mut boot_config = BootConfig::default();
    boot_config.serial_logging = false;
    boot_config.frame_buffer_logging = false;

    let mut table = String::from("&[\n");
    for (name, kernel) in &kernels {
        let bios = out_dir.join(format!("{name}-bios.img"));
        let uefi = out_dir.join(format!("{name}-uefi.img"));
        build_image(&bios, || {
            BiosBoot::new(kernel)
                .set_boot_config(&boot_config)
                .create_disk_image(&bios)
        });
        build_image(&uefi, || {
            UefiBoot::new(kernel)
                .set_boot_config(&boot_config)
                .create_disk_image(&uefi)
        });
        writeln!(
            table,
            "    Image {{ name: {name:?}, kernel: {kernel:?}, bios: {bios:?}, uefi: {uefi:?} }},"
        )
        .expect("writing to a String cannot fail");
    }
    table.push(']');
    std::fs::write(out_dir.join("images.rs"), table).expect("OUT_DIR is writable");

    let loader = std::env::var(DIRECT_BOOT_LOADER).expect("the pvh-loader artifact");
    std::fs::write(out_dir.join("direct_boot_loader.rs"), format!("{loader:?}"))
        .expect("OUT_DIR is writable");
}

fn build_image<E: std::fmt::Display>(path: &Path, create: impl FnOnce() -> Result<(), E>) {
    if let Err(error) = create() {
        panic!("creating {}: {error:#}", path.display());
    }
}
