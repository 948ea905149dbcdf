//! The disk images `build.rs` made: one BIOS and one UEFI image per
//! unikernel binary of `unikit-kernel`.

use std::path::Path;

/// One unikernel and its images.
#[derive(Debug)]
pub struct Image {
    /// The unikernel's name, as given to `cargo run -- <name>`.
    pub name: &'static str,
    /// The kernel ELF (with symbols), for debuggers.
    pub kernel: &'static str,
    /// The BIOS disk image.
    pub bios: &'static str,
    /// The UEFI disk image.
    pub uefi: &'static str,
}

/// The loader QEMU boots with `-kernel` for a direct boot (`--direct`); the
/// unikernel's kernel ELF goes with it as `-initrd` (see `unikit-pvh`).
pub const DIRECT_BOOT_LOADER: &str = include!(concat!(env!("OUT_DIR"), "/direct_boot_loader.rs"));

/// Every image, sorted by name.
pub const ALL: &[Image] = include!(concat!(env!("OUT_DIR"), "/images.rs"));

impl Image {
    /// Whether this image exists for the test suite rather than for users.
    pub fn is_test_image(&self) -> bool {
        self.name.starts_with("test-")
    }

    /// Whether this image exists for `kernel-bench` (named `bench-*`).
    pub fn is_bench_image(&self) -> bool {
        self.name.starts_with("bench-")
    }

    /// The disk image for the chosen firmware.
    pub fn disk(&self, uefi: bool) -> &'static Path {
        Path::new(if uefi { self.uefi } else { self.bios })
    }
}

/// The image called `name`.
pub fn find(name: &str) -> Option<&'static Image> {
    ALL.iter().find(|image| image.name == name)
}

/// The list printed for `--list` and for an unknown name: the unikernels,
/// then the test suite's images, then the benchmark's, one line each.
pub fn listing() -> String {
    let names = |kind: fn(&Image) -> bool| {
        ALL.iter()
            .filter(|image| kind(image))
            .map(|image| image.name)
            .collect::<Vec<_>>()
            .join(" ")
    };
    format!(
        "unikernels: {}\ntest images: {}\nbench images: {}",
        names(|image| !image.is_test_image() && !image.is_bench_image()),
        names(Image::is_test_image),
        names(Image::is_bench_image)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_image_has_both_disks_on_disk() {
        for image in ALL {
            assert!(Path::new(image.kernel).is_file(), "{}", image.kernel);
            assert!(image.disk(false).is_file(), "{}", image.bios);
            assert!(image.disk(true).is_file(), "{}", image.uefi);
        }
    }

    #[test]
    fn noop_is_a_unikernel_and_test_and_bench_images_are_listed_apart() {
        assert!(!find("noop").unwrap().is_test_image());
        assert!(find("test-panic").unwrap().is_test_image());
        assert!(find("bench-idle").unwrap().is_bench_image());
        let listing = listing();
        let lines: Vec<&str> = listing.lines().collect();
        let [unikernels, tests, benches] = lines[..] else {
            panic!("three lines: {listing}");
        };
        assert!(unikernels.contains("noop") && !unikernels.contains("test-panic"));
        assert!(!unikernels.contains("bench-") && !tests.contains("bench-"));
        assert!(tests.contains("test-panic") && !tests.contains("noop"));
        assert_eq!(benches, "bench images: bench-idle bench-timers");
    }
}
