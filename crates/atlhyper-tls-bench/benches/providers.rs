//! ring against aws-lc-rs (issue #19): full handshakes and a 12 KB body, in memory.
//!
//! ```sh
//! CARGO_TARGET_DIR=$PWD/target cargo bench --manifest-path crates/atlhyper-tls-bench/Cargo.toml
//! ```
//!
//! Each connection is a full handshake (no tickets, no resumption), as a daemon's or agent's
//! first connection to its receiver; the body is a daemon push (about 10 KB gzip) encrypted by the
//! client and decrypted by the server over one kept-alive connection. `handshake_side/*` counts
//! only one side's calls of the same handshakes: `client` is what a daemon or agent pays,
//! `server` what a receiving agent or the master pays.

use std::hint::black_box;
use std::time::Duration;

use atlhyper_tls_bench::{Pair, Provider, ServerKey, Sides, Version};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const BODY_BYTES: usize = 12 * 1024;

fn handshakes(c: &mut Criterion) {
    for (key, version) in [
        (ServerKey::EcdsaP256, Version::Tls13),
        (ServerKey::Rsa2048, Version::Tls13),
        (ServerKey::EcdsaP256, Version::Tls12),
    ] {
        let identity = key.identity();
        let mut group = c.benchmark_group(format!("handshake/{version:?}/{}", key.name()));
        for provider in Provider::ALL {
            let pair = Pair::new(provider, &identity, version);
            let mut probe = pair.connect();
            probe.handshake();
            eprintln!("{} {}: {}", key.name(), provider.name(), probe.negotiated());
            group.bench_function(provider.name(), |b| {
                b.iter(|| {
                    let mut conn = pair.connect();
                    conn.handshake();
                    black_box(conn)
                })
            });
        }
        group.finish();
    }
}

fn handshake_sides(c: &mut Criterion) {
    let client: fn(Sides) -> Duration = |s| s.client;
    let server: fn(Sides) -> Duration = |s| s.server;
    for key in [ServerKey::EcdsaP256, ServerKey::Rsa2048] {
        let identity = key.identity();
        let mut group = c.benchmark_group(format!("handshake_side/Tls13/{}", key.name()));
        for provider in [Provider::Ring, Provider::AwsLc] {
            let pair = Pair::new(provider, &identity, Version::Tls13);
            for (side, of) in [("client", client), ("server", server)] {
                group.bench_function(format!("{}/{side}", provider.name()), |b| {
                    b.iter_custom(|iters| {
                        (0..iters)
                            .map(|_| {
                                let mut conn = pair.connect();
                                conn.handshake();
                                of(black_box(conn).sides())
                            })
                            .sum()
                    })
                });
            }
        }
        group.finish();
    }
}

fn bulk(c: &mut Criterion) {
    let identity = ServerKey::EcdsaP256.identity();
    let body: Vec<u8> = (0..BODY_BYTES).map(|i| (i % 251) as u8).collect();
    let mut group = c.benchmark_group("body_12k/Tls13");
    group.throughput(Throughput::Bytes(BODY_BYTES as u64));
    for provider in [Provider::Ring, Provider::AwsLc] {
        let mut conn = Pair::new(provider, &identity, Version::Tls13).connect();
        conn.handshake();
        eprintln!("body {}: {}", provider.name(), conn.negotiated());
        group.bench_function(provider.name(), |b| {
            b.iter(|| assert_eq!(conn.send_to_server(black_box(&body)), BODY_BYTES))
        });
    }
    group.finish();
}

criterion_group!(benches, handshakes, handshake_sides, bulk);
criterion_main!(benches);
