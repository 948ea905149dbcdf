//! Links the loader at a fixed physical address (1 MiB), not position
//! independent: QEMU's PVH loader places an ELF's segments at their
//! addresses and enters its 32-bit entry with paging off.

fn main() {
    println!("cargo:rerun-if-changed=link.ld");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none") {
        let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
        println!("cargo:rustc-link-arg-bins=--no-pie");
        println!("cargo:rustc-link-arg-bins=-T{dir}/link.ld");
    }
}
