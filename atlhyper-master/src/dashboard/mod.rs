//! The dashboard page served at `/`, with its assets embedded in the binary.
