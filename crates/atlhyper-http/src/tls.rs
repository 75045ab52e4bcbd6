//! TLS for every atlhyper-rs server (rustls with the aws-lc-rs provider reqwest already uses, no
//! OpenSSL): the certificate and key from PEM files, re-read while serving so a rotated
//! certificate (cert-manager renewing a Secret) is used by the next handshake without a restart
//! or a failed request; TLS 1.2 and 1.3 only; optionally a client certificate required from a
//! given CA.
//!
//! ```no_run
//! use std::path::PathBuf;
//! use atlhyper_http::tls::{ServerTls, TlsSettings};
//!
//! let settings = TlsSettings::new(PathBuf::from("/tls/tls.crt"), PathBuf::from("/tls/tls.key"));
//! let tls = ServerTls::load(settings).expect("readable PEM files");
//! // atlhyper_http::serve::serve_with(listener, router, limits, Some(tls), shutdown)
//! # drop(tls);
//! ```

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig};
use tokio_rustls::TlsAcceptor;

use crate::watched_file::{WatchError, WatchedFiles};

/// Default pause between two looks at the certificate and key files.
pub const DEFAULT_RELOAD_INTERVAL: Duration = Duration::from_secs(5);

/// Where a server's certificate comes from and how it is served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// PEM certificate chain, the server's own certificate first (`tls.crt` of a
    /// `kubernetes.io/tls` Secret).
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) matching the certificate (`tls.key`).
    pub key: PathBuf,
    /// PEM CA bundle: when set, every client must present a certificate signed by one of these
    /// CAs. Re-read like the certificate: a changed bundle applies from the next handshake.
    pub client_ca: Option<PathBuf>,
    /// With [`Self::client_ca`]: let clients without a certificate through the handshake (a
    /// certificate that is presented must still verify), so the application decides which
    /// routes need one. `false` (the default): every client must present one.
    pub client_cert_optional: bool,
    /// How often the certificate and key files are looked at for a change.
    pub reload_interval: Duration,
}

impl TlsSettings {
    /// Certificate and key files with the default timeouts and no client certificates.
    pub fn new(cert: PathBuf, key: PathBuf) -> Self {
        Self {
            cert,
            key,
            client_ca: None,
            client_cert_optional: false,
            reload_interval: DEFAULT_RELOAD_INTERVAL,
        }
    }

    /// The settings of a binary's `--tls-cert`, `--tls-key` and `--tls-client-ca` flags:
    /// `None` when neither file is given, an error when only one is, or when a client CA is
    /// asked without a certificate to serve.
    pub fn from_flags(
        cert: Option<PathBuf>,
        key: Option<PathBuf>,
        client_ca: Option<PathBuf>,
    ) -> Result<Option<Self>, TlsError> {
        let given = |p: Option<PathBuf>| p.filter(|p| !p.as_os_str().is_empty());
        match (given(cert), given(key), given(client_ca)) {
            (None, None, None) => Ok(None),
            (Some(cert), Some(key), client_ca) => Ok(Some(Self {
                client_ca,
                ..Self::new(cert, key)
            })),
            (None, None, Some(_)) => Err(TlsError::Flags(
                "--tls-client-ca needs --tls-cert and --tls-key",
            )),
            _ => Err(TlsError::Flags(
                "--tls-cert and --tls-key go together: give both or neither",
            )),
        }
    }
}

