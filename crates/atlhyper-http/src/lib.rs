//! What every atlhyper-rs server process shares, whichever side it is on: the HTTP/1.1 accept
//! loop ([`serve`]: header-read timeout, connection bound, graceful shutdown), gzip bodies with a
//! limit on what they decompress to, the `Accept-Encoding` question and the scrape answer
//! compressed when asked ([`text_response`]), and the process around the work (logging in text
//! or JSON, the signals that end it, the exit code).
//!
//! The agent and the master are peers over HTTP; both depend on this crate and neither on the
//! other.
//!
//! ```
//! use atlhyper_http::{gunzip_limited, gzip};
//!
//! let body = gzip(br#"{"node_name":"a"}"#, 1);
//! assert_eq!(gunzip_limited(&body, 1024).unwrap(), br#"{"node_name":"a"}"#);
//! assert!(gunzip_limited(&body, 4).is_err());
//! ```

mod accept_encoding;
mod gzip;
mod process;
pub mod serve;
mod text_response;
pub mod tls;
pub mod token_file;
pub mod watched_file;

pub use accept_encoding::accepts_gzip;
pub use gzip::{GunzipError, GzipWriter, gunzip_limited, gzip, is_gzip};
pub use process::{LogFormat, init_logging, run_main, terminated};
pub use serve::{
    CLIENT_IDLE_TIMEOUT, DEFAULT_HEADER_TIMEOUT, DEFAULT_MAX_CONNECTIONS, ServeLimits,
};
pub use text_response::{TEXT_GZIP_LEVEL, text_response};
