//! Parsers for files under the host's `/etc`.

pub mod os_release;
pub mod passwd;
