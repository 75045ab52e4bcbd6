//! TLS to the database over rustls (no OpenSSL), with libpq's `sslmode` meanings.
//!
//! tokio-postgres itself knows only `disable`, `prefer` and `require`, so the URL's `sslmode`
//! and `sslrootcert` are read here and taken out of the URL before tokio-postgres parses it:
//!
//! | `sslmode` | TLS | server certificate checked |
//! |---|---|---|
//! | `disable` | never | - |
//! | `prefer` (the default, as libpq) | when the server offers it | no (as libpq) |
//! | `require` | always | only when a CA is given (then as `verify-ca`, as libpq) |
//! | `verify-ca` | always | chain up to the CA |
//! | `verify-full` | always | chain up to the CA, and the URL's host in the certificate |
//!
//! The CA comes from [`super::PgOptions::ca_file`] (`--db-ca-file`) or the URL's
//! `sslrootcert=PATH`; `verify-ca` and `verify-full` without one are refused.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::error::{StoreError, StoreResult};

/// libpq's `sslmode` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> StoreResult<Self> {
        Ok(match value {
            "disable" => Self::Disable,
            "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            other => {
                return Err(StoreError::Invalid(format!(
                    "database URL: sslmode={other:?}; one of disable, prefer, require, \
                     verify-ca, verify-full"
                )));
            }
        })
    }

    /// What tokio-postgres is told: whether TLS is tried, and whether it is a must.
    pub(super) fn for_client(self) -> tokio_postgres::config::SslMode {
        use tokio_postgres::config::SslMode as Client;
        match self {
            Self::Disable => Client::Disable,
            Self::Prefer => Client::Prefer,
            Self::Require | Self::VerifyCa | Self::VerifyFull => Client::Require,
        }
    }
}

/// A database URL with the TLS parameters read out of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct DbUrl {
    /// The URL without `sslmode` and `sslrootcert`, for tokio-postgres.
    pub(super) url: String,
    pub(super) mode: SslMode,
    /// `sslrootcert`, percent-decoded.
    pub(super) root_cert: Option<PathBuf>,
}

/// Reads `sslmode` and `sslrootcert` out of a `postgres://` URL. A key/value connection string
/// (`host=... dbname=...`) is left to tokio-postgres as it is (its `sslmode` is then one of
/// `disable`, `prefer`, `require`, without certificate checks).
pub(super) fn split_url(url: &str) -> StoreResult<DbUrl> {
    let mut out = DbUrl {
        url: url.to_owned(),
        mode: SslMode::Prefer,
        root_cert: None,
    };
    let is_url = url.starts_with("postgres://") || url.starts_with("postgresql://");
    let Some((base, query)) = url.split_once('?').filter(|_| is_url) else {
        return Ok(out);
    };
    let mut kept: Vec<&str> = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_encoding::percent_decode_str(value)
            .decode_utf8()
            .map_err(|e| StoreError::Invalid(format!("database URL: {key}: {e}")))?;
        match key {
            "sslmode" => out.mode = SslMode::parse(&value)?,
            "sslrootcert" => out.root_cert = Some(PathBuf::from(value.as_ref())),
            _ => kept.push(pair),
        }
    }
    out.url = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok(out)
}

/// The TLS connector for `mode` with the CA at `ca_file`; `None` for `disable`. `database`
/// names the database in errors.
pub(super) fn connector(
    mode: SslMode,
    ca_file: Option<&Path>,
    database: &str,
) -> StoreResult<Option<MakeRustlsConnect>> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let roots = ca_file.map(|path| read_roots(path, database)).transpose()?;
    let verifier: Arc<dyn ServerCertVerifier> = match (mode, roots) {
        (SslMode::Disable, _) => return Ok(None),
        (SslMode::VerifyCa | SslMode::VerifyFull, None) => {
            return Err(StoreError::Invalid(format!(
                "database {database}: sslmode=verify-ca and verify-full need a CA file \
                 (--db-ca-file, MASTER_DB_CA_FILE, or sslrootcert= in the URL)"
            )));
        }
        (SslMode::Prefer | SslMode::Require, None) => Arc::new(EncryptOnly(provider.clone())),
        (mode, Some(roots)) => {
            let chain =
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .map_err(|e| StoreError::Invalid(format!("database {database}: CA: {e}")))?;
            if mode == SslMode::VerifyFull {
                chain
            } else {
                Arc::new(ChainOnly(chain))
            }
        }
    };
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Invalid(format!("database {database}: TLS: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(Some(MakeRustlsConnect::new(config)))
}

/// The certificates of a PEM file, as trust anchors.
fn read_roots(path: &Path, database: &str) -> StoreResult<RootCertStore> {
    let bad = |what: String| {
        StoreError::Invalid(format!(
            "database {database}: CA file {}: {what}",
            path.display()
        ))
    };
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).map_err(|e| bad(e.to_string()))? {
        let cert = cert.map_err(|e| bad(e.to_string()))?;
        roots.add(cert).map_err(|e| bad(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(bad("no certificate in it".to_owned()));
    }
    Ok(roots)
}

/// `verify-ca`: the chain is checked, the name is not (libpq's meaning; the host may be an
/// address the certificate does not list).
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            // webpki checks the name last: a name error means the chain was good.
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// `prefer` and `require` without a CA: encrypted, the server not authenticated (libpq's
/// meaning). The handshake's signatures are still checked against the presented certificate.
#[derive(Debug)]
struct EncryptOnly(Arc<CryptoProvider>);

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_parameters_are_read_out_of_the_url() {
        let u = split_url("postgres://u:p@h:5/db?sslmode=verify-full&application_name=x&sslrootcert=%2Fetc%2Fca.pem")
            .unwrap();
        assert_eq!(u.url, "postgres://u:p@h:5/db?application_name=x");
        assert_eq!(u.mode, SslMode::VerifyFull);
        assert_eq!(u.root_cert, Some(PathBuf::from("/etc/ca.pem")));
        let u = split_url("postgresql://h/db?sslmode=disable").unwrap();
        assert_eq!(
            (u.url.as_str(), u.mode),
            ("postgresql://h/db", SslMode::Disable)
        );
        let u = split_url("postgres://h/db").unwrap();
        assert_eq!(
            (u.url.as_str(), u.mode),
            ("postgres://h/db", SslMode::Prefer)
        );
        // A key/value string is tokio-postgres's to read.
        let u = split_url("host=h sslmode=require").unwrap();
        assert_eq!(u.url, "host=h sslmode=require");
        assert!(split_url("postgres://h/db?sslmode=allow-nothing").is_err());
        assert!(split_url("postgres://h/db?sslrootcert=%FF").is_err());
    }

    #[test]
    fn verification_without_a_ca_and_unreadable_ca_files_are_refused() {
        let err = connector(SslMode::VerifyFull, None, "h:5/db")
            .err()
            .unwrap();
        assert!(err.to_string().contains("h:5/db"), "{err}");
        assert!(connector(SslMode::Disable, None, "x").unwrap().is_none());
        assert!(connector(SslMode::Require, None, "x").unwrap().is_some());
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none.pem");
        let err = connector(SslMode::VerifyCa, Some(&missing), "h:5/db")
            .err()
            .unwrap();
        assert!(err.to_string().contains("none.pem"), "{err}");
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate").unwrap();
        let err = connector(SslMode::VerifyCa, Some(&junk), "h:5/db")
            .err()
            .unwrap();
        assert!(err.to_string().contains("no certificate"), "{err}");
    }
}
