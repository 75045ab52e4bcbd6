//! Serde helpers for talking to Go peers.

use serde::{Deserialize, Deserializer};

/// Reads a Go `null` (a nil slice or map) as the type's default, so `"disks": null` is an empty list.
pub(crate) fn null_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// `skip_serializing_if` for extension numbers that are zero by default.
pub(crate) fn is_zero_u64(v: &u64) -> bool {
    *v == 0
}
