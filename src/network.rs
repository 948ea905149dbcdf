//! The guest's network: none, QEMU user networking with host port
//! forwards, or a TAP device on the host.
//!
//! Every network gives the guest one virtio-net PCI device (QEMU's
//! `virtio-net-pci`, transitional, MAC `52:54:00:12:34:56`), the NIC the
//! kernel drives.
//!
//! * `--net user`: QEMU's user-mode network (slirp). The guest gets
//!   10.0.2.15 from slirp's DHCP server, the gateway is 10.0.2.2, and no
//!   host privileges are needed. The host reaches the guest only through
//!   forwarded ports: `--forward tcp:8080:80` makes `127.0.0.1:8080` on
//!   the host reach port 80 in the guest. Without any `--forward`, TCP and
//!   UDP port 8080 are forwarded to the same guest port (the port the
//!   network unikernels listen on by default).
//! * `--net tap[:NAME]`: a TAP device (default `unikit0`) on the host. When
//!   it does not exist and the runner is root, the runner creates it with
//!   the host address [`TAP_HOST_CIDR`], brings it up, and deletes it when
//!   QEMU ends. There is no DHCP server on it: give the guest a static
//!   address, e.g. `-- ipv4=10.0.3.2/24 ipv4-gateway=10.0.3.1`.

use std::fmt;
use std::process::Command;

/// The host side of a TAP network the runner creates.
pub const TAP_HOST_CIDR: &str = "10.0.3.1/24";

/// The TAP device's name when `--net tap` names none.
pub const DEFAULT_TAP: &str = "unikit0";

/// The guest port forwarded when `--net user` is given no `--forward`.
pub const DEFAULT_FORWARD_PORT: u16 = 8080;

/// A transport protocol of a port forward.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        })
    }
}

/// A host port forwarded to a guest port (`--forward`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Forward {
    /// TCP or UDP.
    pub protocol: Protocol,
    /// The port on the host's 127.0.0.1.
    pub host_port: u16,
    /// The port in the guest.
    pub guest_port: u16,
}

impl Forward {
    /// Parses `[tcp:|udp:]HOSTPORT[:GUESTPORT]` (TCP, and the same guest
    /// port, when left out).
    pub fn parse(text: &str) -> Result<Forward, String> {
        let expected = || {
            format!(
                "`--forward` expects [tcp:|udp:]HOSTPORT[:GUESTPORT] with ports 1-65535, got `{text}`"
            )
        };
        let (protocol, ports) = match text.split_once(':') {
            Some(("tcp", rest)) => (Protocol::Tcp, rest),
            Some(("udp", rest)) => (Protocol::Udp, rest),
            _ => (Protocol::Tcp, text),
        };
        let port = |text: &str| text.parse::<u16>().ok().filter(|&port| port != 0);
        let (host_port, guest_port) = match ports.split_once(':') {
            Some((host, guest)) => (port(host), port(guest)),
            None => (port(ports), port(ports)),
        };
        match (host_port, guest_port) {
            (Some(host_port), Some(guest_port)) => Ok(Forward {
                protocol,
                host_port,
                guest_port,
            }),
            _ => Err(expected()),
        }
    }
}

impl fmt::Display for Forward {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} 127.0.0.1:{} -> guest port {}",
            self.protocol, self.host_port, self.guest_port
        )
    }
}

/// The guest's network.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Network {
    /// No network device.
    #[default]
    None,
    /// QEMU user networking with these forwards.
    User {
        /// Host ports forwarded to the guest.
        forwards: Vec<Forward>,
    },
    /// A TAP device on the host.
    Tap {
        /// The device's name.
        name: String,
    },
}

impl Network {
    /// Parses the value of `--net`: `user`, `tap`, `tap:NAME` or `none`.
    pub fn parse(text: &str) -> Result<Network, String> {
        match text.split_once(':') {
            None if text == "none" => Ok(Network::None),
            None if text == "user" => Ok(Network::User {
                forwards: Vec::new(),
            }),
            None if text == "tap" => Ok(Network::Tap {
                name: DEFAULT_TAP.to_owned(),
            }),
            Some(("tap", name)) if valid_interface_name(name) => Ok(Network::Tap {
                name: name.to_owned(),
            }),
            _ => Err(format!(
                "`--net` expects user, tap, tap:NAME (1-15 letters, digits, `-` or `_`) or none, got `{text}`"
            )),
        }
    }

    /// The forwards in effect: the ones given, or the default ones for
    /// `--net user` without `--forward`.
    pub fn effective_forwards(&self) -> Vec<Forward> {
        match self {
            Network::User { forwards } if forwards.is_empty() => [Protocol::Tcp, Protocol::Udp]
                .into_iter()
                .map(|protocol| Forward {
                    protocol,
                    host_port: DEFAULT_FORWARD_PORT,
                    guest_port: DEFAULT_FORWARD_PORT,
                })
                .collect(),
            Network::User { forwards } => forwards.clone(),
            _ => Vec::new(),
        }
    }

    /// QEMU's arguments for this network.
    pub fn qemu_args(&self) -> Vec<String> {
        let netdev = match self {
            Network::None => return Vec::new(),
            Network::User { .. } => {
                let mut netdev = String::from("user,id=net0");
                for forward in self.effective_forwards() {
                    netdev.push_str(&format!(
                        ",hostfwd={}:127.0.0.1:{}-:{}",
                        forward.protocol, forward.host_port, forward.guest_port
                    ));
                }
                netdev
            }
            Network::Tap { name } => {
                format!("tap,id=net0,ifname={name},script=no,downscript=no")
            }
        };
        vec![
            "-netdev".into(),
            netdev,
            "-device".into(),
            "virtio-net-pci,netdev=net0".into(),
        ]
    }

