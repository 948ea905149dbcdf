//! The stack on a real TAP interface, reached by the host's own TCP/IP
//! stack on real time. Runs only where a TAP device can be created (root
//! or CAP_NET_ADMIN, /dev/net/tun, the `ip` tool); elsewhere it prints why
//! it was skipped and passes.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use unikit_net::host::Tap;
use unikit_net::{Config, Ipv4Address, Ipv4Cidr, Ipv4Config, Stack};
use unikit_runtime::{Error, InterruptSignal, RealTime, async_, run};

const NAME: &str = "unikit-tap0";

/// The host thread's findings, handed to the event loop.
static HOST_DONE: InterruptSignal = InterruptSignal::new();
static HOST_RESULT: Mutex<Option<HostResult>> = Mutex::new(None);

/// What came back to the host: the TCP echo and the UDP echo.
type HostResult = Result<(Vec<u8>, Vec<u8>), String>;

fn ip(args: &[&str]) -> Result<(), String> {
    let output = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run `ip`: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// What the host does: a TCP echo and a UDP echo against the stack.
fn host_client() -> HostResult {
    let server: SocketAddr = "10.77.0.2:7".parse().unwrap();
    let mut tcp = TcpStream::connect_timeout(&server, Duration::from_secs(10))
        .map_err(|e| format!("TCP connect: {e}"))?;
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    tcp.write_all(b"hello over a tap")
        .map_err(|e| e.to_string())?;
    tcp.shutdown(std::net::Shutdown::Write)
        .map_err(|e| e.to_string())?;
    let mut echoed = Vec::new();
    tcp.read_to_end(&mut echoed)
        .map_err(|e| format!("TCP read: {e}"))?;
    let udp = UdpSocket::bind("10.77.0.1:0").map_err(|e| e.to_string())?;
    udp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    udp.send_to(b"a datagram", "10.77.0.2:7")
        .map_err(|e| e.to_string())?;
    let mut buffer = [0u8; 64];
    let (len, _) = udp
        .recv_from(&mut buffer)
        .map_err(|e| format!("UDP: {e}"))?;
    Ok((echoed, buffer[..len].to_vec()))
}

#[test]
fn a_tap_name_linux_cannot_take_is_a_clear_error() {
    let error = Tap::open("a-name-too-long-for-linux", [0x02, 0, 0, 0, 0, 1]).unwrap_err();
    assert_eq!(
        error.to_string(),
        "TAP interface name `a-name-too-long-for-linux`: expected 1 to 15 characters"
    );
}

#[test]
fn the_host_reaches_the_stack_over_a_tap_device() {
    let tap = match Tap::open(NAME, [0x02, 0, 0, 0, 0x77, 0x02]) {
        Ok(tap) => tap,
        Err(e) => {
            println!("skipped: {e}");
            return;
        }
    };
    if let Err(e) = ip(&["addr", "replace", "10.77.0.1/24", "dev", NAME])
        .and_then(|()| ip(&["link", "set", NAME, "up"]))
    {
        println!("skipped: {e}");
        return;
    }
    let outcome = run(RealTime::new(1), async move {
        let config = Config {
            ipv4: Ipv4Config::Static {
                address: Ipv4Cidr::new(Ipv4Address::new(10, 77, 0, 2), 24),
                gateway: None,
                dns: vec![],
            },
            ..Config::default()
        };
        let stack = Stack::new(tap, config, 1);
        let listener = stack.listen(7)?;
        async_(async move {
            let mut stream = listener.accept().await?;
            let mut buffer = [0u8; 256];
            loop {
                let read = stream.read(&mut buffer).await?;
                if read == 0 {
                    return Ok(stream.close().await?);
                }
                stream.write_all(&buffer[..read]).await?;
            }
        });
        let udp = stack.bind_udp(7)?;
        async_(async move {
            let mut buffer = [0u8; 1500];
            loop {
                let (len, from) = udp.recv_from(&mut buffer).await?;
                udp.send_to(&buffer[..len], from).await?;
            }
        });
        std::thread::spawn(|| {
            *HOST_RESULT.lock().unwrap() = Some(host_client());
            HOST_DONE.raise();
        });
        HOST_DONE.wait().await?;
        let result = HOST_RESULT
            .lock()
            .unwrap()
            .take()
            .expect("set before the raise");
        Ok::<_, Error>((result, stack.stats()))
    });
    let _ = ip(&["link", "del", NAME]);
    let (result, stats) = outcome.unwrap();
    let (tcp, udp) = result.unwrap();
    assert_eq!(tcp, b"hello over a tap");
    assert_eq!(udp, b"a datagram");
    assert_eq!(stats.rx_malformed, 0);
    assert!(
        stats.device.rx_packets > 0 && stats.device.tx_packets > 0,
        "{stats:?}"
    );
}
