//! In-memory TLS between a rustls client and server, for comparing crypto providers without a
//! socket: the bench measures crypto and rustls, not the kernel.
//!
//! ```
//! use atlhyper_tls_bench::{Pair, Provider, ServerKey, Version};
//!
//! let identity = ServerKey::EcdsaP256.identity();
//! let pair = Pair::new(Provider::Ring, &identity, Version::Tls13);
//! let mut conn = pair.connect();
//! conn.handshake();
//! assert_eq!(conn.send_to_server(&[7; 12 * 1024]), 12 * 1024);
//! ```

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, SignatureAlgorithm};
use rustls::client::Resumption;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection};

/// A rustls crypto provider as this workspace configures it (rustls without default features, so
/// no `prefer-post-quantum`), plus aws-lc-rs preferring post-quantum key exchange for reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// ring: X25519, P-256, P-384 key exchange.
    Ring,
    /// aws-lc-rs: X25519 first, the hybrid X25519MLKEM768 offered last (without a key share).
    AwsLc,
    /// aws-lc-rs with X25519MLKEM768 first (rustls's `prefer-post-quantum`): what it costs.
    AwsLcPostQuantum,
}

impl Provider {
    /// Every provider, in the order the bench reports them.
    pub const ALL: [Provider; 3] = [Provider::Ring, Provider::AwsLc, Provider::AwsLcPostQuantum];

    /// A short name for bench ids.
    pub fn name(self) -> &'static str {
        match self {
            Provider::Ring => "ring",
            Provider::AwsLc => "aws-lc-rs",
            Provider::AwsLcPostQuantum => "aws-lc-rs-pq",
        }
    }

    /// The rustls provider.
    pub fn crypto(self) -> Arc<CryptoProvider> {
        Arc::new(match self {
            Provider::Ring => rustls::crypto::ring::default_provider(),
            Provider::AwsLc => rustls::crypto::aws_lc_rs::default_provider(),
            Provider::AwsLcPostQuantum => {
                let aws = rustls::crypto::aws_lc_rs::default_provider();
                let hybrid = rustls::crypto::aws_lc_rs::kx_group::X25519MLKEM768;
                let mut kx_groups = vec![hybrid];
                kx_groups.extend(
                    aws.kx_groups
                        .iter()
                        .copied()
                        .filter(|group| group.name() != hybrid.name()),
                );
                CryptoProvider { kx_groups, ..aws }
            }
        })
    }
}

/// The server's key type: what the testkit CA issues (P-256), and what cert-manager issues by
/// default (RSA 2048).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerKey {
    /// ECDSA P-256 with SHA-256.
    EcdsaP256,
    /// RSA 2048, PKCS#1 v1.5 signatures on the certificates (the handshake signs with PSS).
    Rsa2048,
}

impl ServerKey {
    /// A short name for bench ids.
    pub fn name(self) -> &'static str {
        match self {
            ServerKey::EcdsaP256 => "ecdsa-p256",
            ServerKey::Rsa2048 => "rsa-2048",
        }
    }

    fn algorithm(self) -> &'static SignatureAlgorithm {
        match self {
            ServerKey::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            ServerKey::Rsa2048 => &rcgen::PKCS_RSA_SHA256,
        }
    }

    /// A fresh CA of this key type and a `localhost` leaf it signed.
    pub fn identity(self) -> Identity {
        let alg = self.algorithm();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_key = KeyPair::generate_for(alg).expect("CA key");
        let ca_cert = ca_params.self_signed(&ca_key).expect("self-signed CA");
        let issuer = Issuer::new(ca_params, ca_key);
        let leaf_key = KeyPair::generate_for(alg).expect("leaf key");
        let leaf_cert = CertificateParams::new(vec!["localhost".to_owned()])
            .expect("leaf parameters")
            .signed_by(&leaf_key, &issuer)
            .expect("signed leaf");
        Identity {
            ca: ca_cert.der().clone(),
            chain: vec![leaf_cert.der().clone()],
            key: PrivatePkcs8KeyDer::from(leaf_key.serialize_der()),
        }
    }
}

/// A server certificate chain with its key, and the CA that signed it.
#[derive(Debug)]
pub struct Identity {
    ca: CertificateDer<'static>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivatePkcs8KeyDer<'static>,
}

/// The protocol version both sides are limited to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// TLS 1.3 (what our clients and servers negotiate with each other).
    Tls13,
    /// TLS 1.2 (still accepted by our servers).
    Tls12,
}

/// A client and a server configuration on one provider: full handshakes every time (no tickets,
/// no resumption), so each connection pays what a daemon's first connection pays.
#[derive(Debug)]
pub struct Pair {
    client: Arc<ClientConfig>,
    server: Arc<ServerConfig>,
}

impl Pair {
    /// Configurations for `identity` on `provider`, limited to `version`.
    pub fn new(provider: Provider, identity: &Identity, version: Version) -> Self {
        let versions: &[&rustls::SupportedProtocolVersion] = match version {
            Version::Tls13 => &[&rustls::version::TLS13],
            Version::Tls12 => &[&rustls::version::TLS12],
        };
        let mut roots = RootCertStore::empty();
        roots.add(identity.ca.clone()).expect("CA certificate");
        let mut client = ClientConfig::builder_with_provider(provider.crypto())
            .with_protocol_versions(versions)
            .expect("provider supports the version")
            .with_root_certificates(roots)
            .with_no_client_auth();
        client.resumption = Resumption::disabled();
        let mut server = ServerConfig::builder_with_provider(provider.crypto())
            .with_protocol_versions(versions)
            .expect("provider supports the version")
            .with_no_client_auth()
            .with_single_cert(
                identity.chain.clone(),
                PrivateKeyDer::Pkcs8(identity.key.clone_key()),
            )
            .expect("server key");
        server.send_tls13_tickets = 0;
        Self {
            client: Arc::new(client),
            server: Arc::new(server),
        }
    }