/// Why TLS could not be set up (or a changed certificate not taken).
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The flags do not describe a usable setup.
    #[error("{0}")]
    Flags(&'static str),
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file holds no usable PEM block of the kind needed.
    #[error("{path}: {reason}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The key does not fit the certificate, or rustls refused them.
    #[error("certificate {cert} with key {key}: {reason}")]
    Key {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// What rustls said.
        reason: String,
    },
    /// The files were read but do not make a certificate (the reason names the file).
    #[error("{0}")]
    Files(String),
    /// The client CA bundle could not be made into a verifier.
    #[error("client CA {path}: {reason}")]
    ClientCa {
        /// The CA file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// The crypto provider of every TLS server here: aws-lc-rs, the one reqwest's `rustls` feature
/// brings, so the workspace carries one provider.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Every certificate of a PEM bundle; an error when there is none or one is malformed.
pub fn parse_certificates(
    path: &Path,
    pem: &[u8],
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            path: path.to_path_buf(),
            reason: format!("malformed PEM certificate: {e}"),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            path: path.to_path_buf(),
            reason: "no PEM certificate (-----BEGIN CERTIFICATE-----) found".to_owned(),
        });
    }
    Ok(certs)
}

/// The certificate and key of `settings` made into what rustls serves; an error names the file.
fn certified_key(
    settings: &TlsSettings,
    cert_pem: &[u8],
    key_pem: &[u8],
) -> Result<CertifiedKey, TlsError> {
    let chain = parse_certificates(&settings.cert, cert_pem)?;
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| TlsError::Pem {
        path: settings.key.clone(),
        reason: format!("no usable PEM private key: {e}"),
    })?;
    CertifiedKey::from_der(chain, key, &provider()).map_err(|e| TlsError::Key {
        cert: settings.cert.clone(),
        key: settings.key.clone(),
        reason: e.to_string(),
    })
}

/// The certificate handed to every handshake: the one last loaded from the watched files.
struct CurrentCert(Arc<WatchedFiles<CertifiedKey>>);

impl fmt::Debug for CurrentCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CurrentCert")
    }
}

impl ResolvesServerCert for CurrentCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.current())
    }
}

/// A TLS server setup: the acceptor, and the certificate and client CA it reloads (through
/// [`WatchedFiles`], as every file a binary re-reads).
#[derive(Clone)]
pub struct ServerTls {
    /// The certificate and key files.
    cert: Arc<WatchedFiles<CertifiedKey>>,
    /// The acceptor, re-made when the client CA changes (the verifier is part of the rustls
    /// config; the certificate changes inside it, through [`CurrentCert`]). Watches no file
    /// without a client CA.
    acceptor: Arc<WatchedFiles<TlsAcceptor>>,
    settings: Arc<TlsSettings>,
}

