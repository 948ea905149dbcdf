//! What the runner needs from the host: QEMU, and OVMF for UEFI boots (and
//! what the tests and benchmarks need: host clients such as `curl`).
//!
//! Both come from Debian's packages (`qemu-system-x86`, `ovmf`); firmware is
//! never downloaded at build time. When one is missing and the runner runs as
//! root on a system with `apt-get`, it installs both (apt's output goes to
//! stderr, so the console on stdout stays clean); otherwise it stops with a
//! one-line instruction. Runners started together (the test suite boots
//! many images at once) serialise on a lock file, so only the first one
//! installs and the others find the tools when it is done. `UNIKIT_QEMU`
//! and `UNIKIT_OVMF` override the paths.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The QEMU binary looked up in `PATH`.
pub const QEMU_BINARY: &str = "qemu-system-x86_64";

/// Where Debian (and others) put a whole OVMF image usable with `-bios`.
pub const OVMF_CANDIDATES: &[&str] = &[
    "/usr/share/ovmf/OVMF.fd",
    "/usr/share/OVMF/OVMF.fd",
    "/usr/share/qemu/OVMF.fd",
    "/usr/share/OVMF/OVMF_CODE.fd",
];

const PACKAGES: &[&str] = &["qemu-system-x86", "ovmf"];

/// Held while one runner installs the packages.
const INSTALL_LOCK: &str = "/tmp/unikit-install.lock";

/// The host tools a boot needs.
#[derive(Debug)]
pub struct Tools {
    /// The QEMU binary.
    pub qemu: PathBuf,
    /// The UEFI firmware, when booting UEFI.
    pub ovmf: Option<PathBuf>,
}

/// Finds QEMU (and OVMF when `uefi`), installing them if possible.
pub fn ensure_tools(uefi: bool) -> Result<Tools, String> {
    let missing = if find_qemu().is_none() {
        "QEMU"
    } else {
        "OVMF (UEFI firmware)"
    };
    ensure(missing, PACKAGES, || find_tools(uefi))
}

/// Finds `program` in `PATH`, installing Debian's `packages` if possible
/// (the test suite's and benchmarks' host clients: `curl`, `python3`...).
pub fn ensure_program(program: &str, packages: &[&str]) -> Result<PathBuf, String> {
    ensure(program, packages, || find_in_path(program))
}

/// `find()`'s result, after installing `packages` with apt-get (as root,
/// once, under the install lock) when it finds nothing; else one line
/// saying what to install.
fn ensure<T>(missing: &str, packages: &[&str], find: impl Fn() -> Option<T>) -> Result<T, String> {
    if let Some(found) = find() {
        return Ok(found);
    }
    if !is_root() || find_in_path("apt-get").is_none() {
        return Err(format!(
            "{missing} is missing; install it with: sudo apt-get install -y {}",
            packages.join(" ")
        ));
    }
    let lock = std::fs::File::create(INSTALL_LOCK)
        .and_then(|file| file.lock().map(|()| file))
        .map_err(|error| format!("cannot take the install lock {INSTALL_LOCK}: {error}"))?;
    if let Some(found) = find() {
        return Ok(found);
    }
    eprintln!(
        "unikit: {missing} is missing; installing {} with apt-get",
        packages.join(" ")
    );
    let install = |packages: &[&str]| {
        let mut args = vec!["install", "-y", "--no-install-recommends"];
        args.extend_from_slice(packages);
        apt_get(&args)
    };
    if !install(packages) {
        // A fresh machine may have no package lists yet.
        apt_get(&["update"]);
        install(packages);
    }
    drop(lock);
    find().ok_or_else(|| {
        format!(
            "{missing} is still missing after apt-get; install it with: apt-get install -y {}",
            packages.join(" ")
        )
    })
}

fn find_tools(uefi: bool) -> Option<Tools> {
    let qemu = find_qemu()?;
    let ovmf = if uefi { Some(find_ovmf()?) } else { None };
    Some(Tools { qemu, ovmf })
}

fn find_qemu() -> Option<PathBuf> {
    match std::env::var_os("UNIKIT_QEMU") {
        Some(path) => Some(PathBuf::from(path)),
        None => find_in_path(QEMU_BINARY),
    }
}

fn find_ovmf() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("UNIKIT_OVMF") {
        return Some(PathBuf::from(path));
    }
    OVMF_CANDIDATES
        .iter()
        .map(PathBuf::from)
        .find(|path| path.is_file())
}

/// The first `name` in `PATH`.
pub fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// Whether the runner runs as root (the owner of `/proc/self` is the
/// effective user).
fn is_root() -> bool {
    Path::new("/proc/self")
        .metadata()
        .is_ok_and(|meta| meta.uid() == 0)
}

fn apt_get(args: &[&str]) -> bool {
    let mut command = Command::new("apt-get");
    command
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdin(Stdio::null())
        .stdout(std::io::stderr());
    command.status().is_ok_and(|status| status.success())
}
