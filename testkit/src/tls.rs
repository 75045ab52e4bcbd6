//! A throwaway certificate authority for TLS tests (rcgen): a CA, server certificates for given
//! names (valid now, or expired), client certificates, all as PEM, written where a server's
//! `--tls-cert`/`--tls-key` flags can read them.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// A certificate and its private key, PEM.
#[derive(Debug, Clone)]
pub struct CertPem {
    /// The certificate (`tls.crt`).
    pub cert: String,
    /// The PKCS#8 private key (`tls.key`).
    pub key: String,
}

impl CertPem {
    /// Writes `<stem>.crt` and `<stem>.key` into `dir`; their paths.
    pub fn write(&self, dir: &Path, stem: &str) -> (PathBuf, PathBuf) {
        let cert = dir.join(format!("{stem}.crt"));
        let key = dir.join(format!("{stem}.key"));
        write_atomically(&cert, self.cert.as_bytes());
        write_atomically(&key, self.key.as_bytes());
        (cert, key)
    }
}

/// Replaces `path` with `bytes` in one rename, as a Secret volume update swaps files: a reader
/// sees the old or the new content, never half of one.
pub fn write_atomically(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes).expect("write a temporary PEM file");
    std::fs::rename(&tmp, path).expect("rename the PEM file into place");
}

/// A test certificate authority.
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    cert: String,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa").finish_non_exhaustive()
    }
}

/// How long ago a certificate stopped being valid, or from when it is valid, in days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    /// From yesterday to a year from now.
    Current,
    /// Expired yesterday (valid the 30 days before).
    Expired,
}

impl TestCa {
    /// A fresh CA named `name` (its own key, self-signed).
    pub fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().expect("CA key");
        let cert = params.self_signed(&key).expect("self-signed CA").pem();
        Self {
            issuer: Issuer::new(params, key),
            cert,
        }
    }

    /// The CA certificate, PEM (what `--ca-file` and `--tls-client-ca` read).
    pub fn cert_pem(&self) -> &str {
        &self.cert
    }

    /// Writes the CA certificate to `dir/<stem>.crt`; its path.
    pub fn write(&self, dir: &Path, stem: &str) -> PathBuf {
        let path = dir.join(format!("{stem}.crt"));
        write_atomically(&path, self.cert.as_bytes());
        path
    }

    /// A server certificate for `names` (DNS names or IP literals).
    pub fn server(&self, names: &[&str], validity: Validity) -> CertPem {
        self.leaf(names, validity, ExtendedKeyUsagePurpose::ServerAuth)
    }

    /// A client certificate whose subject alternative names are `names`.
    pub fn client(&self, names: &[&str], validity: Validity) -> CertPem {
        self.leaf(names, validity, ExtendedKeyUsagePurpose::ClientAuth)
    }

    fn leaf(&self, names: &[&str], validity: Validity, usage: ExtendedKeyUsagePurpose) -> CertPem {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names.clone()).expect("leaf parameters");
        if let Some(first) = names.first() {
            params
                .distinguished_name
                .push(DnType::CommonName, first.as_str());
        }
        params.extended_key_usages = vec![usage];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let day = time::Duration::days(1);
        let now = time::OffsetDateTime::now_utc();
        (params.not_before, params.not_after) = match validity {
            Validity::Current => (now - day, now + day * 365),
            Validity::Expired => (now - day * 31, now - day),
        };
        let key = KeyPair::generate().expect("leaf key");
        let cert = params.signed_by(&key, &self.issuer).expect("signed leaf");
        CertPem {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }
}
