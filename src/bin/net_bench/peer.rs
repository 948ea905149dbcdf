//! The peer: a small Linux VM made of Debian's packages, serving the same
//! TCP echo and HTTP as the unikernels.
//!
//! The kernel is Debian's (`linux-image-cloud-amd64`, else any installed
//! `/boot/vmlinuz-*`); the initramfs is written here as a `newc` archive
//! ([`super::cpio`]) holding the static busybox of `busybox-static`, the
//! kernel modules the NIC needs (virtio-pci and virtio-net are modules in
//! Debian's kernels; their dependencies come from `modules.dep`), and an
//! `/init` script that:
//!
//! 1. mounts /proc, /sys and /dev (devtmpfs) and loads the modules;
//! 2. configures eth0 statically as QEMU's user network expects
//!    (10.0.2.15/24 via 10.0.2.2: no DHCP round trip, which only favours
//!    the peer);
//! 3. starts busybox `httpd` on port 80 serving `hello mirage world!\n` as
//!    `/index.html`, and a TCP echo server on port 8080 (busybox `nc -ll -e
//!    cat`: one `cat` process per connection; busybox has no `tcpsvd`);
//! 4. prints [`READY`] and sleeps.
//!
//! busybox httpd answers HTTP/1.1 requests but closes the connection after
//! each response (it has no keep-alive), so HTTP clients of the peer open
//! one connection per request.
//!
//! When the packages are missing and the bench runs as root with apt-get,
//! it installs them; otherwise it says what to install. The initramfs is
//! rewritten under the target directory only when its bytes change.

use super::cpio::Archive;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The line `/init` prints once both servers run.
pub const READY: &str = "unikit-peer: ready";

/// The guest ports of the peer's servers.
pub const ECHO_PORT: u16 = 8080;
pub const HTTP_PORT: u16 = 80;

/// The kernel command line: the serial console, no boot messages (a user
/// would not pay for printing them at 115200 baud), and a panic (init
/// killed for lack of memory) powering the machine off through a reboot
/// that `-no-reboot` turns into QEMU's exit.
pub const CMDLINE: &str = "console=ttyS0 quiet panic=-1";

/// The modules the NIC needs, loaded with their dependencies first.
const NIC_MODULES: &[&str] = &["virtio_pci", "virtio_net"];

/// The busybox applets `/init` uses, as links in /bin.
const APPLETS: &[&str] = &[
    "sh", "mount", "insmod", "ip", "httpd", "nc", "cat", "sleep", "echo",
];

const PACKAGES: &[&str] = &["linux-image-cloud-amd64", "busybox-static"];

/// The built peer.
pub struct Peer {
    /// The kernel image.
    pub kernel: PathBuf,
    /// The initramfs (gzip-compressed when `gzip` is on the host).
    pub initramfs: PathBuf,
    /// The kernel's release, e.g. `6.1.0-56-cloud-amd64`.
    pub release: String,
    /// Whether the initramfs is compressed.
    pub compressed: bool,
}

impl Peer {
    /// Finds or installs the packages and writes the initramfs under
    /// `cache`.
    pub fn build(cache: &Path) -> Result<Peer, String> {
        let (kernel, busybox) = match (find_kernel(), find_static_busybox()) {
            (Some(kernel), Some(busybox)) => (kernel, busybox),
            _ => {
                install()?;
                let kernel = find_kernel().ok_or("no /boot/vmlinuz-* after installing")?;
                let busybox =
                    find_static_busybox().ok_or("no static /bin/busybox after installing")?;
                (kernel, busybox)
            }
        };
        let release = kernel
            .file_name()
            .and_then(|name| name.to_str())
            .and_then(|name| name.strip_prefix("vmlinuz-"))
            .ok_or("a kernel not named vmlinuz-RELEASE")?
            .to_owned();
        let archive = initramfs(&release, &busybox)?;
        let (bytes, compressed) = match gzip(&archive) {
            Some(compressed) => (compressed, true),
            None => (archive, false),
        };
        std::fs::create_dir_all(cache).map_err(|error| format!("{}: {error}", cache.display()))?;
        let initramfs = cache.join(format!("initramfs-{release}.cpio"));
        if std::fs::read(&initramfs).ok().as_deref() != Some(bytes.as_slice()) {
            std::fs::write(&initramfs, &bytes)
                .map_err(|error| format!("{}: {error}", initramfs.display()))?;
        }
        Ok(Peer {
            kernel,
            initramfs,
            release,
            compressed,
        })
    }

