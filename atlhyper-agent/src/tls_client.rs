//! How the daemon's and the agent's HTTP clients trust a TLS server: the system's roots (through
//! rustls-platform-verifier, as reqwest does), or only the CA bundle of `--ca-file`. Not
//! verifying at all exists only as an explicit flag, warned about at start.

use std::path::PathBuf;

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

fn read(flag: &str, path: &PathBuf) -> Result<Vec<u8>, AgentError> {
    std::fs::read(path)
        .map_err(|e| AgentError::config(flag, &format!("cannot read {}: {e}", path.display())))
}

impl ClientTls {
    /// `builder` trusting what this says. `prefix` names the flags in errors and warnings
    /// (`AGENT` or `METRICS`); `server` names who is not verified.
    pub(crate) fn apply(
        &self,
        builder: reqwest::ClientBuilder,
        prefix: &str,
        server: &str,
    ) -> Result<reqwest::ClientBuilder, AgentError> {
        let mut builder = builder.tls_version_min(reqwest::tls::Version::TLS_1_2);
        if let Some(path) = &self.ca_file {
            let flag = format!("{prefix}_CA_FILE");
            let certs = reqwest::Certificate::from_pem_bundle(&read(&flag, path)?)
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
            let mut pem = read(&flag, &identity.cert)?;
            pem.push(b'\n');
            pem.extend(read(&format!("{prefix}_CLIENT_KEY"), &identity.key)?);
            let identity = reqwest::Identity::from_pem(&pem)
                .map_err(|e| AgentError::config(&flag, &e.to_string()))?;
            builder = builder.identity(identity);
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
