//! Booting the two systems under the same QEMU machine.
//!
//! The unikernels boot through the runner's own code (`unikit::qemu::command`
//! with `--direct`, `--net user` and forwards, as `cargo run -- --direct
//! --mem N --forward tcp:HOST:GUEST NAME -- port=GUEST` would: QEMU loads
//! the kernel through `-kernel`, as it loads Linux); the Linux VM gets the same
//! flags (`-accel tcg -cpu max -m N -nodefaults -vga std -no-reboot
//! -display none -serial stdio`, the same `-netdev user` and
//! `virtio-net-pci` arguments from `unikit::network`) with
//! its own `-kernel/-initrd/-append`, and without the unikernels'
//! `isa-debug-exit` device.
//!
//! Each service gets a free host port; the console is read on a thread (so
//! QEMU never blocks on it) and kept for when something fails. QEMU is
//! killed when the [`Vm`] is dropped.

use super::peer::{self, Peer};
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Instant;
use unikit::cli::RunOptions;
use unikit::host::Tools;
use unikit::network::{Forward, Network, Protocol};
use unikit::qemu::{self, ArgsFile};

/// What a guest serves.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Service {
    /// TCP echo.
    Echo,
    /// HTTP `GET /`.
    Http,
}

/// The unikernels' log level: warnings only, as `quiet` does for the
/// Linux VM (`network` logs every read with its data at info level).
pub const LOG_LEVEL: &str = "log=warn";

/// The unikernel serving `service`, and the port it is told to use.
pub fn unikernel(service: Service) -> (&'static str, u16) {
    match service {
        Service::Echo => ("network", 8080),
        Service::Http => ("http", 80),
    }
}

/// One of the two systems compared.
pub enum System<'a> {
    /// The unikernels `network` and `http`, one per service, booted
    /// directly (`--direct`: QEMU's `-kernel` is unikit's PVH loader, as
    /// the Linux VM's is its kernel) or from their BIOS disk images.
    Unikit { direct: bool },
    /// The Linux VM, both services in one guest.
    Linux(&'a Peer),
}

impl System<'_> {
    /// The column's name.
    pub fn name(&self) -> &'static str {
        match self {
            System::Unikit { direct: true } => "unikit",
            System::Unikit { direct: false } => "unikit from its disk image",
            System::Linux(_) => "Linux VM",
        }
    }

    /// Boots the guest serving `service` with `mem_mib` of memory: the
    /// unikernel for it, or the Linux VM serving both.
    pub fn boot(&self, tools: &Tools, service: Service, mem_mib: u32) -> Vm {
        match self {
            System::Unikit { direct } => {
                let (name, guest_port) = unikernel(service);
                let [port] = free_ports();
                let image = unikit::images::find(name).expect("checked before");
                let options = RunOptions {
                    unikernel: name.into(),
                    direct: *direct,
                    mem_mib,
                    network: Network::User {
                        forwards: vec![forward(port, guest_port)],
                    },
                    runtime_args: vec![format!("port={guest_port}"), LOG_LEVEL.into()],
                    ..RunOptions::default()
                };
                let args = ArgsFile::write(&options.runtime_args).expect("a temporary file");
                let command = qemu::command(tools, image, &options, Some(&args));
                Vm::spawn(command, vec![(service, port)], Some(args))
            }
            System::Linux(peer) => {
                let [echo, http] = free_ports();
                let ports = vec![(Service::Echo, echo), (Service::Http, http)];
                let network = Network::User {
                    forwards: vec![
                        forward(ports[0].1, peer::ECHO_PORT),
                        forward(ports[1].1, peer::HTTP_PORT),
                    ],
                };
                let mut command = Command::new(&tools.qemu);
                command
                    .args(["-accel", "tcg", "-cpu", "max"])
                    .args(["-m", &mem_mib.to_string()])
                    .args(["-nodefaults", "-vga", "std", "-no-reboot"])
                    .args(["-display", "none", "-serial", "stdio"])
                    .arg("-kernel")
                    .arg(&peer.kernel)
                    .arg("-initrd")
                    .arg(&peer.initramfs)
                    .args(["-append", peer::CMDLINE])
                    .args(network.qemu_args());
                Vm::spawn(command, ports, None)
            }
        }
    }
}

fn forward(host_port: u16, guest_port: u16) -> Forward {
    Forward {
        protocol: Protocol::Tcp,
        host_port,
        guest_port,
    }
}

/// `N` different ports nobody listens on now (ephemeral ones the kernel
/// picks while all of them are held).
fn free_ports<const N: usize>() -> [u16; N] {
    let listeners: [TcpListener; N] =
        std::array::from_fn(|_| TcpListener::bind("127.0.0.1:0").expect("a free port"));
    listeners.map(|listener| listener.local_addr().expect("its address").port())
}

/// A running guest.
pub struct Vm {
    child: Child,
    /// When QEMU was spawned.
    pub started: Instant,
    ports: Vec<(Service, u16)>,
    console: Arc<Mutex<Vec<String>>>,
    _args: Option<ArgsFile>,
}

impl Vm {
    fn spawn(mut command: Command, ports: Vec<(Service, u16)>, args: Option<ArgsFile>) -> Vm {
        let started = Instant::now();
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("QEMU starts");
        let console = Arc::new(Mutex::new(Vec::new()));
        for output in [
            Box::new(child.stdout.take().expect("piped")) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().expect("piped")),
        ] {
            let console = Arc::clone(&console);
            thread::spawn(move || {
                for line in BufReader::new(output).lines() {
                    let Ok(line) = line else { break };
                    console.lock().expect("the console").push(line);
                }
            });
        }
        Vm {
            child,
            started,
            ports,
            console,
            _args: args,
        }
    }

    /// The host port forwarded to `service`'s server.
    pub fn port(&self, service: Service) -> u16 {
        self.ports
            .iter()
            .find_map(|&(served, port)| (served == service).then_some(port))
            .expect("a guest serving it")
    }

    /// Whether QEMU has ended.
    pub fn exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    /// The last `count` console lines, for an error message.
    pub fn console_tail(&self, count: usize) -> String {
        let console = self.console.lock().expect("the console");
        let start = console.len().saturating_sub(count);
        console[start..].join("\n   | ")
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
