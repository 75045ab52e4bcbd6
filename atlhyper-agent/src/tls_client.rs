//! How the daemon's and the agent's HTTP clients trust a TLS server: the system's roots (through
//! rustls-platform-verifier, as reqwest does), or only the CA bundle of `--ca-file`. Not
//! verifying at all exists only as an explicit flag, warned about at start. The CA bundle and
//! the client certificate are re-read when they change ([`WatchedClient`]).

use std::path::PathBuf;

use atlhyper_http::watched_file::{WatchError, WatchedFiles};

use crate::error::AgentError;

/// The TLS side of one client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientTls {
    /// PEM CA bundle the server's certificate must chain to, instead of the system roots
    /// (`--ca-file`).
    pub ca_file: Option<PathBuf>,
    /// Accept any server certificate (`--tls-insecure-skip-verify`): for a first test against a
    /// self-signed server only; anyone on the path can read and change the traffic.
    pub insecure_skip_verify: bool,
    /// A PEM file holding this client's certificate chain and private key, presented when the
    /// server asks (a master with `--tls-client-ca`).
    pub identity: Option<ClientIdentity>,
}

/// A client certificate and its key, PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIdentity {
    /// Certificate chain, the client's certificate first.
    pub cert: PathBuf,
    /// Its private key.
    pub key: PathBuf,
}

/// The HTTP client of one hop, re-made when the files it trusts or presents change (a CA
/// bundle or client certificate rotated by cert-manager): the next request uses the new one,
/// requests under way finish on the old.
pub(crate) type WatchedClient = WatchedFiles<reqwest::Client>;

impl ClientTls {
    /// The files a client of this reads, in the order [`Self::apply`] takes their bytes: the
    /// CA bundle, then the client certificate and key.
    fn files(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = self.ca_file.iter().cloned().collect();
        if let Some(identity) = &self.identity {
            files.extend([identity.cert.clone(), identity.key.clone()]);
        }
        files
    }

    /// A client made by `builder` and trusting what this says, read now (a missing or bad file
    /// fails the start) and re-made when [`WatchedFiles::reload`] finds its files changed.
    /// `prefix` names the flags in errors and warnings (`AGENT` or `METRICS`); `server` names
    /// who is not verified.
    pub(crate) fn watched_client(
        &self,
        prefix: &'static str,
        server: &str,
        builder: impl Fn() -> reqwest::ClientBuilder + Send + Sync + 'static,
    ) -> Result<WatchedClient, AgentError> {
        let this = self.clone();
        let server = server.to_owned();
        let make = move |bytes: &[Vec<u8>]| {
            this.apply(builder(), bytes, prefix, &server)
                .and_then(|b| b.build().map_err(|e| AgentError::Http(e.to_string())))
                .map_err(|e| e.to_string())
        };
        WatchedFiles::load(self.files(), make).map_err(|e| match e {
            WatchError::Read { path, reason } => AgentError::config(
                &format!("{prefix}_{}", self.flag_of(&path)),
                &format!("cannot read {}: {reason}", path.display()),
            ),
            WatchError::Invalid(why) => AgentError::Http(why),
        })
    }

    /// The setting that names `path`, for an error.
    fn flag_of(&self, path: &PathBuf) -> &'static str {
        match &self.identity {
            Some(identity) if &identity.cert == path => "CLIENT_CERT",
            Some(identity) if &identity.key == path => "CLIENT_KEY",
            _ => "CA_FILE",
        }
    }

    /// `builder` trusting what this says, from the files' bytes (`pem`, in [`Self::files`]
    /// order).
    fn apply(
        &self,
        builder: reqwest::ClientBuilder,
        pem: &[Vec<u8>],
        prefix: &str,
        server: &str,
    ) -> Result<reqwest::ClientBuilder, AgentError> {
        let mut pem = pem.iter();
        let mut builder = builder.tls_version_min(reqwest::tls::Version::TLS_1_2);
        if let Some(path) = &self.ca_file {
            let flag = format!("{prefix}_CA_FILE");
            let bundle = pem.next().map_or(&[][..], Vec::as_slice);
            let certs = reqwest::Certificate::from_pem_bundle(bundle)
                .map_err(|e| AgentError::config(&flag, &format!("{}: {e}", path.display())))?;
            if certs.is_empty() {
                return Err(AgentError::config(
                    &flag,
                    &format!("{}: no PEM certificate found", path.display()),
                ));
            }
            builder = builder.tls_certs_only(certs);
        }
        if let Some(identity) = &self.identity {
            let flag = format!("{prefix}_CLIENT_CERT");
            let mut both = pem.next().cloned().unwrap_or_default();
            both.push(b'\n');
            both.extend(pem.next().map_or(&[][..], Vec::as_slice));
            let parsed = reqwest::Identity::from_pem(&both).map_err(|e| {
                AgentError::config(
                    &flag,
                    &format!(
                        "{} with {}: {e}",
                        identity.cert.display(),
                        identity.key.display()
                    ),
                )
            })?;
            builder = builder.identity(parsed);
        }
        if self.insecure_skip_verify {
            tracing::warn!(
                server,
                "{prefix}_TLS_INSECURE_SKIP_VERIFY: the server's certificate is not verified; \
                 anyone on the path can read and change this traffic"
            );
            builder = builder.tls_danger_accept_invalid_certs(true);
        }
        Ok(builder)
    }
}