    /// The kernel's and the initramfs' sizes in bytes.
    pub fn sizes(&self) -> (u64, u64) {
        let size = |path: &Path| std::fs::metadata(path).map_or(0, |meta| meta.len());
        (size(&self.kernel), size(&self.initramfs))
    }
}

fn install() -> Result<(), String> {
    let instruction = format!(
        "the Linux peer needs Debian's {}; install them with: sudo apt-get install -y --no-install-recommends {}",
        PACKAGES.join(" and "),
        PACKAGES.join(" ")
    );
    let root = Path::new("/proc/self").metadata().is_ok_and(|meta| {
        use std::os::unix::fs::MetadataExt;
        meta.uid() == 0
    });
    if !root || unikit::host::find_in_path("apt-get").is_none() {
        return Err(instruction);
    }
    eprintln!("net-bench: installing {} with apt-get", PACKAGES.join(" "));
    let status = Command::new("apt-get")
        .args(["install", "-y", "--no-install-recommends"])
        .args(PACKAGES)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdin(Stdio::null())
        .stdout(std::io::stderr())
        .status();
    if status.is_ok_and(|status| status.success()) {
        Ok(())
    } else {
        Err(instruction)
    }
}

/// Debian's cloud kernel if installed, else the newest-named other one.
fn find_kernel() -> Option<PathBuf> {
    let mut kernels: Vec<PathBuf> = std::fs::read_dir("/boot")
        .ok()?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with("vmlinuz-"))
        })
        .collect();
    kernels.sort();
    let cloud = kernels
        .iter()
        .rev()
        .find(|path| path.to_string_lossy().ends_with("-cloud-amd64"));
    cloud.or(kernels.last()).cloned()
}

/// `/bin/busybox` if it is statically linked (no `PT_INTERP` program
/// header): Debian's `busybox` package installs a dynamic one there.
fn find_static_busybox() -> Option<PathBuf> {
    let path = PathBuf::from("/bin/busybox");
    let elf = std::fs::read(&path).ok()?;
    is_static_elf64(&elf).then_some(path)
}

