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

/// Every image, sorted by name.
pub const ALL: &[Image] = include!(concat!(env!("OUT_DIR"), "/images.rs"));

impl Image {
    /// Whether this image exists for the test suite rather than for users.
    pub fn is_test_image(&self) -> bool {
        self.name.starts_with("test-")
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

/// The list printed for `--list` and for an unknown name.
pub fn listing() -> String {
    let names = |test: bool| {
        ALL.iter()
            .filter(|image| image.is_test_image() == test)
            .map(|image| image.name)
            .collect::<Vec<_>>()
            .join(" ")
    };
    format!("unikernels: {}\ntest images: {}", names(false), names(true))
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
    fn noop_is_a_unikernel_and_test_images_are_listed_apart() {
        assert!(!find("noop").unwrap().is_test_image());
        assert!(find("test-panic").unwrap().is_test_image());
        let listing = listing();
        let (unikernels, tests) = listing.split_once('\n').unwrap();
        assert!(unikernels.contains("noop") && !unikernels.contains("test-panic"));
        assert!(tests.contains("test-panic") && !tests.contains("noop"));
    }
}
