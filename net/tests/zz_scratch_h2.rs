use std::time::Duration;
use unikit_net::host::{Faults, MemoryLink};
use unikit_net::{Config, IpEndpoint, Ipv4Address, Ipv4Cidr, Ipv4Config, Stack};
use unikit_runtime::{Simulated, async_, both, run, time};

fn config(last: u8) -> Config {
    Config {
        ipv4: Ipv4Config::Static {
            address: Ipv4Cidr::new(Ipv4Address::new(10, 0, 0, last), 24),
            gateway: None,
            dns: vec![],
        },
        ..Config::default()
    }
}

#[test]
fn many_seeds() {
    for seed in 0..40u64 {
        let (loss, dup, cor) = [
            (0.05, 0.05, 0.05),
            (0.2, 0.0, 0.0),
            (0.0, 0.3, 0.0),
            (0.0, 0.0, 0.2),
            (0.1, 0.1, 0.1),
        ][seed as usize % 5];
        let faults = Faults {
            loss,
            duplication: dup,
            corruption: cor,
            latency: Duration::from_micros(50 + seed * 37),
            seed,
        };
        let r = run(Simulated::new(seed), async move {
            let (a, b) = MemoryLink::pair(faults);
            let server = Stack::new(a, config(1), seed);
            let client = Stack::new(b, config(2), seed + 100);
            let listener = server.listen(7)?;
            async_(async move {
                loop {
                    let mut s = listener.accept().await?;
                    async_(async move {
                        let mut buf = [0u8; 3000];
                        loop {
                            let n = s.read(&mut buf).await?;
                            if n == 0 {
                                return Ok(s.close().await?);
                            }
                            s.write_all(&buf[..n]).await?;
                        }
                    });
                }
            });
            let data: Vec<u8> = (0..300_000u32)
                .map(|i| (i * 7 + seed as u32) as u8)
                .collect();
            let mut total = 0;
            for _ in 0..3 {
                let mut stream = client
                    .connect(IpEndpoint::new(Ipv4Address::new(10, 0, 0, 1).into(), 7))
                    .await?;
                let (mut r, mut w) = stream.split();
                let (_, got) = both(async { Ok(w.write_all(&data).await?) }, async {
                    let mut got = Vec::new();
                    let mut buf = [0u8; 5000];
                    while got.len() < data.len() {
                        let n = r.read(&mut buf).await?;
                        if n == 0 {
                            break;
                        }
                        got.extend_from_slice(&buf[..n]);
                    }
                    Ok(got)
                })
                .await?;
                assert!(got == data, "seed {seed}");
                stream.close().await?;
                total += got.len();
            }
            Ok((total, time::now(), server.stats().rx_malformed))
        });
        println!("seed {seed} {faults:?}: {r:?}");
        r.unwrap();
    }
}