/// The rustls server configuration: TLS 1.2 and 1.3, the certificate `current` resolves, and a
/// client certificate verifier over `client_ca` (the bundle's path and bytes) when given.
fn server_config(
    settings: &TlsSettings,
    current: &Arc<CurrentCert>,
    client_ca: Option<(&Path, &[u8])>,
) -> Result<ServerConfig, TlsError> {
    let builder = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Key {
            cert: settings.cert.clone(),
            key: settings.key.clone(),
            reason: e.to_string(),
        })?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some((path, pem)) => {
            let ca_error = |reason: String| TlsError::ClientCa {
                path: path.to_path_buf(),
                reason,
            };
            let mut roots = RootCertStore::empty();
            for cert in parse_certificates(path, pem)? {
                roots.add(cert).map_err(|e| ca_error(e.to_string()))?;
            }
            let mut verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider());
            if settings.client_cert_optional {
                verifier = verifier.allow_unauthenticated();
            }
            let verifier = verifier.build().map_err(|e| ca_error(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_cert_resolver(Arc::clone(current) as Arc<dyn ResolvesServerCert>);
    // The servers speak HTTP/1.1 only; saying so lets a client offering h2 settle at once.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTls")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// A [`WatchError`] of the TLS files as the [`TlsError`] it stands for.
fn tls_error(e: WatchError) -> TlsError {
    match e {
        WatchError::Read { path, reason } => TlsError::Read {
            source: std::io::Error::other(reason),
            path,
        },
        WatchError::Invalid(reason) => TlsError::Files(reason),
    }
}

impl ServerTls {
    /// Reads the certificate, the key and the client CA of `settings`; every problem is an
    /// error naming the file.
    pub fn load(settings: TlsSettings) -> Result<Self, TlsError> {
        let settings = Arc::new(settings);
        let of = Arc::clone(&settings);
        let cert = WatchedFiles::load(
            vec![settings.cert.clone(), settings.key.clone()],
            move |pem| {
                let (cert, key) = (&pem[0], &pem[1]);
                certified_key(&of, cert, key).map_err(|e| e.to_string())
            },
        )
        .map_err(tls_error)?;
        let cert = Arc::new(cert);
        let current = Arc::new(CurrentCert(Arc::clone(&cert)));
        let of = Arc::clone(&settings);
        let acceptor =
            WatchedFiles::load(settings.client_ca.iter().cloned().collect(), move |pem| {
                let client_ca = of
                    .client_ca
                    .as_deref()
                    .zip(pem.first())
                    .map(|(path, pem)| (path, pem.as_slice()));
                server_config(&of, &current, client_ca)
                    .map(|config| TlsAcceptor::from(Arc::new(config)))
                    .map_err(|e| e.to_string())
            })
            .map_err(tls_error)?;
        Ok(Self {
            cert,
            acceptor: Arc::new(acceptor),
            settings,
        })
    }

    /// The settings this was loaded from.
    pub fn settings(&self) -> &TlsSettings {
        &self.settings
    }

    /// Reads the certificate, key and client CA files again and, when they changed and are
    /// valid, serves them from the next handshake on: `Ok(true)`. Unchanged files are
    /// `Ok(false)`; a change that is not valid (a half-written rotation, a CA bundle without a
    /// certificate) is an error and what was served stays.
    pub fn reload(&self) -> Result<bool, TlsError> {
        let cert_changed = self.cert.reload().map_err(tls_error)?;
        let ca_changed = self.acceptor.reload().map_err(tls_error)?;
        Ok(cert_changed || ca_changed)
    }

    /// Looks at the files every [`TlsSettings::reload_interval`] and reloads a change, logging
    /// it (`TLS certificate reloaded`; "certificate" covers the client CA bundle too: one
    /// message to look for); runs until dropped (the server aborts it when it stops).
    pub(crate) async fn watch_files(self) {
        let every = self.settings.reload_interval;
        let client_ca = async {
            if !self.acceptor.paths().is_empty() {
                Arc::clone(&self.acceptor)
                    .watch(every, "TLS certificate", |_| {})
                    .await;
            }
        };
        let cert = Arc::clone(&self.cert).watch(every, "TLS certificate", |_| {});
        tokio::join!(cert, client_ca);
    }

    /// The acceptor for the next handshake.
    pub(crate) fn acceptor(&self) -> TlsAcceptor {
        (*self.acceptor.current()).clone()
    }
}

/// The certificate a client presented in the TLS handshake (only with
/// [`TlsSettings::client_ca`], which verified it): a request extension, next to `ConnectInfo`.
#[derive(Debug, Clone)]
pub struct ClientCertificate(pub Arc<CertificateDer<'static>>);

impl ClientCertificate {
    /// Whether the certificate names `name` (a DNS name) among its subject alternative names.
    pub fn names(&self, name: &str) -> bool {
        let Ok(server_name) = ServerName::try_from(name) else {
            return false;
        };
        let Ok(cert) = webpki::EndEntityCert::try_from(&*self.0) else {
            return false;
        };
        cert.verify_is_valid_for_subject_name(&server_name).is_ok()
    }

    /// The certificate's subject as RFC 4514 text (`CN=agent-a, O=Ops`); empty when it has
    /// none, `?` when the certificate does not parse (it was verified, so it does).
    pub fn subject(&self) -> String {
        match x509_parser::parse_x509_certificate(&self.0) {
            Ok((_, cert)) => cert.subject().to_string(),
            Err(_) => "?".to_owned(),
        }
    }
}