fn is_static_elf64(elf: &[u8]) -> bool {
    const PT_INTERP: u32 = 3;
    let u16_at = |at: usize| {
        elf.get(at..at + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let u32_at = |at: usize| {
        elf.get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let u64_at = |at: usize| {
        elf.get(at..at + 8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
    };
    if !elf.starts_with(b"\x7fELF\x02\x01") {
        return false;
    }
    let (Some(table), Some(size), Some(count)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38)) else {
        return false;
    };
    (0..count as usize).all(|index| {
        u32_at(table as usize + index * size as usize).is_some_and(|kind| kind != PT_INTERP)
    })
}

/// The `.ko` paths (relative to the release's module directory) to load
/// for `wanted`, each after its dependencies, read from `modules.dep`
/// (`path: dependency...`). A module in neither `modules.dep` nor
/// `modules.builtin` is an error; a built-in one needs nothing.
fn module_load_order(dep: &str, builtin: &str, wanted: &[&str]) -> Result<Vec<String>, String> {
    let named = |path: &str, name: &str| {
        Path::new(path)
            .file_name()
            .and_then(|file| file.to_str())
            .and_then(|file| file.strip_suffix(".ko"))
            .is_some_and(|stem| stem.replace('-', "_") == name)
    };
    let deps_of = |path: &str| -> Vec<String> {
        dep.lines()
            .find_map(|line| {
                let (module, deps) = line.split_once(':')?;
                (module == path).then(|| deps.split_whitespace().map(String::from).collect())
            })
            .unwrap_or_default()
    };
    fn visit(
        path: String,
        deps_of: &dyn Fn(&str) -> Vec<String>,
        order: &mut Vec<String>,
        depth: usize,
    ) {
        if order.contains(&path) || depth > 32 {
            return;
        }
        for dependency in deps_of(&path) {
            visit(dependency, deps_of, order, depth + 1);
        }
        order.push(path);
    }
    let mut order = Vec::new();
    for name in wanted {
        let module = dep
            .lines()
            .filter_map(|line| line.split_once(':').map(|(module, _)| module))
            .find(|module| named(module, name));
        match module {
            Some(module) => visit(module.to_owned(), &deps_of, &mut order, 0),
            None if builtin.lines().any(|line| named(line, name)) => {}
            None => {
                return Err(format!(
                    "module {name} is neither in modules.dep as an uncompressed .ko nor built in"
                ));
            }
        }
    }
    Ok(order)
}

/// The initramfs archive (uncompressed).
fn initramfs(release: &str, busybox: &Path) -> Result<Vec<u8>, String> {
    let modules_dir = Path::new("/lib/modules").join(release);
    let read = |path: &Path| {
        std::fs::read_to_string(path).map_err(|error| format!("{}: {error}", path.display()))
    };
    let order = module_load_order(
        &read(&modules_dir.join("modules.dep"))?,
        &read(&modules_dir.join("modules.builtin")).unwrap_or_default(),
        NIC_MODULES,
    )?;
    let mut archive = Archive::default();
    for directory in ["bin", "dev", "proc", "sys", "www", "lib", "lib/modules"] {
        archive.directory(directory, 0o755);
    }
    archive.character_device("dev/console", 0o600, 5, 1);
    let busybox =
        std::fs::read(busybox).map_err(|error| format!("{}: {error}", busybox.display()))?;
    archive.file("bin/busybox", 0o755, &busybox);
    for applet in APPLETS {
        archive.symlink(&format!("bin/{applet}"), "busybox");
    }
    let mut loads = String::new();
    for module in &order {
        let file = Path::new(module).file_name().expect("a file name");
        let name = file.to_string_lossy();
        let bytes = std::fs::read(modules_dir.join(module))
            .map_err(|error| format!("module {module}: {error}"))?;
        archive.file(&format!("lib/modules/{name}"), 0o644, &bytes);
        loads.push_str(&format!("insmod /lib/modules/{name}\n"));
    }
    archive.file("www/index.html", 0o644, super::client::HELLO);
    archive.file("init", 0o755, init_script(&loads).as_bytes());
    Ok(archive.finish())
}

fn init_script(loads: &str) -> String {
    format!(
        "#!/bin/sh
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
{loads}ip link set lo up
ip addr add 10.0.2.15/24 dev eth0
ip link set eth0 up
ip route add default via 10.0.2.2
httpd -p {HTTP_PORT} -h /www
nc -ll -p {ECHO_PORT} -e cat &
echo '{READY}'
exec sleep 2147483647
"
    )
}

/// `bytes` through the host's `gzip -9n`, if there is one.
fn gzip(bytes: &[u8]) -> Option<Vec<u8>> {
    use std::io::Write;
    let mut child = Command::new(unikit::host::find_in_path("gzip")?)
        .arg("-9n")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .ok()?;
    let mut stdin = child.stdin.take()?;
    let input = bytes.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let output = child.wait_with_output().ok()?;
    let written = writer.join().ok()?.is_ok();
    (written && output.status.success()).then_some(output.stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEP: &str = "\
kernel/drivers/virtio/virtio.ko:
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/virtio/virtio_pci_modern_dev.ko:
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/net/core/failover.ko:
kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko
kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
";

    #[test]
    fn modules_load_after_their_dependencies_and_once() {
        let order = module_load_order(DEP, "", &["virtio_pci", "virtio_net"]).unwrap();
        let names: Vec<&str> = order
            .iter()
            .map(|path| path.rsplit('/').next().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "virtio_pci_modern_dev.ko",
                "virtio.ko",
                "virtio_ring.ko",
                "virtio_pci.ko",
                "failover.ko",
                "net_failover.ko",
                "virtio_net.ko"
            ]
        );
    }

    #[test]
    fn built_in_modules_need_nothing_and_missing_ones_are_errors() {
        let builtin = "kernel/drivers/virtio/virtio_pci.ko\n";
        let dep = "kernel/drivers/net/virtio_net.ko:\n";
        assert_eq!(
            module_load_order(dep, builtin, &["virtio_pci", "virtio_net"]).unwrap(),
            ["kernel/drivers/net/virtio_net.ko"]
        );
        let error = module_load_order(dep, "", &["virtio_pci"]).unwrap_err();
        assert!(error.contains("virtio_pci"), "{error}");
    }

    #[test]
    fn only_elf_files_without_an_interpreter_are_static() {
        // A minimal ELF64 header with one program header of the given type.
        let elf = |kind: u32| {
            let mut bytes = vec![0u8; 0x40 + 0x38];
            bytes[..6].copy_from_slice(b"\x7fELF\x02\x01");
            bytes[0x20..0x28].copy_from_slice(&0x40u64.to_le_bytes());
            bytes[0x36..0x38].copy_from_slice(&0x38u16.to_le_bytes());
            bytes[0x38..0x3a].copy_from_slice(&1u16.to_le_bytes());
            bytes[0x40..0x44].copy_from_slice(&kind.to_le_bytes());
            bytes
        };
        assert!(is_static_elf64(&elf(1)));
        assert!(!is_static_elf64(&elf(3)));
        assert!(!is_static_elf64(b"#!/bin/sh\n"));
    }
}