    /// One line telling the user how to reach the guest.
    pub fn describe(&self) -> Option<String> {
        match self {
            Network::None => None,
            Network::User { .. } => {
                let forwards: Vec<String> = self
                    .effective_forwards()
                    .iter()
                    .map(Forward::to_string)
                    .collect();
                Some(format!(
                    "network: QEMU user networking (guest 10.0.2.15 by DHCP); forwarding {}",
                    forwards.join(", ")
                ))
            }
            Network::Tap { name } => Some(format!(
                "network: TAP device {name} (host {TAP_HOST_CIDR} when the runner creates it; give the guest a static address, e.g. -- ipv4=10.0.3.2/24)"
            )),
        }
    }
}

fn valid_interface_name(name: &str) -> bool {
    (1..=15).contains(&name.len())
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
}

/// A TAP device the runner created, deleted when dropped.
#[derive(Debug)]
pub struct CreatedTap {
    name: String,
}

impl Drop for CreatedTap {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "delete", &self.name])
            .status();
    }
}

/// Makes sure the TAP device `name` exists: uses it when it does, else
/// creates and configures it (root only). Returns the device when this
/// call created it, or one line saying what the user should do.
pub fn prepare_tap(name: &str) -> Result<Option<CreatedTap>, String> {
    if std::path::Path::new("/sys/class/net").join(name).exists() {
        return Ok(None);
    }
    let run = |args: &[&str]| {
        Command::new("ip")
            .args(args)
            .output()
            .map_err(|error| format!("cannot run `ip`: {error}"))
            .and_then(|output| {
                if output.status.success() {
                    Ok(())
                } else {
                    Err(format!(
                        "`ip {}` failed: {}",
                        args.join(" "),
                        String::from_utf8_lossy(&output.stderr).trim()
                    ))
                }
            })
    };
    let instruction = format!(
        "create it as root first: ip tuntap add dev {name} mode tap && ip addr add {TAP_HOST_CIDR} dev {name} && ip link set {name} up"
    );
    run(&["tuntap", "add", "dev", name, "mode", "tap"])
        .map_err(|error| format!("no TAP device {name}, and {error}; {instruction}"))?;
    let created = CreatedTap {
        name: name.to_owned(),
    };
    run(&["addr", "add", TAP_HOST_CIDR, "dev", name])?;
    run(&["link", "set", name, "up"])?;
    Ok(Some(created))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forward_defaults_to_tcp_and_the_same_guest_port() {
        assert_eq!(
            Forward::parse("8080"),
            Ok(Forward {
                protocol: Protocol::Tcp,
                host_port: 8080,
                guest_port: 8080
            })
        );
        assert_eq!(
            Forward::parse("udp:5353:53"),
            Ok(Forward {
                protocol: Protocol::Udp,
                host_port: 5353,
                guest_port: 53
            })
        );
        assert_eq!(Forward::parse("tcp:1:2").map(|f| f.guest_port), Ok(2));
    }

    #[test]
    fn a_bad_forward_says_what_was_expected() {
        for bad in ["", "0", "sctp:1:2", "tcp:70000", "tcp:8080:", "x:y"] {
            let error = Forward::parse(bad).unwrap_err();
            assert!(
                error.starts_with("`--forward` expects [tcp:|udp:]HOSTPORT[:GUESTPORT]"),
                "{bad}: {error}"
            );
        }
    }

    #[test]
    fn user_networking_forwards_port_8080_unless_told_otherwise() {
        let user = Network::parse("user").unwrap();
        assert_eq!(
            user.qemu_args(),
            [
                "-netdev",
                "user,id=net0,hostfwd=tcp:127.0.0.1:8080-:8080,hostfwd=udp:127.0.0.1:8080-:8080",
                "-device",
                "virtio-net-pci,netdev=net0"
            ]
        );
        let chosen = Network::User {
            forwards: vec![Forward::parse("tcp:18080:80").unwrap()],
        };
        assert_eq!(
            chosen.qemu_args()[1],
            "user,id=net0,hostfwd=tcp:127.0.0.1:18080-:80"
        );
        assert!(
            chosen
                .describe()
                .unwrap()
                .ends_with("forwarding tcp 127.0.0.1:18080 -> guest port 80")
        );
    }

    #[test]
    fn tap_networking_names_its_device() {
        assert_eq!(
            Network::parse("tap").unwrap().qemu_args()[1],
            "tap,id=net0,ifname=unikit0,script=no,downscript=no"
        );
        assert_eq!(
            Network::parse("tap:tap-7").unwrap(),
            Network::Tap {
                name: "tap-7".into()
            }
        );
        assert_eq!(
            Network::parse("none").unwrap().qemu_args(),
            Vec::<String>::new()
        );
    }

    #[test]
    fn a_bad_network_says_what_was_expected() {
        for bad in [
            "",
            "bridge",
            "tap:",
            "tap:a/b",
            "tap:much-too-long-name",
            "user:1",
        ] {
            let error = Network::parse(bad).unwrap_err();
            assert!(
                error.starts_with("`--net` expects user, tap"),
                "{bad}: {error}"
            );
        }
    }
}