    /// A new, not yet handshaken connection (the client's first flight is built here: its key
    /// share and ClientHello, counted in [`Connection::sides`]).
    pub fn connect(&self) -> Connection {
        let name = ServerName::try_from("localhost").expect("server name");
        let mut sides = Sides::default();
        let start = Instant::now();
        let client = ClientConnection::new(self.client.clone(), name).expect("client connection");
        sides.client += start.elapsed();
        let start = Instant::now();
        let server = ServerConnection::new(self.server.clone()).expect("server connection");
        sides.server += start.elapsed();
        Connection {
            client,
            server,
            sides,
            wire: Vec::with_capacity(32 * 1024),
            plain: Vec::with_capacity(32 * 1024),
        }
    }
}

/// Time spent in each side's own calls so far (one thread, so wall time is that side's CPU):
/// the client is what a daemon or agent pays per connection, the server what a receiving agent
/// or the master pays.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sides {
    /// In the client's calls.
    pub client: Duration,
    /// In the server's calls.
    pub server: Duration,
}

/// Both ends of one connection, with the bytes between them carried in memory.
#[derive(Debug)]
pub struct Connection {
    client: ClientConnection,
    server: ServerConnection,
    sides: Sides,
    wire: Vec<u8>,
    plain: Vec<u8>,
}

impl Connection {
    /// Runs the handshake to completion on both sides.
    pub fn handshake(&mut self) {
        while self.client.is_handshaking() || self.server.is_handshaking() {
            let sides = &mut self.sides;
            let sent = carry(
                (&mut *self.client, &mut sides.client),
                (&mut *self.server, &mut sides.server),
                &mut self.wire,
            ) + carry(
                (&mut *self.server, &mut sides.server),
                (&mut *self.client, &mut sides.client),
                &mut self.wire,
            );
            assert!(sent > 0, "handshake stalled");
        }
    }

    /// Encrypts `body` on the client, decrypts it on the server; the plaintext bytes the server
    /// read (the body's length when nothing was lost).
    pub fn send_to_server(&mut self, body: &[u8]) -> usize {
        self.client.writer().write_all(body).expect("client write");
        let sides = &mut self.sides;
        carry(
            (&mut *self.client, &mut sides.client),
            (&mut *self.server, &mut sides.server),
            &mut self.wire,
        );
        self.plain.clear();
        match self.server.reader().read_to_end(&mut self.plain) {
            Ok(_) => {}
            // No close_notify yet: everything sent so far has been read.
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("server read: {e}"),
        }
        self.plain.len()
    }

    /// Time each side has spent since [`Pair::connect`].
    pub fn sides(&self) -> Sides {
        self.sides
    }

    /// The negotiated cipher suite and key exchange group, for the bench's log.
    pub fn negotiated(&self) -> String {
        let suite = self
            .client
            .negotiated_cipher_suite()
            .map(|s| format!("{:?}", s.suite()));
        let group = self
            .client
            .negotiated_key_exchange_group()
            .map(|g| format!("{:?}", g.name()));
        format!(
            "{} {}",
            suite.unwrap_or_default(),
            group.unwrap_or_default()
        )
    }
}

/// Moves every pending TLS byte from `from` to `to` and lets `to` process it, adding each side's
/// time to its clock; the bytes moved.
fn carry<From, To>(
    (from, from_clock): (&mut rustls::ConnectionCommon<From>, &mut Duration),
    (to, to_clock): (&mut rustls::ConnectionCommon<To>, &mut Duration),
    wire: &mut Vec<u8>,
) -> usize {
    wire.clear();
    let start = Instant::now();
    while from.wants_write() {
        from.write_tls(wire).expect("write to memory");
    }
    *from_clock += start.elapsed();
    let start = Instant::now();
    let mut rest = &wire[..];
    while !rest.is_empty() {
        to.read_tls(&mut rest).expect("read from memory");
        to.process_new_packets().expect("TLS records");
    }
    *to_clock += start.elapsed();
    wire.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_provider_completes_a_handshake_and_carries_a_body() {
        for key in [ServerKey::EcdsaP256, ServerKey::Rsa2048] {
            let identity = key.identity();
            for provider in Provider::ALL {
                for version in [Version::Tls13, Version::Tls12] {
                    let mut conn = Pair::new(provider, &identity, version).connect();
                    conn.handshake();
                    let body: Vec<u8> = (0..12 * 1024).map(|i| (i % 251) as u8).collect();
                    assert_eq!(conn.send_to_server(&body), body.len());
                    assert_eq!(conn.plain, body, "{provider:?} {key:?} {version:?}");
                    let sides = conn.sides();
                    assert!(sides.client > Duration::ZERO && sides.server > Duration::ZERO);
                }
            }
        }
    }

    #[test]
    fn providers_negotiate_the_groups_they_are_named_for() {
        let identity = ServerKey::EcdsaP256.identity();
        let group = |provider| {
            let mut conn = Pair::new(provider, &identity, Version::Tls13).connect();
            conn.handshake();
            conn.negotiated()
        };
        assert!(
            group(Provider::Ring).ends_with("X25519"),
            "{}",
            group(Provider::Ring)
        );
        assert!(group(Provider::AwsLc).ends_with("X25519"));
        assert!(group(Provider::AwsLcPostQuantum).ends_with("X25519MLKEM768"));
    }
}
