fn main() {
    let kernel = std::path::PathBuf::from(std::env::var_os("CARGO_BIN_FILE_UNIKIT_KERNEL_noop").unwrap());
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").unwrap());
    bootloader::BiosBoot::new(&kernel).create_disk_image(&out.join("noop-bios.img")).unwrap();
    bootloader::UefiBoot::new(&kernel).create_disk_image(&out.join("noop-uefi.img")).unwrap();
    println!("cargo:rustc-env=NOOP_BIOS={}", out.join("noop-bios.img").display());
}
